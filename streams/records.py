"""Typed records that travel between stages, one per topic.

Every record is a frozen pydantic model with timezone-aware UTC datetimes. On the wire
they are JSON objects (``record.to_json()``); ``Record.parse(payload)`` turns a payload
back into a record or raises `DecodeError` naming the field at fault.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from infra.errors import DecodeError

Kind = Literal["news", "filing", "social"]
Label = Literal["negative", "neutral", "positive"]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def stable_id(*parts: str) -> str:
    """Return a stable 32-hex-digit id for the given parts (sha256, truncated)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


class Record(BaseModel):
    """Base of every record: frozen, strict about unknown fields, JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def parse(cls, payload: Any) -> Self:
        """Validate a decoded JSON payload into this record.

        Raises:
            DecodeError: with reason ``invalid_<record>`` and the fields at fault.
        """
        reason = f"invalid_{cls.__name__.lower()}"
        if not isinstance(payload, dict):
            msg = f"expected a JSON object, got {type(payload).__name__}"
            raise DecodeError(reason, msg)
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise DecodeError(reason, problems) from exc

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-ready dict of this record."""
        return self.model_dump(mode="json")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class Document(Record):
    """A fetched document on docs.raw (key: doc_id)."""

    doc_id: str = Field(min_length=8, max_length=64)
    source: str = Field(min_length=1)
    kind: Kind
    url: str = ""
    title: str = ""
    body: str = ""
    published_at: AwareDatetime
    fetched_at: AwareDatetime
    tickers: tuple[str, ...] = ()
    language: str = "en"
    meta: dict[str, Any] = Field(default_factory=dict)
    dup_of: str | None = None

    _utc = field_validator("published_at", "fetched_at")(_as_utc)

    @property
    def text(self) -> str:
        """The text a classifier reads: the title, then the body."""
        return f"{self.title}\n{self.body}".strip()


class Scored(Record):
    """A (document, ticker) pair with its scores, on docs.scored (key: ticker)."""

    doc_id: str
    ticker: str
    kind: Kind
    source: str
    title: str = ""
    url: str = ""
    published_at: AwareDatetime
    fetched_at: AwareDatetime
    label: Label
    p_negative: float = Field(ge=0, le=1)
    p_neutral: float = Field(ge=0, le=1)
    p_positive: float = Field(ge=0, le=1)
    score: float = Field(ge=-1, le=1)
    event_type: str = "none"
    event_prob: float = Field(0.0, ge=0, le=1)
    relevance: float = Field(ge=0, le=1)
    model_version: str
    scored_at: AwareDatetime
    dup_of: str | None = None
    # Where the document was on docs.raw (partition, offset) and this ticker's place in it:
    # the store drops a classify redelivery by it (streams.ledger). None outside Kafka.
    origin: tuple[int, int, int] | None = None

    _utc = field_validator("published_at", "fetched_at", "scored_at")(_as_utc)


class DocRef(Record):
    """A document that contributed to an alert."""

    doc_id: str
    title: str
    url: str
    source: str
    published_at: AwareDatetime
    score: float


class Delivery(Record):
    """The outcome of one attempt to deliver an alert."""

    channel: str
    ok: bool
    status: int | None = None
    detail: str = ""
    at: AwareDatetime = Field(default_factory=utcnow)
    retry_after: float | None = Field(
        default=None, ge=0, description="Seconds the receiver asked to wait before trying again."
    )


class Alert(Record):
    """A fired or resolved alert, on alerts (key: ticker)."""

    alert_id: str
    fingerprint: str
    rule: str
    severity: Literal["info", "warning", "critical"]
    ticker: str
    fired_at: AwareDatetime
    value: float
    threshold: float
    window_start: AwareDatetime
    window_end: AwareDatetime
    documents: int
    explanation: str
    evidence: tuple[DocRef, ...] = ()
    state: Literal["firing", "resolved"]
    deliveries: tuple[Delivery, ...] = ()
    kind: str = "threshold"
    zscore: float | None = None
    model_version: str = ""
    sources: tuple[str, ...] = ()
    trigger_published_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = Field(
        default=None,
        description="When the condition cleared, on the clock of fired_at; None while firing.",
    )


class Rejected(Record):
    """An input a stage could not use, on docs.dlq, with the reason and the original payload."""

    reason: str
    detail: str
    stage: str
    source: str = ""
    payload: str
    topic: str = ""
    partition: int | None = None
    offset: int | None = None
    rejected_at: AwareDatetime = Field(default_factory=utcnow)
