"""Keep secrets out of logs and stack dumps.

`Redactor` masks the configured secret values (a Slack webhook URL, a bot token, an SMTP
password, the endpoint's token) and whatever looks like one (Slack webhook paths, ``xox?-``
tokens, bearer tokens, passwords in URLs). `RedactingStream` applies it to everything a
process writes to stdout or stderr, which is where the worker's log goes; `dump_stacks`
prints every thread's stack and every asyncio task's without local variables.
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from typing import IO, TextIO, cast

MASK = "***"
# What a secret looks like even when no setting names it.
_PATTERNS = (
    re.compile(r"(https?://hooks\.slack\.com/)[^\s'\"<>]+"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(//[^:/@\s]+:)[^@\s/]+(?=@)"),
)


class Redactor:
    """Replace secrets in text with ``***``.

    Args:
        secrets: exact values to mask wherever they appear (short ones are ignored: a
            three-letter password would mask ordinary words).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        self._exact = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret masked."""
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
        return text


class RedactingStream(io.TextIOBase):
    """A text stream that writes through to another with secrets masked.

    Args:
        target: the stream written to (e.g. the original ``sys.stderr``).
        redact: the masking function.
    """

    def __init__(self, target: IO[str], redact: Redactor) -> None:
        self._target = target
        self._redact = redact

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The target's encoding."""
        return str(getattr(self._target, "encoding", "utf-8"))

    def fileno(self) -> int:
        """The target's file descriptor (faulthandler writes to it directly)."""
        return self._target.fileno()

    def isatty(self) -> bool:
        """Whether the target is a terminal."""
        return self._target.isatty()

    def write(self, text: str) -> int:
        """Write ``text`` with its secrets masked; return the characters given."""
        self._target.write(self._redact(text))
        return len(text)

    def flush(self) -> None:
        """Flush the target."""
        self._target.flush()


def install(redact: Redactor) -> None:
    """Mask secrets in everything this process writes to stdout and stderr from now on.

    Install it before logging is configured, so the handlers write through it.
    """
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = cast(TextIO, RedactingStream(sys.stdout, redact))
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = cast(TextIO, RedactingStream(sys.stderr, redact))


def dump_stacks(out: IO[str], loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Print every thread's stack, and the tasks of ``loop``, without local variables."""
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():  # noqa: SLF001 - the one API for it
        print(f"THREAD {names.get(ident, ident)}", file=out)
        print("".join(traceback.format_stack(frame)), file=out)
    if loop is not None:
        for task in asyncio.all_tasks(loop):
            print(f"TASK {task.get_name()} {task.get_coro()!r}", file=out)
            task.print_stack(file=cast(TextIO, out))
    out.flush()
