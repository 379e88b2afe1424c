"""Rotary position embedding (RoPE) and its context-extension variants, in numpy.

Every function matches a reference implementation and is tested against torch in ``tests/math/test_rope.py``:
RoFormer (Su et al. 2021), Meta Llama's ``apply_rotary_emb`` (``view_as_complex`` × ``polar``), Hugging Face's
``rotate_half`` form and ``modeling_rope_utils`` (linear/position interpolation, dynamic NTK, YaRN), and the NTK-aware
base of bloc97 (2023).
"""

from __future__ import annotations

import math

import numpy as np


def rope_frequencies(dim: int, base: float = 10000.0) -> np.ndarray:
    """Rotation speeds θ_i = base^(−2i/dim) for the dim/2 pairs, radians per position.

    Parameters
    ----------
    dim
        Head dimension (even).
    base
        RoPE base (10000 in RoFormer and Llama 1/2).

    Returns
    -------
    np.ndarray
        Shape ``(dim // 2,)``, float64, θ_0 = 1 down to base^(−(dim−2)/dim).

    References
    ----------
    RoFormer §3.2.2, eq. (15); HF ``_compute_default_rope_parameters``: ``1 / base ** (arange(0, dim, 2) / dim)``.
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"dim must be a positive even number, got {dim}")
    return base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)


def rope_angles(positions, dim: int, base: float = 10000.0) -> np.ndarray:
    """Angles m·θ_i for each position m and pair i.

    Returns
    -------
    np.ndarray
        Shape ``(len(positions), dim // 2)``; the same as Llama's ``torch.outer(t, freqs)``.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1)
    return np.outer(positions, rope_frequencies(dim, base))


def apply_rope(x, positions, base: float = 10000.0, layout: str = "interleaved") -> np.ndarray:
    """Rotate each pair of features of ``x`` by its position's angle.

    Parameters
    ----------
    x
        Array ``(..., seq, dim)``: queries or keys; ``seq`` matches ``len(positions)``.
    positions
        Position index m of each row (any real numbers).
    base
        RoPE base.
    layout
        ``"interleaved"`` pairs (x_2i, x_2i+1), as RoFormer and Meta Llama (``torch.view_as_complex``);
        ``"half"`` pairs (x_i, x_{i+dim/2}), as Hugging Face's ``rotate_half``.

    Returns
    -------
    np.ndarray
        Same shape as ``x``, float64. Norms are preserved and ⟨R_m q, R_n k⟩ depends only on n − m.

    References
    ----------
    Meta ``llama/model.py::apply_rotary_emb``; HF ``modeling_llama.apply_rotary_pos_emb``.
    """
    x = np.asarray(x, dtype=np.float64)
    dim = x.shape[-1]
    angles = rope_angles(positions, dim, base)  # (seq, dim/2)
    if x.shape[-2] != angles.shape[0]:
        raise ValueError(f"x has {x.shape[-2]} positions along axis -2 but {angles.shape[0]} positions were given")
    cos, sin = np.cos(angles), np.sin(angles)
    if layout == "interleaved":
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out
    if layout == "half":
        first, second = x[..., : dim // 2], x[..., dim // 2 :]
        return np.concatenate([first * cos - second * sin, first * sin + second * cos], axis=-1)
    raise ValueError(f"layout must be 'interleaved' or 'half', not {layout!r}")


def rope_decay_curve(dim: int, distances, base: float = 10000.0) -> np.ndarray:
    """RoFormer's long-term decay bound: mean over j = 1..dim/2 of |S_j|, S_j = Σ_{k<j} e^{iΔθ_k}.

    Returns
    -------
    np.ndarray
        One value per relative distance Δ. At Δ = 0 every |S_j| = j, so the bound is (dim/2 + 1)/2 (32.5 for
        dim = 128); it falls as Δ grows (19.82 at Δ = 8 and 10.09 at Δ = 64 for dim = 128, base 10000).

    References
    ----------
    RoFormer §3.4.3 and Figure 2 (the relative upper bound (1/(d/2)) Σ_j |S_j|).
    """
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    theta = rope_frequencies(dim, base)
    partial_sums = np.cumsum(np.exp(1j * np.outer(distances, theta)), axis=1)  # S_1..S_{dim/2}
    return np.abs(partial_sums).mean(axis=1)


def ntk_scaled_base(base: float, scale: float, dim: int) -> float:
    """NTK-aware base b' = b·s^(dim/(dim−2)): the slowest pair turns exactly s times slower, the fastest as before.

    θ'_i = b'^(−2i/dim) = θ_i · s^(−2i/(dim−2)): pair 0 keeps θ_0 = 1, pair dim/2 − 1 gets θ/s, and the pairs between
    are slowed by less and less towards the fast end. For dim = 128, s = 4: 40889.94.

    This is the static NTK-aware base. Hugging Face's ``rope_type="dynamic"`` (``_compute_dynamic_ntk_parameters``)
    recomputes a base from the current sequence length instead: b·(factor·L/L_orig − (factor − 1))^(dim/(dim−2));
    the two agree only when factor = 1 and L = s·L_orig.

    References
    ----------
    bloc97, "NTK-Aware Scaled RoPE allows LLaMA models to have extended (8k+) context size without any fine-tuning"
    (2023); Peng et al. 2023 (YaRN) §3.1, "NTK-aware" interpolation.
    """
    return base * scale ** (dim / (dim - 2))


def interpolated_frequencies(dim: int, base: float, scale: float) -> np.ndarray:
    """Position interpolation: every θ_i divided by ``scale`` (Chen et al. 2023; HF ``rope_type="linear"``)."""
    return rope_frequencies(dim, base) / scale


def _yarn_correction_dim(num_rotations: float, dim: int, base: float, original_max_position: int) -> float:
    # The pair index whose wavelength fits ``num_rotations`` times into the original context.
    return dim * math.log(original_max_position / (num_rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_correction_range(
    dim: int, base: float, original_max_position: int, beta_fast: float = 32, beta_slow: float = 1
) -> tuple[int, int]:
    """Pair indices (low, high) between which YaRN ramps from extrapolation to interpolation.

    low = floor(i*(beta_fast)), high = ceil(i*(beta_slow)) with i*(n) = dim·ln(L/(2πn)) / (2 ln base), clipped to
    [0, dim − 1]. d = 128, L = 4096 → (20, 46). Reference: HF ``modeling_rope_utils.find_correction_range``.
    """
    low = math.floor(_yarn_correction_dim(beta_fast, dim, base, original_max_position))
    high = math.ceil(_yarn_correction_dim(beta_slow, dim, base, original_max_position))
    return max(low, 0), min(high, dim - 1)


def yarn_frequencies(
    dim: int,
    base: float,
    scale: float,
    original_max_position: int,
    beta_fast: float = 32,
    beta_slow: float = 1,
) -> np.ndarray:
    """YaRN's per-pair frequencies: fast pairs kept, slow pairs interpolated by ``scale``, a linear ramp between.

    Returns
    -------
    np.ndarray
        Shape ``(dim // 2,)``. Pairs below ``low`` of :func:`yarn_correction_range` keep θ_i; pairs above ``high``
        get θ_i / scale.

    References
    ----------
    Peng et al. 2023 (YaRN) §3.2; HF ``modeling_rope_utils._compute_yarn_parameters`` (truncate=True),
    jquesnelle/yarn ``LlamaYaRNScaledRotaryEmbedding``.
    """
    theta = rope_frequencies(dim, base)
    low, high = yarn_correction_range(dim, base, original_max_position, beta_fast, beta_slow)
    if low == high:
        high += 0.001  # HF: avoid a division by zero
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    keep = 1.0 - ramp  # 1 → extrapolate (keep θ), 0 → interpolate (θ / scale)
    return theta / scale * (1.0 - keep) + theta * keep


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    # HF's get_mscale: 0.1·mscale·ln(scale) + 1, and 1 when the context is not extended.
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_attention_factor(scale: float, mscale: float | None = None, mscale_all_dim: float | None = None) -> float:
    """YaRN's factor on cos and sin, so on q and on k each: 0.1·ln(scale) + 1 (1 for scale ≤ 1).

    Both q and k are multiplied by it (HF scales the rotary ``cos`` and ``sin``), so the attention logits q·k are
    multiplied by its square: see :func:`yarn_logit_scale`. At scale 32: 1.347 on q and k, 1.813 on the logits.

    Parameters
    ----------
    scale
        Context extension factor s (HF ``rope_scaling["factor"]``).
    mscale, mscale_all_dim
        DeepSeek-style configs give both; then the factor is m(mscale)/m(mscale_all_dim) with
        m(x) = 0.1·x·ln(scale) + 1 (1 when they are equal: DeepSeek-V3 puts m(mscale_all_dim)² into its softmax scale
        instead). With either missing or 0, the plain 0.1·ln(scale) + 1.

    References
    ----------
    Peng et al. 2023 (YaRN) §3.4: √(1/t) = 0.1·ln(s) + 1, applied by scaling the RoPE embeddings; HF
    ``modeling_rope_utils._compute_yarn_parameters`` (``attention_factor`` from ``get_mscale``), used as
    ``attention_scaling`` in ``LlamaRotaryEmbedding.forward``: ``cos = emb.cos() * attention_scaling``, and the same
    for ``sin``.
    """
    if mscale and mscale_all_dim:
        return _yarn_mscale(scale, mscale) / _yarn_mscale(scale, mscale_all_dim)
    return _yarn_mscale(scale)


def yarn_logit_scale(scale: float, mscale: float | None = None, mscale_all_dim: float | None = None) -> float:
    """How much YaRN multiplies the attention logits q·k/√d: the square of :func:`yarn_attention_factor`.

    This is YaRN's 1/t (softmax(q·k / (t·√d))): 1.813 at scale 32, 1.459 at scale 8, 1 without extension. A larger
    factor sharpens the softmax, undoing the flattening that a longer context brings.

    References
    ----------
    Peng et al. 2023 (YaRN) §3.4, eq. for the temperature t; HF ``LlamaRotaryEmbedding`` scales cos and sin, so
    ``apply_rotary_pos_emb`` returns q·a and k·a and their dot product carries a².
    """
    return yarn_attention_factor(scale, mscale, mscale_all_dim) ** 2


def rope_self_attention(x, w_q, w_k, w_v, positions=None, base: float = 10000.0, layout: str = "interleaved"):
    """Single-head self-attention, with RoPE on q and k at ``positions`` (None: no position information at all).

    Parameters
    ----------
    x
        Token vectors ``(seq, d_model)``.
    w_q, w_k, w_v
        Projections ``(d_model, d_head)``; q = x w_q etc.
    positions
        Position of each token, or None to leave q and k unrotated (then attention cannot tell word order: permuting
        the tokens permutes the outputs the same way).

    Returns
    -------
    (out, weights)
        As :func:`shared.math.attention.scaled_dot_product_attention`.

    References
    ----------
    RoFormer §3.4 eq. (16): q_m = R_m W_q x_m, k_n = R_n W_k x_n.
    """
    from shared.math.attention import scaled_dot_product_attention

    x = np.asarray(x, dtype=np.float64)
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    if positions is not None:
        q = apply_rope(q, positions, base, layout)
        k = apply_rope(k, positions, base, layout)
    return scaled_dot_product_attention(q, k, v)
