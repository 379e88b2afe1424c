"""Shares of energy across frequencies: how concentrated a power spectrum is (numpy only).

Used on the grokking runs' embedding Fourier spectra (``media/runs/grokking``): a model that has generalised keeps its
energy in a few frequencies (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability").
"""

from __future__ import annotations

import numpy as np


def top_share(power, k: int) -> float:
    """The share of the energy held by the ``k`` strongest frequencies (``power``: shares summing to 1)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return float(np.sort(np.asarray(power, dtype=float))[::-1][:k].sum())


def effective_frequencies(power) -> float:
    """How many frequencies the energy is spread over: the participation ratio 1 / Σ p_k² of the shares p_k, Hill's
    diversity of order 2 (Hill 1973, "Diversity and evenness: a unifying notation", Ecology 54): k for k equal shares,
    1 when one frequency holds everything."""
    p = np.asarray(power, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError("power must be a non-empty 1-D array of non-negative shares summing to 1")
    return float(1 / (p**2).sum())
