"""The translator trainer (scripts/train_translator.py): its torch model is the numpy model, runs are deterministic
and resume exactly, the log and weights it writes, and its guards. CUDA variants are skipped without a GPU."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scripts.train_translator import (
    Batches,
    CheckpointMismatch,
    TorchTranslator,
    TranslatorTrainConfig,
    command_line,
    main,
    stream_seed,
    train,
    weights_path,
)
from shared.corpus import SentencePair, build_corpus
from shared.math.tiny_transformer import (
    EOS,
    Translator,
    forward,
    init_weights,
    weights_from_arrays,
    weights_to_arrays,
)

# Small enough for a second or two on one core, big enough to start translating.
TINY = TranslatorTrainConfig(n_train=200, n_test=20, d_model=8, steps=60, batch_size=16, log_every=20, warmup_steps=10)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def comparable(log: dict) -> dict:
    """All that a rerun must reproduce: not the provenance, nor the names (in the command and the weights entry)."""
    return {k: v for k, v in log.items() if k not in ("provenance", "command")} | {
        "weights": log["weights"]["sha256"]
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("translator") / "tiny.json"
    return out, train(TINY, out, device="cpu", progress=False)


# --- the torch model is the numpy model ----------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {},
    {"norm_position": "pre", "n_encoder_layers": 2, "n_decoder_layers": 2, "norm_affine_std": 0.1, "seed": 3},
    {"d_model": 12, "n_heads": 3, "norm_affine_std": 0.2, "seed": 4},
])  # fmt: skip
def test_torch_model_matches_numpy_forward_on_a_padded_batch(options):
    corpus = build_corpus(n_train=1, n_test=6, seed=5)
    config = dataclasses.replace(TINY.model_config(), **options)
    weights = init_weights(config)
    model = TorchTranslator(config, weights_to_arrays(weights), dtype=torch.float64).eval()
    batch = Batches.of(corpus.test, config, "cpu")  # sentences of different lengths, padded
    assert len({len(p.source) for p in corpus.test}) > 1
    with torch.no_grad():
        logits, cross = model(batch.source, batch.decoder_input)
    for row, pair in enumerate(corpus.test):
        acts = forward(config, weights, pair.source, pair.target)
        S, T = len(pair.source), len(pair.target) + 1
        np.testing.assert_allclose(logits[row, :T].numpy(), acts.logits, rtol=0, atol=1e-10)
        np.testing.assert_allclose(cross[row, :, :T, :S].numpy(), acts.decoder_layers[-1].cross_attention.attention
                                   .weights, rtol=0, atol=1e-12)  # fmt: skip
        assert torch.all(cross[row, :, :T, S:] == 0)  # padding gets no attention


def test_torch_greedy_decoding_matches_numpy():
    config = TINY.model_config()
    weights = init_weights(config)
    model = TorchTranslator(config, weights_to_arrays(weights), dtype=torch.float64).eval()
    pairs = build_corpus(n_train=1, n_test=4, seed=2).test
    greedy = model.greedy(Batches.of(pairs, config, "cpu").source, max_tokens=12)
    numpy_model = Translator(config, weights, max_length=12)
    for row, pair in enumerate(pairs):
        steps = numpy_model.decode(pair.source)
        assert [config.target_vocab[i] for i in greedy[row, : len(steps)]] == [s.chosen for s in steps]


# --- runs ----------------------------------------------------------------------------------------------------------


def test_tiny_run_writes_its_log_and_weights(tiny_run):
    out, log = tiny_run
    assert json.loads(out.read_text(encoding="utf-8")) == log
    assert log["config"] == dataclasses.asdict(TINY)
    assert [r["step"] for r in log["history"]] == [0, 20, 40, 60]
    provenance = log["provenance"]
    assert provenance["device"] and provenance["torch_version"] == torch.__version__
    assert provenance["cuda_version"] is None and provenance["wall_seconds"] > 0 and provenance["torch_threads"] == 1
    assert "git_commit" in provenance and provenance["started_at"]
    assert log["test_split"] == [p.as_dict() for p in build_corpus(200, 20, 0).test]
    # the weights file is the one the log names, and it is the numpy model's layout
    npz = weights_path(out)
    assert log["weights"]["file"] == npz.name
    arrays = dict(np.load(npz))
    weights = weights_from_arrays(TINY.model_config(), arrays)
    assert log["metrics"]["n_parameters"] == sum(a.size for a in arrays.values())
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert log["history"][-1]["train_loss"] < log["history"][1]["train_loss"]  # it learns
    # the logged metrics are what the numpy model computes from the saved weights (independent of evaluate())
    model = Translator(TINY.model_config(), weights)
    pairs = [SentencePair.from_dict(d) for d in log["test_split"]]
    exact = np.mean([model.translate(p.source) == p.target for p in pairs])
    correct = total = 0
    for p in pairs:
        predicted = model.activations(p.source, p.target).predicted_tokens
        correct += sum(a == b for a, b in zip(predicted, (*p.target, EOS)))
        total += len(p.target) + 1
    assert log["metrics"]["test_exact_match"] == pytest.approx(exact, abs=1e-6)
    assert log["metrics"]["test_token_accuracy"] == pytest.approx(correct / total, abs=1e-6)


def test_same_seed_gives_the_same_run_and_another_seed_does_not(tiny_run, tmp_path):
    out, first = tiny_run
    again = train(TINY, tmp_path / "again.json", device="cpu", progress=False)
    assert comparable(again) == comparable(first)
    other = train(dataclasses.replace(TINY, seed=1), tmp_path / "other.json", device="cpu", progress=False)
    assert other["history"] != first["history"]


@pytest.mark.parametrize("stops", [(33,), (20, 47)])  # between records; at a record, then again
def test_resume_gives_the_same_run_as_an_uninterrupted_one(tiny_run, tmp_path, stops):
    _, uninterrupted = tiny_run
    checkpoint, out = tmp_path / "tiny.pt", tmp_path / "tiny.json"
    for stop in stops:
        assert train(TINY, out, device="cpu", checkpoint=checkpoint, stop_after=stop, progress=False) is None
        assert checkpoint.exists() and not out.exists()
    resumed = train(TINY, out, device="cpu", checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(uninterrupted)
    assert not checkpoint.exists()  # a finished run leaves no checkpoint


def test_random_streams_never_share_a_seed():
    seeds = [stream_seed(seed, purpose, step) for seed in range(3) for purpose in ("batch", "dropout")
             for step in range(3000)]  # fmt: skip
    assert len(set(seeds)) == len(seeds)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    train(TINY, tmp_path / "a.json", device="cpu", checkpoint=checkpoint, stop_after=10, progress=False)
    with pytest.raises(CheckpointMismatch, match="lr"):
        train(dataclasses.replace(TINY, lr=1e-3), tmp_path / "a.json", device="cpu", checkpoint=checkpoint,
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

TINY_ARGS = ["--n-train", "200", "--n-test", "20", "--d-model", "8", "--steps", "60", "--batch-size", "16",
             "--warmup-steps", "10", "--log-every", "20"]  # fmt: skip


def test_cli_writes_the_run_and_records_its_command(tiny_run, tmp_path):
    args = [*TINY_ARGS, "--device", "cpu", "--out-dir", str(tmp_path), "--name", "cli", "--no-checkpoint", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    log = json.loads((tmp_path / "cli.json").read_text())
    assert log["command"] == "python -m scripts.train_translator " + " ".join(TINY_ARGS) + " --name cli"
    assert log["command"] == command_line(TINY, "cli")
    assert comparable(log) == comparable(tiny_run[1])
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--force" in again.output


def test_command_line_of_the_defaults_is_the_bare_command():
    assert command_line(TranslatorTrainConfig()) == "python -m scripts.train_translator"


@pytest.mark.parametrize("args, message", [
    (["--d-model", "10", "--n-heads", "4"], "divisible"),
    (["--d-model", "9", "--n-heads", "3"], "even"),
    (["--steps", "0"], "steps = 0"),
    (["--dropout", "1.0"], "dropout"),
    (["--lr", "0"], "lr"),
    (["--stop-after", "5", "--no-checkpoint"], "checkpoint"),
])  # fmt: skip
def test_cli_rejects_bad_options_before_training(tmp_path, args, message):
    result = CliRunner().invoke(main, [*args, "--out-dir", str(tmp_path), "--quiet", "--device", "cpu"])
    assert result.exit_code != 0 and message in result.output
    assert not list(tmp_path.iterdir())


def test_explainer_cli_has_the_command():
    from scripts.cli import main as explainer

    result = CliRunner().invoke(explainer, ["train-translator", "--help"])
    assert result.exit_code == 0 and "--force" in result.output and "--d-model" in result.output


# --- CUDA ----------------------------------------------------------------------------------------------------------


@needs_cuda
def test_cuda_run_is_deterministic_resumes_exactly_and_names_the_gpu(tmp_path):
    first = train(TINY, tmp_path / "a.json", device="cuda", progress=False)
    assert first["provenance"]["device"] == torch.cuda.get_device_name(0)
    assert first["provenance"]["cuda_version"] == torch.version.cuda is not None
    assert comparable(train(TINY, tmp_path / "b.json", device="cuda", progress=False)) == comparable(first)
    checkpoint = tmp_path / "c.pt"
    assert train(TINY, tmp_path / "c.json", device="cuda", checkpoint=checkpoint, stop_after=33,
                 progress=False) is None  # fmt: skip
    resumed = train(TINY, tmp_path / "c.json", device="cuda", checkpoint=checkpoint, progress=False)
    assert comparable(resumed) == comparable(first)


@needs_cuda
def test_cuda_run_starts_where_the_cpu_run_starts(tiny_run, tmp_path):
    _, cpu = tiny_run
    gpu = train(TINY, tmp_path / "g.json", device="cuda", progress=False)
    assert gpu["test_split"] == cpu["test_split"]
    # same initial weights and test set; after that the dropout masks differ (CUDA draws them from its own generator)
    for key in ("test_loss", "test_token_accuracy", "test_exact_match", "test_alignment_accuracy"):
        assert gpu["history"][0][key] == pytest.approx(cpu["history"][0][key], rel=1e-4), key
