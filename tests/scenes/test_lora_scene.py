"""What LoRALowRank draws equals independent computations: the committed runs' logs read directly, singular values
and random baselines from torch, parameter counts from torch tensor sizes, the merge recomputed in torch, and the
training memory from the ZeRO paper's bytes per parameter (read back from the scene's inventory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from shared.math.model_configs import MODEL_CONFIGS
from shared.runs import LORA_RUNS_DIR, load_lora_run, short_device_name

RANKS = (1, 2, 4, 8)
FOCUS_RUN, MERGE_RUN = "lora_r2", "lora_r8"  # LoRAConfig.picture_run, merge_run
# Rajbhandari et al. 2020, ZeRO §3.1: mixed-precision Adam keeps 2 (fp16 weights) + 2 (fp16 gradients) + 12 (fp32
# master weights, momentum, variance) bytes per trained parameter.
WEIGHT_BYTES, TRAINING_BYTES = 2, 16


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("lora", "16:9")
    return record


@pytest.fixture(scope="module")
def logs():
    names = ["full", *(f"lora_r{r}" for r in RANKS)]
    return {n: json.loads((LORA_RUNS_DIR / f"{n}.json").read_text(encoding="utf-8")) for n in names}


def focus_matrix(logs) -> str:
    """The attention matrix the full fine-tune changed most relative to its size, from the log alone."""
    delta = {n: d for n, d in logs["full"]["delta"].items() if "attention/w_" in n}
    return max(delta, key=lambda n: delta[n]["frobenius"] / delta[n]["base_frobenius"])


def test_sections_and_provenance(record, logs):
    assert [s.name for s in record.sections] == ["冻住 W 只训 BA", "改变集中在主方向", "秩与准确率", "会不会忘",
                                                 "合并后零延迟", "显存账"]  # fmt: skip
    for name, run in (("冻住 W 只训 BA", FOCUS_RUN), ("改变集中在主方向", "full"), ("秩与准确率", "lora_r8"),
                      ("合并后零延迟", MERGE_RUN)):  # fmt: skip
        prov = logs[run]["provenance"]
        (line,) = record.section(name).fine_print
        assert short_device_name(prov["device"]) in line and f"{prov['wall_seconds']:.0f} 秒" in line
        assert f"{logs[run]['config']['steps']} 步" in line
    assert "config.json" in record.section("显存账").fine_print[0]
    for s in record.sections:
        assert all(beat["text"] for beat in s.narration) and s.narration  # every section is narrated


def test_adapter_shapes_and_counts(record, logs):
    numbers = record.section("冻住 W 只训 BA").numbers
    arrays = np.load(LORA_RUNS_DIR / f"{FOCUS_RUN}.npz")
    focus = focus_matrix(logs)
    a, b = arrays[f"{focus}/lora_a"], arrays[f"{focus}/lora_b"]
    assert numbers["rank"]["value"] == a.shape[0] == b.shape[1] == 2
    assert numbers["adapter_params"]["value"] == a.size + b.size == 64
    assert numbers["weight_params"]["value"] == b.shape[0] * a.shape[1] == 256
    d = MODEL_CONFIGS["Llama-3-8B"].hidden_size
    lora = torch.empty(8, d, device="meta").numel() + torch.empty(d, 8, device="meta").numel()
    assert numbers["big_share"]["value"] == pytest.approx(lora / torch.empty(d, d, device="meta").numel())
    assert numbers["big_share"]["text"] == "0.39%"


def test_spectrum_shares_are_the_logged_singular_values(record, logs):
    s = record.section("改变集中在主方向")
    sigma = {n: np.array(d["singular_values"]) for n, d in logs["full"]["delta"].items() if "attention/w_" in n}
    energy = {n: np.cumsum(v**2) / np.sum(v**2) for n, v in sigma.items()}
    focus = focus_matrix(logs)
    assert s.numbers["top_share"]["value"] == pytest.approx(energy[focus][3], abs=1e-5)
    assert s.numbers["low_share"]["value"] == pytest.approx(min(e[3] for e in energy.values()), abs=1e-5)
    assert s.numbers["high_share"]["value"] == pytest.approx(max(e[3] for e in energy.values()), abs=1e-5)
    assert s.numbers["n_matrices"]["value"] == len(sigma) == 12
    np.testing.assert_allclose(s.plotted["delta_energy_cumulative"][1:], energy[focus], atol=1e-5)
    # the random baseline: Gaussian 16×16 matrices drawn by torch (the scene draws 200 with numpy)
    generator = torch.Generator().manual_seed(1)
    random = torch.linalg.svdvals(torch.randn(4000, 16, 16, generator=generator, dtype=torch.float64)) ** 2
    expected = float((random[:, :4].sum(1) / random.sum(1)).mean())
    assert s.numbers["random_share"]["value"] == pytest.approx(expected, abs=0.01)
    assert s.numbers["random_share"]["value"] < s.numbers["low_share"]["value"]  # "都比随机集中"


def test_accuracy_by_rank_is_the_logs(record, logs):
    s = record.section("秩与准确率")
    for r in RANKS:
        metrics = logs[f"lora_r{r}"]["metrics"]
        assert s.numbers[f"new_exact_match[r{r}]"]["value"] == metrics["new_exact_match"]
        assert s.numbers[f"trainable_parameters[r{r}]"]["value"] == metrics["trainable_parameters"]
    assert s.numbers["new_exact_match[full]"]["value"] == logs["full"]["metrics"]["new_exact_match"]
    assert s.numbers["trainable_parameters[full]"]["value"] == logs["full"]["metrics"]["trainable_parameters"]
    # "r = 1: 400 sentences, 1 right"; "r = 4 catches up with the full fine-tune"
    r1 = logs["lora_r1"]
    assert s.numbers["low_correct"]["value"] == round(r1["metrics"]["new_exact_match"] * r1["config"]["n_test"]) == 1
    caught_up = [r for r in RANKS if logs[f"lora_r{r}"]["metrics"]["new_exact_match"]
                 >= logs["full"]["metrics"]["new_exact_match"]]  # fmt: skip
    assert s.numbers["enough_rank"]["value"] == caught_up[0] == 4


def test_forgetting_is_the_logs(record, logs):
    s = record.section("会不会忘")
    for name in ("full", *(f"lora_r{r}" for r in RANKS)):
        key = "full" if name == "full" else name.removeprefix("lora_")
        assert s.numbers[f"original_exact_match[{key}]"]["value"] == logs[name]["metrics"]["original_exact_match"] == 0
    assert s.numbers["unplugged"]["value"] == logs["lora_r8"]["metrics"]["original_exact_match_without_adapter"] == 1


def test_merged_and_unmerged_outputs_agree_in_torch(record, logs):
    s = record.section("合并后零延迟")
    run = load_lora_run(MERGE_RUN)
    focus = focus_matrix(logs)
    a, b = (torch.tensor(m, dtype=torch.float64) for m in run.adapters()[focus])
    arrays = {k: torch.tensor(v, dtype=torch.float64) for k, v in np.load(LORA_RUNS_DIR.parent / "translator" /
                                                                           "zh_en.npz").items()}  # fmt: skip
    w, bias = arrays[focus], arrays[focus.replace("/w_", "/b_")]  # [in, out]: x @ w
    outputs = s.plotted["merge_outputs"]
    unmerged, merged = np.asarray(outputs["unmerged"]), np.asarray(outputs["merged"])
    # the input: what W_o multiplies (the concatenated heads) when the model translates the shortest test sentence
    pair = min(run.test_split, key=lambda p: len(p.source) + len(p.target))
    translation = run.model.translate(pair.source)
    acts = run.model.activations(pair.source, translation)
    x = torch.tensor(acts.decoder_layers[0].self_attention.attention.concatenated)
    assert focus == "decoder_layers/0/self_attention/w_o"
    scaling = run.log["config"]["scaling"]
    np.testing.assert_allclose(unmerged, (x @ w + bias + scaling * (x @ a.T) @ b.T).numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged, (x @ (w + scaling * (b @ a).T) + bias).numpy(), rtol=0, atol=1e-12)
    assert s.numbers["max_difference"]["value"] == float(np.abs(unmerged - merged).max()) < 1e-12
    assert translation == pair.target  # the merged model translates the sentence it shows
    assert s.numbers["n_params"]["value"] == sum(v.numel() for v in arrays.values()) == 11232


def llama_parameters(cfg) -> int:
    """Llama-3-8B's parameters as torch meta tensors of its shapes (HF LlamaForCausalLM, untied embeddings)."""
    d, ff, v = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    layer = [(q, d), (kv, d), (kv, d), (d, q), (ff, d), (ff, d), (d, ff), (d,), (d,)]
    tensors = [(v, d), (v, d), (d,)] + layer * cfg.num_hidden_layers
    return sum(torch.empty(*shape, device="meta").numel() for shape in tensors)


def test_memory_is_the_zero_accounting(record):
    s = record.section("显存账")
    cfg = MODEL_CONFIGS["Llama-3-8B"]
    n = llama_parameters(cfg)
    d, q, kv = cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    adapter = sum(torch.empty(8, fan_in, device="meta").numel() + torch.empty(fan_out, 8, device="meta").numel()
                  for fan_in, fan_out in [(d, q), (d, kv), (d, kv), (q, d)]) * cfg.num_hidden_layers  # fmt: skip
    assert s.numbers["memory_total_gb[full]"]["value"] == pytest.approx(n * TRAINING_BYTES / 1e9)
    lora = (n + adapter) * WEIGHT_BYTES + adapter * (TRAINING_BYTES - WEIGHT_BYTES)
    assert s.numbers["memory_total_gb[lora]"]["value"] == pytest.approx(lora / 1e9)
    assert s.numbers["per_param"]["value"] == TRAINING_BYTES
    assert s.numbers["adapter_m"]["value"] == pytest.approx(adapter / 1e6)
    assert s.numbers["memory_total_gb[full]"]["text"] == "128.5 GB" and s.numbers["lora_gb"]["text"] == "16"
