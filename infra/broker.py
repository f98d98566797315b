"""A single-node Apache Kafka broker (KRaft) run from a local state folder.

The broker is a plain `java` process started from the jars that `infra/kafka/pom.xml`
copies into `infra/kafka/lib/`; its data, logs and pid file live under one `home` folder,
so `start()` after `stop()` finds the same topics and messages again. Every listener is
bound to 127.0.0.1: the broker is for this machine only.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

KAFKA_DIR: Path = Path(__file__).parent / "kafka"

HOST = "127.0.0.1"
MIN_JAVA = 17
_LOG_TAIL_LINES = 30
_MAVEN_TAIL_LINES = 40
_POLL_S = 0.25
_LOG_FILES = ("server.log", "stdout.log")
_NO_JAVA = (
    "Java 17+ is needed to run the local Kafka broker: install a JDK "
    "(e.g. apt-get install openjdk-17-jre-headless) "
    "or point SURVEIL_KAFKA_BROKER at a running broker"
)
_NO_MAVEN = (
    "Maven is needed once to fetch the Kafka jars into {lib}: install it "
    "(e.g. apt-get install maven) or point SURVEIL_KAFKA_BROKER at a running broker"
)


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how the local broker runs.

    Args:
        home: state folder (data/, logs/, server.properties, broker.pid, cluster.id).
        port: client (PLAINTEXT) port on 127.0.0.1.
        controller_port: KRaft controller port on 127.0.0.1.
        heap: JVM heap, used for both -Xms and -Xmx.
        lib_dir: folder of the Kafka jars.
    """

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "1g"
    lib_dir: Path = KAFKA_DIR / "lib"


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
        # Set only in the Python process that spawned the broker, to reap it.
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_marks: dict[str, int] = {}

    @property
    def bootstrap(self) -> str:
        """Return the bootstrap address clients use, e.g. ``127.0.0.1:9092``."""
        return f"{HOST}:{self.config.port}"

    # --- runtime -------------------------------------------------------------------

    def ensure_runtime(self) -> None:
        """Check that Java is installed and fetch the Kafka jars with Maven if missing."""
        java = shutil.which("java")
        if java is None:
            raise ConfigError(_NO_JAVA)
        _check_java_version(java)
        if any(self.lib_dir.glob("kafka_2.13-*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigError(_NO_MAVEN.format(lib=self.lib_dir))
        pom = KAFKA_DIR / "pom.xml"
        if self.lib_dir == (KAFKA_DIR / "lib").resolve():
            cmd = [mvn, "-q", "-B", "package", "-f", str(pom)]
        else:
            # The pom's execution writes to its own lib/; a direct goal call takes the folder.
            cmd = [
                mvn, "-q", "-B", "dependency:copy-dependencies",
                f"-DoutputDirectory={self.lib_dir}", "-DincludeScope=runtime", "-f", str(pom),
            ]  # fmt: skip
        log.info("fetching the Kafka jars into %s with Maven", self.lib_dir)
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not any(self.lib_dir.glob("kafka_2.13-*.jar")):
            tail = _tail_text(done.stdout + done.stderr, _MAVEN_TAIL_LINES)
            msg = f"Maven could not fetch the Kafka jars (exit {done.returncode}):\n{tail}"
            raise BrokerError(msg)

    # --- status --------------------------------------------------------------------

    def status(self) -> BrokerStatus:
        """Report whether our broker runs; a stale pid file is removed."""
        pid = self._read_pid()
        running = pid is not None and self._is_ours(pid)
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

    def _read_pid(self) -> int | None:
        try:
            text = self.pid_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        try:
            return int(text)
        except ValueError:
            # A torn or foreign pid file: treat as stale.
            self.pid_file.unlink(missing_ok=True)
            return None

    def _is_ours(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return False  # our child exited (poll() also reaped it)
        proc_dir = Path("/proc")
        if not proc_dir.is_dir():
            # No procfs (e.g. macOS): a live pid is the best evidence there is.
            return _pid_alive(pid)
        try:
            raw = (proc_dir / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        # A zombie has an empty command line; a reused pid has someone else's.
        args = raw.decode(errors="replace").split("\0")
        return "kafka.Kafka" in args and str(self.properties_file) in args

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
        self.properties_file.write_text(self._server_properties(), encoding="utf-8")
        self._format_storage()

        cmd = [
            *self._java_base(),
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
        with (self.logs_dir / "stdout.log").open("ab") as out:
            # Own session: Ctrl-C in the shell that ran `surveil` must not hit the broker.
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.home,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n", encoding="ascii")
        try:
            self._wait_ready(self._proc, timeout)
        except BaseException:
            # Do not leave a half-started broker holding the ports.
            self._terminate(self._proc.pid, 10.0)
            self.pid_file.unlink(missing_ok=True)
            raise
        log.info("Kafka is up on %s (pid %d)", self.bootstrap, self._proc.pid)
        return True

    def _java_base(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigError(_NO_JAVA)
        return [
            java,
            # Sockets then show as plain 127.0.0.1, never as an IPv6 wildcard.
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            f"{self.lib_dir}/*",
        ]

    def _server_properties(self) -> str:
        port, cport = self.config.port, self.config.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{cport}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            # Faust creates its internal topics by producing to them.
            "auto.create.topics.enable": "true",
            # One node: every internal topic can only have one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Nobody else will join the group, so do not wait for them.
            "group.initial.rebalance.delay.ms": "0",
        }
        lines = ["# Written by infra/broker.py on every start; edits are lost."]
        lines += [f"{key}={_escape_property(value)}" for key, value in props.items()]
        return "\n".join(lines) + "\n"

    def _cluster_id(self) -> str:
        try:
            existing = self.cluster_id_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            existing = ""
        if existing:
            return existing
        cluster_id = _random_kafka_uuid()
        self.cluster_id_file.write_text(f"{cluster_id}\n", encoding="ascii")
        return cluster_id

    def _format_storage(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cmd = [
            *self._java_base(),
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            self._cluster_id(),
            "-c",
            str(self.properties_file),
        ]
        log.info("formatting Kafka storage in %s", self.data_dir)
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, capture_output=True, text=True, check=False, cwd=self.home
        )
        if done.returncode != 0:
            tail = _tail_text(done.stdout + done.stderr, _LOG_TAIL_LINES)
            msg = f"formatting the Kafka storage in {self.data_dir} failed:\n{tail}"
            raise BrokerError(msg)

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "port closed"
        while True:
            code = proc.poll()
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
                parts.append(f"--- {path}\n{_tail_text(text, _LOG_TAIL_LINES)}")
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
        self._terminate(state.pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _terminate(self, pid: int, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self._reap()
            return
        if self._wait_exit(pid, timeout):
            return
        log.warning("Kafka (pid %d) did not stop within %.0f s; killing it", pid, timeout)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not self._wait_exit(pid, 10.0):
            msg = f"the Kafka broker (pid {pid}) survived SIGKILL"
            raise BrokerError(msg)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self._is_ours(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.poll()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- helpers -------------------------------------------------------------------------


def _check_java_version(java: str) -> None:
    """Raise ConfigError if `java` is older than 17; an unreadable version passes."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [java, "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{_NO_JAVA} ({java} -version failed: {exc})"
        raise ConfigError(msg) from exc
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if found is None:
        return
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0_392" style
        major = int(found.group(2))
    if major < MIN_JAVA:
        msg = f"{_NO_JAVA} (found Java {major} at {java})"
        raise ConfigError(msg)


def _probe(bootstrap: str, timeout: float) -> None:
    """Ask the broker for its topics; raise KafkaError if it cannot answer yet."""
    timeout_ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="surveil-probe",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _random_kafka_uuid() -> str:
    """Return a cluster id in Kafka's format: 16 random bytes, URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        # Kafka rejects ids that look like a command-line flag.
        if not text.startswith("-"):
            return text


def _escape_property(value: str) -> str:
    """Escape backslashes, which Java properties files treat as escapes (Windows paths)."""
    return value.replace("\\", "\\\\")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
