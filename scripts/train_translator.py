"""Train the tiny Chinese → English translator and write its run (``media/runs/translator/NAME.json`` + ``.npz``).

The model is :mod:`shared.math.tiny_transformer`'s encoder–decoder (Vaswani et al. 2017, Post-LN by default) written
in torch with the same parameters, names and shapes (``TorchTranslator``): a linear layer is ``x @ w + b`` with
``w`` of shape ``[in, out]``, embeddings are scaled by √d_model, positions are sinusoidal. Its initial weights ARE
``tiny_transformer.init_weights`` for the seed, and the trained weights go to ``NAME.npz`` under the names of
``tiny_transformer.weights_to_arrays``, so the numpy forward pass of ``shared.runs.load_translator()`` is the torch
model's (``tests/runs/test_translator_run.py`` checks the logits to 1e-6 in float64). The data is
:func:`shared.corpus.build_corpus`: Chinese sentences with time and place before the verb, English with them after
the object.

Run it as ``python -m scripts.train_translator`` (or ``explainer train-translator``); ``media/runs/translator/
README.md`` has the exact command of the committed run. One CPU thread by default (``--threads``): the model is tiny
and the machine is shared. Deterministic for a seed: the initial weights come from the seed, and the batch and the
dropout masks of step s from generators seeded by (seed, s) (``STREAMS``), so a run resumed from its checkpoint
(``--checkpoint``, saved every ``--checkpoint-every`` steps) writes the same log as an uninterrupted one.

The log holds ``config``, ``provenance``, ``history`` (train loss, test loss, test token accuracy and exact match
every ``log_every`` steps), ``metrics`` (the final ones, plus the cross-attention alignment score), ``vocab``,
``test_split`` (every test pair with its alignment), ``weights`` (file name and sha256 of the ``.npz``) and
``command``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scripts.train_grokking import CheckpointMismatch
from scripts.trainer_cli import config_options, run_options
from shared.corpus import PAD, SOURCE_VOCAB, TARGET_VOCAB, build_corpus
from shared.files import atomic_path
from shared.math.tiny_transformer import (
    BOS,
    EOS,
    NORM_POSITIONS,
    TinyTransformerConfig,
    config_from_dict,
    count_parameters,
    init_weights,
    sinusoidal_positional_encoding,
    weights_from_arrays,
    weights_to_arrays,
)
from shared.runs import (
    ROOT,
    deterministic_torch,
    pick_device,
    refuse_overwrite,
    resume_provenance,
    start_provenance,
    write_run_log,
)

TRANSLATOR_DIR = ROOT / "media" / "runs" / "translator"
CHECKPOINT_DIR = ROOT / "media" / "checkpoints" / "translator"  # ignored by git (only media/runs/ is committed)
DEFAULT_NAME = "zh_en"
# The random streams of a run besides the initial weights (tiny_transformer.init_weights draws them from
# numpy.random.default_rng(seed)). Each step's batch and dropout masks get their own seed from numpy's
# SeedSequence(seed, spawn_key=(purpose, step)): distinct keys give independent streams, never one seed for two uses.
STREAMS = {"batch": 0, "dropout": 1}
MAX_POSITIONS = 64  # rows of the positional table; sentences here have at most 13 tokens
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class TranslatorTrainConfig:
    """Every hyperparameter of a run; written verbatim as the log's ``config``."""

    # corpus (shared.corpus.build_corpus)
    corpus_seed: int = 0
    n_train: int = 4000
    n_test: int = 400
    # model (shared.math.tiny_transformer.TinyTransformerConfig)
    d_model: int = 16
    n_heads: int = 2
    ffn_multiplier: int = 4
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    norm_position: str = "post"  # "post" (Vaswani et al. 2017) or "pre"
    # training: Adam, linear warm-up then cosine decay to min_lr_fraction · lr
    seed: int = 0  # seeds the initial weights, the batches and the dropout masks
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 200
    min_lr_fraction: float = 0.05
    # P_drop of Vaswani et al. 2017 §5.4 (0.1 there too): on each sublayer's output before the residual ⊕ and on the
    # embedding + position sums. Training only: the numpy model (and torch in eval mode) has none.
    dropout: float = 0.1
    log_every: int = 100  # steps between history records (the test split is decoded at each)

    def __post_init__(self):
        positive = ("n_train", "n_test", "d_model", "n_heads", "ffn_multiplier", "n_encoder_layers",
                    "n_decoder_layers", "steps", "batch_size", "log_every")  # fmt: skip
        bad = [f"{name} = {getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        if bad:
            raise ValueError(f"these must be at least 1: {', '.join(bad)}")
        self.model_config()  # its own checks: d_model even and divisible by n_heads, a known norm_position
        if not self.lr > 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_fraction <= 1:
            raise ValueError("lr must be > 0, warmup_steps ≥ 0 and min_lr_fraction in [0, 1]")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def model_config(self) -> TinyTransformerConfig:
        """The numpy model's config: the fields named as its own (d_model ... norm_position, and seed for the initial
        weights), with the corpus's vocabularies. ``shared.runs.load_translator`` builds it the same way."""
        return config_from_dict(dataclasses.asdict(self), source_vocab=SOURCE_VOCAB, target_vocab=TARGET_VOCAB)


# --- the model -----------------------------------------------------------------------------------------------------


class TorchTranslator(nn.Module):
    """``shared.math.tiny_transformer.forward`` in torch, batched: sentences padded with <pad> (id 0) at the end.

    Padded source positions are masked out as keys (encoder self-attention and cross-attention); padded target
    positions come after every real one, so the causal mask already hides them. Every real position computes what
    the numpy model computes for that sentence alone. Parameters are named as ``weights_to_arrays``.
    """

    def __init__(self, config: TinyTransformerConfig, arrays: dict[str, np.ndarray], dtype=torch.float32,
                 dropout: float = 0.0):
        super().__init__()
        self.config, self.dropout = config, dropout
        self.w = nn.ParameterDict({k: nn.Parameter(torch.tensor(v, dtype=dtype)) for k, v in arrays.items()})
        table = sinusoidal_positional_encoding(MAX_POSITIONS, config.d_model, config.positional_base)
        self.register_buffer("positions", torch.tensor(table, dtype=dtype))
        self.source_pad = config.source_vocab.index(PAD)

    @classmethod
    def initial(cls, config: TinyTransformerConfig, dropout: float = 0.0) -> TorchTranslator:
        """The seeded initial weights of ``tiny_transformer.init_weights(config)``."""
        return cls(config, weights_to_arrays(init_weights(config)), dropout=dropout)

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as ``{name: float32 array}``, as stored in the run's ``.npz``."""
        return {k: v.detach().cpu().float().numpy() for k, v in self.w.items()}

    def _embed(self, table: str, ids: torch.Tensor) -> torch.Tensor:  # [B, L] → [B, L, d]
        x = self.w[table][ids] * math.sqrt(self.config.d_model) + self.positions[: ids.shape[1]]
        return F.dropout(x, self.dropout, self.training)

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w[f"{name}/gamma"], self.w[f"{name}/beta"],
                            self.config.layer_norm_eps)  # fmt: skip

    def _attention(self, xq, xkv, name: str, key_keep: torch.Tensor, causal: bool):
        """Multi-head attention → (output [B, L, d], weights [B, h, L, S]); ``key_keep`` [B, S] False at padding."""
        w, h = self.w, self.config.n_heads
        (B, L, d), S = xq.shape, xkv.shape[1]

        def heads(x, proj: str, n: int):  # [B, n, d] → [B, h, n, d_head]
            return (x @ w[f"{name}/w_{proj}"] + w[f"{name}/b_{proj}"]).view(B, n, h, d // h).transpose(1, 2)

        q, k, v = heads(xq, "q", L), heads(xkv, "k", S), heads(xkv, "v", S)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        allowed = key_keep[:, None, None, :]
        if causal:
            allowed = allowed & torch.ones(L, S, dtype=torch.bool, device=xq.device).tril()
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        concatenated = (weights @ v).transpose(1, 2).reshape(B, L, d)
        return concatenated @ w[f"{name}/w_o"] + w[f"{name}/b_o"], weights

    def _feed_forward(self, x, name: str):
        w = self.w
        return torch.relu(x @ w[f"{name}/w_1"] + w[f"{name}/b_1"]) @ w[f"{name}/w_2"] + w[f"{name}/b_2"]

    def _residual(self, x, norm: str, f):
        """Post-LN: LN(x + f(x)); Pre-LN: x + f(LN(x)) (``tiny_transformer._residual``); f's output dropped out
        while training."""
        if self.config.norm_position == "post":
            return self._norm(x + F.dropout(f(x), self.dropout, self.training), norm)
        return x + F.dropout(f(self._norm(x, norm)), self.dropout, self.training)

    def encode(self, source_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S] ids → (memory [B, S, d], key_keep [B, S])."""
        keep = source_ids != self.source_pad
        x = self._embed("source_embedding", source_ids)
        for i in range(self.config.n_encoder_layers):
            p = f"encoder_layers/{i}/"
            x = self._residual(x, p + "norm_1", lambda s: self._attention(s, s, p + "self_attention", keep, False)[0])
            x = self._residual(x, p + "norm_2", lambda s: self._feed_forward(s, p + "feed_forward"))
        if self.config.has_final_norm:
            x = self._norm(x, "encoder_final_norm")
        return x, keep

    def decode(self, memory, keep, decoder_input_ids) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (logits [B, T, V], the last decoder layer's cross-attention weights [B, h, T, S])."""
        y = self._embed("target_embedding", decoder_input_ids)
        everywhere = torch.ones(decoder_input_ids.shape, dtype=torch.bool, device=y.device)
        cross = None
        for i in range(self.config.n_decoder_layers):
            p = f"decoder_layers/{i}/"

            def cross_attention(s):
                nonlocal cross
                out, cross = self._attention(s, memory, p + "cross_attention", keep, False)
                return out

            y = self._residual(y, p + "norm_1", lambda s: self._attention(s, s, p + "self_attention", everywhere,
                                                                           True)[0])  # fmt: skip
            y = self._residual(y, p + "norm_2", cross_attention)
            y = self._residual(y, p + "norm_3", lambda s: self._feed_forward(s, p + "feed_forward"))
        if self.config.has_final_norm:
            y = self._norm(y, "decoder_final_norm")
        return y @ self.w["output_projection"], cross

    def forward(self, source_ids, decoder_input_ids):
        """Teacher forcing: [B, S], [B, T] → (logits [B, T, V], last cross-attention [B, h, T, S])."""
        return self.decode(*self.encode(source_ids), decoder_input_ids)

    @torch.no_grad()
    def greedy(self, source_ids: torch.Tensor, max_tokens: int) -> torch.Tensor:
        """Greedy decoding of a batch: [B, S] → [B, max_tokens] token ids (whatever follows <eos> is to be cut)."""
        memory, keep = self.encode(source_ids)
        bos = self.config.target_vocab.index(BOS)
        out = torch.full((source_ids.shape[0], 1), bos, dtype=torch.long, device=source_ids.device)
        for _ in range(max_tokens):
            logits, _ = self.decode(memory, keep, out)
            out = torch.cat([out, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
        return out[:, 1:]


# --- data ----------------------------------------------------------------------------------------------------------


@dataclass
class Batches:
    """A split as padded id tensors: source [N, S], decoder input <bos>+target [N, T], decoder target target+<eos>
    [N, T], and the alignment of each decoder target position [N, T] (−1: none, or <eos>, or padding)."""

    source: torch.Tensor
    decoder_input: torch.Tensor
    decoder_target: torch.Tensor
    alignment: torch.Tensor

    @classmethod
    def of(cls, pairs, config: TinyTransformerConfig, device) -> Batches:
        S, T = max(len(p.source) for p in pairs), max(len(p.target) for p in pairs) + 1
        sv = {t: i for i, t in enumerate(config.source_vocab)}
        tv = {t: i for i, t in enumerate(config.target_vocab)}
        pad = tv[PAD]

        def padded(ids, length, fill=pad):
            return list(ids) + [fill] * (length - len(ids))

        source = [padded([sv[t] for t in p.source], S, sv[PAD]) for p in pairs]
        decoder_input = [padded([tv[BOS]] + [tv[t] for t in p.target], T) for p in pairs]
        decoder_target = [padded([tv[t] for t in p.target] + [tv[EOS]], T) for p in pairs]
        alignment = [padded([-1 if a is None else a for a in p.alignment], T, -1) for p in pairs]
        return cls(*(torch.tensor(x, dtype=torch.long, device=device)
                     for x in (source, decoder_input, decoder_target, alignment)))  # fmt: skip

    def take(self, index: torch.Tensor) -> Batches:
        return Batches(self.source[index], self.decoder_input[index], self.decoder_target[index], self.alignment[index])


def stream_seed(seed: int, purpose: str, step: int) -> int:
    """The torch seed (64 bits) of one step's ``purpose`` stream (a key of :data:`STREAMS`) in the run with ``seed``.
    References: ``numpy.random.SeedSequence`` (spawn keys); ``scripts/train_moe.py`` seeds its streams the same way."""
    return int(np.random.SeedSequence(seed, spawn_key=(STREAMS[purpose], step)).generate_state(1, np.uint64)[0])


def batch_index(cfg: TranslatorTrainConfig, step: int) -> torch.Tensor:
    """The train sentences of step ``step`` (drawn with replacement) from the step's own "batch" stream."""
    generator = torch.Generator().manual_seed(stream_seed(cfg.seed, "batch", step))
    return torch.randint(cfg.n_train, (cfg.batch_size,), generator=generator)


def lr_at(cfg: TranslatorTrainConfig, step: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then cosine decay to min_lr_fraction·lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_fraction + (1 - cfg.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


# --- measurements --------------------------------------------------------------------------------------------------


def rounded(x: float) -> float:
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


@torch.no_grad()
def evaluate(model: TorchTranslator, data: Batches) -> dict[str, float]:
    """Loss and token accuracy with teacher forcing, exact match of greedy decoding, and cross-attention alignment.

    ``token_accuracy``: share of target positions (every word and the final <eos>) whose argmax is the right token
    when the decoder reads the true prefix. ``exact_match``: share of sentences whose greedy translation is exactly
    the target followed by <eos>. ``alignment_accuracy``: share of target words that have an aligned source word
    (``shared.corpus`` convention) for which the last decoder layer's cross-attention, averaged over heads, puts
    its largest weight on that source word (the row of the position that predicts the word). In eval mode (no
    dropout), as the numpy model.
    """
    was_training = model.training
    model.eval()
    logits, cross = model(data.source, data.decoder_input)
    real = data.decoder_target != model.config.target_vocab.index(PAD)
    loss = F.cross_entropy(logits[real], data.decoder_target[real])
    token_accuracy = (logits.argmax(-1) == data.decoder_target)[real].double().mean()
    greedy = model.greedy(data.source, data.decoder_target.shape[1])
    exact = ((greedy == data.decoder_target) | ~real).all(dim=1).double().mean()
    aligned = data.alignment >= 0
    looked_at = cross.mean(dim=1).argmax(dim=-1)  # [B, T]: source position with the largest mean weight
    alignment = (looked_at == data.alignment)[aligned].double().mean()
    model.train(was_training)
    return {"loss": float(loss), "token_accuracy": float(token_accuracy), "exact_match": float(exact),
            "alignment_accuracy": float(alignment)}  # fmt: skip


# --- training ------------------------------------------------------------------------------------------------------


def command_line(cfg: TranslatorTrainConfig, name: str = DEFAULT_NAME, threads: int = 1) -> str:
    """The command that reproduces this run: the options that differ from the defaults (plus name and threads)."""
    parts = ["python -m scripts.train_translator"]
    for key, default in dataclasses.asdict(TranslatorTrainConfig()).items():
        value = getattr(cfg, key)
        if value != default:
            parts.append(f"--{key.replace('_', '-')} {value:g}" if isinstance(value, float) else
                         f"--{key.replace('_', '-')} {value}")  # fmt: skip
    if name != DEFAULT_NAME:
        parts.append(f"--name {name}")
    if threads != 1:
        parts.append(f"--threads {threads}")
    return " ".join(parts)


def weights_path(log_path: str | Path) -> Path:
    """A run's weights sit beside its log: ``NAME.json`` → ``NAME.npz``."""
    return Path(log_path).with_suffix(".npz")


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_start(out_path: Path, checkpoint, stop_after: int | None, force: bool) -> None:
    """Refuse, before any work, a run that would overwrite a finished one without ``force`` (resuming its
    checkpoint needs no flag) or one told to stop with no checkpoint to stop into."""
    resuming = checkpoint is not None and Path(checkpoint).exists()
    refuse_overwrite([out_path, weights_path(out_path)], resuming=resuming, force=force)
    if stop_after is not None and checkpoint is None:
        raise click.UsageError("--stop-after needs a checkpoint to stop into")


@contextlib.contextmanager
def torch_session(device: str, threads: int):
    """The device to train on (``auto``: CUDA when present), with deterministic torch on ``threads`` CPU threads.
    Each step reseeds torch's global RNG (its dropout masks), so that RNG is forked: the caller's state is kept."""
    device = pick_device(device)
    cuda_devices = [] if device == "cpu" else [torch.device(device).index or 0]
    with deterministic_torch(threads), torch.random.fork_rng(devices=cuda_devices):
        yield device


def run_steps(cfg, model: nn.Module, optimizer: torch.optim.Optimizer, train_data: Batches, pad: int, *,
              config: dict, device: str, threads: int, checkpoint: Path | None, checkpoint_every: int,
              stop_after: int | None, progress: bool, label: str, scores: Callable[[], dict[str, float]],
              stats: Callable[[dict], str]):
    """The training loop of every translator trainer (this one and ``scripts/train_lora.py``).

    Resumes from ``checkpoint`` when it exists (written for the same ``config``, else :class:`CheckpointMismatch`);
    step s uses batch :func:`batch_index` (cfg, s), learning rate :func:`lr_at` (cfg, s) and dropout masks seeded by
    :func:`stream_seed` (cfg.seed, "dropout", s); every ``cfg.log_every`` steps (and at steps 0 and ``cfg.steps``)
    a history record holds the step, the learning rate, the mean train loss since the last record and ``scores()``
    (rounded); a checkpoint every ``checkpoint_every`` steps. Returns ``(history, provenance, wall)`` (``wall()``:
    seconds of training so far, resumed runs included), or None after saving a checkpoint at ``stop_after``.
    """
    step, history, window = 0, [], []  # window: train losses since the last record
    provenance, wall_before = {**start_provenance(device), "torch_threads": threads}, 0.0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state["config"] != config:
            differ = sorted(k for k in config if state["config"].get(k) != config[k])
            raise CheckpointMismatch(f"Checkpoint {checkpoint} was written for a different config (differs in: "
                                     f"{', '.join(differ)}). Delete it, or pass the same options.")  # fmt: skip
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, window = state["step"], state["history"], state["window"]
        provenance, wall_before = resume_provenance(state["provenance"], device, step), state["wall_seconds"]
    started = time.perf_counter()

    def wall() -> float:
        return wall_before + time.perf_counter() - started

    def save_checkpoint(step: int):
        state = {"config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                 "history": history, "window": window, "provenance": provenance, "wall_seconds": wall()}  # fmt: skip
        with atomic_path(checkpoint) as tmp:
            torch.save(state, tmp)

    def measure(step: int) -> dict:
        record = {"step": step, "lr": rounded(lr_at(cfg, max(step - 1, 0))),
                  "train_loss": rounded(sum(window) / len(window)) if window else None,
                  **{k: rounded(v) for k, v in scores().items()}}  # fmt: skip
        history.append(record)
        window.clear()
        return record

    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}")]  # fmt: skip
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("train", total=cfg.steps, completed=step, stats="")
        if step == 0 and not history:
            measure(0)
        while step < cfg.steps:
            if stop_after is not None and step >= stop_after:
                save_checkpoint(step)
                return None
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, step)
            torch.manual_seed(stream_seed(cfg.seed, "dropout", step))  # this step's dropout masks
            batch = train_data.take(batch_index(cfg, step).to(device))
            logits, _ = model(batch.source, batch.decoder_input)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.decoder_target.flatten(), ignore_index=pad)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window.append(loss.item())
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                record = measure(step)
                bar.update(task, stats=f"loss {record['train_loss']:.3f}  {stats(record)}")
            bar.update(task, completed=step)
            if checkpoint is not None and step % checkpoint_every == 0 and step < cfg.steps:
                save_checkpoint(step)
    return history, provenance, wall


def train(
    cfg: TranslatorTrainConfig,
    out_path: str | Path,
    *,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1000,
    stop_after: int | None = None,
    progress: bool = True,
    threads: int = 1,
    force: bool = False,
) -> dict[str, Any] | None:
    """Train one run; write ``out_path`` (the log) and its ``.npz`` beside it; return the log.

    Parameters
    ----------
    cfg
        Every hyperparameter.
    out_path
        The log's path (``NAME.json``); the weights go to ``NAME.npz``. Both are written atomically at the end.
    device
        ``auto`` (CUDA when available), ``cuda`` or ``cpu``.
    checkpoint
        Resume from this file when it exists (its config must equal ``cfg``); save to it every ``checkpoint_every``
        steps. Deleted when the run finishes. None: no checkpoints.
    stop_after
        Save a checkpoint after this step and return None without a log (splits a run; tests resuming).
    threads
        CPU threads for torch (recorded in the provenance: another count may round sums differently).
    force
        Start over an existing log or weights file (a finished run); without it the run refuses before training
        (:func:`shared.runs.refuse_overwrite`). Resuming from a checkpoint needs no flag: starting that run was.
    """
    out_path = Path(out_path)
    check_start(out_path, checkpoint, stop_after, force)
    with torch_session(device, threads) as device:
        return _train(cfg, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads)


def _train(cfg, out_path, device, checkpoint, checkpoint_every, stop_after, progress, threads):
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    config = dataclasses.asdict(cfg)
    corpus = build_corpus(cfg.n_train, cfg.n_test, cfg.corpus_seed)
    model_config = cfg.model_config()
    model = TorchTranslator.initial(model_config, dropout=cfg.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    train_data = Batches.of(corpus.train, model_config, device)
    test_data = Batches.of(corpus.test, model_config, device)
    pad = model_config.target_vocab.index(PAD)

    outcome = run_steps(cfg, model, optimizer, train_data, pad, config=config, device=device, threads=threads,
                        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after,
                        progress=progress, label=out_path.stem,
                        scores=lambda: {f"test_{k}": v for k, v in evaluate(model, test_data).items()},
                        stats=lambda r: f"test exact {r['test_exact_match']:.3f}  "
                                        f"align {r['test_alignment_accuracy']:.3f}")  # fmt: skip
    if outcome is None:
        return None
    history, provenance, wall = outcome

    weights_file = weights_path(out_path)
    with atomic_path(weights_file) as tmp:
        np.savez(tmp, **model.arrays())
    final = history[-1]
    log = {
        "kind": "translator",
        "command": command_line(cfg, out_path.stem, threads),
        "config": config,
        "provenance": {**provenance, "wall_seconds": round(wall(), 2)},
        "history": history,
        "metrics": {
            "n_parameters": count_parameters(weights_from_arrays(model_config, model.arrays())),
            "test_exact_match": final["test_exact_match"],
            "test_token_accuracy": final["test_token_accuracy"],
            "test_alignment_accuracy": final["test_alignment_accuracy"],
            "test_loss": final["test_loss"],
            "train_exact_match": rounded(evaluate(model, train_data)["exact_match"]),
        },
        "vocab": {"source": list(model_config.source_vocab), "target": list(model_config.target_vocab)},
        "weights": {"file": weights_file.name, "sha256": sha256(weights_file)},
        "test_split": [pair.as_dict() for pair in corpus.test],
    }
    write_run_log(out_path, log)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return log


# --- command line --------------------------------------------------------------------------------------------------


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@config_options(TranslatorTrainConfig, {"norm_position": NORM_POSITIONS})
@run_options(out_dir=TRANSLATOR_DIR, checkpoint_dir=CHECKPOINT_DIR, checkpoint_every=1000, name_default=DEFAULT_NAME,
             name_help="the run's files: OUT_DIR/NAME.json and NAME.npz")
def main(name, out_dir, device, threads, checkpoint, checkpoint_every, no_checkpoint, stop_after, force, quiet,
         **options):
    """Train the tiny Chinese → English translator; write OUT_DIR/NAME.json and NAME.npz (see the module docstring)."""
    try:
        cfg = TranslatorTrainConfig(**options)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    if threads < 1 or checkpoint_every < 1:
        raise click.UsageError("--threads and --checkpoint-every must be at least 1")
    checkpoint = None if no_checkpoint else (checkpoint or CHECKPOINT_DIR / f"{name}.pt")
    out = Path(out_dir) / f"{name}.json"
    log = train(cfg, out, device=device, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                stop_after=stop_after, progress=not quiet, threads=threads, force=force)  # fmt: skip
    if log is None:
        click.echo(f"Stopped after step {stop_after}; checkpoint {checkpoint}. Run the same command without "
                   "--stop-after to finish.")  # fmt: skip
        return
    m = log["metrics"]
    click.echo(f"Wrote {out} and {weights_path(out).name}: {m['n_parameters']} parameters, "
               f"{log['provenance']['wall_seconds']} s on {log['provenance']['device']}; test exact match "
               f"{m['test_exact_match']}, token accuracy {m['test_token_accuracy']}, cross-attention alignment "
               f"{m['test_alignment_accuracy']}.")  # fmt: skip


if __name__ == "__main__":
    main()
