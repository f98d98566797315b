"""Live and replay run one pipeline: the recorded fixtures through the Ingestor, the worker
and a replay give the same documents, scores, windows and alerts.

The two differ only in their source (docs.raw as a consumer group, or a Kafka time range)
and their sinks (the live database and channels, or the run's database and dry-run
deliveries): `streams.steps` (decode, score), `streams.store.Store`, and
`alerts.engine.AlertEngine` over `streams.windows` are the same code in both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.dryrun import DRY_RUN
from infra.settings import Settings
from ingest.base import collect
from ingest.rss import RssSource
from models.lexicon import LexiconClassifier
from surveil.compose.ingestion import run_once
from surveil.compose.runtime import open_warehouse
from surveil.demo.receiver import WebhookReceiver
from surveil.demo.run import processed
from surveil.replay.run import RunReport, dry_run_engine, replay, run_steps
from surveil.replay.runs import open_run
from tests.feeds import MSFT_FEED
from tests.sinks import ListSink
from tests.workers import alerting_worker

SOURCES = """
sources:
  - {name: seekingalpha-msft, kind: rss, url: "$F/feeds/seekingalpha_symbol_MSFT_2017-10.rss.xml"}
  - {name: nasdaq-halts, kind: rss, url: "$F/feeds/nasdaqtrader_trade_halts_2023-06-19.rss.xml"}
  - {name: stocktwits-aapl, kind: stocktwits,
     url: "$F/social/stocktwits_streams_symbol_AAPL_2020-04-24.json"}
  - {name: stocknet-aapl, kind: tweets, url: "$F/social/stocknet_tweets_raw_AAPL_2014-01-02.jsonl"}
  - {name: reddit-wsb, kind: reddit-csv, url: "$F/social/reddit_wsb_comments_2024-10-11.csv"}
  - {name: nvda-8k, kind: edgar-doc, url: "$F/edgar/nvda_8k_0001045810-26-000024.txt"}
  - {name: blk-8k, kind: edgar-doc, url: "$F/edgar/blk_8k_0001193125-23-048785.txt"}
"""
# Every kind of rule, so that windows, baselines, negative counts and event probes all count.
RULES = """
# The live router's clock is the wall clock, a replay's publication time: no waits and no
# repeats, which would fall due in event time (days apart here) and not in the seconds live.
route: {group_wait: 0s, group_interval: 0s, repeat_interval: 1000d}
rules:
  - {name: slump, kind: threshold, threshold: -0.1, min_docs: 3, window: 2d}
  - {name: shock, kind: shock, zscore: -1.5, min_docs: 3, window: 6h, baseline: 7d,
     min_baseline: 5}
  - {name: spike, kind: negative_spike, factor: 1.5, min_docs: 2, window: 6h, baseline: 7d,
     min_baseline: 5}
  - {name: officers, kind: event, item: '5.02', probability: 0.9, window: 1d}
"""
DOCUMENTS = (
    "SELECT doc_id, source, kind, url, title, tickers, meta, dup_of, published_at "
    "FROM {db}.documents FINAL"
)
SCORES = (
    "SELECT doc_id, ticker, label, score, p_negative, p_positive, event_type, event_prob, "
    "relevance, model_version, published_at FROM {db}.scores FINAL"
)
# fired_at and resolved_at are the router's clock: the wall clock live, publication time in a
# replay. Everything the windows decide is compared.
ALERTS = (
    "SELECT alert_id, fingerprint, rule, ticker, state, value, threshold, "
    "window_start, window_end, documents, explanation, evidence FROM {db}.alerts FINAL"
)


def _sources(shared_dir: Path, folder: Path) -> Path:
    path = folder / "sources.yaml"
    path.write_text(SOURCES.replace("$F", str(shared_dir / "fixtures")))
    return path


def _rows(warehouse: Any, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(str(v) for v in row) for row in warehouse.rows(sql))


@pytest.mark.integration
def test_the_fixtures_give_the_same_documents_scores_windows_and_alerts_live_and_replayed(
    make_settings: Callable[..., Settings], shared_dir: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    settings = make_settings(
        kafka_partitions=1,  # one order of arrival for both
        sources_file=_sources(shared_dir, tmp_path),
        alert_rules=rules,
    )
    with alerting_worker(settings, tmp_path / "worker.log") as (worker, receiver):
        start = datetime.now(UTC)
        results = run_once(settings)
        docs = sum(r.documents for r in results)
        assert len([r for r in results if r.documents]) == SOURCES.count("name:")
        counted = worker.wait_until(lambda s: s.get("classify.documents", 0) >= docs, 120)
        scored = counted["classify.scored"]
        worker.wait_until(processed(docs, scored), 180)
        end = datetime.now(UTC) + timedelta(seconds=1)
    live_posts = len(receiver.received)

    with WebhookReceiver() as receiver:
        dry = settings.model_copy(update={"alert_slack_webhook": receiver.url})
        report = replay(dry, "again", start, end, by="ingested")
        assert receiver.received == []  # a replay sends nothing live
    assert report.documents == docs and report.scores == scored
    assert all(a.deliveries == (DRY_RUN,) for a in report.alert_list)

    tables = (DOCUMENTS, SCORES, ALERTS)
    live = open_warehouse(settings)  # one chDB folder open at a time in a process
    try:
        live_rows = [_rows(live, sql) for sql in tables]
    finally:
        live.close()
    run = open_run(settings, "again")
    try:
        run_rows = [_rows(run, sql) for sql in tables]
    finally:
        run.close()
    for sql, got, want in zip(tables, run_rows, live_rows, strict=True):
        only_run = sorted(set(got) - set(want))[:3]
        only_live = sorted(set(want) - set(got))[:3]
        assert got == want, f"{sql.split('FROM')[1]}: replay only {only_run}, live only {only_live}"
    alerts = live_rows[2]
    assert {a[2] for a in alerts} >= {"slump", "officers"}, alerts  # windows and probes fired
    assert live_posts > 0  # the live channel was there, and the replay never used it


def test_the_steps_run_a_list_in_and_a_list_out_and_a_redelivery_changes_nothing(
    shared_dir: Path,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, signal_window_s=2 * 86_400, alert_threshold=-0.15, alert_min_docs=3
    )
    feed = collect(RssSource("sa", str(shared_dir / MSFT_FEED)))
    docs = [(0, d) for d in feed.documents]
    sink, sent = ListSink(), []
    for _ in range(2):  # the same documents again: a redelivery
        engine, outbox = dry_run_engine(settings)
        report = RunReport("list", "memory", "lexicon")
        run_steps(docs, LexiconClassifier(), sink, engine, outbox, report)
        sent.append((report.documents, report.scores, report.alerts))
    assert sent[0] == (30, len(sink.scores), len(sink.alerts)) and sent[1] == (0, 0, 0)
    assert {d.doc_id for d in feed.documents} == set(sink.documents)
    assert {(a.ticker, a.state) for a in sink.alerts.values()} >= {("MSFT", "firing")}
