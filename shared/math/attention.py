"""Attention in numpy: softmax, scaled dot-product attention, the online softmax and FlashAttention's tiling.

Tested against ``torch.nn.functional.scaled_dot_product_attention`` and ``torch.softmax`` in float64
(``tests/math/test_attention.py``).
"""

from __future__ import annotations

import numpy as np


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: exp(x − max) / Σ exp(x − max) along ``axis`` (as ``torch.softmax``).

    Rows that are all −inf give NaN, like torch.
    """
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _attention_scale(q: np.ndarray, scale: float | None) -> float:
    return 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)


def _allowed(L: int, S: int, causal: bool, mask) -> np.ndarray | None:
    """Boolean (…, L, S) array of allowed query→key pairs, or None when everything is allowed."""
    allowed = None
    if causal:
        allowed = np.tril(np.ones((L, S), dtype=bool))  # top-left aligned, like torch's is_causal
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError("mask must be boolean (True = may attend), like torch's boolean attn_mask")
        allowed = mask if allowed is None else (allowed & mask)
    return allowed


def scaled_dot_product_attention(q, k, v, *, causal: bool = False, mask=None, scale: float | None = None):
    """softmax(q kᵀ · scale + masking) v.

    Parameters
    ----------
    q, k, v
        Arrays ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``; leading dims broadcast.
    causal
        Query i sees keys j ≤ i (top-left aligned, as ``torch``'s ``is_causal=True``).
    mask
        Boolean, broadcastable to ``(..., L, S)``; True = may attend (torch's boolean ``attn_mask``).
    scale
        Default 1/√E.

    Returns
    -------
    (out, weights)
        ``out`` ``(..., L, Ev)``; ``weights`` ``(..., L, S)``, the softmax rows. A query that may attend to no key at
        all gets zero weights and a zero output, as torch's SDPA does (its math path uses ``_safe_softmax``).

    References
    ----------
    Vaswani et al. 2017, eq. (1); ``torch.nn.functional.scaled_dot_product_attention``.
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) * _attention_scale(q, scale)
    allowed = _allowed(q.shape[-2], k.shape[-2], causal, mask)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    with np.errstate(invalid="ignore"):  # a fully masked row is −inf − (−inf) = NaN here, zeroed just below
        weights = softmax(scores, axis=-1)
    if allowed is not None:
        weights = np.where(np.any(allowed, axis=-1, keepdims=True), weights, 0.0)
    return weights @ v, weights


def online_softmax_trace(x) -> tuple[np.ndarray, np.ndarray]:
    """Running max m_j and running normaliser d_j of the one-pass softmax.

    m_j = max(m_{j−1}, x_j);  d_j = d_{j−1}·e^{m_{j−1} − m_j} + e^{x_j − m_j}.
    For x = [1, 3, 2, 5, 4]: m = 5 and d = 1.5713174316646532 at the end; softmax(x) = e^{x − m_N} / d_N.

    References
    ----------
    Milakov & Gimelshein 2018, "Online normalizer calculation for softmax", Algorithm 3.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    m = np.empty_like(x)
    d = np.empty_like(x)
    m_prev, d_prev = -np.inf, 0.0
    for j, xj in enumerate(x):
        m_j = max(m_prev, xj)
        d_prev = d_prev * np.exp(m_prev - m_j) + np.exp(xj - m_j)
        m_prev = m_j
        m[j], d[j] = m_j, d_prev
    return m, d


def flash_attention(
    q, k, v, *, block_size: int, causal: bool = False, scale: float | None = None, return_trace: bool = False
):
    """Attention computed one key block at a time, never holding the full L×S score matrix.

    For each block of ``block_size`` keys: scores s, new running max m' = max(m, rowmax s),
    rescale factor α = e^{m − m'}, running sum ℓ' = α·ℓ + Σ e^{s − m'}, accumulator O' = α·O + e^{s − m'} V_blk.
    The result O / ℓ equals :func:`scaled_dot_product_attention` (to 1e-12 in float64).

    Parameters
    ----------
    q, k, v
        As in :func:`scaled_dot_product_attention`.
    block_size
        Keys per block (any positive size; the last block may be shorter).
    causal, scale
        As in :func:`scaled_dot_product_attention`.
    return_trace
        Also return one record per block: ``start``, ``stop``, ``scores`` (…, L, B), ``m`` and ``l`` after the block
        (…, L), ``alpha`` (…, L), the rescale applied to the earlier blocks.

    References
    ----------
    Dao et al. 2022, FlashAttention, Algorithm 1 (outer loop over key/value blocks).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    L, S = q.shape[-2], k.shape[-2]
    sc = _attention_scale(q, scale)
    allowed = _allowed(L, S, causal, None)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    m = np.full(batch + (L,), -np.inf)
    l = np.zeros(batch + (L,))
    acc = np.zeros(batch + (L, v.shape[-1]))
    trace = []
    for start in range(0, S, block_size):
        stop = min(start + block_size, S)
        s = q @ np.swapaxes(k[..., start:stop, :], -1, -2) * sc  # (..., L, B)
        if allowed is not None:
            s = np.where(allowed[:, start:stop], s, -np.inf)
        m_new = np.maximum(m, s.max(axis=-1))
        finite = np.isfinite(m_new)
        safe_m = np.where(finite, m_new, 0.0)
        p = np.where(np.isfinite(s), np.exp(s - safe_m[..., None]), 0.0)
        alpha = np.where(np.isfinite(m), np.exp(m - safe_m), 0.0)
        l = alpha * l + p.sum(axis=-1)
        acc = alpha[..., None] * acc + p @ v[..., start:stop, :]
        m = m_new
        if return_trace:
            trace.append({"start": start, "stop": stop, "scores": s, "m": m.copy(), "l": l.copy(), "alpha": alpha})
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / l[..., None]
    return (out, trace) if return_trace else out
