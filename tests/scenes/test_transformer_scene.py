"""What TransformerDataFlow draws is the trained translator's computation: read back from the scene's record (16:9
dry run) and recomputed here independently, from the run log and weights through ``shared.runs.load_translator``,
with torch for every attention, softmax, ReLU and LayerNorm the scene shows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.corpus import PLACES, build_corpus
from shared.runs import load_translator, translator_run_path

HEAD = 0  # the head whose encoder self-attention and decoder masked attention the scene draws (TransformerConfig)
TOP_K = 3  # candidates listed per decoding step


@pytest.fixture(scope="module")
def run():
    return load_translator()


@pytest.fixture(scope="module")
def record(scene_run):
    record, _, _ = scene_run("transformer", "16:9")
    return record


@pytest.fixture(scope="module")
def numbers(record):
    return record.numbers


@pytest.fixture(scope="module")
def pair(record, run):
    source = tuple(record.section("翻译机全景").plotted["source"])
    (found,) = [p for p in run.test_split if p.source == source]
    return found


@pytest.fixture(scope="module")
def acts(run, pair):
    return run.model.activations(pair.source, pair.target)


def drawn_matrix(numbers, name: str, shape) -> np.ndarray:
    return np.array([[numbers[f"{name}[{i},{j}]"] for j in range(shape[1])] for i in range(shape[0])])


def t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64))


def head_scores(x_query, x_key, w, head: int, d_head: int) -> torch.Tensor:
    """q kᵀ / √d_head of one head, from the layer's weights (columns head·d_head … of the projections)."""
    cols = slice(head * d_head, (head + 1) * d_head)
    q = t(x_query) @ t(w.w_q)[:, cols] + t(w.b_q)[cols]
    k = t(x_key) @ t(w.w_k)[:, cols] + t(w.b_k)[cols]
    return q @ k.T / d_head**0.5


def test_section_names(record):
    assert [s.name for s in record.sections] == [
        "翻译机全景", "进入模型", "自注意力", "加权求和", "为什么除以根号d", "掩码", "交叉注意力", "前馈网络",
        "残差与归一化", "只留解码器"]


def test_scene_stays_under_three_minutes(record):
    assert sum(s.duration for s in record.sections) <= 180


def test_sentence_is_held_out_and_reorders(run, pair):
    """The sentence is a test pair the training split does not hold; its English moves the place phrase after the
    object (the alignment goes backwards), and no such test pair is shorter (the rule the scene states)."""
    config = run.log["config"]
    corpus = build_corpus(config["n_train"], config["n_test"], seed=config["corpus_seed"])
    assert pair.source not in {p.source for p in corpus.train}
    aligned = [a for a in pair.alignment if a is not None]
    assert any(later < earlier for earlier, later in zip(aligned, aligned[1:]))
    place = next(i for i, w in enumerate(pair.source) if w in PLACES)
    place_at = pair.alignment.index(place)
    object_at = pair.alignment.index(len(pair.source) - 1)  # the object noun ends the Chinese sentence
    assert place_at > object_at

    def moves_place(p) -> bool:
        if not set(p.source) & set(PLACES):
            return False
        indices = [a for a in p.alignment if a is not None]
        return sorted(indices) != indices

    def size(p):
        return len(p.source), len(p.target), sum(len(w) for w in p.target)

    candidates = [p for p in run.test_split if moves_place(p)]
    assert size(pair) == min(size(p) for p in candidates)
    assert pair == next(p for p in candidates if size(p) == size(pair))


def test_translation_is_the_models(record, run, pair, numbers):
    written = tuple(record.section("翻译机全景").plotted["translation"])
    assert written == run.model.translate(pair.source) == pair.target
    weights_file = translator_run_path().parent / run.log["weights"]["file"]
    with np.load(weights_file) as arrays:
        assert numbers["n_parameters"] == sum(a.size for a in arrays.values()) == run.metrics["n_parameters"]


def test_step_probabilities_are_the_models(numbers, run, pair):
    """Step k lists the top candidates after the first k words: softmax (torch) of the logits the model gives the
    prefix, the k largest (torch.topk)."""
    steps = len(pair.target) + 1  # the last step writes <eos>
    assert numbers["decode_step"] == list(range(1, steps + 1))
    top1 = []
    for k in range(steps):
        logits = run.model.activations(pair.source, pair.target[:k]).logits[-1]
        probabilities, _ = torch.topk(torch.softmax(t(logits), dim=-1), TOP_K)
        shown = [numbers[f"step_probability[{k},{r}]"] for r in range(TOP_K)]
        np.testing.assert_allclose(shown, probabilities.numpy(), rtol=1e-9)
        top1.append(shown[0])
    assert numbers["least_top_probability"] == min(top1)


def test_inputs_are_the_models(record, run, pair):
    """Embedding rows × √d_model plus the sinusoidal encoding of Vaswani et al. §3.5, written out here."""
    plotted = record.section("进入模型").plotted
    config, w = run.model.config, run.model.weights
    ids = [config.source_vocab.index(token) for token in pair.source]
    np.testing.assert_allclose(plotted["source_embeddings"], w.source_embedding[ids] * np.sqrt(config.d_model))
    position = np.arange(len(ids))[:, None]
    rate = 10000.0 ** (-np.arange(0, config.d_model, 2) / config.d_model)
    pe = np.zeros((len(ids), config.d_model))
    pe[:, 0::2], pe[:, 1::2] = np.sin(position * rate), np.cos(position * rate)
    np.testing.assert_allclose(plotted["positional_encodings"], pe, atol=1e-12)
    np.testing.assert_allclose(plotted["encoder_input"], plotted["source_embeddings"] + pe, atol=1e-12)


def test_encoder_self_attention(numbers, record, run, pair, acts):
    config, w = run.model.config, run.model.weights.encoder_layers[0].self_attention
    n = len(pair.source)
    scores = head_scores(acts.encoder_input, acts.encoder_input, w, HEAD, config.d_head)
    np.testing.assert_allclose(drawn_matrix(numbers, "encoder_scores", (n, n)), scores.numpy(), atol=1e-9)
    weights = torch.softmax(scores, dim=-1).numpy()
    np.testing.assert_allclose(drawn_matrix(numbers, "encoder_weights", (n, n)), weights, atol=1e-9)
    np.testing.assert_allclose([numbers[f"encoder_weight_row_sum[{i}]"] for i in range(n)], 1.0, atol=1e-12)
    assert numbers["d_head"] == config.d_head and numbers["n_heads"] == config.n_heads
    focus = record.section("自注意力").plotted["focus"]
    assert focus["row"] == int(np.argmax(weights.max(axis=1)))
    assert focus["column"] == int(np.argmax(scores.numpy()[focus["row"]]))
    for j in np.argsort(-weights[focus["row"]])[:2]:  # the two largest terms of the weighted sum
        assert numbers[f"focus_weight[{j}]"] == pytest.approx(weights[focus["row"], j], abs=1e-9)


def test_causal_mask(numbers, run, pair, acts):
    config, w = run.model.config, run.model.weights.decoder_layers[0].self_attention
    n = len(pair.target) + 1  # <bos> and the words written
    x = acts.decoder_input
    scores = head_scores(x, x, w, HEAD, config.d_head)
    future = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    drawn = drawn_matrix(numbers, "decoder_scores", (n, n))
    np.testing.assert_allclose(drawn, scores.numpy(), atol=1e-9)  # drawn before the mask covers the future
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1).numpy()
    np.testing.assert_allclose(drawn_matrix(numbers, "decoder_weights", (n, n)), weights, atol=1e-9)
    assert np.all(weights[future.numpy()] == 0)
    assert numbers["positions"] == n
    # The same weights as torch's causal scaled_dot_product_attention, applied to the values.
    cols = slice(HEAD * config.d_head, (HEAD + 1) * config.d_head)
    q, k, v = (t(x) @ t(m)[:, cols] + t(b)[cols] for m, b in ((w.w_q, w.b_q), (w.w_k, w.b_k), (w.w_v, w.b_v)))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(weights @ v.numpy(), expected.numpy(), atol=1e-9)


def test_cross_attention_follows_the_alignment(numbers, run, pair, acts):
    """Both heads of the last decoder layer, averaged: queries from the decoder's masked sublayer, keys from the
    encoder's output. Every aligned English word looks hardest at its Chinese word, the moved place phrase too."""
    config, w = run.model.config, run.model.weights.decoder_layers[-1].cross_attention
    queries = acts.decoder_layers[-1].self_attention.output
    per_head = [torch.softmax(head_scores(queries, acts.memory, w, h, config.d_head), dim=-1)
                for h in range(config.n_heads)]
    mean = torch.stack(per_head).mean(dim=0).numpy()
    drawn = drawn_matrix(numbers, "cross_attention", mean.shape)
    np.testing.assert_allclose(drawn, mean, atol=1e-9)
    aligned = [(i, a) for i, a in enumerate(pair.alignment) if a is not None]
    looked_at = {i: int(np.argmax(drawn[i])) for i, _ in aligned}
    assert numbers["aligned_words"] == len(aligned)
    assert numbers["hits"] == sum(looked_at[i] == a for i, a in aligned) == len(aligned)
    place = next(j for j, word in enumerate(pair.source) if word in PLACES)
    assert looked_at[pair.alignment.index(place)] == place  # "home" looks at 家, after the object
    assert numbers["alignment_accuracy"] == run.metrics["test_alignment_accuracy"]
    assert (numbers["queries"], numbers["keys"]) == mean.shape


def test_feed_forward(record, numbers, run, acts):
    w = run.model.weights.encoder_layers[0].feed_forward
    plotted = record.section("前馈网络").plotted
    x = t(acts.encoder_layers[0].self_attention.output[0])  # the first word after attention (Post-LN)
    pre = x @ t(w.w_1) + t(w.b_1)
    hidden = torch.relu(pre)
    np.testing.assert_allclose(plotted["ffn_input"], x.numpy(), atol=1e-12)
    np.testing.assert_allclose(plotted["ffn_pre_activation"], pre.numpy(), atol=1e-9)
    np.testing.assert_allclose(plotted["ffn_hidden"], hidden.numpy(), atol=1e-9)
    np.testing.assert_allclose(plotted["ffn_output"], (hidden @ t(w.w_2) + t(w.b_2)).numpy(), atol=1e-9)
    assert numbers["relu_zeros"] == int((pre <= 0).sum())
    assert numbers["d_ffn"] == pre.numel() == numbers["ffn_multiplier"] * numbers["d_model"]


def test_layer_norm_statistics(numbers, acts):
    sub = acts.encoder_layers[0].self_attention
    residual = acts.encoder_input[0] + sub.sublayer_output[0]  # x + attention(x), the ⊕ before the Post-LN
    assert numbers["mean_before"] == pytest.approx(residual.mean())
    assert numbers["std_before"] == pytest.approx(residual.std())
    normed = torch.nn.functional.layer_norm(t(residual), residual.shape).numpy()  # eps 1e-5, no γ, β
    assert numbers["mean_after"] == pytest.approx(normed.mean(), abs=1e-12)
    assert numbers["std_after"] == pytest.approx(normed.std())
    assert f"{numbers['std_after']:.2f}" == "1.00"


def test_sqrt_d_statistics(record, numbers):
    """Random N(0, 1) q, k in d = 64: q·k spreads with std √d = 8 (Vaswani et al. §3.2.1, footnote 4); divided by
    √d, 1. The drawn example: its softmax weights (torch) with and without the scaling."""
    assert numbers["d"] == 64 and numbers["sqrt_d"] == 8
    assert numbers["dot_spread"] == pytest.approx(8.0, rel=0.03)
    assert numbers["scaled_spread"] == pytest.approx(numbers["dot_spread"] / 8)
    assert numbers["mean_max_weight_raw"] > 0.8 and numbers["mean_max_weight_scaled"] < 0.45
    example = record.section("为什么除以根号d").plotted["scaling_example"]
    np.testing.assert_allclose(example["scaled"], np.asarray(example["raw"]) / 8, atol=1e-12)
    np.testing.assert_allclose(example["weights_raw"], torch.softmax(t(example["raw"]), -1).numpy(), atol=1e-12)
    np.testing.assert_allclose(example["weights_scaled"], torch.softmax(t(example["scaled"]), -1).numpy(),
                               atol=1e-12)


def test_decoder_only_icons_are_the_models_attention(record, acts):
    icons = record.section("只留解码器").plotted["icon_weights"]
    assert np.all(np.asarray(icons["encoder"]) > 0)  # every word sees every word
    decoder = np.asarray(icons["decoder"])
    future = np.triu(np.ones_like(decoder, dtype=bool), k=1)
    assert np.all(decoder[future] == 0) and np.all(decoder[~future] > 0)
    np.testing.assert_array_equal(decoder, acts.decoder_layers[0].self_attention.attention.weights[HEAD])


def test_provenance_and_no_untrained_disclaimers(record, run):
    prov = run.log["provenance"]
    (line,) = record.section("进入模型").fine_print
    assert prov["device"] in line and f"{prov['wall_seconds']:.0f} 秒" in line
    assert str(run.log["config"]["steps"]) in line
    said = " ".join(beat["text"] for s in record.sections for beat in s.narration)
    printed = " ".join(p for s in record.sections for p in s.fine_print)
    for stale in ("没训练", "未训练", "权重随机", "不会翻译"):
        assert stale not in said and stale not in printed
