"""Slack: a Block Kit message with a plain `text` fallback, by incoming webhook or bot token.

Untrusted text (document titles, explanations, sources) reaches Slack in one of two ways:

- in ``plain_text`` objects (the header, the explanation, the context line), which Slack
  never formats, links or turns into mentions; only ``&``, ``<`` and ``>`` are escaped,
  as Slack asks of every text field;
- in ``mrkdwn`` objects only where a link is needed (the evidence list) and in the
  top-level ``text`` fallback, through `inert`: escaped, with ``verbatim`` set so bare
  URLs and ``#channels`` are not auto-linked, and the formatting markers ``* _ ~ ` >``
  swapped for look-alikes, since Slack's mrkdwn has no escape character.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from streams.records import Alert, Delivery, DocRef, utcnow

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
_RETRIABLE = frozenset({429, 500, 502, 503, 504})
# Look-alikes Slack does not read as markup (the set jsx-slack uses in link labels).
_LOOKALIKES = str.maketrans("*_~`＊＿｀", "∗ˍ∼ˋ﹡⸏ˋ")
_QUOTE = re.compile(r"^(&gt;|＞)", re.MULTILINE)
_SPACE = re.compile(r"\s+")


def _line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def escape(text: str) -> str:
    """Escape Slack's control characters so posted text cannot mention or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: str) -> str:
    """Escape text for mrkdwn and swap its formatting markers for look-alikes."""
    # A soft hyphen before a leading '>' keeps the line from turning into a quote.
    return _QUOTE.sub("\u00ad\\1", escape(text).translate(_LOOKALIKES))


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
    return _line(f"[{verb}] {alert.ticker} {alert.rule} ({alert.severity})")


def web_url(url: str) -> str | None:
    """Return the URL when it is http(s), else None (no javascript:, file: or mailto:)."""
    return url if url.startswith(("http://", "https://")) else None


def _fit(text: str, limit: int, render: Callable[[str], str] = escape) -> str:
    """Render text, cutting the source until the rendered form fits within limit characters."""
    out = render(text)
    while len(out) > limit:
        text = text[: max(0, len(text) - (len(out) - limit) - 1)]
        out = render(text + "…")
    return out


def _plain(text: str, limit: int = 3_000) -> dict[str, Any]:
    return {"type": "plain_text", "text": _fit(text, limit), "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _numbers(alert: Alert) -> list[str]:
    numbers = [f"*Score*\n{alert.value:+.3f}"]
    if alert.zscore is not None:
        numbers.append(f"*Z-score*\n{alert.zscore:+.2f}")
    numbers += [
        f"*Threshold*\n{alert.threshold:+.3f}",
        f"*Documents*\n{alert.documents}",
        f"*Window*\n{alert.window_start:%Y-%m-%d %H:%M} to {alert.window_end:%H:%M} UTC",
    ]
    return numbers


def _evidence(doc: DocRef) -> dict[str, Any]:
    title = _fit(_line(doc.title or doc.doc_id), 600, inert)
    url = web_url(doc.url)
    # '|' would end the link target early; the URL is otherwise only escaped.
    link = f"<{escape(url).replace('|', '%7C')}|{title}>" if url else title
    meta = f"{_fit(_line(doc.source), 300, inert)} · {doc.published_at:%Y-%m-%d %H:%M} UTC"
    return {"type": "section", "text": _mrkdwn(f"{link}\n{meta} · score {doc.score:+.2f}")}


def _context(alert: Alert, now: datetime | None) -> str:
    parts = [f"alert {alert.alert_id}", f"fired {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC"]
    if alert.sources:
        parts.append("sources: " + ", ".join(alert.sources))
    if alert.model_version:
        parts.append(f"model {alert.model_version}")
    lag = latency(alert, now)
    if lag is not None:
        parts.append(f"published to alert: {lag}")
    return _line(" · ".join(parts))


def fallback(alert: Alert, now: datetime | None = None) -> str:
    """Return the plain summary notifications and screen readers show instead of the blocks.

    Args:
        now: when the alert is sent; the current time by default.
    """
    z = f" (z {alert.zscore:+.2f})" if alert.zscore is not None else ""
    lag = latency(alert, now)
    lag = f"; published to alert {lag}" if lag is not None else ""
    summary = escape(
        f"{headline(alert)}: score {alert.value:+.3f}{z} vs threshold {alert.threshold:+.3f} "
        f"over {alert.documents} documents{lag}"
    )
    # The rule and ticker are our own names; only the explanation can carry markup.
    explanation = _line(alert.explanation)
    return f"{summary}. {_fit(explanation, 2_000, inert)}" if explanation else summary


def message(alert: Alert, *, now: datetime | None = None, top: int = 10) -> dict[str, Any]:
    """Build the Block Kit payload: header, numbers, explanation, evidence, context, fallback.

    Args:
        now: when the alert is sent, for the latency; the current time by default.
        top: most evidence documents linked; the message also stays within 50 blocks.
    """
    now = now or utcnow()
    head: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(headline(alert), 150)},
        {"type": "section", "fields": [_mrkdwn(f) for f in _numbers(alert)]},
    ]
    if alert.explanation.strip():
        head.append({"type": "section", "text": _plain(alert.explanation)})
    tail = [{"type": "context", "elements": [_plain(_context(alert, now), 2_000)]}]
    room = MAX_BLOCKS - len(head) - len(tail)
    shown = min(len(alert.evidence), max(0, top))
    if shown < len(alert.evidence) or shown > room:
        shown = min(shown, room - 1)  # one block says how many were left out
    body = [_evidence(doc) for doc in alert.evidence[:shown]]
    if shown < len(alert.evidence):
        more = f"+{len(alert.evidence) - shown} more documents"
        body.append({"type": "context", "elements": [_plain(more)]})
    return {"text": fallback(alert, now), "blocks": [*head, *body, *tail]}


@dataclass(frozen=True)
class _Reply:
    """One attempt's outcome, whatever the transport."""

    ok: bool
    status: int | None
    detail: str = ""
    retriable: bool = False
    retry_after: float | None = None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")  # httpx headers ignore case; the SDK's are lowered
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def _deliver(
    channel: str, attempt: Callable[[], _Reply], retries: int, backoff: float, max_wait: float
) -> Delivery:
    """Run attempts until one succeeds, fails for good, or the retries run out."""
    tries = 1 + max(0, retries)
    for number in range(1, tries + 1):
        reply = attempt()
        if reply.ok:
            return Delivery(channel=channel, ok=True, status=reply.status, detail=reply.detail)
        log.warning(
            "%s delivery attempt %d failed: %s %s", channel, number, reply.status, reply.detail
        )
        wait = backoff * 2 ** (number - 1) if reply.retry_after is None else reply.retry_after
        if not reply.retriable or number == tries or wait > max_wait:
            break
        time.sleep(wait)
    detail = reply.detail
    if reply.retry_after is not None:
        detail = f"retry after {math.ceil(reply.retry_after)}s: {detail}"
    return Delivery(
        channel=channel,
        ok=False,
        status=reply.status,
        detail=detail,
        retry_after=reply.retry_after,
    )


class SlackWebhook:
    """Post alerts to a Slack incoming webhook.

    Args:
        url: the webhook URL (a secret).
        timeout: seconds before one post times out.
        retries: posts after the first on 429, 5xx or a transport error; 0 leaves retrying
            to the caller (an outbox).
        backoff: first wait between posts in seconds, doubled each time; a Retry-After
            header takes its place.
        max_wait: longest wait between posts; a longer Retry-After ends the delivery.
    """

    name = "slack"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 0,
        backoff: float = 0.5,
        max_wait: float = 30.0,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_wait = max_wait

    def __repr__(self) -> str:
        return f"SlackWebhook(retries={self._retries})"  # the URL is a secret

    def send(self, alert: Alert) -> Delivery:
        """Post the alert; report the last attempt's outcome."""
        payload = message(alert)

        def attempt() -> _Reply:
            try:
                response = httpx.post(self._url, json=payload, timeout=self._timeout)
            except httpx.HTTPError as exc:
                return _Reply(False, None, f"{type(exc).__name__}: {exc}", retriable=True)
            status = response.status_code
            if response.is_success:
                return _Reply(True, status)
            return _Reply(
                False,
                status,
                response.text[:200],
                retriable=status in _RETRIABLE,
                retry_after=_retry_after(response.headers),
            )

        return _deliver(self.name, attempt, self._retries, self._backoff, self._max_wait)


class SlackBot:
    """Post alerts with a bot token to chat.postMessage (slack_sdk when installed, else httpx).

    Args:
        token: the bot token, xoxb-... (a secret).
        channel: the channel id or name to post to.
        base_url: the Web API root, replaced in tests.
        timeout: seconds before one call times out.
        retries: calls after the first on 429, 5xx or a transport error.
        backoff: first wait between calls in seconds, doubled; Retry-After takes its place.
        max_wait: longest wait between calls; a longer Retry-After ends the delivery.
    """

    name = "slack"

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str = "https://slack.com/api",
        timeout: float = 10.0,
        retries: int = 0,
        backoff: float = 0.5,
        max_wait: float = 30.0,
    ) -> None:
        self._token = token
        self._channel = channel
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_wait = max_wait
        try:
            self._sdk: Any = importlib.import_module("slack_sdk")
        except ImportError:
            self._sdk = None

    def __repr__(self) -> str:
        return f"SlackBot(channel={self._channel!r}, retries={self._retries})"

    def send(self, alert: Alert) -> Delivery:
        """Post the alert; a reply of ``{"ok": false}`` is a failure with Slack's error."""
        payload = {
            "channel": self._channel,
            **message(alert),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        post = self._post_sdk if self._sdk is not None else self._post_httpx

        def attempt() -> _Reply:
            return post(payload)

        return _deliver(self.name, attempt, self._retries, self._backoff, self._max_wait)

    def _post_httpx(self, payload: dict[str, Any]) -> _Reply:
        try:
            response = httpx.post(
                f"{self._base_url}/chat.postMessage",
                json=payload,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            return _Reply(False, None, f"{type(exc).__name__}: {exc}", retriable=True)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {"ok": False, "error": response.text[:200]}
        return _reply(response.status_code, data, response.headers)

    def _post_sdk(self, payload: dict[str, Any]) -> _Reply:
        errors = importlib.import_module("slack_sdk.errors")
        # retry_handlers=[]: retrying is this class's business, with the same policy.
        client = self._sdk.WebClient(
            token=self._token,
            base_url=f"{self._base_url}/",
            timeout=math.ceil(self._timeout),
            retry_handlers=[],
        )
        try:
            response = client.chat_postMessage(**payload)
        except errors.SlackApiError as exc:
            response = exc.response
        except (errors.SlackClientError, OSError) as exc:
            return _Reply(False, None, f"{type(exc).__name__}: {exc}", retriable=True)
        data = response.data if isinstance(response.data, dict) else {"ok": False}
        headers = {str(k).lower(): str(v) for k, v in dict(response.headers).items()}
        return _reply(int(response.status_code), data, headers)


def _reply(status: int, data: Mapping[str, Any], headers: Mapping[str, str]) -> _Reply:
    """Read a chat.postMessage answer: HTTP status, then Slack's own ``ok`` and ``error``."""
    if 200 <= status < 300 and data.get("ok") is True:
        return _Reply(True, status, f"ts={data.get('ts', '')}")
    error = str(data.get("error") or f"http {status}")
    return _Reply(
        False,
        status,
        error,
        retriable=status in _RETRIABLE or error == "ratelimited",
        retry_after=_retry_after(headers),
    )
