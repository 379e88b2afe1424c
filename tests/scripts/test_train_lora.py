"""The LoRA trainer (scripts/train_lora.py): the shifted task, the adapter in PEFT's convention, runs that are
deterministic and resume exactly, the log and weights they write, and the guards. Tiny configs: seconds each."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn.utils import parametrize

from scripts.train_grokking import CheckpointMismatch
from scripts.train_lora import (
    LoRATrainConfig,
    LoRAUpdate,
    command_line,
    main,
    reversed_pair,
    shifted_corpus,
    train,
)
from scripts.train_translator import weights_path
from shared.corpus import build_corpus
from shared.math.lora import adapter_parameter_count, lora_forward
from shared.math.tiny_transformer import EOS, weights_to_arrays
from shared.runs import load_lora_run, load_translator

TINY = LoRATrainConfig(n_train=60, n_test=8, n_original_test=8, rank=2, steps=12, batch_size=16, log_every=6,
                       warmup_steps=3)  # fmt: skip
TINY_FULL = dataclasses.replace(TINY, method="full", lr=1e-3)


def comparable(log: dict) -> dict:
    """All that a rerun must reproduce: not the provenance, nor the names (in the command and the weights entry)."""
    return {k: v for k, v in log.items() if k not in ("provenance", "command")} | {
        "weights": log["weights"]["sha256"]
    }


@pytest.fixture(scope="module")
def base():
    return load_translator()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "tiny.json"
    return out, train(TINY, out, device="cpu", progress=False)


@pytest.fixture(scope="module")
def tiny_full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "full.json"
    return out, train(TINY_FULL, out, device="cpu", progress=False)


# --- the shifted task ----------------------------------------------------------------------------------------------


def test_reversed_pair_keeps_every_alignment():
    for pair in build_corpus(n_train=50, n_test=10, seed=3).train:
        flipped = reversed_pair(pair)
        assert flipped.source == tuple(reversed(pair.source)) and flipped.target == tuple(reversed(pair.target))
        # target word j of the flipped pair translates the same source WORD as before
        for j, word in enumerate(flipped.target):
            before = pair.alignment[pair.target.index(word)] if pair.target.count(word) == 1 else None
            a = flipped.alignment[j]
            if pair.target.count(word) == 1 and before is not None:
                assert flipped.source[a] == pair.source[before]
            assert (a is None) == (pair.alignment[len(pair.target) - 1 - j] is None)


def test_shifted_task_is_new_to_the_base_and_its_splits_are_disjoint():
    cfg = LoRATrainConfig()
    train_pairs, test_pairs = shifted_corpus(cfg)
    assert (len(train_pairs), len(test_pairs)) == (cfg.n_train, cfg.n_test)
    assert not {p.source for p in train_pairs} & {p.source for p in test_pairs}
    original = build_corpus(4000, 400, 0)  # the base run's corpus (media/runs/translator/README.md)
    seen = {p.source for p in original.train + original.test}
    assert not seen & {p.source for p in train_pairs + test_pairs}


# --- the adapter ---------------------------------------------------------------------------------------------------


def test_adapter_is_peft_lora_forward_in_the_models_layout():
    rng = np.random.default_rng(0)
    fan_in, fan_out, r, scaling = 6, 4, 3, 2.0
    w = rng.normal(size=(fan_in, fan_out))  # [in, out]: the model computes x @ w
    a = rng.normal(size=(r, fan_in))
    module = torch.nn.Module()
    module.w = torch.nn.Parameter(torch.tensor(w))
    update = LoRAUpdate(a, fan_out, scaling).double()
    with torch.no_grad():
        update.lora_b.copy_(torch.tensor(rng.normal(size=(fan_out, r))))
    parametrize.register_parametrization(module, "w", update)
    x = rng.normal(size=(5, fan_in))
    ours = (torch.tensor(x) @ module.w).detach().numpy()
    lora_a, lora_b = (m.detach().numpy() for m in (update.lora_a, update.lora_b))  # A as stored (float32 → 64)
    peft = lora_forward(x, w.T, lora_a, lora_b, alpha=scaling * r)
    np.testing.assert_allclose(ours, peft, rtol=0, atol=1e-12)


# --- runs ----------------------------------------------------------------------------------------------------------


def test_lora_run_trains_only_the_adapters(tiny_run, base):
    out, log = tiny_run
    assert json.loads(out.read_text(encoding="utf-8")) == log
    assert log["config"] == dataclasses.asdict(TINY)
    assert [r["step"] for r in log["history"]] == [0, 6, 12]
    provenance = log["provenance"]
    assert provenance["cuda_version"] is None and provenance["wall_seconds"] > 0 and provenance["torch_threads"] == 1
    shapes = [tuple(s) for s in log["adapted"].values()]
    assert len(shapes) == 12  # W_q, W_k, W_v, W_o of the encoder's, the decoder's and the cross attention
    assert log["metrics"]["trainable_parameters"] == adapter_parameter_count(shapes, TINY.rank)
    # B starts at zero: before training the model is the base, which translates its own test sentences
    assert log["history"][0]["original_exact_match"] == base.metrics["test_exact_match"] == 1.0
    assert log["metrics"]["original_exact_match_without_adapter"] == 1.0
    arrays = dict(np.load(weights_path(out)))
    assert set(arrays) == {f"{n}/lora_{m}" for n in log["adapted"] for m in "ab"}
    assert all(np.any(arrays[f"{n}/lora_b"] != 0) for n in log["adapted"])  # B moved away from zero


def test_logged_scores_are_what_the_merged_numpy_model_computes(tiny_run):
    out, log = tiny_run
    run = load_lora_run(out)
    pairs = run.test_split
    exact = np.mean([run.model.translate(p.source) == p.target for p in pairs])
    correct = total = 0
    for p in pairs:
        predicted = run.model.activations(p.source, p.target).predicted_tokens
        correct += sum(a == b for a, b in zip(predicted, (*p.target, EOS)))
        total += len(p.target) + 1
    assert log["metrics"]["new_exact_match"] == pytest.approx(exact, abs=1e-6)
    assert log["metrics"]["new_token_accuracy"] == pytest.approx(correct / total, abs=1e-6)


def test_full_run_logs_the_spectrum_of_every_weight_change(tiny_full_run, base):
    out, log = tiny_full_run
    assert log["metrics"]["trainable_parameters"] == log["metrics"]["n_parameters"] == 11232
    after = dict(np.load(weights_path(out)))
    before = weights_to_arrays(base.model.weights)
    matrices = [k for k, v in before.items() if v.ndim == 2]
    assert sorted(log["delta"]) == sorted(matrices)
    for name in matrices:
        delta = torch.tensor(after[name], dtype=torch.float64) - torch.tensor(before[name], dtype=torch.float64)
        expected = torch.linalg.svdvals(delta).numpy()
        np.testing.assert_allclose(log["delta"][name]["singular_values"], expected, rtol=1e-5, atol=1e-9)
    assert "adapted" not in log and load_lora_run(out).method == "full"


def test_same_seed_gives_the_same_run_and_another_seed_does_not(tiny_run, tmp_path):
    _, first = tiny_run
    assert comparable(train(TINY, tmp_path / "again.json", device="cpu", progress=False)) == comparable(first)
    other = train(dataclasses.replace(TINY, seed=1), tmp_path / "other.json", device="cpu", progress=False)
    assert other["history"] != first["history"]


@pytest.mark.parametrize("stops", [(5,), (6, 9)])  # between records; at a record, then again
def test_resume_gives_the_same_run_as_an_uninterrupted_one(tiny_run, tmp_path, stops):
    _, uninterrupted = tiny_run
    checkpoint, out = tmp_path / "tiny.pt", tmp_path / "tiny.json"
    for stop in stops:
        assert train(TINY, out, device="cpu", checkpoint=checkpoint, stop_after=stop, progress=False) is None
        assert checkpoint.exists() and not out.exists()
    resumed = train(TINY, out, device="cpu", checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(uninterrupted)
    assert [s["step"] for s in resumed["provenance"]["resumed"]] == list(stops)
    assert not checkpoint.exists()


def test_full_run_resumes_exactly(tiny_full_run, tmp_path):
    checkpoint, out = tmp_path / "full.pt", tmp_path / "full.json"
    train(TINY_FULL, out, device="cpu", checkpoint=checkpoint, stop_after=7, progress=False)
    resumed = train(TINY_FULL, out, device="cpu", checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(tiny_full_run[1])


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    train(TINY, tmp_path / "a.json", device="cpu", checkpoint=checkpoint, stop_after=3, progress=False)
    with pytest.raises(CheckpointMismatch, match="rank"):
        train(dataclasses.replace(TINY, rank=1), tmp_path / "a.json", device="cpu", checkpoint=checkpoint,
              progress=False)  # fmt: skip


def test_refuses_to_overwrite_a_run_without_force(tiny_run, tmp_path):
    out, log = tiny_run
    before = out.read_bytes(), weights_path(out).read_bytes()
    with pytest.raises(Exception, match="--force"):
        train(TINY, out, device="cpu", progress=False)
    assert (out.read_bytes(), weights_path(out).read_bytes()) == before
    lone_weights = tmp_path / "w.json"
    weights_path(lone_weights).write_bytes(b"")  # weights alone count as a run too
    with pytest.raises(Exception, match="--force"):
        train(TINY, lone_weights, device="cpu", progress=False)
    assert comparable(train(TINY, lone_weights, device="cpu", progress=False, force=True)) == comparable(log)


# --- command line --------------------------------------------------------------------------------------------------

TINY_ARGS = ["--n-train", "60", "--n-test", "8", "--n-original-test", "8", "--rank", "2", "--steps", "12",
             "--batch-size", "16", "--warmup-steps", "3", "--log-every", "6"]  # fmt: skip


def test_cli_writes_the_run_and_records_its_command(tiny_run, tmp_path):
    args = [*TINY_ARGS, "--device", "cpu", "--out-dir", str(tmp_path), "--name", "cli", "--no-checkpoint", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    log = json.loads((tmp_path / "cli.json").read_text())
    assert log["command"] == "python -m scripts.train_lora " + " ".join(TINY_ARGS) + " --name cli"
    assert log["command"] == command_line(TINY, "cli")
    assert comparable(log) == comparable(tiny_run[1])
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--force" in again.output


def test_default_names_and_commands():
    assert command_line(LoRATrainConfig()) == "python -m scripts.train_lora"
    assert LoRATrainConfig().default_name() == "lora_r8"
    assert LoRATrainConfig(rank=2, targets="qv").default_name() == "lora_qv_r2"
    full = LoRATrainConfig(method="full", lr=1e-3)
    assert full.default_name() == "full"
    assert command_line(full) == "python -m scripts.train_lora --method full --lr 0.001"


@pytest.mark.parametrize("args, message", [
    (["--rank", "0"], "rank = 0"),
    (["--targets", "qx"], "targets"),
    (["--method", "adapter"], "adapter"),
    (["--scaling", "0"], "scaling"),
    (["--dropout", "1.0"], "dropout"),
    (["--base", "no_such_run"], "no_such_run"),
    (["--n-original-test", "401"], "401"),
    (["--stop-after", "5", "--no-checkpoint"], "checkpoint"),
])  # fmt: skip
def test_cli_rejects_bad_options_before_training(tmp_path, args, message):
    result = CliRunner().invoke(main, [*args, "--out-dir", str(tmp_path), "--quiet", "--device", "cpu"])
    assert result.exit_code != 0 and message in result.output
    assert not list(tmp_path.iterdir())


def test_explainer_cli_has_the_command():
    from scripts.cli import main as explainer

    result = CliRunner().invoke(explainer, ["train-lora", "--help"])
    assert result.exit_code == 0 and "--force" in result.output and "--rank" in result.output
