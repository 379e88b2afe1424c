"""LoRA in numpy, in PEFT's convention: the forward pass, merging, parameter counts, how much of a weight update a
rank-r matrix can hold (SVD), and the training memory of full fine-tuning vs LoRA.

Tested against a torch transcription of PEFT's ``LoraLayer`` / ``Linear.forward`` and ``torch.linalg.svd``
(``tests/math/test_lora.py``). Shapes as in PEFT and ``torch.nn.Linear``: ``weight`` W is ``(out, in)``,
``lora_a`` A is ``(r, in)``, ``lora_b`` B is ``(out, r)``; B starts at zero, so an untrained adapter changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


def _check_lora(weight, lora_a, lora_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weight, lora_a, lora_b = (np.asarray(m, dtype=np.float64) for m in (weight, lora_a, lora_b))
    expected = {"weight": "(out, in)", "lora_a": "(r, in)", "lora_b": "(out, r)"}
    for (name, shape), m in zip(expected.items(), (weight, lora_a, lora_b)):
        if m.ndim != 2:
            raise ValueError(f"{name} must be 2-D {shape}, got shape {m.shape}")
    out_features, in_features = weight.shape
    rank = lora_a.shape[0]
    if rank < 1:
        raise ValueError(f"lora_a must have at least one row (rank r >= 1), got shape {lora_a.shape}")
    if lora_a.shape[1] != in_features:
        raise ValueError(
            f"lora_a must be (r, in) = (r, {in_features}) to match weight {weight.shape}, got {lora_a.shape}"
        )
    if lora_b.shape != (out_features, rank):
        raise ValueError(
            f"lora_b must be (out, r) = ({out_features}, {rank}) to match weight {weight.shape} and "
            f"lora_a {lora_a.shape}, got {lora_b.shape}"
        )
    return weight, lora_a, lora_b


def lora_forward(x, weight, lora_a, lora_b, alpha: float, bias=None) -> np.ndarray:
    """LoRA linear layer: y = x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ, without materialising B A.

    Parameters
    ----------
    x
        Inputs ``(..., in)``.
    weight
        Frozen base weight W ``(out, in)``.
    lora_a, lora_b
        Adapter matrices A ``(r, in)`` and B ``(out, r)``.
    alpha
        PEFT's ``lora_alpha``; the update is scaled by alpha / r.
    bias
        Optional base-layer bias ``(out,)``.

    Returns
    -------
    np.ndarray
        ``(..., out)`` float64.

    References
    ----------
    Hu et al. 2021, *LoRA*, eq. (3) and §4.1 (scaling α/r); PEFT ``peft.tuners.lora.layer.Linear.forward``:
    ``result = self.base_layer(x) + lora_B(lora_A(dropout(x))) * scaling`` with ``scaling = lora_alpha / r``
    (dropout is the identity at inference and is left out).
    """
    weight, lora_a, lora_b = _check_lora(weight, lora_a, lora_b)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must be (..., in) with in = {weight.shape[1]} (weight {weight.shape}), got {x.shape}")
    result = x @ weight.T
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
        result = result + bias
    return result + (x @ lora_a.T) @ lora_b.T * (alpha / lora_a.shape[0])


def merge_lora(weight, lora_a, lora_b, alpha: float) -> np.ndarray:
    """Merged weight W + (alpha / r) · B A: one plain linear layer that computes what :func:`lora_forward` does.

    References
    ----------
    Hu et al. 2021, *LoRA*, §4.1 ("no additional inference latency"); PEFT ``Linear.get_delta_weight``
    (``lora_B.weight @ lora_A.weight * scaling``) and ``Linear.merge``.
    """
    weight, lora_a, lora_b = _check_lora(weight, lora_a, lora_b)
    return weight + (alpha / lora_a.shape[0]) * (lora_b @ lora_a)


def _check_count(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def lora_parameter_count(in_features: int, out_features: int, rank: int) -> int:
    """Trainable parameters of one LoRA adapter: r·(in + out) (A has r·in, B has out·r), vs in·out for W."""
    fan_in = _check_count("in_features", in_features, 1)
    fan_out = _check_count("out_features", out_features, 1)
    return _check_count("rank", rank, 1) * (fan_in + fan_out)


def adapter_parameter_count(adapted_shapes, rank: int, n_layers: int = 1) -> int:
    """Trainable parameters of LoRA on a model: Σ r·(in + out) over the adapted matrices of a layer, times layers.

    Parameters
    ----------
    adapted_shapes
        ``(in_features, out_features)`` of each adapted matrix in one layer, e.g. ``[(d, d), (d, d)]`` for W_q, W_v.
    rank
        LoRA rank r, the same for every matrix (PEFT's ``r``).
    n_layers
        Layers that carry these adapters.

    References
    ----------
    Hu et al. 2021, *LoRA*, §7.1: on GPT-3 175B (96 layers, d = 12288) a budget of 18M trainable parameters is
    r = 8 on one attention matrix type or r = 4 on two.
    """
    shapes = [tuple(shape) for shape in adapted_shapes]
    if not shapes or any(len(shape) != 2 for shape in shapes):
        raise ValueError(f"adapted_shapes must be a non-empty list of (in_features, out_features) pairs, got {shapes}")
    per_layer = sum(lora_parameter_count(fan_in, fan_out, rank) for fan_in, fan_out in shapes)
    return per_layer * _check_count("n_layers", n_layers, 1)


# --- How much of a weight update fits in rank r -------------------------------------------------------------------


def _check_matrix(delta_w) -> np.ndarray:
    delta_w = np.asarray(delta_w, dtype=np.float64)
    if delta_w.ndim != 2 or delta_w.size == 0:
        raise ValueError(f"delta_w must be a non-empty 2-D matrix (out, in), got shape {delta_w.shape}")
    if not np.all(np.isfinite(delta_w)):
        raise ValueError("delta_w contains NaN or inf")
    return delta_w


def _check_ranks(rank) -> np.ndarray:
    ranks = np.asarray(rank)
    if ranks.dtype == bool or not np.issubdtype(ranks.dtype, np.integer) or np.any(ranks < 0):
        raise ValueError(f"rank must be an integer >= 0 (or an array of them), got {rank!r}")
    return ranks


def low_rank_energy(delta_w, rank):
    """Share of ‖ΔW‖²_F that lies in the top-r singular directions: Σ_{i<r} σ_i² / Σ_i σ_i².

    This is 1 − (relative error of the best rank-r approximation)², so it tells how much of a weight update a
    rank-r LoRA adapter can hold at best. It is 0 at r = 0, nondecreasing in r and 1 from r = rank(ΔW) on.

    Parameters
    ----------
    delta_w
        Weight update ΔW ``(out, in)``.
    rank
        r, an integer >= 0 or an array of them; ranks beyond min(out, in) give 1.

    Returns
    -------
    float or np.ndarray
        A float for an integer rank, an array shaped like ``rank`` otherwise.
        For ΔW = 0 the energy is defined as 1 for every r (there is nothing to capture, and the best rank-r
        approximation, 0, is exact), matching ``best_rank_r(...).relative_error`` = 0.

    References
    ----------
    Eckart & Young 1936; Hu et al. 2021, *LoRA*, §7.2–7.3 (the subspace of ΔW found at small r).
    """
    singular_values = np.linalg.svd(_check_matrix(delta_w), compute_uv=False)
    ranks = _check_ranks(rank)
    cumulative = np.concatenate([[0.0], np.cumsum(singular_values**2)])
    total = cumulative[-1]
    energy = np.ones(ranks.shape) if total == 0.0 else cumulative[np.minimum(ranks, singular_values.size)] / total
    return float(energy) if energy.ndim == 0 else energy


class LowRankApproximation(NamedTuple):
    """Best rank-r approximation of a matrix and its Frobenius-norm error."""

    matrix: np.ndarray
    error: float  # ‖ΔW − ΔW_r‖_F = sqrt(Σ_{i≥r} σ_i²)
    relative_error: float  # error / ‖ΔW‖_F (0 for ΔW = 0)


def best_rank_r(delta_w, rank: int) -> LowRankApproximation:
    """Truncated SVD ΔW_r = Σ_{i<r} σ_i u_i v_iᵀ, the closest matrix of rank ≤ r in Frobenius norm.

    Parameters
    ----------
    delta_w
        Matrix ``(out, in)``.
    rank
        r >= 0; r >= min(out, in) returns ΔW itself (up to rounding).

    Returns
    -------
    LowRankApproximation
        ``(matrix, error, relative_error)``.

    References
    ----------
    Eckart & Young 1936 (Eckart–Young–Mirsky theorem); ``torch.linalg.svd`` / ``numpy.linalg.svd``.
    """
    r = _check_count("rank", rank)
    u, s, vt = np.linalg.svd(_check_matrix(delta_w), full_matrices=False)
    matrix = (u[:, :r] * s[:r]) @ vt[:r]
    error = float(np.sqrt(np.sum(s[r:] ** 2)))
    norm = float(np.sqrt(np.sum(s**2)))
    return LowRankApproximation(matrix, error, error / norm if norm > 0 else 0.0)


# --- Training memory: full fine-tuning vs LoRA ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of the model states during training with Adam (activations not included)."""

    weights: int  # every weight in its training precision, frozen or not
    gradients: int  # trainable parameters only
    optimizer_states: int  # trainable only: master copy + Adam's first and second moments

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_states


def finetune_memory_bytes(
    n_params: int,
    trainable_params: int | None = None,
    *,
    weight_bytes: int = 2,
    grad_bytes: int = 2,
    master_weight_bytes: int = 4,
    adam_moment_bytes: int = 4,
) -> TrainingMemory:
    """Memory of the model states when fine-tuning with (mixed-precision) Adam: full fine-tuning or LoRA.

    Every weight is stored once in ``weight_bytes``; each *trainable* parameter also has a gradient
    (``grad_bytes``), an fp32 master copy (``master_weight_bytes``) and Adam's two moments (2 ×
    ``adam_moment_bytes``). The defaults (bf16/fp16 weights and gradients, fp32 master copy and moments) are the
    ZeRO paper's accounting, 2 + 2 + 12 = 16 bytes per trainable parameter. Pure bf16 training without a master
    copy is ``master_weight_bytes=0``.

    Parameters
    ----------
    n_params
        Parameters of the model (for LoRA: the frozen base model).
    trainable_params
        None for full fine-tuning (all ``n_params`` train). For LoRA, the adapters' parameter count
        (:func:`adapter_parameter_count`); they are added to the weights, and only they get gradients and
        optimizer states.
    weight_bytes, grad_bytes, master_weight_bytes, adam_moment_bytes
        Bytes per value of each kind.

    Returns
    -------
    TrainingMemory
        ``weights``, ``gradients``, ``optimizer_states`` and ``total`` in bytes. Activations, temporary buffers
        and framework overhead are out of scope: they depend on batch size, sequence length and checkpointing.

    References
    ----------
    Rajbhandari et al. 2020, *ZeRO: Memory Optimizations Toward Training Trillion Parameter Models*, §3.1
    (mixed-precision Adam: 2Ψ + 2Ψ + KΨ bytes with K = 12, i.e. 16Ψ; 7.5B parameters → 120 GB, Figure 1);
    Hu et al. 2021, *LoRA*, §4.2 (frozen weights need no optimizer states).
    """
    n_params = _check_count("n_params", n_params)
    trainable = n_params if trainable_params is None else _check_count("trainable_params", trainable_params)
    sizes = {
        "weight_bytes": weight_bytes,
        "grad_bytes": grad_bytes,
        "master_weight_bytes": master_weight_bytes,
        "adam_moment_bytes": adam_moment_bytes,
    }
    for name, size in sizes.items():
        _check_count(name, size)
    stored = n_params if trainable_params is None else n_params + trainable
    return TrainingMemory(
        weights=stored * weight_bytes,
        gradients=trainable * grad_bytes,
        optimizer_states=trainable * (master_weight_bytes + 2 * adam_moment_bytes),
    )
