"""GrokkingCurves marks the steps shared/runs.py derives and shows the logs' own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from shared.runs import grokking_grid, grokking_phase_steps, load_grokking_run


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("grokking", "16:9")
    return record.numbers


@pytest.fixture(scope="module")
def run():
    return load_grokking_run("add_p59_wd1_seed0")


def test_marked_steps_are_the_derived_phase_steps(scene_run, run):
    for aspect in ("16:9", "9:16"):
        record, _, _ = scene_run("grokking", aspect)
        assert record.numbers["phases"] == grokking_phase_steps(run)._asdict()
    phases = grokking_phase_steps(run)
    assert phases.memorized < phases.grokking < phases.generalized


def test_numbers_are_the_logs(numbers, run):
    history = {r["step"]: r for r in run["history"]}
    assert numbers["at_memorized"] == history[numbers["phases"]["memorized"]]
    assert numbers["final"] == run["history"][-1]
    assert numbers["at_memorized"]["test_acc"] < 0.2 <= 0.99 <= numbers["at_memorized"]["train_acc"]
    peak = numbers["norm_peak"]
    before = [r for r in run["history"] if r["step"] <= numbers["phases"]["grokking"]]
    assert peak["weight_norm"] == max(r["weight_norm"] for r in before) == history[peak["step"]]["weight_norm"]
    no_decay = load_grokking_run("add_p59_wd0_seed0")
    assert numbers["no_decay_final"] == no_decay["history"][-1]
    assert numbers["no_decay_final"]["test_acc"] < 0.5
    assert numbers["no_decay_phases"]["grokking"] is None


def test_task_table(numbers, run):
    train = grokking_grid(run["split"]["train"])
    assert numbers["train_share"] == pytest.approx(train.mean())
    example = numbers["example"]
    assert example["answer"] == (example["a"] + example["b"]) % run["config"]["p"]
    assert example["in_train"] == bool(train[example["a"], example["b"]])


def test_fourier_concentration(numbers, run):
    late = np.array(run["snapshots"][-1]["embedding_fourier_power"])
    top = numbers["fourier_top_frequencies"]
    assert sorted(np.argsort(late)[::-1][: len(top)].tolist()) == top
    shares = numbers["fourier_top_share"]
    early_step, late_step = sorted(shares)
    assert shares[late_step] == pytest.approx(np.sort(late)[::-1][: len(top)].sum())
    assert shares[late_step] > 2 * shares[early_step]  # a few frequencies take over
