"""The root of every error streamsense raises on purpose.

Each package derives its own errors from :class:`StreamsenseError` (``models.exceptions``,
``retrain.exceptions``, ``streams.errors``, ``deploy.broker.BrokerError``), so every
command turns any of them into one clear line and a non-zero exit.
"""


class StreamsenseError(Exception):
    """Base class of every error streamsense raises on purpose."""
