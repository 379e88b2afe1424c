"""Quantization in numpy, bit-identical to torch: integer affine quantization (per tensor, per channel, per group of
weights) and rounding to low-precision floats (FP8 E4M3FN / E5M2, FP4 E2M1), plus the bytes a quantized model takes.

Arithmetic is float32, as in torch's kernels: float64 input is rounded to float32 first (torch's float8 casts do
the same), so results match torch bit for bit, ties included (``tests/math/test_quant.py``).

Integer codes: symmetric quantization uses signed codes [−2^(b−1), 2^(b−1) − 1] with zero point 0 (torch
``qint8``: −128..127); affine quantization uses unsigned codes [0, 2^b − 1] with an integer zero point (torch
``quint8``: 0..255). x ≈ scale · (q − zero_point).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Literal, NamedTuple

import numpy as np

_FLOAT32_EPS = np.finfo(np.float32).eps  # the observers' smallest scale (``torch.finfo(torch.float32).eps``)


class AffineParams(NamedTuple):
    """Quantization parameters; ``scale`` (float32) and ``zero_point`` (int64) broadcast against x."""

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")
    return int(value)


def _code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    bits = _check_int("bits", bits, 2, 16)
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if symmetric else (0, (1 << bits) - 1)


def _finite_float32(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf; integer quantization needs finite values (clip them first)")
    return x


def _check_broadcast(x_shape: tuple, hint: str = "", **arrays: np.ndarray) -> None:
    """Raise unless the arrays broadcast to exactly x's shape (they may not enlarge it)."""
    try:
        fits = np.broadcast_shapes(x_shape, *(a.shape for a in arrays.values())) == x_shape
    except ValueError:
        fits = False
    if not fits:
        names = " and ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"{names} must broadcast to x's shape {x_shape}{hint}")


def _min_max_params(x: np.ndarray, bits: int, symmetric: bool, reduce_axes) -> AffineParams:
    """``UniformQuantizationObserverBase._calculate_qparams`` on the min and max over ``reduce_axes`` (kept)."""
    qmin, qmax = _code_range(bits, symmetric)
    zero = np.float32(0)
    min_neg = np.minimum(x.min(axis=reduce_axes, keepdims=True), zero)
    max_pos = np.maximum(x.max(axis=reduce_axes, keepdims=True), zero)
    if symmetric:
        scale = np.maximum(np.maximum(-min_neg, max_pos) / np.float32((qmax - qmin) / 2), _FLOAT32_EPS)
        zero_point = np.zeros(scale.shape, dtype=np.int64)
    else:
        scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), _FLOAT32_EPS)
        zero_point = np.clip(qmin - np.rint(min_neg / scale).astype(np.int64), qmin, qmax)
    return AffineParams(scale.astype(np.float32), zero_point, qmin, qmax)


def affine_params(x, bits: int, symmetric: bool, axis: int | None = None) -> AffineParams:
    """Scale and zero point from the min and max of x (per tensor, or per channel along ``axis``).

    Follows torch's observers: the range is widened to include 0 (min⁻ = min(min x, 0), max⁺ = max(max x, 0)).

    - symmetric: codes [−2^(b−1), 2^(b−1) − 1], zero point 0, scale = max(−min⁻, max⁺) / ((qmax − qmin) / 2),
      e.g. amax / 127.5 for int8 (so +amax rounds to 128 and clamps to 127, −amax maps to −128);
    - affine: codes [0, 2^b − 1], scale = (max⁺ − min⁻) / (qmax − qmin),
      zero point = clamp(qmin − round(min⁻ / scale), qmin, qmax).

    The scale is at least float32 eps, so an all-zero tensor gets scale eps (and, affine, zero point qmin).

    Parameters
    ----------
    x
        Values to quantize (computed in float32); must be finite.
    bits
        Code width b, 2 to 16.
    symmetric
        Signed symmetric codes (True) or unsigned affine codes (False).
    axis
        None for one scale per tensor; otherwise the channel axis, with one scale per index along it.

    Returns
    -------
    AffineParams
        ``(scale, zero_point, qmin, qmax)``. Per tensor, ``scale`` and ``zero_point`` are 0-d; per channel they keep
        x's dimensions with size 1 except along ``axis`` (axis 0 of a ``(C, K)`` tensor → ``(C, 1)``).

    References
    ----------
    ``torch.ao.quantization.MinMaxObserver`` (``qint8`` + ``per_tensor_symmetric``, ``quint8`` +
    ``per_tensor_affine``) and ``PerChannelMinMaxObserver``, ``calculate_qparams``; for b < 8 the same observers with
    ``quant_min``/``quant_max`` set to the ranges above.
    """
    x = _finite_float32(x)
    if axis is None:
        params = _min_max_params(x, bits, symmetric, reduce_axes=None)
        return params._replace(scale=params.scale.reshape(()), zero_point=params.zero_point.reshape(()))
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x with {x.ndim} dimensions (shape {x.shape})")
    reduce_axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    return _min_max_params(x, bits, symmetric, reduce_axes)


def _fma_float32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a·b + c rounded once to float32, as a fused multiply-add does (a, b float32; c small integers).

    a·b is exact in float64; the sum is rounded to odd in float64 (an inexact sum keeps an odd last bit), which
    makes the final rounding to float32 correct (Boldo & Melquiond 2008, rounding to odd).
    """
    product = np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)
    total = np.asarray(product + c)
    b_virtual = total - product  # TwoSum: total + residual == product + c exactly
    residual = (product - (total - b_virtual)) + (c - b_virtual)
    even_last_bit = (total.view(np.int64) & 1) == 0
    toward_exact = np.nextafter(total, np.where(residual > 0, np.inf, -np.inf))
    return np.where((residual != 0) & even_last_bit, toward_exact, total).astype(np.float32)


def quantize_affine(
    x,
    scale,
    zero_point,
    qmin: int,
    qmax: int,
    *,
    zero_point_add: Literal["after_rounding", "before_rounding", "fused"] = "after_rounding",
) -> np.ndarray:
    """Integer codes q = clamp(round(x · (1/scale)) + zero_point, qmin, qmax), round half to even, in float32.

    x is multiplied by the float32 reciprocal 1/scale (not divided by scale), as torch's kernels do; this decides
    which way values near a tie go. Torch adds the zero point at different moments, which matters only at ties
    with a nonzero zero point:

    - ``"after_rounding"``: round(x·(1/s)) + z — ``torch.fake_quantize_per_tensor_affine`` and
      ``torch.fake_quantize_per_channel_affine`` (int zero point);
    - ``"before_rounding"``: round(fl(x·(1/s)) + z) — ``torch.quantize_per_channel(...).int_repr()``;
    - ``"fused"``: round(x·(1/s) + z with one rounding) — ``torch.quantize_per_tensor(...).int_repr()`` on x86
      CPU builds, whose kernels evaluate it as a fused multiply-add (measured on torch 2.13).

    With zero point 0 (symmetric quantization) all three agree.

    Parameters
    ----------
    x
        Finite values (computed in float32).
    scale
        Positive scales, broadcastable to x's shape (see :func:`affine_params`); rounded to float32 as torch's
        kernels do.
    zero_point
        Integer zero points in [qmin, qmax], broadcastable to x's shape.
    qmin, qmax
        Code range, qmin < qmax.
    zero_point_add
        Where the zero point is added (above).

    Returns
    -------
    np.ndarray
        int64 codes, shaped like x.
    """
    x = _finite_float32(x)
    scale = np.asarray(scale, dtype=np.float32)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("scale must be positive and finite")
    zero_point = np.asarray(zero_point)
    if not np.issubdtype(zero_point.dtype, np.integer):
        raise ValueError(f"zero_point must hold integers, got dtype {zero_point.dtype}")
    if not qmin < qmax:
        raise ValueError(f"need qmin < qmax, got qmin={qmin}, qmax={qmax}")
    if np.any(zero_point < qmin) or np.any(zero_point > qmax):
        found = f"{zero_point.min()}..{zero_point.max()}"
        raise ValueError(f"zero_point must lie in [qmin, qmax] = [{qmin}, {qmax}], got {found}")
    hint = " (per channel along axis k: size C on axis k, 1 elsewhere)"
    _check_broadcast(x.shape, hint, scale=scale, zero_point=zero_point)
    inverse_scale = np.float32(1) / scale
    with np.errstate(over="ignore"):  # |x / scale| beyond float32 is clamped below anyway
        if zero_point_add == "after_rounding":
            shifted = np.rint(x * inverse_scale).astype(np.float64) + zero_point
        elif zero_point_add == "before_rounding":
            shifted = np.rint(x * inverse_scale + zero_point.astype(np.float32))
        elif zero_point_add == "fused":
            shifted = np.rint(_fma_float32(x, inverse_scale, zero_point.astype(np.float64)))
        else:
            raise ValueError(
                f"zero_point_add must be 'after_rounding', 'before_rounding' or 'fused', got {zero_point_add!r}"
            )
    return np.clip(shifted, qmin, qmax).astype(np.int64)


def dequantize_affine(q, scale, zero_point) -> np.ndarray:
    """Values (q − zero_point) · scale in float32, as torch's fake-quantize output and ``Tensor.dequantize()``.

    The scale is rounded to float32 first, as the observers produce it and as fake quantization and per-tensor
    quantized tensors use it (a per-channel quantized tensor keeps float64 scales, so for a scale that is not a
    float32 value its ``dequantize()`` can differ in the last bit).
    """
    q = np.asarray(q)
    zero_point = np.asarray(zero_point)
    for name, codes in (("q", q), ("zero_point", zero_point)):
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {codes.dtype}")
    scale = np.asarray(scale, dtype=np.float32)
    # The integer times the float32 scale is exact in float64, so one rounding to float32 = float32's product.
    return ((q - zero_point).astype(np.float64) * scale).astype(np.float32)


@dataclass(frozen=True)
class GroupwiseQuantized:
    """Groupwise symmetric quantization of a ``(..., in)`` tensor."""

    codes: np.ndarray  # int64 (..., in), in [−2^(b−1), 2^(b−1) − 1]
    scales: np.ndarray  # float32 (..., in / group_size), one per group
    dequantized: np.ndarray  # float32 (..., in): codes × their group's scale
    error: np.ndarray  # float64 (..., in): dequantized − x


def quantize_groupwise(x, bits: int, group_size: int) -> GroupwiseQuantized:
    """Symmetric quantization with one scale per block of ``group_size`` consecutive weights along the last axis.

    Each group gets scale = amax / ((2^b − 1) / 2) and signed codes [−2^(b−1), 2^(b−1) − 1], as
    :func:`affine_params` with ``symmetric=True`` per group. This is the scale of GPTQ's ``Quantizer.find_params``
    with ``sym=True`` (2·amax / (2^b − 1); GPTQ stores q + 2^(b−1) as unsigned codes with zero 2^(b−1)) for every
    group that holds a negative weight (GPTQ halves the scale of a group without one), without GPTQ's
    error-compensating updates. The group's extreme weights land on a tie (±(2^b − 1)/2 steps), so float32
    rounding decides their codes: here as ``torch.fake_quantize_per_channel_affine``, which multiplies by 1/scale,
    where GPTQ divides by the scale. GPTQ and AWQ checkpoints commonly use group size 128, GGUF Q4_0 blocks of 32
    (with its own scale rule).

    Parameters
    ----------
    x
        Weights ``(..., in)``, e.g. a linear layer's ``(out, in)``; finite.
    bits
        Code width b, 2 to 16.
    group_size
        Weights per group; must divide the last dimension.

    Returns
    -------
    GroupwiseQuantized
        ``codes``, ``scales``, ``dequantized`` and ``error``.

    References
    ----------
    Frantar et al. 2022, *GPTQ* (grouped quantization); IST-DASLab/gptq ``quant.py``; rounding as
    ``torch.fake_quantize_per_channel_affine`` on the ``(groups, group_size)`` view.
    """
    x = _finite_float32(x)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension (the input dimension that is split into groups)")
    group_size = _check_int("group_size", group_size, 1)
    n_in = x.shape[-1]
    if n_in % group_size:
        raise ValueError(
            f"the last dimension ({n_in}) must be a multiple of group_size ({group_size}); "
            "pad the weights or choose a group size that divides it"
        )
    grouped = x.reshape(*x.shape[:-1], n_in // group_size, group_size)
    scale, zero_point, qmin, qmax = _min_max_params(grouped, bits, symmetric=True, reduce_axes=-1)
    codes = quantize_affine(grouped, scale, zero_point, qmin, qmax)
    dequantized = dequantize_affine(codes, scale, zero_point).reshape(x.shape)
    return GroupwiseQuantized(
        codes=codes.reshape(x.shape),
        scales=scale[..., 0],
        dequantized=dequantized,
        error=dequantized.astype(np.float64) - x,
    )


# --- Low-precision floats -------------------------------------------------------------------------------------------


class _FloatFormat(NamedTuple):
    mantissa_bits: int
    min_exponent: int  # exponent of the smallest normal number; subnormals share its spacing
    max_finite: float
    overflow: float  # what a rounded magnitude above max_finite becomes


# OCP 8-bit Floating Point Specification (OFP8) rev. 1.0; OCP Microscaling Formats (MX) v1.0, §5.3.3.
# Overflow as torch 2.13 casts (c10 ``fp8e4m3fn_from_fp32_value`` / ``fp8e5m2_from_fp32_value``): E4M3FN has no
# inf and saturates (inf → ±448 too), E5M2 rounds to ±inf. E2M1 saturates (MX spec conversion, torch's reference).
_FP8_FORMATS = {
    "e4m3fn": _FloatFormat(mantissa_bits=3, min_exponent=-6, max_finite=448.0, overflow=448.0),
    "e5m2": _FloatFormat(mantissa_bits=2, min_exponent=-14, max_finite=57344.0, overflow=np.inf),
}
_FP4_E2M1 = _FloatFormat(mantissa_bits=1, min_exponent=0, max_finite=6.0, overflow=6.0)


def float_format_max(fmt: Literal["e4m3fn", "e5m2", "e2m1"]) -> float:
    """The largest finite value of an FP8 (``e4m3fn``, ``e5m2``) or FP4 (``e2m1``) format: 448, 57344, 6."""
    formats = {**_FP8_FORMATS, "e2m1": _FP4_E2M1}
    if fmt not in formats:
        raise ValueError(f"Unknown float format {fmt!r}; use one of {', '.join(formats)}.")
    return formats[fmt].max_finite


def _round_to_format(x: np.ndarray, fmt: _FloatFormat) -> np.ndarray:
    """Round float32 x to the nearest value of ``fmt``, ties to even; NaN stays NaN, the sign of zero is kept."""
    x = x.astype(np.float64)
    magnitude = np.abs(x)
    _, exponent = np.frexp(magnitude)  # magnitude = f · 2^exponent with 0.5 <= f < 1
    spacing = np.ldexp(1.0, np.maximum(exponent - 1, fmt.min_exponent) - fmt.mantissa_bits)
    rounded = np.rint(magnitude / spacing) * spacing  # division by a power of two: exact
    rounded = np.where(rounded > fmt.max_finite, fmt.overflow, rounded)
    return np.copysign(rounded, x).astype(np.float32)


def round_to_fp8(x, fmt: Literal["e4m3fn", "e5m2"]) -> np.ndarray:
    """x rounded to FP8 and back to float32, identical to ``x.to(torch.float8_e4m3fn / float8_e5m2).float()``.

    Round to nearest, ties to even, subnormals kept. Beyond the largest finite value, torch 2.13 saturates E4M3FN
    (448; everything above, including inf, becomes ±448) and overflows E5M2 to ±inf (from 61440, the midpoint
    between 57344 and 2^16, on). NaN stays NaN. float64 input is rounded to float32 first, as torch's cast does.

    Parameters
    ----------
    x
        Values (array-like).
    fmt
        ``"e4m3fn"`` (4 exponent bits, 3 mantissa bits, max 448, no inf) or ``"e5m2"`` (5 and 2, max 57344, inf).

    Returns
    -------
    np.ndarray
        float32, shaped like x.

    References
    ----------
    Micikevicius et al. 2022, *FP8 Formats for Deep Learning*; OCP 8-bit Floating Point Specification rev. 1.0; c10
    ``Float8_e4m3fn.h`` / ``Float8_e5m2.h`` conversions.
    """
    if fmt not in _FP8_FORMATS:
        raise ValueError(f"fmt must be one of {sorted(_FP8_FORMATS)}, got {fmt!r}")
    return _round_to_format(np.asarray(x, dtype=np.float32), _FP8_FORMATS[fmt])


def fp4_e2m1_values() -> np.ndarray:
    """The 16 FP4 E2M1 values indexed by their 4-bit code ``s ee m``: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.

    Exponent bias 1; e = 0 is subnormal (m · 0.5), otherwise 2^(e−1) · (1 + m/2). Codes 8..15 are the negatives
    of 0..7 (code 8 is −0). There is no inf or NaN.

    References
    ----------
    OCP Microscaling Formats (MX) Specification v1.0, §5.3.3 (FP4 E2M1); the element type of MXFP4 and NVFP4;
    ``torch.float4_e2m1fn_x2`` packs two such codes per byte.
    """
    codes = np.arange(16)
    sign = np.where(codes >> 3, -1.0, 1.0)
    exponent, mantissa = (codes >> 1) & 0b11, codes & 1
    magnitude = np.where(exponent == 0, mantissa * 0.5, np.ldexp(1.0 + mantissa / 2, exponent - 1))
    return (sign * magnitude).astype(np.float32)


def round_to_fp4_e2m1(x, block_scale=1.0) -> np.ndarray:
    """x / block_scale rounded to FP4 E2M1 (nearest, ties to even, saturating at ±6), times block_scale, float32.

    Parameters
    ----------
    x
        Finite or infinite values (±inf saturate to ±6 · scale); NaN is rejected, E2M1 has no NaN.
    block_scale
        Positive scale broadcastable to x's shape: one per block (MXFP4: a power of two per 32 values; NVFP4: an
        FP8 E4M3 scale per 16). The default 1 rounds x itself.

    Returns
    -------
    np.ndarray
        float32, shaped like x: (rounded x / scale) · scale.

    References
    ----------
    OCP MX Specification v1.0, §5.3.3 (FP4 E2M1, no inf/NaN, so conversion saturates); torch's
    reference encoder ``torch.testing._internal.common_quantized._f32_to_floatx_unpacked(x, 2, 1)`` (torch 2.13
    has the ``float4_e2m1fn_x2`` storage dtype but no cast to it).
    """
    x = np.asarray(x, dtype=np.float32)
    if np.any(np.isnan(x)):
        raise ValueError("x contains NaN; FP4 E2M1 has no NaN encoding")
    scale = np.asarray(block_scale, dtype=np.float32)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("block_scale must be positive and finite")
    _check_broadcast(x.shape, block_scale=scale)
    with np.errstate(over="ignore"):  # a huge x / scale overflows to inf and then saturates
        return _round_to_format(x / scale, _FP4_E2M1) * scale


def quantized_model_bytes(n_params: int, bits: int, group_size: int | None = None, scale_bytes: int = 2) -> float:
    """Bytes of ``n_params`` weights stored as ``bits``-bit codes, plus one scale per group of ``group_size``.

    bytes = n_params · bits / 8 + ceil(n_params / group_size) · scale_bytes.

    Parameters
    ----------
    n_params
        Number of quantized weights.
    bits
        Bits per weight code (e.g. 16 for bf16, 8, 4).
    group_size
        Weights sharing one scale; None stores no scales (per-tensor or per-channel scales are negligible).
    scale_bytes
        Bytes stored per group: 2 for an fp16 scale (GGUF Q4_0, GPTQ), 1 for MX's E8M0 or NVFP4's E4M3 scale; add
        the zero point's bytes for asymmetric formats.

    Returns
    -------
    float
        Bytes (fractional when n_params · bits is not a multiple of 8).

    References
    ----------
    ggml ``block_q4_0``: 32 weights in 18 bytes (fp16 scale + 16 bytes of nibbles); OCP MX v1.0 §5: MXFP4 is 32
    FP4 elements sharing an 8-bit E8M0 scale (4.25 bits per weight).
    """
    code_bytes = _check_int("n_params", n_params, 0) * _check_int("bits", bits, 1) / 8
    scale_bytes = _check_int("scale_bytes", scale_bytes, 0)
    if group_size is None:
        return code_bytes
    return code_bytes + ceil(n_params / _check_int("group_size", group_size, 1)) * scale_bytes
