"""Run logs of real training runs (``media/runs/``): provenance, writing, loading and validation.

A run log is a JSON object written by a training script in ``scripts/`` and committed. It holds ``config`` (every
hyperparameter and the seed), ``provenance`` (device, torch and CUDA versions, git commit, start time, wall
seconds), ``history`` (one record per logged step) and, per kind, more (``snapshots``...). Scenes read logs only
through this module, which fails with an error naming the file and the command that regenerates it (DESIGN §7).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from shared.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = ROOT / "media" / "runs"
PROVENANCE_KEYS = ("device", "torch_version", "cuda_version", "git_commit", "started_at", "wall_seconds")


class RunLogError(ValueError):
    """A run log is missing or malformed. The message names the file and how to regenerate it."""


# --- provenance ----------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), e.g. 'AMD EPYC 7B13 (2 cores)'."""
    import os

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def device_name(device) -> str:
    """Human name of a torch device: the CUDA device name (e.g. 'NVIDIA H100 80GB HBM3') or the CPU model."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def git_commit() -> str | None:
    """The repository's HEAD commit, with '-dirty' when tracked files differ; None outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=ROOT, capture_output=True).returncode
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def start_provenance(device) -> dict[str, Any]:
    """Provenance at the start of a run; the trainer fills ``wall_seconds`` at the end."""
    import torch

    return {
        "device": device_name(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if torch.device(device).type == "cuda" else None,
        "git_commit": git_commit(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": None,
    }


def pick_device(choice: str = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error that says so."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto.")
    return choice


# --- writing and reading -------------------------------------------------------------------------------------------


def write_run_log(path: str | Path, log: dict[str, Any]) -> Path:
    """Write ``log`` atomically (temp file + rename) as JSON."""
    return write_json_atomic(path, log, indent=None)


def load_run_log(path: str | Path, regenerate: str, required: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Load and validate a run log.

    Parameters
    ----------
    path
        The JSON file.
    regenerate
        The command that writes this file, quoted in every error.
    required
        Extra keys a kind of log needs: ``{"config": (...), "history": (...), "top": (...)}``; ``history`` keys are
        required in every record.

    Raises
    ------
    RunLogError
        When the file is missing, not JSON, or lacks ``config``/``provenance``/``history`` or a required key.
    """
    path = Path(path)
    required = required or {}
    hint = f"Regenerate it with: {regenerate}"
    if not path.exists():
        raise RunLogError(f"Run log {path} does not exist. {hint}")
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunLogError(f"Run log {path} is not valid JSON ({err}). {hint}") from err
    if not isinstance(log, dict):
        raise RunLogError(f"Run log {path} must hold a JSON object, found {type(log).__name__}. {hint}")
    for key in ("config", "provenance", "history", *required.get("top", ())):
        if key not in log:
            raise RunLogError(f"Run log {path} has no '{key}'. {hint}")
    missing = [k for k in PROVENANCE_KEYS if k not in log["provenance"]]
    if missing:
        raise RunLogError(f"Run log {path}: provenance lacks {', '.join(missing)}. {hint}")
    missing = [k for k in required.get("config", ()) if k not in log["config"]]
    if missing:
        raise RunLogError(f"Run log {path}: config lacks {', '.join(missing)}. {hint}")
    history = log["history"]
    if not isinstance(history, list) or not history:
        raise RunLogError(f"Run log {path}: history must be a non-empty list of records. {hint}")
    for i, record in enumerate(history):
        missing = [k for k in required.get("history", ()) if k not in record]
        if missing:
            raise RunLogError(f"Run log {path}: history[{i}] lacks {', '.join(missing)}. {hint}")
    steps = [r.get("step") for r in history]
    if "step" in required.get("history", ()) and any(b <= a for a, b in zip(steps, steps[1:])):
        raise RunLogError(f"Run log {path}: history steps are not strictly increasing. {hint}")
    return log
