"""Writing local files so that a crash never leaves half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path``: the old file or the new one, never a torn one.

    The folder is created when missing; the JSON goes to a temporary file beside ``path``
    that then replaces it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(value), "utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
