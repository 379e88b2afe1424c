"""The grokking trainer (scripts/train_grokking.py): determinism, exact resume (and the provenance it records), no
silent overwrite of a finished log, option validation, the log it writes, its measurements."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scripts.train_grokking import (
    CheckpointMismatch,
    GrokkingConfig,
    ModularTransformer,
    all_pairs,
    command_line,
    fourier_power,
    log_interval,
    logged_steps,
    main,
    sweep_configs,
    train,
    train_mask,
    train_sweep,
)
from shared.runs import RunExistsError, grokking_grid, grokking_phase_steps, load_grokking_run

# Tiny but real: p = 11 memorises its 60 training pairs within a few hundred full-batch steps on a CPU.
TINY = GrokkingConfig(p=11, steps=240, embed_dim=16, hidden=32, lr=3e-3, log_every=20, snapshot_steps=(0, 100, 240))


def comparable(log: dict) -> dict:
    """Everything a same-seed rerun must reproduce: all but the provenance (timestamps, wall time)."""
    return {k: v for k, v in log.items() if k != "provenance"}


@pytest.fixture(scope="module")
def tiny_log(tmp_path_factory):
    out = tmp_path_factory.mktemp("grok") / "tiny.json"
    log = train(TINY, out, device="cpu", threads=1, progress=False)
    return out, log


def test_tiny_run_writes_a_valid_log(tiny_log):
    out, log = tiny_log
    loaded = load_grokking_run(out)
    assert comparable(loaded) == comparable(log)  # what train() returns is what it wrote
    assert loaded["config"]["p"] == 11 and loaded["config"]["snapshot_steps"] == [0, 100, 240]
    assert [r["step"] for r in loaded["history"]] == logged_steps(TINY)
    assert [s["step"] for s in loaded["snapshots"]] == [0, 100, 240]
    assert loaded["provenance"]["device"] and loaded["provenance"]["wall_seconds"] > 0
    assert loaded["provenance"]["cuda_version"] is None and loaded["provenance"]["torch_version"] == torch.__version__
    # the split in the log is the trainer's split, and the train share is as configured
    train_cells = grokking_grid(loaded["split"]["train"])
    assert np.array_equal(train_cells.ravel(), train_mask(11, 0.5, 0).numpy())
    assert train_cells.sum() == round(0.5 * 121)
    # it memorises: train accuracy reaches 1 while test accuracy stays far below
    last = loaded["history"][-1]
    assert last["train_acc"] == 1.0 and last["test_acc"] < 0.5
    assert grokking_phase_steps(loaded).memorized is not None
    # the last snapshot's table of correct answers agrees with the accuracies it logs
    correct = grokking_grid(loaded["snapshots"][-1]["correct"])
    assert correct[train_cells].mean() == pytest.approx(loaded["snapshots"][-1]["train_acc"], abs=1e-6)
    assert correct[~train_cells].mean() == pytest.approx(loaded["snapshots"][-1]["test_acc"], abs=1e-6)


def test_same_seed_gives_the_same_log_and_another_seed_does_not(tiny_log, tmp_path):
    _, first = tiny_log
    again = train(TINY, tmp_path / "tiny.json", device="cpu", threads=1, progress=False)
    assert comparable(again) == comparable(first)
    other = train(dataclasses.replace(TINY, seed=1), tmp_path / "other.json", device="cpu", threads=1, progress=False)
    assert other["history"] != first["history"]


def test_resume_gives_the_same_log_as_an_uninterrupted_run(tiny_log, tmp_path):
    _, uninterrupted = tiny_log
    checkpoint = tmp_path / "ckpt.pt"
    out = tmp_path / "tiny.json"
    # stop between two logged steps and again at a logged one, then finish
    assert train(TINY, out, device="cpu", threads=1, checkpoint=checkpoint, stop_after=77, progress=False) is None
    assert checkpoint.exists() and not out.exists()
    assert train(TINY, out, device="cpu", threads=1, checkpoint=checkpoint, stop_after=100, progress=False) is None
    resumed = train(TINY, out, device="cpu", threads=1, checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(uninterrupted)
    assert comparable(json.loads(out.read_text())) == comparable(uninterrupted)
    assert not checkpoint.exists()  # a finished run leaves no checkpoint behind
    # provenance (shared/runs.py): where it started, and one record per session that resumed it
    sessions = load_grokking_run(out)["provenance"]["resumed"]
    assert [s["step"] for s in sessions] == [77, 100] and uninterrupted["provenance"]["resumed"] == []
    assert all(s["device"] == resumed["provenance"]["device"] for s in sessions)  # no "+ resumed on" suffix


def test_a_finished_log_is_overwritten_only_with_force(tiny_log, tmp_path):
    out, checkpoint = tmp_path / "tiny.json", tmp_path / "ckpt.pt"
    out.write_text('{"kept": true}')
    with pytest.raises(RunExistsError, match="--force") as err:
        train(TINY, out, device="cpu", threads=1, progress=False)
    assert str(out) in str(err.value) and json.loads(out.read_text()) == {"kept": True}
    args = ["--p", "11", "--steps", "240", "--embed-dim", "16", "--hidden", "32", "--lr", "0.003", "--log-every", "20",
            "--snapshot-steps", "0,100,240", "--name", "tiny", "--out-dir", str(tmp_path), "--device", "cpu",
            "--threads", "1", "--no-checkpoint", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and str(out) in result.output and "--force" in result.output
    assert json.loads(out.read_text()) == {"kept": True}
    # with --force it trains; interrupted, the run resumes into the same file without --force (its checkpoint says
    # it is unfinished)
    assert train(TINY, out, device="cpu", threads=1, checkpoint=checkpoint, stop_after=77, progress=False,
                 force=True) is None
    resumed = train(TINY, out, device="cpu", threads=1, checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(tiny_log[1]) == comparable(load_grokking_run(out))
    result = CliRunner().invoke(main, [*args, "--force"])
    assert result.exit_code == 0, result.output


def test_a_sweep_refuses_to_overwrite_finished_logs(tmp_path):
    base = GrokkingConfig(p=7, steps=10, embed_dim=4, hidden=8, log_every=5)
    configs = sweep_configs(base, seeds=(0, 1))
    (tmp_path / "add_p7_wd1_seed1.json").write_text("{}")
    with pytest.raises(RunExistsError, match="add_p7_wd1_seed1.json"):
        train_sweep(configs, tmp_path, device="cpu", progress=False, threads=1)
    assert not (tmp_path / "add_p7_wd1_seed0.json").exists()
    assert len(train_sweep(configs, tmp_path, device="cpu", progress=False, threads=1, force=True)) == 2


def test_a_checkpoint_resumes_into_a_longer_run_exactly(tiny_log, tmp_path):
    _, long_run = tiny_log
    checkpoint = tmp_path / "ckpt.pt"
    shorter = dataclasses.replace(TINY, steps=150, snapshot_steps=(0, 100, 150))
    assert train(shorter, tmp_path / "x.json", device="cpu", threads=1, checkpoint=checkpoint, stop_after=120,
                 progress=False) is None
    extended = train(TINY, tmp_path / "tiny.json", device="cpu", threads=1, checkpoint=checkpoint, progress=False)
    assert comparable(extended) == comparable(long_run)
    # refused where the shorter schedule already logged something the longer one would not (a snapshot at 50)
    other = dataclasses.replace(TINY, steps=150, snapshot_steps=(0, 50, 150))
    train(other, tmp_path / "y.json", device="cpu", threads=1, checkpoint=checkpoint, stop_after=77, progress=False)
    with pytest.raises(CheckpointMismatch, match="cannot be resumed as a run of 240 steps"):
        train(TINY, tmp_path / "z.json", device="cpu", threads=1, checkpoint=checkpoint, progress=False)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    checkpoint = tmp_path / "ckpt.pt"
    config = GrokkingConfig(p=7, steps=20, embed_dim=4, hidden=8)
    train(config, tmp_path / "a.json", device="cpu", threads=1, checkpoint=checkpoint, stop_after=10, progress=False)
    other = GrokkingConfig(p=7, steps=20, embed_dim=4, hidden=8, weight_decay=0.5)
    with pytest.raises(CheckpointMismatch, match="weight_decay"):
        train(other, tmp_path / "b.json", device="cpu", threads=1, checkpoint=checkpoint, progress=False)


def test_cli_writes_the_log_and_records_its_command(tmp_path):
    args = ["--p", "7", "--steps", "30", "--embed-dim", "4", "--hidden", "8", "--weight-decay", "0.5",
            "--device", "cpu", "--threads", "1", "--out-dir", str(tmp_path), "--no-checkpoint", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    log = load_grokking_run(tmp_path / "add_p7_wd0.5_seed0.json")
    assert log["command"] == (
        "python -m scripts.train_grokking --p 7 --embed-dim 4 --hidden 8 --weight-decay 0.5 --steps 30 --threads 1"
    )
    assert log["config"]["weight_decay"] == 0.5 and log["history"][-1]["step"] == 30


@pytest.mark.parametrize("args, message", [
    (["--train-fraction", "1.5"], "train_fraction must be in (0, 1)"),
    (["--p", "7", "--train-fraction", "0.001"], "leaves no training pair"),
    (["--model", "transformer", "--n-heads", "0"], "n_heads must be ≥ 1"),
    (["--hidden", "0"], "hidden must be ≥ 1"),
    (["--lr", "0"], "AdamW needs lr > 0"),
    (["--beta2", "1"], "beta2 < 1"),
    (["--weight-decay", "-1"], "weight_decay ≥ 0"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--stop-after", "0"], "--stop-after must be at least 1"),
    (["--stop-after", "5", "--no-checkpoint"], "--stop-after needs a checkpoint"),
    (["--name", "a/b"], "--name must be a plain file name"),
])
def test_cli_rejects_bad_options_before_any_work(tmp_path, args, message):
    result = CliRunner().invoke(main, [*args, "--out-dir", str(tmp_path / "out"), "--checkpoint",
                                       str(tmp_path / "c.pt"), "--device", "cpu", "--quiet"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "c.pt").exists()


def test_command_line_round_trips_defaults_and_names():
    assert command_line(GrokkingConfig()) == "python -m scripts.train_grokking"
    config = GrokkingConfig(train_fraction=0.3, steps=20000, snapshot_steps=(0, 500))
    assert command_line(config, "custom", threads=1) == (
        "python -m scripts.train_grokking --train-fraction 0.3 --steps 20000 --snapshot-steps 0,500 "
        "--name custom --threads 1"
    )
    assert GrokkingConfig(weight_decay=0.0).default_name() == "add_p59_wd0_seed0"
    assert GrokkingConfig(train_fraction=0.3, seed=2).default_name() == "add_p59_wd1_frac0.3_seed2"


REFERENCE_OPERATIONS = {"add": lambda a, b: (a + b) % 7, "subtract": lambda a, b: (a - b) % 7,
                        "multiply": lambda a, b: a * b % 7}


@pytest.mark.parametrize("operation", sorted(REFERENCE_OPERATIONS))
def test_pairs_are_row_major_and_labels_are_the_operation_mod_p(operation):
    pairs, labels = all_pairs(7, operation)
    assert pairs.tolist() == [[a, b] for a in range(7) for b in range(7)]
    assert labels.tolist() == [REFERENCE_OPERATIONS[operation](a, b) for a in range(7) for b in range(7)]


def test_fourier_power_matches_numpy_parseval():
    rng = np.random.default_rng(0)
    for p in (11, 12):
        embedding = rng.normal(size=(p, 5))
        power = np.array(fourier_power(torch.from_numpy(embedding)))
        # independent: the full DFT over all p frequencies, then fold k with p − k
        full = (np.abs(np.fft.fft(embedding, axis=0)) ** 2).sum(axis=1)
        folded = np.array([full[k] + (full[p - k] if 0 < k and 2 * k != p else 0) for k in range(p // 2 + 1)])
        assert power.shape == (p // 2 + 1,)
        np.testing.assert_allclose(power, folded / folded.sum(), rtol=1e-5)
        assert folded.sum() / p == pytest.approx((embedding**2).sum())  # Parseval


def test_fourier_power_finds_a_pure_frequency():
    p, k = 13, 4
    t = np.arange(p)[:, None]
    embedding = np.hstack([np.cos(2 * np.pi * k * t / p + 0.3), 2 * np.sin(2 * np.pi * k * t / p)])
    power = fourier_power(torch.from_numpy(embedding))
    assert power[k] == pytest.approx(1.0) and sum(power) == pytest.approx(1.0)


def test_log_schedule_is_log_friendly_and_capped():
    config = GrokkingConfig(steps=20000)
    steps = logged_steps(config)
    assert steps[:11] == list(range(11)) and steps[-1] == 20000
    assert set(config.resolved_snapshot_steps()) <= set(steps)
    assert max(b - a for a, b in zip(steps, steps[1:])) <= config.log_every
    assert log_interval(50, 50, 50) == 2 and log_interval(500, 50, 50) == 20 and log_interval(5000, 50, 50) == 50
    assert len(steps) < 500  # the committed logs stay small


def test_transformer_runs_and_has_nanda_shapes(tmp_path):
    model = ModularTransformer(p=7, d_model=16, n_heads=4, d_mlp=32)
    pairs, _ = all_pairs(7, "add")
    assert model(pairs).shape == (49, 7) and model.embedding_matrix().shape == (7, 16)
    config = GrokkingConfig(p=7, model="transformer", d_model=16, n_heads=4, d_mlp=32, steps=20)
    log = train(config, tmp_path / "t.json", device="cpu", threads=1, progress=False)
    assert log["config"]["model"] == "transformer" and len(log["snapshots"][0]["embedding_fourier_power"]) == 4


def test_sweep_trains_each_run_as_a_single_run_would(tmp_path):
    base = GrokkingConfig(p=11, steps=60, embed_dim=16, hidden=32, lr=3e-3, log_every=10, snapshot_steps=(0, 60))
    configs = sweep_configs(base, seeds=(0, 1), weight_decays=(0.5,))
    assert [(c.seed, c.weight_decay) for c in configs] == [(0, 0.5), (1, 0.5)]
    logs = train_sweep(configs, tmp_path, device="cpu", progress=False, threads=1)
    for config, log in zip(configs, logs):
        single = train(config, tmp_path / "single.json", device="cpu", progress=False, threads=1, force=True)
        assert load_grokking_run(tmp_path / f"{config.default_name()}.json")["config"] == single["config"]
        assert log["split"] == single["split"]  # same split and same initialisation as the single run
        assert log["history"][0] == single["history"][0]
        for stacked, alone in zip(log["history"], single["history"]):  # stacked matmuls may round differently
            assert stacked["step"] == alone["step"] and stacked["train_acc"] == alone["train_acc"]
            for key in ("train_loss", "test_loss", "weight_norm"):
                assert stacked[key] == pytest.approx(alone[key], rel=1e-3)
        assert log["provenance"]["sweep"] == ["add_p11_wd0.5_seed0", "add_p11_wd0.5_seed1"]
        assert log["command"].endswith("--sweep-seeds 0,1 --sweep-weight-decays 0.5 --threads 1")


def test_sweep_resumes_exactly_and_runs_from_the_cli(tmp_path):
    base = GrokkingConfig(p=7, steps=30, embed_dim=4, hidden=8, log_every=5)
    configs = sweep_configs(base, seeds=(0, 1), weight_decays=(1.0, 0.0))
    whole = train_sweep(configs, tmp_path / "whole", device="cpu", progress=False, threads=1)
    checkpoint = tmp_path / "sweep.pt"
    kwargs = dict(device="cpu", checkpoint=checkpoint, progress=False, threads=1)
    assert train_sweep(configs, tmp_path / "resumed", stop_after=13, **kwargs) is None
    resumed = train_sweep(configs, tmp_path / "resumed", **kwargs)
    assert [comparable(log) for log in resumed] == [comparable(log) for log in whole]
    assert not checkpoint.exists()

    args = ["--p", "7", "--steps", "30", "--embed-dim", "4", "--hidden", "8", "--log-every", "5",
            "--sweep-seeds", "0,1", "--sweep-weight-decays", "1,0", "--device", "cpu", "--threads", "1",
            "--out-dir", str(tmp_path / "cli"), "--no-checkpoint", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for config, log in zip(configs, whole):
        written = load_grokking_run(tmp_path / "cli" / f"{config.default_name()}.json")
        assert comparable(written) == comparable(log)
