"""The one exception tree of surveil.

```
SurveilError
 +-- ConfigError      a setting or file that cannot work (missing Java, bad DSN)
 +-- BrokerError      the local Kafka broker failed to start, stop or answer
 +-- SourceError      a feed or API could not be fetched
 +-- DecodeError      an input could not be parsed into a record (goes to docs.dlq)
 +-- ModelError       a classifier could not be loaded or run
 +-- StoreError       ClickHouse refused a query or an insert
 +-- DeliveryError    a notifier (Slack, email) could not deliver
```

Third-party errors are converted at the boundary: ``raise StoreError(msg) from exc``.
This module imports nothing, so every package may use it, `models/` included.
"""

from __future__ import annotations


class SurveilError(Exception):
    """Base of every error surveil raises on purpose."""


class ConfigError(SurveilError):
    """A setting, a file or a required tool makes the requested work impossible."""


class BrokerError(SurveilError):
    """The local Kafka broker could not be started, stopped or reached."""


class SourceError(SurveilError):
    """A source could not be fetched."""


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


class DeliveryError(SurveilError):
    """A notifier could not deliver an alert."""
