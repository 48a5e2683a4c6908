"""Writing files so that nothing at a final path is ever half written.

Every write goes to a uniquely named temp file beside the target, then an atomic rename;
the temp file is removed if anything fails in between.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON to ``path`` (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False, default=str))
