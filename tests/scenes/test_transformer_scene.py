"""The numbers TransformerDataFlow shows are the helpers' outputs (read back from the scene's record), and they
agree with torch where the scene shows a computation (softmax rows, masking, scaling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.math.tiny_transformer import TinyTransformerConfig, run_tiny_transformer

HEAD = 0  # the head the scene draws (TransformerConfig.head)


@pytest.fixture(scope="module")
def numbers(scene_run):
    record, _, _ = scene_run("transformer", "16:9")
    return record.numbers


@pytest.fixture(scope="module")
def acts():
    return run_tiny_transformer(TinyTransformerConfig())


def softmax_torch(x) -> np.ndarray:
    return torch.softmax(torch.tensor(np.asarray(x, dtype=float)), dim=-1).numpy()


def test_section_names(scene_run):
    record, _, _ = scene_run("transformer", "16:9")
    assert [s.name for s in record.sections] == [
        "翻译机全景", "进入模型", "自注意力", "加权求和", "为什么除以根号d", "掩码", "交叉注意力", "前馈网络",
        "残差与归一化", "只留解码器"]


def test_scene_stays_under_three_minutes(scene_run):
    record, _, _ = scene_run("transformer", "16:9")
    assert sum(s.duration for s in record.sections) <= 180


def test_inputs_are_the_models(numbers, acts):
    assert numbers["model_shape"] == {"d_model": 8, "n_heads": 2}
    np.testing.assert_array_equal(numbers["source_embeddings"], acts.source_embeddings)
    np.testing.assert_array_equal(numbers["positional_encodings"], acts.source_positional_encodings)
    np.testing.assert_array_equal(numbers["encoder_input"], acts.encoder_input)
    np.testing.assert_allclose(numbers["encoder_input"],
                               np.add(numbers["source_embeddings"], numbers["positional_encodings"]), atol=1e-12)
    assert numbers["input_shape"] == [4, 8]
    # Sinusoidal PE (Vaswani et al. §3.5), independently: position 1, dims 0 and 1 are sin 1 and cos 1.
    assert numbers["positional_encodings"][1][:2] == pytest.approx([np.sin(1.0), np.cos(1.0)])


def test_encoder_self_attention(numbers, acts):
    att = acts.encoder_layers[0].self_attention.attention
    for name in ("q", "k", "v"):
        np.testing.assert_array_equal(numbers[f"encoder_{name}"], getattr(att, name)[HEAD])
    q, k = np.asarray(numbers["encoder_q"]), np.asarray(numbers["encoder_k"])
    assert numbers["d_head"] == q.shape[1] == 4
    np.testing.assert_allclose(numbers["encoder_scores_scaled"], q @ k.T / 2.0, atol=1e-12)  # √4 = 2
    weights = np.asarray(numbers["encoder_weights"])
    np.testing.assert_allclose(weights, softmax_torch(numbers["encoder_scores_scaled"]), atol=1e-12)
    np.testing.assert_allclose(numbers["encoder_weight_row_sums"], 1.0, atol=1e-12)
    np.testing.assert_allclose(numbers["encoder_head_output"], weights @ np.asarray(numbers["encoder_v"]), atol=1e-12)
    assert numbers["focus_row"] == int(np.argmax(weights.max(axis=1)))
    assert numbers["concatenated_shape"] == [4, 8]


def test_sqrt_d_scaling(numbers):
    raw = np.asarray(numbers["scaling_scores_raw"])
    np.testing.assert_allclose(numbers["scaling_scores_scaled"], raw / 8.0, atol=1e-12)  # √64
    np.testing.assert_allclose(numbers["scaling_weights_raw"], softmax_torch(raw), atol=1e-12)
    np.testing.assert_allclose(numbers["scaling_weights_scaled"], softmax_torch(raw / 8.0), atol=1e-12)
    spread = numbers["scaling_spread"]
    assert spread["raw"] == pytest.approx(8.0, rel=0.03)  # std of a sum of 64 products of N(0,1) is √64
    assert spread["scaled"] == pytest.approx(1.0, rel=0.03)
    typical = numbers["scaling_mean_max_weight"]
    assert typical["raw"] > 0.8 and typical["scaled"] < 0.45  # unscaled softmax nearly one-hot, scaled spread out


def test_causal_mask(numbers, acts):
    scores = np.asarray(numbers["decoder_scores_scaled"])
    masked = np.asarray(numbers["decoder_masked_scores"])
    weights = np.asarray(numbers["decoder_weights"])
    above = np.triu(np.ones_like(scores, dtype=bool), k=1)
    assert np.all(np.isneginf(masked[above]))
    np.testing.assert_array_equal(masked[~above], scores[~above])
    assert np.all(weights[above] == 0)
    np.testing.assert_allclose(weights, softmax_torch(masked), atol=1e-12)
    att = acts.decoder_layers[0].self_attention.attention
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(att.q[HEAD]), torch.tensor(att.k[HEAD]), torch.tensor(att.v[HEAD]), is_causal=True)
    np.testing.assert_allclose(weights @ att.v[HEAD], expected.numpy(), atol=1e-12)


def test_cross_attention(numbers, acts):
    att = acts.decoder_layers[0].cross_attention.attention
    np.testing.assert_array_equal(numbers["cross_weights"], att.weights[HEAD])
    np.testing.assert_allclose(np.sum(numbers["cross_weights"], axis=1), 1.0, atol=1e-12)
    assert numbers["cross_shapes"] == {"queries": [5, 8], "keys_values": [4, 8], "weights": [5, 4]}
    # The keys really are the encoder's: softmax(q_dec · k_enc / 2) from the memory and the layer's weights.
    w = acts.weights.decoder_layers[0].cross_attention
    k = (acts.memory @ w.w_k + w.b_k)[:, :4]
    q = (acts.decoder_layers[0].self_attention.output @ w.w_q + w.b_q)[:, :4]
    np.testing.assert_allclose(numbers["cross_weights"], softmax_torch(q @ k.T / 2.0), atol=1e-12)


def test_feed_forward(numbers, acts):
    ffn = acts.encoder_layers[0].feed_forward.feed_forward
    np.testing.assert_array_equal(numbers["ffn_input"], ffn.input[0])
    np.testing.assert_array_equal(numbers["ffn_pre_activation"], ffn.pre_activation[0])
    pre = torch.tensor(numbers["ffn_pre_activation"], dtype=torch.float64)
    np.testing.assert_array_equal(numbers["ffn_hidden"], torch.relu(pre).numpy())
    np.testing.assert_array_equal(numbers["ffn_output"], ffn.output[0])
    sizes = numbers["ffn_sizes"]
    assert sizes["d_model"] == 8 and sizes["d_ffn"] == 32
    assert sizes["zeroed"] == int(np.sum(np.asarray(numbers["ffn_pre_activation"]) <= 0))


def test_layer_norm_statistics(numbers, acts):
    residual = acts.encoder_layers[0].self_attention.residual[0]
    stats = numbers["layer_norm_stats"]
    assert stats["before"]["mean"] == pytest.approx(residual.mean())
    assert stats["before"]["std"] == pytest.approx(residual.std())
    normed = torch.nn.functional.layer_norm(torch.tensor(residual), (8,)).numpy()
    assert stats["after"]["mean"] == pytest.approx(normed.mean(), abs=1e-12)
    assert stats["after"]["std"] == pytest.approx(normed.std())
    assert f"{stats['after']['std']:.2f}" == "1.00"


def test_decoder_only_icons(numbers):
    allowed = numbers["icon_allowed"]
    n = len(allowed["bert"])
    assert np.all(allowed["bert"])
    np.testing.assert_array_equal(allowed["gpt"], np.tril(np.ones((n, n), dtype=bool)))
    assert numbers["continuation"] == {"prompt": ["Translate:", "Hello", "→"], "output": ["你", "好"]}
