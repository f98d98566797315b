"""Several local Kafka nodes as one cluster: a controller quorum of them all, on 127.0.0.1.

Each node is a `LocalKafka` (broker and controller in one JVM) with a folder of its own,
``home/broker-<id>``; they share one cluster id. One node is the plain single-node broker,
whose folder is ``home`` itself. ``home/brokers`` records how many nodes the last start ran,
so that stopping and inspecting find them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from infra.broker import BrokerConfig, BrokerStatus, LocalKafka
from infra.brokerfiles import KAFKA_DIR, read_cluster_id
from infra.errors import ConfigError

_T = TypeVar("_T")
_SIZE_FILE = "brokers"


class LocalCluster:
    """Start, stop and inspect local Kafka nodes that form one cluster.

    Args:
        home: state folder of the cluster.
        ports: (client port, controller port) of each node, node 1 first.
        heap: JVM heap of each node.
        lib_dir: folder of the Kafka jars.
    """

    def __init__(
        self,
        home: Path,
        ports: Sequence[tuple[int, int]],
        heap: str = "1g",
        lib_dir: Path = KAFKA_DIR / "lib",
    ) -> None:
        """Keep the layout; nothing is started or written yet."""
        flat = [port for pair in ports for port in pair]
        if not ports or len(set(flat)) != len(flat):
            msg = f"each Kafka node needs two ports of its own, got {list(ports)}"
            raise ConfigError(msg)
        self.home = home.expanduser().resolve()
        quorum = tuple(controller for _, controller in ports) if len(ports) > 1 else ()
        self.nodes = [
            LocalKafka(
                BrokerConfig(
                    home=self.home / f"broker-{i}" if quorum else self.home,
                    port=port,
                    controller_port=controller,
                    heap=heap,
                    lib_dir=lib_dir,
                    node_id=i,
                    quorum=quorum,
                )
            )
            for i, (port, controller) in enumerate(ports, start=1)
        ]

    @property
    def bootstrap(self) -> str:
        """Return every node's client address, e.g. ``127.0.0.1:9092,127.0.0.1:9094``."""
        return ",".join(node.bootstrap for node in self.nodes)

    def status(self) -> list[BrokerStatus]:
        """Report each node's process, node 1 first."""
        return [node.status() for node in self.nodes]

    def answers(self, timeout: float = 3.0) -> list[bool]:
        """Whether each node answers a metadata request in time, node 1 first."""
        return self._each(lambda node: node.answers(timeout), self.nodes)

    def start(self, timeout: float = 90.0) -> bool:
        """Start the nodes not running and wait until all serve; False if all already ran.

        The nodes start together: none serves before a majority of the quorum runs.

        Raises:
            BrokerError: a node exited or did not answer in time; the nodes this call
                started are stopped again.
        """
        self.nodes[0].ensure_runtime()  # once, before the nodes would run Maven side by side
        self.home.mkdir(parents=True, exist_ok=True)
        if len(self.nodes) > 1:
            shared = read_cluster_id(self.home / "cluster.id")
            for node in self.nodes:
                node.home.mkdir(parents=True, exist_ok=True)
                node.cluster_id_file.write_text(f"{shared}\n", encoding="ascii")
        (self.home / _SIZE_FILE).write_text(f"{len(self.nodes)}\n", encoding="ascii")
        idle = [node for node in self.nodes if not node.status().running]
        try:
            self._each(lambda node: node.start(timeout), idle)
        except BaseException:
            self._each(lambda node: node.stop(), idle)
            raise
        return bool(idle)

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop every node at once, so that none waits alone for a quorum that left.

        Returns False if none was running.
        """
        return any(self._each(lambda node: node.stop(timeout), self.nodes))

    @staticmethod
    def _each(call: Callable[[LocalKafka], _T], nodes: list[LocalKafka]) -> list[_T]:
        if not nodes:
            return []
        with ThreadPoolExecutor(len(nodes), thread_name_prefix="kafka-node") as pool:
            return list(pool.map(call, nodes))


def started_size(home: Path) -> int:
    """How many nodes the last start from ``home`` ran (1 when none did)."""
    try:
        return int((home.expanduser() / _SIZE_FILE).read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError):
        return 1
