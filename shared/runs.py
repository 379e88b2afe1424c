"""Run logs of real training runs (``media/runs/``): provenance, writing, loading and validation.

A run log is a JSON object written by a training script in ``scripts/`` and committed. It holds ``config`` (every
hyperparameter and the seed), ``provenance`` (below), ``history`` (one record per logged step) and, per kind, more
(``snapshots``...). Scenes read logs only through this module, which fails with a :class:`RunLogError` naming the
file and the command that regenerates it, for a missing key and for a value of the wrong type alike. Every log loaded
is added to :data:`LOADED_RUN_LOGS`.

Provenance
    ``device``, ``torch_version``, ``cuda_version`` (None on a CPU), ``git_commit`` ('-dirty' when tracked files
    differed from it) and ``started_at`` describe the session that started the run; ``wall_seconds`` is the training
    time of all its sessions together; ``resumed`` lists the sessions that continued it from a checkpoint, each as
    ``{"step", "device", "torch_version", "cuda_version", "git_commit", "started_at"}`` (``[]`` for a run trained in
    one go). Trainers build it with :func:`start_provenance` and :func:`resume_provenance` and may add keys of their
    own (``torch_threads``, ``sweep``). Logs written before ``resumed`` existed lack it (read it as ``[]``); a run of
    that time resumed on another device has 'A + resumed on B' as its ``device``, which :func:`short_device_name`
    reads too.

Overwriting
    A log is written only when its run finishes, so an existing log is a finished run, and in ``media/runs/`` a
    committed one. :func:`refuse_overwrite` stops a trainer from starting a run over it without ``--force``. A
    checkpoint marks a run that has not finished; resuming it into its log needs no flag (starting it did).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import click

from shared.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = ROOT / "media" / "runs"
SESSION_KEYS = ("device", "torch_version", "cuda_version", "git_commit", "started_at")  # one training session
PROVENANCE_KEYS = (*SESSION_KEYS, "wall_seconds")

# Resolved paths of every run log that load_run_log (so every load_*_run) has loaded in this process. A renderer
# that records which logs a scene read (for its manifest) clears this set before the scene and reads it afterwards.
LOADED_RUN_LOGS: set[Path] = set()


class RunLogError(ValueError):
    """A run log is missing or malformed. The message names the file and how to regenerate it."""


class RunExistsError(click.ClickException):
    """A trainer would start a run over a finished run's log. The message names the file and ``--force``."""


# --- provenance ----------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), e.g. 'AMD EPYC 7B13 (2 cores)'."""
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
    'NVIDIA RTX 4090'; a CPU model stays as it is. An older log's 'A + resumed on B' keeps A, where it started.
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


def _session(device) -> dict[str, Any]:
    import torch

    return {
        "device": device_name(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if torch.device(device).type == "cuda" else None,
        "git_commit": git_commit(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def start_provenance(device) -> dict[str, Any]:
    """Provenance at the start of a fresh run (see the module docstring); the trainer fills ``wall_seconds``."""
    return {**_session(device), "wall_seconds": None, "resumed": []}


def resume_provenance(saved: dict[str, Any], device, step: int) -> dict[str, Any]:
    """Provenance of a run resumed at ``step`` on ``device``: the one its checkpoint saved, with this session added
    to ``resumed``."""
    return {**saved, "resumed": [*saved.get("resumed", []), {"step": step, **_session(device)}]}


def pick_device(choice: str = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error that says so."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto.")
    return choice


@contextlib.contextmanager
def deterministic_torch(threads: int | None = None, warn_only: bool = True):
    """Torch set up for a reproducible run while the block runs; the caller's settings come back afterwards.

    ``torch.use_deterministic_algorithms(True, warn_only=warn_only)``, ``threads`` CPU threads when given, and
    deterministic cuBLAS (``CUBLAS_WORKSPACE_CONFIG``, PyTorch's "Reproducibility" notes; set before the first
    matmul, left set). A caller such as a test session keeps its own thread count and determinism flags.
    """
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())  # fmt: skip
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


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


def refuse_overwrite(paths, *, resuming: bool, force: bool) -> None:
    """Raise :class:`RunExistsError` when a run is about to start over an existing log (see the module docstring).

    Parameters
    ----------
    paths
        The log files the run will write.
    resuming
        The run continues from its checkpoint: it is unfinished, and starting it was allowed then.
    force
        ``--force``: overwrite on purpose.
    """
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not (resuming or force):
        raise RunExistsError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: a finished run (the ones in "
            "media/runs/ are committed). Pass --force to train again and overwrite it, or give the run another name."
        )


def write_run_log(path: str | Path, log: dict[str, Any]) -> Path:
    """Write ``log`` atomically (temp file + rename) as JSON."""
    return write_json_atomic(path, log, indent=None)


NUMBER = (int, float)  # a JSON number; true and false are not numbers here
PROVENANCE_TYPES = {"device": str, "torch_version": str, "cuda_version": (str, None), "git_commit": (str, None),
                    "started_at": str, "wall_seconds": NUMBER}  # fmt: skip
RESUMED_SESSION_TYPES = {"step": int, **{k: PROVENANCE_TYPES[k] for k in SESSION_KEYS}}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object",
               bool: "true or false", type(None): "null"}  # fmt: skip


def _types(kinds) -> tuple[type, ...]:
    """A type, or a tuple of types with None for JSON null, as a tuple of types."""
    return tuple(type(None) if k is None else k for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def json_type_ok(value, kinds) -> bool:
    """``isinstance`` for a parsed JSON value: ``kinds`` as in :data:`PROVENANCE_TYPES`; a bool is no number."""
    kinds = _types(kinds)
    if object in kinds:
        return True
    return isinstance(value, bool) == (bool in kinds) and isinstance(value, kinds)


def _describe(kinds) -> str:
    kinds = _types(kinds)
    names = [_TYPE_NAMES[k] for k in kinds if not (k is int and float in kinds)]  # int or float: "a number"
    return " or ".join(names)


def _spec(spec) -> dict[str, Any]:
    """Required keys as ``{name: type(s)}``; a tuple of names accepts any type."""
    return dict(spec) if isinstance(spec, dict) else {name: object for name in spec}


def _failer(path: Path, regenerate: str):
    def fail(message: str):
        raise RunLogError(f"Run log {path}: {message}. Regenerate it with: {regenerate}")

    return fail


def check_fields(obj: dict, spec, where: str, fail) -> None:
    """Call ``fail`` unless ``obj`` has every key of ``spec`` with a value of its type.

    ``spec``: ``{name: type or tuple of types (None for null)}``, or a tuple of names of any type; ``where`` names
    ``obj`` in the message ('' for the log itself).
    """
    spec = _spec(spec)
    missing = [k for k in spec if k not in obj]
    if missing:
        fail(f"{where} lacks {', '.join(missing)}")
    for key, kinds in spec.items():
        if not json_type_ok(obj[key], kinds):
            fail(f"{f'{where}.{key}' if where else repr(key)} must be {_describe(kinds)}, not "
                 f"{json.dumps(obj[key])[:40]}")


def load_run_log(path: str | Path, regenerate: str, required: dict | None = None) -> dict:
    """Load and validate a run log.

    Parameters
    ----------
    path
        The JSON file.
    regenerate
        The command that writes this file, quoted in every error.
    required
        What a kind of log needs beyond ``config``, ``provenance`` and ``history``: ``{"top": ..., "config": ...,
        "history": ...}``, each ``{key: type(s)}`` (see :func:`check_fields`) or a tuple of keys of any type;
        ``history`` keys are required in every record. When ``history`` requires ``step``, steps must increase.

    Raises
    ------
    RunLogError
        When the file is missing or not JSON, or a key is missing or holds a value of another type (the provenance's
        keys always: :data:`PROVENANCE_TYPES`, and ``resumed`` when present).
    """
    path = Path(path)
    required = required or {}
    fail = _failer(path, regenerate)
    if not path.exists():
        raise RunLogError(f"Run log {path} does not exist. Regenerate it with: {regenerate}")
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunLogError(f"Run log {path} is not valid JSON ({err}). Regenerate it with: {regenerate}") from err
    if not isinstance(log, dict):
        fail(f"it must hold a JSON object, not {_describe(type(log))}")
    top = {"config": dict, "provenance": dict, "history": list, **_spec(required.get("top", ()))}
    for key in top:
        if key not in log:
            fail(f"has no '{key}'")
    check_fields(log, top, "", fail)
    provenance = log["provenance"]
    check_fields(provenance, PROVENANCE_TYPES, "provenance", fail)
    resumed = provenance.get("resumed", [])
    if not json_type_ok(resumed, list):
        fail("provenance.resumed must be a list of sessions")
    for i, session in enumerate(resumed):
        if not json_type_ok(session, dict):
            fail(f"provenance.resumed[{i}] must be an object (one session)")
        check_fields(session, RESUMED_SESSION_TYPES, f"provenance.resumed[{i}]", fail)
    check_fields(log["config"], required.get("config", ()), "config", fail)
    history = log["history"]
    if not history:
        fail("history must be a non-empty list of records")
    for i, record in enumerate(history):
        if not json_type_ok(record, dict):
            fail(f"history[{i}] must be an object (one record), not {json.dumps(record)[:40]}")
        check_fields(record, required.get("history", ()), f"history[{i}]", fail)
    if "step" in _spec(required.get("history", ())):
        steps = [r["step"] for r in history]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            fail("history steps are not strictly increasing")
    LOADED_RUN_LOGS.add(path.resolve())
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
    "top": {"routing_by_cluster": list},
    "config": {"strategy": str, "seed": int, "n_experts": int, "top_k": int, "batch_size": int, "steps": int,
               "log_every": int, "eval_tokens": int},
    "history": {"step": int, "loss": NUMBER, "load": list, "load_window": list, "eval_loss": NUMBER,
                "eval_load": list},
}  # fmt: skip
# "Loads have evened out" when every expert carries within ±35% of the mean load of a logged window, and stays so.
EVEN_LOAD_TOLERANCE = 0.35


def moe_run_path(path_or_name: str | Path) -> Path:
    """``"bias"`` → ``media/runs/moe/bias.json``; a path (with a folder or ``.json``) is taken as it is."""
    return named_run_path(MOE_RUNS_DIR, path_or_name)


def moe_regenerate_command(path_or_name: str | Path) -> str:
    """The command that writes this MoE log (for a name not committed: the trainer with that name)."""
    return regenerate_command(MOE_COMMANDS, "scripts.train_moe", moe_run_path(path_or_name))


def _counts(values, n: int) -> bool:
    """``values`` is a list of ``n`` non-negative integers (token counts)."""
    return json_type_ok(values, list) and len(values) == n and all(json_type_ok(v, int) and v >= 0 for v in values)


def load_moe_run(path_or_name: str | Path) -> dict:
    """Load and validate a log written by ``scripts/train_moe.py``.

    Beyond :func:`load_run_log`'s checks (keys and their types): sizes are positive; every load vector holds one
    count per expert; a batch's load sums to ``batch_size · top_k``, a window's to that times the steps it covers
    (step 0's window is step 0 alone), the fixed evaluation set's to ``eval_tokens · top_k``, as does
    ``routing_by_cluster``; ``bias`` runs log the bias vector, the other strategies the auxiliary loss.

    Raises
    ------
    RunLogError
        Naming the file and the command that regenerates it.
    """
    path = moe_run_path(path_or_name)
    regenerate = moe_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=MOE_REQUIRED)
    fail = _failer(path, regenerate)
    config = log["config"]
    for key in ("n_experts", "top_k", "batch_size", "eval_tokens", "log_every"):
        if config[key] < 1:
            fail(f"config.{key} must be at least 1, not {config[key]}")
    n_experts, slots_per_batch = config["n_experts"], config["batch_size"] * config["top_k"]
    eval_slots = config["eval_tokens"] * config["top_k"]
    per_strategy_key, per_strategy_type = ("bias", list) if config["strategy"] == "bias" else ("aux_loss", NUMBER)

    previous_step = -1
    for i, record in enumerate(log["history"]):
        for key in ("load", "load_window", "eval_load"):
            if not _counts(record[key], n_experts):
                fail(f"history[{i}].{key} must list {n_experts} token counts, one per expert")
        if sum(record["load"]) != slots_per_batch:
            fail(f"history[{i}].load sums to {sum(record['load'])}, not batch_size·top_k = {slots_per_batch}")
        window_slots = (record["step"] - previous_step) * slots_per_batch
        if sum(record["load_window"]) != window_slots:
            fail(f"history[{i}].load_window sums to {sum(record['load_window'])}, not {window_slots} (batch_size·top_k "
                 f"for each of the steps {previous_step + 1}..{record['step']})")
        previous_step = record["step"]
        if sum(record["eval_load"]) != eval_slots:
            fail(f"history[{i}].eval_load sums to {sum(record['eval_load'])}, not eval_tokens·top_k = {eval_slots}")
        if per_strategy_key not in record:
            fail(f"history[{i}] lacks '{per_strategy_key}' (a {config['strategy']} run logs it at every step)")
        check_fields(record, {per_strategy_key: per_strategy_type}, f"history[{i}]", fail)
        if per_strategy_key == "bias" and (
            len(record["bias"]) != n_experts or not all(json_type_ok(b, NUMBER) for b in record["bias"])
        ):
            fail(f"history[{i}].bias must hold {n_experts} numbers, one per expert")
    routing = log["routing_by_cluster"]
    if not routing or not all(_counts(row, n_experts) for row in routing):
        fail(f"routing_by_cluster must be a [cluster][expert] table of token counts with {n_experts} columns")
    if sum(map(sum, routing)) != eval_slots:
        fail(f"routing_by_cluster sums to {sum(map(sum, routing))}, not eval_tokens·top_k = {eval_slots}")
    return log


def moe_load_spread(log: dict, index: int = -1, counts: str = "load_window") -> dict:
    """What a histogram of tokens per expert says, for the logged record ``history[index]`` (default: the last).

    ``counts`` is ``"load_window"`` (every training token of the ``log_every`` steps up to that record; not the
    single-batch ``load``) or ``"eval_load"`` (a fixed held-out set routed by the model at that step).

    Returns
    -------
    dict
        ``loads`` (tokens per expert), ``max``, ``min``, ``max_over_min`` (None when an expert got nothing),
        ``busiest_expert`` (the lowest index among ties), ``busiest_experts`` (all that tie for the most),
        ``busiest_token_share`` (fraction of the tokens that went to the busiest expert, 1.0 = every token),
        ``fair_token_share`` (k/N, each expert's share at perfect balance), ``max_over_mean``, ``idle_experts``
        (experts that got no token), ``step``.
    """
    if counts not in ("load_window", "eval_load"):
        raise ValueError(f"counts must be 'load_window' or 'eval_load', not {counts!r}")
    record = log["history"][index]
    loads = [int(v) for v in record[counts]]
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
        "busiest_experts": [e for e in range(n_experts) if loads[e] == loads[busiest]],
        "busiest_token_share": loads[busiest] / n_tokens,
        "fair_token_share": top_k / n_experts,
        "max_over_mean": max(loads) / (sum(loads) / n_experts),
        "idle_experts": [e for e in range(n_experts) if loads[e] == 0],
    }


def moe_idle_since(log: dict) -> int | None:
    """The first logged step from which the experts idle in the last window got no token in any later window; None
    when no expert is idle at the end."""
    idle = moe_load_spread(log)["idle_experts"]
    if not idle:
        return None
    since = None
    for record in log["history"]:
        if all(record["load_window"][e] == 0 for e in idle):
            since = record["step"] if since is None else since
        else:
            since = None
    return since


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
    "top": {"command": str, "split": dict, "snapshots": list},
    "config": {"operation": str, "p": int, "train_fraction": NUMBER, "model": str, "lr": NUMBER, "beta1": NUMBER,
               "beta2": NUMBER, "weight_decay": NUMBER, "warmup_steps": int, "seed": int, "steps": int},
    "history": {"step": int, "train_loss": NUMBER, "test_loss": NUMBER, "train_acc": NUMBER, "test_acc": NUMBER,
                "weight_norm": NUMBER},
}  # fmt: skip
GROKKING_SNAPSHOT_TYPES = {"step": int, "train_acc": NUMBER, "test_acc": NUMBER, "weight_norm": NUMBER,
                           "embedding_fourier_power": list, "correct": list}  # fmt: skip
# Phase boundaries: memorised at train accuracy ≥ 99%, grokking under way at test accuracy ≥ 50%, generalised at
# test accuracy ≥ 99%.
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

    Beyond :func:`load_run_log`'s checks (keys and their types): p ≥ 2; accuracies lie in [0, 1];
    ``split["train"]`` and every snapshot's ``correct`` are p rows of p '0'/'1' characters (row a, column b = the
    pair (a, b)); every snapshot has its step in the history and a Fourier power spectrum of p//2 + 1 shares summing
    to 1.

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
    fail = _failer(path, regenerate)
    p = log["config"]["p"]
    if p < 2:
        fail(f"config.p must be at least 2, not {p}")

    def check_grid(rows, where: str):
        if not isinstance(rows, list) or len(rows) != p or any(
            not isinstance(r, str) or len(r) != p or set(r) - {"0", "1"} for r in rows
        ):
            fail(f"{where} must be {p} strings of {p} '0'/'1' characters")

    for i, record in enumerate(log["history"]):
        if not all(0.0 <= record[k] <= 1.0 for k in ("train_acc", "test_acc")):
            fail(f"history[{i}] has an accuracy outside [0, 1]")
    check_grid(log["split"].get("train"), "split.train")
    logged = {r["step"] for r in log["history"]}
    for i, snapshot in enumerate(log["snapshots"]):
        if not json_type_ok(snapshot, dict):
            fail(f"snapshots[{i}] must be an object (one snapshot)")
        check_fields(snapshot, GROKKING_SNAPSHOT_TYPES, f"snapshots[{i}]", fail)
        if snapshot["step"] not in logged:
            fail(f"snapshots[{i}] is at step {snapshot['step']}, which the history does not log")
        power = snapshot["embedding_fourier_power"]
        if (len(power) != p // 2 + 1 or not all(json_type_ok(x, NUMBER) for x in power)
                or abs(sum(power) - 1.0) > 1e-4):
            fail(f"snapshots[{i}].embedding_fourier_power must hold {p // 2 + 1} shares summing to 1")
        check_grid(snapshot["correct"], f"snapshots[{i}].correct")
    return log


def grokking_phase_steps(log: dict) -> GrokkingPhases:
    """The phase boundaries of a grokking run, derived from its history.

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


def grokking_snapshot_after_memorizing(log: dict, phases: GrokkingPhases | None = None) -> dict:
    """The first snapshot at or after the step where the run memorised its training set and before its test accuracy
    crosses 50 %: the weights of a model that has memorised but not yet generalised.

    Raises
    ------
    ValueError
        When no snapshot falls in that range, naming the steps and the trainer option that adds snapshots.
    """
    phases = phases or grokking_phase_steps(log)
    for snapshot in log["snapshots"]:
        if phases.memorized is not None and snapshot["step"] >= phases.memorized and (
                phases.grokking is None or snapshot["step"] < phases.grokking):
            return snapshot
    raise ValueError(f"Run {log.get('command')!r} has no snapshot between memorising (step {phases.memorized}) and "
                     f"grokking (step {phases.grokking}); train it with --snapshot-steps covering that range.")



# --- tiny translator (scripts/train_translator.py → media/runs/translator/NAME.json + NAME.npz) ---------------------

TRANSLATOR_RUNS_DIR = RUNS_DIR / "translator"
# The exact command that wrote each committed translator run (also in media/runs/translator/README.md and in the log's
# "command"); add --force to replace a committed run.
TRANSLATOR_COMMANDS = {"zh_en": "python -m scripts.train_translator"}
TRANSLATOR_REQUIRED = {
    "top": {"command": str, "metrics": dict, "vocab": dict, "weights": dict, "test_split": list},
    "config": {"corpus_seed": int, "n_train": int, "n_test": int, "d_model": int, "n_heads": int,
               "ffn_multiplier": int, "n_encoder_layers": int, "n_decoder_layers": int, "norm_position": str,
               "seed": int, "steps": int},
    "history": {"step": int, "train_loss": (*NUMBER, None), "test_loss": NUMBER, "test_token_accuracy": NUMBER,
                "test_exact_match": NUMBER, "test_alignment_accuracy": NUMBER},
}  # fmt: skip
TRANSLATOR_METRICS = {"n_parameters": int, "test_exact_match": NUMBER, "test_token_accuracy": NUMBER,
                      "test_alignment_accuracy": NUMBER}  # fmt: skip


class TranslatorRun(NamedTuple):
    """A trained translator: the numpy model and its run log.

    ``model`` is a :class:`shared.math.tiny_transformer.Translator`: ``model.translate(source_tokens)`` (greedy),
    ``model.decode(source_tokens, top_k)`` (one step per token written, with the top-k tokens and probabilities),
    ``model.activations(source_tokens, target_prefix)`` (every intermediate of one forward pass). ``log`` holds
    ``config``, ``provenance``, ``history``, ``metrics``, ``vocab``, ``weights`` and ``test_split``.
    """

    model: Any
    log: dict

    @property
    def metrics(self) -> dict:
        """Final test exact match, token accuracy, cross-attention alignment score, parameter count..."""
        return self.log["metrics"]

    @property
    def test_split(self) -> list:
        """The held-out pairs as :class:`shared.corpus.SentencePair` (source, target, alignment)."""
        from shared.corpus import SentencePair

        return [SentencePair.from_dict(d) for d in self.log["test_split"]]


def translator_run_path(path_or_name: str | Path = "zh_en") -> Path:
    """``"zh_en"`` → ``media/runs/translator/zh_en.json``; a path (with a folder or ``.json``) is taken as it is."""
    return named_run_path(TRANSLATOR_RUNS_DIR, path_or_name)


def translator_regenerate_command(path_or_name: str | Path = "zh_en") -> str:
    """The command that writes this translator run (for a name not committed: the trainer with that name)."""
    return regenerate_command(TRANSLATOR_COMMANDS, "scripts.train_translator", translator_run_path(path_or_name))


def _check_test_split(pairs: list, fail, vocab: dict | None = None) -> None:
    """Every held-out pair of a translator run is an object with source, target and alignment lists, one alignment
    entry per target token (a source index or null), its tokens in ``vocab`` when given."""
    for i, pair in enumerate(pairs):
        if not json_type_ok(pair, dict):
            fail(f"test_split[{i}] must be an object (one sentence pair)")
        check_fields(pair, {"source": list, "target": list, "alignment": list}, f"test_split[{i}]", fail)
        if vocab is not None and not (set(pair["source"]) <= set(vocab["source"])
                                      and set(pair["target"]) <= set(vocab["target"])):
            fail(f"test_split[{i}] holds tokens that are not in the vocab")
        if len(pair["alignment"]) != len(pair["target"]) or not all(
            a is None or (json_type_ok(a, int) and 0 <= a < len(pair["source"])) for a in pair["alignment"]
        ):
            fail(f"test_split[{i}].alignment must give each target token a source index or null")


def _checked_weights_file(log_path: Path, weights: dict, fail) -> Path:
    """The ``.npz`` a run log names (beside the log), checked against the sha256 the log records."""
    import hashlib

    weights_file = log_path.parent / weights["file"]
    if not weights_file.exists():
        fail(f"its weights file {weights_file} does not exist")
    if hashlib.sha256(weights_file.read_bytes()).hexdigest() != weights["sha256"]:
        fail(f"{weights_file} is not the weights file it was written with (sha256 differs)")
    return weights_file


def load_translator(path_or_name: str | Path = "zh_en") -> TranslatorRun:
    """Load a run of ``scripts/train_translator.py``: its log and its weights as the numpy model.

    Beyond :func:`load_run_log`'s checks (keys and their types): the weights file the log names exists, has the
    sha256 the log records and fits the model the config describes; the vocabularies are lists of tokens; every
    test pair's tokens are in them and its alignment has one entry per target token, each a source index or null.

    Example
    -------
    >>> run = load_translator()
    >>> run.model.translate(("我", "昨天", "在", "北京", "看", "了", "一", "本", "书"))
    ('I', 'read', 'a', 'book', 'in', 'Beijing', 'yesterday')
    >>> steps = run.model.decode(("我", "在", "吃", "一", "个", "苹果"), top_k=3)  # .top_tokens, .top_probabilities
    >>> acts = run.model.activations(("我", "在", "吃", "一", "个", "苹果"), ("I", "am"))  # every intermediate

    Raises
    ------
    RunLogError
        Naming the file at fault and the command that regenerates the run.
    """
    import numpy as np

    from shared.math.tiny_transformer import Translator, config_from_dict, weights_from_arrays

    path = translator_run_path(path_or_name)
    regenerate = translator_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=TRANSLATOR_REQUIRED)
    fail = _failer(path, regenerate)
    vocab, weights = log["vocab"], log["weights"]
    check_fields(log["metrics"], TRANSLATOR_METRICS, "metrics", fail)
    check_fields(weights, {"file": str, "sha256": str}, "weights", fail)
    check_fields(vocab, {"source": list, "target": list}, "vocab", fail)
    if not all(isinstance(t, str) for t in vocab["source"] + vocab["target"]):
        fail("vocab.source and vocab.target must list tokens (strings)")
    _check_test_split(log["test_split"], fail, vocab)
    weights_file = _checked_weights_file(path, weights, fail)
    try:
        config = config_from_dict(log["config"], source_vocab=vocab["source"], target_vocab=vocab["target"])
        with np.load(weights_file) as arrays:
            model = Translator(config, weights_from_arrays(config, arrays))
    except ValueError as err:  # a config the model refuses, or weights that do not fit it
        fail(f"the config and {weights_file} do not make a model ({err})")
    return TranslatorRun(model, log)


# --- quantization runs (scripts/quantize_translator.py → media/runs/quant/NAME.json) -------------------------------

QUANT_RUNS_DIR = RUNS_DIR / "quant"
# The exact command that wrote each committed quantization log (also in media/runs/quant/README.md and the log's
# "command"); add --force to replace it.
QUANT_COMMANDS = {"translator": "python -m scripts.quantize_translator"}
QUANT_REQUIRED = {
    "top": {"command": str, "baseline": dict, "parameters": dict, "matrices": dict, "number_line": dict,
            "outlier": dict, "grids": dict},
    "config": {"source_run": str, "source_weights_sha256": str, "formats": list, "granularities": list,
               "group_size": int, "outlier_factor": NUMBER, "n_test": int},
    "history": {"format": str, "granularity": str, "bits": int, "relative_rms_error": NUMBER,
                "max_abs_error": NUMBER, "test_exact_match": NUMBER, "test_token_accuracy": NUMBER,
                "test_loss": NUMBER, "matrices": dict},
}  # fmt: skip
QUANT_ACCURACY = {"test_exact_match": NUMBER, "test_token_accuracy": NUMBER, "test_loss": NUMBER}


def quant_run_path(path_or_name: str | Path = "translator") -> Path:
    """``"translator"`` → ``media/runs/quant/translator.json``; a path (with a folder or ``.json``) as it is."""
    return named_run_path(QUANT_RUNS_DIR, path_or_name)


def quant_regenerate_command(path_or_name: str | Path = "translator") -> str:
    """The command that writes this quantization log (for a name not committed: the script with that name)."""
    return regenerate_command(QUANT_COMMANDS, "scripts.quantize_translator", quant_run_path(path_or_name))


def load_quant_run(path_or_name: str | Path = "translator") -> dict:
    """Load and validate a log written by ``scripts/quantize_translator.py``.

    Beyond :func:`load_run_log`'s checks (keys and their types): the translator weights it quantized are the
    committed ones (same sha256 as the translator run's log); ``history`` holds one record per (format, granularity)
    of the config, each with an error pair (relative RMS, largest absolute) for every matrix of ``matrices``;
    accuracies lie in [0, 1] and errors are ≥ 0; the number line's codes lie in their range, one per weight; the
    outlier demo covers every granularity with and without the outlier; each histogram has one count per bin and
    counts every quantized weight.

    Raises
    ------
    RunLogError
        Naming the file and the command that regenerates it.
    """
    path = quant_run_path(path_or_name)
    regenerate = quant_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=QUANT_REQUIRED)
    fail = _failer(path, regenerate)
    config = log["config"]
    source_name = config["source_run"]
    source = load_run_log(translator_run_path(source_name), translator_regenerate_command(source_name),
                          required=TRANSLATOR_REQUIRED)  # fmt: skip
    if source["weights"].get("sha256") != config["source_weights_sha256"]:
        fail(f"it quantized other weights than the translator run {source_name!r} holds now")
    check_fields(log["baseline"], QUANT_ACCURACY, "baseline", fail)
    check_fields(log["parameters"], {"quantized": int, "total": int}, "parameters", fail)
    matrices = log["matrices"]
    for name, stats in matrices.items():
        if not json_type_ok(stats, dict):
            fail(f"matrices.{name} must be an object")
        check_fields(stats, {"shape": list, "max_over_std": NUMBER, "excess_kurtosis": NUMBER}, f"matrices.{name}",
                     fail)  # fmt: skip
    if sum(s["shape"][0] * s["shape"][1] for s in matrices.values()) != log["parameters"]["quantized"]:
        fail("the matrices' sizes do not add up to parameters.quantized")
    expected = [(f, g) for f in config["formats"] for g in config["granularities"]]
    if [(r["format"], r["granularity"]) for r in log["history"]] != expected:
        fail("history must hold one record per format and granularity of the config, in that order")
    for i, record in enumerate([log["baseline"], *log["history"]]):
        where = "baseline" if i == 0 else f"history[{i - 1}]"
        if not all(0 <= record[k] <= 1 for k in ("test_exact_match", "test_token_accuracy")):
            fail(f"{where} has an accuracy outside [0, 1]")
        if i and (set(record["matrices"]) != set(matrices) or any(
            not json_type_ok(pair, list) or len(pair) != 2 or not all(json_type_ok(e, NUMBER) and e >= 0 for e in pair)
            for pair in record["matrices"].values()
        ) or record["relative_rms_error"] < 0 or record["max_abs_error"] < 0):
            fail(f"{where} must give every matrix an error pair [relative RMS, largest absolute], both ≥ 0")
    line = log["number_line"]
    check_fields(line, {"matrix": str, "channel": int, "weights": list}, "number_line", fail)
    for bits in ("int8", "int4"):
        q = line.get(bits)
        if not json_type_ok(q, dict):
            fail(f"number_line.{bits} must be an object")
        check_fields(q, {"scale": NUMBER, "zero_point": int, "qmin": int, "qmax": int, "codes": list,
                         "unclamped_codes": list, "dequantized": list}, f"number_line.{bits}", fail)  # fmt: skip
        if not (len(q["codes"]) == len(q["unclamped_codes"]) == len(q["dequantized"]) == len(line["weights"])
                and all(q["qmin"] <= c <= q["qmax"] for c in q["codes"])):  # fmt: skip
            fail(f"number_line.{bits} must give every weight a code in [qmin, qmax]")
    outlier = log["outlier"]
    check_fields(outlier, {"matrix": str, "channel": int, "input": int, "factor": NUMBER, "value": NUMBER,
                           "row": list, "bits": int}, "outlier", fail)  # fmt: skip
    for label in ("with_outlier", "without_outlier"):
        if not json_type_ok(outlier.get(label), dict) or set(outlier[label]) != set(config["granularities"]):
            fail(f"outlier.{label} must hold one entry per granularity")
    grids = log["grids"]
    check_fields(grids, {"bins": list, "fp4_levels": list, "int4_step": NUMBER, "fp4_finer_below": NUMBER}, "grids",
                 fail)  # fmt: skip
    for granularity in config["granularities"]:
        entry = grids.get(granularity)
        histogram = entry.get("histogram") if json_type_ok(entry, dict) else None
        if (not json_type_ok(histogram, list) or len(histogram) != len(grids["bins"]) - 1
                or sum(histogram) != log["parameters"]["quantized"]):  # fmt: skip
            fail(f"grids.{granularity}.histogram must count every quantized weight once, one count per bin")
    return log


def quant_setting(log: dict, fmt: str, granularity: str) -> dict:
    """The history record of one setting (``"int4"``, ``"group"``); KeyError naming the settings logged otherwise."""
    for record in log["history"]:
        if (record["format"], record["granularity"]) == (fmt, granularity):
            return record
    logged = [(r["format"], r["granularity"]) for r in log["history"]]
    raise KeyError(f"no setting {fmt} per {granularity}; the log has {logged}")


# --- LoRA fine-tunes of the translator (scripts/train_lora.py → media/runs/lora/NAME.json + NAME.npz) -----------------

LORA_RUNS_DIR = RUNS_DIR / "lora"
# The exact command that wrote each committed LoRA run (also in media/runs/lora/README.md and the log's "command");
# add --force to replace one. "full" trains every weight; "lora_rN" trains rank-N adapters on the attention
# projections (rank 8 is the trainer's default).
LORA_COMMANDS = {
    "full": "python -m scripts.train_lora --method full --lr 0.001",
    "lora_r1": "python -m scripts.train_lora --rank 1",
    "lora_r2": "python -m scripts.train_lora --rank 2",
    "lora_r4": "python -m scripts.train_lora --rank 4",
    "lora_r8": "python -m scripts.train_lora",
}
LORA_SCORES = tuple(f"{split}_{k}" for split in ("new", "original") for k in ("exact_match", "token_accuracy"))
LORA_REQUIRED = {
    "top": {"command": str, "base": dict, "task": dict, "metrics": dict, "weights": dict, "test_split": list},
    "config": {"base": str, "corpus_seed": int, "n_train": int, "n_test": int, "method": str, "rank": int,
               "scaling": NUMBER, "targets": str, "seed": int, "steps": int, "lr": NUMBER},
    "history": {"step": int, "train_loss": (*NUMBER, None), "new_loss": NUMBER, "original_loss": NUMBER,
                **{k: NUMBER for k in LORA_SCORES}},
}  # fmt: skip
LORA_METRICS = {"n_parameters": int, "trainable_parameters": int, **{k: NUMBER for k in LORA_SCORES},
                **{f"{k}_before": NUMBER for k in LORA_SCORES}}  # fmt: skip
LORA_WITHOUT_ADAPTER = {"original_exact_match_without_adapter": NUMBER,
                        "original_token_accuracy_without_adapter": NUMBER}  # fmt: skip
DELTA_TYPES = {"shape": list, "singular_values": list, "frobenius": NUMBER, "base_frobenius": NUMBER}


class LoRARun(NamedTuple):
    """A fine-tune of the translator (``scripts/train_lora.py``): its log, its ``.npz`` and the base run.

    ``arrays`` holds the adapters (``"<weight>/lora_a"`` A (r, in), ``"<weight>/lora_b"`` B (out, r), PEFT's
    layout) of a LoRA run, or every weight after a full fine-tune. ``model`` is the fine-tuned numpy
    :class:`shared.math.tiny_transformer.Translator` (for LoRA, the adapters merged into the base weights).
    """

    log: dict
    arrays: dict
    base: TranslatorRun
    model: Any

    @property
    def metrics(self) -> dict:
        return self.log["metrics"]

    @property
    def method(self) -> str:
        return self.log["config"]["method"]

    @property
    def rank(self) -> int | None:
        """r of every adapter; None for a full fine-tune."""
        return self.log["config"]["rank"] if self.method == "lora" else None

    @property
    def alpha(self) -> float:
        """PEFT's ``lora_alpha`` = scaling · r (the update is alpha / r · B A)."""
        return self.log["config"]["scaling"] * self.log["config"]["rank"]

    def adapters(self) -> dict:
        """``{weight name: (A, B)}`` of a LoRA run (float32, PEFT's shapes)."""
        return {name: (self.arrays[f"{name}/lora_a"], self.arrays[f"{name}/lora_b"]) for name in self.log["adapted"]}

    def singular_values(self) -> dict:
        """``{matrix name: σ of ΔW = W_after − W_before, largest first}`` of a full fine-tune (numpy arrays)."""
        import numpy as np

        return {name: np.array(d["singular_values"]) for name, d in self.log["delta"].items()}

    @property
    def test_split(self) -> list:
        """The shifted task's held-out pairs as :class:`shared.corpus.SentencePair`."""
        from shared.corpus import SentencePair

        return [SentencePair.from_dict(d) for d in self.log["test_split"]]


def lora_run_path(path_or_name: str | Path) -> Path:
    """``"lora_r4"`` → ``media/runs/lora/lora_r4.json``; a path (with a folder or ``.json``) is taken as it is."""
    return named_run_path(LORA_RUNS_DIR, path_or_name)


def lora_regenerate_command(path_or_name: str | Path) -> str:
    """The command that writes this LoRA run (for a name not committed: the trainer with that name)."""
    return regenerate_command(LORA_COMMANDS, "scripts.train_lora", lora_run_path(path_or_name))


def merged_arrays(base_arrays: dict, adapters: dict, alpha: float) -> dict:
    """The base weights (``tiny_transformer.weights_to_arrays`` layout, ``x @ w`` with w ``[in, out]``) with every
    adapter merged in: w + (alpha / r)·(B A)ᵀ, i.e. :func:`shared.math.lora.merge_lora` of the PEFT-layout Wᵀ."""
    from shared.math.lora import merge_lora

    merged = dict(base_arrays)
    for name, (lora_a, lora_b) in adapters.items():
        merged[name] = merge_lora(base_arrays[name].T, lora_a, lora_b, alpha).T
    return merged


def load_lora_run(path_or_name: str | Path) -> LoRARun:
    """Load and validate a run of ``scripts/train_lora.py`` with its weights and base, as a numpy model.

    Beyond :func:`load_run_log`'s checks (keys and their types): the base translator run is the one fine-tuned
    (same weights sha256); the ``.npz`` exists and has the sha256 the log records; scores lie in [0, 1]; a LoRA run
    lists its adapted weights with an A (r, in) and a B (out, r) for each, its trainable parameter count is
    Σ r·(in + out), and it logs the original task's scores without the adapter; a full fine-tune trains every base
    parameter, its ``.npz`` has every base weight's shape, and ``delta`` gives every matrix min(in, out) singular
    values, largest first, whose squares sum to ‖ΔW‖²_F; every test pair has a source, a target and an alignment
    with one entry per target word.

    Raises
    ------
    RunLogError
        Naming the file at fault and the command that regenerates the run.
    """
    import numpy as np

    from shared.math.tiny_transformer import Translator, weights_from_arrays, weights_to_arrays

    path = lora_run_path(path_or_name)
    regenerate = lora_regenerate_command(path)
    log = load_run_log(path, regenerate=regenerate, required=LORA_REQUIRED)
    fail = _failer(path, regenerate)
    config, metrics = log["config"], log["metrics"]
    check_fields(metrics, LORA_METRICS, "metrics", fail)
    check_fields(log["base"], {"run": str, "weights_sha256": str}, "base", fail)
    check_fields(log["weights"], {"file": str, "sha256": str}, "weights", fail)
    scores = [metrics[k] for k in LORA_METRICS if k not in ("n_parameters", "trainable_parameters")]
    scores += [r[k] for r in log["history"] for k in LORA_SCORES]
    if not all(0.0 <= s <= 1.0 for s in scores):
        fail("it has a score (exact match or token accuracy) outside [0, 1]")
    base = load_translator(log["base"]["run"])
    if base.log["weights"]["sha256"] != log["base"]["weights_sha256"]:
        fail(f"it fine-tuned other weights than the translator run {log['base']['run']!r} holds now")
    _check_test_split(log["test_split"], fail)
    weights_file = _checked_weights_file(path, log["weights"], fail)
    with np.load(weights_file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    base_arrays = weights_to_arrays(base.model.weights)
    if config["method"] == "lora":
        check_fields(log, {"adapted": dict}, "", fail)
        check_fields(metrics, LORA_WITHOUT_ADAPTER, "metrics", fail)
        r, trainable = config["rank"], 0
        expected = set()
        for name, shape in log["adapted"].items():
            if name not in base_arrays or list(base_arrays[name].shape) != shape:
                fail(f"adapted.{name} is not a weight of the base with shape {shape}")
            (fan_in, fan_out), a, b = shape, f"{name}/lora_a", f"{name}/lora_b"
            if a not in arrays or b not in arrays or arrays[a].shape != (r, fan_in) or arrays[b].shape != (fan_out, r):
                fail(f"{weights_file} must hold {a} ({r}, {fan_in}) and {b} ({fan_out}, {r})")
            expected |= {a, b}
            trainable += r * (fan_in + fan_out)
        if set(arrays) != expected:
            fail(f"{weights_file} holds arrays for weights the log does not list as adapted")
        if metrics["trainable_parameters"] != trainable:
            fail(f"metrics.trainable_parameters is {metrics['trainable_parameters']}, not Σ r·(in + out) = {trainable}")
        run = LoRARun(log, arrays, base, None)
        weights = merged_arrays(base_arrays, run.adapters(), run.alpha)
    elif config["method"] == "full":
        check_fields(log, {"delta": dict}, "", fail)
        if set(arrays) != set(base_arrays) or any(arrays[k].shape != base_arrays[k].shape for k in arrays):
            fail(f"{weights_file} must hold every base weight with its shape")
        if not metrics["trainable_parameters"] == metrics["n_parameters"] == sum(a.size for a in arrays.values()):
            fail("a full fine-tune trains every parameter: trainable_parameters must equal n_parameters")
        matrices = {k for k, v in base_arrays.items() if v.ndim == 2}
        if set(log["delta"]) != matrices:
            fail(f"delta must have an entry for each of the {len(matrices)} matrices")
        for name, entry in log["delta"].items():
            if not json_type_ok(entry, dict):
                fail(f"delta.{name} must be an object")
            check_fields(entry, DELTA_TYPES, f"delta.{name}", fail)
            sigma = entry["singular_values"]
            if (entry["shape"] != list(base_arrays[name].shape) or len(sigma) != min(entry["shape"])
                    or not all(json_type_ok(s, NUMBER) for s in sigma)
                    or any(b > a for a, b in zip(sigma, sigma[1:])) or (sigma and sigma[-1] < 0)):
                fail(f"delta.{name}.singular_values must be min(in, out) numbers ≥ 0, largest first")
            if not np.isclose(np.sqrt(np.sum(np.square(sigma))), entry["frobenius"], rtol=1e-4, atol=1e-9):
                fail(f"delta.{name}: the singular values' squares do not sum to frobenius²")
        run = LoRARun(log, arrays, base, None)
        weights = arrays
    else:
        fail(f"config.method must be 'full' or 'lora', not {config['method']!r}")
    model = Translator(base.model.config, weights_from_arrays(base.model.config, weights))
    return run._replace(model=model)


def load_lora_runs() -> dict[str, LoRARun]:
    """Every committed LoRA run by name (:data:`LORA_COMMANDS`): ``"full"``, ``"lora_r1"`` … ``"lora_r8"``."""
    return {name: load_lora_run(name) for name in LORA_COMMANDS}
