"""shared/math/quant.py against torch, bit for bit: the observers' qparams, fake quantization, quantized tensors,
the float8 casts, torch's own reference FP4 encoder; GPTQ's scale rule; published block sizes."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from shared.math.quant import (
    affine_params,
    dequantize_affine,
    float_format_max,
    fp4_e2m1_values,
    quantize_affine,
    quantize_groupwise,
    quantized_model_bytes,
    round_to_fp4_e2m1,
    round_to_fp8,
)

RANDOM_CASES = 40
BITS = range(2, 9)
# torch.quantize_per_tensor / quantize_per_channel still work in torch 2.13 but warn that they are deprecated.
quantized_tensor_api = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


def as_torch(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def same_bits(ours: np.ndarray, expected: np.ndarray) -> None:
    """float32 arrays identical bit for bit (so -0.0 differs from 0.0), any NaN matching any NaN of the same sign."""
    assert ours.dtype == expected.dtype == np.float32 and ours.shape == expected.shape
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(ours), nan)
    np.testing.assert_array_equal(np.signbit(ours[nan]), np.signbit(expected[nan]))
    np.testing.assert_array_equal(ours[~nan].view(np.uint32), expected[~nan].view(np.uint32))


def code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """torch's qint8 / quint8 ranges narrowed to b bits (quant_min / quant_max of the observers)."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)


def random_tensor(rng: np.random.Generator, ndim: int | None = None) -> np.ndarray:
    shape = tuple(int(n) for n in rng.integers(1, 6, size=ndim or int(rng.integers(1, 4))))
    kind = rng.integers(4)
    x = rng.normal(loc=rng.normal(scale=2.0), scale=rng.uniform(0.01, 5.0), size=shape)
    if kind == 1:
        x = np.abs(x)  # all >= 0: the range is widened to include 0
    elif kind == 2:
        x = -np.abs(x)
    return x.astype(np.float32)


# --- qparams: torch's MinMaxObserver / PerChannelMinMaxObserver -------------------------------------------------


def torch_observer_params(x: np.ndarray, bits: int, symmetric: bool, axis: int | None):
    qmin, qmax = code_range(bits, symmetric)
    dtype = torch.qint8 if symmetric else torch.quint8
    if axis is None:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        observer = MinMaxObserver(dtype=dtype, qscheme=scheme, quant_min=qmin, quant_max=qmax)
    else:
        scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        observer = PerChannelMinMaxObserver(ch_axis=axis, dtype=dtype, qscheme=scheme, quant_min=qmin, quant_max=qmax)
    observer(as_torch(x))
    scale, zero_point = observer.calculate_qparams()
    return scale.numpy(), zero_point.numpy()


def test_8bit_ranges_are_torchs_defaults():
    assert (MinMaxObserver(dtype=torch.qint8).quant_min, MinMaxObserver(dtype=torch.qint8).quant_max) == (-128, 127)
    assert affine_params(np.ones(3), 8, symmetric=True)[2:] == (-128, 127)
    assert affine_params(np.ones(3), 8, symmetric=False)[2:] == (0, 255)
    x = np.random.default_rng(0).normal(size=50).astype(np.float32)
    observer = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)  # default range
    observer(as_torch(x))
    assert affine_params(x, 8, symmetric=True).scale == observer.calculate_qparams()[0].item()


@pytest.mark.parametrize("symmetric", [True, False])
def test_per_tensor_params_match_minmax_observer(symmetric):
    rng = np.random.default_rng(10 + symmetric)
    for _ in range(RANDOM_CASES):
        x, bits = random_tensor(rng), int(rng.choice(BITS))
        scale, zero_point = torch_observer_params(x, bits, symmetric, None)
        ours = affine_params(x, bits, symmetric)
        assert ours.scale.shape == ours.zero_point.shape == ()
        assert ours.scale.dtype == np.float32
        np.testing.assert_array_equal(ours.scale.reshape(1), scale)
        np.testing.assert_array_equal(ours.zero_point.reshape(1), zero_point)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_per_channel_params_match_per_channel_observer(symmetric, axis):
    rng = np.random.default_rng(20 + axis + 5 * symmetric)
    for _ in range(RANDOM_CASES // 2):
        x, bits = random_tensor(rng, ndim=3), int(rng.choice(BITS))
        scale, zero_point = torch_observer_params(x, bits, symmetric, axis)
        ours = affine_params(x, bits, symmetric, axis=axis)
        expected_shape = [1, 1, 1]
        expected_shape[axis] = x.shape[axis]
        assert ours.scale.shape == ours.zero_point.shape == tuple(expected_shape)
        np.testing.assert_array_equal(ours.scale.reshape(-1), scale)
        np.testing.assert_array_equal(ours.zero_point.reshape(-1), zero_point)


def test_per_channel_axis_0_of_a_matrix_broadcasts_as_c_by_1():
    params = affine_params(np.arange(12.0).reshape(3, 4), 8, symmetric=True, axis=0)
    assert params.scale.shape == (3, 1)


@pytest.mark.parametrize("x", [np.zeros((2, 3)), np.full(5, 7.0), np.full(4, -0.5), np.array([3.0])])
@pytest.mark.parametrize("symmetric", [True, False])
def test_degenerate_ranges_match_observer(x, symmetric):
    scale, zero_point = torch_observer_params(x.astype(np.float32), 8, symmetric, None)
    ours = affine_params(x, 8, symmetric)
    np.testing.assert_array_equal(ours.scale.reshape(1), scale)
    np.testing.assert_array_equal(ours.zero_point.reshape(1), zero_point)


# --- quantize / dequantize against torch's fake quantization and quantized tensors ---------------------------------


def tie_heavy_input(rng: np.random.Generator, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """Exact codes, .5 ties (exact when the scale is a power of two), the clamp limits and beyond, random values."""
    k = np.arange(qmin - zero_point - 3, qmax - zero_point + 4)
    values = np.concatenate([k, k + 0.5, k - 0.5]) * scale
    values = np.concatenate([values, rng.normal(scale=(qmax - qmin) * scale / 3, size=60)])
    return rng.permutation(values).astype(np.float32)


def random_scale(rng: np.random.Generator) -> float:
    if rng.random() < 0.5:
        return float(2.0 ** rng.integers(-10, 3))  # power of two: the .5 ties above are exact after x·(1/s)
    return float(rng.uniform(1e-3, 2.0))  # not float32-representable: both sides round it to float32


@pytest.mark.parametrize("symmetric", [True, False])
def test_fake_quantize_per_tensor_bit_identical(symmetric):
    rng = np.random.default_rng(30 + symmetric)
    for _ in range(RANDOM_CASES):
        bits = int(rng.choice(BITS))
        qmin, qmax = code_range(bits, symmetric)
        scale = random_scale(rng)
        zero_point = 0 if symmetric else int(rng.integers(qmin, qmax + 1))
        x = tie_heavy_input(rng, scale, zero_point, qmin, qmax)
        expected = torch.fake_quantize_per_tensor_affine(as_torch(x), scale, zero_point, qmin, qmax).numpy()
        codes = quantize_affine(x, scale, zero_point, qmin, qmax)
        assert codes.dtype == np.int64 and codes.min() >= qmin and codes.max() <= qmax
        same_bits(dequantize_affine(codes, scale, zero_point), expected)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fake_quantize_per_channel_bit_identical(axis):
    rng = np.random.default_rng(40 + axis)
    for _ in range(RANDOM_CASES // 2):
        bits = int(rng.choice(BITS))
        qmin, qmax = code_range(bits, symmetric=False)
        shape = [3, 4, 5]
        channels = shape[axis]
        scales = np.array([random_scale(rng) for _ in range(channels)])
        zero_points = rng.integers(qmin, qmax + 1, size=channels)
        x = rng.normal(scale=(qmax - qmin) * scales.max() / 2, size=shape).astype(np.float32)
        x.flat[:: 7] = (rng.integers(qmin, qmax, size=x.flat[::7].size) + 0.5) * np.float32(scales.min())
        expected = torch.fake_quantize_per_channel_affine(
            as_torch(x), as_torch(scales.astype(np.float32)), as_torch(zero_points.astype(np.int32)), axis, qmin, qmax
        ).numpy()
        broadcast = [1, 1, 1]
        broadcast[axis] = channels
        s, z = scales.reshape(broadcast), zero_points.reshape(broadcast)
        same_bits(dequantize_affine(quantize_affine(x, s, z, qmin, qmax), s, z), expected)


@quantized_tensor_api
@pytest.mark.parametrize("dtype, symmetric", [(torch.qint8, True), (torch.qint8, False), (torch.quint8, False)])
def test_quantize_per_tensor_codes_bit_identical(dtype, symmetric):
    rng = np.random.default_rng(50 + symmetric + 2 * (dtype == torch.quint8))
    qmin, qmax = (-128, 127) if dtype == torch.qint8 else (0, 255)
    for _ in range(RANDOM_CASES):
        scale = random_scale(rng)
        zero_point = 0 if symmetric else int(rng.integers(qmin, qmax + 1))
        x = tie_heavy_input(rng, scale, zero_point, qmin, qmax)
        quantized = torch.quantize_per_tensor(as_torch(x), scale, zero_point, dtype)
        codes = quantize_affine(x, scale, zero_point, qmin, qmax, zero_point_add="fused")
        np.testing.assert_array_equal(codes, quantized.int_repr().numpy())
        same_bits(dequantize_affine(codes, scale, zero_point), quantized.dequantize().numpy())


@quantized_tensor_api
@pytest.mark.parametrize("axis", [0, 1])
def test_quantize_per_channel_codes_bit_identical(axis):
    rng = np.random.default_rng(60 + axis)
    for _ in range(RANDOM_CASES // 2):
        channels = 6
        # float32 scales, as observers make them: a per-channel quantized tensor dequantizes with float64 scales.
        scales = np.array([random_scale(rng) for _ in range(channels)], dtype=np.float32).astype(np.float64)
        zero_points = rng.integers(0, 256, size=channels)
        x = np.stack([tie_heavy_input(rng, s, z, 0, 255)[:300] for s, z in zip(scales, zero_points)], axis=axis)
        quantized = torch.quantize_per_channel(as_torch(x), as_torch(scales), as_torch(zero_points), axis, torch.quint8)
        shape = [1, 1]
        shape[axis] = channels
        s, z = scales.reshape(shape), zero_points.reshape(shape)
        codes = quantize_affine(x, s, z, 0, 255, zero_point_add="before_rounding")
        np.testing.assert_array_equal(codes, quantized.int_repr().numpy())
        same_bits(dequantize_affine(codes, s, z), quantized.dequantize().numpy())


@quantized_tensor_api
def test_torch_adds_the_zero_point_at_different_moments():
    # 2.5 · (1/0.25) is an exact tie: round(10) + 1 = 11 (fake_quantize) but round(10.5 + 1) = round(11.5) = 12.
    scale, zero_point = 0.25, 1
    x = np.array([2.625], dtype=np.float32)  # 10.5 steps
    fake = torch.fake_quantize_per_tensor_affine(as_torch(x), scale, zero_point, 0, 255).numpy()
    per_channel = torch.quantize_per_channel(
        as_torch(x[None]), torch.tensor([scale]), torch.tensor([zero_point]), 0, torch.quint8
    )
    per_tensor = torch.quantize_per_tensor(as_torch(x), scale, zero_point, torch.quint8)
    assert fake[0] / scale + zero_point == 11
    assert per_channel.int_repr().item() == per_tensor.int_repr().item() == 12
    assert quantize_affine(x, scale, zero_point, 0, 255)[0] == 11
    assert quantize_affine(x, scale, zero_point, 0, 255, zero_point_add="before_rounding")[0] == 12
    assert quantize_affine(x, scale, zero_point, 0, 255, zero_point_add="fused")[0] == 12


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(2, 8), symmetric=st.booleans())
def test_error_at_most_half_a_step_inside_the_range(seed, bits, symmetric):
    rng = np.random.default_rng(seed)
    x = random_tensor(rng)
    scale, zero_point, qmin, qmax = affine_params(x, bits, symmetric)
    for mode in ("after_rounding", "before_rounding", "fused"):
        codes = quantize_affine(x, scale, zero_point, qmin, qmax, zero_point_add=mode)
        error = np.abs(dequantize_affine(codes, scale, zero_point).astype(np.float64) - x)
        low, high = (qmin - zero_point) * float(scale), (qmax - zero_point) * float(scale)
        inside = (x >= low) & (x <= high)
        slack = 4 * np.spacing(np.abs(x) + np.float32(scale))  # float32 rounding of x·(1/s) and of the product
        assert np.all(error[inside] <= float(scale) / 2 + slack[inside])
        # Outside the range the code is clamped to the nearer end.
        np.testing.assert_array_equal(codes[x < low], qmin)
        np.testing.assert_array_equal(codes[x > high], qmax)
        if symmetric:  # zero point 0: every convention gives the same codes
            np.testing.assert_array_equal(codes, quantize_affine(x, scale, zero_point, qmin, qmax))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: affine_params([1.0, np.nan], 8, True), "NaN or inf"),
        (lambda: affine_params([], 8, True), "x is empty"),
        (lambda: affine_params([1.0], 1, True), "bits must be an integer from 2 to 16"),
        (lambda: affine_params([1.0], 8.0, True), "bits must be an integer from 2 to 16"),
        (lambda: affine_params(np.ones((2, 3)), 8, True, axis=2), "axis 2 is out of range"),
        (lambda: quantize_affine([1.0], 0.0, 0, -128, 127), "scale must be positive and finite"),
        (lambda: quantize_affine([1.0], np.inf, 0, -128, 127), "scale must be positive and finite"),
        (lambda: quantize_affine([1.0], 0.1, 0.5, -128, 127), "zero_point must hold integers"),
        (lambda: quantize_affine([1.0], 0.1, 300, 0, 255), r"zero_point must lie in \[qmin, qmax\] = \[0, 255\]"),
        (lambda: quantize_affine([1.0], 0.1, 0, 5, 5), "need qmin < qmax"),
        (lambda: quantize_affine(np.ones((2, 3)), np.ones(2), 0, -8, 7), r"must broadcast to x's shape \(2, 3\)"),
        (lambda: quantize_affine(np.ones(3), np.ones((2, 3)), 0, -8, 7), r"must broadcast to x's shape \(3,\)"),
        (lambda: quantize_affine([np.inf], 0.1, 0, -8, 7), "NaN or inf"),
        (lambda: quantize_affine([1.0], 0.1, 0, -8, 7, zero_point_add="never"), "zero_point_add must be"),
        (lambda: dequantize_affine(np.array([1.5]), 0.1, 0), "q must hold integers"),
    ],
)
def test_bad_affine_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- groupwise: GPTQ's symmetric scale rule, torch's per-channel fake quantization ---------------------------------


def gptq_symmetric(x: torch.Tensor, bits: int):
    """IST-DASLab/gptq ``quant.py``: ``Quantizer.find_params`` (sym=True, per row) and ``quantize`` → scale, codes."""
    maxq = torch.tensor(2**bits - 1)
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    xmax = torch.maximum(torch.abs(xmin), xmax)
    tmp = xmin < 0
    if torch.any(tmp):
        xmin[tmp] = -xmax[tmp]
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2)
    q = torch.clamp(torch.round(x / scale[:, None]) + zero[:, None], 0, maxq)
    return scale, q - zero[:, None]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group_size", [1, 4, 32, 128])
def test_groupwise_matches_gptq_and_torch(bits, group_size):
    rng = np.random.default_rng(70 + bits + group_size)
    out_features, n_groups = 6, int(rng.integers(1, 5))
    w = rng.normal(scale=0.02, size=(out_features, n_groups * group_size)).astype(np.float32)
    w[0, :group_size] = 0.0  # an all-zero group
    result = quantize_groupwise(w, bits, group_size)
    assert result.codes.shape == w.shape and result.scales.shape == (out_features, n_groups)

    rows = as_torch(w.reshape(-1, group_size))
    gptq_scale, gptq_codes = gptq_symmetric(rows, bits)
    # GPTQ's rule differs for groups without a negative weight (scale amax / (2^b − 1): half) and all-zero ones.
    has_negative = (rows < 0).any(dim=1).numpy()
    np.testing.assert_allclose(result.scales.reshape(-1)[has_negative], gptq_scale.numpy()[has_negative], rtol=2e-7)
    # Codes agree except where x / scale is within float32 rounding of a tie (each group's ±amax is exactly one):
    # GPTQ divides by the scale, torch and we multiply by its reciprocal.
    steps = (rows / gptq_scale[:, None]).numpy()
    clear = has_negative[:, None] & (np.abs(np.abs(steps - np.floor(steps)) - 0.5) > 1e-4)
    assert clear.mean() > 0.5 or group_size == 1  # a group of one is its own amax: always a tie
    np.testing.assert_array_equal(result.codes.reshape(-1, group_size)[clear], gptq_codes.numpy()[clear])

    qmin, qmax = code_range(bits, symmetric=True)
    scales = result.scales.reshape(-1)
    expected = torch.fake_quantize_per_channel_affine(
        rows, as_torch(scales), torch.zeros(scales.size, dtype=torch.int32), 0, qmin, qmax
    ).numpy()
    same_bits(result.dequantized.reshape(-1, group_size), expected)
    np.testing.assert_array_equal(result.error, result.dequantized.astype(np.float64) - w)
    step = np.repeat(result.scales, group_size, axis=1)
    assert np.all(np.abs(result.error) <= step / 2 + 4 * np.spacing(np.abs(w) + step))


def test_groupwise_works_on_any_leading_shape():
    w = np.random.default_rng(8).normal(size=(2, 3, 16)).astype(np.float32)
    result = quantize_groupwise(w, 4, 8)
    np.testing.assert_array_equal(result.codes[1, 2], quantize_groupwise(w[1, 2], 4, 8).codes)
    assert result.scales.shape == (2, 3, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: quantize_groupwise(np.ones((4, 130)), 4, 128),
            r"last dimension \(130\) must be a multiple of group_size \(128\)",
        ),
        (lambda: quantize_groupwise(np.ones((4, 128)), 4, 0), "group_size must be an integer >= 1"),
        (lambda: quantize_groupwise(np.float32(1.0), 4, 1), "at least one dimension"),
        (lambda: quantize_groupwise(np.ones((4, 128)), 17, 32), "bits must be an integer from 2 to 16"),
    ],
)
def test_bad_groupwise_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- FP8: torch's float8 casts -------------------------------------------------------------------------------------

FP8_DTYPES = {"e4m3fn": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}


def torch_fp8(x: np.ndarray, fmt: str) -> np.ndarray:
    return as_torch(x).to(FP8_DTYPES[fmt]).float().numpy()


def every_fp8_value_and_midpoint(fmt: str) -> np.ndarray:
    """All 256 codes decoded by torch; the finite values, the midpoints between neighbours and the next float32s
    on both sides of each; float32 subnormals; the overflow zone up to float32's max; ±inf, NaN."""
    decoded = torch.arange(256, dtype=torch.uint8).view(FP8_DTYPES[fmt]).float().numpy()
    finite = np.unique(decoded[np.isfinite(decoded)])
    largest = finite.max()
    beyond = largest * np.array([1.001, 1.03, 1.0625, 1.07, 1.1, 1.125, 1.13, 1.2, 2, 1e3]) + np.array([0, 1] * 5)
    points = np.concatenate([finite, (finite[:-1] + finite[1:]) / 2, beyond, [largest + 1, 3.4e38]])
    points = points.astype(np.float32)
    tiny = np.array([1e-45, 1e-40, 2.0**-126, 2.0**-20, 2.0**-17, 2.0**-16, 2.0**-10], dtype=np.float32)
    around = np.concatenate([points, np.nextafter(points, np.float32(np.inf)), np.nextafter(points, np.float32(0))])
    everything = np.concatenate([around, tiny, [np.inf, np.nan, 0.0]]).astype(np.float32)
    return np.concatenate([everything, -everything])


@pytest.mark.parametrize("fmt", ["e4m3fn", "e5m2"])
def test_fp8_exhaustive_around_every_value_and_midpoint(fmt):
    x = every_fp8_value_and_midpoint(fmt)
    same_bits(round_to_fp8(x, fmt), torch_fp8(x, fmt))


@pytest.mark.parametrize("fmt", ["e4m3fn", "e5m2"])
def test_fp8_random_values_over_the_whole_range(fmt):
    rng = np.random.default_rng(80)
    x = (rng.choice([-1, 1], size=50_000) * 10.0 ** rng.uniform(-12, 6, size=50_000)).astype(np.float32)
    same_bits(round_to_fp8(x, fmt), torch_fp8(x, fmt))


@pytest.mark.parametrize("fmt", ["e4m3fn", "e5m2"])
def test_fp8_float64_input_is_rounded_to_float32_first_like_torch(fmt):
    # 1.0625 is the midpoint between 1 and 1.125 in E4M3; 1.0625 + 2^-40 lies above it in float64 but rounds to the
    # midpoint in float32, and torch's cast then goes to even (1.0).
    x = np.array([1.0625 + 2.0**-40, 1.0625 - 2.0**-40, 1.125 + 2.0**-30, 3.0 + 2.0**-35])
    expected = torch.from_numpy(x).to(FP8_DTYPES[fmt]).float().numpy()
    same_bits(round_to_fp8(x, fmt), expected)


def test_what_torch_does_at_the_fp8_limits():
    # torch 2.13 (c10 fp8e4m3fn_from_fp32_value): E4M3FN has no inf and saturates, even inf → 448. E5M2 is IEEE-like:
    # 61440 (the midpoint between its max 57344 and 2^16) and above overflow to inf.
    e4m3 = np.array([448, 449, 464, 465, 479.9, 480, 1e6, np.inf, -449, -np.inf, np.nan], dtype=np.float32)
    expected = np.array([448, 448, 448, 448, 448, 448, 448, 448, -448, -448, np.nan], dtype=np.float32)
    same_bits(torch_fp8(e4m3, "e4m3fn"), expected)
    same_bits(round_to_fp8(e4m3, "e4m3fn"), expected)
    e5m2 = np.array([57344, 57345, 61439, 61440, 1e6, np.inf, -61440, np.nan], dtype=np.float32)
    expected = np.array([57344, 57344, 57344, np.inf, np.inf, np.inf, -np.inf, np.nan], dtype=np.float32)
    same_bits(torch_fp8(e5m2, "e5m2"), expected)
    same_bits(round_to_fp8(e5m2, "e5m2"), expected)


def test_bad_fp8_format():
    with pytest.raises(ValueError, match="fmt must be one of"):
        round_to_fp8([1.0], "e4m3")


# --- FP4 E2M1: torch stores it but cannot cast to it, so the reference is torch's own test encoder --------------------


def torch_fp4_reference():
    """``_f32_to_floatx_unpacked`` / ``_floatx_unpacked_to_f32`` from the installed torch's
    ``torch/testing/_internal/common_quantized.py`` (torchao's reference, used by torch's MXFP4 tests). That module
    imports test-only packages, so only these definitions are executed."""
    path = Path(torch.testing.__file__).parent / "_internal" / "common_quantized.py"
    wanted = {"_n_ones", "EBITS_F32", "MBITS_F32", "F32_EXP_BIAS", "_f32_to_floatx_unpacked", "_floatx_unpacked_to_f32"}

    def defines(node) -> set[str]:
        if isinstance(node, ast.FunctionDef):
            return {node.name}
        if isinstance(node, ast.Assign):
            return {n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)}
        return set()

    body = [node for node in ast.parse(path.read_text()).body if defines(node) & wanted]
    namespace = {"torch": torch, "Tensor": torch.Tensor}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    encode, decode = namespace["_f32_to_floatx_unpacked"], namespace["_floatx_unpacked_to_f32"]
    return lambda x: encode(x, 2, 1), lambda codes: decode(codes, 2, 1)


FP4_ENCODE, FP4_DECODE = torch_fp4_reference()


def test_torch_has_fp4_storage_but_no_cast():
    # If this starts failing, torch gained a float4 cast: compare round_to_fp4_e2m1 with it directly.
    packed = torch.tensor([0x21, 0x7F], dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    assert packed.element_size() == 1  # two 4-bit codes per byte
    with pytest.raises(NotImplementedError):
        torch.ones(2).to(torch.float4_e2m1fn_x2)
    with pytest.raises(NotImplementedError):
        packed.float()


def test_fp4_code_points_match_torch_reference_decoder():
    values = fp4_e2m1_values()
    same_bits(values, FP4_DECODE(torch.arange(16, dtype=torch.uint8)).numpy())
    assert sorted(set(np.abs(values).tolist())) == [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_fp4_exhaustive_around_every_value_and_midpoint():
    grid = np.unique(fp4_e2m1_values())
    points = np.concatenate([grid, (grid[:-1] + grid[1:]) / 2, [6.5, 7, 8, 100, 3e38, np.inf, -np.inf]])
    points = points.astype(np.float32)
    x = np.concatenate([points, np.nextafter(points, np.float32(np.inf)), np.nextafter(points, np.float32(-np.inf))])
    x = np.concatenate([x, [0.0, -0.0, 1e-45, -1e-45, 0.25, -0.25]]).astype(np.float32)
    same_bits(round_to_fp4_e2m1(x), FP4_DECODE(FP4_ENCODE(as_torch(x))).numpy())


def test_fp4_with_block_scales_matches_reference():
    rng = np.random.default_rng(90)
    x = rng.normal(size=(8, 64)).astype(np.float32)
    for scale in (
        np.ldexp(np.float32(1), rng.integers(-3, 2, size=(8, 2, 1))),  # MXFP4: a power-of-two scale per 32 values
        rng.uniform(0.05, 1.0, size=(8, 2, 1)).astype(np.float32),  # any positive scale
    ):
        blocks = x.reshape(8, 2, 32)
        expected = FP4_DECODE(FP4_ENCODE(as_torch(blocks / scale))).numpy() * scale
        same_bits(round_to_fp4_e2m1(blocks, scale), expected.astype(np.float32))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: round_to_fp4_e2m1([1.0, np.nan]), "FP4 E2M1 has no NaN"),
        (lambda: round_to_fp4_e2m1([1.0], 0.0), "block_scale must be positive and finite"),
        (lambda: round_to_fp4_e2m1(np.ones(4), np.ones(3)), r"block_scale \(3,\) must broadcast to x's shape \(4,\)"),
    ],
)
def test_bad_fp4_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- model size -------------------------------------------------------------------------------------------------------


def test_model_bytes_published_block_formats():
    # ggml-common.h: static_assert(sizeof(block_q4_0) == sizeof(ggml_half) + QK4_0 / 2) with QK4_0 = 32: 18 bytes.
    assert quantized_model_bytes(32, 4, group_size=32, scale_bytes=2) == 18
    # OCP MX v1.0: MXFP4 = 32 FP4 elements + one 8-bit E8M0 scale, 4.25 bits per element.
    n = 32 * 1000
    assert quantized_model_bytes(n, 4, group_size=32, scale_bytes=1) * 8 / n == 4.25
    assert quantized_model_bytes(7_000_000_000, 16) == 14e9  # bf16, no scales


def test_model_bytes_equal_real_packed_arrays():
    # Pack a groupwise-quantized matrix as a 4-bit checkpoint would: two codes per byte plus fp16 scales.
    w = np.random.default_rng(9).normal(size=(256, 512)).astype(np.float32)
    result = quantize_groupwise(w, 4, 128)
    nibbles = (result.codes + 8).astype(np.uint8).reshape(-1, 2)
    packed = nibbles[:, 0] | (nibbles[:, 1] << 4)
    stored = packed.nbytes + result.scales.astype(np.float16).nbytes
    assert quantized_model_bytes(w.size, 4, group_size=128, scale_bytes=2) == stored


def test_model_bytes_count_a_partial_last_group():
    assert quantized_model_bytes(100, 8, group_size=32, scale_bytes=2) == 100 + 4 * 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_params": -1, "bits": 4}, "n_params must be an integer >= 0"),
        ({"n_params": 7e9, "bits": 4}, "n_params must be an integer >= 0"),
        ({"n_params": 10, "bits": 0}, "bits must be an integer >= 1"),
        ({"n_params": 10, "bits": 4, "group_size": 0}, "group_size must be an integer >= 1"),
        ({"n_params": 10, "bits": 4, "group_size": 2, "scale_bytes": -2}, "scale_bytes must be an integer >= 0"),
    ],
)
def test_bad_model_bytes_input_gives_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        quantized_model_bytes(**kwargs)


@pytest.mark.parametrize("fmt, dtype", [("e4m3fn", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)])
def test_float_format_max_is_torchs(fmt, dtype):
    assert float_format_max(fmt) == torch.finfo(dtype).max


def test_fp4_max_is_its_largest_code_point():
    assert float_format_max("e2m1") == max(fp4_e2m1_values())
    with pytest.raises(ValueError, match="e4m3fn"):
        float_format_max("e3m4")
