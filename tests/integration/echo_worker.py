"""A minimal Faust worker for the foundation test: upper-cases ``$ECHO_IN`` into ``$ECHO_OUT``.

Run as its own process: ``python echo_worker.py worker``. It connects with the TLS and SASL
settings of ``STREAMSENSE_KAFKA_*``, as streamsense's worker does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import faust

from streams.edges.security import faust_credentials
from streams.settings import Settings

app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{os.environ['ECHO_BOOTSTRAP']}",
    broker_credentials=faust_credentials(Settings()),
    store="memory://",
    datadir=os.environ["ECHO_DATADIR"],
    web_enabled=False,
    topic_disable_leader=True,
)
source = app.topic(os.environ["ECHO_IN"], value_serializer="raw")
sink = app.topic(os.environ["ECHO_OUT"], value_serializer="raw")


@app.agent(source)
async def echo(stream: AsyncIterator[bytes]) -> None:
    async for value in stream:
        await sink.send(value=value.upper())


if __name__ == "__main__":
    app.main()
