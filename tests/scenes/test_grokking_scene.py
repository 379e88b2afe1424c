"""What GrokkingCurves draws is read from the committed logs: the derived phase steps, the logs' own numbers and
curves, spectra summarised from the logged Fourier shares, and a run that never groks is told as such."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
from scene_catalog import scene_classes

from shared.checks import dry_run
from shared.runs import grokking_phase_steps, load_grokking_run

MAIN, NO_DECAY, SPECTRUM = "add_p59_wd1_seed0", "add_p59_wd0_seed0", "add_p113_wd1_frac0.3_transformer_seed0"


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("grokking", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def run():
    return load_grokking_run(MAIN)


@pytest.fixture(scope="module")
def scene_class():
    (cls,) = scene_classes()["grokking"]
    return cls


def test_marked_steps_are_the_derived_phase_steps(scene_run, run):
    phases = grokking_phase_steps(run)
    for aspect in ("16:9", "9:16", "article"):
        record, _, _ = scene_run("grokking", aspect)
        drawn = {key: record.numbers[f"phase_{key}"] for key in phases._fields}
        assert drawn == phases._asdict()
    assert phases.memorized < phases.grokking < phases.generalized


def test_numbers_are_the_logs(numbers, run):
    history = {r["step"]: r for r in run["history"]}
    at = history[numbers["memorized_step"]]
    assert (numbers["memorized_train_acc"], numbers["memorized_test_acc"]) == (at["train_acc"], at["test_acc"])
    assert at["train_acc"] >= 0.99 and at["test_acc"] < 0.2  # memorised, not generalised: what the caption says
    before = [r for r in run["history"] if r["step"] <= numbers["phase_grokking"]]
    peak = max(before, key=lambda r: r["weight_norm"])
    assert (numbers["norm_peak_step"], numbers["norm_peak"]) == (peak["step"], peak["weight_norm"])
    assert history[numbers["reached_step"]]["test_acc"] >= 0.99


def test_plateau_norm_falls_after_its_peak(record, run):
    """"之后被 weight decay 拉小": the norm where the plateau section stops is below the peak it names."""
    section = record.section("平台期").numbers
    end = section["step"]["value"][-1]
    norm_at_end = [r for r in run["history"] if r["step"] <= end][-1]["weight_norm"]
    assert norm_at_end < section["norm_peak"]["value"]


def test_no_decay_numbers_are_its_log(numbers, record):
    log = load_grokking_run(NO_DECAY)
    first, final = log["history"][0], log["history"][-1]
    assert numbers["no_decay_weight_decay"] == log["config"]["weight_decay"] == 0  # "λ = 0" read from the config
    assert numbers["no_decay_final_train_acc"] == final["train_acc"]
    assert numbers["no_decay_final_test_acc"] == final["test_acc"]
    assert (numbers["no_decay_initial_norm"], numbers["no_decay_final_norm"]) == (first["weight_norm"],
                                                                                  final["weight_norm"])
    assert final["weight_norm"] == max(r["weight_norm"] for r in log["history"])  # "涨到": it ends at its highest
    plotted = record.section("没有 weight decay").plotted
    np.testing.assert_array_equal(plotted["no_decay_test_acc"], [r["test_acc"] for r in log["history"][1:]])


def test_curves_are_the_log(record, run):
    plotted = record.section("背诵").plotted
    history = run["history"][1:]
    np.testing.assert_array_equal(plotted["main_run_step"], [r["step"] for r in history])
    for key in ("train_acc", "test_acc", "weight_norm"):
        np.testing.assert_array_equal(plotted[f"main_run_{key}"], [r[key] for r in history])


def test_task_table(record, numbers, run):
    p = run["config"]["p"]
    train = np.array([[c == "1" for c in row] for row in run["split"]["train"]])
    assert numbers["p"] == p and numbers["pairs"] == p * p
    assert numbers["train_share"] == pytest.approx(train.sum() / p**2)
    a, b = numbers["example_a"], numbers["example_b"]
    assert numbers["example_sum"] == a + b and numbers["example_answer"] == (a + b) % p
    np.testing.assert_array_equal(record.section("任务").plotted["train_split"], train)


def test_provenance_is_small_print(scene_run, record, run):
    """Device, wall time and seed: drawn as small print in videos, moved to the caption file in the article."""
    prov = run["provenance"]
    assert record.numbers["main_run_wall_seconds"] == prov["wall_seconds"]
    article, _, _ = scene_run("grokking", "article")
    assert "main_run_wall_seconds" not in article.numbers
    for name in ("背诵", "平台期", "顿悟"):
        (line,) = article.section(name).fine_print
        assert line == record.section(name).fine_print[0] and f"{prov['wall_seconds']:.0f} 秒" in line


def test_spectrum_shown_from_the_transformer_run(record):
    """The concentration claim is drawn from the run that shows it (Nanda et al.'s transformer); shares and the
    participation ratio are recomputed here with torch from the logged spectra."""
    section = record.section("里面发生了什么")
    shown = section.numbers
    log = load_grokking_run(SPECTRUM)
    phases = grokking_phase_steps(log)
    spectra = {s["step"]: torch.tensor(s["embedding_fourier_power"], dtype=torch.float64) for s in log["snapshots"]}
    early, late = shown["spectrum_early_step"]["value"], shown["spectrum_late_step"]["value"]
    # "刚背下": the first snapshot after the memorised step, before test accuracy reaches 50%
    assert phases.memorized <= early < phases.grokking
    assert all(step < phases.memorized for step in spectra if step < early)
    assert late == max(spectra) >= phases.generalized
    k = shown["top_k"]["value"]
    for name, step in (("spectrum_early_top_share", early), ("spectrum_late_top_share", late)):
        assert shown[name]["value"] == pytest.approx(float(torch.topk(spectra[step], k).values.sum()))
    top = sorted(torch.topk(spectra[late], k).indices.tolist())
    assert [shown[f"top_frequency[{i}]"]["value"] for i in range(k)] == top
    ratio = lambda p: float(torch.exp(-torch.log((p**2).sum())))  # noqa: E731  (exp of the order-2 Rényi entropy)
    assert shown["spectrum_late_effective_frequencies"]["value"] == pytest.approx(ratio(spectra[late]))
    mlp = torch.tensor(load_grokking_run(MAIN)["snapshots"][-1]["embedding_fourier_power"], dtype=torch.float64)
    assert shown["main_run_final_effective_frequencies"]["value"] == pytest.approx(ratio(mlp))
    # What the captions claim: the transformer concentrates (most energy in the top k), the MLP is still spread out.
    assert shown["spectrum_late_top_share"]["value"] > 0.9 and ratio(spectra[late]) < k < ratio(mlp)
    np.testing.assert_array_equal(section.plotted[f"spectrum_share[{late}]"], spectra[late].numpy())


def test_decay_factor_is_adamw(numbers, run):
    """"λ 每步把 W 乘上 0.999": one torch AdamW step with a zero gradient multiplies the weights by that factor."""
    config = run["config"]
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.AdamW([w], lr=config["lr"], betas=(config["beta1"], config["beta2"]),
                                  weight_decay=config["weight_decay"])
    w.grad = torch.zeros_like(w)
    optimizer.step()
    assert numbers["decay_factor"] == pytest.approx(float(w[0].detach()))
    assert (numbers["lr"], numbers["weight_decay"]) == (config["lr"], config["weight_decay"])


def test_a_run_that_never_groks(tmp_path, monkeypatch, scene_class, run):
    """The main run's log cut before its test accuracy reaches 50% (a run that never groks): the scene plays, marks
    only the memorised step and says it has not grokked, with the cut log's last numbers."""
    cut = 2000
    assert grokking_phase_steps(run).grokking > cut
    log = copy.deepcopy(run)
    log["history"] = [r for r in run["history"] if r["step"] <= cut]
    log["snapshots"] = [s for s in run["snapshots"] if s["step"] <= cut]
    log["config"]["steps"] = cut
    path = tmp_path / "never_groks.json"
    path.write_text(json.dumps(log))
    module = sys.modules[scene_class.__module__]
    monkeypatch.setattr(module, "CFG", dataclasses.replace(module.CFG, main_run=str(path)))
    record, problems = dry_run(scene_class, "16:9")
    assert not [p for ps in problems.values() for p in ps]
    assert "phase_grokking" not in record.numbers and "phase_generalized" not in record.numbers
    assert record.numbers["phase_memorized"] == grokking_phase_steps(log).memorized
    shown = record.section("顿悟").numbers
    assert shown["last_step"]["value"] == cut
    assert shown["final_test_acc"]["value"] == log["history"][-1]["test_acc"] < 0.5
    said = "".join(beat["text"] for beat in record.section("顿悟").narration)  # the voice says so too
    assert "没等到顿悟" in said and "突然" not in said and "grokking" not in said
