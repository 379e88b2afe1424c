"""What RoPERotation draws equals the helpers' outputs, recomputed here independently (read back from the scene's
inventory of drawn numbers and plotted data)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.math.rope import (
    rope_decay_curve,
    rope_frequencies,
    yarn_attention_factor,
    yarn_correction_range,
    yarn_logit_scale,
)


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("rope", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


def test_section_names(record):
    assert [s.name for s in record.sections] == [
        "为什么需要位置", "加法还是乘法", "多频率时钟", "相对位置", "远程衰减", "外推"]


def test_no_position_means_same_output(numbers):
    a, b = numbers["dog_output_no_position[0]"], numbers["dog_output_no_position[1]"]
    np.testing.assert_allclose(a, b, atol=1e-12)
    ra, rb = numbers["dog_output_rope[0]"], numbers["dog_output_rope[1]"]
    assert np.abs(np.subtract(ra, rb)).max() == pytest.approx(numbers["dog_output_rope_max_difference"])
    assert numbers["dog_output_rope_max_difference"] > 0.05  # visibly different at two decimals


def _rotated_dot(q, k, m, n, base=10000.0):
    """q·k after rotating pair i of q by m·θ_i and of k by n·θ_i, written with complex numbers (RoFormer eq. 16)."""
    theta = base ** (-np.arange(0, len(q), 2) / len(q))
    zq, zk = (q[0::2] + 1j * q[1::2]) * np.exp(1j * m * theta), (k[0::2] + 1j * k[1::2]) * np.exp(1j * n * theta)
    return float(np.real(zq * np.conj(zk)).sum())


def test_rotation_keeps_length_and_relative_dot(record, numbers):
    """The readouts settle on: |q| unchanged while m turns; q·k unchanged when m and n shift together (one string
    for both settled frames); changed when only n moves."""
    assert isinstance(record.section("加法还是乘法").numbers["rotated_length"]["text"], str)
    section = record.section("相对位置").numbers
    m, n = section["query_position_m"]["value"], section["key_position_n"]["value"]
    assert n[1] - m[1] == n[0] - m[0]  # the shift kept the distance
    rng = np.random.default_rng(3)  # RoPEConfig.dot_seed, dot_dim 8
    q, k = rng.normal(size=8), rng.normal(size=8)
    shown = section["rotated_dot_product"]
    assert len(shown["text"]) == 2  # before/after the joint shift: the same string; after moving k: another
    np.testing.assert_allclose(shown["value"], [_rotated_dot(q, k, m[0], n[0]), _rotated_dot(q, k, m[1], n[2])])
    assert _rotated_dot(q, k, m[1], n[1]) == pytest.approx(_rotated_dot(q, k, m[0], n[0]), abs=1e-9)


def test_clock_and_decay_numbers(numbers, record):
    theta = [numbers[f"clock_theta[{i}]"] for i in range(4)]
    np.testing.assert_allclose(theta, rope_frequencies(8))
    steps = numbers["steps"]
    assert numbers["slowest_hand_degrees"] == pytest.approx(np.degrees(steps * rope_frequencies(8)[-1]))
    decay = record.section("远程衰减")
    for d in (0, 64, 256):
        assert decay.numbers[f"decay_bound[{d}]"]["value"] == pytest.approx(float(rope_decay_curve(128, [d])[0]))
    np.testing.assert_allclose(decay.plotted["decay_curve"], rope_decay_curve(128, np.arange(257)))


def test_extrapolation_numbers(numbers, record):
    assert numbers["pi_slowdown"] == 32
    assert (numbers["yarn_ramp_low"], numbers["yarn_ramp_high"]) == yarn_correction_range(128, 10000.0, 4096)
    assert numbers["yarn_attention_factor"] == pytest.approx(yarn_attention_factor(32))
    # The logits are scaled by the square (q and k are each multiplied): 1.81 at s = 32, not 1.35.
    assert numbers["yarn_logit_scale"] == pytest.approx(yarn_logit_scale(32)) and numbers["yarn_logit_scale"] > 1.8
    squeeze = record.section("外推").plotted["slowdown_log2"]
    np.testing.assert_allclose(squeeze["PI"], 5.0)  # every pair 32× slower
    assert squeeze["NTK"][0] == pytest.approx(0, abs=1e-12) and squeeze["NTK"][-1] == pytest.approx(5.0)
    assert numbers["ntk_slowest"] == pytest.approx(2 ** squeeze["NTK"][-1])
    assert max(squeeze["YaRN"][:20]) == pytest.approx(0, abs=1e-12) and min(squeeze["YaRN"][46:]) == pytest.approx(5)


def test_slowdown_ticks_say_what_they_mark(record):
    """÷2, ÷4 … sit at log2 positions 1, 2 …: each label's value is 2 to the power of where it sits."""
    ticks = record.section("外推").numbers["slowdown_tick"]
    assert ticks["value"] == [2**i for i in range(6)] and ticks["text"][-1] == "÷32"
