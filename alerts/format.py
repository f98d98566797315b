"""How every notifier words an alert: its headline, times, numbers and document lines.

Plain text only; each notifier escapes it for its own medium (Slack's entities, HTML).
"""

from __future__ import annotations

from datetime import UTC, datetime

from streams.records import Alert, DocRef, utcnow


def one_line(text: str) -> str:
    """Fold every run of white space, line breaks included, into one space."""
    return " ".join(text.split())


def duration(seconds: float) -> str:
    """Render a duration for people: "45s", "2m 13s", "1h 02m", "3d 4h"."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def latency(alert: Alert, now: datetime | None = None) -> str | None:
    """Return the publication-to-alert latency, or None when the trigger time is unknown.

    Args:
        now: when the alert is sent; the current time by default.
    """
    if alert.trigger_published_at is None:
        return None
    return duration(((now or utcnow()) - alert.trigger_published_at).total_seconds())


def headline(alert: Alert) -> str:
    """Return the one-line summary: "[FIRING] AAPL mean_score_below (critical)"."""
    verb = "FIRING" if alert.state == "firing" else "RESOLVED"
    return one_line(f"[{verb}] {alert.ticker} {alert.rule} ({alert.severity})")


def stamp(at: datetime) -> str:
    """Render a moment in UTC to the second: "2026-03-02 13:00:00 UTC"."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def span(start: datetime, end: datetime) -> str:
    """Render a window in UTC, with the end's date when it differs from the start's.

    "2026-03-02 12:00 to 13:00 UTC", "2026-03-01 14:10 to 2026-03-02 14:10 UTC".
    """
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M} to {until} UTC"


def web_url(url: str) -> str | None:
    """Return the URL when it is http(s), else None (no javascript:, file: or mailto:)."""
    return url if url.startswith(("http://", "https://")) else None


def numbers(alert: Alert) -> list[tuple[str, str]]:
    """Return the measured numbers as (label, value), score first and window last."""
    rows = [("Score", f"{alert.value:+.3f}")]
    if alert.zscore is not None:
        rows.append(("Z-score", f"{alert.zscore:+.2f}"))
    return [
        *rows,
        ("Threshold", f"{alert.threshold:+.3f}"),
        ("Documents", str(alert.documents)),
        ("Window", span(alert.window_start, alert.window_end)),
    ]


def doc_line(doc: DocRef, source: str) -> str:
    """Return where and when a document came out, and its score.

    Args:
        source: the source's name as the notifier shows it (cut, folded).
    """
    published = doc.published_at.astimezone(UTC)
    return f"{source} · {published:%Y-%m-%d %H:%M} UTC · score {doc.score:+.2f}"
