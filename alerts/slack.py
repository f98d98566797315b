"""Slack: a Block Kit message with a plain `text` fallback, by incoming webhook or bot token.

Untrusted text (document titles, explanations, sources) reaches Slack only in
``plain_text`` objects, which Slack never formats, links or turns into mentions, and in the
top-level ``text`` fallback, sent with ``"mrkdwn": false``. In both only ``&``, ``<`` and
``>`` are escaped, as Slack asks of every text field, so what people copy out of Slack is
what the source said. The only ``mrkdwn`` objects are ours: the numbers, and each document's
link, whose label is the URL's host name.

Every payload stays within Block Kit's limits (`MAX_BLOCKS`, `MAX_HEADER`, `MAX_SECTION`,
`MAX_CONTEXT`, `MAX_URL`, `MAX_MESSAGE`): long text is cut with "…", a URL too long to link
loses its fragment or its link, and evidence that does not fit is counted as "+N more".
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerts.base import failed
from alerts.format import doc_line, headline, latency, numbers, one_line, stamp, web_url
from infra.errors import DeliveryError
from infra.retry import Backoff, retry_after_seconds
from streams.records import Alert, Delivery, DocRef, utcnow

log = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3_000
MAX_CONTEXT = 2_000
MAX_URL = 1_000
# Slack documents 3,000 per section but refuses or cuts whole messages well before 50 of
# them: about 13k characters of text in practice. Counted over every text and link URL.
MAX_MESSAGE = 12_000
MAX_TITLE = 300
MAX_SOURCE = 100
_RETRIABLE = frozenset({429, 500, 502, 503, 504})
_HOST = re.compile(r"^[a-z0-9.-]{1,253}$")


def escape(text: str) -> str:
    """Escape Slack's control characters so posted text cannot mention or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _fit(text: str, limit: int) -> str:
    """Escape text, cutting the source until the escaped form fits within limit characters."""
    out = escape(text)
    while len(out) > limit:
        # Cut the source, never the escaped form, so no entity is left half written.
        text = text[: max(0, len(text) - (len(out) - limit) - 1)]
        out = escape(text + "…")
    return out


def _plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "plain_text", "text": _fit(text, limit) or "-", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _numbers(alert: Alert) -> list[str]:
    rows = numbers(alert)
    if alert.resolved_at is not None:
        rows.append(("Resolved", stamp(alert.resolved_at)))
    return [f"*{label}*\n{value}" for label, value in rows]


def link_url(url: str) -> str | None:
    """Return a web URL short enough to link (without its fragment if need be), else None."""
    if web_url(url) is None:
        return None
    if len(url) > MAX_URL:
        url = url.partition("#")[0]  # the fragment never reaches the server
    return url if len(url) <= MAX_URL else None


def _evidence(doc: DocRef) -> list[dict[str, Any]]:
    """Two blocks per document: its title, then its link and where and when it came out."""
    title = one_line(doc.title) or one_line(doc.doc_id) or "(untitled)"
    meta = doc_line(doc, _cut(one_line(doc.source), MAX_SOURCE))
    elements = []
    url = link_url(doc.url)
    if url is not None:
        host = (urlsplit(url).hostname or "").removeprefix("www.")
        # The label is ours (a host name of plain characters), so mrkdwn cannot misread it.
        label = host if _HOST.match(host) else "link"
        # '|' would end the link target early; the URL is otherwise only escaped.
        elements.append(_mrkdwn(f"<{escape(url).replace('|', '%7C')}|{label}>"))
    elif web_url(doc.url) is not None:
        meta += f" · link left out: {len(doc.url):,} characters"
    elements.append(_plain(meta, MAX_CONTEXT))
    return [
        {"type": "section", "text": _plain(title, MAX_TITLE)},
        {"type": "context", "elements": elements},
    ]


def _context(alert: Alert, now: datetime | None) -> str:
    parts = [f"alert {alert.alert_id}", f"fired {stamp(alert.fired_at)}"]
    if alert.resolved_at is not None:
        parts.append(f"resolved {stamp(alert.resolved_at)}")
    if alert.sources:
        parts.append("sources: " + ", ".join(alert.sources))
    if alert.model_version:
        parts.append(f"model {alert.model_version}")
    lag = latency(alert, now)
    if lag is not None:
        parts.append(f"published to alert: {lag}")
    return one_line(" · ".join(parts))


def fallback(alert: Alert, now: datetime | None = None) -> str:
    """Return the plain summary notifications and screen readers show instead of the blocks.

    Args:
        now: when the alert is sent; the current time by default.
    """
    z = f" (z {alert.zscore:+.2f})" if alert.zscore is not None else ""
    lag = latency(alert, now)
    lag = f"; published to alert {lag}" if lag is not None else ""
    cleared = f"; resolved {stamp(alert.resolved_at)}" if alert.resolved_at is not None else ""
    summary = _fit(
        f"{headline(alert)}: score {alert.value:+.3f}{z} vs threshold {alert.threshold:+.3f} "
        f"over {alert.documents} documents{lag}{cleared}",
        MAX_CONTEXT,
    )
    explanation = one_line(alert.explanation)
    return f"{summary}. {_fit(explanation, MAX_CONTEXT)}" if explanation else summary


def _strings(value: Any) -> Iterator[str]:
    """Every text and URL in a block, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("text", "url") and isinstance(item, str):
                yield item
            else:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def size(blocks: list[dict[str, Any]]) -> int:
    """Return the characters of text and link URLs in blocks, the measure `MAX_MESSAGE` caps."""
    return sum(len(text) for text in _strings(blocks))


def message(alert: Alert, *, now: datetime | None = None, top: int = 10) -> dict[str, Any]:
    """Build the Block Kit payload: header, numbers, explanation, evidence, context, fallback.

    Args:
        now: when the alert is sent, for the latency; the current time by default.
        top: most evidence documents shown; fewer when they would not fit in the
            message's 50 blocks or `MAX_MESSAGE` characters, the rest counted.
    """
    now = now or utcnow()
    head: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(headline(alert), MAX_HEADER)},
        {"type": "section", "fields": [_mrkdwn(f) for f in _numbers(alert)]},
    ]
    if alert.explanation.strip():
        head.append({"type": "section", "text": _plain(alert.explanation)})
    tail = [{"type": "context", "elements": [_plain(_context(alert, now), MAX_CONTEXT)]}]
    # Each document takes two blocks; one more says how many were left out.
    room = (MAX_BLOCKS - len(head) - len(tail) - 1) // 2
    docs = [_evidence(doc) for doc in alert.evidence[: max(0, min(top, room))]]

    def more() -> list[dict[str, Any]]:
        left = len(alert.evidence) - len(docs)
        text = f"+{left} more documents"
        return [{"type": "context", "elements": [_plain(text)]}] if left else []

    def body() -> list[dict[str, Any]]:
        return [block for pair in docs for block in pair] + more()

    while docs and size([*head, *body(), *tail]) > MAX_MESSAGE:
        docs.pop()
    blocks = [*head, *body(), *tail]
    return {"text": fallback(alert, now), "mrkdwn": False, "blocks": blocks}


@dataclass(kw_only=True)
class _Poster:
    """What both ways of posting share: the timeout, and retrying within one delivery.

    Args:
        timeout: seconds before one post times out.
        retries: posts after the first on 429, 5xx or a transport error; 0 leaves retrying
            to the caller (an outbox).
        backoff: the first wait's ceiling in seconds, doubled each time (full jitter); a
            Retry-After is a floor.
        max_wait: longest wait between posts; a longer Retry-After ends the delivery.
    """

    name = "slack"
    timeout: float = 10.0
    retries: int = 0
    backoff: float = 0.5
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        self._policy = Backoff(self.backoff, self.max_wait)  # the one retry policy

    def _deliver(self, attempt: Callable[[], Delivery]) -> Delivery:
        """Run attempts until one succeeds, fails for good, or the retries run out."""
        tries = 1 + max(0, self.retries)
        for number in range(1, tries + 1):
            try:
                return attempt()
            except DeliveryError as exc:
                error = exc
            log.warning(
                "slack delivery attempt %d failed: %s %s", number, error.status, error.detail
            )
            wait = self._policy.delay(number, error.retry_after)
            if error.permanent or number == tries or wait > self.max_wait:
                break
            time.sleep(wait)
        return failed(error)


def _transport_error(exc: Exception) -> DeliveryError:
    return DeliveryError(f"{type(exc).__name__}: {exc}", channel="slack")


def _refused(
    status: int, detail: str, headers: Mapping[str, str], *, retriable: bool = False
) -> DeliveryError:
    """A refusal: worth retrying on 429 and 5xx, after the Retry-After the headers carry."""
    return DeliveryError(
        detail,
        channel="slack",
        status=status,
        permanent=not (retriable or status in _RETRIABLE),
        # httpx headers ignore case; the SDK's are lowered
        retry_after=retry_after_seconds(headers.get("retry-after"), utcnow()),
    )


@dataclass
class SlackWebhook(_Poster):
    """Post alerts to a Slack incoming webhook.

    Args:
        url: the webhook URL (a secret, never shown).
    """

    url: str = field(repr=False)

    def send(self, alert: Alert) -> Delivery:
        """Post the alert; report the last attempt's outcome."""
        payload = message(alert)

        def attempt() -> Delivery:
            try:
                response = httpx.post(self.url, json=payload, timeout=self.timeout)
            except httpx.HTTPError as exc:
                raise _transport_error(exc) from exc
            if not response.is_success:
                raise _refused(response.status_code, response.text[:200], response.headers)
            return Delivery(channel=self.name, ok=True, status=response.status_code)

        return self._deliver(attempt)


@dataclass
class SlackBot(_Poster):
    """Post alerts with a bot token to chat.postMessage (slack_sdk when installed, else httpx).

    Args:
        token: the bot token, xoxb-... (a secret, never shown).
        channel: the channel id or name to post to.
        base_url: the Web API root, replaced in tests.
    """

    token: str = field(repr=False)
    channel: str
    base_url: str = field(default="https://slack.com/api", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.base_url = self.base_url.rstrip("/")
        try:
            self._sdk: Any = importlib.import_module("slack_sdk")
        except ImportError:
            self._sdk = None

    def send(self, alert: Alert) -> Delivery:
        """Post the alert; a reply of ``{"ok": false}`` is a failure with Slack's error."""
        payload = {
            "channel": self.channel,
            **message(alert),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        post = self._post_sdk if self._sdk is not None else self._post_httpx
        return self._deliver(lambda: post(payload))

    def _post_httpx(self, payload: dict[str, Any]) -> Delivery:
        try:
            response = httpx.post(
                f"{self.base_url}/chat.postMessage",
                json=payload,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {"ok": False, "error": response.text[:200]}
        return _answer(response.status_code, data, response.headers)

    def _post_sdk(self, payload: dict[str, Any]) -> Delivery:
        errors = importlib.import_module("slack_sdk.errors")
        # retry_handlers=[]: retrying is this class's business, with the same policy.
        client = self._sdk.WebClient(
            token=self.token,
            base_url=f"{self.base_url}/",
            timeout=math.ceil(self.timeout),
            retry_handlers=[],
        )
        try:
            response = client.chat_postMessage(**payload)
        except errors.SlackApiError as exc:
            response = exc.response
        except (errors.SlackClientError, OSError) as exc:
            raise _transport_error(exc) from exc
        data = response.data if isinstance(response.data, dict) else {"ok": False}
        headers = {str(k).lower(): str(v) for k, v in dict(response.headers).items()}
        return _answer(int(response.status_code), data, headers)


def _answer(status: int, data: Mapping[str, Any], headers: Mapping[str, str]) -> Delivery:
    """Read a chat.postMessage answer: HTTP status, then Slack's own ``ok`` and ``error``.

    Raises:
        DeliveryError: Slack refused the message.
    """
    if 200 <= status < 300 and data.get("ok") is True:
        return Delivery(channel="slack", ok=True, status=status, detail=f"ts={data.get('ts', '')}")
    error = str(data.get("error") or f"http {status}")
    raise _refused(status, error, headers, retriable=error == "ratelimited")
