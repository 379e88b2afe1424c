"""Atomic writes: everything the project writes goes to a temp file beside the target and is renamed into place,
so an interrupted run never leaves a half-written file where a good one was."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None):
    """Yield a temp path in ``target``'s folder; on success rename it onto ``target``, on error delete it.

    ``suffix`` defaults to the target's, so tools that pick a format from the extension (ffmpeg) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=suffix or target.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(target, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target, obj, indent: int | None = 1) -> Path:
    """JSON with non-ASCII kept readable (Chinese section names stay Chinese)."""
    return write_text_atomic(target, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")
