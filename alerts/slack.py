"""Slack incoming webhooks: Block Kit with a plain-text fallback."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from streams.records import Alert, Delivery

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
_RETRIABLE = frozenset({429, 500, 502, 503, 504})


def _cut(text: str, limit: int) -> str:
    # Slack refuses a whole message (400) when one text field passes 3,000 characters.
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Escape Slack's control characters so posted text cannot mention or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(alert: Alert) -> dict[str, Any]:
    """Build the webhook payload: header, numbers, evidence with links, and a `text` fallback."""
    verb = "FIRING" if alert.state == "firing" else "RESOLVED"
    head = f"[{verb}] {alert.ticker}: {alert.rule} ({alert.severity})"
    fields = [
        f"*Mean score*\n{alert.value:+.3f}",
        f"*Threshold*\n{alert.threshold:+.3f}",
        f"*Documents*\n{alert.documents}",
        f"*Window*\n{alert.window_start:%Y-%m-%d %H:%M} to {alert.window_end:%Y-%m-%d %H:%M} UTC",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": escape(_cut(alert.explanation, 2_000))},
            "fields": [{"type": "mrkdwn", "text": f} for f in fields],
        },
    ]
    for doc in alert.evidence:
        title = escape(_cut(doc.title or doc.doc_id, 300))
        link = (
            f"<{escape(doc.url)}|{title}>" if doc.url.startswith(("http://", "https://")) else title
        )
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"{link}\n{escape(doc.source)} · {doc.published_at:%Y-%m-%d %H:%M} UTC · "
                        f"score {doc.score:+.2f}"
                    ),
                },
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"alert {alert.alert_id} · fired {alert.fired_at:%H:%M:%S} UTC",
                }
            ],
        }
    )
    fallback = (
        f"{head}: mean score {alert.value:+.3f} vs {alert.threshold:+.3f} "
        f"over {alert.documents} documents"
    )
    return {"text": escape(fallback), "blocks": blocks[:MAX_BLOCKS]}


class SlackWebhook:
    """Post alerts to a Slack incoming webhook, retrying 429 and 5xx with backoff.

    Args:
        url: the webhook URL (a secret).
        attempts: tries before giving up on one delivery.
    """

    name = "slack"

    def __init__(
        self, url: str, *, timeout: float = 10.0, attempts: int = 3, backoff: float = 0.5
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff

    def send(self, alert: Alert) -> Delivery:
        """Post once, with retries; report the last outcome."""
        payload = message(alert)
        detail = ""
        status: int | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                response = httpx.post(self._url, json=payload, timeout=self._timeout)
                status = response.status_code
                if response.is_success:
                    return Delivery(channel=self.name, ok=True, status=status)
                detail = response.text[:200]
                if status not in _RETRIABLE:
                    break
            except httpx.HTTPError as exc:
                status, detail = None, f"{type(exc).__name__}: {exc}"
            log.warning("slack delivery attempt %d failed: %s %s", attempt, status, detail)
            if attempt < self._attempts:
                time.sleep(self._backoff * 2 ** (attempt - 1))
        return Delivery(channel=self.name, ok=False, status=status, detail=detail)
