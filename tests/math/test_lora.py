"""shared/math/lora.py against a torch transcription of PEFT's LoRA ``Linear`` layer, ``torch.linalg.svd``,
published LoRA and ZeRO numbers, and a byte count of real torch tensors after an Adam step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shared.math.lora import (
    TrainingMemory,
    adapter_parameter_count,
    best_rank_r,
    finetune_memory_bytes,
    lora_forward,
    lora_parameter_count,
    low_rank_energy,
    merge_lora,
)

RANDOM_CASES = 30
TOL = 1e-11


# --- torch reference: PEFT's LoRA Linear, transcribed (one adapter, no DoRA, fan_in_fan_out=False) ----------------


class PeftLoraLinear(nn.Module):
    """``peft.tuners.lora.layer.LoraLayer.update_layer`` + ``Linear.forward`` / ``get_delta_weight`` / ``merge``."""

    def __init__(self, base_layer: nn.Linear, r: int, lora_alpha: float, lora_dropout: float = 0.0):
        super().__init__()
        self.base_layer = base_layer
        self.scaling = lora_alpha / r
        self.lora_dropout = nn.Dropout(p=lora_dropout) if lora_dropout > 0.0 else nn.Identity()
        dtype = base_layer.weight.dtype
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False, dtype=dtype)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False, dtype=dtype)
        # reset_lora_parameters with init_lora_weights=True
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.merged = False

    def get_delta_weight(self) -> torch.Tensor:
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merge(self) -> None:
        self.base_layer.weight.data += self.get_delta_weight()
        self.merged = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        if self.merged:
            return result
        return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


def random_layer(rng: np.random.Generator, bias: bool):
    """A float64 PEFT layer with a trained-looking (nonzero) B, its numpy weights and an input batch."""
    in_features, out_features = (int(n) for n in rng.integers(1, 24, size=2))
    r = int(rng.integers(1, 9))
    alpha = float(rng.choice([1.0, 8.0, 16.0, 2.0 * r, rng.uniform(0.1, 64.0)]))
    torch.manual_seed(int(rng.integers(2**31)))
    layer = PeftLoraLinear(nn.Linear(in_features, out_features, bias=bias, dtype=torch.float64), r, alpha)
    nn.init.normal_(layer.lora_B.weight)
    batch_shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(0, 3))))
    x = rng.normal(size=batch_shape + (in_features,))
    return layer, x, alpha


def numpy_weights(layer: PeftLoraLinear):
    base = layer.base_layer
    as_np = lambda t: None if t is None else t.detach().numpy().copy()  # noqa: E731
    return as_np(base.weight), as_np(layer.lora_A.weight), as_np(layer.lora_B.weight), as_np(base.bias)


# --- forward and merge ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_peft_linear(bias):
    rng = np.random.default_rng(1 + bias)
    for _ in range(RANDOM_CASES):
        layer, x, alpha = random_layer(rng, bias)
        weight, a, b, b0 = numpy_weights(layer)
        with torch.no_grad():
            expected = layer(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(lora_forward(x, weight, a, b, alpha, bias=b0), expected, rtol=0, atol=TOL)


def test_untrained_adapter_changes_nothing():
    # PEFT initialises B to zero, so the adapted layer starts as the base layer.
    torch.manual_seed(0)
    layer = PeftLoraLinear(nn.Linear(12, 7, dtype=torch.float64), r=4, lora_alpha=8)
    weight, a, b, bias = numpy_weights(layer)
    x = np.random.default_rng(3).normal(size=(5, 12))
    assert not np.any(b) and np.any(a)
    np.testing.assert_array_equal(lora_forward(x, weight, a, b, 8, bias=bias), x @ weight.T + bias)


def test_merged_equals_unmerged_and_peft_merge():
    rng = np.random.default_rng(4)
    for _ in range(RANDOM_CASES):
        layer, x, alpha = random_layer(rng, bias=True)
        weight, a, b, bias = numpy_weights(layer)
        merged = merge_lora(weight, a, b, alpha)
        layer.merge()
        np.testing.assert_allclose(merged, layer.base_layer.weight.detach().numpy(), rtol=0, atol=TOL)
        with torch.no_grad():
            peft_merged_out = layer(torch.from_numpy(x)).numpy()
        unmerged_out = lora_forward(x, weight, a, b, alpha, bias=bias)
        np.testing.assert_allclose(x @ merged.T + bias, unmerged_out, rtol=0, atol=TOL)
        np.testing.assert_allclose(peft_merged_out, unmerged_out, rtol=0, atol=TOL)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    out_features=st.integers(1, 16),
    in_features=st.integers(1, 16),
    r=st.integers(1, 20),
    alpha=st.floats(0.5, 64),
)
def test_update_rank_at_most_r(seed, out_features, in_features, r, alpha):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(r, in_features)), rng.normal(size=(out_features, r))
    delta = merge_lora(np.zeros((out_features, in_features)), a, b, alpha)
    rank = int(torch.linalg.matrix_rank(torch.from_numpy(delta)))
    assert rank <= min(r, out_features, in_features)
    assert rank == min(r, out_features, in_features)  # random Gaussian factors have full rank (probability 1)


GOOD = {"x": np.ones((4, 2)), "weight": np.ones((3, 2)), "lora_a": np.ones((1, 2)), "lora_b": np.ones((3, 1))}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"x": np.ones((4, 3))}, r"x must be \(\.\.\., in\) with in = 2"),
        ({"x": np.float64(1.0)}, r"x must be \(\.\.\., in\)"),
        ({"weight": np.ones(3)}, r"weight must be 2-D \(out, in\)"),
        ({"lora_a": np.ones((1, 3))}, r"lora_a must be \(r, in\) = \(r, 2\)"),
        ({"lora_b": np.ones((2, 1))}, r"lora_b must be \(out, r\) = \(3, 1\)"),
        ({"lora_b": np.ones((1, 3))}, r"lora_b must be \(out, r\) = \(3, 1\)"),
        ({"lora_a": np.ones((0, 2)), "lora_b": np.ones((3, 0))}, r"rank r >= 1"),
    ],
)
def test_bad_shapes_give_clear_errors(bad, message):
    args = GOOD | bad
    with pytest.raises(ValueError, match=message):
        lora_forward(**args, alpha=8)
    if "x" not in bad:
        with pytest.raises(ValueError, match=message):
            merge_lora(args["weight"], args["lora_a"], args["lora_b"], alpha=8)


def test_bad_bias_shape():
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        lora_forward(np.ones((1, 2)), np.ones((3, 2)), np.ones((1, 2)), np.ones((3, 1)), 1, bias=np.ones(2))


# --- parameter counts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_features, out_features, r", [(1, 1, 1), (12, 7, 4), (4096, 4096, 16), (4096, 14336, 8)])
def test_parameter_count_matches_the_torch_module(in_features, out_features, r):
    layer = PeftLoraLinear(nn.Linear(in_features, out_features, bias=False, device="meta"), r, 16)
    adapter_numel = sum(p.numel() for name, p in layer.named_parameters() if name.startswith("lora_"))
    assert lora_parameter_count(in_features, out_features, r) == adapter_numel


def test_lora_paper_gpt3_18m_budget():
    # Hu et al. 2021 §7.1: on GPT-3 175B (96 layers, d_model 12288: Brown et al. 2020, Table 2.1), an 18M budget
    # "corresponds to r = 8 if we adapt one type of attention weights or r = 4 if we adapt two types".
    d = 12288
    one_type = adapter_parameter_count([(d, d)], rank=8, n_layers=96)
    assert one_type == adapter_parameter_count([(d, d), (d, d)], rank=4, n_layers=96)
    assert one_type == adapter_parameter_count([(d, d)] * 4, rank=2, n_layers=96)
    assert round(one_type / 1e6) == 19 and 18e6 <= one_type < 19e6  # 18,874,368: "18M"
    assert round(one_type * 2 / 2**20) == 36  # "roughly 35MB if stored in FP16": 36 MiB


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: lora_parameter_count(8, 8, 0), "rank must be an integer >= 1"),
        (lambda: lora_parameter_count(8.0, 8, 2), "in_features must be an integer >= 1"),
        (lambda: adapter_parameter_count([], 4), "non-empty list of"),
        (lambda: adapter_parameter_count([(8, 8, 8)], 4), r"\(in_features, out_features\) pairs"),
        (lambda: adapter_parameter_count([(8, 8)], 4, n_layers=0), "n_layers must be an integer >= 1"),
    ],
)
def test_bad_counts_give_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- low-rank energy and best rank-r approximation against torch.linalg.svd -------------------------------------


def torch_truncated_svd(delta: np.ndarray, r: int):
    u, s, vh = torch.linalg.svd(torch.from_numpy(delta), full_matrices=False)
    return (u[:, :r] @ torch.diag(s[:r]) @ vh[:r]).numpy(), s.numpy()


def random_matrix(rng: np.random.Generator) -> np.ndarray:
    out_features, in_features = (int(n) for n in rng.integers(1, 20, size=2))
    true_rank = int(rng.integers(1, min(out_features, in_features) + 1))
    return rng.normal(size=(out_features, true_rank)) @ rng.normal(size=(true_rank, in_features))


def test_energy_matches_torch_svd():
    rng = np.random.default_rng(5)
    for _ in range(RANDOM_CASES):
        delta = random_matrix(rng)
        _, s = torch_truncated_svd(delta, 0)
        ranks = np.arange(0, min(delta.shape) + 3)
        expected = [np.sum(s[:r] ** 2) / np.sum(s**2) for r in ranks]
        np.testing.assert_allclose(low_rank_energy(delta, ranks), expected, rtol=0, atol=1e-12)
        assert isinstance(low_rank_energy(delta, 1), float)


def test_energy_of_a_known_spectrum():
    # ΔW = Q1 diag(3, 2, 1) Q2ᵀ with orthonormal Q1, Q2: energy at r = 1, 2, 3 is 9/14, 13/14, 1.
    rng = np.random.default_rng(6)
    q1, _ = np.linalg.qr(rng.normal(size=(8, 3)))
    q2, _ = np.linalg.qr(rng.normal(size=(5, 3)))
    delta = q1 @ np.diag([3.0, 2.0, 1.0]) @ q2.T
    np.testing.assert_allclose(low_rank_energy(delta, [0, 1, 2, 3, 5]), [0, 9 / 14, 13 / 14, 1, 1], atol=1e-12)
    assert best_rank_r(delta, 1).error == pytest.approx(math.sqrt(5), abs=1e-12)
    assert best_rank_r(delta, 1).relative_error == pytest.approx(math.sqrt(5 / 14), abs=1e-12)


def test_best_rank_r_matches_torch_truncated_svd():
    rng = np.random.default_rng(7)
    for _ in range(RANDOM_CASES):
        delta = random_matrix(rng)
        for r in range(0, min(delta.shape) + 2):
            expected, _ = torch_truncated_svd(delta, r)
            np.testing.assert_allclose(best_rank_r(delta, r).matrix, expected, rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), r=st.integers(0, 12))
def test_eckart_young_properties(seed, r):
    delta = random_matrix(np.random.default_rng(seed))
    approx = best_rank_r(delta, r)
    _, s = torch_truncated_svd(delta, r)
    residual = float(torch.linalg.matrix_norm(torch.from_numpy(delta - approx.matrix)))
    tail = math.sqrt(float(np.sum(s[r:] ** 2)))
    scale = float(np.linalg.norm(delta))
    assert residual == pytest.approx(tail, abs=1e-10 * scale)
    assert approx.error == pytest.approx(tail, abs=1e-10 * scale)
    assert approx.relative_error == pytest.approx(tail / scale, abs=1e-10)
    assert int(torch.linalg.matrix_rank(torch.from_numpy(approx.matrix))) <= r
    energy = low_rank_energy(delta, np.arange(0, 21))  # past min(out, in) <= 19
    assert np.all(np.diff(energy) >= 0)
    assert energy[min(delta.shape)] == 1.0
    assert energy[r] == pytest.approx(1 - approx.relative_error**2, abs=1e-10)


def test_zero_update_is_fully_captured():
    zero = np.zeros((4, 6))
    np.testing.assert_array_equal(low_rank_energy(zero, np.arange(5)), np.ones(5))
    approx = best_rank_r(zero, 2)
    np.testing.assert_array_equal(approx.matrix, zero)
    assert approx.error == 0.0 and approx.relative_error == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: low_rank_energy(np.ones(4), 1), "non-empty 2-D matrix"),
        (lambda: low_rank_energy(np.full((2, 2), np.nan), 1), "NaN or inf"),
        (lambda: low_rank_energy(np.ones((2, 2)), -1), "integer >= 0"),
        (lambda: low_rank_energy(np.ones((2, 2)), 1.5), "integer >= 0"),
        (lambda: best_rank_r(np.ones((2, 2)), [1, 2]), "rank must be an integer >= 0"),
    ],
)
def test_bad_svd_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- training memory: the ZeRO accounting vs real tensors ----------------------------------------------------------


def test_zero_paper_examples():
    # Rajbhandari et al. 2020 §3.1: mixed-precision Adam needs 16Ψ bytes; "GPT-2 ... 1.5B parameters ... at least
    # 24 GB"; Figure 1: a 7.5B model needs 120 GB.
    assert finetune_memory_bytes(1_500_000_000).total == 24 * 10**9
    assert finetune_memory_bytes(7_500_000_000).total == 120 * 10**9
    assert finetune_memory_bytes(1).total == 16


def measured_training_bytes(model: nn.Module, x: torch.Tensor) -> TrainingMemory:
    """One mixed-precision Adam step on real tensors: bf16 weights and gradients, fp32 master copies of the
    trainable weights with their Adam state; bytes read off the tensors themselves."""
    model(x).float().square().sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    master = [p.detach().float().clone().requires_grad_() for p in trainable]
    for copy, p in zip(master, trainable):
        copy.grad = p.grad.float()
    optimizer = torch.optim.Adam(master)
    optimizer.step()
    nbytes = lambda tensors: sum(t.numel() * t.element_size() for t in tensors)  # noqa: E731
    moments = [state[key] for state in optimizer.state.values() for key in ("exp_avg", "exp_avg_sq")]
    return TrainingMemory(
        weights=nbytes(model.parameters()),
        gradients=nbytes(p.grad for p in model.parameters() if p.grad is not None),
        optimizer_states=nbytes(master) + nbytes(moments),
    )


SHAPES = [(16, 32), (32, 24), (24, 8)]  # (in, out) of three linear layers


def test_full_finetuning_matches_real_tensors():
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(i, o, dtype=torch.bfloat16) for i, o in SHAPES))
    n_params = sum(p.numel() for p in model.parameters())
    measured = measured_training_bytes(model, torch.randn(5, 16, dtype=torch.bfloat16))
    assert finetune_memory_bytes(n_params) == measured


@pytest.mark.parametrize("r", [1, 4, 8])
def test_lora_finetuning_matches_real_tensors(r):
    torch.manual_seed(r)
    layers = []
    for i, o in SHAPES:
        base = nn.Linear(i, o, dtype=torch.bfloat16)
        base.requires_grad_(False)
        layers.append(PeftLoraLinear(base, r, lora_alpha=2 * r))
    model = nn.Sequential(*layers)
    n_base = sum(layer.base_layer.weight.numel() + layer.base_layer.bias.numel() for layer in layers)
    measured = measured_training_bytes(model, torch.randn(5, 16, dtype=torch.bfloat16))
    # Each layer is adapted once, so the per-layer shapes are summed with n_layers=1.
    assert finetune_memory_bytes(n_base, adapter_parameter_count(SHAPES, r)) == measured


def test_precisions_are_parameters():
    fp32_adam = finetune_memory_bytes(1000, weight_bytes=4, grad_bytes=4, master_weight_bytes=0)
    assert (fp32_adam.weights, fp32_adam.gradients, fp32_adam.optimizer_states) == (4000, 4000, 8000)
    lora = finetune_memory_bytes(1000, 10)
    assert (lora.weights, lora.gradients, lora.optimizer_states) == (2020, 20, 120)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_params": -1}, "n_params must be an integer >= 0"),
        ({"n_params": 1.5e9}, "n_params must be an integer >= 0"),
        ({"n_params": 10, "trainable_params": -2}, "trainable_params must be an integer >= 0"),
        ({"n_params": 10, "weight_bytes": 2.5}, "weight_bytes must be an integer >= 0"),
    ],
)
def test_bad_memory_input_gives_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        finetune_memory_bytes(**kwargs)
