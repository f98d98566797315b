"""The bearer token of the worker's query endpoint, kept in ``<state_dir>/query.token``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from infra.errors import StateError

TOKEN_FILE = "query.token"  # noqa: S105 - the file's name, not a secret


def token_path(state_dir: Path) -> Path:
    """Return where the worker keeps the endpoint's bearer token."""
    return state_dir / TOKEN_FILE


def read_token(path: Path) -> str | None:
    """Return the token of a token file, or None when there is none yet.

    Raises:
        StateError: the file is there but cannot be read.
    """
    try:
        token = path.read_text("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the query token {path}: {exc}"
        raise StateError(msg) from exc
    return token or None


def ensure_token(path: Path) -> str:
    """Return the endpoint's bearer token, writing a new one (mode 0600) when there is none.

    An existing token is kept, so clients keep working across worker restarts; delete the
    file to change it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    token = read_token(path)
    if token is not None:
        path.chmod(0o600)  # a copied or restored file may have come back readable to others
        return token
    token = secrets.token_urlsafe(32)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    # Created 0600 and only then filled: the token is never readable by others, not even
    # for a moment, whatever the umask.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.replace(partial, path)
    return token
