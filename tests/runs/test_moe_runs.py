"""The committed MoE run logs (media/runs/moe/) validate, the claims derived from them match an independent
computation from the raw JSON, and malformed logs (a missing key, a value of the wrong type, counts that do not add
up) fail with a RunLogError naming the file and its command. The trainer's own tests are in
tests/scripts/test_train_moe.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.runs import (
    EVEN_LOAD_TOLERANCE,
    LOADED_RUN_LOGS,
    MOE_COMMANDS,
    MOE_RUNS_DIR,
    RunLogError,
    load_moe_run,
    moe_balance_step,
    moe_claims,
    moe_load_spread,
)

COMMITTED = sorted(MOE_COMMANDS)


def raw(name: str) -> dict:
    return json.loads((MOE_RUNS_DIR / f"{name}.json").read_text(encoding="utf-8"))


# --- the committed logs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_log_validates_and_names_its_command(name):
    log = load_moe_run(name)
    assert log["command"] == MOE_COMMANDS[name]
    assert f"--strategy {log['config']['strategy']}" in MOE_COMMANDS[name]
    assert log["history"][-1]["step"] == log["config"]["steps"]
    assert log["provenance"]["wall_seconds"] > 0


@pytest.mark.parametrize("name", COMMITTED)
def test_load_windows_count_every_token(name):
    """Each window holds every token-slot of its steps: step 0 alone, then ``log_every`` steps each."""
    log = raw(name)
    cfg = log["config"]
    slots = cfg["batch_size"] * cfg["top_k"]
    steps = [r["step"] for r in log["history"]]
    for previous, record in zip([-1, *steps], log["history"]):
        assert sum(record["load_window"]) == (record["step"] - previous) * slots
        assert sum(record["eval_load"]) == cfg["eval_tokens"] * cfg["top_k"]
    routing = np.array(log["routing_by_cluster"])
    assert routing.sum() == cfg["eval_tokens"] * cfg["top_k"]
    assert routing.sum(axis=0).tolist() == log["history"][-1]["eval_load"]


def independent_spread(name: str) -> dict:
    log = raw(name)
    loads = np.array(log["history"][-1]["load_window"])
    k, n = log["config"]["top_k"], log["config"]["n_experts"]
    return {
        "max": loads.max(),
        "min": loads.min(),
        "share": loads.max() / (loads.sum() / k),
        "idle": np.flatnonzero(loads == 0).tolist(),
        "fair": k / n,
        "busiest": int(np.argmax(loads)),
    }


def independent_balance_step(name: str, tolerance: float) -> int | None:
    log = raw(name)
    loads = np.array([r["load_window"] for r in log["history"]], dtype=float)
    relative = loads / loads.mean(axis=1, keepdims=True)
    even = (np.abs(relative - 1) <= tolerance).all(axis=1)
    if not even[-1]:
        return None
    uneven = np.flatnonzero(~even)
    first_even = uneven[-1] + 1 if uneven.size else 0
    return log["history"][first_even]["step"]


@pytest.mark.parametrize("name", COMMITTED)
def test_derived_claims_match_an_independent_computation(name):
    log = load_moe_run(name)
    claims, expected = moe_claims(log), independent_spread(name)
    assert claims["max_tokens"] == expected["max"]
    assert claims["min_tokens"] == expected["min"]
    assert claims["busiest_expert"] == expected["busiest"]
    assert claims["busiest_token_share"] == pytest.approx(expected["share"], rel=1e-12)
    assert claims["fair_token_share"] == expected["fair"]
    assert claims["idle_experts"] == expected["idle"]
    if expected["min"]:
        assert claims["max_over_min"] == pytest.approx(expected["max"] / expected["min"], rel=1e-12)
    else:
        assert claims["max_over_min"] is None
    for tolerance in (0.1, 0.2, EVEN_LOAD_TOLERANCE, 0.5):
        assert moe_balance_step(log, tolerance) == independent_balance_step(name, tolerance)
    assert claims["balance_step"] == independent_balance_step(name, EVEN_LOAD_TOLERANCE)
    json.dumps(claims, allow_nan=False)  # claims go into manifests as plain JSON


def test_the_story_the_logs_tell():
    """What the scene says: without balancing, a few experts take everything; both balancing methods even it out."""
    none, aux, bias, no_offset = (moe_claims(load_moe_run(n)) for n in ("none", "aux_loss", "bias", "none_no_offset"))
    assert none["idle_experts"] and none["busiest_token_share"] > 3 * none["fair_token_share"]
    assert none["balance_step"] is None
    for balanced in (aux, bias):
        assert not balanced["idle_experts"] and balanced["balance_step"] is not None
        assert balanced["final_eval_loss"] < none["final_eval_loss"]  # balanced routing also learns the task better
    assert not no_offset["idle_experts"]  # without the shared offset, the unbalanced router does not collapse...
    assert no_offset["max_over_min"] > 3 * max(aux["max_over_min"], bias["max_over_min"])  # ...but is far from even


def test_logged_bias_moves_at_most_gamma_per_step():
    """DeepSeek-V3's update changes each bias by exactly ±γ or 0 per step, starting from zero."""
    log = raw("bias")
    gamma = log["config"]["bias_gamma"]
    history = log["history"]
    assert history[0]["bias"] == [0.0] * log["config"]["n_experts"]
    for before, after in zip(history, history[1:]):
        steps = after["step"] - before["step"]
        change = np.abs(np.subtract(after["bias"], before["bias"]))
        assert (change <= steps * gamma + 2e-6).all()  # 2e-6: the log rounds to 6 decimals


def test_spread_of_an_earlier_window():
    log = load_moe_run("none")
    first = moe_load_spread(log, 0)
    assert first["step"] == 0 and first["loads"] == log["history"][0]["load_window"]


# --- malformed logs --------------------------------------------------------------------------------------------------


def test_missing_log_names_file_and_command(tmp_path):
    with pytest.raises(RunLogError) as err:
        load_moe_run(tmp_path / "bias.json")
    assert str(tmp_path / "bias.json") in str(err.value)
    assert MOE_COMMANDS["bias"] in str(err.value)


def broken_copy(tmp_path, name: str, mutate) -> str:
    log = raw(name)
    mutate(log)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(log), encoding="utf-8")
    return str(path)


def add_one(counts: list) -> None:
    counts[-1] += 1


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("none", lambda log: log.pop("routing_by_cluster"), "has no 'routing_by_cluster'"),
        ("none", lambda log: log["config"].pop("top_k"), "config lacks top_k"),
        ("aux_loss", lambda log: log["history"][3].pop("load_window"), r"history\[3\] lacks load_window"),
        ("aux_loss", lambda log: log["history"][2]["load"].pop(), r"history\[2\]\.load must list 8"),
        ("bias", lambda log: add_one(log["history"][1]["load"]), r"load sums to"),
        ("bias", lambda log: log["history"][5].pop("bias"), r"history\[5\] lacks 'bias'"),
        ("none", lambda log: log["history"][4].pop("aux_loss"), r"history\[4\] lacks 'aux_loss'"),
        ("none", lambda log: log["provenance"].pop("device"), "provenance lacks device"),
        ("none", lambda log: add_one(log["history"][2]["load_window"]), r"history\[2\]\.load_window sums to"),
        ("aux_loss", lambda log: log["history"][1]["eval_load"].append(0), r"history\[1\]\.eval_load must list 8"),
        ("bias", lambda log: log["routing_by_cluster"][0].__setitem__(0, 0), "routing_by_cluster sums to"),
        ("none", lambda log: log["config"].update(top_k=0), "config.top_k must be at least 1"),
        # a value of the wrong type: a RunLogError too, not a TypeError from deep inside a scene
        ("none", lambda log: log.update(provenance=None), "'provenance' must be an object, not null"),
        ("none", lambda log: log["provenance"].update(wall_seconds="23 s"), "provenance.wall_seconds must be a number"),
        ("aux_loss", lambda log: log["history"][3].update(eval_loss="0.1"), r"history\[3\]\.eval_loss must be a num"),
        ("aux_loss", lambda log: log["history"].__setitem__(2, [0, 1]), r"history\[2\] must be an object"),
        ("bias", lambda log: log["history"][2]["load"].__setitem__(0, "64"), r"history\[2\]\.load must list 8"),
        ("bias", lambda log: log["history"][2]["bias"].__setitem__(0, None), r"history\[2\]\.bias must hold 8"),
        ("none", lambda log: log["history"][2].update(aux_loss=[1.0]), r"history\[2\]\.aux_loss must be a number"),
        ("none", lambda log: log["config"].update(n_experts="8"), "config.n_experts must be an integer"),
        ("none", lambda log: log["history"][4].update(step=True), r"history\[4\]\.step must be an integer"),
        ("none", lambda log: log.update(routing_by_cluster={"0": [1]}), "'routing_by_cluster' must be a list"),
        ("none", lambda log: log["routing_by_cluster"].__setitem__(1, "busy"), "routing_by_cluster must be a"),
        ("none", lambda log: log["provenance"].update(resumed=[{"step": "5"}]), r"provenance\.resumed\[0\] lacks"),
        ("none", lambda log: log.update(history={"0": {}}), "'history' must be a list"),
    ],
)
def test_malformed_log_gives_a_clear_error(tmp_path, name, mutate, message):
    path = broken_copy(tmp_path, name, mutate)
    with pytest.raises(RunLogError, match=message) as err:
        load_moe_run(path)
    assert path in str(err.value) and MOE_COMMANDS[name] in str(err.value)


def test_a_log_that_is_not_an_object_gives_a_clear_error(tmp_path):
    path = tmp_path / "none.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RunLogError, match="must hold a JSON object, not a list"):
        load_moe_run(path)


def test_loaded_logs_are_recorded_for_the_renderer():
    LOADED_RUN_LOGS.clear()
    load_moe_run("bias")
    load_moe_run(MOE_RUNS_DIR / ".." / "moe" / "none.json")
    assert LOADED_RUN_LOGS == {(MOE_RUNS_DIR / "bias.json").resolve(), (MOE_RUNS_DIR / "none.json").resolve()}


def test_invalid_json_gives_a_clear_error(tmp_path):
    path = tmp_path / "aux_loss.json"
    path.write_text('{"config": ', encoding="utf-8")
    with pytest.raises(RunLogError, match="not valid JSON") as err:
        load_moe_run(path)
    assert MOE_COMMANDS["aux_loss"] in str(err.value)


def test_committed_logs_are_small():
    for name in COMMITTED:
        assert (MOE_RUNS_DIR / f"{name}.json").stat().st_size < 100_000


def test_spread_of_held_out_routing_and_ties():
    """``moe_load_spread`` reads the held-out routing when asked, and names every expert tied for the most tokens."""
    from shared.runs import moe_idle_since, moe_load_spread

    log = load_moe_run("bias")
    held_out = moe_load_spread(log, counts="eval_load")
    assert held_out["loads"] == log["history"][-1]["eval_load"]
    tied = {"config": {"top_k": 2, "n_experts": 4},
            "history": [{"step": 0, "load_window": [5, 0, 5, 2]}, {"step": 10, "load_window": [6, 0, 6, 0]}]}
    spread = moe_load_spread(tied)
    assert spread["busiest_experts"] == [0, 2] and spread["busiest_expert"] == 0
    assert moe_idle_since(tied) == 10  # expert 3 got tokens at step 0; from step 10 both idle ones get none
    assert moe_idle_since(load_moe_run("aux_loss")) is None
    with pytest.raises(ValueError, match="counts"):
        moe_load_spread(log, counts="load")
