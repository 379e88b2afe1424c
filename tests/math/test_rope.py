"""shared.math.rope against independent torch implementations (Meta complex form, HF rotate_half form, HF
modeling_rope_utils), hypothesis properties, and the published values of DESIGN §6."""

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


def hf_yarn_inv_freq(dim, base, factor, original_max_position, beta_fast=32, beta_slow=1):
    """Transcription of HF modeling_rope_utils._compute_yarn_parameters (truncate=True), float64."""

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
    return inv_freq, (low, high)


shapes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.sampled_from([2, 4, 6, 8, 16, 64]))


# --- (a) against torch -------------------------------------------------------------------------------------------------


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


def test_interpolation_and_ntk_match_hf():
    dim, base, scale = 128, 10000.0, 8.0
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).double() / dim))
    np.testing.assert_allclose(interpolated_frequencies(dim, base, scale), (inv_freq / scale).numpy(), rtol=1e-14)
    # HF _compute_dynamic_ntk_parameters: base · ((factor·seq_len/orig) − (factor − 1))^(dim/(dim−2)); with
    # factor = 1 at seq_len = scale × orig this is the NTK-aware base.
    for dim, scale, orig in ((128, 4, 4096), (64, 8.0, 2048), (96, 32, 4096)):
        factor, seq_len = 1.0, scale * orig
        hf_base = base * ((factor * seq_len / orig) - (factor - 1)) ** (dim / (dim - 2))
        assert ntk_scaled_base(base, scale, dim) == pytest.approx(hf_base, rel=1e-13)


@pytest.mark.parametrize("dim,base,scale,orig", [(128, 10000.0, 4, 4096), (64, 10000.0, 16, 2048),
                                                 (128, 500000.0, 8, 8192), (96, 1e6, 32, 4096)])
def test_yarn_matches_hf(dim, base, scale, orig):
    ref, (low, high) = hf_yarn_inv_freq(dim, base, scale, orig)
    np.testing.assert_allclose(yarn_frequencies(dim, base, scale, orig), ref.numpy(), rtol=1e-12)
    assert yarn_correction_range(dim, base, orig) == (low, high)


def test_yarn_attention_factor_matches_hf_get_mscale():
    for scale in (0.5, 1.0, 2.0, 4.0, 32.0):
        expected = 1.0 if scale <= 1 else 0.1 * math.log(scale) + 1.0
        assert yarn_attention_factor(scale) == pytest.approx(expected, rel=1e-15)


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


# --- (b) properties ----------------------------------------------------------------------------------------------------


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


# --- (c) published values (DESIGN §6) ------------------------------------------------------------------------------


def test_published_values():
    np.testing.assert_allclose(rope_decay_curve(128, [0, 8, 64]), [32.5, 19.82, 10.09], atol=0.005)
    assert ntk_scaled_base(10000.0, 4, 128) == pytest.approx(40889.94, abs=0.005)
    assert yarn_correction_range(128, 10000.0, 4096) == (20, 46)


def test_decay_curve_matches_direct_sum():
    """Independent loop over j and k (RoFormer §3.4.3) in torch complex arithmetic."""
    dim = 32
    theta = torch.from_numpy(rope_frequencies(dim))
    for delta in (0.0, 1.0, 7.0, 100.0):
        sums = [torch.exp(1j * delta * theta[:j]).sum().abs().item() for j in range(1, dim // 2 + 1)]
        assert rope_decay_curve(dim, [delta])[0] == pytest.approx(np.mean(sums), rel=1e-12)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="even"):
        rope_frequencies(7)
    with pytest.raises(ValueError, match="positions"):
        apply_rope(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ValueError, match="layout"):
        apply_rope(np.zeros((2, 4)), [0, 1], layout="sideways")
