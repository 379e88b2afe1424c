"""The numbers RoPERotation shows are the helpers' outputs (read back from the scene's record)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.math.rope import rope_decay_curve, rope_frequencies, yarn_attention_factor, yarn_correction_range


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("rope", "16:9")
    return record.numbers


def test_section_names(scene_run):
    record, _, _ = scene_run("rope", "16:9")
    assert [s.name for s in record.sections] == [
        "为什么需要位置", "加法还是乘法", "多频率时钟", "相对位置", "远程衰减", "外推"]


def test_no_position_means_same_output(numbers):
    a, b = numbers["dog_output_no_position"]
    np.testing.assert_allclose(a, b, atol=1e-12)
    ra, rb = numbers["dog_output_rope"]
    assert np.abs(np.subtract(ra, rb)).max() == pytest.approx(numbers["dog_output_rope_max_difference"])
    assert numbers["dog_output_rope_max_difference"] > 0.05  # visibly different at two decimals


def test_rotation_keeps_length_and_relative_dot(numbers):
    assert numbers["rope_theta0"] == rope_frequencies(2)[0] == 1.0
    assert numbers["dot_shift_invariance_error"] < 1e-9
    assert abs(numbers["dot_after_moving_k"] - numbers["dot_after_shift"]) > 0.1


def test_clock_and_decay_numbers(numbers):
    np.testing.assert_allclose(numbers["clock_theta"], rope_frequencies(8))
    marks = numbers["decay_marks"]
    np.testing.assert_allclose(list(marks.values()), rope_decay_curve(128, list(marks)))
    assert marks[0] == pytest.approx(32.5) and marks[64] == pytest.approx(10.09, abs=0.005)


def test_extrapolation_numbers(numbers):
    assert numbers["scale"] == 32
    assert tuple(numbers["yarn_range"]) == yarn_correction_range(128, 10000.0, 4096) == (20, 46)
    assert numbers["yarn_attention_factor"] == pytest.approx(yarn_attention_factor(32))
    squeeze = numbers["squeeze_log2"]
    np.testing.assert_allclose(squeeze["PI"], 5.0)  # every pair 32× slower
    assert squeeze["NTK"][0] == pytest.approx(0, abs=1e-12) and squeeze["NTK"][-1] == pytest.approx(5.0)
    assert max(squeeze["YaRN"][:20]) == pytest.approx(0, abs=1e-12) and min(squeeze["YaRN"][46:]) == pytest.approx(5)
