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
from typing import Any, NamedTuple

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


def short_device_name(device: str) -> str:
    """A provenance device short enough for a caption: memory size and form factor dropped from GPU names.

    'NVIDIA H100 80GB HBM3' → 'NVIDIA H100', 'NVIDIA A100-SXM4-40GB' → 'NVIDIA A100', 'NVIDIA GeForce RTX 4090' →
    'NVIDIA RTX 4090'; a CPU model stays as it is. A resumed run's 'A + resumed on B' keeps A, where it started.
    """
    import re

    first = device.split(" + resumed on ")[0]
    if not first.startswith("NVIDIA"):
        return first
    noise = r"\d+GB|HBM\w*|PCIe|SXM\w*|NVL|GeForce"
    first = re.sub(rf"[- ]({noise})(?=$|[- ])", "", first, flags=re.IGNORECASE)
    return " ".join(first.split())


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


def named_run_path(folder: Path, path_or_name: str | Path) -> Path:
    """A committed run's name (``"bias"``) → ``folder/bias.json``; a path (with a folder or ``.json``) as it is."""
    text = str(path_or_name)
    if "/" in text or text.endswith(".json"):
        return Path(path_or_name)
    return folder / f"{text}.json"


def regenerate_command(commands: dict[str, str], trainer: str, path: Path) -> str:
    """The command that wrote a committed log (from ``commands``), else the trainer with that run name."""
    return commands.get(path.stem, f"python -m {trainer} --name {path.stem} [options as in its 'command']")



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


# --- MoE routing runs (scripts/train_moe.py → media/runs/moe/NAME.json) ---------------------------------------------

MOE_RUNS_DIR = RUNS_DIR / "moe"
# The exact command that wrote each committed MoE log (also in media/runs/moe/README.md and in each log's "command").
MOE_COMMANDS = {
    "none": "python -m scripts.train_moe --strategy none --name none",
    "aux_loss": "python -m scripts.train_moe --strategy aux_loss --name aux_loss",
    "bias": "python -m scripts.train_moe --strategy bias --name bias",
    "none_no_offset": "python -m scripts.train_moe --strategy none --input-offset 0.0 --name none_no_offset",
}
MOE_REQUIRED = {
    "top": ("routing_by_cluster",),
    "config": ("strategy", "seed", "n_experts", "top_k", "batch_size", "steps", "log_every"),
    "history": ("step", "loss", "load", "load_window", "eval_loss", "eval_load"),
}
# "Loads have evened out" when every expert carries within ±35% of the mean load of a logged window, and stays so.
EVEN_LOAD_TOLERANCE = 0.35


def moe_run_path(path_or_name: str | Path) -> Path:
    """``"bias"`` → ``media/runs/moe/bias.json``; a path (with a folder or ``.json``) is taken as it is."""
    return named_run_path(MOE_RUNS_DIR, path_or_name)


def moe_regenerate_command(path_or_name: str | Path) -> str:
    """The command that writes this MoE log (for a name not committed: the trainer with that name)."""
    return regenerate_command(MOE_COMMANDS, "scripts.train_moe", moe_run_path(path_or_name))


def load_moe_run(path_or_name: str | Path) -> dict:
    """Load and validate a log written by ``scripts/train_moe.py``.

    Beyond :func:`load_run_log`'s checks: every load vector has one count per expert, a batch's load sums to
    ``batch_size · top_k``, ``bias`` runs log the bias vector, the other strategies the auxiliary loss.

    Raises
    ------
    RunLogError
        Naming the file and the command that regenerates it.
    """
    path = moe_run_path(path_or_name)
    regenerate = moe_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=MOE_REQUIRED)
    config = log["config"]
    n_experts, slots_per_batch = config["n_experts"], config["batch_size"] * config["top_k"]
    per_strategy_key = "bias" if config["strategy"] == "bias" else "aux_loss"

    def fail(message: str):
        raise RunLogError(f"Run log {path}: {message}. Regenerate it with: {regenerate}")

    for i, record in enumerate(log["history"]):
        for key in ("load", "load_window", "eval_load"):
            if not isinstance(record[key], list) or len(record[key]) != n_experts:
                fail(f"history[{i}].{key} must list {n_experts} token counts, one per expert")
        if sum(record["load"]) != slots_per_batch:
            fail(f"history[{i}].load sums to {sum(record['load'])}, not batch_size·top_k = {slots_per_batch}")
        if per_strategy_key not in record:
            fail(f"history[{i}] lacks '{per_strategy_key}' (a {config['strategy']} run logs it at every step)")
        if per_strategy_key == "bias" and len(record["bias"]) != n_experts:
            fail(f"history[{i}].bias must hold {n_experts} values, one per expert")
    routing = log["routing_by_cluster"]
    if not routing or any(len(row) != n_experts for row in routing):
        fail(f"routing_by_cluster must be a [cluster][expert] table with {n_experts} columns")
    return log


def moe_load_spread(log: dict, index: int = -1) -> dict:
    """What a histogram of tokens per expert says, for the logged window ``history[index]`` (default: the last).

    Uses ``load_window`` (every token of the ``log_every`` steps up to that record), not the single-batch ``load``.

    Returns
    -------
    dict
        ``loads`` (tokens per expert), ``max``, ``min``, ``max_over_min`` (None when an expert got nothing),
        ``busiest_expert``, ``busiest_token_share`` (fraction of the window's tokens that went to the busiest expert,
        1.0 = every token), ``fair_token_share`` (k/N, each expert's share at perfect balance), ``max_over_mean``,
        ``idle_experts`` (experts that got no token), ``step``.
    """
    record = log["history"][index]
    loads = [int(v) for v in record["load_window"]]
    top_k, n_experts = log["config"]["top_k"], log["config"]["n_experts"]
    n_tokens = sum(loads) / top_k  # each token fills k slots
    busiest = max(range(n_experts), key=lambda e: (loads[e], -e))
    return {
        "step": record["step"],
        "loads": loads,
        "max": max(loads),
        "min": min(loads),
        "max_over_min": max(loads) / min(loads) if min(loads) else None,
        "busiest_expert": busiest,
        "busiest_token_share": loads[busiest] / n_tokens,
        "fair_token_share": top_k / n_experts,
        "max_over_mean": max(loads) / (sum(loads) / n_experts),
        "idle_experts": [e for e in range(n_experts) if loads[e] == 0],
    }


def moe_balance_step(log: dict, tolerance: float = EVEN_LOAD_TOLERANCE) -> int | None:
    """The first logged step from which every later window has every expert within ±``tolerance`` of the mean load.

    None when the loads never settle so (e.g. a collapsed router). Step 0's window is a single batch and counts too.
    """
    settled_since = None
    for record in log["history"]:
        loads = record["load_window"]
        mean = sum(loads) / len(loads)
        if all(abs(v - mean) <= tolerance * mean for v in loads):
            settled_since = record["step"] if settled_since is None else settled_since
        else:
            settled_since = None
    return settled_since


def moe_claims(log: dict) -> dict:
    """Every number a scene states about one MoE run, derived from its log (for on-screen text and the manifest)."""
    spread = moe_load_spread(log)
    final = log["history"][-1]
    return {
        "strategy": log["config"]["strategy"],
        "final_step": final["step"],
        "final_eval_loss": final["eval_loss"],
        "final_loads": spread["loads"],
        "max_tokens": spread["max"],
        "min_tokens": spread["min"],
        "max_over_min": spread["max_over_min"],
        "busiest_expert": spread["busiest_expert"],
        "busiest_token_share": spread["busiest_token_share"],
        "fair_token_share": spread["fair_token_share"],
        "idle_experts": spread["idle_experts"],
        "balance_step": moe_balance_step(log),
        "final_bias": final.get("bias"),
        "device": log["provenance"]["device"],
        "wall_seconds": log["provenance"]["wall_seconds"],
    }


# --- grokking runs (scripts/train_grokking.py → media/runs/grokking/NAME.json) -------------------------------------


GROKKING_RUNS_DIR = RUNS_DIR / "grokking"
# The exact command that wrote each committed grokking log (also in media/runs/grokking/README.md and in each log's
# "command"). Run from the repository root.
GROKKING_COMMANDS = {
    "add_p59_wd1_seed0": "python -m scripts.train_grokking",
    "add_p59_wd1_seed1": "python -m scripts.train_grokking --seed 1",
    "add_p59_wd1_seed2": "python -m scripts.train_grokking --seed 2",
    "add_p59_wd0_seed0": "python -m scripts.train_grokking --weight-decay 0 --steps 20000",
    "add_p59_wd1_frac0.4_seed0": "python -m scripts.train_grokking --train-fraction 0.4 --steps 20000",
    "add_p59_wd1_frac0.3_seed0": "python -m scripts.train_grokking --train-fraction 0.3 --steps 40000",
    "add_p113_wd1_frac0.3_transformer_seed0":
        "python -m scripts.train_grokking --p 113 --train-fraction 0.3 --model transformer --steps 30000",
}
GROKKING_REQUIRED = {
    "top": ("command", "split", "snapshots"),
    "config": ("operation", "p", "train_fraction", "model", "lr", "beta1", "beta2", "weight_decay", "warmup_steps",
               "seed", "steps"),
    "history": ("step", "train_loss", "test_loss", "train_acc", "test_acc", "weight_norm"),
}
GROKKING_SNAPSHOT_KEYS = ("step", "train_acc", "test_acc", "weight_norm", "embedding_fourier_power", "correct")
# Phase boundaries (issue 4): memorised at train accuracy ≥ 99%, grokking under way at test accuracy ≥ 50%,
# generalised at test accuracy ≥ 99%.
MEMORIZED_TRAIN_ACC = 0.99
GROKKING_TEST_ACC = 0.5
GENERALIZED_TEST_ACC = 0.99


class GrokkingPhases(NamedTuple):
    """Logged steps at which a run crosses each phase boundary; None where it never does."""

    memorized: int | None  # first step with train_acc ≥ MEMORIZED_TRAIN_ACC (end of 背诵)
    grokking: int | None  # first step with test_acc ≥ GROKKING_TEST_ACC (the jump, 顿悟)
    generalized: int | None  # first step with test_acc ≥ GENERALIZED_TEST_ACC


def grokking_run_path(path_or_name: str | Path) -> Path:
    """``"add_p59_wd1_seed0"`` → ``media/runs/grokking/add_p59_wd1_seed0.json``; a path (with a folder or ``.json``)
    is taken as it is."""
    return named_run_path(GROKKING_RUNS_DIR, path_or_name)


def grokking_regenerate_command(path_or_name: str | Path) -> str:
    """The command that writes this grokking log (for a name not committed: the trainer with that name)."""
    return regenerate_command(GROKKING_COMMANDS, "scripts.train_grokking", grokking_run_path(path_or_name))


def load_grokking_run(path_or_name: str | Path) -> dict:
    """Load and validate a log written by ``scripts/train_grokking.py``.

    Beyond :func:`load_run_log`'s checks: accuracies lie in [0, 1]; ``split["train"]`` and every snapshot's
    ``correct`` are p rows of p '0'/'1' characters (row a, column b = the pair (a, b)); every snapshot has its step
    in the history and a Fourier power spectrum of p//2 + 1 shares summing to 1.

    Parameters
    ----------
    path_or_name
        A committed run's name (``"add_p59_wd1_seed0"``) or a path to a log.

    Raises
    ------
    RunLogError
        Naming the file and the command that regenerates it.
    """
    path = grokking_run_path(path_or_name)
    regenerate = grokking_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=GROKKING_REQUIRED)
    p = log["config"]["p"]

    def fail(message: str):
        raise RunLogError(f"Run log {path}: {message}. Regenerate it with: {regenerate}")

    def check_grid(rows, where: str):
        if not isinstance(rows, list) or len(rows) != p or any(
            not isinstance(r, str) or len(r) != p or set(r) - {"0", "1"} for r in rows
        ):
            fail(f"{where} must be {p} strings of {p} '0'/'1' characters")

    for i, record in enumerate(log["history"]):
        if not all(0.0 <= record[k] <= 1.0 for k in ("train_acc", "test_acc")):
            fail(f"history[{i}] has an accuracy outside [0, 1]")
    check_grid(log["split"].get("train") if isinstance(log["split"], dict) else None, "split.train")
    logged = {r["step"] for r in log["history"]}
    for i, snapshot in enumerate(log["snapshots"]):
        missing = [k for k in GROKKING_SNAPSHOT_KEYS if k not in snapshot]
        if missing:
            fail(f"snapshots[{i}] lacks {', '.join(missing)}")
        if snapshot["step"] not in logged:
            fail(f"snapshots[{i}] is at step {snapshot['step']}, which the history does not log")
        power = snapshot["embedding_fourier_power"]
        if len(power) != p // 2 + 1 or abs(sum(power) - 1.0) > 1e-4:
            fail(f"snapshots[{i}].embedding_fourier_power must hold {p // 2 + 1} shares summing to 1")
        check_grid(snapshot["correct"], f"snapshots[{i}].correct")
    return log


def grokking_phase_steps(log: dict) -> GrokkingPhases:
    """The phase boundaries of a grokking run, derived from its history (issue 4).

    Returns
    -------
    GrokkingPhases
        ``memorized``: first logged step with train accuracy ≥ 0.99; ``grokking``: first with test accuracy ≥ 0.5;
        ``generalized``: first with test accuracy ≥ 0.99. None where the run never gets there. Steps are as precise
        as the log's schedule (a record every ``log_every`` steps at most).
    """

    def first_step(key: str, threshold: float) -> int | None:
        return next((r["step"] for r in log["history"] if r[key] >= threshold), None)

    return GrokkingPhases(
        memorized=first_step("train_acc", MEMORIZED_TRAIN_ACC),
        grokking=first_step("test_acc", GROKKING_TEST_ACC),
        generalized=first_step("test_acc", GENERALIZED_TEST_ACC),
    )


def grokking_grid(rows: list[str]):
    """p '0'/'1' strings (a log's ``split["train"]`` or a snapshot's ``correct``) → numpy bool array (p, p)."""
    import numpy as np

    return np.array([[c == "1" for c in row] for row in rows], dtype=bool)


def grokking_snapshot(log: dict, step: int) -> dict:
    """The snapshot logged at ``step``; KeyError naming the steps that have one otherwise."""
    for snapshot in log["snapshots"]:
        if snapshot["step"] == step:
            return snapshot
    raise KeyError(f"no snapshot at step {step}; snapshots: {[s['step'] for s in log['snapshots']]}")
