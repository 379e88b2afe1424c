"""The committed grokking run logs (media/runs/grokking/) and their loader in shared/runs.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from shared.runs import (
    GROKKING_COMMANDS,
    GROKKING_RUNS_DIR,
    GrokkingPhases,
    RunLogError,
    grokking_grid,
    grokking_phase_steps,
    grokking_regenerate_command,
    grokking_snapshot,
    load_grokking_run,
    short_device_name,
)

COMMITTED = sorted(path.stem for path in GROKKING_RUNS_DIR.glob("*.json"))
LOGS = {name: load_grokking_run(name) for name in COMMITTED}


def runs_where(**config) -> list[str]:
    return [name for name, log in LOGS.items() if all(log["config"][k] == v for k, v in config.items())]


WEIGHT_DECAY_RUNS = runs_where(model="mlp", weight_decay=1.0, train_fraction=0.5)
NO_WEIGHT_DECAY_RUNS = runs_where(model="mlp", weight_decay=0.0)
SMALL_DATA_RUNS = [n for n in runs_where(model="mlp") if 0.3 <= LOGS[n]["config"]["train_fraction"] <= 0.4]
TRANSFORMER_RUNS = runs_where(model="transformer", weight_decay=1.0)  # Nanda et al.'s recipe, p = 113


def test_the_committed_runs_are_there_and_each_names_its_command():
    assert len({LOGS[n]["config"]["seed"] for n in WEIGHT_DECAY_RUNS}) >= 3
    assert NO_WEIGHT_DECAY_RUNS and SMALL_DATA_RUNS and TRANSFORMER_RUNS
    assert sorted(GROKKING_COMMANDS) == COMMITTED
    readme = (GROKKING_RUNS_DIR / "README.md").read_text(encoding="utf-8")
    for name, log in LOGS.items():
        assert log["command"] == GROKKING_COMMANDS[name]  # what the trainer recorded is what we document
        assert f"`{name}.json` | `{GROKKING_COMMANDS[name]}`" in readme
        assert log["provenance"]["device"] and log["provenance"]["wall_seconds"] > 0


def first_step(log: dict, key: str, threshold: float) -> int | None:
    """Independent of shared.runs: numpy over the history columns."""
    steps = np.array([r["step"] for r in log["history"]])
    reached = np.array([r[key] for r in log["history"]]) >= threshold
    return int(steps[reached.argmax()]) if reached.any() else None


def accuracy_at(log: dict, step: int, key: str) -> float:
    return next(r[key] for r in log["history"] if r["step"] == step)


@pytest.mark.parametrize("name", COMMITTED)
def test_phase_steps_are_derived_from_the_history(name):
    log = LOGS[name]
    assert grokking_phase_steps(log) == (
        first_step(log, "train_acc", 0.99), first_step(log, "test_acc", 0.5), first_step(log, "test_acc", 0.99)
    )


@pytest.mark.parametrize("name", WEIGHT_DECAY_RUNS + TRANSFORMER_RUNS)
def test_weight_decay_runs_grok(name):
    log = LOGS[name]
    phases = grokking_phase_steps(log)
    assert phases.memorized is not None
    assert accuracy_at(log, phases.memorized, "test_acc") < 0.2  # memorised first, generalised nothing yet
    assert log["history"][-1]["test_acc"] >= 0.95
    assert phases.memorized < phases.grokking <= phases.generalized  # and late: a plateau lies between


@pytest.mark.parametrize("name", NO_WEIGHT_DECAY_RUNS)
def test_without_weight_decay_the_model_memorises_and_stays_there(name):
    log = LOGS[name]
    assert grokking_phase_steps(log).memorized is not None
    assert log["history"][-1]["train_acc"] >= 0.99 and log["history"][-1]["test_acc"] < 0.5
    assert log["config"]["steps"] >= 20000


@pytest.mark.parametrize("name", SMALL_DATA_RUNS)
def test_less_data_means_a_longer_plateau(name):
    log = LOGS[name]
    assert grokking_phase_steps(log).memorized is not None
    # when every half-data run has generalised, a run on less data has not yet reached 50% test accuracy
    generalized = max(grokking_phase_steps(LOGS[n]).generalized for n in WEIGHT_DECAY_RUNS)
    assert accuracy_at(log, generalized, "test_acc") < 0.5
    grokking = grokking_phase_steps(log).grokking
    assert grokking is None or grokking > generalized


def effective_frequencies(power: list[float]) -> float:
    """exp(entropy) of the spectrum: p//2 + 1 for a flat spectrum, 1 for a single frequency."""
    share = np.array(power[1:]) / sum(power[1:])  # k = 0 (the mean vector) carries no wave
    share = share[share > 0]
    return float(np.exp(-(share * np.log(share)).sum()))


@pytest.mark.parametrize("name", WEIGHT_DECAY_RUNS + TRANSFORMER_RUNS)
def test_a_few_key_frequencies_emerge_when_the_model_groks(name):
    log = LOGS[name]
    start, end = log["snapshots"][0], log["snapshots"][-1]
    assert start["step"] == 0 and end["step"] == log["config"]["steps"]
    frequencies = len(start["embedding_fourier_power"]) - 1
    at_start = effective_frequencies(start["embedding_fourier_power"])
    assert at_start > 0.9 * frequencies  # a random embedding spreads its energy over every frequency
    assert effective_frequencies(end["embedding_fourier_power"]) < 0.6 * at_start
    for other in NO_WEIGHT_DECAY_RUNS:  # a model that only memorises keeps its spectrum flat
        flat_end = LOGS[other]["snapshots"][-1]["embedding_fourier_power"]
        assert effective_frequencies(flat_end) > 0.9 * (len(flat_end) - 1)


@pytest.mark.parametrize("name", COMMITTED)
def test_snapshots_agree_with_the_history(name):
    log = LOGS[name]
    train_cells = grokking_grid(log["split"]["train"])
    assert train_cells.mean() == pytest.approx(log["config"]["train_fraction"], abs=1 / train_cells.size)
    for snapshot in log["snapshots"]:
        correct = grokking_grid(snapshot["correct"])
        assert correct[train_cells].mean() == pytest.approx(snapshot["train_acc"], abs=1e-6)
        assert correct[~train_cells].mean() == pytest.approx(snapshot["test_acc"], abs=1e-6)
        assert grokking_snapshot(log, snapshot["step"]) is snapshot
    with pytest.raises(KeyError, match="no snapshot at step"):
        grokking_snapshot(log, -1)


def test_phase_steps_are_none_where_never_reached():
    history = [
        {"step": 0, "train_acc": 0.1, "test_acc": 0.0},
        {"step": 10, "train_acc": 0.995, "test_acc": 0.1},
        {"step": 20, "train_acc": 1.0, "test_acc": 0.6},
    ]
    assert grokking_phase_steps({"history": history}) == GrokkingPhases(memorized=10, grokking=20, generalized=None)


# --- malformed logs: the error names the file and the command that regenerates it -----------------------------------


@pytest.fixture
def good_copy(tmp_path):
    """A committed log copied under its own name into a temp folder, as (path, parsed log, its command)."""
    name = COMMITTED[0]
    path = tmp_path / f"{name}.json"
    shutil.copy(GROKKING_RUNS_DIR / f"{name}.json", path)
    return path, json.loads(path.read_text()), GROKKING_COMMANDS[name]


def rewrite(path, log):
    path.write_text(json.dumps(log))


def expect_error(path, command, *fragments):
    with pytest.raises(RunLogError) as info:
        load_grokking_run(path)
    message = str(info.value)
    for fragment in (str(path), f"Regenerate it with: {command}", *fragments):
        assert fragment in message


def test_missing_file(tmp_path):
    path = tmp_path / "add_p59_wd1_seed0.json"
    expect_error(path, GROKKING_COMMANDS["add_p59_wd1_seed0"], "does not exist")


def test_unknown_name_points_at_the_trainer(tmp_path):
    assert grokking_regenerate_command(tmp_path / "custom.json").startswith(
        "python -m scripts.train_grokking --name custom"
    )


def test_bad_json(good_copy):
    path, _, command = good_copy
    path.write_text("{not json")
    expect_error(path, command, "not valid JSON")


@pytest.mark.parametrize("key", ["snapshots", "split", "history", "provenance"])
def test_missing_top_level_key(good_copy, key):
    path, log, command = good_copy
    del log[key]
    rewrite(path, log)
    expect_error(path, command, f"'{key}'")


def test_missing_config_and_history_keys(good_copy):
    path, log, command = good_copy
    del log["config"]["weight_decay"]
    rewrite(path, log)
    expect_error(path, command, "config lacks weight_decay")
    log = json.loads((GROKKING_RUNS_DIR / path.name).read_text())
    del log["history"][3]["test_acc"]
    rewrite(path, log)
    expect_error(path, command, "history[3] lacks test_acc")


def test_malformed_snapshots_and_grids(good_copy):
    path, log, command = good_copy
    original = json.dumps(log)
    cases = [
        (lambda lg: lg["snapshots"][1].pop("embedding_fourier_power"), "snapshots[1] lacks embedding_fourier_power"),
        (lambda lg: lg["snapshots"][0]["embedding_fourier_power"].append(0.5), "summing to 1"),
        (lambda lg: lg["snapshots"][0].update(step=-5), "does not log"),
        (lambda lg: lg["split"]["train"].pop(), "split.train"),
        (lambda lg: lg["snapshots"][2]["correct"].__setitem__(0, "2" * lg["config"]["p"]), "snapshots[2].correct"),
        (lambda lg: lg["history"][5].update(test_acc=1.5), "outside [0, 1]"),
    ]
    for corrupt, fragment in cases:
        log = json.loads(original)
        corrupt(log)
        rewrite(path, log)
        expect_error(path, command, fragment)


def test_values_of_the_wrong_type_give_a_run_log_error(good_copy):
    """Not a TypeError from a comparison deep inside a scene: the loader names the key and what it should be."""
    path, log, command = good_copy
    original = json.dumps(log)
    cases = [
        (lambda lg: lg.update(provenance=None), "'provenance' must be an object, not null"),
        (lambda lg: lg["provenance"].update(device=None), "provenance.device must be a string"),
        (lambda lg: lg["history"][5].update(test_acc="0.5"), 'history[5].test_acc must be a number, not "0.5"'),
        (lambda lg: lg["history"].__setitem__(2, [1, 0.5]), "history[2] must be an object"),
        (lambda lg: lg["config"].update(p="59"), "config.p must be an integer"),
        (lambda lg: lg.update(split=[]), "'split' must be an object"),
        (lambda lg: lg.update(snapshots={"0": {}}), "'snapshots' must be a list"),
        (lambda lg: lg["snapshots"].__setitem__(0, "step 0"), "snapshots[0] must be an object"),
        (lambda lg: lg["snapshots"][1].update(step="100"), "snapshots[1].step must be an integer"),
        (lambda lg: lg["snapshots"][0]["embedding_fourier_power"].__setitem__(0, "x"), "embedding_fourier_power"),
        (lambda lg: lg["config"].update(p=1), "config.p must be at least 2"),
    ]
    for corrupt, fragment in cases:
        log = json.loads(original)
        corrupt(log)
        rewrite(path, log)
        expect_error(path, command, fragment)


@pytest.mark.parametrize("device, short", [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA RTX 4090"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100"),
    ("NVIDIA H100 PCIe", "NVIDIA H100"),
    ("AMD EPYC 7B13 (2 cores)", "AMD EPYC 7B13 (2 cores)"),
    ("NVIDIA H100 80GB HBM3 + resumed on AMD EPYC (2 cores)", "NVIDIA H100"),
])
def test_short_device_name_fits_a_caption(device, short):
    assert short_device_name(device) == short
