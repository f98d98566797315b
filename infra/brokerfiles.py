"""What the local Kafka broker runs from: Java, the jars, server.properties and its storage."""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from infra.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

KAFKA_DIR: Path = Path(__file__).parent / "kafka"
MIN_JAVA = 17
LOG_TAIL_LINES = 30
_MAVEN_TAIL_LINES = 40
NO_JAVA = (
    "Java 17+ is needed to run the local Kafka broker: install a JDK "
    "(e.g. apt-get install openjdk-17-jre-headless) "
    "or point SURVEIL_KAFKA_BROKER at a running broker"
)
_NO_MAVEN = (
    "Maven is needed once to fetch the Kafka jars into {lib}: install it "
    "(e.g. apt-get install maven) or point SURVEIL_KAFKA_BROKER at a running broker"
)


def ensure_runtime(lib_dir: Path) -> None:
    """Check that Java is installed and fetch the Kafka jars into ``lib_dir`` if missing.

    Raises:
        ConfigError: Java (17 or later) or, while the jars are missing, Maven is not installed.
        BrokerError: Maven could not fetch the jars.
    """
    java = shutil.which("java")
    if java is None:
        raise ConfigError(NO_JAVA)
    _check_java_version(java)
    if any(lib_dir.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigError(_NO_MAVEN.format(lib=lib_dir))
    pom = KAFKA_DIR / "pom.xml"
    if lib_dir == (KAFKA_DIR / "lib").resolve():
        cmd = [mvn, "-q", "-B", "package", "-f", str(pom)]
    else:
        # The pom's execution writes to its own lib/; a direct goal call takes the folder.
        cmd = [
            mvn, "-q", "-B", "dependency:copy-dependencies",
            f"-DoutputDirectory={lib_dir}", "-DincludeScope=runtime", "-f", str(pom),
        ]  # fmt: skip
    log.info("fetching the Kafka jars into %s with Maven", lib_dir)
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not any(lib_dir.glob("kafka_2.13-*.jar")):
        tail = tail_text(done.stdout + done.stderr, _MAVEN_TAIL_LINES)
        msg = f"Maven could not fetch the Kafka jars (exit {done.returncode}):\n{tail}"
        raise BrokerError(msg)


def java_command(lib_dir: Path, logs_dir: Path) -> list[str]:
    """Return the ``java`` command line that runs a class of the Kafka jars.

    Raises:
        ConfigError: Java is not installed.
    """
    java = shutil.which("java")
    if java is None:
        raise ConfigError(NO_JAVA)
    return [
        java,
        # Sockets then show as plain 127.0.0.1, never as an IPv6 wildcard.
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={logs_dir}",
        "-cp",
        f"{lib_dir}/*",
    ]


def server_properties(
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
    node_id: int = 1,
    quorum: tuple[int, ...] = (),
) -> str:
    """Return the server.properties of one KRaft node (broker and controller) on ``host``.

    Args:
        node_id: this node's id, its place in ``quorum`` counted from 1.
        quorum: the controller ports of every node of the cluster, node 1 first; empty for a
            node alone. Three or more nodes replicate every topic three times and acknowledge
            a write once two replicas have it.
    """
    voters = quorum or (controller_port,)
    replicas = min(len(voters), 3)
    min_isr = "2" if replicas >= 3 else "1"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": ",".join(
            f"{i}@{host}:{voter}" for i, voter in enumerate(voters, start=1)
        ),
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        # Faust creates its internal topics by producing to them.
        "auto.create.topics.enable": "true",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": min_isr,
        # Internal topics: one replica on a node alone, three on a cluster.
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": min_isr,
        # Nobody else will join the group, so do not wait for them.
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = ["# Written by infra/broker.py on every start; edits are lost."]
    lines += [f"{key}={_escape_property(value)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def format_storage(java: list[str], data_dir: Path, properties: Path, cluster_id: Path) -> None:
    """Format the broker's storage once, with the cluster id kept in ``cluster_id``.

    Raises:
        BrokerError: Kafka's storage tool failed.
    """
    if (data_dir / "meta.properties").exists():
        return
    cmd = [
        *java,
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        read_cluster_id(cluster_id),
        "-c",
        str(properties),
    ]
    log.info("formatting Kafka storage in %s", data_dir)
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd, capture_output=True, text=True, check=False, cwd=properties.parent
    )
    if done.returncode != 0:
        tail = tail_text(done.stdout + done.stderr, LOG_TAIL_LINES)
        msg = f"formatting the Kafka storage in {data_dir} failed:\n{tail}"
        raise BrokerError(msg)


def tail_text(text: str, lines: int) -> str:
    """Return the last ``lines`` lines of a text."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_cluster_id(path: Path) -> str:
    """Return the cluster id kept in ``path``, made (and kept there) on first use."""
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    made = _random_kafka_uuid()
    path.write_text(f"{made}\n", encoding="ascii")
    return made


def _check_java_version(java: str) -> None:
    """Raise ConfigError if `java` is older than 17; an unreadable version passes."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [java, "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"{NO_JAVA} ({java} -version failed: {exc})"
        raise ConfigError(msg) from exc
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if found is None:
        return
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8.0_392" style
        major = int(found.group(2))
    if major < MIN_JAVA:
        msg = f"{NO_JAVA} (found Java {major} at {java})"
        raise ConfigError(msg)


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
