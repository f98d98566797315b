"""What the benchmarks share: the machine and load they print, and a worker's settings."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from infra.broker import free_port
from infra.settings import Settings
from infra.topics import ensure_topics
from streams.topics import ALL_TOPICS, with_prefix


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    """Return the 1-minute load average: other work on the machine skews every number."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def package_version(package: str) -> str:
    """Return an installed package's version, or ``not installed``."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


@contextmanager
def whole_run(prefix: str = "# ") -> Iterator[None]:
    """Print how long the run took and the load average then and at its start, if it succeeds."""
    started = time.perf_counter()
    load_at_start = load_average()
    yield
    elapsed = time.perf_counter() - started
    now = load_average()
    print(f"{prefix}{elapsed:.0f} s in all; load average {now} (at the start {load_at_start})")


def machine_and_load(load_at_start: float) -> str:
    """Return the machine line of a broker benchmark, with the load average then and now."""
    return (
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {load_at_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )


def worker_settings(
    folder: Path, bootstrap: str, partitions: int, rules: str, **extra: Any
) -> Settings:
    """Write the rules file, make every topic, and return the settings of this run's workers.

    Args:
        folder: the run's folder: the rules file and the worker's state go there.
        extra: further settings, e.g. ``shared_dir``.
    """
    path = folder / "rules.yaml"
    path.write_text(rules)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        state_dir=folder / "state",
        kafka_broker=f"kafka://{bootstrap}",
        kafka_partitions=partitions,
        web_port=free_port(),
        alert_rules=path,
        **extra,
    )
    ensure_topics(settings.bootstrap_servers, with_prefix("", ALL_TOPICS), partitions)
    return settings
