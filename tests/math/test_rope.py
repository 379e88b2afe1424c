"""shared.math.rope against independent torch implementations (Meta complex form, HF rotate_half form, HF
modeling_rope_utils and LlamaRotaryEmbedding), hypothesis properties, and values computed again from their definitions
(RoFormer's decay bound, YaRN's correction range)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.math.rope import (
    apply_rope,
    interpolated_frequencies,
    ntk_scaled_base,
    rope_angles,
    rope_decay_curve,
    rope_frequencies,
    rope_self_attention,
    yarn_attention_factor,
    yarn_correction_range,
    yarn_frequencies,
    yarn_logit_scale,
)

# --- independent torch references ------------------------------------------------------------------------------------


def meta_freqs_cis(dim: int, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Meta llama/model.py precompute_freqs_cis, for arbitrary positions."""
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2)[: dim // 2].double() / dim))
    angles = torch.outer(positions.double(), freqs)
    return torch.polar(torch.ones_like(angles), angles)


def meta_apply_rotary_emb(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Meta llama/model.py apply_rotary_emb: view_as_complex × freqs_cis."""
    x_complex = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    freqs_cis = meta_freqs_cis(x.shape[-1], positions, base)  # (seq, dim/2), broadcast over leading dims
    return torch.view_as_real(x_complex * freqs_cis).flatten(-2)


def hf_rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def hf_apply_rotary_pos_emb(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """HF modeling_llama: emb = cat(freqs, freqs); x·cos + rotate_half(x)·sin."""
    dim = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).double() / dim))
    freqs = torch.outer(positions.double(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + hf_rotate_half(x) * emb.sin()


def hf_compute_yarn_parameters(dim, base, factor, original_max_position, rope_scaling=None):
    """Transcription of HF modeling_rope_utils._compute_yarn_parameters (truncate=True), float64: (inv_freq,
    attention_factor, (low, high)). ``rope_scaling`` holds the optional keys attention_factor, mscale,
    mscale_all_dim, beta_fast, beta_slow."""
    rope_scaling = rope_scaling or {}
    attention_factor = rope_scaling.get("attention_factor")
    mscale = rope_scaling.get("mscale")
    mscale_all_dim = rope_scaling.get("mscale_all_dim")

    def get_mscale(scale, mscale=1):
        if scale <= 1:
            return 1.0
        return 0.1 * mscale * math.log(scale) + 1.0

    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rope_scaling.get("beta_fast") or 32
    beta_slow = rope_scaling.get("beta_slow") or 1

    def find_correction_dim(num_rotations):
        return (dim * math.log(original_max_position / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low = max(math.floor(find_correction_dim(beta_fast)), 0)
    high = min(math.ceil(find_correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    pos_freqs = base ** (torch.arange(0, dim, 2).double() / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)
    ramp = torch.clamp((torch.arange(dim // 2).double() - low) / (high - low), 0, 1)
    extrapolation_factor = 1 - ramp
    inv_freq = inv_freq_interpolation * (1 - extrapolation_factor) + inv_freq_extrapolation * extrapolation_factor
    return inv_freq, attention_factor, (low, high)


def hf_rotary_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor, attention_scaling: float):
    """HF LlamaRotaryEmbedding.forward: emb = cat(freqs, freqs); cos = emb.cos() * attention_scaling (sin too)."""
    freqs = torch.outer(positions.double(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * attention_scaling, emb.sin() * attention_scaling


def hf_apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF modeling_llama.apply_rotary_pos_emb for one tensor: x·cos + rotate_half(x)·sin."""
    return x * cos + hf_rotate_half(x) * sin


shapes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.sampled_from([2, 4, 6, 8, 16, 64]))


# --- (a) against torch ------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1), st.sampled_from([10000.0, 500000.0, 100.0]))
def test_interleaved_matches_meta_complex(shape, seed, base):
    batch, seq, dim = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, seq, dim))
    positions = rng.integers(0, 5000, size=seq).astype(float) + rng.random(seq)  # real positions too
    ours = apply_rope(x, positions, base, layout="interleaved")
    ref = meta_apply_rotary_emb(torch.from_numpy(x), torch.from_numpy(positions), base).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1), st.sampled_from([10000.0, 1e6]))
def test_half_matches_hf_rotate_half(shape, seed, base):
    batch, seq, dim = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, 2, seq, dim))  # (batch, heads, seq, dim) like HF
    positions = rng.integers(0, 100000, size=seq).astype(float)
    ours = apply_rope(x, positions, base, layout="half")
    ref = hf_apply_rotary_pos_emb(torch.from_numpy(x), torch.from_numpy(positions), base).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def test_frequencies_and_angles_match_torch():
    for dim in (2, 8, 64, 128):
        ref = 1.0 / (10000.0 ** (torch.arange(0, dim, 2).double() / dim))
        np.testing.assert_allclose(rope_frequencies(dim), ref.numpy(), rtol=1e-14)
        positions = np.arange(17) * 3.5
        np.testing.assert_allclose(
            rope_angles(positions, dim), torch.outer(torch.from_numpy(positions), ref).numpy(), rtol=1e-14
        )


def test_interpolation_matches_hf_linear():
    dim, base, scale = 128, 10000.0, 8.0
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).double() / dim))
    np.testing.assert_allclose(interpolated_frequencies(dim, base, scale), (inv_freq / scale).numpy(), rtol=1e-14)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 128).map(lambda h: 2 * h), st.floats(1.0, 64.0), st.sampled_from([10000.0, 500000.0, 1e6]))
def test_ntk_base_slows_the_slowest_pair_by_exactly_the_scale_and_keeps_the_fastest(dim, scale, base):
    """The property that defines bloc97's NTK-aware base, checked on torch frequencies built from the new base (not
    against HF's dynamic NTK, which equals it only at factor 1)."""
    new_base = ntk_scaled_base(base, scale, dim)
    theta = 1.0 / (base ** (torch.arange(0, dim, 2).double() / dim))
    theta_new = 1.0 / (new_base ** (torch.arange(0, dim, 2).double() / dim))
    assert theta_new[0].item() == 1.0 == theta[0].item()  # the fastest pair is untouched
    assert theta_new[-1].item() == pytest.approx(theta[-1].item() / scale, rel=1e-12)  # the slowest: s times slower
    slowdown = (theta / theta_new).numpy()  # between: 1 → s, growing with the pair index
    assert np.all(np.diff(slowdown) >= -1e-12) and slowdown[-1] == pytest.approx(scale, rel=1e-12)


@pytest.mark.parametrize("dim,base,scale,orig", [(128, 10000.0, 4, 4096), (64, 10000.0, 16, 2048),
                                                 (128, 500000.0, 8, 8192), (96, 1e6, 32, 4096)])
def test_yarn_matches_hf(dim, base, scale, orig):
    ref, attention_factor, (low, high) = hf_compute_yarn_parameters(dim, base, scale, orig)
    np.testing.assert_allclose(yarn_frequencies(dim, base, scale, orig), ref.numpy(), rtol=1e-12)
    assert yarn_correction_range(dim, base, orig) == (low, high)
    assert yarn_attention_factor(scale) == pytest.approx(attention_factor, rel=1e-15)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 4.0, 32.0, 40.0])
@pytest.mark.parametrize("mscale,mscale_all_dim", [(None, None), (1.0, 1.0), (0.707, 1.0), (1.0, 0.0), (None, 0.8),
                                                   (2.0, None)])
def test_yarn_attention_factor_follows_hf_compute_yarn_parameters(scale, mscale, mscale_all_dim):
    """Every branch of HF's attention_factor: plain get_mscale, the mscale / mscale_all_dim ratio (DeepSeek), and the
    cases where one of them is missing or 0 and HF falls back to the plain factor."""
    extras = {k: v for k, v in (("mscale", mscale), ("mscale_all_dim", mscale_all_dim)) if v is not None}
    _, expected, _ = hf_compute_yarn_parameters(128, 10000.0, scale, 4096, extras)
    assert yarn_attention_factor(scale, mscale, mscale_all_dim) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("scale", [1.0, 2.0, 8.0, 32.0])
def test_yarn_scales_the_logits_by_the_square_of_the_attention_factor(scale):
    """HF multiplies cos and sin by attention_scaling, so q and k each carry the factor and q·k its square."""
    dim, base, orig = 64, 10000.0, 4096
    inv_freq, attention_scaling, _ = hf_compute_yarn_parameters(dim, base, scale, orig)
    generator = torch.Generator().manual_seed(int(scale))
    q, k = torch.randn(2, 12, dim, generator=generator, dtype=torch.float64)
    positions = torch.arange(12) * 997.0  # far apart, beyond the original context
    scaled = hf_rotary_cos_sin(inv_freq, positions, attention_scaling)
    plain = hf_rotary_cos_sin(inv_freq, positions, 1.0)
    logits = hf_apply_rotary(q, *scaled) @ hf_apply_rotary(k, *scaled).T
    logits_plain = hf_apply_rotary(q, *plain) @ hf_apply_rotary(k, *plain).T
    np.testing.assert_allclose(logits.numpy(), yarn_logit_scale(scale) * logits_plain.numpy(), rtol=1e-12)
    ratio = (hf_apply_rotary(q, *scaled).norm(dim=-1) / hf_apply_rotary(q, *plain).norm(dim=-1)).numpy()
    np.testing.assert_allclose(ratio, yarn_attention_factor(scale), rtol=1e-12)  # each vector: the factor once


def test_yarn_logit_scale_at_32():
    """The numbers a caption may quote: ×1.35 on q and on k, ×1.81 on the logits, at s = 32."""
    assert round(yarn_attention_factor(32), 2) == 1.35 and round(yarn_logit_scale(32), 2) == 1.81


def test_rope_self_attention_matches_torch_sdpa():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 6))
    w = [rng.normal(size=(6, 4)) for _ in range(3)]
    positions = np.arange(5)
    out, weights = rope_self_attention(x, *w, positions)
    xt = torch.from_numpy(x)
    q, k, v = (xt @ torch.from_numpy(m) for m in w)
    q = meta_apply_rotary_emb(q, torch.from_numpy(positions.astype(float)), 10000.0)
    k = meta_apply_rotary_emb(k, torch.from_numpy(positions.astype(float)), 10000.0)
    ref = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None])[0]
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-12)


def test_without_positions_attention_cannot_see_word_order():
    """The scene's claim: reversing the words permutes the outputs the same way (no position → no order)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    w = [rng.normal(size=(4, 4)) for _ in range(3)]
    out, _ = rope_self_attention(x, *w, None)
    out_reversed, _ = rope_self_attention(x[::-1], *w, None)
    np.testing.assert_allclose(out_reversed[::-1], out, atol=1e-12)
    with_rope, _ = rope_self_attention(x, *w, np.arange(3))
    with_rope_reversed, _ = rope_self_attention(x[::-1], *w, np.arange(3))
    assert np.abs(with_rope_reversed[::-1] - with_rope).max() > 1e-3


# --- (b) properties ---------------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 32).map(lambda h: 2 * h), st.integers(0, 2**31 - 1), st.sampled_from(["interleaved", "half"]))
def test_rotation_preserves_norms(dim, seed, layout):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, dim))
    positions = rng.uniform(-1e4, 1e4, size=6)
    np.testing.assert_allclose(
        np.linalg.norm(apply_rope(x, positions, layout=layout), axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12
    )


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 32).map(lambda h: 2 * h),
    st.integers(0, 2**31 - 1),
    st.floats(-500, 500),
    st.floats(-500, 500),
    st.floats(-500, 500),
    st.sampled_from(["interleaved", "half"]),
)
def test_dot_product_depends_only_on_relative_position(dim, seed, m, n, shift, layout):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(1, dim)), rng.normal(size=(1, dim))
    dot = (apply_rope(q, [m], layout=layout) @ apply_rope(k, [n], layout=layout).T).item()
    shifted = (apply_rope(q, [m + shift], layout=layout) @ apply_rope(k, [n + shift], layout=layout).T).item()
    assert shifted == pytest.approx(dot, abs=1e-9 * (1 + abs(dot)))


# --- (c) values computed again from their definitions ------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 16, 64, 128])
def test_decay_bound_at_distance_zero_is_the_mean_of_1_to_half_dim(dim):
    """At Δ = 0 every e^{iΔθ_k} is 1, so |S_j| = j and the mean over j = 1..d/2 is (d/2 + 1)/2 (32.5 for d = 128)."""
    assert rope_decay_curve(dim, [0.0])[0] == pytest.approx((dim // 2 + 1) / 2, rel=1e-15)


@pytest.mark.parametrize("dim", [32, 128])
def test_decay_curve_matches_direct_sum(dim):
    """RoFormer §3.4.3 written out again: for each j a fresh torch sum of e^{iΔθ_k}, k < j, from torch.polar; the
    distances include the ones the RoPE scene marks (8 and 64 for d = 128)."""
    theta = 1.0 / (10000.0 ** (torch.arange(0, dim, 2).double() / dim))
    for delta in (1.0, 7.0, 8.0, 64.0, 100.0, 1000.0):
        terms = torch.polar(torch.ones_like(theta), delta * theta)
        sums = [terms[:j].sum().abs().item() for j in range(1, dim // 2 + 1)]
        assert rope_decay_curve(dim, [delta])[0] == pytest.approx(math.fsum(sums) / len(sums), rel=1e-12)


@pytest.mark.parametrize("dim,base,orig", [(128, 10000.0, 4096), (128, 500000.0, 8192), (64, 10000.0, 2048)])
def test_yarn_correction_range_from_rotation_counts(dim, base, orig):
    """YaRN §3.2 defines the ramp by r_i = L / λ_i, the turns pair i makes over the original context L: pairs that
    turn more than β_fast = 32 times are kept, those that turn less than β_slow = 1 time are interpolated. ``low`` is
    the last pair index at or before the point where r = 32 (floor), ``high`` the first at or after r = 1 (ceil)."""
    wavelengths = 2 * math.pi * base ** (np.arange(dim // 2) * 2 / dim)  # λ_i, one per pair index i
    turns = orig / wavelengths
    low, high = yarn_correction_range(dim, base, orig)
    assert turns[low] >= 32 > turns[low + 1]
    assert turns[high - 1] > 1 >= turns[high]
    if (dim, base, orig) == (128, 10000.0, 4096):
        assert (low, high) == (20, 46)  # what the RoPE scene shows for Llama 2's 4,096-token context


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="even"):
        rope_frequencies(7)
    with pytest.raises(ValueError, match="positions"):
        apply_rope(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ValueError, match="layout"):
        apply_rope(np.zeros((2, 4)), [0, 1], layout="sideways")
