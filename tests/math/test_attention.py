"""shared.math.attention against torch in float64.

References: ``torch.nn.functional.scaled_dot_product_attention`` (output), an explicit ``torch.softmax`` of the
masked scores (weights), ``torch.softmax``, and Milakov & Gimelshein 2018's online-normaliser recurrence.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.math.attention import flash_attention, online_softmax_trace, scaled_dot_product_attention, softmax

TOL = 1e-10  # float64 agreement with torch


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _torch_weights(q, k, *, causal=False, mask=None, scale=None) -> torch.Tensor:
    """softmax of the masked, scaled scores, written directly in torch (SDPA does not return its weights)."""
    q, k = _t(q), _t(k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-1, -2) * scale
    L, S = scores.shape[-2:]
    allowed = torch.ones(L, S, dtype=torch.bool)
    if causal:
        allowed = torch.ones(L, S, dtype=torch.bool).tril()
    if mask is not None:
        allowed = allowed & _t(mask)
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


# (batch dims, L, S, E, Ev): batch and head dims, L ≠ S both ways, Ev ≠ E
SHAPES = [
    ((), 5, 5, 4, 4),
    ((2,), 3, 7, 4, 6),
    ((2, 3), 6, 4, 8, 5),
    ((1, 2), 1, 9, 3, 2),
    ((3, 2), 8, 8, 16, 16),
]


def _qkv(rng, batch, L, S, E, Ev):
    return rng.normal(size=batch + (L, E)), rng.normal(size=batch + (S, E)), rng.normal(size=batch + (S, Ev))


# ---------------------------------------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("shape,axis", [((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)])
def test_softmax_matches_torch(shape, axis):
    x = np.random.default_rng(0).normal(scale=5.0, size=shape)
    np.testing.assert_allclose(softmax(x, axis=axis), torch.softmax(_t(x), dim=axis).numpy(), rtol=0, atol=TOL)


def test_softmax_is_stable_for_huge_logits_like_torch():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1002.0, -1001.0]])
    np.testing.assert_allclose(softmax(x), torch.softmax(_t(x), dim=-1).numpy(), rtol=0, atol=TOL)
    assert np.all(np.isfinite(softmax(x)))


def test_softmax_of_all_minus_inf_row_is_nan_like_torch():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]])
    with np.errstate(invalid="ignore"):
        ours = softmax(x)
    theirs = torch.softmax(_t(x), dim=-1).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[1], theirs[1], rtol=0, atol=TOL)


# ----------------------------------------------------------------------------------------- scaled dot-product attention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scale", [None, 0.37, 2.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_sdpa_matches_torch(shape, causal, scale):
    batch, L, S, E, Ev = shape
    q, k, v = _qkv(np.random.default_rng(hash((shape, causal, scale)) % 2**32), *shape)
    out, weights = scaled_dot_product_attention(q, k, v, causal=causal, scale=scale)
    ref = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=causal, scale=scale)
    assert out.shape == tuple(ref.shape) == batch + (L, Ev)
    assert weights.shape == batch + (L, S)
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(weights, _torch_weights(q, k, causal=causal, scale=scale).numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask_batch", ["plain", "per_batch"])
def test_sdpa_boolean_mask_matches_torch(shape, mask_batch):
    batch, L, S, E, Ev = shape
    rng = np.random.default_rng(11)
    q, k, v = _qkv(rng, *shape)
    mask_shape = (L, S) if mask_batch == "plain" else batch + (L, S)
    mask = rng.random(mask_shape) < 0.6
    mask[..., 0] = True  # every query may see at least one key here; fully masked rows have their own test
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, scale=0.5)
    ref = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=_t(mask), scale=0.5)
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(weights, _torch_weights(q, k, mask=mask, scale=0.5).numpy(), rtol=0, atol=TOL)
    assert np.all(weights[..., ~np.broadcast_to(mask, weights.shape)] == 0.0)


def test_sdpa_causal_and_mask_combine_like_torch_with_the_intersection():
    # torch refuses is_causal together with attn_mask; our (causal & mask) equals torch given the intersection
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng, (2,), 5, 6, 4, 3)
    mask = rng.random((5, 6)) < 0.7
    mask[:, 0] = True
    both = np.tril(np.ones((5, 6), dtype=bool)) & mask
    out, weights = scaled_dot_product_attention(q, k, v, causal=True, mask=mask)
    ref = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=_t(both))
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(weights, _torch_weights(q, k, mask=both).numpy(), rtol=0, atol=TOL)


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, (2,), 4, 5, 3, 2)
    mask = np.ones((2, 4, 5), dtype=bool)
    mask[0, 2] = False  # batch 0, query 2 may see nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=_t(mask)).numpy()
    np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)
    assert np.all(out[0, 2] == 0.0) and np.all(weights[0, 2] == 0.0)
    safe = torch.ops.aten._safe_softmax(_t(q @ np.swapaxes(k, -1, -2) / np.sqrt(3)).masked_fill(~_t(mask), -np.inf), -1)
    np.testing.assert_allclose(weights, safe.numpy(), rtol=0, atol=TOL)


def test_sdpa_causal_is_top_left_aligned_like_torch():
    # L > S and L < S: query i sees keys j ≤ i (torch's is_causal), not the bottom-right alignment of some kernels
    for L, S in [(6, 3), (3, 6)]:
        q, k, v = _qkv(np.random.default_rng(L), (), L, S, 4, 4)
        _, weights = scaled_dot_product_attention(q, k, v, causal=True)
        above = ~np.tril(np.ones((L, S), dtype=bool))
        assert np.all(weights[above] == 0.0) and np.all(weights[~above] > 0.0)


def test_sdpa_rejects_additive_float_mask():
    q, k, v = _qkv(np.random.default_rng(0), (), 2, 2, 2, 2)
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, mask=np.zeros((2, 2)))


def test_sdpa_broadcasts_kv_over_heads_like_torch():
    rng = np.random.default_rng(8)
    q = rng.normal(size=(2, 3, 5, 4))  # (batch, heads, L, E)
    k = rng.normal(size=(2, 1, 6, 4))  # one shared key/value head
    v = rng.normal(size=(2, 1, 6, 3))
    out, _ = scaled_dot_product_attention(q, k, v)
    ref = F.scaled_dot_product_attention(_t(q), _t(k).expand(2, 3, 6, 4), _t(v).expand(2, 3, 6, 3))
    np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=TOL)


# ------------------------------------------------------------------------------------------------------ online softmax


def test_online_softmax_trace_worked_example():
    """The example in attention.py's docstring, x = [1, 3, 2, 5, 4]: the running max goes 1, 3, 3, 5, 5 and the final
    normaliser is Σ e^{x_i − 5} (1.5713…), here from torch.logsumexp."""
    x = [1, 3, 2, 5, 4]
    m, d = online_softmax_trace(x)
    np.testing.assert_array_equal(m, [1, 3, 3, 5, 5])
    xs = torch.tensor(x, dtype=torch.float64)
    assert d[-1] == pytest.approx(torch.exp(torch.logsumexp(xs, 0) - xs.max()).item(), rel=1e-15)
    assert round(d[-1], 4) == 1.5713  # as the docstring quotes it


def _independent_online_normalizer(x):
    """Milakov & Gimelshein 2018, Algorithm 3, written out again with the math module."""
    m, d, ms, ds = -math.inf, 0.0, [], []
    for xj in x:
        m_new = max(m, xj)
        d = d * math.exp(m - m_new) + math.exp(xj - m_new)
        m = m_new
        ms.append(m)
        ds.append(d)
    return ms, ds


@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_online_softmax_trace_matches_loop_and_full_softmax(x):
    m, d = online_softmax_trace(x)
    ms, ds = _independent_online_normalizer(x)
    np.testing.assert_allclose(m, ms, rtol=0, atol=0)
    np.testing.assert_allclose(d, ds, rtol=1e-12)
    # every prefix: m_j is the prefix max and d_j = Σ_{i≤j} e^{x_i − m_j}; the end gives torch's softmax
    xs = torch.tensor(x, dtype=torch.float64)
    np.testing.assert_array_equal(m, torch.cummax(xs, 0).values.numpy())
    for j in range(len(x)):
        assert d[j] == pytest.approx(torch.exp(xs[: j + 1] - m[j]).sum().item(), rel=1e-12)
    np.testing.assert_allclose(np.exp(np.asarray(x) - m[-1]) / d[-1], torch.softmax(xs, 0).numpy(), rtol=0, atol=TOL)


# ----------------------------------------------------------------------------------------------------- flash attention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [((), 6, 7, 4, 3), ((2, 2), 5, 5, 8, 8), ((3,), 9, 4, 2, 5)])
def test_flash_equals_plain_for_every_block_size(shape, causal):
    batch, L, S, E, Ev = shape
    q, k, v = _qkv(np.random.default_rng(S * 10 + causal), *shape)
    plain, _ = scaled_dot_product_attention(q, k, v, causal=causal)
    torch_out = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=causal).numpy()
    for block_size in range(1, S + 3):  # divides S, doesn't divide S, and larger than S
        out = flash_attention(q, k, v, block_size=block_size, causal=causal)
        np.testing.assert_allclose(out, plain, rtol=0, atol=1e-12, err_msg=f"block_size={block_size}")
        np.testing.assert_allclose(out, torch_out, rtol=0, atol=TOL, err_msg=f"block_size={block_size}")


@pytest.mark.parametrize("causal", [False, True])
def test_flash_trace_ends_at_full_row_max_and_sum(causal):
    rng = np.random.default_rng(21)
    L, S, E = 5, 7, 4
    q, k, v = _qkv(rng, (2,), L, S, E, 3)
    scale = 0.8
    scores = _t(q) @ _t(k).transpose(-1, -2) * scale
    if causal:
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    row_max = scores.max(dim=-1).values
    row_sum = torch.exp(scores - row_max[..., None]).sum(dim=-1)
    for block_size in (1, 2, 3, 7, 9):
        out, trace = flash_attention(q, k, v, block_size=block_size, causal=causal, scale=scale, return_trace=True)
        blocks = [(a, min(a + block_size, S)) for a in range(0, S, block_size)]
        assert [(r["start"], r["stop"]) for r in trace] == blocks
        np.testing.assert_allclose(trace[-1]["m"], row_max.numpy(), rtol=0, atol=TOL)
        np.testing.assert_allclose(trace[-1]["l"], row_sum.numpy(), rtol=0, atol=TOL)
        # each block's record: scores are that block's columns; m is the running max over the blocks so far
        for r in trace:
            np.testing.assert_allclose(r["scores"], scores[..., r["start"] : r["stop"]].numpy(), rtol=0, atol=TOL)
            np.testing.assert_allclose(r["m"], scores[..., : r["stop"]].max(dim=-1).values.numpy(), rtol=0, atol=TOL)
            prefix = scores[..., : r["stop"]]
            np.testing.assert_allclose(
                r["l"], torch.exp(prefix - prefix.max(dim=-1, keepdim=True).values).sum(-1).numpy(), rtol=0, atol=TOL
            )
        # α rescales the earlier blocks: α_b = e^{m_{b−1} − m_b} (0 before the first block)
        for prev, cur in zip(trace, trace[1:]):
            np.testing.assert_allclose(cur["alpha"], np.exp(prev["m"] - cur["m"]), rtol=0, atol=TOL)
        assert np.all(trace[0]["alpha"] == 0.0)
        plain, _ = scaled_dot_product_attention(q, k, v, causal=causal, scale=scale)
        np.testing.assert_allclose(out, plain, rtol=0, atol=1e-12)


def test_flash_rejects_nonpositive_block_size():
    q, k, v = _qkv(np.random.default_rng(0), (), 2, 2, 2, 2)
    with pytest.raises(ValueError, match="block_size"):
        flash_attention(q, k, v, block_size=0)


@st.composite
def _flash_case(draw):
    L = draw(st.integers(1, 9))
    S = draw(st.integers(1, 9))
    E = draw(st.integers(1, 6))
    Ev = draw(st.integers(1, 4))
    n_batch = draw(st.integers(0, 2))
    batch = tuple(draw(st.integers(1, 3)) for _ in range(n_batch))
    block_size = draw(st.integers(1, S + 2))
    causal = draw(st.booleans())
    scale = draw(st.one_of(st.none(), st.floats(0.05, 4.0)))
    seed = draw(st.integers(0, 2**31))
    magnitude = draw(st.sampled_from([0.1, 1.0, 10.0]))  # large scores exercise the rescaling
    return batch, L, S, E, Ev, block_size, causal, scale, seed, magnitude


@given(_flash_case())
@settings(max_examples=80, deadline=None)
def test_flash_equals_plain_property(case):
    batch, L, S, E, Ev, block_size, causal, scale, seed, magnitude = case
    rng = np.random.default_rng(seed)
    q, k, v = (a * magnitude for a in _qkv(rng, batch, L, S, E, Ev))
    plain, _ = scaled_dot_product_attention(q, k, v, causal=causal, scale=scale)
    flash = flash_attention(q, k, v, block_size=block_size, causal=causal, scale=scale)
    np.testing.assert_allclose(flash, plain, rtol=0, atol=1e-12 * max(1.0, np.abs(v).max()))
