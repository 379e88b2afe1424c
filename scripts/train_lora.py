"""Fine-tune the committed tiny translator on a shifted task, fully or with LoRA (``media/runs/lora/NAME.json``).

The base is the trained Chinese → English translator of ``media/runs/translator/`` (``shared.runs.load_translator``,
11,232 parameters, exact match 1.0 on its test split), run by ``scripts.train_translator.TorchTranslator``. The
shifted task (``TASK``) comes from the same grammar (:func:`shared.corpus.build_corpus`, another seed) with both sides
reversed: the Chinese words in reverse order in, the English translation in reverse order out::

    书 本 一 了 看 北京 在 昨天 我   →   yesterday Beijing in book a read I

Every word is one the base knows, but no input of the task is a sentence of the original task (an original Chinese
sentence ends in a noun, a reversed one in its subject), so the original test split still measures what the model
forgets. Two methods (``--method``):

- ``full``: every weight trains. The log holds, for every matrix, ΔW = W_after − W_before's singular values.
- ``lora``: every weight is frozen; each adapted projection (``--targets``, default W_q, W_k, W_v, W_o of every
  attention sublayer) becomes W + (α/r)·B A (Hu et al. 2021, *LoRA*, eq. 3, in PEFT's convention: A (r, in) starts
  as PEFT's ``kaiming_uniform_(a=√5)``, i.e. U(±1/√in), B (out, r) at zero; ``--scaling`` is α/r). Only A and B
  train. The log also holds the original task's scores with the adapter removed.

Both log the new task's and the original task's test scores (exact match of greedy decoding, token accuracy), the
trainable parameter count and the wall time, in ``NAME.json``; the weights (the adapters, or every weight after a full
fine-tune) go to ``NAME.npz`` beside it. Run it as ``python -m scripts.train_lora`` (or ``explainer train-lora``);
``media/runs/lora/README.md`` has the exact command of every committed run. Conventions as
``scripts/train_translator.py``, whose model, batches, learning-rate schedule, evaluation and random streams this
reuses: one CPU thread by default, deterministic for a seed (each step's batch and dropout masks from their own
seeds, the LoRA initialisation from its own), exact resume from ``--checkpoint``, atomic writes, and a finished run
is overwritten only with ``--force``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from scripts.train_translator import (
    Batches,
    TorchTranslator,
    evaluate,
    check_start,
    rounded,
    run_steps,
    sha256,
    torch_session,
    weights_path,
)
from scripts.trainer_cli import config_options, run_options
from shared.corpus import PAD, SentencePair, build_corpus
from shared.files import atomic_path
from shared.math.tiny_transformer import weights_to_arrays
from shared.runs import (
    ROOT,
    load_translator,
    translator_run_path,
    write_run_log,
)

LORA_DIR = ROOT / "media" / "runs" / "lora"
CHECKPOINT_DIR = ROOT / "media" / "checkpoints" / "lora"  # ignored by git (only media/runs/ is committed)
METHODS = ("full", "lora")
PROJECTIONS = "qkvo"  # W_q, W_k, W_v, W_o of an attention sublayer
TASK = "reversed"
# numpy SeedSequence spawn key of the LoRA initialisation: scripts.train_translator.STREAMS uses 0 (batch) and
# 1 (dropout), so no two purposes share a stream.
LORA_INIT_STREAM = 2


@dataclass(frozen=True)
class LoRATrainConfig:
    """Every hyperparameter of a run; written verbatim as the log's ``config``."""

    base: str = "zh_en"  # the translator run to start from: media/runs/translator/BASE.json + .npz
    # the shifted task: shared.corpus.build_corpus(n_train, n_test, corpus_seed), both sides reversed (the base was
    # trained on corpus seed 0)
    corpus_seed: int = 1
    n_train: int = 2000
    n_test: int = 400
    n_original_test: int = 400  # the original task's test sentences scored: the first n of the base run's split
    method: str = "lora"  # "full": every weight trains; "lora": frozen weights + B A on the targets
    rank: int = 8  # r of every adapter (lora only)
    scaling: float = 1.0  # α / r, PEFT's lora_alpha / r (lora only): the update is scaling · B A
    targets: str = PROJECTIONS  # projections of every attention sublayer that get an adapter (lora only)
    # training: Adam, linear warm-up then cosine decay to min_lr_fraction · lr (scripts.train_translator.lr_at)
    seed: int = 0  # seeds the LoRA initialisation, the batches and the dropout masks
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-2
    warmup_steps: int = 100
    min_lr_fraction: float = 0.05
    # P_drop while fine-tuning (the base trained with 0.1, Vaswani et al. 2017 §5.4); with 0.1 here the adapters
    # learnt the task far less well in the same steps (media/runs/lora/README.md)
    dropout: float = 0.0
    log_every: int = 100  # steps between history records (both test splits are decoded at each)

    def __post_init__(self):
        positive = ("n_train", "n_test", "n_original_test", "rank", "steps", "batch_size", "log_every")
        bad = [f"{name} = {getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        if bad:
            raise ValueError(f"these must be at least 1: {', '.join(bad)}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.targets or set(self.targets) - set(PROJECTIONS) or len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets must be distinct letters of {PROJECTIONS!r} (e.g. 'qv'), got {self.targets!r}")
        if not self.lr > 0 or not self.scaling > 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_fraction <= 1:
            raise ValueError("lr and scaling must be > 0, warmup_steps ≥ 0 and min_lr_fraction in [0, 1]")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not translator_run_path(self.base).exists():
            raise ValueError(f"base run {translator_run_path(self.base)} does not exist: train it with "
                             "python -m scripts.train_translator, or pass --base NAME of one that does")  # fmt: skip

    def default_name(self) -> str:
        """``full``, or ``lora_r8`` (with the targets when they are not all four projections: ``lora_qv_r8``)."""
        if self.method == "full":
            return "full"
        return f"lora_r{self.rank}" if self.targets == PROJECTIONS else f"lora_{self.targets}_r{self.rank}"


# --- the shifted task ----------------------------------------------------------------------------------------------


def reversed_pair(pair: SentencePair) -> SentencePair:
    """Both sides in reverse order, the alignment following: target word j of the result is target word n−1−j of
    ``pair``, and the source word it translates moves from index i to m−1−i."""
    m = len(pair.source)
    return SentencePair(pair.source[::-1], pair.target[::-1],
                        tuple(None if a is None else m - 1 - a for a in pair.alignment[::-1]))  # fmt: skip


def shifted_corpus(cfg: LoRATrainConfig) -> tuple[tuple[SentencePair, ...], tuple[SentencePair, ...]]:
    """(train, test) of the shifted task: :func:`shared.corpus.build_corpus` reversed; the splits share no sentence."""
    corpus = build_corpus(cfg.n_train, cfg.n_test, cfg.corpus_seed)
    return tuple(map(reversed_pair, corpus.train)), tuple(map(reversed_pair, corpus.test))


# --- LoRA ----------------------------------------------------------------------------------------------------------


class LoRAUpdate(nn.Module):
    """The parametrization W ↦ W + scaling · (B A)ᵀ of a weight stored ``[in, out]`` (``x @ w``, the layout of
    ``shared.math.tiny_transformer``); ``lora_a`` A (r, in) and ``lora_b`` B (out, r) as PEFT stores them, so
    ``x @ w`` becomes PEFT's ``x Wᵀ + scaling · x Aᵀ Bᵀ`` (``shared.math.lora.lora_forward``)."""

    def __init__(self, lora_a: np.ndarray, out_features: int, scaling: float):
        super().__init__()
        self.lora_a = nn.Parameter(torch.tensor(lora_a, dtype=torch.float32))
        self.lora_b = nn.Parameter(torch.zeros(out_features, lora_a.shape[0]))
        self.scaling = scaling

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scaling * (self.lora_b @ self.lora_a).T


def adapted_names(arrays: dict[str, np.ndarray], targets: str) -> list[str]:
    """The weights that get an adapter: ``…attention/w_X`` for each X in ``targets``, in name order."""
    return sorted(name for name in arrays if any(name.endswith(f"attention/w_{t}") for t in targets))


def initial_lora_a(cfg: LoRATrainConfig, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A of every adapter, U(±1/√in) as PEFT's ``kaiming_uniform_(a=√5)``, from the run's own initialisation
    stream (numpy ``SeedSequence(seed, spawn_key=(LORA_INIT_STREAM,))``), drawn in name order."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(LORA_INIT_STREAM,)))
    out = {}
    for name in adapted_names(arrays, cfg.targets):
        fan_in = arrays[name].shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        out[name] = rng.uniform(-bound, bound, size=(cfg.rank, fan_in)).astype(np.float32)
    return out


def build_model(cfg: LoRATrainConfig, base_arrays: dict[str, np.ndarray], model_config, device):
    """The base model, with adapters for ``lora``; returns (model, the parameters that train)."""
    model = TorchTranslator(model_config, base_arrays, dropout=cfg.dropout)
    if cfg.method == "full":
        return model.to(device), list(model.parameters())
    model.requires_grad_(False)
    trainable = []
    for name, lora_a in initial_lora_a(cfg, base_arrays).items():
        update = LoRAUpdate(lora_a, base_arrays[name].shape[1], cfg.scaling)
        parametrize.register_parametrization(model.w, name, update)
        trainable += [update.lora_a, update.lora_b]
    return model.to(device), trainable


def adapter_arrays(model: TorchTranslator) -> dict[str, np.ndarray]:
    """``{"<weight>/lora_a": A, "<weight>/lora_b": B}`` of every adapter (float32), as the run's ``.npz`` holds them."""
    out = {}
    for name, plist in model.w.parametrizations.items():
        update = plist[0]
        out[f"{name}/lora_a"] = update.lora_a.detach().cpu().numpy()
        out[f"{name}/lora_b"] = update.lora_b.detach().cpu().numpy()
    return out


def frozen_arrays(model: TorchTranslator) -> dict[str, np.ndarray]:
    """The model's own weights without any adapter (the originals under a parametrization)."""
    out = {}
    for name in model.w.keys():
        if parametrize.is_parametrized(model.w, name):
            tensor = model.w.parametrizations[name].original
        else:
            tensor = model.w[name]
        out[name] = tensor.detach().cpu().numpy()
    return out


def delta_spectra(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, dict]:
    """For every matrix: ΔW = after − before (float64), its singular values (``numpy.linalg.svd``, largest first),
    ‖ΔW‖_F and ‖W_before‖_F."""
    out = {}
    for name in sorted(before):
        if before[name].ndim != 2:
            continue
        delta = after[name].astype(np.float64) - before[name].astype(np.float64)
        out[name] = {
            "shape": list(delta.shape),
            "singular_values": [rounded(s) for s in np.linalg.svd(delta, compute_uv=False)],
            "frobenius": rounded(np.linalg.norm(delta)),
            "base_frobenius": rounded(np.linalg.norm(before[name].astype(np.float64))),
        }
    return out


# --- training ------------------------------------------------------------------------------------------------------


def command_line(cfg: LoRATrainConfig, name: str | None = None, threads: int = 1) -> str:
    """The command that reproduces this run: the options that differ from the defaults (plus name and threads)."""
    parts = ["python -m scripts.train_lora"]
    for key, default in dataclasses.asdict(LoRATrainConfig()).items():
        value = getattr(cfg, key)
        if value != default:
            parts.append(f"--{key.replace('_', '-')} {value:g}" if isinstance(value, float) else
                         f"--{key.replace('_', '-')} {value}")  # fmt: skip
    if name is not None and name != cfg.default_name():
        parts.append(f"--name {name}")
    if threads != 1:
        parts.append(f"--threads {threads}")
    return " ".join(parts)


def split_scores(model: TorchTranslator, splits: dict[str, Batches]) -> dict[str, float]:
    """Loss, token accuracy and exact match of ``model`` on each split, as ``<split>_<measure>``."""
    scores = {}
    for split, data in splits.items():
        measured = evaluate(model, data)
        scores |= {f"{split}_{k}": measured[k] for k in ("loss", "token_accuracy", "exact_match")}
    return scores


def train(
    cfg: LoRATrainConfig,
    out_path: str | Path,
    *,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 500,
    stop_after: int | None = None,
    progress: bool = True,
    threads: int = 1,
    force: bool = False,
) -> dict[str, Any] | None:
    """Fine-tune one run; write ``out_path`` (the log) and its ``.npz`` beside it; return the log.

    The ``.npz`` holds the adapters (``<weight>/lora_a``, ``<weight>/lora_b``) of a LoRA run, or every weight after
    a full fine-tune (named as ``tiny_transformer.weights_to_arrays``). Parameters as
    :func:`scripts.train_translator.train`: ``checkpoint`` resumes when it exists (same config) and is saved every
    ``checkpoint_every`` steps; ``stop_after`` saves a checkpoint after that step and returns None; ``threads`` CPU
    threads; without ``force`` a run that would overwrite a finished one is refused before any work.
    """
    out_path = Path(out_path)
    check_start(out_path, checkpoint, stop_after, force)
    if threads < 1 or checkpoint_every < 1:
        raise click.UsageError("--threads and --checkpoint-every must be at least 1")
    base = load_translator(cfg.base)
    if cfg.n_original_test > len(base.test_split):
        raise click.UsageError(f"--n-original-test {cfg.n_original_test}: the base run {cfg.base!r} has "
                               f"{len(base.test_split)} test sentences")  # fmt: skip
    with torch_session(device, threads) as device:
        return _train(cfg, base, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads)


def _train(cfg, base, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads):
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    config = dataclasses.asdict(cfg)
    model_config = base.model.config
    base_arrays = {k: v.astype(np.float32) for k, v in weights_to_arrays(base.model.weights).items()}
    model, trainable = build_model(cfg, base_arrays, model_config, device)
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    train_pairs, test_pairs = shifted_corpus(cfg)
    train_data = Batches.of(train_pairs, model_config, device)
    splits = {"new": Batches.of(test_pairs, model_config, device),
              "original": Batches.of(base.test_split[: cfg.n_original_test], model_config, device)}  # fmt: skip
    pad = model_config.target_vocab.index(PAD)

    outcome = run_steps(cfg, model, optimizer, train_data, pad, config=config, device=device, threads=threads,
                        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after,
                        progress=progress, label=out_path.stem, scores=lambda: split_scores(model, splits),
                        stats=lambda r: f"new exact {r['new_exact_match']:.3f}  "
                                        f"original exact {r['original_exact_match']:.3f}")  # fmt: skip
    if outcome is None:
        return None
    history, provenance, wall = outcome

    final = history[-1]
    metrics = {
        "n_parameters": sum(a.size for a in base_arrays.values()),
        "trainable_parameters": sum(p.numel() for p in trainable),
        **{f"{split}_{k}": final[f"{split}_{k}"] for split in splits for k in ("exact_match", "token_accuracy")},
        **{f"{split}_{k}_before": history[0][f"{split}_{k}"] for split in splits
           for k in ("exact_match", "token_accuracy")},  # fmt: skip
    }
    frozen = frozen_arrays(model)
    extra: dict[str, Any] = {}
    if cfg.method == "full":
        arrays = frozen
        extra["delta"] = delta_spectra(base_arrays, frozen)
    else:
        arrays = adapter_arrays(model)
        extra["adapted"] = {name: list(base_arrays[name].shape) for name in model.w.parametrizations}
        unchanged = all(np.array_equal(frozen[k], base_arrays[k]) for k in base_arrays)
        if not unchanged:
            raise RuntimeError("a frozen weight changed during LoRA training")
        # the original task with the adapter removed: the frozen weights alone
        plain = TorchTranslator(model_config, frozen).to(device)
        scores = evaluate(plain, splits["original"])
        metrics |= {f"original_{k}_without_adapter": rounded(scores[k]) for k in ("exact_match", "token_accuracy")}
    weights_file = weights_path(out_path)
    with atomic_path(weights_file) as tmp:
        np.savez(tmp, **arrays)
    log = {
        "kind": "lora",
        "command": command_line(cfg, out_path.stem, threads),
        "config": config,
        "provenance": {**provenance, "wall_seconds": round(wall(), 2)},
        "base": {"run": cfg.base, "weights_sha256": base.log["weights"]["sha256"]},
        "task": {"name": TASK, "description": "shared.corpus.build_corpus(n_train, n_test, corpus_seed), "
                                              "source and target both reversed"},
        "history": history,
        "metrics": metrics,
        **extra,
        "weights": {"file": weights_file.name, "sha256": sha256(weights_file)},
        "test_split": [pair.as_dict() for pair in test_pairs],
    }
    write_run_log(out_path, log)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return log


# --- command line --------------------------------------------------------------------------------------------------


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@config_options(LoRATrainConfig, {"method": METHODS})
@run_options(out_dir=LORA_DIR, checkpoint_dir=CHECKPOINT_DIR, checkpoint_every=500, name_default=None,
             name_help="the run's files OUT_DIR/NAME.json and NAME.npz [default: full, lora_r8…]")
def main(name, out_dir, device, threads, checkpoint, checkpoint_every, no_checkpoint, stop_after, force, quiet,
         **options):
    """Fine-tune the tiny translator on the reversed task, fully or with LoRA (see the module docstring)."""
    try:
        cfg = LoRATrainConfig(**options)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    name = name or cfg.default_name()
    checkpoint = None if no_checkpoint else (checkpoint or CHECKPOINT_DIR / f"{name}.pt")
    out = Path(out_dir) / f"{name}.json"
    log = train(cfg, out, device=device, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                stop_after=stop_after, progress=not quiet, threads=threads, force=force)  # fmt: skip
    if log is None:
        click.echo(f"Stopped after step {stop_after}; checkpoint {checkpoint}. Run the same command without "
                   "--stop-after to finish.")  # fmt: skip
        return
    m = log["metrics"]
    click.echo(f"Wrote {out} and {weights_path(out).name}: {m['trainable_parameters']} of {m['n_parameters']} "
               f"parameters trained, {log['provenance']['wall_seconds']} s on {log['provenance']['device']}; new task "
               f"exact match {m['new_exact_match']}, original task {m['original_exact_match']}.")  # fmt: skip


if __name__ == "__main__":
    main()
