"""The numbers MoERouting shows (read back from the scene's record) are the helpers' outputs, checked against torch,
the raw run logs (parsed here without shared.runs) and DeepSeek-V3's published sizes."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import scene_classes

from shared.math.moe import DeepSeekV3Config, deepseek_v3_parameter_counts, load_balancing_loss
from shared.runs import MOE_RUNS_DIR, moe_claims, load_moe_run


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("moe", "16:9")
    return record.numbers


@pytest.fixture(scope="module")
def cfg():
    scene_classes()  # loads scenes/moe.py as module "scene_moe"
    return sys.modules["scene_moe"].CFG


def raw_log(name: str) -> dict:
    return json.loads((MOE_RUNS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def raw_shares(name: str) -> np.ndarray:
    """Percent of tokens per expert in each logged window, straight from the JSON."""
    log = raw_log(name)
    windows = np.array([r["load_window"] for r in log["history"]], dtype=float)
    return windows / (windows.sum(axis=1, keepdims=True) / log["config"]["top_k"]) * 100


def test_section_names(scene_run):
    record, _, _ = scene_run("moe", "16:9")
    assert [s.name for s in record.sections] == [
        "一个大 FFN vs 一群专家", "路由打分", "加权求和", "赢家通吃", "负载均衡 loss", "辅助 loss 拉平负载",
        "DeepSeek 不要辅助 loss", "偏置拉平负载", "671B 与 37B", "激活参数拆开看"]


def test_both_aspects_show_the_same_numbers(scene_run):
    land, _, _ = scene_run("moe", "16:9")
    port, _, _ = scene_run("moe", "9:16")
    assert land.numbers == port.numbers


# --- routing -----------------------------------------------------------------------------------------------------


def test_softmax_top2_matches_torch(numbers, cfg):
    logits = torch.tensor(numbers["toy_logits"], dtype=torch.float64)
    probs = torch.softmax(logits, dim=-1)
    np.testing.assert_allclose(numbers["toy_probs"], probs.numpy(), rtol=1e-12)
    top, index = torch.topk(probs, cfg.top_k)
    assert numbers["toy_top_k"] == index.tolist()
    np.testing.assert_allclose(numbers["toy_top_k_weights"], (top / top.sum()).numpy(), rtol=1e-12)
    assert sum(numbers["toy_top_k_weights"]) == pytest.approx(1.0)
    assert numbers["diagram_lit_experts"] == numbers["toy_top_k"]  # the first diagram lights the same two


def test_every_token_routes_by_torch_topk(numbers, cfg):
    logits = torch.tensor(numbers["toy_sentence_logits"], dtype=torch.float64)
    assert len(logits) == len(cfg.sentence)
    np.testing.assert_allclose(logits[cfg.focus_token].numpy(), numbers["toy_logits"], rtol=0, atol=0)
    assert numbers["toy_sentence_top_k"] == torch.topk(torch.softmax(logits, -1), cfg.top_k).indices.tolist()


def test_output_is_the_weighted_sum(numbers):
    outputs = np.array(numbers["toy_expert_outputs"])
    assert outputs.shape == (2, 4)
    np.testing.assert_allclose(numbers["toy_output"], np.array(numbers["toy_top_k_weights"]) @ outputs, rtol=1e-12)


def test_bias_chooses_but_does_not_weight(numbers, cfg):
    """DeepSeek-V3 selection written with torch: topk of sigmoid + bias, weights from the unbiased sigmoid."""
    logits = torch.tensor(numbers["toy_logits"], dtype=torch.float64)
    scores = logits.sigmoid()
    np.testing.assert_allclose(numbers["bias_demo_scores"], scores.numpy(), rtol=1e-12)
    bias = torch.tensor(numbers["bias_demo_bias"], dtype=torch.float64)
    assert (bias != 0).sum() == 1 and bias.min() == -cfg.bias_demo_penalty
    assert numbers["bias_demo_plain_choice"] == torch.topk(scores, cfg.top_k).indices.tolist()
    picked = torch.topk(scores + bias, cfg.top_k).indices
    assert numbers["bias_demo_choice"] == picked.tolist()
    np.testing.assert_allclose(numbers["bias_demo_weights"], (scores[picked] / scores[picked].sum()).numpy(),
                               rtol=1e-12)
    # What the caption says: the penalised favourite drops out and someone new is chosen.
    assert set(numbers["bias_demo_choice"]) != set(numbers["bias_demo_plain_choice"])
    assert numbers["bias_demo_plain_choice"][0] not in numbers["bias_demo_choice"]


# --- runs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, key", [("none", "none_claims"), ("aux_loss", "aux_claims"), ("bias", "bias_claims")])
def test_claims_are_moe_claims(numbers, name, key):
    assert numbers[key] == moe_claims(load_moe_run(name))


@pytest.mark.parametrize("name, key", [("none", "none_shares"), ("aux_loss", "aux_shares"), ("bias", "bias_shares")])
def test_bars_are_the_logged_windows(numbers, name, key):
    np.testing.assert_allclose(numbers[key], raw_shares(name), rtol=1e-12)


def test_collapse_claims_from_the_raw_log(numbers):
    claims, shares = numbers["none_claims"], raw_shares("none")[-1]
    assert claims["busiest_token_share"] * 100 == pytest.approx(shares.max())
    assert f"{claims['busiest_token_share']:.0%}" == "92%"  # what the caption reads
    assert claims["idle_experts"] == [e for e in range(8) if shares[e] == 0]
    assert numbers["none_input_offset"] == raw_log("none")["config"]["input_offset"] > 0
    calm = raw_log("none_no_offset")
    assert calm["config"]["input_offset"] == 0
    last = calm["history"][-1]["load_window"]
    assert numbers["none_no_offset_max_over_min"] == pytest.approx(max(last) / min(last))


def test_balancing_loss_numbers(numbers):
    # Perfect balance gives k: checked with the helper on circulant logits (every expert equally chosen).
    ranks = (np.arange(8)[None, :] - np.arange(8)[:, None]) % 8
    assert numbers["aux_loss_balanced"] == pytest.approx(load_balancing_loss(-3.0 * ranks, k=2)) == 2
    finals = numbers["aux_loss_final"]
    assert finals["none"] == raw_log("none")["history"][-1]["aux_loss"]
    assert finals["aux_loss"] == raw_log("aux_loss")["history"][-1]["aux_loss"]
    # What the captions say: the collapsed run sits far above the minimum, the balanced run close to it.
    assert finals["none"] - 2 > 10 * abs(finals["aux_loss"] - 2)
    assert numbers["aux_coef"] == raw_log("aux_loss")["config"]["aux_coef"]
    none_eval, aux_eval = numbers["eval_loss_none_vs_aux"]
    assert (none_eval, aux_eval) == (raw_log("none")["history"][-1]["eval_loss"],
                                     raw_log("aux_loss")["history"][-1]["eval_loss"])


def test_bias_history_numbers(numbers):
    biases = np.array([r["bias"] for r in raw_log("bias")["history"]])
    np.testing.assert_array_equal(numbers["bias_history"], biases)
    assert numbers["bias_lowest"] == biases.min()
    assert numbers["bias_most_penalised_expert"] == int(np.argmin(biases.min(axis=0)))
    steps = [r["step"] for r in raw_log("bias")["history"]]
    assert numbers["bias_lowest_step"] == steps[int(np.argmin(biases.min(axis=1)))]


# --- 671B vs 37B ---------------------------------------------------------------------------------------------------


def test_deepseek_counts(numbers):
    counts = deepseek_v3_parameter_counts()
    assert numbers["deepseek_total"] == counts["total"]
    assert numbers["deepseek_active"] == counts["active"]
    # The published "671B total, 37B activated" (DeepSeek-V3 Technical Report, abstract).
    assert round(numbers["deepseek_total"] / 1e9) == 671
    assert int(numbers["deepseek_active"] / 1e9) == 37
    assert numbers["deepseek_active_fraction"] == pytest.approx(numbers["deepseek_active"] / numbers["deepseek_total"])
    assert sum(numbers["deepseek_active_breakdown"].values()) == numbers["deepseek_active"]
    c = DeepSeekV3Config()
    assert numbers["deepseek_expert_params"] == 3 * 7168 * 2048 == 3 * c.hidden_size * c.moe_intermediate_size
    assert numbers["deepseek_idle_routed"] == (61 - 3) * (256 - 8) * 3 * 7168 * 2048
    for chosen in numbers["deepseek_demo_active_experts"]:
        assert len(set(chosen)) == c.num_experts_per_tok and all(0 <= e < c.n_routed_experts for e in chosen)
