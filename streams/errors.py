"""Errors of the streaming layer, under the project's one root."""

from streamsense.errors import StreamsenseError

__all__ = [
    "ConfigFileError",
    "ConfigurationError",
    "InvalidRecordError",
    "LocalFeedbackStoreError",
    "StreamsenseError",
]


class ConfigurationError(StreamsenseError):
    """A setting or the machine's environment does not allow the requested action."""


class LocalFeedbackStoreError(ConfigurationError):
    """A shared feedback store is required but the configured one is a local SQLite file."""


class InvalidRecordError(StreamsenseError):
    """A record cannot be decoded or validated; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConfigFileError(ConfigurationError):
    """An operator-edited configuration file is missing, malformed or inconsistent."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem
