"""One settings object for the whole application; only the CLI builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting surveil reads, from `SURVEIL_*` variables or a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="SURVEIL_", env_file=".env", frozen=True, extra="ignore"
    )

    state_dir: Path = Field(Path("var"), description="Folder for Kafka data, chDB and run state.")
    shared_dir: Path = Field(
        Path("../shared"),
        description="Folder of third-party fixtures and datasets (read in place).",
    )
    kafka_broker: str = Field(
        "kafka://127.0.0.1:9092", description="Kafka bootstrap URL (kafka://host:port[,host:port])."
    )
    kafka_controller_port: int = Field(
        9093, description="KRaft controller port of the local broker."
    )
    kafka_heap: str = Field("1g", description="JVM heap of the local broker.")
    kafka_partitions: PositiveInt = Field(3, description="Partitions of each topic created.")
    clickhouse_dsn: str = Field(
        "", description="chdb:///abs/path or http(s)://host:8123; default chdb under state_dir."
    )
    clickhouse_database: str = Field("surveil", description="ClickHouse database name.")
    retention_days: NonNegativeInt = Field(
        0, description="Keep documents, scores and rollups this many days (0: forever)."
    )
    app_id: str = Field("surveil", description="Faust app id (consumer group and table prefix).")
    worker_role: Literal["all", "classify", "store"] = Field(
        "all",
        description=(
            "What a worker runs: all agents; classify only (docs.raw to docs.scored, no "
            "ClickHouse; several share docs.raw in one consumer group); or store (the store "
            "agents, the alerts agent and the query endpoint; it owns an embedded chDB)."
        ),
    )
    topic_prefix: str = Field("", description="Prefix of every topic name (a namespace).")
    web_port: int = Field(6066, description="Port of the worker's web server on 127.0.0.1.")
    query_timeout_s: PositiveFloat = Field(
        120.0, description="Seconds one query through surveil.quant or the worker may run."
    )
    query_max_memory_mb: int = Field(
        4096, ge=16, description="MiB of memory one query may use (ClickHouse max_memory_usage)."
    )
    query_max_rows: PositiveInt = Field(
        1_000_000, description="Rows one query may return (aggregate, or add a LIMIT)."
    )
    model: str = Field("lexicon", description="'lexicon' or the path of a trained artifact.")
    artifacts_dir: Path = Field(
        Path("artifacts"), description="Where `surveil train` writes model artifacts."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where models run: cuda when available under auto."
    )
    threads: PositiveInt | None = Field(None, description="CPU threads for the model.")
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        "auto", description="Model precision; auto picks the fastest that keeps accuracy."
    )
    classify_batch: PositiveInt = Field(64, description="Most documents scored in one batch.")
    classify_within: PositiveFloat = Field(0.5, description="Seconds to wait to fill a batch.")
    store_batch: PositiveInt = Field(
        500, description="Most records the store takes from a topic at a time."
    )
    store_insert_rows: PositiveInt = Field(
        5000,
        description="Most rows of one ClickHouse insert (from one topic partition).",
    )
    store_within: PositiveFloat = Field(
        0.5, description="Seconds a record waits at most for its ClickHouse insert to fill."
    )
    body_max_chars: int = Field(20_000, ge=100, description="Document bodies are cut to this.")
    signal_window_s: int = Field(
        86_400,
        ge=60,
        description="Window of the default rule, used when no rules file is set (event time).",
    )
    alert_threshold: float = Field(
        -0.3, ge=-1, le=1, description="Alert when a ticker's window mean score falls to this."
    )
    alert_min_docs: PositiveInt = Field(3, description="Documents a window needs before it alerts.")
    alert_slack_webhook: SecretStr | None = Field(
        None, description="Slack incoming-webhook URL for alerts."
    )
    sources_file: Path = Field(
        Path("sources.yaml"), description="The sources `surveil ingest run|once` fetches."
    )
    ingest_user_agent: str = Field(
        "surveil/0.1",
        description="User-Agent of every fetch; SEC hosts require one naming a contact "
        "(e.g. 'Example Corp risk-desk@example.com').",
    )
    ingest_timeout: PositiveFloat = Field(20.0, description="Seconds before a fetch times out.")
    ingest_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest response body accepted, in bytes."
    )
    ingest_retries: NonNegativeInt = Field(
        4, description="Retries of a fetch on 429, 5xx, timeouts."
    )
    ingest_rate: PositiveFloat = Field(2.0, description="Requests per second to any one host.")
    sec_rate: float = Field(
        10.0, gt=0, le=10, description="Requests per second to SEC hosts (SEC asks for <= 10)."
    )
    neardup_window_s: int = Field(
        172_800, ge=60, description="Near-duplicates are looked for this far apart (seconds)."
    )
    neardup_threshold: float = Field(
        0.7, gt=0, le=1, description="Similarity from which a document is a near-duplicate."
    )
    alert_rules: Path | None = Field(
        None,
        description="Alert rules YAML (see alerts.example.yaml); default: one threshold rule "
        "from alert_threshold and alert_min_docs.",
    )
    alert_group_wait_s: NonNegativeFloat = Field(
        30.0, description="Default wait before a new alert group is notified."
    )
    alert_group_interval_s: NonNegativeFloat = Field(
        300.0, description="Default least time between two notifications of a group."
    )
    alert_repeat_interval_s: NonNegativeFloat = Field(
        14_400.0, description="Default cooldown before a still-firing group repeats."
    )
    alert_outbox_days: PositiveInt = Field(
        30,
        description="Days the alert outbox keeps finished notifications, their attempts, acks "
        "and ended silences (after copying them to ClickHouse); a notification is not sent "
        "twice within this span.",
    )
    alert_late_after_s: PositiveFloat = Field(
        600.0,
        description="A notification still undelivered this long after it fired is reported "
        "(ERROR log, alerts.delivery_late, 'late' in alerts list) and copied to the fallback "
        "channel; it is still retried.",
    )
    alert_give_up_after_s: PositiveFloat = Field(
        86_400.0,
        description="Retry a failing notification (at most alert_retry_max_s apart) until "
        "this old; then it is kept as undeliverable.",
    )
    alert_retry_max_s: float = Field(
        120.0, ge=2, description="Longest wait between two delivery attempts (seconds)."
    )
    alert_fallback_channel: str = Field(
        "",
        description="Channel (slack or email) that also gets a notification once it is late "
        "on another channel (empty: none).",
    )
    alert_slack_bot_token: SecretStr | None = Field(
        None, description="Slack bot token (chat.postMessage) instead of a webhook."
    )
    alert_slack_channel: str = Field("", description="Channel for the Slack bot token.")
    smtp_host: str = Field("", description="SMTP server for e-mail alerts (empty: no e-mail).")
    smtp_port: int = Field(587, description="SMTP port.")
    smtp_user: str | None = Field(None, description="SMTP user name.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("", description="Sender address of e-mail alerts.")
    smtp_to: str = Field("", description="Recipients of e-mail alerts, comma-separated.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ssl: bool = Field(False, description="Connect to SMTP over TLS from the start (465).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of surveil's own messages."
    )

    @field_validator("kafka_broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not value.startswith("kafka://"):
            msg = f"must start with kafka://, e.g. kafka://127.0.0.1:9092; got {value!r}"
            raise ValueError(msg)
        for server in value.removeprefix("kafka://").split(","):
            host, colon, port = server.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                msg = (
                    f"expected kafka://host:port[,host:port], e.g. kafka://127.0.0.1:9092; "
                    f"{server!r} in {value!r} has no valid host:port"
                )
                raise ValueError(msg)
        return value

    @property
    def bootstrap_servers(self) -> str:
        """The broker list without the scheme, as Kafka clients want it."""
        return self.kafka_broker.removeprefix("kafka://")

    @property
    def broker_port(self) -> int:
        """Port of the first broker in the list."""
        first = self.bootstrap_servers.split(",")[0]
        return int(first.rsplit(":", 1)[1])

    @property
    def dsn(self) -> str:
        """The ClickHouse DSN, defaulting to an embedded chDB folder in the state dir."""
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{(self.state_dir / 'clickhouse').resolve()}"

    @property
    def kafka_home(self) -> Path:
        """Folder of the local broker's data, config and logs."""
        return (self.state_dir / "kafka").resolve()
