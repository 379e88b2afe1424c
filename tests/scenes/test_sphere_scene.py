"""What VectorsOnSphere draws: exact geometry (plane, radius √d), the trained translator's standardised states, and
the statistics it plots — each recomputed here independently."""

from __future__ import annotations

import numpy as np
import pytest

from shared.runs import load_translator


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("sphere", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


def test_layer_norm_geometry_is_exact(record, numbers):
    # The readout of 减去均值 settles on 0: every centred vector sums to 0 (the plane ⟂ (1, 1, 1)).
    assert record.section("减去均值").numbers["max_abs_component_sum"]["text"][-1] == "0.0000"
    lengths = record.section("除以标准差").numbers
    # LayerNorm: radius √3·σ/√(σ² + ε), a hair under √3; RMSNorm: exactly √3 (to the 4 decimals drawn)
    assert float(lengths["layer_norm_mean_length"]["text"][-1]) == pytest.approx(np.sqrt(3), abs=2e-4)
    assert lengths["rms_norm_mean_length"]["text"][-1] == f"{np.sqrt(3):.4f}"
    assert numbers["sphere_radius"] == pytest.approx(np.sqrt(3))


def test_model_states_are_the_trained_translators(record, numbers):
    """The paths are the trained model's encoder states for a test sentence it never saw, standardised by each
    LayerNorm (radius √d·σ/√(σ² + ε) ≈ 4 for d = 16), recomputed here with torch-free numpy from the weights."""
    run = load_translator()
    source = min(run.test_split, key=lambda pair: len(pair.source)).source
    acts = run.model.activations(source, run.model.translate(source))
    states = [sub.norm.input for layer in acts.encoder_layers for sub in layer.sublayers]
    standardised = [(x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) for x in states]
    norms = np.linalg.norm(np.stack(standardised), axis=-1)
    assert numbers["standardized_norm_mean"] == pytest.approx(norms.mean(), rel=1e-9)
    assert numbers["d_model"] == 16 and numbers["standardized_norm_mean"] == pytest.approx(4.0, abs=1e-3)
    paths = np.asarray(record.section("球面上滑行").plotted["sphere_paths"])
    assert paths.shape == (1 + len(states), len(source), 3)
    np.testing.assert_allclose(np.linalg.norm(paths, axis=-1), 1.0)  # directions on the unit sphere


def test_cosine_spread_shrinks_like_one_over_sqrt_d(numbers):
    dims = [3, 64, 768, 12288]
    measured = [numbers[f"cosine_std[{d}]"] for d in dims]
    assert measured == sorted(measured, reverse=True)
    for d, std in zip(dims, measured):
        assert std == pytest.approx(1 / np.sqrt(d), rel=0.05)  # 4000 pairs: ~1.1 % standard error


def test_scaling_by_sqrt_d(numbers):
    assert numbers["raw_variance"] == pytest.approx(64, rel=0.15)
    assert numbers["scaled_variance"] == pytest.approx(numbers["raw_variance"] / 64)
    assert numbers["softmax_max_mean_raw_w"] > 0.8 > 0.5 > numbers["softmax_max_mean_scaled_w"]
