"""Closing as a context manager, for every class that owns something to close."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """A base whose instances close at the end of a ``with`` block; subclasses define ``close``."""

    def close(self) -> None:
        """Release what the instance holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
