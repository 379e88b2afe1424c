"""What MoERouting draws (read back from the scene's inventory of drawn numbers, plotted data and small print) equals
the helpers' outputs checked against torch, the raw run logs (parsed here with json, not shared.runs) and
DeepSeek-V3's published sizes."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch
from scene_catalog import scene_classes

from shared.math.moe import DeepSeekV3Config, deepseek_v3_parameter_counts
from shared.numbers import strip_marks
from shared.runs import EVEN_LOAD_TOLERANCE, load_moe_run, moe_run_path

HEADLINE = re.compile(r"(\d+)B 与 (\d+\.\d)B")


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("moe", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def scene():
    scene_classes()  # loads scenes/moe.py as module "scene_moe"
    return sys.modules["scene_moe"]


@pytest.fixture(scope="module")
def cfg(scene):
    return scene.CFG


def raw_log(name: str) -> dict:
    return json.loads(moe_run_path(name).read_text(encoding="utf-8"))


def raw_shares(name: str) -> np.ndarray:
    """Percent of tokens per expert in each logged window, straight from the JSON."""
    log = raw_log(name)
    windows = np.array([r["load_window"] for r in log["history"]], dtype=float)
    return windows / (windows.sum(axis=1, keepdims=True) / log["config"]["top_k"]) * 100


def max_over_min(counts) -> float | None:
    counts = np.asarray(counts, dtype=float)
    return None if counts.min() == 0 else float(counts.max() / counts.min())


def even_since(loads) -> int | None:
    """Index of the first window from which every later window has every expert within the tolerance of the mean."""
    loads = np.asarray(loads, dtype=float)
    mean = loads.mean(axis=1, keepdims=True)
    even = np.all(np.abs(loads - mean) <= EVEN_LOAD_TOLERANCE * mean, axis=1)
    if not even[-1]:
        return None
    return int(len(even) - np.argmin(even[::-1])) if not even.all() else 0


def test_section_names(record):
    names = [s.name for s in record.sections]
    assert names[:9] == [
        "一个大 FFN vs 一群专家", "路由打分", "加权求和", "赢家通吃", "负载均衡 loss", "辅助 loss 拉平负载",
        "DeepSeek 不要辅助 loss", "偏置拉平负载", "训练 batch 与留出集"]
    assert names[10] == "激活参数拆开看"
    # The DeepSeek section is named by what it counts: the published 671B total (DeepSeek-V3 Technical Report,
    # abstract) and the activated count of the helper, to one decimal (37.6B, the report rounds it down to 37B).
    total, active = HEADLINE.fullmatch(names[9]).groups()
    assert int(total) == 671
    assert float(active) == pytest.approx(deepseek_v3_parameter_counts()["active"] / 1e9, abs=0.05)
    shown = record.section(names[9]).numbers["deepseek_active_b"]["text"]  # the name's, then the figure's "37.6B"
    assert active == (shown if isinstance(shown, str) else shown[0])


def test_both_aspects_show_the_same_numbers(scene_run):
    """The same story in 16:9 and 9:16; only axes label fewer ticks where they are shorter."""
    land, _, _ = scene_run("moe", "16:9")
    port, _, _ = scene_run("moe", "9:16")
    story = lambda record: {k: v for k, v in record.numbers.items() if not k.endswith("_tick")}  # noqa: E731
    assert story(land) == story(port)
    assert land.numbers.keys() == port.numbers.keys()


# --- routing -----------------------------------------------------------------------------------------------------


def test_softmax_top2_matches_torch(record, cfg):
    shown = record.section("路由打分").numbers
    row = lambda name: [shown[f"{name}[{e}]"]["value"] for e in range(cfg.n_experts)]  # noqa: E731
    logits = torch.tensor(row("toy_logits"), dtype=torch.float64)
    probs = torch.softmax(logits, dim=-1)
    np.testing.assert_allclose(row("toy_probs"), probs.numpy(), rtol=1e-12)
    top, index = torch.topk(probs, cfg.top_k)
    assert [shown[f"toy_top_k[{i}]"]["value"] - 1 for i in range(cfg.top_k)] == index.tolist()  # E1 is index 0
    weights = [shown[f"toy_top_k_weights[{i}]"]["value"] for i in range(cfg.top_k)]
    np.testing.assert_allclose(weights, (top / top.sum()).numpy(), rtol=1e-12)
    assert shown["toy_top_k_weight_sum"]["value"] == pytest.approx(1.0)
    assert shown["toy_logits[0]"]["text"] == f"{logits[0].item():.2f}".replace("-", "−")
    # The first diagram lights the same two experts.
    assert record.section("一个大 FFN vs 一群专家").plotted["lit_experts"] == index.tolist()


def test_every_token_routes_by_torch_topk(numbers, cfg):
    """Each token's tags (E-numbers under it) are torch's top-k of the focus token's logits' row in the same
    random layer: recomputed here from the seeded toy inputs."""
    rng = np.random.default_rng(cfg.toy_seed)
    x = torch.tensor(rng.normal(size=(len(cfg.sentence), cfg.toy_dim)))
    w_router = torch.tensor(rng.normal(scale=cfg.router_std, size=(cfg.toy_dim, cfg.n_experts)))
    expected = torch.topk(torch.softmax(x @ w_router, -1), cfg.top_k).indices
    tags = [[numbers[f"toy_sentence_top_k[{t}][{j}]"] - 1 for j in range(cfg.top_k)] for t in range(len(cfg.sentence))]
    assert tags == expected.tolist()


def test_output_is_the_weighted_sum(numbers, cfg):
    outputs = np.array([numbers[f"toy_expert_outputs[{i}]"] for i in range(cfg.top_k)])
    assert outputs.shape == (cfg.top_k, cfg.toy_dim)
    weights = np.array([numbers[f"toy_top_k_weights[{i}]"] for i in range(cfg.top_k)])
    np.testing.assert_allclose(numbers["toy_output"], weights @ outputs, rtol=1e-12)


def test_bias_chooses_but_does_not_weight(record, cfg):
    """DeepSeek-V3 selection written with torch: topk of sigmoid + bias, weights from the unbiased sigmoid."""
    shown = record.section("DeepSeek 不要辅助 loss").numbers
    row = lambda name, n=cfg.n_experts: [shown[f"{name}[{i}]"]["value"] for i in range(n)]  # noqa: E731
    logits = torch.tensor([record.section("路由打分").numbers[f"toy_logits[{e}]"]["value"]
                           for e in range(cfg.n_experts)], dtype=torch.float64)
    scores = logits.sigmoid()
    np.testing.assert_allclose(row("bias_demo_scores"), scores.numpy(), rtol=1e-12)
    bias = torch.tensor(row("bias_demo_bias"), dtype=torch.float64)
    assert (bias != 0).sum() == 1 and bias.min() == -cfg.bias_demo_penalty
    np.testing.assert_allclose(row("bias_demo_biased_scores"), (scores + bias).numpy(), rtol=1e-12)
    plain = torch.topk(scores, cfg.top_k).indices
    assert [v - 1 for v in row("bias_demo_plain_choice", cfg.top_k)] == plain.tolist()
    picked = torch.topk(scores + bias, cfg.top_k).indices
    np.testing.assert_allclose(row("bias_demo_weights", cfg.top_k), (scores[picked] / scores[picked].sum()).numpy(),
                               rtol=1e-12)
    # What the caption says: the penalised favourite drops out and the newcomer is chosen instead.
    assert shown["bias_demo_penalised"]["value"] - 1 == plain[0].item() not in picked.tolist()
    assert [shown["bias_demo_newcomers[0]"]["value"] - 1] == [e for e in picked.tolist() if e not in plain.tolist()]


# --- runs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, run, section", [("none", "none", "赢家通吃"), ("aux_loss", "aux", "辅助 loss 拉平负载"),
                                                ("bias", "bias", "偏置拉平负载")])
def test_bars_are_the_logged_windows(record, name, run, section):
    np.testing.assert_allclose(record.section(section).plotted[f"{run}_shares"], raw_shares(name), rtol=1e-12)
    steps = record.section(section).numbers[f"{run}_step"]["value"]
    assert steps[-1] == raw_log(name)["history"][-1]["step"]  # the counter ends on the last logged step


def test_collapse_is_what_the_log_shows(numbers):
    """The first finding is the step from which the experts idle at the end got no token again (from the raw
    windows), not the step where the first play happens to pause."""
    log = raw_log("none")
    windows = np.array([r["load_window"] for r in log["history"]])
    idle = windows[-1] == 0
    assert idle.any()
    quiet = (windows[:, idle] == 0).all(axis=1)
    first = len(quiet) - np.argmin(quiet[::-1]) if not quiet.all() else 0
    assert numbers["none_idle_since"] == log["history"][first]["step"]
    assert numbers["none_idle_count"] == idle.sum()
    shares = raw_shares("none")[-1]
    assert numbers["none_busiest_token_share"] * 100 == pytest.approx(shares.max())
    busiest = [numbers[name] - 1 for name in sorted(numbers) if name.startswith("none_busiest_expert[")]
    assert busiest == np.flatnonzero(shares == shares.max()).tolist()  # ties named together
    assert numbers["none_input_offset"] == log["config"]["input_offset"] > 0
    # The run without the offset: its idle experts, or (none idle) how uneven its last window is.
    calm = raw_log("none_no_offset")
    assert calm["config"]["input_offset"] == 0
    last = np.array(calm["history"][-1]["load_window"])
    if (last == 0).any():
        assert numbers["none_no_offset_idle_count"] == (last == 0).sum()
    else:
        assert numbers["none_no_offset_max_over_min"] == pytest.approx(max_over_min(last))


def test_balancing_loss_numbers(numbers):
    # Perfect balance gives k: with f_i = k/N and P_i = 1/N, N·Σ f_i·P_i = N·N·(k/N)·(1/N) = k (Switch Transformer
    # eq. 4 with k experts per token).
    assert numbers["aux_loss_balanced"] == raw_log("aux_loss")["config"]["top_k"]
    assert numbers["aux_loss_none_final"] == raw_log("none")["history"][-1]["aux_loss"]
    assert numbers["aux_coef"] == raw_log("aux_loss")["config"]["aux_coef"]
    assert (numbers["aux_eval_loss"], numbers["none_eval_loss"]) == (raw_log("aux_loss")["history"][-1]["eval_loss"],
                                                                     raw_log("none")["history"][-1]["eval_loss"])


@pytest.mark.parametrize("name, run", [("aux_loss", "aux"), ("bias", "bias")])
def test_balance_claims_from_the_raw_windows(numbers, name, run):
    log = raw_log(name)
    windows = [r["load_window"] for r in log["history"]]
    since = even_since(windows)
    if since is None:
        assert f"{run}_final_step" in numbers
    else:
        assert numbers[f"{run}_balance_step"] == log["history"][since]["step"]
    assert numbers[f"{run}_max_over_min"] == pytest.approx(max_over_min(windows[-1]))
    assert numbers[f"{run}_log_every"] == log["config"]["log_every"]


def test_a_run_that_never_balances_says_so(scene):
    """The collapsed run never balances and leaves experts idle: caption and narration say so instead of 'None'."""
    log = load_moe_run("none")
    for words in (*scene.balance_words(log, "none"), *scene.spread_words(log, "none")):
        assert "None" not in strip_marks(words)
    caption, speech = map(strip_marks, scene.balance_words(log, "none"))
    assert "还没稳定" in caption and "还没稳定" in speech and str(raw_log("none")["history"][-1]["step"]) in caption
    caption, _ = map(strip_marks, scene.spread_words(log, "none"))
    assert "有专家没拿到 token" in caption  # max/min is undefined with an idle expert


def test_bias_history_numbers(record, numbers):
    biases = np.array([r["bias"] for r in raw_log("bias")["history"]])
    np.testing.assert_array_equal(record.section("偏置拉平负载").plotted["bias_history"], biases)
    assert numbers["bias_lowest"] == biases.min()
    assert numbers["bias_most_penalised_expert"] - 1 == np.unravel_index(biases.argmin(), biases.shape)[1]
    assert numbers["bias_gamma"] == raw_log("bias")["config"]["bias_gamma"]



def test_axis_ticks_are_recorded(record):
    """Tick labels are recorded numbers: the share axis in percent up to 100, the bias axis evenly spaced through 0."""
    shares = record.section("赢家通吃").numbers["share_tick"]["value"]
    assert shares[0] == 0 and shares[-1] == 100 and set(shares) <= {0, 25, 50, 75, 100}
    bias = record.section("偏置拉平负载").numbers["bias_tick"]["value"]
    assert 0 in bias and len(bias) >= 2 and np.allclose(np.diff(bias), np.diff(bias)[0])


def test_held_out_comparison_shows_both_measures(record, numbers, cfg):
    """Both runs' max/min on the training window and on the fixed held-out set (eval_load), from the raw logs: the
    last record and the mean over the last records."""
    section = record.section("训练 batch 与留出集")
    for name, run in (("aux_loss", "aux"), ("bias", "bias")):
        history = raw_log(name)["history"]
        assert numbers[f"{run}_window_max_over_min"] == pytest.approx(max_over_min(history[-1]["load_window"]))
        assert numbers[f"{run}_held_out_max_over_min"] == pytest.approx(max_over_min(history[-1]["eval_load"]))
        last = [max_over_min(r["eval_load"]) for r in history[-cfg.compare_last_records:]]
        assert numbers[f"held_out_last_{run}_mean"] == pytest.approx(np.mean(last))
        stats = section.plotted["max_over_min_last_records"][f"{run}/held_out"]
        assert (stats["low"], stats["high"]) == pytest.approx((min(last), max(last)))
    assert numbers["held_out_last_n"] == cfg.compare_last_records
    assert numbers["eval_tokens"] == raw_log("bias")["config"]["eval_tokens"]


def test_small_print_is_provenance_from_the_log(scene_run):
    """Provenance is small print: drawn in videos, moved to the caption file in the article."""
    log = raw_log("none")
    article, _, _ = scene_run("moe", "article")
    section = article.section("赢家通吃")
    (note,) = section.fine_print
    assert f"{log['provenance']['wall_seconds']:.1f}" in note and f"seed {log['config']['seed']}" in note
    assert "none_wall_seconds" not in section.numbers  # not drawn in the article
    video, _, _ = scene_run("moe", "16:9")
    assert video.section("赢家通吃").numbers["none_wall_seconds"]["value"] == log["provenance"]["wall_seconds"]


# --- 671B vs 37B ---------------------------------------------------------------------------------------------------


def test_deepseek_counts(record, numbers):
    counts = deepseek_v3_parameter_counts()
    assert numbers["deepseek_total_b"] == counts["total"] / 1e9
    assert numbers["deepseek_active_b"] == counts["active"] / 1e9
    # The published "671B total, 37B activated" (DeepSeek-V3 Technical Report, abstract).
    assert round(numbers["deepseek_total_b"]) == 671 and int(numbers["deepseek_active_b"]) == 37
    assert numbers["deepseek_active_fraction"] == pytest.approx(counts["active"] / counts["total"])
    breakdown = record.section("激活参数拆开看").plotted["deepseek_active_breakdown"]
    assert sum(breakdown.values()) == counts["active"]
    c = DeepSeekV3Config()
    # One expert: SwiGLU's gate, up and down projections of 7168 × 2048 (config.json: hidden_size,
    # moe_intermediate_size), about 44M parameters.
    assert numbers["expert_matrices"] == 3
    assert (numbers["hidden_size"], numbers["moe_intermediate_size"]) == (7168, 2048)
    assert numbers["expert_params_m"] == pytest.approx(3 * 7168 * 2048 / 1e6)
    assert numbers["n_moe_layers"] == 61 - 3
    assert numbers["deepseek_idle_routed_b"] == pytest.approx((61 - 3) * (256 - 8) * 3 * 7168 * 2048 / 1e9)
    for chosen in record.sections[9].plotted["deepseek_demo_active_experts"]:
        assert len(set(chosen)) == c.num_experts_per_tok and all(0 <= e < c.n_routed_experts for e in chosen)
