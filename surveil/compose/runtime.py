"""Build the parts from the settings: broker, warehouse, pipeline, worker process."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from pydantic import SecretStr

from alerts.conditions import RouteConfig
from alerts.engine import default_ruleset, ruleset_from
from alerts.ruleset import RuleSet
from infra.cluster import LocalCluster
from infra.db import Warehouse, connect
from infra.errors import SurveilError
from infra.settings import Settings
from infra.topics import replication_factor
from models.base import Classifier
from models.registry import Runtime, load_classifier
from streams.app import WorkerConfig

log = logging.getLogger(__name__)


def is_local(settings: Settings) -> bool:
    """Whether the configured broker is the one `surveil kafka` manages on this machine."""
    hosts = [s.rsplit(":", 1)[0] for s in settings.bootstrap_servers.split(",")]
    return hosts == ["127.0.0.1"] or hosts == ["localhost"]


def reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether any broker of a bootstrap list accepts a TCP connection."""
    for server in bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def local_kafka(settings: Settings, brokers: int = 1) -> LocalCluster:
    """The local broker the settings describe, or a cluster of ``brokers`` nodes.

    Node ``i`` (from 0) listens on the broker and controller ports plus ``2 * i``: with the
    defaults 9092/9093, then 9094/9095 and 9096/9097.
    """
    ports = [
        (settings.broker_port + 2 * i, settings.kafka_controller_port + 2 * i)
        for i in range(brokers)
    ]
    return LocalCluster(settings.kafka_home, ports, heap=settings.kafka_heap)


def open_warehouse(settings: Settings, *, migrate: bool = True) -> Warehouse:
    """Connect to ClickHouse and (by default) apply pending migrations."""
    warehouse = Warehouse(connect(settings.dsn), settings.clickhouse_database)
    if migrate:
        warehouse.migrate()
        warehouse.set_retention(settings.retention_days)
    return warehouse


def worker_config(settings: Settings) -> WorkerConfig:
    """The Faust app's configuration from the settings, with the replication factor of the
    cluster they name (asked of its brokers)."""
    # Classify workers form a consumer group of their own: they read docs.raw alone, and the
    # store role's group keeps the app id (its offsets and table changelogs) of role all.
    classify_only = settings.worker_role == "classify"
    return WorkerConfig(
        app_id=f"{settings.app_id}-classify" if classify_only else settings.app_id,
        topic_prefix=settings.topic_prefix,
        broker=settings.kafka_broker,
        partitions=settings.kafka_partitions,
        replication=replication_factor(settings.bootstrap_servers),
        data_dir=(settings.state_dir / "faust").resolve(),
        web_port=settings.web_port,
        classify_batch=settings.classify_batch,
        classify_within=settings.classify_within,
        store_batch=settings.store_batch,
        store_insert_rows=settings.store_insert_rows,
        store_within=settings.store_within,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``SURVEIL_*`` variables, so a child process sees the same ones."""
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = value.resolve()
        env[f"SURVEIL_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    """A `surveil worker` child process, stopped gracefully with SIGTERM.

    Args:
        env: extra environment (``SURVEIL_*`` settings) for the child.
        log_file: where the child's output goes.
        module: the module run with ``python -m``; tests run a fault-injecting one.
    """

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        log_file: Path,
        module: str = "surveil",
    ) -> None:
        self.settings = settings
        self.log_file = log_file
        self.module = module
        self._env = {**os.environ, **settings_env(settings), **env}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def stats_url(self) -> str:
        """The worker's counters page."""
        return f"http://127.0.0.1:{self.settings.web_port}/surveil/stats/"

    def start(self) -> None:
        """Spawn the worker."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", self.module, "worker"],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stats(self) -> dict[str, int]:
        """Read the worker's counters; empty while its web server is not up."""
        try:
            with urllib.request.urlopen(self.stats_url, timeout=2) as response:  # noqa: S310
                data: dict[str, int] = json.loads(response.read())
                return data
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def wait_answering(self, timeout: float) -> None:
        """Wait until the worker's counters page answers (its web server is up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.stats_url, timeout=2):  # noqa: S310 - loopback
                    return
            except OSError:
                if time.monotonic() > deadline:
                    msg = f"{self.log_file}: the worker's page did not answer in {timeout:.0f} s"
                    raise SurveilError(msg) from None
                time.sleep(0.5)

    def wait_until(self, done: Callable[[dict[str, int]], bool], timeout: float) -> dict[str, int]:
        """Poll the counters until ``done`` holds; fail if the worker dies or time runs out."""
        deadline = time.monotonic() + timeout
        stats: dict[str, int] = {}
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                msg = f"the worker exited with {self._proc.returncode}; see {self.log_file}"
                raise SurveilError(msg)
            stats = self.stats() or stats
            if stats and done(stats):
                return stats
            time.sleep(0.5)
        if self._proc is not None:
            self._proc.send_signal(signal.SIGUSR1)  # its threads' stacks go to the log
            time.sleep(0.5)
        counted = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if v) or "nothing"
        msg = (
            f"the worker did not finish within {timeout:.0f} s (counted: {counted}); "
            f"its log, with every thread's stack: {self.log_file}"
        )
        raise SurveilError(msg)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def agents(self) -> dict[str, dict[str, object]]:
        """Read the state of the worker's writing stages; empty while its web server is down."""
        url = self.stats_url.replace("/stats/", "/agents/")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                data: dict[str, dict[str, dict[str, object]]] = json.loads(response.read())
                return data.get("stages", {})
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def kill(self) -> int | None:
        """Kill the worker at once (SIGKILL), as a crash would; return its exit code."""
        if self._proc is None or self._proc.poll() is not None:
            return None if self._proc is None else self._proc.returncode
        self._proc.kill()
        return self._proc.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """Stop the worker gracefully (SIGTERM), killing it only if it hangs."""
        if self._proc is None or self._proc.poll() is not None:
            return None if self._proc is None else self._proc.returncode
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop in %.0f s; killing it", timeout)
            self._proc.kill()
            return self._proc.wait()


def outbox_path(settings: Settings) -> Path:
    """The worker's alert outbox: deliveries, silences and acks (SQLite, shared with the CLI)."""
    return settings.state_dir / "alerts" / "outbox.db"


def alert_ruleset(settings: Settings) -> RuleSet:
    """The alert rules the settings name, or one threshold rule built from them."""
    route = RouteConfig(
        group_wait_s=settings.alert_group_wait_s,
        group_interval_s=settings.alert_group_interval_s,
        repeat_interval_s=settings.alert_repeat_interval_s,
    )
    fallback = default_ruleset(
        settings.alert_threshold, settings.alert_min_docs, settings.signal_window_s, route
    )
    return ruleset_from(settings.alert_rules, fallback)


def load_model(settings: Settings, model: str | None = None) -> Classifier:
    """Load the classifier ``model`` names (default: the model setting) on the configured
    device, threads, precision and batch size."""
    runtime = Runtime(
        device=settings.device,
        threads=settings.threads,
        precision=settings.precision,
        max_batch=settings.classify_batch,
    )
    return load_classifier(model or settings.model, runtime)
