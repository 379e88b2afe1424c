"""What KVCache draws equals independent computations: cache sizes from torch tensor sizes of the config's shapes, the
decode against torch's causal attention on one teacher-forced pass of the trained translator, published values
(the DeepSeek-V2 paper's 2.25 groups), and the helpers called again (read back from the scene's inventory)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scene_catalog import scene_classes

from shared.math.kv_cache import attention_flops_per_token
from shared.math.model_configs import MODEL_CONFIGS, parameter_count
from shared.runs import load_translator

KIB, GIB = 2**10, 2**30
CFG = sys.modules[scene_classes()["kv_cache"][0].__module__].CFG  # the scene's test sentence, drawn layer and head
LAYER, HEAD = CFG.layer, CFG.head


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("kv_cache", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def one_pass():
    """The trained translator's own translation of the test sentence, and ONE teacher-forced pass over it (all
    positions at once under the causal mask, as in training)."""
    run = load_translator()
    source = run.test_split[CFG.test_sentence].source
    translation = run.model.translate(source)
    return translation, run.model.activations(source, translation)


def cache_bytes(*shape) -> int:
    """Bytes of a bf16 tensor of this shape (a meta tensor: nothing is allocated)."""
    t = torch.empty(*shape, dtype=torch.bfloat16, device="meta")
    return t.numel() * t.element_size()


def test_sections(record):
    assert [s.name for s in record.sections] == [
        "一次只写一个词", "缓存一步长一行", "训练为什么不用", "显存账", "共享 KV 头", "MLA 压缩"]
    for name in ("显存账", "共享 KV 头", "MLA 压缩"):
        assert any("config.json" in line for line in record.section(name).fine_print)


def test_recomputing_counts(numbers, record, one_pass):
    """Step i needs positions 0..i: 1 + 2 + … + T key/value computations without a cache, T with it."""
    translation, _ = one_pass
    steps = len(translation) + 1  # <bos> and every token written; the last step writes <eos>
    assert numbers["kv_computed_without_cache"] == steps * (steps + 1) // 2
    assert numbers["kv_computed_with_cache"] == steps
    grid = record.section("一次只写一个词").plotted["kv_computed_per_step"]
    assert np.isfinite(grid["without_cache"]).sum() == numbers["kv_computed_without_cache"]


def test_real_model_flops(numbers):
    cfg = MODEL_CONFIGS["Llama-3-8B"]
    flops = {use: attention_flops_per_token(4096, d_model=cfg.hidden_size, n_heads=cfg.num_attention_heads,
                                            n_kv_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
                                            use_cache=use).total for use in (False, True)}
    assert numbers["flops_position"] == 4096
    assert numbers["flops_without_cache_g"] == pytest.approx(flops[False] / 1e9)
    assert numbers["flops_with_cache_g"] == pytest.approx(flops[True] / 1e9)
    assert numbers["flops_ratio"] == pytest.approx(flops[False] / flops[True])
    assert 800 < numbers["flops_ratio"] < 850  # the projection of t = 4096 keys and values again dominates


def test_cache_rows_are_the_one_pass_keys_and_values(record, one_pass):
    """Each row the cache appended at its step equals that position's key/value in one pass over the whole
    sentence, and the encoder's keys/values are the cross-attention's of that pass."""
    _, acts = one_pass
    drawn = record.section("缓存一步长一行").plotted
    self_att = acts.decoder_layers[LAYER].self_attention.attention
    cross = acts.decoder_layers[LAYER].cross_attention.attention
    np.testing.assert_allclose(drawn["k_cache"], self_att.k[HEAD], atol=1e-12)
    np.testing.assert_allclose(drawn["v_cache"], self_att.v[HEAD], atol=1e-12)
    np.testing.assert_allclose(drawn["cross_k"], cross.k[HEAD], rtol=0, atol=0)
    np.testing.assert_allclose(drawn["cross_v"], cross.v[HEAD], rtol=0, atol=0)


def test_cached_decode_equals_recomputing(numbers, one_pass):
    """The difference drawn is floating-point rounding: torch's causal attention over the one pass agrees with the
    model's outputs to the same tolerance."""
    _, acts = one_pass
    att = acts.decoder_layers[LAYER].self_attention.attention
    q, k, v = (torch.from_numpy(a) for a in (att.q, att.k, att.v))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    np.testing.assert_allclose(att.head_outputs, expected, atol=1e-12)
    assert 0 <= numbers["cached_vs_recomputed_max_difference"] < 1e-12


def test_training_pass_is_causal_attention(record, one_pass):
    _, acts = one_pass
    att = acts.decoder_layers[LAYER].self_attention.attention
    weights = record.section("训练为什么不用").plotted["one_pass_attention"]
    scores = torch.from_numpy(att.q[HEAD] @ att.k[HEAD].T / np.sqrt(att.q.shape[-1]))
    mask = torch.ones_like(scores, dtype=torch.bool).tril()
    expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    assert np.all(np.triu(weights, 1) == 0)


def test_memory_bill(numbers):
    cfg = MODEL_CONFIGS["Llama-3-8B"]
    layers, kv_heads, head_dim = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim
    for tokens in (4096, 32768, 131072):  # K and V: [2, layers, kv_heads, tokens, head_dim] in bf16
        assert numbers[f"cache_gib[{tokens}]"] == cache_bytes(2, layers, kv_heads, tokens, head_dim) / GIB
    assert numbers["cache_per_token_kib"] == cache_bytes(2, layers, kv_heads, 1, head_dim) / KIB == 128
    assert (numbers["n_layers"], numbers["n_kv_heads"], numbers["head_dim"]) == (layers, kv_heads, head_dim)
    assert numbers["cache_ratio"] == numbers["cache_gib[131072]"] / numbers["cache_gib[4096]"] == 32
    assert numbers["context_k"] == [4, 32, 128]
    # The weights in bf16: 8,030,261,248 parameters (Llama-3.1-8B's safetensors total, same shapes) × 2 bytes.
    assert parameter_count(cfg) == 8_030_261_248
    assert numbers["weights_gib"] == pytest.approx(8_030_261_248 * 2 / GIB)
    assert numbers["cache_gib[131072]"] > numbers["weights_gib"]  # the caption says the 128K cache outgrows them


def test_bytes_per_token_of_real_models(numbers):
    for name in ("Llama-2-7B", "Llama-3-70B", "Llama-3-8B", "Falcon-7B"):
        cfg = MODEL_CONFIGS[name]
        assert numbers[f"heads[{name}]_q"] == cfg.num_attention_heads
        assert numbers[f"heads[{name}]_kv"] == cfg.num_key_value_heads
        expected = cache_bytes(2, cfg.num_hidden_layers, cfg.num_key_value_heads, 1, cfg.head_dim) / KIB
        assert numbers[f"bytes_per_token_kib[{name}]"] == expected
    assert numbers["bytes_per_token_kib[Llama-2-7B]"] == 512  # MHA
    assert numbers["bytes_per_token_kib[Llama-3-8B]"] == 128  # GQA, 32 query heads over 8 KV heads
    assert numbers["bytes_per_token_kib[Falcon-7B]"] == 8  # MQA
    assert numbers["query_heads_per_kv_head"] == 4
    assert (numbers["largest_kib"], numbers["smallest_kib"]) == (512, 8)


def test_latent_cache(numbers):
    cfg = MODEL_CONFIGS["DeepSeek-V3"]
    layers = cfg.num_hidden_layers
    latent = cache_bytes(layers, cfg.kv_lora_rank + cfg.qk_rope_head_dim)  # c^KV and k^R per layer
    mha = cache_bytes(2, layers, cfg.num_attention_heads, 1, cfg.head_dim)
    gqa = cache_bytes(2, layers, MODEL_CONFIGS["Llama-3-70B"].num_key_value_heads, 1, cfg.head_dim)
    assert numbers["mla_compare_kib[MLA]"] == latent / KIB
    assert numbers["mla_compare_kib[MHA]"] == mha / KIB
    assert numbers["mla_compare_kib[GQA]"] == gqa / KIB
    assert numbers["mha_over_mla"] == pytest.approx(mha / latent)
    # DeepSeek-V2 paper §2.1.4: MLA's cache equals GQA's with only 2.25 groups.
    assert numbers["equivalent_kv_heads"] == 2.25
    assert numbers["mha_values_per_layer"] == 2 * cfg.num_attention_heads * cfg.head_dim
    assert (numbers["latent_dim"], numbers["rope_dim"]) == (512, 64)
