"""The one settings class, read from ``STREAMSENSE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.pool import available_cores
from streams.errors import ConfigurationError

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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects to the cluster."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle the brokers' certificates are checked against."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate (mutual TLS)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the client private key, if it is encrypted."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that a broker's certificate names the host dialled."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism of SASL_PLAINTEXT and SASL_SSL."
    )
    kafka_sasl_username: str = Field(default="", description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
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
    require_shared_store: bool = Field(
        default=False,
        description="Worker and scheduler refuse a SQLite (one-machine) feedback store.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = Field(default=9464, description="Port of /metrics; 0 picks a free one.")
    liveness_max_age_s: float = Field(
        default=30.0,
        ge=2.0,
        description="/healthz fails once the worker's event loop has not run for this long (s).",
    )
    # 64 / 10 ms beat 32 / 50 ms in two back-to-back `make bench` runs (2026-12-05): messages
    # 269 and 242/s against 176 and 190/s at saturation, p99 77 and 110 ms against 274 and
    # 265 ms at half load (README, Benchmarks)
    batch_size: int = Field(default=64, ge=1, description="Largest micro-batch a scorer takes.")
    batch_max_wait_s: float = Field(
        default=0.01, gt=0, description="Longest a scorer waits to fill a micro-batch (seconds)."
    )
    monitor_batch_size: int = Field(
        default=512,
        ge=1,
        description="Largest micro-batch the ticker and intent monitors take.",
    )
    monitor_batch_max_wait_s: float = Field(
        default=0.25,
        gt=0,
        description=(
            "Longest the monitors wait to fill a micro-batch (seconds). A batch rewrites"
            " the row of every ticker it touched (as large as the ticker's window) and the"
            " head row of every intent it touched, so fewer, larger batches write less"
            " changelog; alerts come up to this much later."
        ),
    )
    latency_target_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Produce-to-output latency the batching aims for (seconds): each agent chooses"
            " batch size (at most batch_size) and wait from the observed arrival rate and"
            " processing time; 0 (the default until the hot-swap test passes with it):"
            " fixed batch_size and batch_max_wait_s."
        ),
    )
    overlap_batches: bool = Field(
        default=False,
        description=(
            "After a scorer batch that was not full, take and score the next batch while"
            " that one emits and confirms (outputs, state rows and acknowledgements stay in"
            " batch order; full batches, a backlog, run one after the other); ignored with a"
            " latency target. On, p50 and p99 at half load fell (README, Benchmarks); off by"
            " default until the chaos suite's duplicates with it on are understood."
        ),
    )
    route_in_scorer: bool = Field(
        default=True,
        description=(
            "Route customer messages keyed by their customer id inside the message scorer's"
            " batch; false: every scored message goes through messages.scored and the router."
        ),
    )
    producer_linger_s: float = Field(
        default=0.005,
        ge=0,
        le=1,
        description=(
            "How long the worker's producer holds a record for more to the same partition"
            " (seconds); 0: at once, Kafka's default. 5 ms won on rate and latency in"
            " `python -m bench.ab` (README, Benchmarks). A batch waiting for its outputs'"
            " confirms has them sent at once."
        ),
    )
    producer_compression: Literal["none", "gzip", "lz4", "zstd"] = Field(
        default="none",
        description=(
            "Compression of the worker's produce requests (lz4 and zstd need the cramjam"
            " package). none: on a local broker compression only costs CPU; across a"
            " network it trades CPU for bandwidth (README, Benchmarks)."
        ),
    )
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of created topics.")
    app_id: str = Field(default="streamsense", description="Faust app id (consumer group).")
    inference_calls: int = Field(
        default=0,
        ge=0,
        description=(
            "Model calls a batch runs at once, each on a share of its texts"
            " (models.pool); 0 = one per CPU core."
        ),
    )
    inference_threads: int = Field(
        default=0,
        ge=0,
        description=(
            "ONNX Runtime intra-op threads per call; 0 = 1 when calls run in parallel,"
            " else ONNX Runtime's own choice."
        ),
    )
    int8_row_loop: bool = Field(
        default=True,
        description=(
            "Score an int8 model's share of a batch in one ONNX Runtime call that loops over"
            " the texts (models.rowloop), each text still scored alone; used only when it"
            " reproduces one call per text exactly on probe texts at load. false: one call"
            " per text."
        ),
    )
    log_level: str = Field(default="INFO", description="Logging level.")
    scheduler_metrics_port: int = Field(
        default=9465, ge=0, description="Port of the retrain scheduler's /metrics."
    )
    retrain_cron: str = Field(
        default="0 3 * * *", description="Crontab (UTC) of scheduled retrain runs; empty = off."
    )
    retrain_min_new_labels: int = Field(
        default=500, ge=0, description="New labelled texts that trigger a retrain; 0 = off."
    )
    retrain_check_interval_s: float = Field(
        default=60.0, gt=0, description="How often the scheduler counts new labels (seconds)."
    )
    retrain_method: Literal["full", "lora"] = Field(
        default="full",
        description=(
            "How scheduled retrains fine-tune: full (every weight) or lora (low-rank adapters,"
            " merged before the ONNX export); `streamsense retrain --method` overrides it."
        ),
    )
    retrain_lora_layers: int | None = Field(
        default=None,
        ge=1,
        description=(
            "With lora: adapters in the encoder's top N layers only (the backward pass stops"
            " below them); unset = every layer. `streamsense retrain --lora-layers` overrides it."
        ),
    )
    retrain_holdout_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of new feedback texts set aside, once, as the gate's held-out slice.",
    )
    retrain_holdout_cap: int = Field(
        default=1000,
        ge=1,
        description="Most texts in the feedback held-out slice; later labels are all trained on.",
    )
    retrain_replay_ratio: float = Field(
        default=1.0, ge=0, description="Original training rows replayed per new feedback row."
    )
    gate_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Held-out accuracy a candidate may lose (judged on the interval's low bound).",
    )
    gate_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="Gate significance level: a gain must have McNemar p below it; intervals "
        "are 1 - alpha.",
    )
    gate_min_slice: int = Field(
        default=100,
        ge=1,
        description="Fewest recent-feedback items the gate judges on; fewer: not enough evidence.",
    )
    shadow_before_promotion: bool = Field(
        default=False,
        description="A candidate the gate passes goes into shadow first; the shadow review "
        "promotes it after its shadow period.",
    )
    shadow_min_items: int = Field(
        default=200, ge=1, description="Labelled live items a shadow period needs at least."
    )
    shadow_min_duration_s: float = Field(
        default=3600.0, ge=0, description="Shortest shadow period, in seconds."
    )
    shadow_max_duration_s: float = Field(
        default=604800.0,
        gt=0,
        description="Longest shadow period: past it without a verdict, the shadow ends.",
    )
    shadow_review_interval_s: float = Field(
        default=300.0, gt=0, description="How often the scheduler reviews a shadow period."
    )
    drift_window: int = Field(
        default=1000,
        ge=50,
        description="Latest scored items per task a worker compares with the drift reference.",
    )
    drift_min_items: int = Field(
        default=200,
        ge=10,
        description="Items the drift window needs before a drift score is reported.",
    )
    drift_psi_threshold: float = Field(
        default=0.25,
        gt=0,
        description="Drift score (largest PSI) that the alert and the retrain trigger act on.",
    )
    feedback_retention_days: int = Field(
        default=90, ge=1, description="Feedback texts are blanked after this many days."
    )
    swap_reconcile_s: float = Field(
        default=10.0,
        gt=0,
        description="How often a worker compares the models it serves with the registry alias.",
    )
    swap_retry_max_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait between retries of a model load that failed (backoff cap).",
    )
    session_timeout_s: float = Field(
        default=10.0,
        ge=6.0,
        description="Consumer-group session timeout: how soon a dead worker's partitions move.",
    )
    poison_deaths: int = Field(
        default=3,
        ge=2,
        description="Under `worker --supervise`: deaths with a record in flight alone after "
        "which that record is quarantined (dead-lettered instead of scored).",
    )
    in_flight_dir: Path | None = Field(
        default=None,
        description="Set by `worker --supervise`: where the worker notes its in-flight records.",
    )
    quarantine_file: Path | None = Field(
        default=None,
        description="Set by `worker --supervise`: suspects and quarantined records.",
    )
    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest clean shutdown after SIGTERM/SIGINT; past it the worker exits "
        "without committing (what it had not committed is redelivered).",
    )
    alert_drop_threshold: float = Field(
        default=-0.5,
        lt=0,
        description="Ticker alert: short-window mean minus baseline at or below.",
    )
    alert_min_volume: int = Field(
        default=5, ge=1, description="Ticker alert: items the short window needs."
    )
    alert_burst_min_count: int = Field(
        default=5, ge=1, description="Ticker alert: strongly negative items that make a burst."
    )
    alert_cooldown_s: float = Field(
        default=1800, ge=0, description="Quiet time per subject after an alert (seconds)."
    )
    spike_min_count: int = Field(
        default=10, ge=1, description="Complaint spike: least messages of one intent in 5 min."
    )
    spike_factor: float = Field(
        default=3.0, gt=1, description="Complaint spike: times the intent's baseline count."
    )
    max_record_bytes: int = Field(
        default=1_000_000, ge=1024, description="Larger input records go to the DLQ."
    )
    replication_factor: int = Field(
        default=0,
        ge=0,
        description="Replicas of every topic and changelog streamsense creates; "
        "0 = min(3, brokers in the cluster).",
    )
    min_insync_replicas: int = Field(
        default=0,
        ge=0,
        description="min.insync.replicas of the topics streamsense creates; "
        "0 = replication factor - 1 (at least 1).",
    )
    max_input_message_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="Kafka max.message.bytes of created input topics.",
    )
    max_tickers_per_item: int = Field(
        default=20,
        ge=1,
        description="Tickers one news item is scored for; the excess is counted "
        "(tickers_truncated), not fanned out.",
    )
    fault_injection: Literal["", "crash_after_state_write", "segfault_on_marker"] = Field(
        default="",
        description="TEST ONLY: a point where the worker exits on purpose (crash tests); "
        "empty = off.",
    )
    config_dir: Path = Field(
        default=_PROJECT_ROOT / "deploy" / "config",
        description="Operator files: routing.toml, actions.toml, companies.toml.",
    )
    topic_news_raw: str = Field(default="news.raw", description="Input: financial news.")
    topic_messages_raw: str = Field(default="messages.raw", description="Input: customer messages.")
    topic_news_scored: str = Field(default="news.scored", description="Scored news, key ticker.")
    topic_messages_scored: str = Field(
        default="messages.scored", description="Scored messages, key customer id (internal)."
    )
    topic_tickets_routed: str = Field(default="tickets.routed", description="Routed tickets.")
    topic_recommendations: str = Field(default="recommendations", description="Next-best actions.")
    topic_alerts: str = Field(default="alerts", description="Alerts (ticker and complaint).")
    topic_feedback: str = Field(default="feedback", description="Labeled feedback.")
    topic_models_control: str = Field(default="models.control", description="Model promotions.")

    @field_validator(
        "kafka_security_protocol",
        "kafka_sasl_mechanism",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _blank_is_default(cls, value: object, info: ValidationInfo) -> object:
        """An empty variable means the default; ``sasl_ssl`` and ``scram-sha-512`` are accepted."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return cls.model_fields[str(info.field_name)].default
        upper = info.field_name in ("kafka_security_protocol", "kafka_sasl_mechanism")
        return value.strip().upper() if upper else value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        """Refuse a security set-up that cannot work, in one error naming every problem.

        Raised as :class:`ConfigurationError` (not a pydantic ``ValidationError``, whose
        message would echo every input, secrets included).
        """
        problems = _kafka_security_problems(self)
        if problems:
            raise ConfigurationError("Kafka security settings: " + "; ".join(problems))
        return self

    @classmethod
    def topic_fields(cls) -> list[str]:
        """Names of the fields that hold a topic name (``topic_*``, not the partition count)."""
        return [n for n in cls.model_fields if n.startswith("topic_") and n != "topic_partitions"]

    def dlq_topic(self, topic: str) -> str:
        """The dead-letter topic of an input topic."""
        return f"{topic}.dlq"

    def consumed_topics(self) -> list[str]:
        """Every topic the worker's agents consume: the inputs, then the internal topics."""
        return [
            self.topic_news_raw,
            self.topic_messages_raw,
            self.topic_feedback,
            self.topic_news_scored,
            self.topic_messages_scored,
            self.topic_tickets_routed,
        ]

    def all_topics(self) -> list[str]:
        """Every topic the pipeline reads or writes, dead-letter topics included (each
        consumed topic has one)."""
        consumed = self.consumed_topics()
        return [
            *consumed,
            self.topic_recommendations,
            self.topic_alerts,
            self.topic_models_control,
            *[self.dlq_topic(t) for t in consumed],
        ]

    def parallel_calls(self) -> int:
        """Model calls a batch runs at once (``inference_calls``, or one per core)."""
        return self.inference_calls or available_cores()

    def session_threads(self) -> int:
        """Intra-op threads of every session this process opens (0: ONNX Runtime's choice)."""
        if self.inference_threads:
            return self.inference_threads
        return 1 if self.parallel_calls() > 1 else 0

    def resolved_state_dir(self) -> Path:
        """The state directory as an absolute path, created if missing."""
        path = self.state_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


def _kafka_security_problems(s: Settings) -> list[str]:
    """What is wrong with the Kafka security settings (empty when they can work)."""
    protocol = s.kafka_security_protocol
    tls, sasl = protocol in ("SSL", "SASL_SSL"), protocol.startswith("SASL_")
    var = "STREAMSENSE_KAFKA_SECURITY_PROTOCOL"
    problems: list[str] = []
    if protocol != "PLAINTEXT" and not s.kafka_bootstrap:
        problems.append(
            f"{var}={protocol} needs STREAMSENSE_KAFKA_BOOTSTRAP (the local broker speaks "
            "PLAINTEXT only)"
        )
    tls_set = [
        name
        for name in ("cafile", "certfile", "keyfile", "key_password")
        if getattr(s, f"kafka_ssl_{name}") is not None
    ]
    sasl_set = [
        name
        for name, value in (
            ("mechanism", s.kafka_sasl_mechanism),
            ("username", s.kafka_sasl_username or None),
            ("password", s.kafka_sasl_password),
        )
        if value is not None
    ]
    if tls_set and not tls:
        names = ", ".join(f"STREAMSENSE_KAFKA_SSL_{n.upper()}" for n in tls_set)
        problems.append(f"{names} set, but {var}={protocol} uses no TLS (SSL or SASL_SSL does)")
    if sasl_set and not sasl:
        names = ", ".join(f"STREAMSENSE_KAFKA_SASL_{n.upper()}" for n in sasl_set)
        problems.append(
            f"{names} set, but {var}={protocol} uses no SASL (SASL_SSL or SASL_PLAINTEXT does)"
        )
    if sasl:
        missing = [n for n in ("mechanism", "username", "password") if n not in sasl_set]
        if s.kafka_sasl_password is not None and not s.kafka_sasl_password.get_secret_value():
            missing.append("password")
        if missing:
            names = " and ".join(f"STREAMSENSE_KAFKA_SASL_{n.upper()}" for n in missing)
            problems.append(f"{var}={protocol} needs {names}")
    for name in ("cafile", "certfile", "keyfile"):
        path: Path | None = getattr(s, f"kafka_ssl_{name}")
        if path is not None and not path.expanduser().is_file():
            problems.append(f"STREAMSENSE_KAFKA_SSL_{name.upper()}={path} is no file")
    if s.kafka_ssl_keyfile is not None and s.kafka_ssl_certfile is None:
        problems.append("STREAMSENSE_KAFKA_SSL_KEYFILE needs STREAMSENSE_KAFKA_SSL_CERTFILE")
    if s.kafka_ssl_key_password is not None and s.kafka_ssl_certfile is None:
        problems.append("STREAMSENSE_KAFKA_SSL_KEY_PASSWORD needs STREAMSENSE_KAFKA_SSL_CERTFILE")
    return problems
