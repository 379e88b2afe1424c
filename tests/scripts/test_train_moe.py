"""The MoE trainer (scripts/train_moe.py): determinism, exact resume, independent random streams, config validation,
no silent overwrite of a finished log, the provenance it records, and routing exactly as shared.math.moe."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import scripts.train_moe as train_moe
from shared.math.moe import bias_balanced_routing, expert_load, load_balancing_loss, top_k_routing
from shared.runs import PROVENANCE_KEYS, RunExistsError, load_moe_run

TINY = dict(steps=40, log_every=5, eval_tokens=64, batch_size=64)


@pytest.fixture
def run_dirs(tmp_path, monkeypatch):
    monkeypatch.setattr(train_moe, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(train_moe, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    return tmp_path


def interrupt_at_step(monkeypatch, cfg, step: int):
    """Make the trainer raise KeyboardInterrupt when it draws the batch of ``step``; returns the undo function."""
    real_sample = train_moe.sample_tokens
    stop_seed = train_moe.stream_seed(cfg.seed, "batch", step)

    def interrupted(cfg_, task, n_tokens, seed):
        if seed == stop_seed:
            raise KeyboardInterrupt
        return real_sample(cfg_, task, n_tokens, seed)

    monkeypatch.setattr(train_moe, "sample_tokens", interrupted)
    return lambda: monkeypatch.setattr(train_moe, "sample_tokens", real_sample)


@pytest.mark.parametrize("strategy", ["aux_loss", "bias"])
def test_trainer_is_deterministic_and_resumes_to_the_same_log(run_dirs, monkeypatch, strategy):
    cfg = train_moe.MoETrainConfig(strategy=strategy, **TINY)
    reference = json.loads(train_moe.train(cfg, "reference", device="cpu", progress=False).read_text())
    again = json.loads(train_moe.train(cfg, "again", device="cpu", progress=False).read_text())
    assert again["history"] == reference["history"]

    undo = interrupt_at_step(monkeypatch, cfg, 27)
    with pytest.raises(KeyboardInterrupt):
        train_moe.train(cfg, "resumed", device="cpu", progress=False, checkpoint_every=10)
    assert (run_dirs / "checkpoints" / "resumed.pt").exists()
    undo()
    resumed = json.loads(train_moe.train(cfg, "resumed", device="cpu", progress=False).read_text())

    assert resumed["history"] == reference["history"]
    assert resumed["routing_by_cluster"] == reference["routing_by_cluster"]
    assert not (run_dirs / "checkpoints" / "resumed.pt").exists()
    load_moe_run(run_dirs / "runs" / "resumed.json")
    # provenance: the starting session's, plus one record of the session that resumed it from step 20
    assert reference["provenance"]["resumed"] == []
    assert set(PROVENANCE_KEYS) <= set(resumed["provenance"])
    assert [s["step"] for s in resumed["provenance"]["resumed"]] == [20]
    assert resumed["provenance"]["resumed"][0]["device"] == resumed["provenance"]["device"]


def test_every_random_stream_has_its_own_seed(run_dirs, monkeypatch):
    """The task, the evaluation set, the initial weights and each step's batch are drawn from generators whose seeds
    all differ (seed 1: the old scheme seeded the task with seed + 1,000,003 and step s's batch with
    seed·1,000,003 + s, the same generator at step 1)."""
    seeds = []

    class RecordingGenerator(torch.Generator):
        def manual_seed(self, seed):
            seeds.append(seed)
            return super().manual_seed(seed)

    real_manual_seed = torch.manual_seed
    monkeypatch.setattr(torch, "Generator", RecordingGenerator)
    monkeypatch.setattr(torch, "manual_seed", lambda seed: (seeds.append(seed), real_manual_seed(seed))[1])
    cfg = train_moe.MoETrainConfig(seed=1, **TINY)
    train_moe.train(cfg, "seeds", device="cpu", progress=False)
    assert len(seeds) >= cfg.steps + 4  # init, task, eval, and one batch per step
    assert len(set(seeds)) == len(seeds)
    # and across runs: no stream of seeds 0..3 shares a seed with another stream of any of them
    streams = [train_moe.stream_seed(s, p) for s in range(4) for p in ("init", "task", "eval")]
    streams += [train_moe.stream_seed(s, "batch", step) for s in range(4) for step in range(3001)]
    assert len(set(streams)) == len(streams)


def test_a_finished_log_is_overwritten_only_with_force(run_dirs, monkeypatch):
    cfg = train_moe.MoETrainConfig(**TINY)
    path = train_moe.train(cfg, "done", device="cpu", progress=False)
    path.write_text('{"kept": true}')
    with pytest.raises(RunExistsError, match="--force") as err:
        train_moe.train(cfg, "done", device="cpu", progress=False)
    assert str(path) in str(err.value)
    assert json.loads(path.read_text()) == {"kept": True}  # refused before anything was written
    result = CliRunner().invoke(train_moe.main, ["--steps", "40", "--log-every", "5", "--eval-tokens", "64",
                                                 "--batch-size", "64", "--name", "done", "--device", "cpu", "--quiet"])
    assert result.exit_code != 0 and str(path) in result.output and "--force" in result.output
    assert json.loads(path.read_text()) == {"kept": True}

    train_moe.train(cfg, "done", device="cpu", progress=False, force=True)
    assert load_moe_run(path)["config"]["steps"] == cfg.steps

    # a forced run that is interrupted resumes into the same file without --force: its checkpoint says it is unfinished
    undo = interrupt_at_step(monkeypatch, cfg, 27)
    with pytest.raises(KeyboardInterrupt):
        train_moe.train(cfg, "done", device="cpu", progress=False, checkpoint_every=10, force=True)
    undo()
    resumed = train_moe.train(cfg, "done", device="cpu", progress=False)
    assert [s["step"] for s in load_moe_run(resumed)["provenance"]["resumed"]] == [20]


def test_resume_refuses_a_checkpoint_of_another_config_or_trainer(run_dirs):
    cfg = train_moe.MoETrainConfig(**TINY)
    (run_dirs / "checkpoints").mkdir()
    torch.save({"config": {**dataclasses.asdict(cfg), "lr": 1.0}}, run_dirs / "checkpoints" / "x.pt")
    with pytest.raises(Exception, match=r"different config \(differs in: lr\)"):
        train_moe.train(cfg, "x", device="cpu", progress=False)
    # a checkpoint of the trainer before its random streams were separated would mix two streams: refused
    torch.save({"config": dataclasses.asdict(cfg), "started_at": "2026-01-01T00:00:00+00:00"},
               run_dirs / "checkpoints" / "x.pt")
    with pytest.raises(Exception, match="older version"):
        train_moe.train(cfg, "x", device="cpu", progress=False)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"log_every": 0}, "--log-every must be at least 1, got 0"),
        ({"top_k": 9}, r"--top-k must be between 1 and --n-experts \(8\), got 9"),
        ({"top_k": 0}, "--top-k must be between 1"),
        ({"n_experts": 0}, "--n-experts must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"steps": 0}, "--steps must be at least 1"),
        ({"eval_tokens": 0}, "--eval-tokens must be at least 1"),
        ({"d_expert": 0}, "--d-expert must be at least 1"),
        ({"n_clusters": 0}, "--n-clusters must be at least 1"),
        ({"lr": 0.0}, "--lr must be more than 0"),
        ({"cluster_radius": 0.0}, "--cluster-radius must be more than 0"),
        ({"cluster_noise": -1.0}, "--cluster-noise must be 0 or more"),
        ({"bias_gamma": float("nan")}, "--bias-gamma must be 0 or more"),
        ({"seed": -1}, "--seed must be 0 or more"),
        ({"strategy": "greedy"}, "--strategy must be one of none, aux_loss, bias"),
    ],
)
def test_config_validation_names_the_bad_option(run_dirs, options, message):
    with pytest.raises(ValueError, match=message):
        train_moe.MoETrainConfig(**options)


def test_cli_refuses_bad_options_before_any_work(run_dirs):
    runner = CliRunner()
    for args, message in [
        (["--log-every", "0", "--top-k", "9"], "--log-every must be at least 1, got 0; --top-k must be between"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
        (["--name", "../elsewhere"], "--name must be a plain file name"),
    ]:
        result = runner.invoke(train_moe.main, [*args, "--device", "cpu", "--quiet"])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    assert not (run_dirs / "runs").exists() and not (run_dirs / "checkpoints").exists()


def test_trainer_restores_the_callers_torch_settings(run_dirs):
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    train_moe.train(train_moe.MoETrainConfig(**TINY), "settings", device="cpu", progress=False)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


@pytest.mark.parametrize("strategy", train_moe.STRATEGIES)
def test_trainer_routes_exactly_as_the_math_contract(strategy):
    cfg = train_moe.MoETrainConfig(strategy=strategy, router_init_std=1.0)
    torch.manual_seed(1)
    model = train_moe.build_model(cfg).double()
    model.balance_bias.copy_(torch.randn(cfg.n_experts, dtype=torch.float64) * 0.3)
    x, _, _ = train_moe.sample_tokens(cfg, train_moe.make_task(cfg), 100, seed=5)
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
