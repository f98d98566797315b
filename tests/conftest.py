"""Session fixtures: one real Kafka broker per test session, settings per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Imported up front on purpose: hypothesis' pytest plugin otherwise imports it in the
# terminal summary, after Faust tests ran, and CPython 3.11's assertion rewriter then fails
# with "AST constructor recursion depth mismatch".
import hypothesis  # noqa: F401
import pytest

from infra.broker import BrokerConfig, LocalKafka, free_port, port_free
from infra.cluster import LocalCluster
from infra.settings import Settings
from models.encoders import encoder_dir
from models.train import TrainConfig, train
from surveil.compose.runtime import local_kafka
from tests.edgar_helpers import EDGAR
from tests.rss_helpers import SA
from tests.social_helpers import HTML_PAGE, REDDIT, STOCKTWITS, TWEETS

ROOT = Path(__file__).resolve().parents[1]
_namespaces = itertools.count(1)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The third-party fixtures and datasets folder: the shared_dir setting
    (SURVEIL_SHARED_DIR, default ../shared), relative to the repository root."""
    configured = Settings(_env_file=None).shared_dir  # type: ignore[call-arg]
    path = (configured if configured.is_absolute() else ROOT / configured).resolve()
    if not (path / "fixtures").is_dir():
        pytest.fail(f"shared fixtures not found at {path}: set SURVEIL_SHARED_DIR")
    return path


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A real single-node Kafka broker on free ports, started once for the session."""
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    broker = LocalKafka(
        BrokerConfig(
            home=tmp_path_factory.mktemp("kafka"),
            port=port,
            controller_port=controller_port,
            heap="512m",
        )
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _free_port_run(count: int) -> int:
    """Return the first of ``count`` consecutive TCP ports of 127.0.0.1 that are free now."""
    for _ in range(100):
        first = free_port()
        if first + count <= 65536 and all(port_free(p) for p in range(first, first + count)):
            return first
    pytest.fail(f"found no {count} consecutive free ports on 127.0.0.1")


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real three-node Kafka cluster (a three-voter quorum, 384 MB of heap each) on free
    ports, laid out as `surveil kafka start --brokers 3` does, started once for the session
    by the tests that ask for it."""
    first = _free_port_run(6)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=tmp_path_factory.mktemp("cluster"),
        kafka_broker=f"kafka://127.0.0.1:{first}",
        kafka_controller_port=first + 1,
        kafka_heap="384m",
    )
    cluster = local_kafka(settings, brokers=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A 2-layer MiniLM trained for seconds on part of PhraseBank: a real, small artifact."""
    cfg = TrainConfig(
        preset="tiny",
        encoder_dir=str(encoder_dir("small", Path("unused"))),
        data_dir=str(shared_dir / "datasets"),
        out_dir=str(tmp_path_factory.mktemp("artifacts")),
        datasets=("fpb_sentiment.csv",),
        limit=600,
        layers=2,
        epochs=3,
        batch_size=16,
        lr=1e-4,
        threads=2,
    )
    return train(cfg, progress=False).path


def worker_settings(
    kafka: LocalKafka, shared_dir: Path, state_dir: Path, namespace: str, **overrides: Any
) -> Settings:
    """Settings of a test worker on the session broker: its state dir, topic namespace, app id
    and a free web port, batches and alert groups that wait little."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "shared_dir": shared_dir,
        "kafka_broker": f"kafka://{kafka.bootstrap}",
        "kafka_partitions": 3,
        "topic_prefix": f"{namespace}.",
        "app_id": f"surveil-{namespace}",
        "web_port": free_port(),
        "classify_within": 0.2,
        "alert_group_wait_s": 0.0,
        "alert_group_interval_s": 0.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _namespace() -> str:
    return f"t{os.getpid()}x{next(_namespaces)}"


@pytest.fixture
def make_settings(kafka: LocalKafka, tmp_path: Path, shared_dir: Path) -> Callable[..., Settings]:
    """Build Settings for one test: own state dir, topic namespace, app id and web port."""
    namespace = _namespace()

    def make(**overrides: Any) -> Settings:
        return worker_settings(kafka, shared_dir, tmp_path / "state", namespace, **overrides)

    return make


@pytest.fixture(scope="session")
def module_settings(kafka: LocalKafka, shared_dir: Path) -> Callable[..., Settings]:
    """Build Settings for a module's worker in ``folder`` (state in folder/state), each call
    with its own topic namespace, app id and web port: ``module_settings(folder, **overrides)``."""

    def make(folder: Path, **overrides: Any) -> Settings:
        return worker_settings(kafka, shared_dir, folder / "state", _namespace(), **overrides)

    return make


# -- Recorded inputs that several parser test modules read ---------------------------------


@pytest.fixture(scope="session")
def edgar_dir(shared_dir: Path) -> Path:
    return shared_dir / EDGAR


@pytest.fixture(scope="session")
def sa_raw(shared_dir: Path) -> bytes:
    return (shared_dir / SA).read_bytes()


@pytest.fixture(scope="session")
def st_raw(shared_dir: Path) -> bytes:
    return (shared_dir / STOCKTWITS).read_bytes()


@pytest.fixture(scope="session")
def tw_raw(shared_dir: Path) -> bytes:
    return (shared_dir / TWEETS).read_bytes()


@pytest.fixture(scope="session")
def rd_raw(shared_dir: Path) -> bytes:
    return (shared_dir / REDDIT).read_bytes()


@pytest.fixture(scope="session")
def html_page(shared_dir: Path) -> bytes:
    return (shared_dir / HTML_PAGE).read_bytes()
