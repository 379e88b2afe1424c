"""The export pipeline behind the ``explainer`` command line: render scenes with manim in a subprocess, then turn
the rendered frames into budgeted article GIFs, 9:16 short videos with mixed audio, covers and a phone preview page.

Every module here raises :class:`ExportError` with a message meant for the writer (what went wrong, what was
measured, what to change); the CLI prints it and exits non-zero.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENES_DIR = ROOT / "scenes"
MEDIA_ENV = "EXPLAINER_MEDIA"


class ExportError(Exception):
    """A problem the writer can fix; the message says what and how."""


def media_root() -> Path:
    """Where renders, caches and exports go: ``$EXPLAINER_MEDIA`` if set, else ``media/`` in the repository."""
    return Path(os.environ.get(MEDIA_ENV) or ROOT / "media").resolve()


@contextlib.contextmanager
def scratch_dir(prefix: str):
    """A temporary folder under the media folder's ``cache/tmp`` (large intermediate files stay on the media disk),
    removed afterwards."""
    root = media_root() / "cache" / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=prefix) as folder:
        yield Path(folder)


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` that keeps Chinese characters (``为什么需要位置`` stays as it is)."""
    import re
    import unicodedata

    normalized = unicodedata.normalize("NFKC", text)
    return re.sub(r"[^\w]+", "-", normalized).strip("-_") or "section"


def ensure_writable_dir(folder: Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there; :class:`ExportError` otherwise.

    Checked before any rendering, so a bad ``--out`` fails in seconds, not after a render.
    """
    import tempfile

    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ExportError(f"Cannot write to the {what} {folder}: {error.strerror or error}.") from error
    return folder.resolve()
