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
(``--checkpoint``): an interrupted and resumed run writes the same history and snapshots as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import torch
import torch.nn.functional as F
from torch import nn

from shared.files import atomic_path
from shared.runs import RUNS_DIR, ROOT, pick_device, start_provenance, write_run_log

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
        if self.model == "transformer" and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.steps < 1 or self.log_every < 1 or self.log_per_decade < 1 or self.warmup_steps < 0:
            raise ValueError("steps, log_every and log_per_decade must be ≥ 1, warmup_steps ≥ 0")
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
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (n, h, t, dh)
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
        Resume from this file when it exists (its config must equal ``config``); save to it every
        ``checkpoint_every`` steps (atomically). Deleted when the run finishes. None: no checkpoints.
    stop_after
        Save a checkpoint after this step and return without a log: splits a long run, or tests resuming.
    progress
        Show a rich progress bar.
    threads
        CPU threads for torch (None: torch's default). One thread is steadier on a busy machine; the count is
        recorded in the provenance, as float sums may round differently with another count.
    """
    # global torch settings this run changes, restored afterwards so a caller (a test session) keeps its own
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # CUDA kernels that would reorder sums must not
    try:
        return _train(config, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads)
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


def _train(config, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads):
    device = pick_device(device)
    if device == "cpu":
        torch.set_flush_denormal(True)  # decayed weights turn denormal and slow CPU steps down many-fold otherwise
    else:
        # deterministic cuBLAS (PyTorch docs, "Reproducibility"); must be set before the first matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if stop_after is not None and checkpoint is None:
        raise click.UsageError("--stop-after needs a checkpoint to stop into")
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
        if state["config"] != config_dict:
            differ = sorted(k for k in config_dict if state["config"].get(k) != config_dict[k])
            raise CheckpointMismatch(
                f"Checkpoint {checkpoint} was written for a different config (differs in: {', '.join(differ)}). "
                "Delete it, or pass the same options, or another --checkpoint."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, snapshots = state["step"], state["history"], state["snapshots"]
        provenance, wall_before = state["provenance"], state["wall_seconds"]
        here = start_provenance(device)["device"]
        if here not in provenance["device"].split(" + resumed on "):
            provenance["device"] += f" + resumed on {here}"

    log_at = set(logged_steps(config))
    snapshot_at = set(config.resolved_snapshot_steps())
    started = time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - started

    def save_checkpoint():
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
    def measure():
        """Record step ``step`` (after ``step`` updates): losses and accuracies on both splits, ‖W‖, snapshot."""
        model.eval()
        logits = model(pairs)
        loss = cross_entropy64(logits, labels, reduction="none")
        correct = logits.argmax(dim=1) == labels
        model.train()
        record = {
            "step": step,
            "train_loss": rounded(float(loss[is_train].mean())),
            "test_loss": rounded(float(loss[~is_train].mean())),
            "train_acc": rounded(float(correct[is_train].double().mean())),
            "test_acc": rounded(float(correct[~is_train].double().mean())),
            "weight_norm": rounded(weight_norm(model)),
        }
        history.append(record)
        if step in snapshot_at:
            snapshots.append(
                {
                    **record,
                    "embedding_fourier_power": fourier_power(model.embedding_matrix()),
                    "correct": grid_rows(correct.cpu(), config.p),
                }
            )
        return record

    def lr_at(s: int) -> float:
        warmup = min(1.0, (s + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        return config.lr * warmup

    if stop_after is not None and step >= stop_after and step < config.steps:
        return None  # the checkpoint is already at or past that step
    progress_bar = _progress(progress, config, step)
    with progress_bar as bar:
        task = bar.add_task("grokking", total=config.steps, completed=step, stats="")
        if step == 0 and not history:
            measure()
        while step < config.steps:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            optimizer.zero_grad(set_to_none=True)
            loss = cross_entropy64(model(train_pairs), train_labels)
            loss.backward()
            optimizer.step()
            step += 1
            if step in log_at:
                record = measure()
                stats = (f"train {record['train_acc']:.3f}  test {record['test_acc']:.3f}  "
                         f"‖W‖ {record['weight_norm']:.1f}")
                bar.update(task, completed=step, stats=stats)
            stopping = stop_after is not None and step >= stop_after and step < config.steps
            if checkpoint is not None and step < config.steps and (step % checkpoint_every == 0 or stopping):
                save_checkpoint()
            if stopping:
                return None

    provenance = {**provenance, "wall_seconds": round(wall(), 2)}
    log = {
        "kind": "grokking",
        "command": command_line(config, Path(out_path).stem, threads),
        "config": config_dict,
        "provenance": provenance,
        "split": {"train": grid_rows(is_train.cpu(), config.p)},
        "history": history,
        "snapshots": snapshots,
    }
    write_run_log(out_path, log)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return log


def _progress(enabled: bool, config: GrokkingConfig, step: int):
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"{config.default_name()}"),
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
@click.option("--quiet", is_flag=True, help="no progress bar")
def main(name, out_dir, device, checkpoint, checkpoint_every, no_checkpoint, stop_after, threads, quiet, **options):
    """Train modular arithmetic until it groks; write media/runs/grokking/NAME.json (see the module docstring)."""
    try:
        config = GrokkingConfig(**options)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    name = name or config.default_name()
    if no_checkpoint:
        checkpoint = None
    elif checkpoint is None:
        checkpoint = CHECKPOINT_DIR / f"{name}.pt"
    out_path = Path(out_dir) / f"{name}.json"
    log = train(
        config, out_path, device=device, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        stop_after=stop_after, progress=not quiet, threads=threads,
    )
    if log is None:
        click.echo(f"Stopped after step {stop_after}; checkpoint {checkpoint}. "
                   "Run the same command without --stop-after to finish.")
        return
    last = log["history"][-1]
    click.echo(
        f"Wrote {out_path}: {config.steps} steps on {log['provenance']['device']} in "
        f"{log['provenance']['wall_seconds']} s; final train acc {last['train_acc']}, test acc {last['test_acc']}."
    )


if __name__ == "__main__":
    main()
