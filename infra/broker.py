"""One Apache Kafka node (KRaft broker and controller) run from a local state folder.

The broker is a plain `java` process started from the jars that `infra/kafka/pom.xml`
copies into `infra/kafka/lib/`; its data, logs and pid file live under one `home` folder,
so `start()` after `stop()` finds the same topics and messages again. Every listener is
bound to 127.0.0.1: the broker is for this machine only. A node alone is the default;
`infra/cluster.py` runs several as one cluster.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from infra.brokerfiles import (
    KAFKA_DIR,
    LOG_TAIL_LINES,
    ensure_runtime,
    format_storage,
    java_command,
    server_properties,
    tail_text,
)
from infra.errors import BrokerError, ConfigError
from infra.process import BrokerProcess
from infra.topics import admin_client

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_POLL_S = 0.25
_LOG_FILES = ("server.log", "stdout.log")


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how the local broker runs.

    Args:
        home: state folder (data/, logs/, server.properties, broker.pid, cluster.id).
        port: client (PLAINTEXT) port on 127.0.0.1.
        controller_port: KRaft controller port on 127.0.0.1.
        heap: JVM heap, used for both -Xms and -Xmx.
        lib_dir: folder of the Kafka jars.
        node_id: this node's id in its cluster (1 for a node alone).
        quorum: controller ports of every node of the cluster, node 1 first; empty for a
            node alone.
    """

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    lib_dir: Path = KAFKA_DIR / "lib"
    node_id: int = 1
    quorum: tuple[int, ...] = ()


@dataclass(frozen=True)
class BrokerStatus:
    """What `LocalKafka.status()` found."""

    running: bool
    pid: int | None
    bootstrap: str
    home: Path


class LocalKafka:
    """Start, stop and inspect the local broker described by a `BrokerConfig`."""

    def __init__(self, config: BrokerConfig) -> None:
        """Keep the config; nothing is started or written yet."""
        if config.port == config.controller_port:
            msg = f"the Kafka client and controller ports must differ (both {config.port})"
            raise ConfigError(msg)
        self.config = config
        # Absolute, so the process check can find the home in java's command line.
        self.home = config.home.expanduser().resolve()
        self.lib_dir = config.lib_dir.expanduser().resolve()
        self.data_dir = self.home / "data"
        self.logs_dir = self.home / "logs"
        self.properties_file = self.home / "server.properties"
        self.pid_file = self.home / "broker.pid"
        self.cluster_id_file = self.home / "cluster.id"
        self.process = BrokerProcess(self.pid_file, ("kafka.Kafka", str(self.properties_file)))
        self._log_marks: dict[str, int] = {}

    @property
    def bootstrap(self) -> str:
        """Return the bootstrap address clients use, e.g. ``127.0.0.1:9092``."""
        return f"{HOST}:{self.config.port}"

    def ensure_runtime(self) -> None:
        """Check that Java is installed and fetch the Kafka jars with Maven if missing."""
        ensure_runtime(self.lib_dir)

    # --- status --------------------------------------------------------------------

    def status(self) -> BrokerStatus:
        """Report whether our broker runs; a stale pid file is removed."""
        pid = self.process.read_pid()
        running = pid is not None and self.process.is_ours(pid)
        if pid is not None and not running:
            log.info("removing stale pid file %s (pid %d)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            pid = None
        return BrokerStatus(running=running, pid=pid, bootstrap=self.bootstrap, home=self.home)

    def answers(self, timeout: float = 3.0) -> bool:
        """Whether the broker accepts a connection and answers a metadata request in time.

        A live pid is no proof: a hung JVM, or a broker that closed its listeners after a
        fatal error, keeps its pid.
        """
        if not _port_open(self.config.port):
            return False
        try:
            _probe(self.bootstrap, timeout)
        except (KafkaError, OSError):
            return False
        return True

    # --- start ---------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker and wait until it serves; return False if it already ran.

        Args:
            timeout: seconds to wait for the broker to answer a metadata request.
        """
        if self.status().running:
            return False
        self.ensure_runtime()
        for port in (self.config.port, self.config.controller_port):
            if not port_free(port):
                msg = f"port {port} on {HOST} is already in use by another process"
                raise BrokerError(msg)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        config = self.config
        properties = server_properties(
            HOST, config.port, config.controller_port, self.data_dir, config.node_id, config.quorum
        )
        self.properties_file.write_text(properties, encoding="utf-8")
        java = java_command(self.lib_dir, self.logs_dir)
        format_storage(java, self.data_dir, self.properties_file, self.cluster_id_file)
        cmd = [
            *java,
            f"-Xms{self.config.heap}",
            f"-Xmx{self.config.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(self.properties_file),
        ]
        log.info("starting Kafka on %s (home %s)", self.bootstrap, self.home)
        # Error reports then show this run's lines, not the last run's or the format step's.
        self._log_marks = {name: _size(self.logs_dir / name) for name in _LOG_FILES}
        pid = self.process.spawn(cmd, self.logs_dir / "stdout.log", self.home)
        try:
            self._wait_ready(timeout)
        except BaseException:
            # Do not leave a half-started broker holding the ports.
            self.process.stop(pid, 10.0)
            raise
        log.info("Kafka is up on %s (pid %d)", self.bootstrap, pid)
        return True

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "port closed"
        while True:
            code = self.process.exit_code()
            if code is not None:
                msg = (
                    f"the Kafka broker exited with code {code} while starting; "
                    f"last lines of its logs in {self.logs_dir}:\n{self._log_tail()}"
                )
                raise BrokerError(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                msg = (
                    f"the Kafka broker did not answer on {self.bootstrap} within {timeout:.0f} s "
                    f"({last_error}); last lines of its logs:\n{self._log_tail()}"
                )
                raise BrokerError(msg)
            if not _port_open(self.config.port):
                last_error = "port closed"
            else:
                try:
                    _probe(self.bootstrap, min(5.0, max(left, 0.5)))
                    return
                except (KafkaError, OSError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(_POLL_S)

    def _log_tail(self) -> str:
        parts = []
        for name in _LOG_FILES:
            path = self.logs_dir / name
            try:
                with path.open("rb") as f:
                    mark = self._log_marks.get(name, 0)
                    # A smaller file than the mark was rolled over: read it all.
                    f.seek(mark if mark <= _size(path) else 0)
                    text = f.read().decode("utf-8", errors="replace")
            except FileNotFoundError:
                continue
            if text.strip():
                parts.append(f"--- {path}\n{tail_text(text, LOG_TAIL_LINES)}")
        return "\n".join(parts) or "(no log output)"

    # --- stop ----------------------------------------------------------------------

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the broker (controlled shutdown); return False if it was not running.

        Args:
            timeout: seconds to wait after SIGTERM before SIGKILL.
        """
        state = self.status()
        if not state.running or state.pid is None:
            return False
        log.info("stopping Kafka (pid %d)", state.pid)
        self.process.stop(state.pid, timeout)
        return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _probe(bootstrap: str, timeout: float) -> None:
    """Ask the broker for its topics; raise KafkaError if it cannot answer yet."""
    admin = admin_client(bootstrap, "surveil-probe", timeout)
    try:
        admin.list_topics()
    finally:
        admin.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    """Whether a server could listen on this TCP port of 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by our last run is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
