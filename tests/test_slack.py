"""Slack messages: escaping, the Block Kit payload (posting: test_slack_delivery)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from alerts.conditions import Condition, RouteConfig
from alerts.format import duration, span
from alerts.router import Router
from alerts.slack import (
    MAX_BLOCKS,
    MAX_MESSAGE,
    SlackWebhook,
    escape,
    message,
    size,
)
from streams.records import Alert, DocRef
from surveil.demo.receiver import WebhookReceiver

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
HOSTILE = (
    "<!channel> <!here> ping <@U123> *bold* _x_ ~x~ `code` <http://evil|click> "
    "<https://evil|click> AT&T"
)
MARKUP = ("*bold*", "_x_", "~x~", "`code`")


def doc(i: int, title: str = "", url: str = "", source: str = "wire") -> DocRef:
    return DocRef(
        doc_id=f"doc{i:04d}",
        title=title or f"Headline {i}",
        url=url if url else f"https://example.com/{i}",
        source=source,
        published_at=T0 - timedelta(minutes=i),
        score=-0.5,
    )


def alert(
    evidence: tuple[DocRef, ...] = (), explanation: str = "ACME is down", **extra: Any
) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "a" * 32,
        "fingerprint": "f" * 32,
        "rule": "mean_score_below",
        "severity": "warning",
        "ticker": "ACME",
        "fired_at": T0,
        "value": -0.5,
        "threshold": -0.3,
        "window_start": T0 - timedelta(hours=1),
        "window_end": T0,
        "documents": len(evidence),
        "explanation": explanation,
        "evidence": evidence,
        "state": "firing",
    }
    return Alert(**(fields | extra))


def texts(payload: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every text in a payload with its type: the fallback and every block's texts."""
    yield ("plain_text" if payload.get("mrkdwn") is False else "mrkdwn"), payload["text"]
    for block in payload["blocks"]:
        for item in (block.get("text"), *block.get("fields", ()), *block.get("elements", ())):
            if item is not None:
                yield item["type"], item["text"]


_META = re.compile(r" · score [+-]\d\.\d\d( · link left out: [\d,]+ characters)?$")
_LINK = re.compile(r"^<([^|>]*)\|([^>]*)>$")


def documents(payload: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """The evidence: (title, link target or None, source line) of each document shown."""
    blocks = payload["blocks"]
    out = []
    for first, second in zip(blocks, blocks[1:], strict=False):
        if first["type"] != "section" or "text" not in first or second["type"] != "context":
            continue
        *links, meta = second["elements"]
        if meta["type"] != "plain_text" or not _META.search(meta["text"]):
            continue
        target = None
        if links:
            [link] = links
            match = _LINK.match(link["text"])
            assert link["type"] == "mrkdwn" and match is not None
            target = match[1]
        out.append((first["text"]["text"], target, meta["text"]))
    return out


def check(payload: dict[str, Any]) -> None:
    """Assert that Slack would take the payload: slack_sdk's validators and Block Kit's limits."""
    blocks = payload["blocks"]
    assert 0 < len(blocks) <= MAX_BLOCKS == 50
    for block in blocks:
        model = Block.parse(block)
        assert model is not None, block
        # to_dict() runs every validator on the block and on its text objects and elements;
        # equality shows the model kept everything the payload says.
        assert model.to_dict() == block
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or len(block["fields"]) <= 10
            assert all(0 < len(f["text"]) <= 2_000 for f in block.get("fields", ()))
            assert 0 < len(block.get("text", {"text": "x"})["text"]) <= 3_000
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(e["text"]) <= 3_000 for e in block["elements"])
    for _, target, _ in documents(payload):
        assert target is None or len(target) <= 3_000
    assert size(blocks) <= MAX_MESSAGE
    assert 0 < len(payload["text"]) <= 4_000


def test_escape() -> None:
    assert escape("a & b") == "a &amp; b"
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("&lt;") == "&amp;lt;"
    assert escape("plain *bold*") == "plain *bold*"


def test_copied_text_matches_the_source() -> None:
    title = "Q1 *beats* est_eps ~2% `guidance` > AT&T <b> :rocket:"
    fired = alert((doc(1, title=title, source=title),), explanation=title)
    payload = message(fired, now=T0)
    [(shown, _, meta)] = documents(payload)
    explanation = payload["blocks"][2]["text"]["text"]
    for text in (shown, explanation, meta.split(" · ")[0], payload["text"].partition(". ")[2]):
        # Slack shows &amp; &lt; &gt; as & < >: what people copy is the title itself.
        assert html.unescape(text) == title
    assert payload["mrkdwn"] is False  # the fallback is never formatted either
    assert payload["blocks"][2]["text"]["type"] == "plain_text"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (133, "2m 13s"), (3_720, "1h 02m"), (273_600, "3d 4h"), (-5, "0s")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_hostile_text_arrives_escaped_never_as_a_mention_or_link() -> None:
    hostile = alert(
        (doc(1, title=HOSTILE, source=HOSTILE, url="https://example.com/?a=1&b=<@U123>|x"),),
        explanation=HOSTILE,
        sources=(HOSTILE,),
    )
    with WebhookReceiver() as hook:
        delivery = SlackWebhook(hook.url, timeout=5).send(hostile)
    assert delivery.ok
    [payload] = hook.received
    rendered = list(texts(payload))
    for kind, text in rendered:
        # The only '<' left opens our own link to the document.
        assert text.count("<") == text.count("<https://example.com/")
        assert "&lt;!channel&gt;" in text or "channel" not in text
        if kind == "mrkdwn":
            # Only our own text is mrkdwn: the numbers and the link, labelled by its host.
            assert not any(markup in text for markup in MARKUP)
            assert "evil" not in text and "U123>" not in text
    [(title, target, meta)] = documents(payload)
    assert title == escape(" ".join(HOSTILE.split()))
    assert target == "https://example.com/?a=1&amp;b=&lt;@U123&gt;%7Cx"
    assert meta.startswith("&lt;!channel&gt;") and "AT&amp;T" in meta and "*bold*" in meta
    link = payload["blocks"][4]["elements"][0]
    assert (link["text"], link["verbatim"]) == (f"<{target}|example.com>", True)
    assert all(f["verbatim"] for f in payload["blocks"][1]["fields"])
    assert payload["blocks"][0]["type"] == "header"
    assert {kind for kind, _ in rendered} == {"mrkdwn", "plain_text"}
    check(payload)
    explanation = payload["blocks"][2]["text"]
    assert explanation["type"] == "plain_text"
    assert explanation["text"].startswith("&lt;!channel&gt; &lt;!here&gt; ping &lt;@U123&gt;")
    assert payload["text"].startswith("[FIRING] ACME mean_score_below (warning)")


def test_evidence_beyond_fifty_blocks_is_cut_with_a_count() -> None:
    payload = message(alert(tuple(doc(i) for i in range(100))), top=100)
    assert len(payload["blocks"]) <= MAX_BLOCKS == 50
    shown = len(documents(payload))
    assert shown == 22  # two blocks each, beside header, numbers, explanation, count, context
    assert any(t == f"+{100 - shown} more documents" for _, t in texts(payload))
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][-1]["type"] == "context"
    check(payload)


def test_top_documents_only_by_default() -> None:
    payload = message(alert(tuple(doc(i) for i in range(12))))
    assert len(documents(payload)) == 10
    assert any(t == "+2 more documents" for _, t in texts(payload))
    assert not any("more documents" in t for _, t in texts(message(alert((doc(1),)))))


LONG_URL = "https://example.com/story?" + "q=" + "x" * 2_372  # 2,400 characters


def test_a_url_too_long_to_link_is_left_out_and_said_so() -> None:
    assert len(LONG_URL) == 2_400
    payload = message(alert((doc(1, title="Recall", url=LONG_URL),)), now=T0)
    [(title, target, meta)] = documents(payload)
    assert (title, target) == ("Recall", None)
    assert meta.endswith("score -0.50 · link left out: 2,400 characters")
    check(payload)


def test_a_long_fragment_is_dropped_to_keep_the_link() -> None:
    url = "https://example.com/story/1#" + "x" * 2_400
    [(_, target, _)] = documents(message(alert((doc(1, url=url),)), now=T0))
    assert target == "https://example.com/story/1"


def test_hostile_and_huge_inputs_still_make_a_payload_slack_takes() -> None:
    huge = ("<!channel> *x* " * 400)[:5_000]
    evidence = tuple(
        doc(i, title=huge, url=LONG_URL if i % 2 else f"https://example.com/{i}?{'a' * 900}")
        for i in range(200)
    )
    fired = alert(
        evidence,
        explanation=huge * 2,
        rule="r" * 400,
        sources=tuple(f"source-{i}-{'s' * 50}" for i in range(200)),
        model_version="m" * 3_000,
        zscore=-9.99,
        trigger_published_at=T0 - timedelta(minutes=3),
    )
    payload = message(fired, now=T0, top=200)
    check(payload)
    shown = documents(payload)
    assert 0 < len(shown) < 200
    assert any(t == f"+{200 - len(shown)} more documents" for _, t in texts(payload))
    assert size(payload["blocks"]) <= MAX_MESSAGE == 12_000
    assert payload["blocks"][0]["text"]["text"].endswith("…")
    assert len(json.dumps(payload)) < 20_000


@pytest.mark.parametrize(
    "fired",
    [
        alert(),
        alert(explanation=""),
        alert((doc(1),), explanation=" "),
        alert(tuple(doc(i) for i in range(12)), zscore=1.5, sources=("a", "b")),
        alert((doc(1, title=" ", url="javascript:x", source=""),)),
        alert(
            (doc(1),),
            state="resolved",
            resolved_at=T0 + timedelta(minutes=5),
            trigger_published_at=T0 - timedelta(seconds=5),
            model_version="m1",
        ),
        alert(tuple(doc(i, url=LONG_URL) for i in range(60)), explanation="x" * 9_000),
    ],
    ids=["plain", "no-explanation", "blank", "twelve", "empty-doc", "resolved", "long"],
)
def test_every_payload_shape_passes_slack_sdk(fired: Alert) -> None:
    check(message(fired, now=T0))
    check(message(fired, now=T0, top=100))


_TEXT = st.text(st.characters(codec="utf-8"), max_size=3_500)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    titles=st.lists(_TEXT, max_size=60),
    urls=st.lists(st.sampled_from(["", "javascript:x", LONG_URL, "https://e.com/a|b>c"])),
    explanation=_TEXT,
    rule=st.text(max_size=400),
    top=st.integers(-1, 80),
)
def test_any_alert_makes_a_payload_slack_takes(
    titles: list[str], urls: list[str], explanation: str, rule: str, top: int
) -> None:
    evidence = tuple(
        doc(i, title=t, url=urls[i % len(urls)] if urls else "", source=t)
        for i, t in enumerate(titles)
    )
    payload = message(alert(evidence, explanation=explanation, rule=rule or "r"), now=T0, top=top)
    check(payload)


def test_the_window_shows_both_dates_when_they_differ() -> None:
    day = alert(window_start=T0 - timedelta(days=1), window_end=T0)
    fields = [f["text"] for f in message(day, now=T0)["blocks"][1]["fields"]]
    assert "*Window*\n2026-03-01 13:00 to 2026-03-02 13:00 UTC" in fields
    hour = [f["text"] for f in message(alert(), now=T0)["blocks"][1]["fields"]]
    assert "*Window*\n2026-03-02 12:00 to 13:00 UTC" in hour
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    assert span(paris - timedelta(minutes=30), paris) == "2026-03-02 12:30 to 13:00 UTC"


def test_a_resolved_message_says_when_the_condition_cleared() -> None:
    resolved = alert((doc(1),), state="resolved", resolved_at=T0 + timedelta(minutes=5, seconds=7))
    payload = message(resolved, now=T0 + timedelta(minutes=6))
    assert payload["blocks"][0]["text"]["text"] == "[RESOLVED] ACME mean_score_below (warning)"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[-1] == "*Resolved*\n2026-03-02 13:05:07 UTC"
    context = payload["blocks"][-1]["elements"][0]["text"]
    assert "fired 2026-03-02 13:00:00 UTC · resolved 2026-03-02 13:05:07 UTC" in context
    assert "resolved 2026-03-02 13:05:07 UTC" in payload["text"]
    check(payload)
    firing = message(alert(), now=T0)
    assert "Resolved" not in str(firing["blocks"]) and "resolved" not in firing["text"]


def test_the_router_stamps_a_resolved_notice_with_the_time_it_cleared() -> None:
    def condition(active: bool) -> Condition:
        return Condition(
            rule="neg_spike",
            kind="negative_spike",
            severity="warning",
            ticker="ACME",
            active=active,
            value=4.0 if active else 0.0,
            threshold=3.0,
            documents=4,
            window_start=T0 - timedelta(hours=1),
            window_end=T0,
        )

    router = Router(RouteConfig(group_wait_s=30, group_interval_s=300))
    router.observe(condition(True), T0)
    [firing] = router.due(T0 + timedelta(seconds=30))
    cleared = T0 + timedelta(minutes=2)
    router.observe(condition(False), cleared)
    # Kept across a restart: the snapshot carries it.
    restored = Router(router.route).restore(router.snapshot())
    [resolved] = restored.due(T0 + timedelta(minutes=10))
    assert (firing.state, firing.resolved_at) == ("firing", None)
    assert (resolved.state, resolved.fired_at, resolved.resolved_at) == ("resolved", T0, cleared)
    fields = message(resolved, now=T0)["blocks"][1]["fields"]
    assert fields[-1]["text"] == "*Resolved*\n2026-03-02 13:02:00 UTC"


def test_zscore_latency_sources_and_model_appear() -> None:
    fired = alert(
        (doc(1),),
        zscore=-2.5,
        model_version="finbert-v3",
        sources=("reuters", "sec"),
        trigger_published_at=T0 - timedelta(minutes=2, seconds=13),
    )
    payload = message(fired, now=T0)
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[:4] == [
        "*Score*\n-0.500",
        "*Z-score*\n-2.50",
        "*Threshold*\n-0.300",
        "*Documents*\n1",
    ]
    context = payload["blocks"][-1]["elements"][0]["text"]
    assert "published to alert: 2m 13s" in context
    assert "sources: reuters, sec" in context and "model finbert-v3" in context
    assert "(z -2.50)" in payload["text"] and "2m 13s" in payload["text"]
    plain = message(alert(), now=T0)
    assert "*Z-score*" not in str(plain) and "published to alert" not in str(plain)


def test_links_only_for_http_urls() -> None:
    evidence = (
        doc(1, title="web", url="https://example.com/1"),
        doc(2, title="plain", url="http://example.com/2"),
        doc(3, title="script", url="javascript:alert(1)"),
        doc(4, title="file", url="file:///etc/passwd"),
    )
    shown = documents(message(alert(evidence)))
    assert [(title, target) for title, target, _ in shown] == [
        ("web", "https://example.com/1"),
        ("plain", "http://example.com/2"),
        ("script", None),
        ("file", None),
    ]
    assert "javascript" not in str(shown) and "file://" not in str(shown)
