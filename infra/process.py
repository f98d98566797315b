"""The broker's JVM as a process: spawn it, know it by its pid file, stop it.

A pid file can outlive its process, and the pid can be reused by another: the process is
ours only while its command line names our class and properties file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from infra.errors import BrokerError

log = logging.getLogger(__name__)

_POLL_S = 0.25


class BrokerProcess:
    """The broker process recorded in ``pid_file`` whose command line holds ``marks``.

    Args:
        pid_file: where the pid of a running broker is kept.
        marks: arguments the command line of our process holds (class, properties file).
    """

    def __init__(self, pid_file: Path, marks: tuple[str, ...]) -> None:
        self.pid_file = pid_file
        self._marks = marks
        # Set only in the Python process that spawned the broker, to reap it.
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self, cmd: list[str], output: Path, cwd: Path) -> int:
        """Start ``cmd`` in its own session, output appended to ``output``; return its pid."""
        with output.open("ab") as out:
            # Own session: Ctrl-C in the shell that ran `surveil` must not hit the broker.
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n", encoding="ascii")
        return self._proc.pid

    def exit_code(self) -> int | None:
        """Return the exit code of the process this object spawned, None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def read_pid(self) -> int | None:
        """Return the pid in the pid file; a torn or foreign one is removed."""
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

    def is_ours(self, pid: int) -> bool:
        """Whether ``pid`` runs and is our broker, not an exited child or a reused pid."""
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
        return all(mark in args for mark in self._marks)

    def stop(self, pid: int, timeout: float) -> None:
        """Send SIGTERM, then SIGKILL after ``timeout`` seconds; remove the pid file.

        Raises:
            BrokerError: the process survived SIGKILL.
        """
        self._terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.exit_code()  # reaps our child, if it was one
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
        while self.is_ours(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
