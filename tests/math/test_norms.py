"""shared.math.norms against ``torch.nn.functional.layer_norm`` / ``rms_norm``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.math.norms import layer_norm, rms_norm

TOL = 1e-10  # float64 agreement with torch
FLOAT32_TOL = 1e-5  # torch computes float32 inputs in float32; we compute in float64


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 4, 5), (2, 3, 4, 16)])
@pytest.mark.parametrize("eps", [1e-5, 1e-6, 1e-12, 0.1, 3.0])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_layer_norm_matches_torch(shape, eps, affine):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = rng.normal(loc=2.0, scale=3.0, size=shape)
    d = shape[-1]
    weight = rng.normal(size=d) if affine in ("weight", "both") else None
    bias = rng.normal(size=d) if affine in ("bias", "both") else None
    ours = layer_norm(x, weight, bias, eps=eps)
    ref = F.layer_norm(
        _t(x), (d,), None if weight is None else _t(weight), None if bias is None else _t(bias), eps=eps
    ).numpy()
    assert ours.shape == x.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)


def test_layer_norm_default_eps_is_torchs():
    x = np.random.default_rng(1).normal(scale=1e-3, size=(4, 6))  # small σ makes eps visible
    np.testing.assert_allclose(layer_norm(x), F.layer_norm(_t(x), (6,)).numpy(), rtol=0, atol=TOL)


def test_layer_norm_float32_input_matches_torch_float32():
    x = np.random.default_rng(2).normal(size=(5, 7)).astype(np.float32)
    np.testing.assert_allclose(layer_norm(x), F.layer_norm(_t(x), (7,)).numpy(), rtol=0, atol=FLOAT32_TOL)


@pytest.mark.parametrize("shape", [(8,), (3, 8), (2, 4, 5), (2, 3, 4, 16)])
@pytest.mark.parametrize("eps", [None, 1e-6, 1e-12, 0.5])
@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm_matches_torch_float64(shape, eps, with_weight):
    rng = np.random.default_rng(shape[-1] + len(shape))
    x = rng.normal(loc=0.5, scale=2.0, size=shape)
    weight = rng.normal(size=shape[-1]) if with_weight else None
    ours = rms_norm(x, weight, eps=eps)
    ref = F.rms_norm(_t(x), (shape[-1],), None if weight is None else _t(weight), eps=eps).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)


def test_rms_norm_eps_none_is_float64_machine_eps_for_float64():
    # x tiny enough that eps decides the result: mean(x²) = 1e-16 is comparable to float64 eps 2.2e-16
    x = np.full((2, 4), 1e-8)
    ref = F.rms_norm(_t(x), (4,)).numpy()
    np.testing.assert_allclose(rms_norm(x), ref, rtol=1e-12)
    np.testing.assert_allclose(rms_norm(x, eps=np.finfo(np.float64).eps), ref, rtol=1e-12)
    assert not np.allclose(rms_norm(x, eps=np.finfo(np.float32).eps), ref, rtol=1e-3)  # the eps choice is visible


def test_rms_norm_eps_none_is_float32_machine_eps_for_float32():
    x = np.full((2, 4), 3e-4, dtype=np.float32)  # mean(x²) = 9e-8, comparable to float32 eps 1.19e-7
    ref = F.rms_norm(_t(x), (4,)).numpy()
    np.testing.assert_allclose(rms_norm(x), ref, rtol=1e-5)
    assert not np.allclose(rms_norm(x.astype(np.float64)), ref, rtol=1e-2)  # float64 eps would give ≈ 1, not ≈ 0.66


def test_rms_norm_eps_none_for_float16_uses_torchs_float32_compute_eps():
    # torch computes half inputs in float32 and takes that type's epsilon (1.19e-7), not float16's (9.8e-4)
    x = np.full((2, 4), 1e-3, dtype=np.float16)
    ref = F.rms_norm(_t(x), (4,)).float().numpy()
    np.testing.assert_allclose(rms_norm(x), ref, rtol=2e-3)  # float16 output rounding
    assert rms_norm(x)[0, 0] > 0.9  # with float16's eps it would be ≈ 0.03


def test_rms_norm_float32_input_random_matches_torch():
    x = np.random.default_rng(4).normal(size=(6, 9)).astype(np.float32)
    w = np.random.default_rng(5).normal(size=9).astype(np.float32)
    np.testing.assert_allclose(rms_norm(x, w), F.rms_norm(_t(x), (9,), _t(w)).numpy(), rtol=0, atol=FLOAT32_TOL)
