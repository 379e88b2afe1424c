"""The KV cache in numpy: decoding one token at a time over cached keys and values (MHA, GQA, MQA), what the cache
costs in bytes (per-head K/V, or DeepSeek's MLA latent), and the work it saves.

Shapes follow ``shared/math/attention.py`` with a head axis: queries ``(..., H, L, E)``, keys and values
``(..., H_kv, L, E)`` and ``(..., H_kv, L, Ev)``, where H is a multiple of H_kv and query head h reads KV head
h // (H / H_kv) (HF ``repeat_kv``). H_kv = H is multi-head attention, H_kv = 1 multi-query attention.

Tested against ``torch.nn.functional.scaled_dot_product_attention`` with HF's ``repeat_kv``, and against
``torch.utils.flop_counter.FlopCounterMode`` (``tests/math/test_kv_cache.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from shared.math.attention import scaled_dot_product_attention
from shared.math.model_configs import ModelConfig

# --------------------------------------------------------------------------------------------------------- bytes


def _check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _check_bytes_per_value(bytes_per_value):
    if isinstance(bytes_per_value, bool) or not isinstance(bytes_per_value, Real) or not bytes_per_value > 0:
        raise ValueError(
            f"bytes_per_value must be a positive number (2 for bf16/fp16, 1 for int8/fp8, 0.5 for 4-bit), "
            f"got {bytes_per_value!r}"
        )
    return bytes_per_value


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, seq_len: int, batch: int = 1, bytes_per_value=2):
    """Bytes of cached keys and values: 2·L·H_kv·d_h·T·B·bytes (the 2 is one K and one V).

    Parameters
    ----------
    n_layers, n_kv_heads, head_dim
        L, H_kv (= query heads for MHA, fewer for GQA, 1 for MQA) and d_h.
    seq_len, batch
        T cached tokens (0 allowed) per sequence, B sequences.
    bytes_per_value
        2 for bf16/fp16 (default), 1 for int8/fp8, 0.5 for 4-bit; the result is an int when this is.

    References
    ----------
    DeepSeek-V2 paper (DeepSeek-AI 2024), §2.1.4, Table 1: 2·n_h·d_h·l elements per token for MHA, 2·n_g·d_h·l
    for GQA, 2·d_h·l for MQA.
    """
    values = 2 * _check_count("n_layers", n_layers) * _check_count("n_kv_heads", n_kv_heads)
    values *= _check_count("head_dim", head_dim) * _check_count("seq_len", seq_len, 0) * _check_count("batch", batch)
    return values * _check_bytes_per_value(bytes_per_value)


def mla_cache_bytes(
    n_layers: int, kv_lora_rank: int, qk_rope_head_dim: int, seq_len: int, batch: int = 1, bytes_per_value=2
):
    """Bytes of a multi-head latent attention cache: L·(kv_lora_rank + qk_rope_head_dim)·T·B·bytes.

    Per token and layer MLA caches one compressed latent c^KV (``kv_lora_rank`` = d_c values) from which every head's
    key and value are rebuilt, plus one decoupled RoPE key k^R shared by all heads (``qk_rope_head_dim`` = d_h^R
    values); no per-head keys or values. Arguments otherwise as :func:`kv_cache_bytes`.

    References
    ----------
    DeepSeek-V2 paper, §2.1.2 (only c^KV is cached), §2.1.3 (plus the decoupled key k^R) and §2.1.4, Table 1:
    (d_c + d_h^R)·l elements per token. DeepSeek-V3 keeps this attention (V3 Technical Report §2.1.1).
    """
    values = _check_count("n_layers", n_layers) * (
        _check_count("kv_lora_rank", kv_lora_rank) + _check_count("qk_rope_head_dim", qk_rope_head_dim)
    )
    values *= _check_count("seq_len", seq_len, 0) * _check_count("batch", batch)
    return values * _check_bytes_per_value(bytes_per_value)


def cache_bytes_per_token(cfg: ModelConfig, bytes_per_value=2):
    """Bytes one token adds to the cache of model ``cfg`` (all layers): :func:`mla_cache_bytes` when the model uses
    MLA, else :func:`kv_cache_bytes`.

    In bf16: Llama-2-7B 524,288 (512 KiB), Llama-3-8B 131,072 (128 KiB), Llama-3-70B 327,680 (320 KiB), Falcon-7B
    8,192 (8 KiB), DeepSeek-V3 70,272 (about 68.6 KiB).
    """
    if cfg.uses_mla:
        return mla_cache_bytes(cfg.num_hidden_layers, cfg.kv_lora_rank, cfg.qk_rope_head_dim, 1, 1, bytes_per_value)
    return kv_cache_bytes(cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim, 1, 1, bytes_per_value)


# ------------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class KVCache:
    """Keys ``(..., H_kv, t, E)`` and values ``(..., H_kv, t, Ev)`` of the t tokens seen so far."""

    k: np.ndarray
    v: np.ndarray

    @property
    def length(self) -> int:
        """t, the number of cached tokens."""
        return self.k.shape[-2]


def _check_step(q_t: np.ndarray, k_t: np.ndarray, v_t: np.ndarray, cache: KVCache | None) -> int:
    """Validate one decoding step's shapes; return the group size H / H_kv."""
    for name, a in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)):
        if a.ndim < 3:
            raise ValueError(f"{name} must be (..., heads, 1, dim), got shape {a.shape}")
        if a.shape[-2] != 1:
            raise ValueError(
                f"{name} must hold one token (axis -2 of length 1), got shape {a.shape}; "
                "use decode_with_cache for a whole sequence"
            )
    if k_t.shape[:-1] != v_t.shape[:-1]:
        raise ValueError(f"k_t {k_t.shape} and v_t {v_t.shape} must agree on all but the last axis")
    if q_t.shape[:-3] != k_t.shape[:-3]:
        raise ValueError(f"q_t {q_t.shape} and k_t {k_t.shape} must have the same batch axes (all before heads)")
    if q_t.shape[-1] != k_t.shape[-1]:
        raise ValueError(f"queries and keys must have the same dim E, got {q_t.shape[-1]} and {k_t.shape[-1]}")
    n_heads, n_kv_heads = q_t.shape[-3], k_t.shape[-3]
    if n_heads % n_kv_heads:
        raise ValueError(
            f"query heads ({n_heads}) must be a multiple of key/value heads ({n_kv_heads}): each group of "
            "H / H_kv query heads shares one KV head"
        )
    if cache is not None:
        for name, new, old in (("k", k_t, cache.k), ("v", v_t, cache.v)):
            if old.ndim != new.ndim or old.shape[:-2] != new.shape[:-2] or old.shape[-1] != new.shape[-1]:
                raise ValueError(
                    f"cache.{name} {old.shape} does not fit {name}_t {new.shape}: expected (..., H_kv, t, E)"
                )
        if cache.k.shape[-2] != cache.v.shape[-2]:
            raise ValueError(f"cache.k holds {cache.k.shape[-2]} tokens but cache.v {cache.v.shape[-2]}")
    return n_heads // n_kv_heads


def attention_step(q_t, k_t, v_t, cache: KVCache | tuple | None = None, *, scale: float | None = None):
    """One decoding step: append this token's key and value to the cache, then attend from its query over all of them.

    No mask is needed: the newest token may see every cached token and itself.

    Parameters
    ----------
    q_t
        ``(..., H, 1, E)``, the new token's queries.
    k_t, v_t
        ``(..., H_kv, 1, E)`` and ``(..., H_kv, 1, Ev)``, its keys and values; H must be a multiple of H_kv.
    cache
        None before the first token, else the :class:`KVCache` (or a ``(k, v)`` pair) returned by the last step.
    scale
        Default 1/√E.

    Returns
    -------
    (out, cache)
        ``out`` ``(..., H, 1, Ev)``; the new :class:`KVCache`, one token longer.

    References
    ----------
    HF ``DynamicCache.update`` (concatenate along the sequence axis) then attention with ``repeat_kv``; Ainslie et
    al. 2023 (GQA); Shazeer 2019 (MQA).
    """
    q_t, k_t, v_t = (np.asarray(a, dtype=np.float64) for a in (q_t, k_t, v_t))
    if cache is not None and not isinstance(cache, KVCache):
        cache = KVCache(*(np.asarray(a, dtype=np.float64) for a in cache))
    group = _check_step(q_t, k_t, v_t, cache)
    if cache is not None:
        k_t, v_t = np.concatenate([cache.k, k_t], axis=-2), np.concatenate([cache.v, v_t], axis=-2)
    new_cache = KVCache(k_t, v_t)
    # Split the query heads into (H_kv, group): head h = kv·group + r reads KV head kv = h // group, as repeat_kv;
    # the shared keys and values broadcast over the group axis instead of being copied.
    *batch, n_heads, _, dim = q_t.shape
    grouped_q = q_t.reshape(*batch, n_heads // group, group, 1, dim)
    out, _ = scaled_dot_product_attention(grouped_q, k_t[..., None, :, :], v_t[..., None, :, :], scale=scale)
    return out.reshape(*batch, n_heads, 1, out.shape[-1]), new_cache


def decode_with_cache(q, k, v, *, scale: float | None = None) -> np.ndarray:
    """Causal attention computed the way a decoder generates: one :func:`attention_step` per token, growing the cache.

    Equals full causal attention (``torch``'s ``is_causal=True``) over the whole sequence.

    Parameters
    ----------
    q
        ``(..., H, L, E)``.
    k, v
        ``(..., H_kv, L, E)`` and ``(..., H_kv, L, Ev)``, H a multiple of H_kv.
    scale
        Default 1/√E.

    Returns
    -------
    ``(..., H, L, Ev)``
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.ndim < 3:
            raise ValueError(f"{name} must be (..., heads, L, dim), got shape {a.shape}")
    if not q.shape[-2] == k.shape[-2] == v.shape[-2]:
        raise ValueError(f"q, k and v must hold the same number of tokens L, got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-2] == 0:
        raise ValueError("the sequence is empty (L = 0)")
    _check_step(q[..., :1, :], k[..., :1, :], v[..., :1, :], None)  # all shape errors before the loop
    cache, outputs = None, []
    for i in range(q.shape[-2]):
        token = slice(i, i + 1)
        out, cache = attention_step(q[..., token, :], k[..., token, :], v[..., token, :], cache, scale=scale)
        outputs.append(out)
    return np.concatenate(outputs, axis=-2)


# ---------------------------------------------------------------------------------------------------------- work


@dataclass(frozen=True)
class AttentionFlops:
    """FLOPs of one attention layer for one new token (a multiply-add counts 2)."""

    kv_projection: int  # computing K and V from hidden states
    scores: int  # q·kᵀ for every query head and every visible key
    weighted_values: int  # softmax weights · V

    @property
    def total(self) -> int:
        return self.kv_projection + self.scores + self.weighted_values


def attention_flops_per_token(
    t: int, *, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int, use_cache: bool = True
) -> AttentionFlops:
    """FLOPs one attention layer spends on the t-th token of a sequence, with or without a KV cache.

    Counted: the K and V projections (d_model → H_kv·d_h each), the scores of the new token's H query heads against
    the t visible keys, and the softmax-weighted sum of the t values. With the cache only the new token is projected
    (2·2·d_model·H_kv·d_h); without it the keys and values of all t tokens are projected again, t times that. Scores
    and weighted values are 2·H·t·d_h each either way (GQA saves cache memory, not this arithmetic).

    Not counted, because it is the same both ways: the query and output projections, the MLP, the softmax itself. Nor
    that without a cache the earlier layers must also be rerun to get the prefix's hidden states: this is the saving in
    one layer given its inputs, a lower bound on the waste.

    Parameters
    ----------
    t
        Tokens visible to the new one, itself included (t ≥ 1).
    d_model, n_heads, n_kv_heads, head_dim
        Hidden size, query heads H, key/value heads H_kv (H a multiple of H_kv), per-head dim d_h.
    use_cache
        True: project only the new token's K and V; False: project all t tokens' again.

    Returns
    -------
    :class:`AttentionFlops`; multiply by the number of layers for the whole model.
    """
    t = _check_count("t", t)
    d_model, n_heads = _check_count("d_model", d_model), _check_count("n_heads", n_heads)
    n_kv_heads, head_dim = _check_count("n_kv_heads", n_kv_heads), _check_count("head_dim", head_dim)
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
    projected_tokens = 1 if use_cache else t
    return AttentionFlops(
        kv_projection=2 * 2 * d_model * n_kv_heads * head_dim * projected_tokens,
        scores=2 * n_heads * t * head_dim,
        weighted_values=2 * n_heads * t * head_dim,
    )
