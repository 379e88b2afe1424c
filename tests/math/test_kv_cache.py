"""shared.math.kv_cache against torch in float64.

References: ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` with keys and values expanded by a
transcription of HF's ``repeat_kv`` (and torch's own ``enable_gqa=True``); cache sizes measured on torch tensors
(``nbytes``); FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` on the matrices themselves; the DeepSeek-V2
paper's statement that MLA caches as much as GQA with 2.25 groups (§2.1.4).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from shared.math.kv_cache import (
    KVCache,
    attention_flops_per_token,
    attention_step,
    cache_bytes_per_token,
    decode_with_cache,
    kv_cache_bytes,
    mla_cache_bytes,
)
from shared.math.model_configs import MODEL_CONFIGS

TOL = 1e-10
KIB, GIB = 1024, 1024**3


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """HF ``transformers.models.llama.modeling_llama.repeat_kv``, for any number of leading batch axes:
    (..., H_kv, S, E) → (..., H_kv·n_rep, S, E), each KV head repeated n_rep times in a row."""
    *batch, n_kv, s, e = x.shape
    if n_rep == 1:
        return x
    return x[..., :, None, :, :].expand(*batch, n_kv, n_rep, s, e).reshape(*batch, n_kv * n_rep, s, e)


def _torch_causal(q, k, v) -> np.ndarray:
    group = q.shape[-3] // k.shape[-3]
    q, k, v = _t(q), repeat_kv(_t(k), group), repeat_kv(_t(v), group)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()


def _qkv(rng, batch, H, H_kv, L, E, Ev):
    return (
        rng.normal(size=batch + (H, L, E)),
        rng.normal(size=batch + (H_kv, L, E)),
        rng.normal(size=batch + (H_kv, L, Ev)),
    )


# (batch axes, H, H_kv, L, E, Ev): MHA, GQA of several group sizes, MQA, a single token, Ev ≠ E
SHAPES = [
    ((), 4, 4, 5, 8, 8),
    ((2,), 8, 2, 7, 4, 6),
    ((2, 3), 6, 1, 4, 5, 5),
    ((1,), 3, 3, 1, 2, 2),
    ((3,), 12, 4, 9, 16, 8),
    ((2,), 5, 1, 6, 3, 7),
]


# ------------------------------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize("batch,H,H_kv,L,E,Ev", SHAPES)
def test_decode_with_cache_equals_causal_sdpa_with_repeat_kv(batch, H, H_kv, L, E, Ev):
    q, k, v = _qkv(np.random.default_rng(L * H + E), batch, H, H_kv, L, E, Ev)
    np.testing.assert_allclose(decode_with_cache(q, k, v), _torch_causal(q, k, v), rtol=0, atol=TOL)


@pytest.mark.parametrize("batch,H,H_kv,L,E", [((2,), 8, 2, 7, 4), ((1,), 6, 1, 5, 8), ((3,), 4, 4, 6, 2)])
def test_decode_with_cache_equals_torch_enable_gqa(batch, H, H_kv, L, E):
    q, k, v = _qkv(np.random.default_rng(H), batch, H, H_kv, L, E, E)
    theirs = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=True, enable_gqa=True).numpy()
    np.testing.assert_allclose(decode_with_cache(q, k, v), theirs, rtol=0, atol=TOL)


@settings(max_examples=30, deadline=None)
@given(
    n_kv=st.integers(1, 4),
    group=st.integers(1, 4),
    L=st.integers(1, 8),
    E=st.integers(1, 6),
    Ev=st.integers(1, 6),
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    seed=st.integers(0, 2**32 - 1),
)
def test_decode_with_cache_equals_causal_sdpa_on_random_shapes(n_kv, group, L, E, Ev, batch, seed):
    q, k, v = _qkv(np.random.default_rng(seed), batch, n_kv * group, n_kv, L, E, Ev)
    np.testing.assert_allclose(decode_with_cache(q, k, v), _torch_causal(q, k, v), rtol=0, atol=TOL)


def test_decode_with_cache_custom_scale_matches_torch():
    q, k, v = _qkv(np.random.default_rng(3), (2,), 4, 2, 5, 3, 3)
    theirs = F.scaled_dot_product_attention(
        _t(q), repeat_kv(_t(k), 2), repeat_kv(_t(v), 2), is_causal=True, scale=0.3
    ).numpy()
    np.testing.assert_allclose(decode_with_cache(q, k, v, scale=0.3), theirs, rtol=0, atol=TOL)


def test_attention_step_cache_grows_by_one_token_per_step_and_holds_every_key():
    batch, H, H_kv, L, E, Ev = (2,), 6, 3, 5, 4, 2
    q, k, v = _qkv(np.random.default_rng(0), batch, H, H_kv, L, E, Ev)
    cache = None
    for i in range(L):
        out, cache = attention_step(q[..., i : i + 1, :], k[..., i : i + 1, :], v[..., i : i + 1, :], cache)
        assert cache.length == i + 1
        assert cache.k.shape == batch + (H_kv, i + 1, E) and cache.v.shape == batch + (H_kv, i + 1, Ev)
        np.testing.assert_array_equal(cache.k, k[..., : i + 1, :])
        np.testing.assert_array_equal(cache.v, v[..., : i + 1, :])
        # The step's output is the last query of full causal attention over the first i + 1 tokens.
        theirs = _torch_causal(q[..., : i + 1, :], k[..., : i + 1, :], v[..., : i + 1, :])[..., -1:, :]
        np.testing.assert_allclose(out, theirs, rtol=0, atol=TOL)


def test_attention_step_accepts_a_plain_k_v_pair_as_cache():
    q, k, v = _qkv(np.random.default_rng(1), (), 4, 2, 3, 5, 5)
    pair = (k[..., :2, :], v[..., :2, :])
    out_pair, cache_pair = attention_step(q[..., 2:, :], k[..., 2:, :], v[..., 2:, :], pair)
    out_obj, cache_obj = attention_step(q[..., 2:, :], k[..., 2:, :], v[..., 2:, :], KVCache(*pair))
    np.testing.assert_array_equal(out_pair, out_obj)
    assert cache_pair.length == cache_obj.length == 3


@pytest.mark.parametrize("H,H_kv", [(8, 2), (6, 1), (4, 4)])
def test_query_head_h_reads_kv_head_h_over_group(H, H_kv):
    """Each KV head's values are the constant kv index, so any softmax mix of them returns that index."""
    rng, t, E = np.random.default_rng(H), 4, 3
    k = rng.normal(size=(H_kv, t, E))
    v = np.broadcast_to(np.arange(H_kv, dtype=float)[:, None, None], (H_kv, t, 2))
    out, _ = attention_step(rng.normal(size=(H, 1, E)), k[:, -1:], v[:, -1:], (k[:, :-1], v[:, :-1]))
    np.testing.assert_allclose(out[:, 0, 0], np.arange(H) // (H // H_kv), rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "q_shape,k_shape,v_shape,match",
    [
        ((6, 1, 4), (4, 1, 4), (4, 1, 4), "multiple"),  # 6 query heads, 4 KV heads
        ((4, 1, 4), (2, 1, 3), (2, 1, 3), "same dim E"),
        ((4, 2, 4), (2, 2, 4), (2, 2, 4), "one token"),
        ((4, 1, 4), (2, 1, 4), (3, 1, 4), "agree"),
        ((2, 4, 1, 4), (3, 2, 1, 4), (3, 2, 1, 4), "batch axes"),
        ((1, 4), (1, 4), (1, 4), "heads"),
    ],
)
def test_attention_step_rejects_bad_shapes(q_shape, k_shape, v_shape, match):
    with pytest.raises(ValueError, match=match):
        attention_step(np.zeros(q_shape), np.zeros(k_shape), np.zeros(v_shape))


def test_attention_step_rejects_a_cache_that_does_not_fit():
    q, k, v = np.zeros((4, 1, 8)), np.zeros((2, 1, 8)), np.zeros((2, 1, 8))
    with pytest.raises(ValueError, match="does not fit"):
        attention_step(q, k, v, (np.zeros((3, 5, 8)), np.zeros((3, 5, 8))))
    with pytest.raises(ValueError, match="cache.k holds 5 tokens"):
        attention_step(q, k, v, (np.zeros((2, 5, 8)), np.zeros((2, 4, 8))))


def test_decode_with_cache_rejects_bad_input_before_decoding():
    with pytest.raises(ValueError, match="same number of tokens"):
        decode_with_cache(np.zeros((4, 5, 8)), np.zeros((2, 4, 8)), np.zeros((2, 4, 8)))
    with pytest.raises(ValueError, match="multiple"):
        decode_with_cache(np.zeros((3, 5, 8)), np.zeros((2, 5, 8)), np.zeros((2, 5, 8)))
    with pytest.raises(ValueError, match="empty"):
        decode_with_cache(np.zeros((4, 0, 8)), np.zeros((2, 0, 8)), np.zeros((2, 0, 8)))


# --------------------------------------------------------------------------------------------------------- bytes


def test_llama_3_8b_bf16_reference_values():
    cfg = MODEL_CONFIGS["Llama-3-8B"]
    assert cache_bytes_per_token(cfg) == 128 * KIB
    assert kv_cache_bytes(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, 131072) == 16 * GIB


def test_cache_bytes_per_token_of_every_model():
    per_token = {name: cache_bytes_per_token(cfg) for name, cfg in MODEL_CONFIGS.items()}
    assert per_token == {
        "Llama-2-7B": 512 * KIB,  # MHA, 32 KV heads
        "Llama-3-8B": 128 * KIB,  # GQA, 8 KV heads
        "Llama-3-70B": 320 * KIB,  # GQA, 8 KV heads, 80 layers
        "Falcon-7B": 8 * KIB,  # MQA, one KV head of 64
        "DeepSeek-V3": 61 * (512 + 64) * 2,  # MLA latent + RoPE key
    }


def test_deepseek_v3_mla_caches_as_much_as_gqa_with_2_25_groups():
    """DeepSeek-V2 paper §2.1.4: with d_c = 4·d_h and d_h^R = d_h / 2, MLA's cache equals GQA's with 2.25 groups."""
    cfg = MODEL_CONFIGS["DeepSeek-V3"]
    assert cfg.kv_lora_rank == 4 * cfg.head_dim and cfg.qk_rope_head_dim * 2 == cfg.head_dim
    gqa_2_25_groups = 2 * 2.25 * cfg.head_dim * cfg.num_hidden_layers * 2  # 2·n_g·d_h·l elements, bf16
    assert cache_bytes_per_token(cfg) == gqa_2_25_groups == 70272
    mha = kv_cache_bytes(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim, 1)
    assert mha / cache_bytes_per_token(cfg) == pytest.approx(2 * 128 * 128 / 576)  # Table 1 MHA row vs MLA


def _torch_cache_nbytes(tensors_per_layer, n_layers: int) -> int:
    return n_layers * sum(t.element_size() * t.nelement() for t in tensors_per_layer)


DTYPES = [(torch.bfloat16, 2), (torch.float16, 2), (torch.float32, 4), (torch.float8_e4m3fn, 1)]


@settings(max_examples=40, deadline=None)
@given(
    L=st.integers(1, 4), T=st.integers(0, 12), B=st.integers(1, 3), dtype=st.sampled_from(DTYPES),
    H_kv=st.integers(1, 4), d=st.integers(1, 16), rank=st.integers(1, 32), rope=st.integers(1, 8),
)
def test_cache_bytes_equal_torch_tensors_of_a_real_cache(L, T, B, dtype, H_kv, d, rank, rope):
    torch_dtype, nbytes = dtype
    # One layer of HF's DynamicCache: K and V of shape (B, H_kv, T, d).
    kv = [torch.zeros(B, H_kv, T, d, dtype=torch_dtype) for _ in "kv"]
    assert kv_cache_bytes(L, H_kv, d, T, B, nbytes) == _torch_cache_nbytes(kv, L)
    # One layer of DeepSeek-V3 inference/model.py's MLA cache (absorb mode): kv_cache (B, T, kv_lora_rank) and
    # pe_cache (B, T, qk_rope_head_dim).
    latent = [torch.zeros(B, T, rank, dtype=torch_dtype), torch.zeros(B, T, rope, dtype=torch_dtype)]
    assert mla_cache_bytes(L, rank, rope, T, B, nbytes) == _torch_cache_nbytes(latent, L)


@settings(max_examples=50, deadline=None)
@given(
    L=st.integers(1, 100), H_kv=st.integers(1, 64), d=st.integers(1, 256),
    T1=st.integers(0, 10**6), T2=st.integers(0, 10**6), B=st.integers(1, 64),
    bytes_per_value=st.sampled_from([0.5, 1, 2, 4]),
)
def test_cache_bytes_are_linear_in_tokens_and_batch(L, H_kv, d, T1, T2, B, bytes_per_value):
    for f in (
        lambda T, B: kv_cache_bytes(L, H_kv, d, T, B, bytes_per_value),
        lambda T, B: mla_cache_bytes(L, H_kv, d, T, B, bytes_per_value),
    ):
        assert f(T1 + T2, B) == f(T1, B) + f(T2, B)
        assert f(T1, B) == B * f(T1, 1) == T1 * f(1, B)
        assert f(0, B) == 0


def test_bytes_are_ints_for_whole_byte_types_and_halves_for_4_bit():
    assert isinstance(kv_cache_bytes(2, 2, 2, 3), int)
    assert kv_cache_bytes(1, 1, 1, 1, bytes_per_value=0.5) == 1.0  # one K and one V nibble


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_layers=0), "n_layers"),
        (dict(n_kv_heads=2.0), "n_kv_heads"),
        (dict(head_dim=True), "head_dim"),
        (dict(seq_len=-1), "seq_len"),
        (dict(batch=0), "batch"),
        (dict(bytes_per_value=0), "bytes_per_value"),
        (dict(bytes_per_value="bf16"), "bytes_per_value"),
    ],
)
def test_kv_cache_bytes_rejects_bad_arguments(kwargs, match):
    args = dict(n_layers=2, n_kv_heads=2, head_dim=4, seq_len=8) | kwargs
    with pytest.raises(ValueError, match=match):
        kv_cache_bytes(**args)


def test_mla_cache_bytes_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kv_lora_rank"):
        mla_cache_bytes(61, 0, 64, 10)
    with pytest.raises(ValueError, match="qk_rope_head_dim"):
        mla_cache_bytes(61, 512, None, 10)


# ---------------------------------------------------------------------------------------------------------- FLOPs


def _counted_flops(t, d_model, n_heads, n_kv_heads, head_dim, use_cache) -> tuple[int, int, int]:
    """Build the matrices one attention layer multiplies for its newest token and let torch count the FLOPs."""
    x = torch.randn(t, d_model, dtype=torch.float64)  # hidden states of the t visible tokens
    w_k, w_v = (torch.randn(d_model, n_kv_heads * head_dim, dtype=torch.float64) for _ in "kv")
    with FlopCounterMode(display=False) as projection:
        projected = x[-1:] if use_cache else x
        projected @ w_k, projected @ w_v  # counted, not used
    k = repeat_kv(torch.randn(n_kv_heads, t, head_dim, dtype=torch.float64), n_heads // n_kv_heads)
    v = repeat_kv(torch.randn(n_kv_heads, t, head_dim, dtype=torch.float64), n_heads // n_kv_heads)
    q = torch.randn(n_heads, 1, head_dim, dtype=torch.float64)
    with FlopCounterMode(display=False) as scores:
        s = q @ k.transpose(-1, -2)
    with FlopCounterMode(display=False) as weighted:
        torch.softmax(s, dim=-1) @ v
    return projection.get_total_flops(), scores.get_total_flops(), weighted.get_total_flops()


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize(
    "t,d_model,n_heads,n_kv_heads,head_dim", [(1, 8, 2, 2, 4), (7, 16, 4, 1, 4), (12, 32, 8, 2, 4), (5, 24, 6, 3, 8)]
)
def test_attention_flops_match_torch_flop_counter(t, d_model, n_heads, n_kv_heads, head_dim, use_cache):
    ours = attention_flops_per_token(
        t, d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim, use_cache=use_cache
    )
    counted = _counted_flops(t, d_model, n_heads, n_kv_heads, head_dim, use_cache)
    assert (ours.kv_projection, ours.scores, ours.weighted_values) == counted
    assert ours.total == sum(counted)


def test_recomputing_the_prefix_wastes_work_that_grows_with_the_prefix():
    """Llama-3-8B's shapes at token 4096: same attention arithmetic, but every earlier K and V projected again."""
    cfg = MODEL_CONFIGS["Llama-3-8B"]
    shapes = dict(
        d_model=cfg.hidden_size, n_heads=cfg.num_attention_heads, n_kv_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim,
    )
    cached = attention_flops_per_token(4096, use_cache=True, **shapes)
    recomputed = attention_flops_per_token(4096, use_cache=False, **shapes)
    assert (cached.scores, cached.weighted_values) == (recomputed.scores, recomputed.weighted_values)
    assert recomputed.kv_projection == 4096 * cached.kv_projection
    assert recomputed.total > 100 * cached.total


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(t=0), "t must"), (dict(n_heads=6, n_kv_heads=4), "multiple"), (dict(head_dim=0), "head_dim")],
)
def test_attention_flops_rejects_bad_arguments(kwargs, match):
    args = dict(t=4, d_model=16, n_heads=4, n_kv_heads=2, head_dim=4) | kwargs
    with pytest.raises(ValueError, match=match):
        attention_flops_per_token(**args)
