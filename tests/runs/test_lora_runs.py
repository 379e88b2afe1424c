"""The committed LoRA runs (media/runs/lora/): their commands and provenance, the scores the numpy model recomputes
from the committed weights, the spectrum torch recomputes, the claims the LoRA scene draws, and broken runs."""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil

import numpy as np
import pytest
import torch

from scripts.train_lora import LoRATrainConfig, shifted_corpus
from shared.math.lora import adapter_parameter_count
from shared.math.tiny_transformer import EOS, weights_to_arrays
from shared.runs import (
    LORA_COMMANDS,
    LORA_RUNS_DIR,
    RunLogError,
    load_lora_run,
    load_lora_runs,
    lora_run_path,
)


@pytest.fixture(scope="module")
def runs():
    return load_lora_runs()


def config_of(command: str) -> LoRATrainConfig:
    """The config a committed command asks for: the trainer's defaults with the command's options."""
    args = shlex.split(command)[3:]  # after "python -m scripts.train_lora"
    options = {}
    for flag, value in zip(args[::2], args[1::2]):
        name = flag[2:].replace("-", "_")
        options[name] = type(getattr(LoRATrainConfig(), name))(value)
    return LoRATrainConfig(**options)


def scores(model, pairs) -> tuple[float, float]:
    """Exact match of greedy decoding and token accuracy under teacher forcing, computed by the numpy model."""
    exact = np.mean([model.translate(p.source) == p.target for p in pairs])
    correct = total = 0
    for p in pairs:
        predicted = model.activations(p.source, p.target).predicted_tokens
        correct += sum(a == b for a, b in zip(predicted, (*p.target, EOS)))
        total += len(p.target) + 1
    return float(exact), correct / total


def test_committed_runs_are_the_readme_commands_from_a_clean_commit(runs):
    readme = (LORA_RUNS_DIR / "README.md").read_text(encoding="utf-8")
    for name, run in runs.items():
        log = run.log
        assert log["command"] == LORA_COMMANDS[name]
        assert f"    {log['command']}\n" in readme
        assert log["config"] == dataclasses.asdict(config_of(log["command"]))
        provenance = log["provenance"]
        assert provenance["git_commit"] and not provenance["git_commit"].endswith("-dirty")
        assert provenance["wall_seconds"] > 0 and provenance["torch_threads"] == 1
        assert log["history"][-1]["step"] == log["config"]["steps"]
        assert log["test_split"] == [p.as_dict() for p in shifted_corpus(config_of(log["command"]))[1]]


def test_numpy_model_on_the_committed_weights_reproduces_the_logged_scores(runs):
    for name, run in runs.items():
        m = run.metrics
        new = scores(run.model, run.test_split)
        original = scores(run.model, run.base.test_split)
        assert new == pytest.approx((m["new_exact_match"], m["new_token_accuracy"]), abs=1e-6), name
        assert original == pytest.approx((m["original_exact_match"], m["original_token_accuracy"]), abs=1e-6), name


def test_lora_runs_train_only_their_adapters(runs):
    base = weights_to_arrays(runs["full"].base.model.weights)
    for run in (r for r in runs.values() if r.method == "lora"):
        shapes = [base[name].shape for name in run.log["adapted"]]
        assert sorted(run.log["adapted"]) == sorted(n for n in base if n.split("/")[-1] in ("w_q", "w_k", "w_v", "w_o"))
        assert run.metrics["trainable_parameters"] == adapter_parameter_count(shapes, run.rank)
        # without the adapter the model is the base: it translates every original test sentence again
        assert run.metrics["original_exact_match_without_adapter"] == 1.0
    assert scores(runs["full"].base.model, runs["full"].base.test_split) == (1.0, 1.0)


def test_full_run_spectra_are_the_singular_values_of_the_weight_change(runs):
    full = runs["full"]
    base = weights_to_arrays(full.base.model.weights)
    assert full.metrics["trainable_parameters"] == sum(a.size for a in base.values())
    for name, sigma in full.singular_values().items():
        delta = torch.tensor(full.arrays[name], dtype=torch.float64) - torch.tensor(base[name], dtype=torch.float64)
        np.testing.assert_allclose(sigma, torch.linalg.svdvals(delta).numpy(), rtol=1e-5, atol=1e-9)


def test_what_the_scene_says_about_the_runs(runs):
    """Rank matters (each doubling learns more, r = 1 almost nothing); every run forgets the original task; the
    attention ΔW of the full fine-tune is more concentrated in its top 4 directions than random matrices are."""
    lora = sorted((r for r in runs.values() if r.method == "lora"), key=lambda r: r.rank)
    exact = [r.metrics["new_exact_match"] for r in lora]
    assert [r.rank for r in lora] == [1, 2, 4, 8] and exact == sorted(exact) and exact[0] < 0.01 < 0.9 < exact[-1]
    assert all(r.metrics["original_exact_match"] == 0.0 for r in runs.values())
    generator = torch.Generator().manual_seed(0)
    random = torch.linalg.svdvals(torch.randn(500, 16, 16, generator=generator, dtype=torch.float64)) ** 2
    random_top4 = float((random[:, :4].sum(1) / random.sum(1)).mean())
    attention = {n: s for n, s in runs["full"].singular_values().items() if "attention/w_" in n}
    assert len(attention) == 12
    for sigma in attention.values():
        assert np.sum(sigma[:4] ** 2) / np.sum(sigma**2) > random_top4 + 0.05


# --- broken runs ----------------------------------------------------------------------------------------------------


@pytest.fixture(params=["full", "lora_r2"])
def copy_of_run(request, tmp_path):
    for suffix in (".json", ".npz"):
        shutil.copy(lora_run_path(request.param).with_suffix(suffix), tmp_path / f"{request.param}{suffix}")
    return tmp_path / f"{request.param}.json"


def rewrite(path, change):
    log = json.loads(path.read_text(encoding="utf-8"))
    change(log)
    path.write_text(json.dumps(log, ensure_ascii=False), encoding="utf-8")


def test_a_copy_of_a_run_loads(copy_of_run):
    assert load_lora_run(copy_of_run).metrics == load_lora_run(copy_of_run.stem).metrics


def test_missing_log_names_the_file_and_the_command(tmp_path):
    with pytest.raises(RunLogError, match=r"lora_r4\.json does not exist.*python -m scripts\.train_lora --rank 4$"):
        load_lora_run(tmp_path / "lora_r4.json")
    with pytest.raises(RunLogError, match=r"other\.json.*python -m scripts\.train_lora --name other"):
        load_lora_run(tmp_path / "other.json")


def test_changed_weights_fail(copy_of_run):
    weights = copy_of_run.with_suffix(".npz")
    data = bytearray(weights.read_bytes())
    data[-100] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(RunLogError, match=r"\.npz.*sha256 differs"):
        load_lora_run(copy_of_run)


@pytest.mark.parametrize("change, message, kinds", [
    (lambda log: log["metrics"].pop("new_exact_match"), "metrics", "both"),
    (lambda log: log["metrics"].update(new_exact_match=1.5), r"outside \[0, 1\]", "both"),
    (lambda log: log["base"].update(weights_sha256="0" * 64), "other weights", "both"),
    (lambda log: log["config"].update(method="adapter"), "method", "both"),
    (lambda log: log["test_split"][2]["alignment"].pop(), r"test_split\[2\]", "both"),
    (lambda log: log["metrics"].update(trainable_parameters=100), "trainable_parameters", "both"),
    (lambda log: log["config"].update(rank=3), r"lora_a \(3, 16\)", "lora"),
    (lambda log: log["adapted"].pop("encoder_layers/0/self_attention/w_q"), "not list as adapted", "lora"),
    (lambda log: log["metrics"].pop("original_exact_match_without_adapter"), "without_adapter", "lora"),
    (lambda log: log["delta"]["output_projection"]["singular_values"].reverse(), "largest first", "full"),
    (lambda log: log["delta"]["output_projection"].update(frobenius=1.0), "frobenius", "full"),
    (lambda log: log["delta"].pop("source_embedding"), "an entry for each", "full"),
])  # fmt: skip
def test_malformed_logs_fail_naming_the_problem(copy_of_run, change, message, kinds):
    if kinds != "both" and not copy_of_run.stem.startswith(kinds):
        pytest.skip(f"a {kinds} run's field")
    rewrite(copy_of_run, change)
    with pytest.raises(RunLogError, match=message):
        load_lora_run(copy_of_run)
