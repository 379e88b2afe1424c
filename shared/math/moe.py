"""Mixture-of-Experts routing in numpy: top-k gating, the load-balancing loss, DeepSeek-V3's bias balancing, and
DeepSeek-V3's total vs activated parameter count ("671B vs 37B").

Tested against torch transcriptions of Mixtral/HF and DeepSeek-V3 routing (``tests/math/test_moe.py``).
Shapes: ``logits`` is ``(tokens, n_experts)``; ``indices`` and ``weights`` are ``(tokens, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.math.attention import softmax


def _check_logits(logits, k: int) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (tokens, n_experts), got shape {logits.shape}")
    n_experts = logits.shape[-1]
    if not 1 <= k <= n_experts:
        raise ValueError(f"k must be between 1 and n_experts={n_experts}, got {k}")
    return logits


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, largest first (ties: lower expert index first)."""
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def top_k_routing(logits, k: int, *, renormalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-k softmax gating: softmax over all experts, keep the k largest, renormalise over those k.

    Renormalising the top-k of a softmax equals a softmax over the top-k logits (Mixtral's formulation).

    Parameters
    ----------
    logits
        Router logits ``(tokens, n_experts)``.
    k
        Experts per token.
    renormalize
        Divide the k kept probabilities by their sum (Mixtral, HF ``norm_topk_prob=True``); False keeps the raw
        softmax probabilities (Switch Transformer with k=1, HF Qwen-MoE default).

    Returns
    -------
    (indices, weights)
        ``(tokens, k)`` int64 expert indices sorted by weight, largest first, and their float64 weights.

    References
    ----------
    Shazeer et al. 2017 (noisy top-k gating, without the noise); Jiang et al. 2024 (Mixtral) §2.1;
    HF ``MixtralSparseMoeBlock.forward``: ``softmax`` → ``torch.topk`` → ``/= sum``.
    """
    logits = _check_logits(logits, k)
    probs = softmax(logits, axis=-1)
    indices = _top_k(probs, k)
    weights = np.take_along_axis(probs, indices, axis=-1)
    if renormalize:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    return indices, weights


def expert_load(indices, n_experts: int) -> np.ndarray:
    """Tokens per expert: how many (token, slot) pairs chose each expert; sums to tokens·k.

    Parameters
    ----------
    indices
        Chosen experts, any shape (usually ``(tokens, k)``), values in ``[0, n_experts)``.
    n_experts
        Number of experts N; experts nobody chose get 0.

    Returns
    -------
    np.ndarray
        ``(n_experts,)`` int64 counts (``torch.bincount(indices.flatten(), minlength=N)``).
    """
    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= n_experts):
        raise ValueError(f"expert indices must lie in [0, {n_experts}), got {indices.min()}..{indices.max()}")
    return np.bincount(indices.ravel().astype(np.int64), minlength=n_experts).astype(np.int64)


def load_balancing_loss(logits, k: int = 1) -> float:
    """Auxiliary load-balancing loss N·Σ_i f_i·P_i.

    ``f_i`` is the fraction of tokens whose top-k contains expert i (the top-k one-hot mask averaged over tokens,
    summed over the k slots), ``P_i`` the router's mean softmax probability for expert i. It is minimised by a
    uniform router and equals k at perfect balance (f_i = k/N, P_i = 1/N); a router that sends everything to the
    same k experts with confidence scores close to N.

    Parameters
    ----------
    logits
        Router logits ``(tokens, n_experts)``; for several layers, concatenate them along the tokens axis (as HF does).
    k
        Experts per token; k=1 is the Switch Transformer loss.

    Returns
    -------
    float
        The loss without its coefficient α (Switch: α = 0.01; Mixtral: ``router_aux_loss_coef`` = 0.02).

    References
    ----------
    Fedus et al. 2021 (Switch Transformer), eqs. (4)–(6); HF ``transformers.models.mixtral.modeling_mixtral.
    load_balancing_loss_func`` (no attention mask), whose convention for k > 1 this follows.
    """
    logits = _check_logits(logits, k)
    n_tokens, n_experts = logits.shape
    probs = softmax(logits, axis=-1)
    chosen = _top_k(probs, k)
    fraction_routed = expert_load(chosen, n_experts) / n_tokens  # f_i, sums to k
    mean_probability = probs.mean(axis=0)  # P_i, sums to 1
    return float(n_experts * np.sum(fraction_routed * mean_probability))


def router_affinity(logits) -> np.ndarray:
    """DeepSeek-V3's token-to-expert affinity s_i = sigmoid(logit_i), the score :func:`bias_balanced_routing`
    chooses and weights with (DeepSeek-V3 Technical Report §2.1.2, eq. (13))."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def bias_balanced_routing(logits, bias, k: int, *, route_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """DeepSeek-V3 auxiliary-loss-free routing: the bias chooses the experts but never weights them.

    s = sigmoid(logits); the k experts with the largest s + bias are chosen; their weights are the *unbiased*
    s of the chosen experts, normalised to sum to 1, times ``route_scale``.

    Parameters
    ----------
    logits
        Router logits (token-to-centroid affinities before the sigmoid) ``(tokens, n_experts)``.
    bias
        Per-expert balancing bias b_i ``(n_experts,)``, maintained by :func:`update_balance_bias`.
    k
        Routed experts per token (DeepSeek-V3: 8 of 256).
    route_scale
        Multiplies the normalised weights (DeepSeek-V3 ``routed_scaling_factor`` = 2.5).

    Returns
    -------
    (indices, weights)
        ``(tokens, k)`` expert indices sorted by s + bias, largest first (``torch.topk`` order), and their weights.

    References
    ----------
    DeepSeek-AI 2024, DeepSeek-V3 Technical Report §2.1.2, eqs. (12)–(16); ``Gate.forward`` in DeepSeek-V3
    ``inference/model.py`` with ``score_func="sigmoid"``. DeepSeek-V3 also restricts the choice to the best
    ``topk_group`` of ``n_group`` expert groups (node-limited routing); that is left out here.
    """
    logits = _check_logits(logits, k)
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (logits.shape[-1],):
        raise ValueError(f"bias must have shape ({logits.shape[-1]},), got {bias.shape}")
    affinity = router_affinity(logits)
    indices = _top_k(affinity + bias, k)
    chosen = np.take_along_axis(affinity, indices, axis=-1)
    return indices, chosen / chosen.sum(axis=-1, keepdims=True) * route_scale


def update_balance_bias(bias, expert_load, gamma: float) -> np.ndarray:
    """One bias update of DeepSeek-V3's auxiliary-loss-free balancing: b_i ← b_i − γ·sign(load_i − mean load).

    An overloaded expert's bias drops by γ (it is chosen less), an underloaded one's rises by γ; an expert exactly
    at the mean keeps its bias.

    Parameters
    ----------
    bias
        ``(n_experts,)`` current biases.
    expert_load
        ``(n_experts,)`` tokens per expert measured over the last step (:func:`expert_load`).
    gamma
        Bias update speed γ (DeepSeek-V3: 0.001 for most of pre-training, then 0).

    References
    ----------
    DeepSeek-V3 Technical Report §2.1.2 ("decrease the bias term by γ if its corresponding expert is overloaded
    and increase it by γ if its corresponding expert is underloaded"); Wang et al. 2024, *Auxiliary-Loss-Free Load
    Balancing Strategy for Mixture-of-Experts*, Algorithm 1.
    """
    bias = np.asarray(bias, dtype=np.float64)
    load = np.asarray(expert_load, dtype=np.float64)
    if bias.shape != load.shape:
        raise ValueError(f"bias {bias.shape} and expert_load {load.shape} must have the same shape")
    return bias - gamma * np.sign(load - load.mean())


# --- "671B vs 37B": total vs activated parameters ------------------------------------------------------------------


@dataclass(frozen=True)
class DeepSeekV3Config:
    """DeepSeek-V3's architecture, from its published ``config.json`` (field names as there)."""

    vocab_size: int = 129280
    hidden_size: int = 7168
    intermediate_size: int = 18432  # SwiGLU width of the dense FFN in the first layers
    moe_intermediate_size: int = 2048  # SwiGLU width of each expert (18432 = 9 × 2048)
    num_hidden_layers: int = 61
    first_k_dense_replace: int = 3  # layers 0..2 have a dense FFN, the other 58 an MoE FFN
    n_routed_experts: int = 256
    n_shared_experts: int = 1  # always active, beside the routed ones
    num_experts_per_tok: int = 8  # routed experts active per token
    num_attention_heads: int = 128
    # Multi-head latent attention (MLA): low-rank query and joint key/value compression.
    q_lora_rank: int = 1536
    kv_lora_rank: int = 512
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    tie_word_embeddings: bool = False  # separate input embedding and output head
    num_nextn_predict_layers: int = 1  # multi-token-prediction (MTP) modules, shipped beside the main model


def _swiglu_ffn_parameters(hidden: int, intermediate: int) -> int:
    """gate_proj, up_proj (hidden → intermediate) and down_proj (intermediate → hidden), no biases."""
    return 3 * hidden * intermediate


def _mla_parameters(c: DeepSeekV3Config) -> int:
    """One MLA block as in HF ``DeepseekV3Attention`` (no biases), with its two RMSNorm weights."""
    qk_head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim
    q_a = c.hidden_size * c.q_lora_rank + c.q_lora_rank  # q_a_proj + q_a_layernorm
    q_b = c.q_lora_rank * c.num_attention_heads * qk_head_dim  # q_b_proj
    kv_a = c.hidden_size * (c.kv_lora_rank + c.qk_rope_head_dim) + c.kv_lora_rank  # kv_a_proj_with_mqa + norm
    kv_b = c.kv_lora_rank * c.num_attention_heads * (c.qk_nope_head_dim + c.v_head_dim)  # kv_b_proj
    out = c.num_attention_heads * c.v_head_dim * c.hidden_size  # o_proj
    return q_a + q_b + kv_a + kv_b + out


def deepseek_v3_parameter_counts(config: DeepSeekV3Config | None = None, *, include_mtp: bool = False) -> dict:
    """Total and per-token activated parameters of a DeepSeek-V3-style MoE transformer.

    Counted: the input embedding and output head (separate matrices; the whole matrices count as active, as
    every dense model's count does), every layer's MLA attention with its norms, the two RMSNorms per layer, the dense
    SwiGLU FFN of the first ``first_k_dense_replace`` layers, and per MoE layer the shared and routed experts and the
    router (a centroid matrix plus the balancing bias). Active per token: everything except the routed experts a
    token does not choose. With ``include_mtp`` the multi-token-prediction module is added (one more MoE layer, two
    RMSNorms and a 2h → h projection; its embedding and head are shared with the main model but stored again in the
    checkpoint, so they are counted again, as the published 685B does). Not counted: FP8 scale tensors in the
    checkpoint.

    Returns
    -------
    dict
        ``{"total": int, "active": int, "parts": {name: {"total": int, "active": int}}}``; the parts sum to the
        totals. For the published config: 671,026,419,200 total, 37,552,297,472 active (main model), against the
        published "671B total, 37B activated" (DeepSeek-V3 Technical Report, abstract; the 685B on the model card
        adds the 14B MTP module).

    References
    ----------
    DeepSeek-V3 ``config.json``; HF ``modeling_deepseek.py`` (``DeepseekV3Attention``, ``DeepseekV3MoE``,
    ``MoEGate``); DeepSeek-V3 Technical Report §2.1, §2.2 (MTP), §4.2.
    """
    c = config or DeepSeekV3Config()
    h = c.hidden_size
    n_moe_layers = c.num_hidden_layers - c.first_k_dense_replace
    expert = _swiglu_ffn_parameters(h, c.moe_intermediate_size)
    router = c.n_routed_experts * h + c.n_routed_experts  # centroids + e_score_correction_bias
    per_layer_norms = 2 * h  # input_layernorm, post_attention_layernorm
    embedding = c.vocab_size * h
    head = embedding if not c.tie_word_embeddings else 0

    def part(total: int, active: int | None = None) -> dict[str, int]:
        return {"total": total, "active": total if active is None else active}

    parts = {
        "embedding": part(embedding),
        "output_head": part(head),
        "final_norm": part(h),
        "attention": part(c.num_hidden_layers * _mla_parameters(c)),
        "layer_norms": part(c.num_hidden_layers * per_layer_norms),
        "dense_ffn": part(c.first_k_dense_replace * _swiglu_ffn_parameters(h, c.intermediate_size)),
        "shared_experts": part(n_moe_layers * c.n_shared_experts * expert),
        "routed_experts": part(
            n_moe_layers * c.n_routed_experts * expert, n_moe_layers * c.num_experts_per_tok * expert
        ),
        "routers": part(n_moe_layers * router),
    }
    if include_mtp:
        mtp_layer_total = (
            _mla_parameters(c) + per_layer_norms + router + (c.n_shared_experts + c.n_routed_experts) * expert
        )
        mtp_layer_active = mtp_layer_total - (c.n_routed_experts - c.num_experts_per_tok) * expert
        # enorm + hnorm, eh_proj (2h → h), the final norm, and the stored copies of embedding and head.
        mtp_extra = 2 * h + 2 * h * h + h + embedding + head
        parts["mtp"] = part(
            c.num_nextn_predict_layers * (mtp_layer_total + mtp_extra),
            c.num_nextn_predict_layers * (mtp_layer_active + mtp_extra),
        )
    return {
        "total": sum(p["total"] for p in parts.values()),
        "active": sum(p["active"] for p in parts.values()),
        "parts": parts,
    }
