"""The committed quantization run (media/runs/quant/): every rounding redone with torch's own operations, every
accuracy with the trainer's torch model, the outlier statistics with scipy, and broken logs fail clearly."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from scripts.quantize_translator import channel_layout, quantize
from scripts.train_translator import Batches, TorchTranslator
from scripts.train_translator import evaluate as torch_evaluate
from shared.math.tiny_transformer import weights_to_arrays
from shared.runs import QUANT_COMMANDS, QUANT_RUNS_DIR, RunLogError, load_quant_run, load_translator

ROOT = Path(__file__).resolve().parents[2]
INT_BITS = {"int8": 8, "int4": 4, "int3": 3, "int2": 2}
FP8 = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
E2M1_MAGNITUDES = [0, 0.5, 1, 1.5, 2, 3, 4, 6]  # OCP MX v1.0 §5.3.3


def torch_fp4_reference():
    """torch's FP4 E2M1 reference encoder and decoder, as tests/math/test_quant.py loads them."""
    spec = importlib.util.spec_from_file_location("quant_reference", ROOT / "tests" / "math" / "test_quant.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FP4_ENCODE, module.FP4_DECODE


FP4_ENCODE, FP4_DECODE = torch_fp4_reference()


@pytest.fixture(scope="module")
def log():
    return load_quant_run()


@pytest.fixture(scope="module")
def source():
    return load_translator()


@pytest.fixture(scope="module")
def matrices(source):
    """The quantized matrices as torch tensors (channels, inputs), float32."""
    arrays = weights_to_arrays(source.model.weights)
    return {k: torch.from_numpy(channel_layout(k, v).copy()) for k, v in arrays.items() if np.ndim(v) == 2}


def torch_quantize(x: torch.Tensor, fmt: str, granularity: str, group_size: int) -> torch.Tensor:
    """Quantize and dequantize with torch: its observers and fake quantization for integers, its float8 casts, its FP4
    reference encoder."""
    blocks = {"tensor": x.reshape(1, -1), "channel": x, "group": x.reshape(-1, group_size)}[granularity]
    if fmt in INT_BITS:
        bits = INT_BITS[fmt]
        limits = dict(dtype=torch.qint8, quant_min=-(2 ** (bits - 1)), quant_max=2 ** (bits - 1) - 1)
        if granularity == "tensor":
            observer = MinMaxObserver(qscheme=torch.per_tensor_symmetric, **limits)
            observer(x)
            scale, zero_point = observer.calculate_qparams()
            return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), limits["quant_min"],
                                                         limits["quant_max"])  # fmt: skip
        observer = PerChannelMinMaxObserver(ch_axis=0, qscheme=torch.per_channel_symmetric, **limits)
        observer(blocks)
        scale, zero_point = observer.calculate_qparams()
        return torch.fake_quantize_per_channel_affine(blocks, scale.float(), zero_point.int(), 0, limits["quant_min"],
                                                      limits["quant_max"]).reshape(x.shape)  # fmt: skip
    largest = {"fp8_e4m3fn": torch.finfo(torch.float8_e4m3fn).max, "fp8_e5m2": torch.finfo(torch.float8_e5m2).max,
               "fp4_e2m1": max(E2M1_MAGNITUDES)}[fmt]  # fmt: skip
    scale = (blocks.abs().amax(dim=-1, keepdim=True) / largest).clamp_min(torch.finfo(torch.float32).eps)
    if fmt == "fp4_e2m1":
        return (FP4_DECODE(FP4_ENCODE(blocks / scale)) * scale).reshape(x.shape)
    return ((blocks / scale).to(FP8[fmt]).float() * scale).reshape(x.shape)


def relative_rms(q: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm((q.double() - x.double())) / torch.linalg.vector_norm(x.double()))


def test_committed_run_is_the_default_command_from_a_clean_commit(log, source, matrices):
    assert log["command"] == QUANT_COMMANDS["translator"] == "python -m scripts.quantize_translator"
    assert f"    {log['command']}\n" in (QUANT_RUNS_DIR / "README.md").read_text(encoding="utf-8")
    config = log["config"]
    assert (config["group_size"], config["outlier_factor"], config["n_test"]) == (8, 20.0, len(source.test_split))
    assert config["source_weights_sha256"] == source.log["weights"]["sha256"]
    assert log["provenance"]["git_commit"] and not log["provenance"]["git_commit"].endswith("-dirty")
    assert log["parameters"] == {"quantized": sum(x.numel() for x in matrices.values()),
                                 "total": source.metrics["n_parameters"]}  # fmt: skip
    assert {k: v["shape"] for k, v in log["matrices"].items()} == {k: list(x.shape) for k, x in matrices.items()}


def test_every_rounding_is_torchs_and_the_logged_errors_follow(log, matrices):
    """For every setting and matrix: the script's dequantized weights equal torch's bit for bit, and the logged
    errors are those of torch's weights."""
    group_size = log["config"]["group_size"]
    for record in log["history"]:
        fmt, granularity = record["format"], record["granularity"]
        everything, originals = [], []
        for name, x in matrices.items():
            expected = torch_quantize(x, fmt, granularity, group_size)
            ours = quantize(x.numpy(), fmt, granularity, group_size)
            assert np.array_equal(ours.view(np.uint32), expected.numpy().view(np.uint32)), (fmt, granularity, name)
            rel, largest = record["matrices"][name]
            assert rel == pytest.approx(relative_rms(expected, x), rel=1e-5, abs=1e-9)
            assert largest == pytest.approx(float((expected.double() - x.double()).abs().max()), rel=1e-5)
            everything.append(expected.ravel()), originals.append(x.ravel())
        assert record["relative_rms_error"] == pytest.approx(relative_rms(torch.cat(everything), torch.cat(originals)),
                                                             rel=1e-5)  # fmt: skip


def test_accuracy_of_every_setting_is_the_torch_models(log, source, matrices):
    config = source.model.config
    data = Batches.of(source.test_split, config, "cpu")
    arrays = weights_to_arrays(source.model.weights)
    baseline = torch_evaluate(TorchTranslator(config, arrays, dtype=torch.float64).eval(), data)
    assert log["baseline"] == pytest.approx({"test_exact_match": baseline["exact_match"],
                                             "test_token_accuracy": baseline["token_accuracy"],
                                             "test_loss": baseline["loss"]}, rel=1e-5)  # fmt: skip
    for record in log["history"]:
        quantized = {**arrays, **{k: channel_layout(k, torch_quantize(x, record["format"], record["granularity"],
                                                                      log["config"]["group_size"]).numpy())
                                  for k, x in matrices.items()}}  # fmt: skip
        expected = torch_evaluate(TorchTranslator(config, quantized, dtype=torch.float64).eval(), data)
        assert record["test_exact_match"] == pytest.approx(expected["exact_match"], rel=1e-5)
        assert record["test_token_accuracy"] == pytest.approx(expected["token_accuracy"], rel=1e-5)
        assert record["test_loss"] == pytest.approx(expected["loss"], rel=1e-4)


def test_the_tiny_model_has_no_outliers(log, matrices):
    for name, x in matrices.items():
        w = x.double().numpy().ravel()
        stats = log["matrices"][name]
        assert stats["excess_kurtosis"] == pytest.approx(scipy.stats.kurtosis(w), rel=1e-5, abs=1e-6)
        assert stats["max_over_std"] == pytest.approx(np.abs(w).max() / w.std(), rel=1e-5)
        assert stats["max_over_std"] < 4  # nothing like LLM.int8()'s 20× features


def test_number_line_is_torchs_int8_and_int4_of_a_real_row(log, matrices):
    line = log["number_line"]
    x = matrices[line["matrix"]]
    row = x[line["channel"]]
    np.testing.assert_allclose(line["weights"], row.numpy(), rtol=1e-5)
    for bits in (8, 4):
        q = line[f"int{bits}"]
        expected = torch_quantize(x, f"int{bits}", "channel", 8)[line["channel"]]
        np.testing.assert_allclose(q["dequantized"], expected.numpy(), rtol=1e-5, atol=1e-9)
        scale = float(row.abs().max()) / ((2**bits - 1) / 2)
        assert q["scale"] == pytest.approx(scale, rel=1e-5) and q["zero_point"] == 0
        np.testing.assert_allclose(np.array(q["codes"]) * q["scale"], q["dequantized"], rtol=1e-4, atol=1e-7)
        assert q["max_abs_error"] == pytest.approx(float((expected.double() - row.double()).abs().max()), rel=1e-5)
    q4 = line["int4"]  # the row was chosen because INT4 clamps one of its weights: its code 8 becomes 7
    clamped = [i for i, (a, b) in enumerate(zip(q4["unclamped_codes"], q4["codes"])) if a != b]
    assert clamped and all(q4["unclamped_codes"][i] == 8 and q4["codes"][i] == 7 for i in clamped)
    assert all(abs(row[i]) == row.abs().max() for i in clamped)


def test_constructed_outlier_crushes_the_per_tensor_grid(log, matrices):
    demo = log["outlier"]
    x = matrices[demo["matrix"]].clone()
    original = x.clone()
    c, j = demo["channel"], demo["input"]
    assert int(original[c].abs().argmax()) == j
    x[c, j] = demo["factor"] * original[c, j]
    assert demo["value"] == pytest.approx(float(x[c, j]), rel=1e-5)
    others = torch.ones(x.shape, dtype=torch.bool)
    others[c, j] = False
    for label, matrix in (("with_outlier", x), ("without_outlier", original)):
        for granularity, entry in demo[label].items():
            q = torch_quantize(matrix, "int4", granularity, log["config"]["group_size"])
            assert entry["matrix_others_relative_rms_error"] == pytest.approx(relative_rms(q[others],
                                                                                          original[others]), rel=1e-5)
            assert entry["row_others_relative_rms_error"] == pytest.approx(
                relative_rms(q[c][others[c]], original[c][others[c]]), rel=1e-5)
    per_tensor = demo["with_outlier"]["tensor"]
    assert per_tensor["scales"][0] == pytest.approx(abs(demo["value"]) / 7.5, rel=1e-5)
    assert per_tensor["codes_used_by_matrix_others"] <= 2 and per_tensor["codes_used_by_row_others"] == 1
    assert demo["without_outlier"]["tensor"]["codes_used_by_matrix_others"] >= 10


def test_grid_comparison(log, matrices):
    grids = log["grids"]
    # FP4's steps (over 6) are finer than INT4's (1 / 7.5) up to 2 / 6: between 2 and 4 they are 1 / 6.
    assert grids["fp4_finer_below"] == pytest.approx(2 / 6, rel=1e-5)
    np.testing.assert_allclose(grids["fp4_levels"], np.array(E2M1_MAGNITUDES) / 6, rtol=1e-5)
    for granularity in ("tensor", "channel", "group"):
        relative = torch.cat([
            (b / b.abs().amax(dim=-1, keepdim=True)).ravel()
            for b in ({"tensor": x.reshape(1, -1), "channel": x, "group": x.reshape(-1, 8)}[granularity]
                      for x in matrices.values())
        ])  # fmt: skip
        counts = torch.histc(relative, bins=len(grids["bins"]) - 1, min=-1, max=1)
        assert grids[granularity]["histogram"] == counts.int().tolist()
        share = float((relative.abs() < 2 / 6).double().mean())
        assert grids[granularity]["share_fp4_finer"] == pytest.approx(share, rel=1e-5)


def test_broken_logs_fail_clearly(tmp_path, log):
    path = tmp_path / "broken.json"

    def broken(change) -> str:
        copy = json.loads(json.dumps(log))
        change(copy)
        path.write_text(json.dumps(copy))
        with pytest.raises(RunLogError) as err:
            load_quant_run(path)
        assert str(path) in str(err.value) and "scripts.quantize_translator" in str(err.value)
        return str(err.value)

    assert "other weights" in broken(lambda c: c["config"].update(source_weights_sha256="0" * 64))
    assert "one record per format" in broken(lambda c: c["history"].pop())
    assert "accuracy outside" in broken(lambda c: c["history"][0].update(test_exact_match=1.5))
    assert "error pair" in broken(lambda c: c["history"][0]["matrices"].popitem())
    assert "code in [qmin, qmax]" in broken(lambda c: c["number_line"]["int4"]["codes"].__setitem__(0, 9))
    assert "one entry per granularity" in broken(lambda c: c["outlier"]["with_outlier"].pop("group"))
    assert "count every quantized weight" in broken(lambda c: c["grids"]["tensor"]["histogram"].pop())
    assert "test_loss" in broken(lambda c: c["baseline"].pop("test_loss"))
    shutil.copy(QUANT_RUNS_DIR / "translator.json", path)
    assert load_quant_run(path) == log
