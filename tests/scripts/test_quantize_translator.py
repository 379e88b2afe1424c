"""The quantization run script (scripts/quantize_translator.py) on a few sentences: the log it writes validates and
is deterministic, its measurements are the ones computed independently here, and its guards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch
from click.testing import CliRunner

from scripts.quantize_translator import (
    FORMATS,
    channel_layout,
    command_line,
    evaluate,
    main,
    outlier_statistics,
    quantize,
    run,
)
from scripts.train_translator import Batches, TorchTranslator
from scripts.train_translator import evaluate as torch_evaluate
from shared.math.tiny_transformer import weights_to_arrays
from shared.runs import load_quant_run, load_translator

FEW = ["--sentences", "3", "--format", "int4", "--format", "fp4_e2m1"]


def comparable(log: dict) -> dict:
    return {k: v for k, v in log.items() if k != "provenance"}


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    out = tmp_path_factory.mktemp("quant") / "few.json"
    return out, run(out, sentences=3, formats=("int4", "fp4_e2m1"), progress=False)


def test_log_validates_and_holds_every_setting(few):
    out, log = few
    assert load_quant_run(out) == log
    assert [(r["format"], r["granularity"]) for r in log["history"]] == [
        (f, g) for f in ("int4", "fp4_e2m1") for g in ("tensor", "channel", "group")]
    assert log["command"] == "python -m scripts.quantize_translator --name few --sentences 3 --format int4 " \
                             "--format fp4_e2m1"
    assert log["config"]["n_test"] == 3 and log["provenance"]["wall_seconds"] > 0


def test_same_weights_give_the_same_log(few, tmp_path):
    assert comparable(run(tmp_path / "few.json", sentences=3, formats=("int4", "fp4_e2m1"), progress=False)) \
        == comparable(few[1])


def test_refuses_to_overwrite_without_force(few):
    out, log = few
    before = out.read_bytes()
    with pytest.raises(Exception, match="--force"):
        run(out, sentences=3, formats=("int4",), progress=False)
    assert out.read_bytes() == before


def test_accuracy_equals_the_torch_models(few):
    """The numpy evaluation of the first three test sentences, against the trainer's torch evaluation (float64) with
    the same dequantized weights."""
    _, log = few
    source = load_translator()
    pairs = source.test_split[:3]
    arrays = weights_to_arrays(source.model.weights)
    for record in log["history"]:
        quantized = {k: channel_layout(k, quantize(channel_layout(k, v), record["format"], record["granularity"], 8))
                     if np.ndim(v) == 2 else v for k, v in arrays.items()}  # fmt: skip
        model = TorchTranslator(source.model.config, quantized, dtype=torch.float64).eval()
        expected = torch_evaluate(model, Batches.of(pairs, source.model.config, "cpu"))
        assert record["test_exact_match"] == pytest.approx(expected["exact_match"], rel=1e-5)
        assert record["test_token_accuracy"] == pytest.approx(expected["token_accuracy"], rel=1e-5)
        assert record["test_loss"] == pytest.approx(expected["loss"], rel=1e-4)


def test_evaluate_counts_a_wrong_translation():
    source = load_translator()
    pair = source.test_split[0]
    other = next(t for t in ("apple", "book") if t != pair.target[-1])
    wrong = type(pair)(pair.source, (*pair.target[:-1], other), pair.alignment)
    result = evaluate(source.model, [pair, wrong])
    assert result["test_exact_match"] == 0.5
    assert 0.5 < result["test_token_accuracy"] < 1  # the changed word is not predicted; the words before it are
    assert result["test_loss"] > evaluate(source.model, [pair])["test_loss"]


def test_outlier_statistics_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.standard_t(df=5, size=(16, 64)).astype(np.float32)
    stats = outlier_statistics(x)
    assert stats["excess_kurtosis"] == pytest.approx(scipy.stats.kurtosis(x.ravel().astype(np.float64)), rel=1e-9)
    assert stats["max_over_std"] == pytest.approx(np.abs(x).max() / np.std(x.astype(np.float64)), rel=1e-9)


def test_quantized_values_lie_on_each_formats_grid():
    """Per channel, every dequantized weight is a code times its channel's scale: 2^b levels for INT b, the FP4
    values for FP4 (scale amax / 6, so each channel's largest |w| is 6 scales)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 16)).astype(np.float32)
    amax = np.abs(x).max(axis=1, keepdims=True)
    for bits in (8, 4, 3, 2):
        steps = quantize(x, f"int{bits}", "channel", 8) / (amax / ((2**bits - 1) / 2))
        np.testing.assert_allclose(steps, np.rint(steps), atol=1e-4)
        assert steps.min() >= -(2 ** (bits - 1)) - 1e-4 and steps.max() <= 2 ** (bits - 1) - 1 + 1e-4
    fp4 = np.abs(quantize(x, "fp4_e2m1", "channel", 8) / (amax / 6))
    assert np.isin(np.round(fp4, 4), [0, 0.5, 1, 1.5, 2, 3, 4, 6]).all()
    assert np.allclose(fp4.max(axis=1), 6)


def test_cli_writes_the_log_and_refuses_bad_options(few, tmp_path):
    result = CliRunner().invoke(main, [*FEW, "--out-dir", str(tmp_path), "--name", "few", "--quiet"])
    assert result.exit_code == 0, result.output
    assert comparable(json.loads((tmp_path / "few.json").read_text())) == comparable(few[1])
    again = CliRunner().invoke(main, [*FEW, "--out-dir", str(tmp_path), "--name", "few", "--quiet"])
    assert again.exit_code != 0 and "--force" in again.output
    for args, message in ((["--group-size", "5"], "must divide every matrix's inputs"),
                          (["--sentences", "0"], "--sentences must be at least 1")):  # fmt: skip
        bad = CliRunner().invoke(main, [*args, "--out-dir", str(tmp_path / "bad"), "--quiet"])
        assert bad.exit_code != 0 and message in bad.output
        assert not (tmp_path / "bad").exists()


def test_command_line_of_the_defaults_is_the_bare_command():
    assert command_line("translator", 8, 20.0, None, FORMATS) == "python -m scripts.quantize_translator"


def test_explainer_cli_has_the_command():
    from scripts.cli import main as explainer

    result = CliRunner().invoke(explainer, ["quantize-translator", "--help"])
    assert result.exit_code == 0 and "--force" in result.output and "--group-size" in result.output
