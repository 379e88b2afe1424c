"""The committed translator run (media/runs/translator/): the numpy model reproduces the torch model on its weights,
it translates the held-out sentences, its cross-attention follows the word alignment, and broken runs fail clearly."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from scripts.train_translator import Batches, TorchTranslator, TranslatorTrainConfig
from shared.corpus import build_corpus
from shared.math.tiny_transformer import EOS, weights_to_arrays
from shared.runs import (
    TRANSLATOR_COMMANDS,
    TRANSLATOR_RUNS_DIR,
    RunLogError,
    load_translator,
    translator_run_path,
)

# Sentences the scenes may show: the brief's example (in neither split) and a test sentence.
UNSEEN = ("我", "昨天", "在", "北京", "看", "了", "一", "本", "书")
REORDERED_TEST = ("我们", "上周", "在", "北京", "喂", "了", "他们", "的", "猫")


@pytest.fixture(scope="module")
def run():
    return load_translator()


@pytest.fixture(scope="module")
def torch_outputs(run):
    """The torch model of the trainer, loaded with the committed weights in float64, on the whole test split."""
    config = run.model.config
    model = TorchTranslator(config, weights_to_arrays(run.model.weights), dtype=torch.float64).eval()
    data = Batches.of(run.test_split, config, "cpu")
    with torch.no_grad():
        logits, cross = model(data.source, data.decoder_input)
    return logits.numpy(), model.greedy(data.source, data.decoder_target.shape[1]).numpy()


def test_committed_run_is_the_default_command_from_a_clean_commit(run):
    log = run.log
    assert log["command"] == TRANSLATOR_COMMANDS["zh_en"] == "python -m scripts.train_translator"
    assert f"    {log['command']}\n" in (TRANSLATOR_RUNS_DIR / "README.md").read_text(encoding="utf-8")
    assert log["config"] == dataclasses.asdict(TranslatorTrainConfig())
    provenance = log["provenance"]
    assert provenance["git_commit"] and not provenance["git_commit"].endswith("-dirty")
    assert provenance["wall_seconds"] > 0 and provenance["torch_threads"] == 1
    assert [r["step"] for r in log["history"]][-1] == log["config"]["steps"]
    # the logged test split is the corpus's, regenerated from the logged config
    config = log["config"]
    assert log["test_split"] == [p.as_dict() for p in build_corpus(config["n_train"], config["n_test"],
                                                                      config["corpus_seed"]).test]  # fmt: skip
    assert run.metrics["n_parameters"] == sum(a.size for a in weights_to_arrays(run.model.weights).values())


def test_numpy_logits_match_torch_on_the_committed_weights(run, torch_outputs):
    logits, _ = torch_outputs
    for row, pair in enumerate(run.test_split):
        ours = run.model.activations(pair.source, pair.target).logits
        np.testing.assert_allclose(ours, logits[row, : len(pair.target) + 1], rtol=0, atol=1e-6)


def test_numpy_greedy_translation_matches_torch(run, torch_outputs):
    _, greedy = torch_outputs
    vocab = run.model.config.target_vocab
    for row, pair in enumerate(run.test_split):
        ours = run.model.translate(pair.source)
        assert [vocab[i] for i in greedy[row, : len(ours) + 1]] == [*ours, EOS]


def test_committed_run_translates_the_held_out_sentences(run):
    pairs = run.test_split
    exact = np.mean([run.model.translate(p.source) == p.target for p in pairs])
    assert exact >= 0.95
    assert exact == pytest.approx(run.metrics["test_exact_match"], abs=1e-6)
    correct = total = 0
    for p in pairs:
        predicted = run.model.activations(p.source, p.target).predicted_tokens  # teacher forcing
        correct += sum(a == b for a, b in zip(predicted, (*p.target, EOS)))
        total += len(p.target) + 1
    assert correct / total == pytest.approx(run.metrics["test_token_accuracy"], abs=1e-6)


def test_cross_attention_puts_its_largest_weight_on_the_aligned_source_word(run):
    hits = aligned = 0
    for p in run.test_split:
        acts = run.model.activations(p.source, p.target)
        weights = acts.decoder_layers[-1].cross_attention.attention.weights.mean(axis=0)  # [T + 1, S], over heads
        for j, source_index in enumerate(p.alignment):  # row j is the position that predicts target word j
            if source_index is not None:
                aligned += 1
                hits += int(np.argmax(weights[j]) == source_index)
    assert aligned > 2000  # every aligned word of 400 sentences
    assert hits / aligned >= 0.8
    assert hits / aligned == pytest.approx(run.metrics["test_alignment_accuracy"], abs=1e-6)


def test_reordered_sentences_come_out_in_english_order(run):
    pair = next(p for p in run.test_split if p.source == REORDERED_TEST)
    assert not pair.is_monotonic()
    assert run.model.translate(pair.source) == pair.target == tuple("we fed their cat in Beijing last week".split())
    corpus = build_corpus()
    assert all(UNSEEN != p.source for p in corpus.train + corpus.test)
    assert run.model.translate(UNSEEN) == tuple("I read a book in Beijing yesterday".split())


def test_decoding_steps_give_top_k_probabilities(run):
    steps = run.model.decode(REORDERED_TEST, top_k=4)
    assert tuple(s.chosen for s in steps) == (*run.model.translate(REORDERED_TEST), EOS)
    for step in steps:
        assert len(step.top_tokens) == len(step.top_probabilities) == 4
        assert list(step.top_probabilities) == sorted(step.top_probabilities, reverse=True)
        assert step.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
        assert step.top_probabilities[0] == step.probabilities.max()


def test_activations_hold_every_intermediate(run):
    source, prefix = REORDERED_TEST, ("we", "fed")
    acts = run.model.activations(source, prefix)
    S, T, d, h = len(source), len(prefix) + 1, run.model.config.d_model, run.model.config.n_heads
    assert acts.source_embeddings.shape == acts.memory.shape == (S, d)
    assert acts.decoder_input.shape == acts.decoder_output.shape == (T, d)
    cross = acts.decoder_layers[0].cross_attention.attention
    assert cross.q.shape == (h, T, d // h) and cross.k.shape == cross.v.shape == (h, S, d // h)
    np.testing.assert_allclose(cross.weights.sum(-1), 1.0, atol=1e-12)
    assert acts.encoder_layers[0].feed_forward.feed_forward.hidden.shape == (S, 4 * d)
    labels, states = acts.normalized_states("decoder")
    assert labels == [(1, "self_attention"), (1, "cross_attention"), (1, "feed_forward")]  # Post-LN, no final norm
    assert states.shape == (3, T, d)
    # the last position predicts the next word
    assert run.model.config.target_vocab[int(np.argmax(acts.logits[-1]))] == "their"


# --- broken runs ----------------------------------------------------------------------------------------------------


@pytest.fixture
def copy_of_run(tmp_path):
    for suffix in (".json", ".npz"):
        shutil.copy(translator_run_path().with_suffix(suffix), tmp_path / f"zh_en{suffix}")
    return tmp_path / "zh_en.json"


def rewrite(path, change):
    log = json.loads(path.read_text(encoding="utf-8"))
    change(log)
    path.write_text(json.dumps(log, ensure_ascii=False), encoding="utf-8")


def test_a_copy_of_the_run_loads(copy_of_run):
    assert load_translator(copy_of_run).metrics == load_translator().metrics


def test_missing_log_names_the_file_and_the_command(tmp_path):
    with pytest.raises(RunLogError, match=r"nothing\.json.*python -m scripts\.train_translator --name nothing"):
        load_translator(tmp_path / "nothing.json")
    with pytest.raises(RunLogError, match=r"zh_en\.json does not exist.*python -m scripts\.train_translator$"):
        load_translator(tmp_path / "zh_en.json")


def test_missing_or_changed_weights_fail(copy_of_run):
    weights = copy_of_run.with_suffix(".npz")
    data = bytearray(weights.read_bytes())
    data[-100] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(RunLogError, match=r"zh_en\.npz.*sha256 differs.*scripts\.train_translator"):
        load_translator(copy_of_run)
    weights.unlink()
    with pytest.raises(RunLogError, match=r"zh_en\.npz.*does not exist"):
        load_translator(copy_of_run)


@pytest.mark.parametrize("change, message", [
    (lambda log: log.pop("test_split"), "test_split"),
    (lambda log: log["vocab"].pop("target"), "vocab"),
    (lambda log: log["metrics"].pop("test_exact_match"), "metrics"),
    (lambda log: log["test_split"][3]["alignment"].pop(), r"test_split\[3\]\.alignment"),
    (lambda log: log["test_split"][0]["source"].append("鱼"), r"test_split\[0\]"),
    (lambda log: log["config"].update(d_model=8), "do not make a model"),
    (lambda log: log["config"].update(n_heads=3), "do not make a model.*divisible"),
    (lambda log: log["weights"].update(file="other.npz"), r"other\.npz.*does not exist"),
])  # fmt: skip
def test_malformed_logs_fail_naming_the_problem(copy_of_run, change, message):
    rewrite(copy_of_run, change)
    with pytest.raises(RunLogError, match=message):
        load_translator(copy_of_run)
