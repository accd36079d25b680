"""The one settings class, read from ``STREAMSENSE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    shared = _PROJECT_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else Path("data")


class Settings(BaseSettings):
    """Everything a streamsense process can be configured with.

    Built once at a command's entry point and passed down; nothing else reads the
    environment.
    """

    model_config = SettingsConfigDict(env_prefix="STREAMSENSE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="",
        description="Kafka bootstrap servers (host:port,...). Empty: start the local broker.",
    )
    kafka_version: str = Field(
        default="4.1.1", description="Apache Kafka version of the local broker."
    )
    broker_port: int = Field(default=0, description="Port of the local broker; 0 picks a free one.")
    state_dir: Path = Field(
        default=Path(".streamsense"),
        description="Local state: broker data, PID files, logs, Faust tables.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "streamsense",
        description="Downloaded broker jars (outside the tracked files).",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Labeled data sets (default ../shared/data when it exists).",
    )
    registry_dir: Path = Field(default=Path("registry"), description="Model registry directory.")
    feedback_db_url: str = Field(
        default="sqlite:///.streamsense/feedback.db",
        description="Feedback store: sqlite:///path or postgresql://...",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = Field(default=9464, description="Port of /metrics; 0 picks a free one.")
    web_host: str = Field(default="127.0.0.1", description="Bind address of the Faust web server.")
    web_port: int = Field(default=6066, description="Port of the Faust web server.")
    batch_size: int = Field(default=32, ge=1, description="Largest micro-batch a scorer takes.")
    batch_max_wait_s: float = Field(
        default=0.05, gt=0, description="Longest a scorer waits to fill a micro-batch (seconds)."
    )
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of created topics.")
    app_id: str = Field(default="streamsense", description="Faust app id (consumer group).")
    inference_threads: int = Field(
        default=0, ge=0, description="ONNX Runtime intra-op threads; 0 = auto."
    )
    log_level: str = Field(default="INFO", description="Logging level.")

    def resolved_state_dir(self) -> Path:
        """The state directory as an absolute path, created if missing."""
        path = self.state_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
