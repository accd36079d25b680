"""A batch's outputs leave when the batch waits for them, not when the producer's linger ends.

The worker's producer holds records for ``STREAMSENSE_PRODUCER_LINGER_S`` to send more of
them per request. Once a scorer batch has queued all its outputs and waits for their
confirms, holding them longer only delays the batch: the agents tell the producer to send
at that moment (``streams.runtime.delivery.send_now_for``). Here the linger is 1 s, the
largest the setting allows: a batch that waited it out would spend over a second in its
``confirm`` phase (``streamsense_batch_phase_seconds``), as every batch did before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.data import load_banking77
from streams.edges.replay import customer_messages
from tests.kafka_helpers import produce
from tests.pipeline_helpers import Pipeline, TopicReader, metric_value

pytestmark = pytest.mark.integration

LINGER_S = 1.0


def test_a_batch_does_not_wait_out_the_producers_linger(
    kafka_bootstrap: str, trained_registry: Path, tmp_path: Path, unique: str
) -> None:
    pipe = Pipeline.create(
        kafka_bootstrap, unique, trained_registry, tmp_path, producer_linger_s=str(LINGER_S)
    )
    s = pipe.settings
    data = load_banking77(s.data_dir).subset(range(40))
    messages = [(i.key, i.value, i.item_id) for i in customer_messages(data, prefix="linger")]
    routed = TopicReader(pipe.bootstrap, s.topic_tickets_routed)
    try:
        pipe.start_worker()
        produce(pipe.bootstrap, s.topic_messages_raw, [(k, v) for k, v, _ in messages])
        routed.wait_for_ids({i for _, _, i in messages}, 240, pipe.assert_workers_alive)
        assert pipe.wait_committed(s.topic_messages_raw, 60, pipe.assert_workers_alive)
        port = pipe.metrics_ports[0]
        phase = {"agent": "message-scorer", "phase": "confirm"}
        batches = metric_value(port, "streamsense_batch_phase_seconds_count", **phase)
        seconds = metric_value(port, "streamsense_batch_phase_seconds_sum", **phase)
    finally:
        pipe.stop_all()
        routed.close()
    assert batches and batches >= 3  # 40 messages in batches of at most 16
    assert seconds is not None and seconds / batches < LINGER_S / 2, (
        f"{seconds / batches:.2f} s per batch waiting for the confirms: the linger held them"
    )
