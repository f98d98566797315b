"""Wire the ingest parts together from settings: fetcher, state, linker, producer, scheduler."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

from infra.errors import BrokerError, ConfigError
from infra.settings import Settings
from infra.topics import ensure_topics
from ingest.base import Source
from ingest.config import SourceSpec, load_specs
from ingest.dedup import NearDuplicates
from ingest.http import Fetcher
from ingest.producer import DocumentProducer, TopicReader
from ingest.runner import Checkpoint, Ingestor, RunResult
from ingest.scheduler import IngestScheduler
from ingest.state import IngestState
from ingest.tickers import Linker
from ingest.universe import Universe
from streams.topics import ALL_TOPICS, DOCS_RAW, with_prefix
from surveil.compose.runtime import reachable

log = logging.getLogger(__name__)

SEC_HOSTS = ("www.sec.gov", "data.sec.gov", "efts.sec.gov")


@dataclass
class Parts:
    """The long-lived parts of an ingestor, closed together."""

    ingestor: Ingestor
    fetcher: Fetcher
    state: IngestState
    producer: DocumentProducer
    reader: TopicReader

    def close(self) -> None:
        """Close every client and file."""
        self.fetcher.close()
        self.producer.close()
        self.reader.close()
        self.state.close()


def linker(settings: Settings) -> Linker:
    """The ticker linker over the symbol lists under the shared folder."""
    return Linker(Universe.load(settings.shared_dir))


def select(specs: Sequence[SourceSpec], names: Sequence[str]) -> list[SourceSpec]:
    """Return the specs named (all enabled ones when no names are given).

    Raises:
        ConfigError: a name is not in the file.
    """
    if not names:
        return [s for s in specs if s.enabled]
    known = {s.name: s for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        msg = f"no source named {', '.join(missing)} (known: {', '.join(known)})"
        raise ConfigError(msg)
    return [known[n] for n in names]


@contextmanager
def open_ingestor(settings: Settings, specs: Sequence[SourceSpec]) -> Iterator[Ingestor]:
    """Build an ingestor from settings, recover from the last checkpoint, close at exit.

    Raises:
        BrokerError: Kafka is not reachable.
    """
    if not reachable(settings.bootstrap_servers):
        msg = (
            f"no Kafka broker at {settings.bootstrap_servers}: start one with "
            "`surveil kafka start` (or set SURVEIL_KAFKA_BROKER)"
        )
        raise BrokerError(msg)
    ensure_topics(
        settings.bootstrap_servers,
        with_prefix(settings.topic_prefix, ALL_TOPICS),
        settings.kafka_partitions,
    )
    folder = settings.state_dir / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    state = IngestState(folder / "state.db")
    fetcher = Fetcher(
        user_agent=settings.ingest_user_agent,
        timeout=settings.ingest_timeout,
        max_bytes=settings.ingest_max_bytes,
        retries=settings.ingest_retries,
        rate_limits=dict.fromkeys(SEC_HOSTS, settings.sec_rate),
        default_rate=settings.ingest_rate,
        validators=state,
    )
    producer = DocumentProducer(settings.bootstrap_servers, topic_prefix=settings.topic_prefix)
    reader = TopicReader(settings.bootstrap_servers, f"{settings.topic_prefix}{DOCS_RAW}")
    parts = Parts(
        Ingestor(
            fetcher=fetcher,
            state=state,
            producer=producer,
            reader=reader,
            checkpoint=Checkpoint(folder / f"checkpoint-{settings.topic_prefix}docs.raw.json"),
            linker=linker(settings),
            near_duplicates=NearDuplicates(
                window=timedelta(seconds=settings.neardup_window_s),
                threshold=settings.neardup_threshold,
                path=folder / "neardup.json",
            ),
            headers={s.name: s.headers for s in specs if s.headers},
        ),
        fetcher,
        state,
        producer,
        reader,
    )
    try:
        parts.ingestor.recover()
        yield parts.ingestor
    finally:
        parts.close()


def build_sources(settings: Settings, specs: Sequence[SourceSpec]) -> dict[str, Source]:
    """The parser of every spec, by source name."""
    return {s.name: s.build(settings.body_max_chars) for s in specs}


def run_once(settings: Settings, names: Sequence[str] = ()) -> list[RunResult]:
    """Run the selected sources once each, in file order."""
    specs = select(load_specs(settings.sources_file), names)
    sources = build_sources(settings, specs)
    with open_ingestor(settings, specs) as ingestor:
        return [ingestor.run(sources[s.name]) for s in specs]


def run_forever(
    settings: Settings,
    names: Sequence[str] = (),
    on_run: Callable[[RunResult], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the selected sources on their schedules until SIGINT/SIGTERM (or ``stop``)."""
    specs = select(load_specs(settings.sources_file), names)
    sources = build_sources(settings, specs)
    stop = stop or threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the runs in progress, then stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _signal)
        signal.signal(signal.SIGTERM, _signal)
    with open_ingestor(settings, specs) as ingestor:
        scheduler = IngestScheduler(ingestor, specs, sources, on_run=on_run)
        scheduler.start()
        try:
            stop.wait()
        finally:
            scheduler.stop(wait=True)
