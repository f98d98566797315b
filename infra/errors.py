"""The one exception tree of surveil.

```
SurveilError
 +-- ConfigError      a setting or file that cannot work (missing Java, bad DSN, an
 |    |               unreadable input file)
 |    +-- ProblemsError    a YAML file has problems; .problems lists every one
 |         +-- RulesError  the alert rules file is invalid
 |         +-- SourcesError  the sources file is invalid
 +-- BrokerError      Kafka failed to start, stop or answer
 +-- SourceError      a source could not be fetched; .reason says why, as data
 +-- DecodeError      an input could not be parsed into a record (goes to docs.dlq)
 +-- ModelError       a classifier could not be loaded or run
 +-- StoreError       ClickHouse refused a query, an insert or a migration
 +-- StateError       a local state file (the SQLite outbox, the ingest state, a
 |                    checkpoint) cannot be opened, read or written
 +-- DeliveryError    a notifier (Slack, email) could not deliver; .permanent when no
                      retry will help
```

Third-party errors are converted at the boundary: ``raise StoreError(msg) from exc``.
This module imports nothing, so every package may use it, `models/` included.
"""

from __future__ import annotations


class SurveilError(Exception):
    """Base of every error surveil raises on purpose."""


class ConfigError(SurveilError):
    """A setting, a file or a required tool makes the requested work impossible."""


class ProblemsError(ConfigError):
    """A file has problems; ``problems`` lists every one as ``FILE:LINE: FIELD: what``.

    Args:
        problems: the messages, in file order; the message is them, one a line.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class RulesError(ProblemsError):
    """The alert rules file has problems."""


class SourcesError(ProblemsError):
    """The sources file has problems."""


class BrokerError(SurveilError):
    """The local Kafka broker could not be started, stopped or reached."""


class SourceError(SurveilError):
    """A source could not be fetched.

    Args:
        detail: what exactly went wrong, for a person (the message).
        reason: a short machine word: ``timeout``, ``http_status``, ``too_large``,
            ``refused``, ``not_found``, ``retry_after_too_long``, ``bad_url``,
            ``unreadable`` or ``error`` when nothing more precise is known.
        status: the HTTP status of the answer, if there was one.
        retry_after: the wait in seconds the server asked for, if it did.
    """

    def __init__(
        self,
        detail: str,
        *,
        reason: str = "error",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class DecodeError(SurveilError):
    """An input could not be turned into a typed record.

    Args:
        reason: a short machine-friendly reason, e.g. ``missing_field``.
        detail: what exactly was wrong, for a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ModelError(SurveilError):
    """A classifier could not be loaded or failed on a batch."""


class StoreError(SurveilError):
    """ClickHouse refused a query, an insert or a migration."""


class StateError(SurveilError):
    """A local state file cannot be opened, read or written (never guess its content)."""


class DeliveryError(SurveilError):
    """A notifier could not deliver an alert.

    Args:
        detail: what went wrong, for a person (the message).
        channel: the notifier's channel, e.g. ``slack``; empty when unknown.
        permanent: no retry will help (a 4xx other than 408 and 429, a refused address).
        retry_after: the wait in seconds the other side asked for, if it did.
        status: the receiver's status code (HTTP, SMTP), if it answered.
    """

    def __init__(
        self,
        detail: str,
        *,
        channel: str = "",
        permanent: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.channel = channel
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status
