"""shared.math.model_configs: the config table's internal consistency, and parameter_count against published totals
and against torch modules of the same shapes.

Published totals: Llama-2-7B 6,738,415,616 is what ``model.num_parameters()`` reports for its shapes (PEFT's
``print_trainable_parameters`` "all params: 6738415616"; tables of HF model sizes list llama2-7b at 6738415616); the
Hugging Face safetensors totals of meta-llama/Llama-3.1-8B and meta-llama/Llama-3.1-70B are 8,030,261,248 and
70,553,706,496, and those models keep the shapes of Llama-3-8B and Llama-3-70B (Llama 3.1 changed the RoPE scaling and
context length only); llama.cpp reports ``general.parameter_count`` 8030261248 for Llama 3 8B (context length 8192).
The safetensors total of meta-llama/Llama-2-7b-hf, 6,738,417,664, is 2,048 = 32 × 64 higher, the size of the
per-layer rotary ``inv_freq`` buffers (head_dim / 2 each) older Llama checkpoints stored beside the weights.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from shared.math.model_configs import MODEL_CONFIGS, ModelConfig, parameter_count
from shared.math.moe import DeepSeekV3Config

LLAMAS = ["Llama-2-7B", "Llama-3-8B", "Llama-3-70B"]
MLA_FIELDS = ("q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


@pytest.mark.parametrize(
    "name,published", [("Llama-2-7B", 6_738_415_616), ("Llama-3-8B", 8_030_261_248), ("Llama-3-70B", 70_553_706_496)]
)
def test_parameter_count_matches_published_totals(name, published):
    assert parameter_count(MODEL_CONFIGS[name]) == published


def _torch_llama(cfg: ModelConfig) -> nn.Module:
    """The module tree of HF ``LlamaForCausalLM`` (weights only), built on the meta device so 70B costs no memory."""
    h, heads, kv, d, i = (
        cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.intermediate_size,
    )

    def layer() -> nn.Module:
        return nn.ModuleDict({
            "q_proj": nn.Linear(h, heads * d, bias=False),
            "k_proj": nn.Linear(h, kv * d, bias=False),
            "v_proj": nn.Linear(h, kv * d, bias=False),
            "o_proj": nn.Linear(heads * d, h, bias=False),
            "gate_proj": nn.Linear(h, i, bias=False),
            "up_proj": nn.Linear(h, i, bias=False),
            "down_proj": nn.Linear(i, h, bias=False),
            "input_layernorm": nn.RMSNorm(h),
            "post_attention_layernorm": nn.RMSNorm(h),
        })

    with torch.device("meta"):
        model = nn.ModuleDict({
            "embed_tokens": nn.Embedding(cfg.vocab_size, h),
            "layers": nn.ModuleList(layer() for _ in range(cfg.num_hidden_layers)),
            "norm": nn.RMSNorm(h),
            "lm_head": nn.Linear(h, cfg.vocab_size, bias=False),
        })
    if cfg.tie_word_embeddings:
        model["lm_head"].weight = model["embed_tokens"].weight  # .parameters() then yields it once
    return model


@pytest.mark.parametrize("name", LLAMAS)
@pytest.mark.parametrize("tied", [False, True])
def test_parameter_count_matches_torch_modules(name, tied):
    cfg = dataclasses.replace(MODEL_CONFIGS[name], tie_word_embeddings=tied)
    assert parameter_count(cfg) == sum(p.numel() for p in _torch_llama(cfg).parameters())


@pytest.mark.parametrize("name", ["Falcon-7B", "DeepSeek-V3"])
def test_parameter_count_refuses_other_architectures(name):
    with pytest.raises(ValueError, match="Llama-style"):
        parameter_count(MODEL_CONFIGS[name])


def test_table_keys_sources_and_attention_kinds():
    assert set(MODEL_CONFIGS) == {"Llama-2-7B", "Llama-3-8B", "Llama-3-70B", "Falcon-7B", "DeepSeek-V3"}
    for key, cfg in MODEL_CONFIGS.items():
        assert cfg.name == key
        assert cfg.source.endswith("/config.json") and cfg.source.count("/") == 2
    kv = {k: (c.num_attention_heads, c.num_key_value_heads) for k, c in MODEL_CONFIGS.items()}
    assert kv["Llama-2-7B"] == (32, 32)  # MHA
    assert kv["Llama-3-8B"] == (32, 8) and kv["Llama-3-70B"] == (64, 8)  # GQA
    assert kv["Falcon-7B"][1] == 1  # MQA
    assert [k for k, c in MODEL_CONFIGS.items() if c.uses_mla] == ["DeepSeek-V3"]


@pytest.mark.parametrize("name", list(MODEL_CONFIGS))
def test_each_config_is_consistent(name):
    cfg = MODEL_CONFIGS[name]
    assert cfg.num_attention_heads % cfg.num_key_value_heads == 0
    assert set(cfg.derived) <= {f.name for f in dataclasses.fields(ModelConfig)}
    mla = [getattr(cfg, f) for f in MLA_FIELDS]
    assert all(x is None for x in mla) or all(isinstance(x, int) for x in mla)
    if cfg.uses_mla:  # the DeepSeek-V2 paper's d_h: keys' non-RoPE part and values share it
        assert cfg.head_dim == cfg.qk_nope_head_dim == cfg.v_head_dim
    else:  # HF's head_dim default for these models: hidden_size // num_attention_heads
        assert cfg.head_dim * cfg.num_attention_heads == cfg.hidden_size
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.num_hidden_layers = 1


def test_deepseek_v3_agrees_with_the_moe_module():
    """shared.math.moe keeps its own DeepSeek-V3 config for the 671B-vs-37B count; the two must not drift apart."""
    ours, theirs = MODEL_CONFIGS["DeepSeek-V3"], DeepSeekV3Config()
    shared = {f.name for f in dataclasses.fields(DeepSeekV3Config)} & {f.name for f in dataclasses.fields(ModelConfig)}
    assert len(shared) >= 10
    assert {f: getattr(ours, f) for f in shared} == {f: getattr(theirs, f) for f in shared}
