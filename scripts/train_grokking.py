"""Train a small network on modular arithmetic until it groks, and write a run log to ``media/runs/grokking/``.

Task: all pairs (a, b) with 0 ≤ a, b < p, label (a op b) mod p; a random ``train_fraction`` of the p² pairs is the
training set, the rest the test set (Power et al. 2022). Optimiser: AdamW with a linear warm-up, full batch
(Nanda et al. 2023: lr 1e-3, betas (0.9, 0.98), weight decay 1.0). Models:

- ``mlp``: shared Embedding(p, 64) for a and b → concat → Linear(128, 256) → ReLU → Linear(256, p);
- ``transformer``: Nanda et al.'s one-layer transformer (tokens ``a b =``, learned positions, no LayerNorm,
  ReLU MLP, logits read at ``=``), with their N(0, 1/d) initialisation.

Run it as ``python -m scripts.train_grokking`` (or ``explainer train-grokking`` once registered)::

    python -m scripts.train_grokking --weight-decay 1.0 --seed 0 --steps 10000

The run log (``shared.runs.write_run_log``, written atomically) holds ``config``, ``provenance`` (device, versions, git
commit, start time, wall seconds), ``split`` (the train cells of the p×p table), ``history`` (loss, accuracy and the
weight norm on a log-friendly schedule) and ``snapshots`` (the embedding's Fourier power spectrum and the table of
correct answers at chosen steps). Training is deterministic for a seed and resumes exactly from its checkpoint
(``--checkpoint``): an interrupted and resumed run writes the same history and snapshots as an uninterrupted one. An
existing log (the committed ones included) is overwritten only with ``--force``.

``--sweep-seeds 0,1,2`` / ``--sweep-weight-decays 1,0`` train every combination at once as one stacked model
(``torch.func.vmap``), one log each; each run equals its single run up to float rounding of the batched matmuls.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
import torch
import torch.nn.functional as F
from torch import nn

from shared.files import atomic_path
from shared.runs import (
    ROOT,
    RUNS_DIR,
    deterministic_torch,
    pick_device,
    refuse_overwrite,
    resume_provenance,
    start_provenance,
    write_run_log,
)

GROKKING_DIR = RUNS_DIR / "grokking"
CHECKPOINT_DIR = ROOT / "media" / "checkpoints" / "grokking"  # ignored by git (/media/* in .gitignore)
SIGNIFICANT_DIGITS = 6  # floats in the log are rounded to this many significant digits (keeps committed logs small)
OPERATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
}
MODELS = ("mlp", "transformer")


@dataclass(frozen=True)
class GrokkingConfig:
    """Every hyperparameter of a run; written verbatim as the log's ``config``."""

    operation: str = "add"  # label = (a op b) mod p, one of OPERATIONS
    p: int = 59  # modulus; also the vocabulary size and the number of classes
    train_fraction: float = 0.5  # share of the p² pairs used for training (the rest is the test set)
    model: str = "mlp"  # "mlp" or "transformer"
    # mlp: Embedding(p, embed_dim) shared by a and b → concat (2·embed_dim) → Linear(hidden) → ReLU → Linear(p)
    embed_dim: int = 64
    hidden: int = 256
    # transformer (Nanda et al. 2023 use d_model 128, 4 heads, d_mlp 512 for p = 113)
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    # AdamW (decoupled weight decay: W ← W − lr·λ·W − lr·adam_update)
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    weight_decay: float = 1.0
    warmup_steps: int = 10  # lr ramps linearly: step s (0-based) uses lr·min(1, (s+1)/warmup_steps)
    batch: str = "full"  # every step sees the whole training set (no sampling noise)
    steps: int = 10000  # optimiser steps
    seed: int = 0  # seeds both the train/test split and the initialisation
    # logging: records at step 0, the last step, every snapshot step, and step s when s % interval(s) == 0 with
    # interval(s) = clamp(10^(d+1) // log_per_decade, 1, log_every) for s in [10^d, 10^(d+1))
    log_every: int = 50
    log_per_decade: int = 50
    snapshot_steps: tuple[int, ...] = ()  # empty = default_snapshot_steps(steps)

    def __post_init__(self):
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(OPERATIONS)}, got {self.operation!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.p < 2:
            raise ValueError(f"p must be at least 2, got {self.p}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        n_train = round(self.train_fraction * self.p**2)
        if not 0 < n_train < self.p**2:
            raise ValueError(f"train_fraction {self.train_fraction} of the {self.p**2} pairs leaves "
                             f"{'no training' if n_train == 0 else 'no test'} pair; choose a fraction nearer 0.5")
        too_small = [k for k in ("embed_dim", "hidden", "d_model", "n_heads", "d_mlp", "steps", "log_every",
                                 "log_per_decade") if getattr(self, k) < 1]  # fmt: skip
        if too_small or self.warmup_steps < 0:
            raise ValueError(f"{', '.join(too_small) or 'warmup_steps'} must be ≥ 1 (warmup_steps ≥ 0), got "
                             + ", ".join(f"{k}={getattr(self, k)}" for k in too_small or ["warmup_steps"]))
        if self.model == "transformer" and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not (self.lr > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.weight_decay >= 0):
            raise ValueError(f"AdamW needs lr > 0, 0 ≤ beta1, beta2 < 1 and weight_decay ≥ 0; got lr={self.lr}, "
                             f"beta1={self.beta1}, beta2={self.beta2}, weight_decay={self.weight_decay}")
        bad = [s for s in self.snapshot_steps if not 0 <= s <= self.steps]
        if bad:
            raise ValueError(f"snapshot steps {bad} are outside 0..{self.steps}")

    def resolved_snapshot_steps(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.snapshot_steps))) if self.snapshot_steps else default_snapshot_steps(self.steps)

    def as_dict(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["snapshot_steps"] = list(self.resolved_snapshot_steps())
        return config

    def default_name(self) -> str:
        """File stem, e.g. ``add_p59_wd1_seed0``; ``_frac0.3``, ``_transformer`` appear when not the default."""
        parts = [self.operation, f"p{self.p}", f"wd{self.weight_decay:g}"]
        if self.train_fraction != GrokkingConfig.train_fraction:
            parts.append(f"frac{self.train_fraction:g}")
        if self.model != GrokkingConfig.model:
            parts.append(self.model)
        return "_".join(parts + [f"seed{self.seed}"])


def default_snapshot_steps(steps: int) -> tuple[int, ...]:
    """Steps 0, 1·10^d, 2·10^d, 5·10^d up to ``steps``, and ``steps`` itself: early, plateau and late weights."""
    candidates = {m * 10**d for d in range(2, 12) for m in (1, 2, 5)}
    return tuple(sorted({0, steps} | {s for s in candidates if s <= steps}))


def log_interval(step: int, log_every: int, log_per_decade: int) -> int:
    """Spacing of records around ``step``: about ``log_per_decade`` per decade, never more than ``log_every`` apart."""
    decade = 10 ** (len(str(step)) - 1) if step > 0 else 1
    return max(1, min(log_every, 10 * decade // log_per_decade))


def logged_steps(config: GrokkingConfig) -> list[int]:
    """Every step that gets a history record (see ``GrokkingConfig`` for the schedule)."""
    steps = {0, config.steps, *config.resolved_snapshot_steps()}
    steps |= {s for s in range(1, config.steps) if s % log_interval(s, config.log_every, config.log_per_decade) == 0}
    return sorted(steps)


# --- data ----------------------------------------------------------------------------------------------------------


def all_pairs(p: int, operation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (p², 2) as rows (a, b) in row-major order (index a·p + b) and labels (a op b) mod p, shape (p²,)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b], dim=1), OPERATIONS[operation](a, b).remainder(p)


def train_mask(p: int, train_fraction: float, seed: int) -> torch.Tensor:
    """Boolean (p²,) mask of training pairs: the first round(fraction·p²) of a seeded random permutation."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(p * p, generator=generator)
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[order[: round(train_fraction * p * p)]] = True
    return mask


# --- models --------------------------------------------------------------------------------------------------------


class ModularMLP(nn.Module):
    """Embedding(p, e) shared by both operands → concat (2e) → Linear(h) → ReLU → Linear(p); PyTorch's default
    initialisation."""

    def __init__(self, p: int, embed_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(p, embed_dim)  # (p, e)
        self.hidden = nn.Linear(2 * embed_dim, hidden)
        self.out = nn.Linear(hidden, p)

    def embedding_matrix(self) -> torch.Tensor:
        """(p, e): row t is the vector of token t."""
        return self.embed.weight

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:  # pairs (n, 2) → logits (n, p)
        x = self.embed(pairs).flatten(1)  # (n, 2e)
        return self.out(F.relu(self.hidden(x)))


class ModularTransformer(nn.Module):
    """One-layer transformer of Nanda et al. 2023 ("Progress measures for grokking via mechanistic interpretability").

    Tokens ``a b =`` (vocabulary p + 1, ``=`` is token p), learned positional embeddings, causal multi-head attention
    without biases, ReLU MLP with biases, no LayerNorm, logits over the p answers read at the ``=`` position.
    Initialisation as theirs: weights ~ N(0, 1/d_model) (unembedding N(0, 1/p)), biases 0.
    """

    def __init__(self, p: int, d_model: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.p, self.n_heads = p, n_heads
        self.embed = nn.Embedding(p + 1, d_model)  # (p + 1, d)
        self.pos = nn.Parameter(torch.empty(3, d_model))  # (3, d)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.attn_out = nn.Linear(d_model, d_model, bias=False)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, p, bias=False)
        std = d_model**-0.5
        for weight in (self.embed.weight, self.pos, self.qkv.weight, self.attn_out.weight, self.mlp_in.weight,
                       self.mlp_out.weight):
            nn.init.normal_(weight, std=std)
        nn.init.normal_(self.unembed.weight, std=p**-0.5)
        nn.init.zeros_(self.mlp_in.bias)
        nn.init.zeros_(self.mlp_out.bias)

    def embedding_matrix(self) -> torch.Tensor:
        """(p, d): the number tokens' rows (the ``=`` token is left out)."""
        return self.embed.weight[: self.p]

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:  # pairs (n, 2) → logits (n, p)
        equals = torch.full_like(pairs[:, :1], self.p)
        x = self.embed(torch.cat([pairs, equals], dim=1)) + self.pos  # (n, 3, d)
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)  # (n, h, t, dh)
        # attention written out (as Nanda et al.), so torch.func.vmap can batch it in a sweep
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.n_heads)  # (n, h, t, t)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        attended = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1) @ v  # (n, h, t, dh)
        x = x + self.attn_out(attended.transpose(1, 2).reshape(n, t, d))
        x = x + self.mlp_out(F.relu(self.mlp_in(x)))
        return self.unembed(x[:, -1])  # (n, p)


def build_model(config: GrokkingConfig) -> nn.Module:
    if config.model == "mlp":
        return ModularMLP(config.p, config.embed_dim, config.hidden)
    return ModularTransformer(config.p, config.d_model, config.n_heads, config.d_mlp)


# --- measurements --------------------------------------------------------------------------------------------------


def rounded(x: float) -> float:
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def weight_norm(model: nn.Module) -> float:
    """‖W‖: the L2 norm of all parameters together (biases included), as in Liu et al. "Omnigrok" 2023."""
    return math.sqrt(sum(float(w.detach().double().pow(2).sum()) for w in model.parameters()))


def fourier_power(embedding: torch.Tensor) -> list[float]:
    """Share of the embedding's energy ‖W_E‖²_F at each frequency k = 0..p//2 (Nanda et al. 2023, §5.1).

    The DFT runs over the token axis (``torch.fft.rfft`` of the (p, d) matrix along dim 0), so column j's component
    at frequency k is Σ_t W_E[t, j]·e^{−2πi·k·t/p}. Frequencies k and p − k carry the same cos/sin pair for a
    real matrix, so each k in 1..⌈p/2⌉−1 counts twice (Parseval: ‖W_E‖² = (1/p)·Σ_{k=0}^{p−1} Σ_j |F_kj|²).
    The result sums to 1; k = 0 is the mean token vector. A model that groks concentrates the power in a few key
    frequencies.
    """
    spectrum = torch.fft.rfft(embedding.detach().double(), dim=0).abs().pow(2).sum(dim=1)  # (p//2 + 1,)
    p = embedding.shape[0]
    multiplicity = torch.full_like(spectrum, 2.0)
    multiplicity[0] = 1.0
    if p % 2 == 0:
        multiplicity[-1] = 1.0  # the Nyquist frequency p/2 has no mirror image
    power = spectrum * multiplicity
    return [rounded(x) for x in (power / power.sum()).tolist()]


def grid_rows(mask: torch.Tensor, p: int) -> list[str]:
    """A (p²,) boolean as p strings of '0'/'1': row a, column b is pair (a, b)."""
    flat = "".join("1" if x else "0" for x in mask.tolist())
    return [flat[i * p : (i + 1) * p] for i in range(p)]


def cross_entropy64(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in float64: Nanda et al. do the same, as float32 log-softmax rounds tiny losses to 0."""
    return F.cross_entropy(logits.double(), labels, reduction=reduction)


# --- training ------------------------------------------------------------------------------------------------------


def command_line(config: GrokkingConfig, name: str | None = None, threads: int | None = None) -> str:
    """The command that reproduces this run: the options that differ from the defaults (plus name and threads)."""
    parts = ["python -m scripts.train_grokking"]
    for key, default in dataclasses.asdict(GrokkingConfig()).items():
        value = getattr(config, key)
        if value != default:
            if isinstance(value, tuple):
                text = ",".join(map(str, value))
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value)
            parts.append(f"--{key.replace('_', '-')} {text}")
    if name is not None and name != config.default_name():
        parts.append(f"--name {name}")
    if threads is not None:
        parts.append(f"--threads {threads}")
    return " ".join(parts)


class CheckpointMismatch(click.ClickException):
    """A checkpoint exists but was written for a different config."""


EXTENDABLE = ("steps", "snapshot_steps")  # a checkpoint may be resumed with other values of these (see below)


def _check_resumable(checkpoint: Path, state: dict, config: GrokkingConfig, config_dict: dict) -> None:
    """Refuse a checkpoint unless resuming it gives exactly the log a fresh run of ``config`` would write.

    Every hyperparameter must match, except that ``steps`` (and so the default snapshot steps) may change, to extend
    or shorten a run, as long as the checkpoint lies before the new last step and holds exactly the history records
    and snapshots that the new schedule would have taken up to its step.
    """
    saved = state["config"]
    differ = sorted(k for k in config_dict if saved.get(k) != config_dict[k])
    hint = "Delete it, or pass the same options, or another --checkpoint."
    if any(k not in EXTENDABLE for k in differ):
        raise CheckpointMismatch(
            f"Checkpoint {checkpoint} was written for a different config (differs in: {', '.join(differ)}). {hint}"
        )
    if differ:
        step = state["step"]
        same_history = [r["step"] for r in state["history"]] == [s for s in logged_steps(config) if s <= step]
        same_snapshots = [r["step"] for r in state["snapshots"]] == [
            s for s in config.resolved_snapshot_steps() if s <= step
        ]
        if step >= config.steps or not (same_history and same_snapshots):
            raise CheckpointMismatch(
                f"Checkpoint {checkpoint} (step {step}, steps {saved['steps']}) cannot be resumed as a run of "
                f"{config.steps} steps: a fresh run would log other steps before {step}. {hint}"
            )


def _json_roundtrip(obj):
    return json.loads(json.dumps(obj))


def train(
    config: GrokkingConfig,
    out_path: str | Path,
    *,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
    stop_after: int | None = None,
    progress: bool = True,
    threads: int | None = None,
    force: bool = False,
) -> dict[str, Any] | None:
    """Train one run and write its log to ``out_path``; return the log (None when ``stop_after`` stopped it early).

    Parameters
    ----------
    config
        Every hyperparameter.
    out_path
        Where the run log goes (written atomically, only once training has finished).
    device
        ``auto`` (CUDA when available), ``cuda`` or ``cpu``.
    checkpoint
        Resume from this file when it exists (its config must equal ``config``, except that ``steps`` may differ
        where that changes nothing logged so far: see ``_check_resumable``); save to it every ``checkpoint_every``
        steps (atomically). Deleted when the run finishes. None: no checkpoints.
    stop_after
        Save a checkpoint after this step and return without a log: splits a long run, or tests resuming.
    progress
        Show a rich progress bar.
    threads
        CPU threads for torch (None: torch's default). One thread is steadier on a busy machine; the count is
        recorded in the provenance, as float sums may round differently with another count.
    force
        Start over an existing log at ``out_path``; without it such a run is refused before any work
        (:func:`shared.runs.refuse_overwrite`), unless it resumes its checkpoint.
    """
    _check_run_options(checkpoint, checkpoint_every, stop_after, threads)
    refuse_overwrite([out_path], resuming=checkpoint is not None and Path(checkpoint).exists(), force=force)
    with deterministic_torch(threads):  # warn only where a CUDA kernel has no deterministic version
        return _train(config, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads)


def _check_run_options(checkpoint, checkpoint_every: int, stop_after: int | None, threads: int | None) -> None:
    """Refuse options that would fail later in the run (before any work starts)."""
    if checkpoint_every < 1:
        raise click.BadParameter(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    if threads is not None and threads < 1:
        raise click.BadParameter(f"--threads must be at least 1, got {threads}")
    if stop_after is not None and stop_after < 1:
        raise click.BadParameter(f"--stop-after must be at least 1, got {stop_after}")
    if stop_after is not None and checkpoint is None:
        raise click.UsageError("--stop-after needs a checkpoint to stop into")


def _train(config, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads):
    device = pick_device(device)
    if device == "cpu":
        torch.set_flush_denormal(True)  # decayed weights turn denormal and slow CPU steps down many-fold otherwise
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    config_dict = _json_roundtrip(config.as_dict())

    pairs, labels = all_pairs(config.p, config.operation)
    is_train = train_mask(config.p, config.train_fraction, config.seed)
    pairs, labels, is_train = pairs.to(device), labels.to(device), is_train.to(device)
    train_pairs, train_labels = pairs[is_train], labels[is_train]
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(config.seed)
        model = build_model(config)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
    )

    step, history, snapshots = 0, [], []
    provenance, wall_before = {**start_provenance(device), "torch_threads": torch.get_num_threads()}, 0.0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        _check_resumable(checkpoint, state, config, config_dict)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, snapshots = state["step"], state["history"], state["snapshots"]
        provenance, wall_before = resume_provenance(state["provenance"], device, step), state["wall_seconds"]

    log_at = set(logged_steps(config))
    snapshot_at = set(config.resolved_snapshot_steps())
    started = time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - started

    def save_checkpoint(step: int):
        state = {
            "config": config_dict,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "history": history,
            "snapshots": snapshots,
            "provenance": provenance,
            "wall_seconds": wall(),
        }
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)

    @torch.no_grad()
    def measure(step: int):
        """Record step ``step`` (after ``step`` updates): losses and accuracies on both splits, ‖W‖, snapshot."""
        model.eval()
        logits = model(pairs)
        model.train()
        record, correct = _record(step, logits, labels, is_train, weight_norm(model))
        history.append(record)
        if step in snapshot_at:
            snapshots.append(_snapshot(record, model.embedding_matrix(), correct, config.p))
        return record

    if stop_after is not None and step >= stop_after and step < config.steps:
        return None  # the checkpoint is already at or past that step
    progress_bar = _progress(progress, config, step)
    with progress_bar as bar:
        task = bar.add_task("grokking", total=config.steps, completed=step, stats="")
        if step == 0 and not history:
            measure(0)

        def optimizer_step(step: int):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config, step)
            optimizer.zero_grad(set_to_none=True)
            cross_entropy64(model(train_pairs), train_labels).backward()
            optimizer.step()

        def report(done: int, stats: str):
            bar.update(task, completed=done, stats=stats)

        saver = save_checkpoint if checkpoint is not None else None
        if not _run_steps(step, config.steps, optimizer_step, measure, log_at, saver, checkpoint_every, stop_after,
                          report):
            return None

    provenance = {**provenance, "wall_seconds": round(wall(), 2)}
    log = _run_log(command_line(config, Path(out_path).stem, threads), config_dict, provenance, is_train, config.p,
                   history, snapshots)
    write_run_log(out_path, log)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return log


SWEEPABLE = ("seed", "weight_decay")  # what may differ between the models of one sweep


def sweep_configs(base: GrokkingConfig, seeds=(), weight_decays=()) -> list[GrokkingConfig]:
    """Every (seed, weight decay) combination, seeds varying fastest; an empty list keeps ``base``'s value."""
    return [
        dataclasses.replace(base, seed=seed, weight_decay=wd)
        for wd in (weight_decays or (base.weight_decay,))
        for seed in (seeds or (base.seed,))
    ]


def sweep_command_line(configs: list[GrokkingConfig], threads: int | None = None) -> str:
    """The command that trains this sweep (``--sweep-seeds``/``--sweep-weight-decays`` instead of one value)."""
    base = dataclasses.replace(configs[0], seed=GrokkingConfig.seed, weight_decay=GrokkingConfig.weight_decay)
    parts = [command_line(base)]
    seeds = list(dict.fromkeys(c.seed for c in configs))
    decays = list(dict.fromkeys(c.weight_decay for c in configs))
    parts.append("--sweep-seeds " + ",".join(map(str, seeds)))
    if decays != [GrokkingConfig.weight_decay]:
        parts.append("--sweep-weight-decays " + ",".join(f"{wd:g}" for wd in decays))
    if threads is not None:
        parts.append(f"--threads {threads}")
    return " ".join(parts)


def train_sweep(
    configs: list[GrokkingConfig],
    out_dir: str | Path,
    *,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
    stop_after: int | None = None,
    progress: bool = True,
    threads: int | None = None,
    force: bool = False,
) -> list[dict[str, Any]] | None:
    """Train several runs at once as one stacked model (``torch.func.stack_module_state`` + ``vmap``).

    The configs may differ only in ``seed`` and ``weight_decay``. Each model gets the initialisation and the split
    that a single run with its seed gets; AdamW is elementwise, so one AdamW over the stacked parameters is one
    AdamW per model, with each model's decoupled weight decay applied by hand (``W ← W·(1 − lr·λ_i)`` before the
    Adam update, the order of ``torch.optim.AdamW``). On a GPU the extra models cost almost nothing. Writes one log
    per model, ``out_dir/NAME.json`` with ``NAME = config.default_name()``, whose provenance lists the sweep's
    runs and its total wall time. Other parameters as :func:`train`; returns the logs (None when stopped early).
    """
    base, out_dir = configs[0], Path(out_dir)
    shared_keys = [f.name for f in dataclasses.fields(GrokkingConfig) if f.name not in SWEEPABLE]
    differ = [k for k in shared_keys if any(getattr(c, k) != getattr(base, k) for c in configs)]
    if differ:
        raise click.UsageError(f"a sweep's runs may differ only in {SWEEPABLE}, not in {differ}")
    names = [c.default_name() for c in configs]
    if len(set(names)) != len(names):
        raise click.UsageError(f"a sweep trains each run once; got {names}")
    _check_run_options(checkpoint, checkpoint_every, stop_after, threads)
    refuse_overwrite([out_dir / f"{n}.json" for n in names],
                     resuming=checkpoint is not None and Path(checkpoint).exists(), force=force)  # fmt: skip
    with deterministic_torch(threads):
        return _train_sweep(configs, names, out_dir, device, checkpoint, checkpoint_every, stop_after, progress,
                            threads)


def _train_sweep(configs, names, out_dir, device, checkpoint, checkpoint_every, stop_after, progress, threads):
    from torch.func import functional_call, stack_module_state, vmap

    base = configs[0]
    device = pick_device(device)
    if device == "cpu":
        torch.set_flush_denormal(True)  # as in a single run
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    config_dicts = [_json_roundtrip(c.as_dict()) for c in configs]
    n_models, p = len(configs), base.p

    pairs, labels = all_pairs(p, base.operation)  # (p², 2), (p²,)
    is_train = torch.stack([train_mask(p, base.train_fraction, c.seed) for c in configs])  # (M, p²)
    pairs, labels, is_train = pairs.to(device), labels.to(device), is_train.to(device)
    train_index = torch.stack([torch.nonzero(m).squeeze(1) for m in is_train])  # (M, n_train): same n for all
    train_pairs, train_labels = pairs[train_index], labels[train_index]  # (M, n_train, 2), (M, n_train)
    models = []
    for c in configs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)  # the same initialisation as a single run with this seed
            models.append(build_model(c).to(device))
    params, _ = stack_module_state(models)  # name → (M, ...) leaf tensors
    skeleton = copy.deepcopy(models[0]).to("meta")
    embedding_rows = models[0].embedding_matrix().shape[0]
    del models

    def forward(model_params, x):  # one model's parameters, x (n, 2) → logits (n, p)
        return functional_call(skeleton, model_params, (x,))

    optimizer = torch.optim.AdamW(params.values(), lr=base.lr, betas=(base.beta1, base.beta2), weight_decay=0.0)
    decays = torch.tensor([c.weight_decay for c in configs], dtype=torch.float32, device=device)  # (M,)

    step, histories, snapshots = 0, [[] for _ in configs], [[] for _ in configs]
    provenance = {**start_provenance(device), "torch_threads": torch.get_num_threads(), "sweep": names}
    wall_before = 0.0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["configs"] != config_dicts:
            raise CheckpointMismatch(f"Checkpoint {checkpoint} was written for another sweep. Delete it, or pass "
                                     "the same options, or another --checkpoint.")
        with torch.no_grad():
            for key, value in state["params"].items():
                params[key].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        step, histories, snapshots = state["step"], state["histories"], state["snapshots"]
        provenance, wall_before = resume_provenance(state["provenance"], device, step), state["wall_seconds"]

    log_at = set(logged_steps(base))
    snapshot_at = set(base.resolved_snapshot_steps())
    started = time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - started

    def save_checkpoint(step: int):
        state = {
            "configs": config_dicts,
            "params": {k: v.detach() for k, v in params.items()},
            "optimizer": optimizer.state_dict(),
            "step": step,
            "histories": histories,
            "snapshots": snapshots,
            "provenance": provenance,
            "wall_seconds": wall(),
        }
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)

    @torch.no_grad()
    def measure(step: int):
        logits = vmap(forward, in_dims=(0, None))(params, pairs)  # (M, p², p)
        norms = torch.sqrt(sum(w.detach().double().pow(2).flatten(1).sum(1) for w in params.values()))  # (M,)
        for i in range(n_models):
            record, correct = _record(step, logits[i], labels, is_train[i], float(norms[i]))
            histories[i].append(record)
            if step in snapshot_at:
                embedding = params["embed.weight"][i, :embedding_rows]
                snapshots[i].append(_snapshot(record, embedding, correct, p))
        return histories[0][-1]

    if stop_after is not None and step >= stop_after and step < base.steps:
        return None
    with _progress(progress, base, step, label=f"sweep of {n_models}") as bar:
        task = bar.add_task("grokking", total=base.steps, completed=step, stats="")
        if step == 0 and not histories[0]:
            measure(0)

        def optimizer_step(step: int):
            lr = lr_at(base, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            logits = vmap(forward)(params, train_pairs)  # (M, n_train, p)
            losses = cross_entropy64(logits.flatten(0, 1), train_labels.flatten(), reduction="none")
            losses.view(n_models, -1).mean(dim=1).sum().backward()  # models are independent: Σ_i ∂L_i/∂W_i
            with torch.no_grad():
                factors = 1.0 - lr * decays  # (M,) decoupled weight decay per model
                for w in params.values():
                    w.mul_(factors.view(-1, *[1] * (w.dim() - 1)))
            optimizer.step()

        def report(done: int, stats: str):
            bar.update(task, completed=done, stats="first: " + stats)

        saver = save_checkpoint if checkpoint is not None else None
        if not _run_steps(step, base.steps, optimizer_step, measure, log_at, saver, checkpoint_every, stop_after,
                          report):
            return None

    provenance = {**provenance, "wall_seconds": round(wall(), 2)}
    command = sweep_command_line(configs, threads)
    logs = []
    for i, c in enumerate(configs):
        log = _run_log(command, config_dicts[i], provenance, is_train[i], p, histories[i], snapshots[i])
        write_run_log(out_dir / f"{names[i]}.json", log)
        logs.append(log)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return logs


def _run_steps(step, total, optimizer_step, measure, log_at, save_checkpoint, checkpoint_every, stop_after, report):
    """The training loop both trainers share: optimiser steps from ``step`` to ``total``.

    After each step: ``measure(step)`` at logged steps (its record goes to ``report(step, stats)``), and
    ``save_checkpoint(step)`` (when given) every ``checkpoint_every`` steps and at ``stop_after``. Returns False when
    it stopped at ``stop_after`` before ``total``, True when the run is complete.
    """
    while step < total:
        optimizer_step(step)
        step += 1
        if step in log_at:
            report(step, _stats(measure(step)))
        stopping = stop_after is not None and stop_after <= step < total
        if save_checkpoint is not None and step < total and (step % checkpoint_every == 0 or stopping):
            save_checkpoint(step)
        if stopping:
            return False
    return True


def lr_at(config: GrokkingConfig, step: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up to ``config.lr``."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return config.lr * warmup


def _record(step: int, logits: torch.Tensor, labels: torch.Tensor, is_train: torch.Tensor, norm: float):
    """One history record from the logits (p², p) of every pair; also the (p²,) correctness mask."""
    loss = cross_entropy64(logits, labels, reduction="none")
    correct = logits.argmax(dim=1) == labels
    record = {
        "step": step,
        "train_loss": rounded(float(loss[is_train].mean())),
        "test_loss": rounded(float(loss[~is_train].mean())),
        "train_acc": rounded(float(correct[is_train].double().mean())),
        "test_acc": rounded(float(correct[~is_train].double().mean())),
        "weight_norm": rounded(norm),
    }
    return record, correct


def _snapshot(record: dict, embedding: torch.Tensor, correct: torch.Tensor, p: int) -> dict:
    return {**record, "embedding_fourier_power": fourier_power(embedding), "correct": grid_rows(correct.cpu(), p)}


def _stats(record: dict) -> str:
    return f"train {record['train_acc']:.3f}  test {record['test_acc']:.3f}  ‖W‖ {record['weight_norm']:.1f}"


def _run_log(command, config_dict, provenance, is_train, p, history, snapshots) -> dict[str, Any]:
    return {
        "kind": "grokking",
        "command": command,
        "config": config_dict,
        "provenance": provenance,
        "split": {"train": grid_rows(is_train.cpu(), p)},
        "history": history,
        "snapshots": snapshots,
    }


def _progress(enabled: bool, config: GrokkingConfig, step: int, label: str | None = None):
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label or config.default_name()),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        disable=not enabled,
    )


# --- command line --------------------------------------------------------------------------------------------------

_DEFAULTS = GrokkingConfig()


def _int_list(ctx, param, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in value.replace(" ", "").split(",") if s)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def _float_list(ctx, param, value: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in value.replace(" ", "").split(",") if s)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@click.option("--operation", type=click.Choice(sorted(OPERATIONS)), default=_DEFAULTS.operation,
              help="label = (a op b) mod p")
@click.option("--p", "p", type=int, default=_DEFAULTS.p, help="modulus")
@click.option("--train-fraction", type=float, default=_DEFAULTS.train_fraction,
              help="share of the p² pairs trained on")
@click.option("--model", type=click.Choice(MODELS), default=_DEFAULTS.model)
@click.option("--embed-dim", type=int, default=_DEFAULTS.embed_dim, help="mlp: embedding width")
@click.option("--hidden", type=int, default=_DEFAULTS.hidden, help="mlp: hidden width")
@click.option("--d-model", type=int, default=_DEFAULTS.d_model, help="transformer: residual width")
@click.option("--n-heads", type=int, default=_DEFAULTS.n_heads, help="transformer: attention heads")
@click.option("--d-mlp", type=int, default=_DEFAULTS.d_mlp, help="transformer: MLP width")
@click.option("--lr", type=float, default=_DEFAULTS.lr, help="AdamW learning rate")
@click.option("--beta1", type=float, default=_DEFAULTS.beta1)
@click.option("--beta2", type=float, default=_DEFAULTS.beta2)
@click.option("--weight-decay", type=float, default=_DEFAULTS.weight_decay, help="AdamW decoupled weight decay λ")
@click.option("--warmup-steps", type=int, default=_DEFAULTS.warmup_steps, help="linear lr warm-up")
@click.option("--steps", type=int, default=_DEFAULTS.steps, help="full-batch optimiser steps")
@click.option("--seed", type=int, default=_DEFAULTS.seed, help="seeds the split and the initialisation")
@click.option("--log-every", type=int, default=_DEFAULTS.log_every, help="most steps between two history records")
@click.option("--log-per-decade", type=int, default=_DEFAULTS.log_per_decade,
              help="about this many records per decade of steps")
@click.option("--snapshot-steps", callback=_int_list, default="",
              show_default=False, help="comma-separated steps [default: 0, 100, 200, 500, 1000, ... and the last]")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", help="auto = CUDA when available")
@click.option("--name", default=None, help="log file stem [default: from the config, e.g. add_p59_wd1_seed0]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=GROKKING_DIR,
              help="where the log goes")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"resume from / save to [default: {CHECKPOINT_DIR.relative_to(ROOT)}/NAME.pt]")
@click.option("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
@click.option("--no-checkpoint", is_flag=True, help="neither resume nor save checkpoints")
@click.option("--stop-after", type=int, default=None, help="save a checkpoint after this step and exit (resume later)")
@click.option("--threads", type=int, default=None, help="CPU threads for torch [default: torch's choice]")
@click.option("--sweep-seeds", callback=_int_list, default="", show_default=False,
              help="train these seeds at once, stacked (e.g. 0,1,2); one log each")
@click.option("--sweep-weight-decays", callback=_float_list, default="", show_default=False,
              help="train these weight decays at once, stacked (e.g. 1,0); combined with --sweep-seeds")
@click.option("--force", is_flag=True, help="overwrite an existing log (a committed run included)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def main(name, out_dir, device, checkpoint, checkpoint_every, no_checkpoint, stop_after, threads, sweep_seeds,
         sweep_weight_decays, force, quiet, **options):
    """Train modular arithmetic until it groks; write media/runs/grokking/NAME.json (see the module docstring)."""
    try:
        config = GrokkingConfig(**options)
        configs = sweep_configs(config, sweep_seeds, sweep_weight_decays) if sweep_seeds or sweep_weight_decays else []
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    if configs and name:
        raise click.UsageError("a sweep names each log from its config; leave out --name")
    if name is not None and (Path(name).name != name or name.startswith(".")):
        raise click.BadParameter(f"--name must be a plain file name (no folder), got {name!r}")
    names = [c.default_name() for c in configs] or [name or config.default_name()]
    if no_checkpoint:
        checkpoint = None
    elif checkpoint is None:
        stem = names[0] if not configs else f"sweep_{names[0]}_{len(configs)}_runs"
        checkpoint = CHECKPOINT_DIR / f"{stem}.pt"
    kwargs = dict(device=device, checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after,
                  progress=not quiet, threads=threads, force=force)
    if configs:
        logs = train_sweep(configs, out_dir, **kwargs)
    else:
        log = train(config, Path(out_dir) / f"{names[0]}.json", **kwargs)
        logs = None if log is None else [log]
    if logs is None:
        click.echo(f"Stopped after step {stop_after}; checkpoint {checkpoint}. "
                   "Run the same command without --stop-after to finish.")
        return
    for run_name, log in zip(names, logs):
        last = log["history"][-1]
        click.echo(
            f"Wrote {Path(out_dir) / (run_name + '.json')}: {last['step']} steps on {log['provenance']['device']} in "
            f"{log['provenance']['wall_seconds']} s; final train acc {last['train_acc']}, test acc {last['test_acc']}."
        )


if __name__ == "__main__":
    main()
