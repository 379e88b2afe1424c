"""shared.math.tiny_transformer recomputed with torch on the same weights, in float64.

Two independent references: every activation with ``torch.nn.functional`` ops written out here, and each layer's
output with ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` (``norm_first`` for Pre-LN) loaded
with the model's weights.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.math.tiny_transformer import (
    BOS,
    EOS,
    SOURCE_SENTENCE,
    TARGET_SENTENCE,
    TARGET_VOCAB,
    TinyTransformerConfig,
    Translator,
    count_parameters,
    forward,
    init_weights,
    run_tiny_transformer,
    sinusoidal_positional_encoding,
    weights_from_arrays,
    weights_to_arrays,
)

TOL = 1e-10

CONFIGS = {
    "default_post_ln": TinyTransformerConfig(),
    "post_ln_2_layers_affine": TinyTransformerConfig(
        n_encoder_layers=2, n_decoder_layers=2, norm_affine_std=0.1, seed=3
    ),
    "pre_ln_2_layers_affine": TinyTransformerConfig(
        n_encoder_layers=2, n_decoder_layers=2, norm_position="pre", norm_affine_std=0.1, seed=4
    ),
    "pre_ln_no_final_norm": TinyTransformerConfig(norm_position="pre", final_norm=False, seed=5),
    "post_ln_final_norm_wider": TinyTransformerConfig(
        d_model=12, n_heads=3, ffn_multiplier=2, final_norm=True, norm_affine_std=0.2, seed=6
    ),
    "eps_large": TinyTransformerConfig(layer_norm_eps=0.5, norm_affine_std=0.1, seed=7),
}

SENTENCES = {
    "default": (SOURCE_SENTENCE, TARGET_SENTENCE),
    "short_source_long_target": (("学习", "我"), ("machine", "learning", "I", "love", "love")),
}


# ------------------------------------------------------------------------------------------------ torch reference


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _linear(x: torch.Tensor, w, b=None) -> torch.Tensor:
    return F.linear(x, _t(w).T, None if b is None else _t(b))  # our w is [in, out]; torch's is [out, in]


def _torch_positional_encoding(n: int, d: int, base: float) -> torch.Tensor:
    """The PyTorch tutorial's ``PositionalEncoding`` table (exp/log form of base^(−2i/d))."""
    position = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(base) / d))
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe


def _torch_attention(xq: torch.Tensor, xkv: torch.Tensor, w, n_heads: int, causal: bool) -> dict:
    L, d = xq.shape
    S = xkv.shape[0]
    dh = d // n_heads
    q = _linear(xq, w.w_q, w.b_q).view(L, n_heads, dh).transpose(0, 1)
    k = _linear(xkv, w.w_k, w.b_k).view(S, n_heads, dh).transpose(0, 1)
    v = _linear(xkv, w.w_v, w.b_v).view(S, n_heads, dh).transpose(0, 1)
    raw = q @ k.transpose(-1, -2)
    scaled = raw / math.sqrt(dh)
    masked = scaled.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf")) if causal else scaled
    heads = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    concat = heads.transpose(0, 1).reshape(L, d)
    return {
        "query_source": xq, "key_value_source": xkv, "q": q, "k": k, "v": v, "raw_scores": raw,
        "scaled_scores": scaled, "masked_scores": masked, "weights": torch.softmax(masked, dim=-1),
        "head_outputs": heads, "concatenated": concat, "output": _linear(concat, w.w_o, w.b_o),
    }


def _torch_ffn(x: torch.Tensor, w) -> dict:
    pre = _linear(x, w.w_1, w.b_1)
    hidden = F.relu(pre)
    return {"input": x, "pre_activation": pre, "hidden": hidden, "output": _linear(hidden, w.w_2, w.b_2)}


def _torch_norm(x: torch.Tensor, w, eps: float) -> dict:
    d = x.shape[-1]
    return {
        "input": x,
        "standardized": F.layer_norm(x, (d,), eps=eps),
        "output": F.layer_norm(x, (d,), _t(w.gamma), _t(w.beta), eps=eps),
    }


def _torch_sublayer(x: torch.Tensor, norm_w, f, inner_key: str, config) -> dict:
    if config.norm_position == "post":
        inner = f(x)
        residual = x + inner["output"]
        norm = _torch_norm(residual, norm_w, config.layer_norm_eps)
        return {"input": x, "sublayer_input": x, "sublayer_output": inner["output"], "residual": residual,
                "norm": norm, "output": norm["output"], inner_key: inner}
    norm = _torch_norm(x, norm_w, config.layer_norm_eps)
    inner = f(norm["output"])
    residual = x + inner["output"]
    return {"input": x, "sublayer_input": norm["output"], "sublayer_output": inner["output"], "residual": residual,
            "norm": norm, "output": residual, inner_key: inner}


def _torch_forward(config, weights, source_tokens, target_tokens) -> dict:
    d, h = config.d_model, config.n_heads
    src_ids = torch.tensor([config.source_vocab.index(t) for t in source_tokens])
    tgt_ids = torch.tensor([config.target_vocab.index(t) for t in (BOS, *target_tokens)])
    out = {}
    out["source_embeddings"] = F.embedding(src_ids, _t(weights.source_embedding)) * math.sqrt(d)
    out["source_positional_encodings"] = _torch_positional_encoding(len(src_ids), d, config.positional_base)
    x = out["encoder_input"] = out["source_embeddings"] + out["source_positional_encodings"]
    out["encoder_layers"] = []
    for lw in weights.encoder_layers:
        sa = _torch_sublayer(x, lw.norm_1, lambda s, w=lw: _torch_attention(s, s, w.self_attention, h, False),
                             "attention", config)
        ff = _torch_sublayer(sa["output"], lw.norm_2, lambda s, w=lw: _torch_ffn(s, w.feed_forward),
                             "feed_forward", config)
        out["encoder_layers"].append({"self_attention": sa, "feed_forward": ff})
        x = ff["output"]
    if weights.encoder_final_norm is not None:
        out["encoder_final_norm"] = _torch_norm(x, weights.encoder_final_norm, config.layer_norm_eps)
        x = out["encoder_final_norm"]["output"]
    memory = out["memory"] = x
    out["target_embeddings"] = F.embedding(tgt_ids, _t(weights.target_embedding)) * math.sqrt(d)
    out["target_positional_encodings"] = _torch_positional_encoding(len(tgt_ids), d, config.positional_base)
    y = out["decoder_input"] = out["target_embeddings"] + out["target_positional_encodings"]
    out["decoder_layers"] = []
    for lw in weights.decoder_layers:
        sa = _torch_sublayer(y, lw.norm_1, lambda s, w=lw: _torch_attention(s, s, w.self_attention, h, True),
                             "attention", config)
        ca = _torch_sublayer(sa["output"], lw.norm_2,
                             lambda s, w=lw: _torch_attention(s, memory, w.cross_attention, h, False),
                             "attention", config)
        ff = _torch_sublayer(ca["output"], lw.norm_3, lambda s, w=lw: _torch_ffn(s, w.feed_forward),
                             "feed_forward", config)
        out["decoder_layers"].append({"self_attention": sa, "cross_attention": ca, "feed_forward": ff})
        y = ff["output"]
    if weights.decoder_final_norm is not None:
        out["decoder_final_norm"] = _torch_norm(y, weights.decoder_final_norm, config.layer_norm_eps)
        y = out["decoder_final_norm"]["output"]
    out["decoder_output"] = y
    out["logits"] = _linear(y, weights.output_projection)
    out["probabilities"] = torch.softmax(out["logits"], dim=-1)
    return out


def _compare(ours, ref, path: str, seen: list[str]) -> None:
    """Walk the torch reference and check the same field of our activations."""
    if isinstance(ref, dict):
        for key, value in ref.items():
            _compare(getattr(ours, key), value, f"{path}.{key}", seen)
    elif isinstance(ref, list):
        assert len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref)):
            _compare(a, b, f"{path}[{i}]", seen)
    else:
        ref = ref.numpy()
        assert ours.shape == ref.shape, f"{path}: {ours.shape} vs {ref.shape}"
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref), err_msg=path)
        finite = np.isfinite(ref)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=0, atol=TOL, err_msg=path)
        seen.append(path)


@pytest.mark.parametrize("sentence", SENTENCES)
@pytest.mark.parametrize("name", CONFIGS)
def test_every_activation_matches_torch_functional(name, sentence):
    config = CONFIGS[name]
    source, target = SENTENCES[sentence]
    weights = init_weights(config)
    acts = forward(config, weights, source, target)
    ref = _torch_forward(config, weights, source, target)
    seen: list[str] = []
    _compare(acts, ref, "acts", seen)
    per_attention = 12  # every AttentionActivations array field
    n_attention = config.n_encoder_layers + 2 * config.n_decoder_layers
    assert sum(".attention." in p for p in seen) == per_attention * n_attention
    assert (acts.encoder_final_norm is not None) == config.has_final_norm


# ------------------------------------------------------------------------------- torch.nn Transformer layers as a check


def _load_attention(mha: torch.nn.MultiheadAttention, w) -> None:
    mha.in_proj_weight.copy_(torch.cat([_t(w.w_q).T, _t(w.w_k).T, _t(w.w_v).T]))
    mha.in_proj_bias.copy_(torch.cat([_t(w.b_q), _t(w.b_k), _t(w.b_v)]))
    mha.out_proj.weight.copy_(_t(w.w_o).T)
    mha.out_proj.bias.copy_(_t(w.b_o))


def _load_ffn_and_norms(layer, ffn, norms) -> None:
    layer.linear1.weight.copy_(_t(ffn.w_1).T)
    layer.linear1.bias.copy_(_t(ffn.b_1))
    layer.linear2.weight.copy_(_t(ffn.w_2).T)
    layer.linear2.bias.copy_(_t(ffn.b_2))
    for module, w in zip((layer.norm1, layer.norm2, getattr(layer, "norm3", None)), norms):
        module.weight.copy_(_t(w.gamma))
        module.bias.copy_(_t(w.beta))


@pytest.mark.parametrize("name", CONFIGS)
def test_layers_match_torch_nn_transformer_layers(name):
    config = CONFIGS[name]
    acts = run_tiny_transformer(config)
    w = acts.weights
    common = dict(
        d_model=config.d_model, nhead=config.n_heads, dim_feedforward=config.d_ffn, dropout=0.0, activation="relu",
        layer_norm_eps=config.layer_norm_eps, batch_first=True, norm_first=config.norm_position == "pre",
        dtype=torch.float64,
    )
    with torch.no_grad():
        x = _t(acts.encoder_input)[None]
        for lw, la in zip(w.encoder_layers, acts.encoder_layers):
            layer = torch.nn.TransformerEncoderLayer(**common).eval()
            _load_attention(layer.self_attn, lw.self_attention)
            _load_ffn_and_norms(layer, lw.feed_forward, (lw.norm_1, lw.norm_2))
            x = layer(x)
            np.testing.assert_allclose(la.output, x[0].numpy(), rtol=0, atol=TOL)
        if w.encoder_final_norm is not None:
            x = F.layer_norm(x, (config.d_model,), _t(w.encoder_final_norm.gamma), _t(w.encoder_final_norm.beta),
                             config.layer_norm_eps)
        np.testing.assert_allclose(acts.memory, x[0].numpy(), rtol=0, atol=TOL)
        y = _t(acts.decoder_input)[None]
        causal = torch.nn.Transformer.generate_square_subsequent_mask(y.shape[1], dtype=torch.float64)
        for lw, la in zip(w.decoder_layers, acts.decoder_layers):
            layer = torch.nn.TransformerDecoderLayer(**common).eval()
            _load_attention(layer.self_attn, lw.self_attention)
            _load_attention(layer.multihead_attn, lw.cross_attention)
            _load_ffn_and_norms(layer, lw.feed_forward, (lw.norm_1, lw.norm_2, lw.norm_3))
            y = layer(y, x, tgt_mask=causal, tgt_is_causal=True)
            np.testing.assert_allclose(la.output, y[0].numpy(), rtol=0, atol=TOL)
        if w.decoder_final_norm is not None:
            y = F.layer_norm(y, (config.d_model,), _t(w.decoder_final_norm.gamma), _t(w.decoder_final_norm.beta),
                             config.layer_norm_eps)
        np.testing.assert_allclose(acts.logits, (y[0] @ _t(w.output_projection)).numpy(), rtol=0, atol=TOL)


# ------------------------------------------------------------------------------------------- shapes, seed, masking


def test_positional_encoding_matches_pytorch_tutorial_table():
    for n, d in [(5, 8), (50, 512), (7, 12)]:
        np.testing.assert_allclose(
            sinusoidal_positional_encoding(n, d), _torch_positional_encoding(n, d, 10000.0).numpy(), rtol=0, atol=TOL
        )


def test_shapes_as_documented_for_the_default_pair():
    acts = run_tiny_transformer()
    c = acts.config
    S, T, V = len(SOURCE_SENTENCE), len(TARGET_SENTENCE) + 1, len(TARGET_VOCAB)
    d, h, dh, dffn = c.d_model, c.n_heads, c.d_head, c.d_ffn
    assert (d, h, dh, dffn) == (8, 2, 4, 32)
    assert acts.source_tokens == SOURCE_SENTENCE
    assert acts.decoder_input_tokens == (BOS,) + TARGET_SENTENCE
    assert acts.decoder_target_tokens == TARGET_SENTENCE + (EOS,)
    for arr in (acts.source_embeddings, acts.source_positional_encodings, acts.encoder_input, acts.memory):
        assert arr.shape == (S, d)
    for arr in (acts.target_embeddings, acts.target_positional_encodings, acts.decoder_input, acts.decoder_output):
        assert arr.shape == (T, d)
    enc = acts.encoder_layers[0]
    a = enc.self_attention.attention
    assert a.q.shape == a.k.shape == a.v.shape == a.head_outputs.shape == (h, S, dh)
    assert a.raw_scores.shape == a.scaled_scores.shape == a.masked_scores.shape == a.weights.shape == (h, S, S)
    assert a.concatenated.shape == a.output.shape == (S, d)
    f = enc.feed_forward.feed_forward
    assert f.pre_activation.shape == f.hidden.shape == (S, 4 * d)
    dec = acts.decoder_layers[0]
    assert dec.self_attention.attention.weights.shape == (h, T, T)
    cross = dec.cross_attention.attention
    assert cross.q.shape == (h, T, dh) and cross.k.shape == cross.v.shape == (h, S, dh)
    assert cross.weights.shape == (h, T, S)
    np.testing.assert_array_equal(cross.key_value_source, acts.memory)
    assert dec.feed_forward.feed_forward.hidden.shape == (T, 4 * d)
    assert acts.logits.shape == acts.probabilities.shape == (T, V)
    assert len(acts.predicted_tokens) == T and set(acts.predicted_tokens) <= set(TARGET_VOCAB)
    np.testing.assert_allclose(acts.probabilities.sum(-1), 1.0, rtol=0, atol=1e-12)
    # the sum shown on screen is exactly embedding + position
    np.testing.assert_array_equal(acts.encoder_input, acts.source_embeddings + acts.source_positional_encodings)


def test_deterministic_for_the_seed_and_different_for_another():
    a, b = run_tiny_transformer(), run_tiny_transformer()
    np.testing.assert_array_equal(a.logits, b.logits)
    np.testing.assert_array_equal(a.decoder_layers[0].cross_attention.attention.weights,
                                  b.decoder_layers[0].cross_attention.attention.weights)
    c = run_tiny_transformer(replace(TinyTransformerConfig(), seed=1))
    assert np.abs(a.logits - c.logits).max() > 1e-3


@pytest.mark.parametrize("name", CONFIGS)
def test_decoder_self_attention_is_exactly_zero_above_the_diagonal(name):
    acts = run_tiny_transformer(CONFIGS[name])
    T = len(acts.decoder_input_tokens)
    above = ~np.tril(np.ones((T, T), dtype=bool))
    for layer in acts.decoder_layers:
        a = layer.self_attention.attention
        assert a.causal
        assert np.all(a.weights[:, above] == 0.0)
        assert np.all(a.weights[:, ~above] > 0.0)
        assert np.all(np.isneginf(a.masked_scores[:, above])) and np.all(np.isfinite(a.masked_scores[:, ~above]))
        np.testing.assert_array_equal(a.weights[:, 0, 0], 1.0)  # <bos> can only look at itself
    for layer in acts.encoder_layers:  # the encoder sees everything
        a = layer.self_attention.attention
        assert not a.causal and np.all(a.weights > 0.0)
        np.testing.assert_array_equal(a.masked_scores, a.scaled_scores)
    for layer in acts.decoder_layers:  # cross-attention: every target position sees every source word
        assert np.all(layer.cross_attention.attention.weights > 0.0)


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_six_layer_normalized_states_for_issue_7(norm_position):
    config = TinyTransformerConfig(n_encoder_layers=6, n_decoder_layers=6, norm_position=norm_position)
    acts = run_tiny_transformer(config)
    d, eps = config.d_model, config.layer_norm_eps
    for stack, per_layer in (("encoder", ("self_attention", "feed_forward")),
                             ("decoder", ("self_attention", "cross_attention", "feed_forward"))):
        labels, states = acts.normalized_states(stack)
        expected = [(n, kind) for n in range(1, 7) for kind in per_layer]
        if norm_position == "pre":
            expected.append((7, "final"))
        assert labels == expected
        seq = len(acts.source_tokens) if stack == "encoder" else len(acts.decoder_input_tokens)
        assert states.shape == (len(expected), seq, d)
        _, standardized = acts.normalized_states(stack, standardized=True)
        np.testing.assert_array_equal(states, standardized)  # γ = 1, β = 0 by default
        # each state is its norm input standardised: ⟂ (1, …, 1) with radius √d·σ/√(σ² + eps)
        layers = acts.encoder_layers if stack == "encoder" else acts.decoder_layers
        inputs = [sub.norm.input for layer in layers for sub in layer.sublayers]
        final = acts.encoder_final_norm if stack == "encoder" else acts.decoder_final_norm
        inputs += [final.input] if final is not None else []
        var = torch.var(_t(np.stack(inputs)), dim=-1, unbiased=False).numpy()
        np.testing.assert_allclose(states.sum(-1), 0.0, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(states, axis=-1), np.sqrt(d * var / (var + eps)), rtol=1e-12)
        layer_outputs = acts.layer_outputs(stack)
        assert layer_outputs.shape == (7, seq, d)
    if norm_position == "post":  # Post-LN: the residual stream itself is what was normalised
        _, states = acts.normalized_states("encoder")
        np.testing.assert_array_equal(acts.layer_outputs("encoder")[1:], states[1::2])


def test_normalized_states_with_affine_differ_from_standardized():
    acts = run_tiny_transformer(TinyTransformerConfig(norm_affine_std=0.1, n_encoder_layers=2))
    _, out = acts.normalized_states()
    _, std = acts.normalized_states(standardized=True)
    gammas = [lw.norm_1.gamma for lw in acts.weights.encoder_layers]
    betas = [lw.norm_1.beta for lw in acts.weights.encoder_layers]
    np.testing.assert_allclose(out[0::2], std[0::2] * np.array(gammas)[:, None] + np.array(betas)[:, None], atol=1e-14)
    assert np.abs(out - std).max() > 1e-3


def test_bad_config_and_tokens_raise_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        TinyTransformerConfig(d_model=8, n_heads=3)
    with pytest.raises(ValueError, match="even"):
        TinyTransformerConfig(d_model=9, n_heads=3)
    with pytest.raises(ValueError, match="norm_position"):
        TinyTransformerConfig(norm_position="middle")
    with pytest.raises(ValueError, match="'你'"):
        run_tiny_transformer(source_tokens=("你", "爱"))
    with pytest.raises(ValueError, match="stack"):
        run_tiny_transformer().normalized_states("middle")


# ----------------------------------------------------------------- vocabularies in the config, saved weights, decoding

OWN_VOCAB = TinyTransformerConfig(
    d_model=12, n_heads=2, n_decoder_layers=2, seed=8, source_vocab=("<pad>", "猫", "吃", "鱼"),
    target_vocab=["<pad>", BOS, EOS, "cats", "eat", "fish"],  # a list (as read from JSON) is kept as a tuple
)


def test_a_config_with_its_own_vocabularies_matches_torch():
    assert OWN_VOCAB.target_vocab == ("<pad>", BOS, EOS, "cats", "eat", "fish")
    weights = init_weights(OWN_VOCAB)
    assert weights.source_embedding.shape == (4, 12) and weights.output_projection.shape == (12, 6)
    acts = forward(OWN_VOCAB, weights, ("猫", "吃", "鱼"), ("cats", "eat"))
    seen: list[str] = []
    _compare(acts, _torch_forward(OWN_VOCAB, weights, ("猫", "吃", "鱼"), ("cats", "eat")), "acts", seen)
    assert acts.predicted_tokens[0] in OWN_VOCAB.target_vocab
    with pytest.raises(ValueError, match="'我'"):
        forward(OWN_VOCAB, weights, ("我",), ())


def test_bad_vocabularies_raise_clear_errors():
    with pytest.raises(ValueError, match="<eos>"):
        TinyTransformerConfig(target_vocab=(BOS, "a"))
    with pytest.raises(ValueError, match="twice"):
        TinyTransformerConfig(source_vocab=("a", "b", "a"))


@pytest.mark.parametrize("config", [TinyTransformerConfig(), OWN_VOCAB, CONFIGS["pre_ln_2_layers_affine"]])
def test_weights_round_trip_through_named_arrays(config):
    weights = init_weights(config)
    arrays = weights_to_arrays(weights)
    assert all("/" in name or "_" in name for name in arrays) and "output_projection" in arrays
    assert count_parameters(weights) == sum(a.size for a in arrays.values())
    back = weights_from_arrays(config, {k: v.astype(np.float32) for k, v in arrays.items()})
    for name, array in weights_to_arrays(back).items():
        assert array.dtype == np.float64
        np.testing.assert_array_equal(array, arrays[name].astype(np.float32).astype(np.float64))
    # a torch module with these names holds the same number of parameters
    module = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.from_numpy(v)) for k, v in arrays.items()})
    assert sum(p.numel() for p in module.parameters()) == count_parameters(weights)


def test_weights_that_do_not_fit_the_config_raise():
    arrays = weights_to_arrays(init_weights(TinyTransformerConfig()))
    with pytest.raises(ValueError, match="missing .*output_projection"):
        weights_from_arrays(TinyTransformerConfig(), {k: v for k, v in arrays.items() if k != "output_projection"})
    with pytest.raises(ValueError, match="unexpected .*extra"):
        weights_from_arrays(TinyTransformerConfig(), {**arrays, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"source_embedding has shape \(4, 8\), the config needs \(3, 8\)"):
        weights_from_arrays(TinyTransformerConfig(source_vocab=("我", "爱", "学习")), arrays)


def test_greedy_decoding_follows_the_torch_probabilities_step_by_step():
    config = TinyTransformerConfig(seed=2)
    weights = init_weights(config)
    model = Translator(config, weights, max_length=6)
    steps = model.decode(SOURCE_SENTENCE, top_k=3)
    assert 1 <= len(steps) <= 6
    prefix: tuple[str, ...] = ()
    for step in steps:
        assert step.prefix == prefix
        reference = _torch_forward(config, weights, SOURCE_SENTENCE, prefix)["probabilities"][-1]
        np.testing.assert_allclose(step.probabilities, reference.numpy(), rtol=0, atol=TOL)
        top = torch.topk(reference, 3)
        assert step.top_tokens == tuple(TARGET_VOCAB[i] for i in top.indices)
        np.testing.assert_allclose(step.top_probabilities, top.values.numpy(), rtol=0, atol=TOL)
        assert step.chosen == step.top_tokens[0]
        prefix += (step.chosen,)
    # it stops at <eos> or after max_length tokens; translate() is the chosen tokens without <eos>
    assert steps[-1].chosen == EOS or len(steps) == 6
    assert all(s.chosen != EOS for s in steps[:-1])
    assert model.translate(SOURCE_SENTENCE) == tuple(s.chosen for s in steps if s.chosen != EOS)
    assert model.activations(SOURCE_SENTENCE, prefix[:2]).decoder_input_tokens == (BOS, *prefix[:2])
