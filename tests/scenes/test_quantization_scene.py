"""What Quantization draws equals the committed quantization run (its JSON read directly here) and the helpers'
outputs recomputed independently; the published facts it cites are the papers' numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from shared.math.model_configs import MODEL_CONFIGS, parameter_count
from shared.runs import QUANT_RUNS_DIR


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("quantization", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def log():
    return json.loads((QUANT_RUNS_DIR / "translator.json").read_text(encoding="utf-8"))


def setting(log, fmt, granularity):
    (record,) = [r for r in log["history"] if (r["format"], r["granularity"]) == (fmt, granularity)]
    return record


def test_section_names(record):
    assert [s.name for s in record.sections] == ["量化是什么", "省几倍显存", "异常值", "按通道与分组", "精度损失在哪",
                                                 "为什么是浮点"]  # fmt: skip


def test_number_line_is_the_logged_row(record, numbers, log):
    line = log["number_line"]
    q8, q4 = line["int8"], line["int4"]
    np.testing.assert_allclose(record.section("量化是什么").plotted["row_weights"], line["weights"])
    assert (numbers["int8_scale"], numbers["int4_scale"]) == (q8["scale"], q4["scale"])
    assert (numbers["int8_max_error"], numbers["int4_max_error"]) == (q8["max_abs_error"], q4["max_abs_error"])
    assert (numbers["int8_levels"], numbers["int4_levels"], numbers["int4_zero_point"]) == (256, 16, 0)
    # symmetric INT4 (torch's observer): scale = amax / 7.5, so the largest weight sits at 7.5 steps, rounds to 8 and
    # is clamped to 7
    weights = np.array(line["weights"])
    assert numbers["int4_scale"] == pytest.approx(np.abs(weights).max() / 7.5, rel=1e-5)
    assert numbers["clamped_over_scale"] == pytest.approx(7.5, abs=1e-4)
    assert (numbers["unclamped"], numbers["qmax"]) == (8, 7)
    assert numbers["error_ratio"] == pytest.approx(q4["max_abs_error"] / q8["max_abs_error"])


def test_memory_of_llama_3_8b(numbers, record):
    """Bytes counted here from the parameter count (itself tested against the published total): 4 bytes per FP32
    weight; INT4 half a byte per weight plus a 2-byte FP16 scale per 128 weights."""
    n = parameter_count(MODEL_CONFIGS["Llama-3-8B"])
    assert n == 8_030_261_248  # Hugging Face safetensors total of Llama-3.1-8B, the same shapes
    assert numbers["memory_gb[FP32]"] == pytest.approx(4 * n / 1e9)
    assert numbers["memory_gb[INT4]"] == pytest.approx(n / 2 / 1e9)
    int4_bytes = n / 2 + math.ceil(n / 128) * 2
    assert numbers["memory_gb[INT4+scales]"] == pytest.approx(int4_bytes / 1e9)
    assert numbers["memory_ratio"] == pytest.approx(4 * n / int4_bytes) == pytest.approx(32 / 4.125)
    assert 7.7 < numbers["memory_ratio"] < 8  # not the 8× of 32 bits over 4: the scales cost 0.125 bit per weight
    assert numbers["bits_ratio"] == 8 and numbers["bits_per_weight"] == 4.125
    plotted = record.section("省几倍显存").plotted
    np.testing.assert_allclose(plotted["memory_gb"], [4 * n / 1e9, 2 * n / 1e9, n / 1e9, n / 2 / 1e9])


def test_outlier_numbers_are_the_logged_demo(numbers, record, log):
    demo = log["outlier"]
    before, after = demo["without_outlier"]["tensor"], demo["with_outlier"]["tensor"]
    j = demo["input"]
    others = [c for i, c in enumerate(after["codes"]) if i != j]
    assert numbers["landing_code"] == 0 and set(others) == {0}
    assert numbers["codes_before"] == len({c for i, c in enumerate(before["codes"]) if i != j})
    assert numbers["codes_after"] == 1 and numbers["matrix_codes"] == after["codes_used_by_matrix_others"] == 2
    assert numbers["factor"] == log["config"]["outlier_factor"] == 20
    assert numbers["matrix_others"] == 16 * 64 - 1 and numbers["n_others"] == 63
    assert numbers["error_before"] == pytest.approx(before["row_others_relative_rms_error"] * 100)
    assert numbers["matrix_error"] == pytest.approx(after["matrix_others_relative_rms_error"] * 100)
    plotted = record.section("异常值").plotted["outlier_row"]
    assert plotted["after"][j] == demo["value"] == pytest.approx(20 * plotted["before"][j], rel=1e-5)
    assert numbers["with_outlier_grid_end[-8]"] == pytest.approx(-8 * after["scales"][0])
    assert numbers["max_sigma"] == max(m["max_over_std"] for m in log["matrices"].values())
    # LLM.int8() (Dettmers et al. 2022, arXiv 2208.07339, §1): "magnitudes up to 20x larger than in other dimensions
    # [...] At around 6.7B parameters, a phase shift occurs, and all transformer layers [...] are affected"
    assert (numbers["magnitude"], numbers["params_b"]) == (20, 6.7)


def test_per_channel_and_group_errors(numbers, record, log):
    demo = log["outlier"]
    for g in ("tensor", "channel", "group"):
        assert numbers[f"others_error_with_outlier[{g}]"] == pytest.approx(
            demo["with_outlier"][g]["matrix_others_relative_rms_error"] * 100)
    drawn = record.section("按通道与分组").plotted["others_error_percent"]
    assert drawn["with_outlier"][0] > 99 > drawn["with_outlier"][1] > drawn["with_outlier"][2]
    assert drawn["with_outlier"][2] < drawn["without_outlier"][0]  # per group with the outlier beats per tensor without
    assert numbers["group_size"] == log["config"]["group_size"] == 8


def test_accuracy_bars_and_numbers_are_the_logged_ones(numbers, record, log):
    exact = record.section("精度损失在哪").plotted["exact_match_percent"]
    formats = ["int8", "fp8_e4m3fn", "fp8_e5m2", "int4", "fp4_e2m1", "int3", "int2"]
    for g in ("tensor", "channel", "group"):
        assert exact[g] == pytest.approx([setting(log, f, g)["test_exact_match"] * 100 for f in formats])
    assert numbers["n_test"] == log["config"]["n_test"] == 400  # the whole test split
    assert numbers["int3_wrong"] == round(400 * (1 - setting(log, "int3", "tensor")["test_exact_match"])) == 25
    assert numbers["int2_right"] == 0
    assert numbers["loss_ratio"] == pytest.approx(setting(log, "int4", "tensor")["test_loss"]
                                                  / log["baseline"]["test_loss"])  # fmt: skip


def test_fp4_against_int4_is_what_the_data_show(numbers, record, log):
    grids = log["grids"]
    assert numbers["finer"] == pytest.approx(1 / 3, rel=1e-5)  # E2M1 steps 0.5/6 < INT4's 1/7.5 up to 2/6
    for g in ("tensor", "group"):
        assert numbers[f"{g}_share"] == pytest.approx(grids[g]["share_fp4_finer"] * 100)
        assert numbers[f"{g}_fp4_error"] == pytest.approx(setting(log, "fp4_e2m1", g)["relative_rms_error"] * 100)
        assert numbers[f"{g}_int4_error"] == pytest.approx(setting(log, "int4", g)["relative_rms_error"] * 100)
        assert record.section("为什么是浮点").plotted[f"histogram_{g}"] == grids[g]["histogram"]
    # what the caption says: INT4 is the more accurate one per group on these weights
    assert numbers["group_int4_error"] < numbers["group_fp4_error"]
    # NVIDIA, "Introducing NVFP4 for Efficient and Accurate Low-Precision Inference": one E4M3 scale per 16 values
    assert numbers["block"] == 16


def test_small_print_names_the_run(record, log):
    prov = log["provenance"]
    note = record.section("异常值").fine_print[0]
    assert f"{round(prov['wall_seconds'])} 秒" in note and str(log["parameters"]["quantized"]) in note
