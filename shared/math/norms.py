"""LayerNorm and RMSNorm in numpy, matching ``torch.nn.functional.layer_norm`` / ``rms_norm`` over the last axis."""

from __future__ import annotations

import numpy as np


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> np.ndarray:
    """(x − mean) / √(var + eps) · weight + bias over the last axis (biased variance).

    Geometrically: subtracting the mean projects x onto the hyperplane ⟂ (1, …, 1); dividing by the standard
    deviation puts it on the sphere of radius √d·σ/√(σ² + eps) in that plane.

    References
    ----------
    Ba et al. 2016; ``torch.nn.functional.layer_norm(x, (d,), weight, bias, eps)``.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return y


def rms_norm(x, weight=None, eps: float | None = None) -> np.ndarray:
    """x / √(mean(x²) + eps) · weight over the last axis; no mean subtraction (lands on the sphere of radius √d).

    ``eps=None`` uses the machine epsilon of the dtype torch computes in (``at::opmath_type``): float64 → 2.2e-16,
    float32 and float16 → float32's 1.19e-7, like ``torch.nn.functional.rms_norm``.

    References
    ----------
    Zhang & Sennrich 2019; ``torch.nn.functional.rms_norm(x, (d,), weight, eps)``.
    """
    arr = np.asarray(x)
    if eps is None:
        # torch takes epsilon of its computation type, which is at least float32 (half inputs are computed in float32).
        floating = np.issubdtype(arr.dtype, np.floating)
        eps = float(np.finfo(np.result_type(arr.dtype, np.float32) if floating else np.float64).eps)
    x = arr.astype(np.float64)
    y = x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps)
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    return y
