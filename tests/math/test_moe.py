"""shared/math/moe.py against torch transcriptions of Mixtral/HF and DeepSeek-V3 routing, a small example worked by
hand, and DeepSeek-V3's parameter count against a torch module built from the same config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.math.moe import (
    DeepSeekV3Config,
    bias_balanced_routing,
    deepseek_v3_parameter_counts,
    expert_load,
    load_balancing_loss,
    top_k_routing,
    update_balance_bias,
)

RANDOM_CASES = 40


def random_logits(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    tokens = int(rng.integers(1, 64))
    n_experts = int(rng.integers(2, 17))
    k = int(rng.integers(1, n_experts + 1))
    return rng.normal(scale=rng.uniform(0.1, 5.0), size=(tokens, n_experts)), k


# --- torch references, written from the papers / library code, not from shared.math.moe ----------------------------


def torch_top_k_routing(logits: torch.Tensor, k: int, renormalize: bool = True):
    """HF ``MixtralSparseMoeBlock``: softmax over experts, torch.topk, divide by the kept sum."""
    probs = torch.softmax(logits, dim=-1)
    weights, indices = torch.topk(probs, k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return indices, weights


def torch_load_balancing_loss_func(gate_logits: tuple[torch.Tensor, ...], num_experts: int, top_k: int):
    """Transcription of HF ``transformers.models.mixtral.modeling_mixtral.load_balancing_loss_func`` (no mask)."""
    concatenated_gate_logits = torch.cat(list(gate_logits), dim=0)
    routing_weights = F.softmax(concatenated_gate_logits, dim=-1)
    _, selected_experts = torch.topk(routing_weights, top_k, dim=-1)
    expert_mask = F.one_hot(selected_experts, num_experts)
    # HF writes expert_mask.float(); float64 here so that the comparison can be tight.
    tokens_per_expert = torch.mean(expert_mask.to(routing_weights.dtype), dim=0)
    router_prob_per_expert = torch.mean(routing_weights, dim=0)
    overall_loss = torch.sum(tokens_per_expert * router_prob_per_expert.unsqueeze(0))
    return overall_loss * num_experts


def torch_deepseek_v3_gate(logits: torch.Tensor, bias: torch.Tensor, k: int, route_scale: float):
    """DeepSeek-V3 ``inference/model.py`` ``Gate.forward`` with score_func='sigmoid' and n_groups=1."""
    scores = logits.sigmoid()
    original_scores = scores
    scores = scores + bias
    indices = torch.topk(scores, k, dim=-1)[1]
    weights = original_scores.gather(1, indices)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return indices, weights * route_scale


# --- a small example, worked by hand -----------------------------------------------------------------------------

EXAMPLE_LOGITS = [[2, 1, 0.5, -1], [0.1, 0.2, 0.3, 0.4], [3, -2, 0, 1]]


def test_example_top2():
    """Renormalised top-2 weights are σ(gap) and 1 − σ(gap), gap = the difference of the two largest logits."""
    indices, weights = top_k_routing(EXAMPLE_LOGITS, 2)
    np.testing.assert_array_equal(indices, [[0, 1], [3, 2], [0, 3]])  # the two largest logits of each row
    first = torch.sigmoid(torch.tensor([2 - 1, 0.4 - 0.3, 3 - 1], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(weights, np.stack([first, 1 - first], axis=1), rtol=1e-12)


def test_example_switch_loss():
    """k = 1: tokens go to experts 0, 3, 0, so f = (2/3, 0, 0, 1/3); P = the mean softmax row; loss = 4·Σ f·P."""
    probs = torch.softmax(torch.tensor(EXAMPLE_LOGITS, dtype=torch.float64), dim=-1).mean(dim=0)
    expected = 4 * (2 / 3 * probs[0] + 1 / 3 * probs[3]).item()
    assert load_balancing_loss(EXAMPLE_LOGITS, k=1) == pytest.approx(expected, rel=1e-12)


# --- top_k_routing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("renormalize", [True, False])
def test_top_k_routing_matches_torch(renormalize):
    rng = np.random.default_rng(0)
    for _ in range(RANDOM_CASES):
        logits, k = random_logits(rng)
        indices, weights = top_k_routing(logits, k, renormalize=renormalize)
        ref_indices, ref_weights = torch_top_k_routing(torch.from_numpy(logits), k, renormalize)
        np.testing.assert_array_equal(indices, ref_indices.numpy())
        np.testing.assert_allclose(weights, ref_weights.numpy(), rtol=1e-12, atol=1e-15)


def test_renormalised_top_k_is_softmax_over_top_k_logits():
    """Mixtral's formulation: softmax of the k largest logits."""
    rng = np.random.default_rng(1)
    for _ in range(RANDOM_CASES):
        logits, k = random_logits(rng)
        top_logits, _ = torch.topk(torch.from_numpy(logits), k, dim=-1)
        _, weights = top_k_routing(logits, k)
        np.testing.assert_allclose(weights, torch.softmax(top_logits, dim=-1).numpy(), rtol=1e-12)


def test_top_k_routing_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be between"):
        top_k_routing(EXAMPLE_LOGITS, 5)
    with pytest.raises(ValueError, match="2-D"):
        top_k_routing([1.0, 2.0], 1)


# --- load_balancing_loss ---------------------------------------------------------------------------------------------


def test_load_balancing_loss_matches_hf_transcription():
    rng = np.random.default_rng(2)
    for _ in range(RANDOM_CASES):
        logits, k = random_logits(rng)
        n_experts = logits.shape[1]
        # HF takes a tuple of per-layer logits and concatenates them: split ours in two "layers".
        split = logits.shape[0] // 2
        layers = (torch.from_numpy(logits[:split]), torch.from_numpy(logits[split:]))
        ref = torch_load_balancing_loss_func(layers, n_experts, k).item()
        assert load_balancing_loss(logits, k) == pytest.approx(ref, rel=1e-12)


@given(n_experts=st.integers(2, 16), k=st.integers(1, 16), sharpness=st.floats(0.1, 20.0))
@settings(max_examples=50, deadline=None)
def test_load_balancing_loss_is_k_at_perfect_balance(n_experts, k, sharpness):
    """Circulant logits: every expert is chosen equally often and has mean probability 1/N, so the loss is k."""
    k = min(k, n_experts)
    ranks = (np.arange(n_experts)[None, :] - np.arange(n_experts)[:, None]) % n_experts
    logits = -sharpness * ranks  # token t prefers expert t, then t+1, ...
    assert load_balancing_loss(logits, k) == pytest.approx(k, rel=1e-12)


def test_load_balancing_loss_collapse_approaches_n():
    """Everything confidently sent to expert 0 (k=1): f_0 = 1, P_0 → 1, loss → N."""
    n_experts = 8
    logits = np.zeros((32, n_experts))
    logits[:, 0] = 30.0
    assert load_balancing_loss(logits, 1) == pytest.approx(n_experts, rel=1e-9)


# --- bias_balanced_routing and update_balance_bias -------------------------------------------------------------------


def test_bias_balanced_routing_matches_deepseek_gate():
    rng = np.random.default_rng(3)
    for _ in range(RANDOM_CASES):
        logits, k = random_logits(rng)
        bias = rng.normal(scale=0.3, size=logits.shape[1])
        route_scale = float(rng.choice([1.0, 2.5]))
        indices, weights = bias_balanced_routing(logits, bias, k, route_scale=route_scale)
        ref_indices, ref_weights = torch_deepseek_v3_gate(
            torch.from_numpy(logits), torch.from_numpy(bias), k, route_scale
        )
        np.testing.assert_array_equal(indices, ref_indices.numpy())
        np.testing.assert_allclose(weights, ref_weights.numpy(), rtol=1e-12)


def test_bias_chooses_but_does_not_weight():
    """A huge bias forces an expert into every token's top-k, yet its weight is still its plain sigmoid share."""
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(20, 8))
    bias = np.zeros(8)
    bias[5] = 100.0
    indices, weights = bias_balanced_routing(logits, bias, 2)
    assert (indices[:, 0] == 5).all()
    affinity = torch.sigmoid(torch.from_numpy(logits)).numpy()
    chosen = np.take_along_axis(affinity, indices, axis=-1)
    np.testing.assert_allclose(weights[:, 0], chosen[:, 0] / chosen.sum(axis=-1), rtol=1e-12)


def test_update_balance_bias_follows_the_papers_rule():
    """DeepSeek-V3 §2.1.2 in words, one expert at a time: overloaded (above the mean load) → bias − γ, underloaded →
    bias + γ, exactly at the mean → unchanged."""
    rng = np.random.default_rng(5)
    for _ in range(RANDOM_CASES):
        n_experts = int(rng.integers(2, 17))
        bias = rng.normal(size=n_experts)
        load = rng.integers(0, 50, size=n_experts)
        load[0] = load[1:].sum() // (n_experts - 1) if rng.random() < 0.3 else load[0]  # sometimes near the mean
        gamma = float(rng.uniform(1e-4, 0.1))
        mean = torch.tensor(load, dtype=torch.float64).mean().item()
        expected = [b - gamma if n > mean else b + gamma if n < mean else b for b, n in zip(bias, load)]
        np.testing.assert_allclose(update_balance_bias(bias, load, gamma), expected, rtol=1e-15)
    np.testing.assert_array_equal(update_balance_bias([0.5, -0.2, 0.1], [3, 1, 2], 0.1), [0.4, -0.1, 0.1])


def test_bias_updates_even_out_a_skewed_router():
    """Repeated ±γ updates on a fixed skewed batch bring the busiest expert down to near the mean load."""
    rng = np.random.default_rng(6)
    n_experts, k = 8, 2
    logits = rng.normal(size=(512, n_experts)) + np.linspace(0, 3, n_experts)  # expert 7 favoured
    bias = np.zeros(n_experts)
    start = expert_load(bias_balanced_routing(logits, bias, k)[0], n_experts)
    for _ in range(400):
        load = expert_load(bias_balanced_routing(logits, bias, k)[0], n_experts)
        bias = update_balance_bias(bias, load, 0.01)
    mean = 512 * k / n_experts
    assert start.max() > 2 * mean
    assert load.max() < 1.2 * mean


def test_expert_load_matches_bincount():
    rng = np.random.default_rng(7)
    for _ in range(RANDOM_CASES):
        n_experts = int(rng.integers(1, 17))
        indices = rng.integers(0, n_experts, size=(int(rng.integers(0, 40)), 2))
        ref = torch.bincount(torch.from_numpy(indices).flatten(), minlength=n_experts)
        np.testing.assert_array_equal(expert_load(indices, n_experts), ref.numpy())
    with pytest.raises(ValueError, match="expert indices"):
        expert_load([[0, 4]], 4)


# --- DeepSeek-V3 parameter count -------------------------------------------------------------------------------------


class RMSNorm(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight)


class SwiGLU(torch.nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.gate_proj = torch.nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = torch.nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = torch.nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MLA(torch.nn.Module):
    """Shapes of HF ``DeepseekV3Attention``; forward for a single token (attention to itself only)."""

    def __init__(self, c: DeepSeekV3Config):
        super().__init__()
        self.c = c
        h, nh = c.hidden_size, c.num_attention_heads
        self.q_a_proj = torch.nn.Linear(h, c.q_lora_rank, bias=False)
        self.q_a_layernorm = RMSNorm(c.q_lora_rank)
        self.q_b_proj = torch.nn.Linear(c.q_lora_rank, nh * (c.qk_nope_head_dim + c.qk_rope_head_dim), bias=False)
        self.kv_a_proj_with_mqa = torch.nn.Linear(h, c.kv_lora_rank + c.qk_rope_head_dim, bias=False)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank)
        self.kv_b_proj = torch.nn.Linear(c.kv_lora_rank, nh * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        self.o_proj = torch.nn.Linear(nh * c.v_head_dim, h, bias=False)

    def forward(self, x):  # x: (1, h)
        c = self.c
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        compressed = self.kv_a_proj_with_mqa(x)
        kv = self.kv_b_proj(self.kv_a_layernorm(compressed[:, : c.kv_lora_rank]))
        v = kv.view(1, c.num_attention_heads, -1)[..., c.qk_nope_head_dim :]  # one token: softmax weight is 1
        assert q.shape[-1] == c.num_attention_heads * (c.qk_nope_head_dim + c.qk_rope_head_dim)
        return self.o_proj(v.reshape(1, -1))


class Gate(torch.nn.Module):
    def __init__(self, c: DeepSeekV3Config):
        super().__init__()
        self.k = c.num_experts_per_tok
        self.weight = torch.nn.Parameter(torch.randn(c.n_routed_experts, c.hidden_size))
        self.e_score_correction_bias = torch.nn.Parameter(torch.zeros(c.n_routed_experts))

    def forward(self, x):
        return torch_deepseek_v3_gate(x @ self.weight.T, self.e_score_correction_bias, self.k, 1.0)


class MoE(torch.nn.Module):
    def __init__(self, c: DeepSeekV3Config):
        super().__init__()
        self.gate = Gate(c)
        self.experts = torch.nn.ModuleList(
            SwiGLU(c.hidden_size, c.moe_intermediate_size) for _ in range(c.n_routed_experts)
        )
        self.shared_experts = SwiGLU(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts)

    def forward(self, x):
        indices, weights = self.gate(x)
        out = self.shared_experts(x)
        for slot in range(indices.shape[1]):
            out = out + weights[0, slot] * self.experts[int(indices[0, slot])](x)
        return out


class DecoderLayer(torch.nn.Module):
    def __init__(self, c: DeepSeekV3Config, layer_index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size)
        self.self_attn = MLA(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size)
        dense = layer_index < c.first_k_dense_replace
        self.mlp = SwiGLU(c.hidden_size, c.intermediate_size) if dense else MoE(c)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class TinyDeepSeekV3(torch.nn.Module):
    def __init__(self, c: DeepSeekV3Config):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = torch.nn.ModuleList(DecoderLayer(c, i) for i in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size)
        self.lm_head = torch.nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def forward(self, token):
        x = self.embed_tokens(token)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


TINY = DeepSeekV3Config(
    vocab_size=50, hidden_size=12, intermediate_size=27, moe_intermediate_size=3, num_hidden_layers=5,
    first_k_dense_replace=2, n_routed_experts=16, n_shared_experts=1, num_experts_per_tok=3, num_attention_heads=4,
    q_lora_rank=6, kv_lora_rank=5, qk_nope_head_dim=4, qk_rope_head_dim=2, v_head_dim=3,
)  # fmt: skip


def test_parameter_counts_match_a_torch_model_of_the_same_config():
    torch.manual_seed(0)
    model = TinyDeepSeekV3(TINY)
    counts = deepseek_v3_parameter_counts(TINY)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    # Active: parameters of the modules that actually ran for one token.
    ran: set[torch.nn.Module] = set()
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            module.register_forward_hook(lambda m, args, out: ran.add(m))
    with torch.no_grad():
        model(torch.tensor([7]))
    assert counts["active"] == sum(p.numel() for m in ran for p in m.parameters(recurse=False))
    assert counts["active"] < counts["total"]


def test_parameter_count_parts_match_the_torch_modules():
    """Each part of the count against the parameters of the torch modules it names."""
    model = TinyDeepSeekV3(TINY)
    parts = deepseek_v3_parameter_counts(TINY)["parts"]
    moe_layers = [layer.mlp for layer in model.layers if isinstance(layer.mlp, MoE)]

    def size(*modules) -> int:
        return sum(p.numel() for m in modules for p in m.parameters())

    expected = {
        "embedding": size(model.embed_tokens),
        "output_head": size(model.lm_head),
        "final_norm": size(model.norm),
        "attention": size(*(layer.self_attn for layer in model.layers)),
        "layer_norms": size(*(n for layer in model.layers for n in (layer.input_layernorm,
                                                                    layer.post_attention_layernorm))),
        "dense_ffn": size(*(layer.mlp for layer in model.layers if isinstance(layer.mlp, SwiGLU))),
        "shared_experts": size(*(m.shared_experts for m in moe_layers)),
        "routed_experts": size(*(m.experts for m in moe_layers)),
        "routers": size(*(m.gate for m in moe_layers)),
    }
    assert {name: part["total"] for name, part in parts.items()} == expected
    chosen = TINY.num_experts_per_tok * size(moe_layers[0].experts[0])  # per MoE layer, per token
    assert parts["routed_experts"]["active"] == len(moe_layers) * chosen


def test_deepseek_v3_lands_on_published_671b_and_37b():
    """DeepSeek-V3 Technical Report: 671B total, 37B activated per token; model card: 685B with the 14B MTP module."""
    main = deepseek_v3_parameter_counts()
    with_mtp = deepseek_v3_parameter_counts(include_mtp=True)
    assert main["total"] / 1e9 == pytest.approx(671, rel=0.002)
    assert main["active"] / 1e9 == pytest.approx(37, rel=0.02)  # 37.55B, reported rounded down
    assert with_mtp["total"] / 1e9 == pytest.approx(685, rel=0.002)
    assert with_mtp["parts"]["mtp"]["total"] / 1e9 == pytest.approx(14, rel=0.05)  # 13.46B, reported as 14B


def test_nine_active_experts_equal_one_dense_ffn():
    """DeepSeek-V3 sizes experts so that 1 shared + 8 routed experts are exactly one dense FFN (18432 = 9·2048)."""
    c = DeepSeekV3Config()
    counts = deepseek_v3_parameter_counts(c)
    n_moe = c.num_hidden_layers - c.first_k_dense_replace
    parts = counts["parts"]
    per_layer_active_experts = (parts["routed_experts"]["active"] + parts["shared_experts"]["active"]) / n_moe
    assert per_layer_active_experts == parts["dense_ffn"]["total"] / c.first_k_dense_replace
