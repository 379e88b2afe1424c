"""The numbers VectorsOnSphere shows: exact geometry (plane, radius √d) and the statistics it plots."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("sphere", "16:9")
    return record.numbers


def test_layer_norm_geometry_is_exact(numbers):
    assert numbers["max_abs_sum_after_centering"] < 1e-12  # on the plane ⟂ (1, 1, 1)
    assert numbers["layer_norm_plane_max_abs_sum"] < 1e-12
    # radius √3·σ/√(σ² + ε): a hair under √3 because of eps
    assert numbers["layer_norm_radius_mean"] == pytest.approx(np.sqrt(3), abs=1e-4)
    assert numbers["layer_norm_radius_mean"] < np.sqrt(3)
    assert numbers["rms_norm_radius_mean"] == pytest.approx(np.sqrt(3), rel=1e-12)


def test_model_states_lie_on_the_sqrt_d_sphere(numbers):
    norms = np.array(numbers["state_norms"])
    np.testing.assert_allclose(norms, np.sqrt(8), rtol=1e-5)  # every LayerNorm output of the d = 8 model
    assert 0.5 < numbers["pca_explained_variance"] <= 1


def test_cosine_spread_shrinks_like_one_over_sqrt_d(numbers):
    measured, theory = numbers["cosine_std"], numbers["cosine_std_theory"]
    dims = sorted(measured)
    assert [measured[d] for d in dims] == sorted(measured.values(), reverse=True)
    for d in dims:
        assert measured[d] == pytest.approx(theory[d], rel=0.05)  # 4000 pairs: ~1.1 % standard error


def test_scaling_by_sqrt_d(numbers):
    variance = numbers["score_variance"]
    assert variance["raw"] == pytest.approx(64, rel=0.15)
    assert variance["scaled"] == pytest.approx(1, rel=0.15)
    assert variance["raw"] / variance["scaled"] == pytest.approx(64)
    top = numbers["softmax_max_mean"]
    assert top["raw"] > 0.8 > 0.5 > top["scaled"]
