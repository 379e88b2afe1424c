"""The committed MoE run logs (media/runs/moe/) validate, the claims derived from them match an independent
computation from the raw JSON, malformed logs fail clearly, and the trainer is deterministic, resumable and routes
exactly as shared.math.moe."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import scripts.train_moe as train_moe
from shared.math.moe import bias_balanced_routing, expert_load, load_balancing_loss, top_k_routing
from shared.runs import (
    EVEN_LOAD_TOLERANCE,
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
    assert not no_offset["idle_experts"]  # without the shared offset, the unbalanced router does not collapse


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


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("none", lambda log: log.pop("routing_by_cluster"), "has no 'routing_by_cluster'"),
        ("none", lambda log: log["config"].pop("top_k"), "config lacks top_k"),
        ("aux_loss", lambda log: log["history"][3].pop("load_window"), r"history\[3\] lacks load_window"),
        ("aux_loss", lambda log: log["history"][2]["load"].pop(), r"history\[2\]\.load must list 8"),
        ("bias", lambda log: log["history"][1]["load"].append(log["history"][1]["load"].pop() + 1), r"load sums to"),
        ("bias", lambda log: log["history"][5].pop("bias"), r"history\[5\] lacks 'bias'"),
        ("none", lambda log: log["history"][4].pop("aux_loss"), r"history\[4\] lacks 'aux_loss'"),
        ("none", lambda log: log["provenance"].pop("device"), "provenance lacks device"),
    ],
)
def test_malformed_log_gives_a_clear_error(tmp_path, name, mutate, message):
    path = broken_copy(tmp_path, name, mutate)
    with pytest.raises(RunLogError, match=message) as err:
        load_moe_run(path)
    assert path in str(err.value) and MOE_COMMANDS[name] in str(err.value)


def test_invalid_json_gives_a_clear_error(tmp_path):
    path = tmp_path / "aux_loss.json"
    path.write_text('{"config": ', encoding="utf-8")
    with pytest.raises(RunLogError, match="not valid JSON") as err:
        load_moe_run(path)
    assert MOE_COMMANDS["aux_loss"] in str(err.value)


# --- the trainer -----------------------------------------------------------------------------------------------------

TINY = dict(steps=40, log_every=5, eval_tokens=64, batch_size=64)


@pytest.fixture
def run_dirs(tmp_path, monkeypatch):
    monkeypatch.setattr(train_moe, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(train_moe, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    return tmp_path


@pytest.mark.parametrize("strategy", ["aux_loss", "bias"])
def test_trainer_is_deterministic_and_resumes_to_the_same_log(run_dirs, monkeypatch, strategy):
    cfg = train_moe.MoETrainConfig(strategy=strategy, **TINY)
    reference = json.loads(train_moe.train(cfg, "reference", device="cpu", progress=False).read_text())

    real_sample = train_moe.sample_tokens
    interrupt_at = 27  # the training stream's seed is the step for seed 0

    def interrupted(cfg_, task, n_tokens, stream_seed):
        if stream_seed == interrupt_at:
            raise KeyboardInterrupt
        return real_sample(cfg_, task, n_tokens, stream_seed)

    monkeypatch.setattr(train_moe, "sample_tokens", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_moe.train(cfg, "resumed", device="cpu", progress=False, checkpoint_every=10)
    assert (run_dirs / "checkpoints" / "resumed.pt").exists()
    monkeypatch.setattr(train_moe, "sample_tokens", real_sample)
    resumed = json.loads(train_moe.train(cfg, "resumed", device="cpu", progress=False).read_text())

    assert resumed["history"] == reference["history"]
    assert resumed["routing_by_cluster"] == reference["routing_by_cluster"]
    assert not (run_dirs / "checkpoints" / "resumed.pt").exists()
    load_moe_run(run_dirs / "runs" / "resumed.json")


def test_resume_refuses_a_checkpoint_of_another_config(run_dirs):
    cfg = train_moe.MoETrainConfig(**TINY)
    (run_dirs / "checkpoints").mkdir()
    torch.save({"config": {**dataclasses.asdict(cfg), "lr": 1.0}}, run_dirs / "checkpoints" / "x.pt")
    with pytest.raises(Exception, match="different config"):
        train_moe.train(cfg, "x", device="cpu", progress=False)


@pytest.mark.parametrize("strategy", train_moe.STRATEGIES)
def test_trainer_routes_exactly_as_the_math_contract(strategy):
    cfg = train_moe.MoETrainConfig(strategy=strategy, router_init_std=1.0)
    torch.manual_seed(1)
    model = train_moe.build_model(cfg).double()
    model.balance_bias.copy_(torch.randn(cfg.n_experts, dtype=torch.float64) * 0.3)
    x, _, _ = train_moe.sample_tokens(cfg, train_moe.make_task(cfg), 100, stream_seed=5)
    with torch.no_grad():
        logits = model.router(x.double())
        indices, weights = model.route(logits)
    logits_np = logits.numpy()
    if strategy == "bias":
        ref_indices, ref_weights = bias_balanced_routing(logits_np, model.balance_bias.numpy(), cfg.top_k)
    else:
        ref_indices, ref_weights = top_k_routing(logits_np, cfg.top_k)
    np.testing.assert_array_equal(indices.numpy(), ref_indices)
    np.testing.assert_allclose(weights.numpy(), ref_weights, rtol=1e-12)
    aux = train_moe.load_balancing_loss_torch(logits, cfg.n_experts, cfg.top_k).item()
    assert aux == pytest.approx(load_balancing_loss(logits_np, cfg.top_k), rel=1e-12)
    np.testing.assert_array_equal(
        train_moe.tokens_per_expert(indices, cfg.n_experts).numpy(), expert_load(ref_indices, cfg.n_experts)
    )


def test_cli_writes_a_valid_log(run_dirs):
    result = CliRunner().invoke(
        train_moe.main,
        ["--strategy", "bias", "--steps", "10", "--log-every", "5", "--batch-size", "32", "--eval-tokens", "32",
         "--name", "cli", "--device", "cpu", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = load_moe_run(run_dirs / "runs" / "cli.json")
    assert log["command"] == (
        "python -m scripts.train_moe --strategy bias --batch-size 32 --steps 10 --eval-tokens 32 --log-every 5 "
        "--name cli"
    )
    assert [r["step"] for r in log["history"]] == [0, 5, 10]


def test_committed_logs_are_small():
    for name in COMMITTED:
        assert (MOE_RUNS_DIR / f"{name}.json").stat().st_size < 100_000
