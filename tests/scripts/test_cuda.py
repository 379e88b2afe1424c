"""Both trainers on a CUDA GPU: deterministic for a seed, exact on resume, a log that names the GPU, and the same
start as on the CPU. CI has no GPU, so these are skipped there; on a GPU machine run
``python -m pytest tests/scripts/test_cuda.py``."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import scripts.train_moe as train_moe
from scripts.train_grokking import GrokkingConfig, sweep_configs, train, train_sweep
from shared.runs import load_grokking_run, load_moe_run, pick_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY = GrokkingConfig(p=11, steps=240, embed_dim=16, hidden=32, lr=3e-3, log_every=20, snapshot_steps=(0, 100, 240))


def comparable(log: dict) -> dict:
    return {k: v for k, v in log.items() if k != "provenance"}


def test_auto_picks_the_gpu():
    assert pick_device("auto") == "cuda"


def test_grokking_on_cuda_is_deterministic_resumes_exactly_and_names_the_gpu(tmp_path):
    log = train(TINY, tmp_path / "a.json", device="cuda", progress=False)
    provenance = load_grokking_run(tmp_path / "a.json")["provenance"]
    assert provenance["device"] == torch.cuda.get_device_name(0)
    assert provenance["cuda_version"] == torch.version.cuda is not None

    # same file name in another folder: the log records its command, and the name is part of it
    (tmp_path / "again").mkdir()
    assert comparable(train(TINY, tmp_path / "again" / "a.json", device="cuda", progress=False)) == comparable(log)

    checkpoint = tmp_path / "a.pt"
    (tmp_path / "resumed").mkdir()
    out = tmp_path / "resumed" / "a.json"
    assert train(TINY, out, device="cuda", checkpoint=checkpoint, stop_after=77, progress=False) is None
    resumed = train(TINY, out, device="cuda", checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(log)
    assert [(s["step"], s["device"]) for s in resumed["provenance"]["resumed"]] == [(77, provenance["device"])]


def test_grokking_on_cuda_starts_where_the_cpu_run_starts_and_memorises_too(tmp_path):
    gpu = train(TINY, tmp_path / "gpu.json", device="cuda", progress=False)
    cpu = train(TINY, tmp_path / "cpu.json", device="cpu", threads=1, progress=False)
    assert gpu["split"] == cpu["split"]  # the split and the initialisation are drawn on the CPU
    for on_gpu, on_cpu in zip(gpu["history"][:6], cpu["history"][:6]):  # before rounding differences can grow
        for key in ("train_loss", "test_loss", "weight_norm"):
            assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-4), (on_gpu["step"], key)
    assert gpu["history"][-1]["train_acc"] == cpu["history"][-1]["train_acc"] == 1.0


def test_grokking_sweep_on_cuda_matches_single_runs(tmp_path):
    base = dataclasses.replace(TINY, steps=60, log_every=10, snapshot_steps=(0, 60))
    configs = sweep_configs(base, seeds=(0, 1), weight_decays=(1.0, 0.0))
    logs = train_sweep(configs, tmp_path, device="cuda", progress=False)
    for config, log in zip(configs, logs):
        single = train(config, tmp_path / "single.json", device="cuda", progress=False, force=True)
        assert log["split"] == single["split"]
        for stacked, alone in zip(log["history"], single["history"]):
            assert stacked["step"] == alone["step"]
            for key in ("train_loss", "test_loss", "weight_norm"):
                assert stacked[key] == pytest.approx(alone[key], rel=1e-3)


@pytest.mark.parametrize("strategy", train_moe.STRATEGIES)
def test_moe_on_cuda_is_deterministic_resumes_exactly_and_names_the_gpu(tmp_path, monkeypatch, strategy):
    monkeypatch.setattr(train_moe, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(train_moe, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    cfg = train_moe.MoETrainConfig(strategy=strategy, steps=40, log_every=5, eval_tokens=64, batch_size=64)
    reference = json.loads(train_moe.train(cfg, "reference", device="cuda", progress=False).read_text())
    assert reference["provenance"]["device"] == torch.cuda.get_device_name(0)
    again = json.loads(train_moe.train(cfg, "again", device="cuda", progress=False).read_text())
    assert again["history"] == reference["history"]

    real_sample = train_moe.sample_tokens
    stop_seed = train_moe.stream_seed(cfg.seed, "batch", 27)

    def interrupted(cfg_, task, n_tokens, seed):
        if seed == stop_seed:
            raise KeyboardInterrupt
        return real_sample(cfg_, task, n_tokens, seed)

    monkeypatch.setattr(train_moe, "sample_tokens", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_moe.train(cfg, "resumed", device="cuda", progress=False, checkpoint_every=10)
    monkeypatch.setattr(train_moe, "sample_tokens", real_sample)
    resumed = json.loads(train_moe.train(cfg, "resumed", device="cuda", progress=False).read_text())
    assert resumed["history"] == reference["history"]
    assert [s["step"] for s in resumed["provenance"]["resumed"]] == [20]
    load_moe_run(tmp_path / "runs" / "resumed.json")
