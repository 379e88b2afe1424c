"""A tiny encoder–decoder Transformer in numpy whose every activation a scene can show.

The model is the original translation Transformer (Vaswani et al. 2017, "Attention Is All You Need", §3) at toy size:
d_model = 8, 2 heads, FFN 4·d_model, sinusoidal positions, Post-LN (the paper) or Pre-LN (GPT-2 and later) as an
option. By default its weights are **random (seeded), not trained** and its vocabulary is the one sentence pair
below: the numbers are real computations, the "translation" it predicts is meaningless, and a scene that shows it must
say so. A config may carry other vocabularies and :func:`weights_from_arrays` may load trained weights; a
:class:`Translator` holds such a model and decodes greedily (``shared.runs.load_translator`` gives the trained
Chinese → English one of ``media/runs/translator/``).

All attention goes through :func:`shared.math.attention.scaled_dot_product_attention` and all normalisation through
:func:`shared.math.norms.layer_norm`. ``tests/math/test_tiny_transformer.py`` recomputes every activation with
``torch.nn.functional`` and the layer outputs with ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer``
on the same weights, in float64, to 1e-10.

Conventions: a linear layer is ``y = x @ w + b`` with ``w`` of shape ``[in, out]`` (the paper's ``x W^Q``; torch stores
the transpose). Head h of a projection is columns ``h·d_head : (h+1)·d_head``, as ``torch.nn.MultiheadAttention``.

Example
-------
>>> acts = run_tiny_transformer()                       # default config, "我 爱 机器 学习" → "I love machine learning"
>>> acts.encoder_layers[0].self_attention.attention.weights.shape   # [n_heads, S, S]
(2, 4, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from shared.math.attention import scaled_dot_product_attention, softmax
from shared.math.norms import layer_norm
from shared.math.rope import rope_angles

# The sentence pair the explainer translates. Source words are whole tokens (a real tokenizer would split further).
SOURCE_SENTENCE: tuple[str, ...] = ("我", "爱", "机器", "学习")
TARGET_SENTENCE: tuple[str, ...] = ("I", "love", "machine", "learning")
BOS = "<bos>"  # the decoder's first input: "start writing"
EOS = "<eos>"  # the last token it should predict: "done"
SOURCE_VOCAB: tuple[str, ...] = SOURCE_SENTENCE
TARGET_VOCAB: tuple[str, ...] = (BOS, EOS) + TARGET_SENTENCE

NORM_POSITIONS = ("post", "pre")


@dataclass(frozen=True)
class TinyTransformerConfig:
    """Hyperparameters of the tiny model (nanoGPT ``GPTConfig`` style).

    Shapes below use S = source length (4), T = target length including <bos> (5), V = target vocabulary size (6).
    The default vocabularies are the toy pair's; a trained model's config carries its own (``shared.corpus``).
    """

    d_model: int = 8  # width of every token vector (512 in Vaswani et al.); must be even for sin/cos pairs
    n_heads: int = 2  # heads per attention sublayer; each head works in d_head = d_model / n_heads = 4 dims
    ffn_multiplier: int = 4  # FFN hidden width = 4 · d_model = 32 (the paper: 2048 = 4 · 512)
    n_encoder_layers: int = 1  # 6 in the paper; set 6 to follow hidden states layer by layer
    n_decoder_layers: int = 1
    norm_position: str = "post"  # "post": x ← LN(x + f(x)) (the paper); "pre": x ← x + f(LN(x)) (GPT-2 onwards)
    final_norm: bool | None = None  # a LayerNorm after each stack's last layer; None → only for Pre-LN (as GPT-2)
    layer_norm_eps: float = 1e-5  # torch.nn.LayerNorm's default
    # LayerNorm γ = 1 + N(0, std), β = N(0, std). 0 keeps torch's initial γ = 1, β = 0, so every LayerNorm output
    # lies exactly on the sphere of radius √d·σ/√(σ² + eps) in the plane ⟂ (1, …, 1) (the sphere scene's geometry).
    norm_affine_std: float = 0.0
    positional_base: float = 10000.0  # sinusoidal PE base (paper §3.5)
    seed: int = 0  # the weights are random draws from this seed, not trained
    source_vocab: tuple[str, ...] = SOURCE_VOCAB  # token id = index; embedding rows in this order
    target_vocab: tuple[str, ...] = TARGET_VOCAB  # must hold BOS and EOS; logit columns in this order

    def __post_init__(self):
        if self.d_model % 2:
            raise ValueError(f"d_model must be even (sin/cos pairs), got {self.d_model}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.norm_position not in NORM_POSITIONS:
            raise ValueError(f"norm_position must be one of {NORM_POSITIONS}, got {self.norm_position!r}")
        object.__setattr__(self, "source_vocab", tuple(self.source_vocab))  # lists (from JSON) become tuples
        object.__setattr__(self, "target_vocab", tuple(self.target_vocab))
        for name, vocab in (("source_vocab", self.source_vocab), ("target_vocab", self.target_vocab)):
            if len(set(vocab)) != len(vocab):
                raise ValueError(f"{name} lists a token twice: {sorted(t for t in set(vocab) if vocab.count(t) > 1)}")
        missing = [t for t in (BOS, EOS) if t not in self.target_vocab]
        if missing:
            raise ValueError(f"target_vocab must contain {missing}: the decoder starts at {BOS} and stops at {EOS}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_ffn(self) -> int:
        return self.ffn_multiplier * self.d_model

    @property
    def has_final_norm(self) -> bool:
        return self.norm_position == "pre" if self.final_norm is None else self.final_norm


def config_from_dict(values: dict, **overrides) -> TinyTransformerConfig:
    """A config from the entries of ``values`` that name its fields (a trainer's config or its JSON log; other
    entries such as a learning rate are ignored), then ``overrides`` (e.g. the vocabularies)."""
    names = {f.name for f in fields(TinyTransformerConfig)}
    return TinyTransformerConfig(**{k: v for k, v in values.items() if k in names} | overrides)


# ------------------------------------------------------------------------------------------------------------ weights


@dataclass
class AttentionWeights:
    w_q: np.ndarray  # [d_model, d_model]
    b_q: np.ndarray  # [d_model]
    w_k: np.ndarray
    b_k: np.ndarray
    w_v: np.ndarray
    b_v: np.ndarray
    w_o: np.ndarray  # [d_model, d_model]: concatenated heads → model width
    b_o: np.ndarray


@dataclass
class FeedForwardWeights:
    w_1: np.ndarray  # [d_model, d_ffn]: up-projection
    b_1: np.ndarray  # [d_ffn]
    w_2: np.ndarray  # [d_ffn, d_model]: down-projection
    b_2: np.ndarray  # [d_model]


@dataclass
class LayerNormWeights:
    gamma: np.ndarray  # [d_model]
    beta: np.ndarray  # [d_model]


@dataclass
class EncoderLayerWeights:
    self_attention: AttentionWeights
    norm_1: LayerNormWeights  # around self-attention
    feed_forward: FeedForwardWeights
    norm_2: LayerNormWeights  # around the FFN


@dataclass
class DecoderLayerWeights:
    self_attention: AttentionWeights  # masked
    norm_1: LayerNormWeights
    cross_attention: AttentionWeights  # queries from the decoder, keys/values from the encoder output
    norm_2: LayerNormWeights
    feed_forward: FeedForwardWeights
    norm_3: LayerNormWeights


@dataclass
class TinyTransformerWeights:
    source_embedding: np.ndarray  # [len(config.source_vocab), d_model]
    target_embedding: np.ndarray  # [len(config.target_vocab), d_model]
    encoder_layers: list[EncoderLayerWeights]
    decoder_layers: list[DecoderLayerWeights]
    encoder_final_norm: LayerNormWeights | None  # present when config.has_final_norm
    decoder_final_norm: LayerNormWeights | None
    output_projection: np.ndarray  # [d_model, len(config.target_vocab)]: decoder state → logits (no bias, as the paper)


def init_weights(config: TinyTransformerConfig) -> TinyTransformerWeights:
    """Seeded random weights (deterministic for ``config.seed``).

    Linear weights and biases ~ U(−1/√fan_in, 1/√fan_in), ``torch.nn.Linear``'s default initialisation; embeddings
    ~ N(0, 1/d_model) and multiplied by √d_model in the forward pass (paper §3.4; fairseq's initialisation), so the
    embedded entries have unit scale like the positional encodings; LayerNorm as ``config.norm_affine_std`` says.
    """
    rng = np.random.default_rng(config.seed)
    d, d_ffn = config.d_model, config.d_ffn

    def linear(fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=(fan_in, fan_out)), rng.uniform(-bound, bound, size=fan_out)

    def attention() -> AttentionWeights:
        (w_q, b_q), (w_k, b_k), (w_v, b_v), (w_o, b_o) = (linear(d, d) for _ in range(4))
        return AttentionWeights(w_q, b_q, w_k, b_k, w_v, b_v, w_o, b_o)

    def feed_forward() -> FeedForwardWeights:
        (w_1, b_1), (w_2, b_2) = linear(d, d_ffn), linear(d_ffn, d)
        return FeedForwardWeights(w_1, b_1, w_2, b_2)

    def norm() -> LayerNormWeights:
        std = config.norm_affine_std
        return LayerNormWeights(1.0 + std * rng.standard_normal(d), std * rng.standard_normal(d))

    source_embedding = rng.normal(scale=d**-0.5, size=(len(config.source_vocab), d))
    target_embedding = rng.normal(scale=d**-0.5, size=(len(config.target_vocab), d))
    encoder_layers = [
        EncoderLayerWeights(attention(), norm(), feed_forward(), norm()) for _ in range(config.n_encoder_layers)
    ]
    decoder_layers = [
        DecoderLayerWeights(attention(), norm(), attention(), norm(), feed_forward(), norm())
        for _ in range(config.n_decoder_layers)
    ]
    encoder_final_norm = norm() if config.has_final_norm else None
    decoder_final_norm = norm() if config.has_final_norm else None
    output_projection, _ = linear(d, len(config.target_vocab))
    return TinyTransformerWeights(
        source_embedding, target_embedding, encoder_layers, decoder_layers, encoder_final_norm, decoder_final_norm,
        output_projection,
    )


# -------------------------------------------------------------------------------------------------------- activations


@dataclass
class AttentionActivations:
    """One multi-head attention: L queries, S keys. Per-head arrays are ``[n_heads, …]``."""

    query_source: np.ndarray  # [L, d_model]: the vectors the queries are projected from
    key_value_source: np.ndarray  # [S, d_model]: the vectors keys and values come from (the encoder output for cross)
    q: np.ndarray  # [n_heads, L, d_head]
    k: np.ndarray  # [n_heads, S, d_head]
    v: np.ndarray  # [n_heads, S, d_head]
    raw_scores: np.ndarray  # [n_heads, L, S]: q · kᵀ
    scaled_scores: np.ndarray  # [n_heads, L, S]: q · kᵀ / √d_head
    masked_scores: np.ndarray  # [n_heads, L, S]: scaled, −inf where a query may not look (= scaled if not causal)
    weights: np.ndarray  # [n_heads, L, S]: softmax rows (exactly 0 above the diagonal when causal)
    head_outputs: np.ndarray  # [n_heads, L, d_head]: weights @ v
    concatenated: np.ndarray  # [L, d_model]: heads side by side
    output: np.ndarray  # [L, d_model]: concatenated @ w_o + b_o
    causal: bool


@dataclass
class FeedForwardActivations:
    input: np.ndarray  # [seq, d_model]
    pre_activation: np.ndarray  # [seq, d_ffn]: input @ w_1 + b_1
    hidden: np.ndarray  # [seq, d_ffn]: ReLU(pre_activation), the 4×d_model expansion
    output: np.ndarray  # [seq, d_model]: hidden @ w_2 + b_2


@dataclass
class LayerNormActivations:
    input: np.ndarray  # [seq, d_model]
    standardized: np.ndarray  # [seq, d_model]: (x − mean)/√(var + eps), before γ, β: on the sphere, ⟂ (1, …, 1)
    output: np.ndarray  # [seq, d_model]: γ · standardized + β


@dataclass
class ResidualSublayer:
    """One sublayer f (attention or FFN) wrapped in a residual ⊕ and a LayerNorm.

    Post-LN: ``residual = input + f(input)``, ``output = LN(residual)``.
    Pre-LN:  ``residual = input + f(LN(input))``, ``output = residual``.
    """

    kind: str  # "self_attention", "cross_attention" or "feed_forward"
    input: np.ndarray  # [seq, d_model]: the residual stream entering
    sublayer_input: np.ndarray  # [seq, d_model]: what f reads (input for Post-LN, norm.output for Pre-LN)
    sublayer_output: np.ndarray  # [seq, d_model]: f(sublayer_input)
    residual: np.ndarray  # [seq, d_model]: input + sublayer_output (the ⊕)
    norm: LayerNormActivations
    output: np.ndarray  # [seq, d_model]: the residual stream leaving
    attention: AttentionActivations | None = None  # set for attention sublayers
    feed_forward: FeedForwardActivations | None = None  # set for the FFN sublayer


@dataclass
class EncoderLayerActivations:
    self_attention: ResidualSublayer
    feed_forward: ResidualSublayer

    @property
    def sublayers(self) -> list[ResidualSublayer]:
        return [self.self_attention, self.feed_forward]

    @property
    def output(self) -> np.ndarray:
        return self.feed_forward.output


@dataclass
class DecoderLayerActivations:
    self_attention: ResidualSublayer  # masked: attention.masked_scores has −inf above the diagonal
    cross_attention: ResidualSublayer  # attention.q from the decoder, attention.k / .v from the encoder output
    feed_forward: ResidualSublayer

    @property
    def sublayers(self) -> list[ResidualSublayer]:
        return [self.self_attention, self.cross_attention, self.feed_forward]

    @property
    def output(self) -> np.ndarray:
        return self.feed_forward.output


@dataclass
class TinyTransformerActivations:
    """Everything the forward pass computed. S = source length, T = decoder length, V = target vocabulary size."""

    config: TinyTransformerConfig
    weights: TinyTransformerWeights
    source_tokens: tuple[str, ...]  # ("我", "爱", "机器", "学习")
    decoder_input_tokens: tuple[str, ...]  # (<bos>, "I", …): teacher forcing, shifted right
    decoder_target_tokens: tuple[str, ...]  # ("I", …, <eos>): what each position should predict
    source_ids: np.ndarray  # [S] indices into config.source_vocab
    decoder_input_ids: np.ndarray  # [T] indices into config.target_vocab
    source_embeddings: np.ndarray  # [S, d_model]: embedding rows · √d_model
    source_positional_encodings: np.ndarray  # [S, d_model]
    encoder_input: np.ndarray  # [S, d_model]: embeddings + positions
    encoder_layers: list[EncoderLayerActivations]
    encoder_final_norm: LayerNormActivations | None
    memory: np.ndarray  # [S, d_model]: the encoder output every cross-attention reads
    target_embeddings: np.ndarray  # [T, d_model]
    target_positional_encodings: np.ndarray  # [T, d_model]
    decoder_input: np.ndarray  # [T, d_model]
    decoder_layers: list[DecoderLayerActivations]
    decoder_final_norm: LayerNormActivations | None
    decoder_output: np.ndarray  # [T, d_model]
    logits: np.ndarray  # [T, V]: decoder_output @ output_projection
    probabilities: np.ndarray  # [T, V]: softmax(logits) per position
    predicted_tokens: tuple[str, ...] = field(default=())  # argmax per position (meaningless if the weights are random)

    def normalized_states(
        self, stack: str = "encoder", *, standardized: bool = False
    ) -> tuple[list[tuple[int, str]], np.ndarray]:
        """Every LayerNorm output through one stack, in the order computed (the sphere scene follows them).

        Parameters
        ----------
        stack
            ``"encoder"`` or ``"decoder"``.
        standardized
            Return ``(x − mean)/√(var + eps)`` before γ, β (exactly on the sphere of radius √d·σ/√(σ² + eps) in the
            plane ⟂ 1) instead of the LayerNorm output. With ``norm_affine_std = 0`` the two are equal.

        Returns
        -------
        (labels, states)
            ``labels[i] = (layer number from 1, sublayer kind)``, the final norm as ``(n_layers + 1, "final")``;
            ``states`` ``[n_norms, seq, d_model]``. For Post-LN these are the residual stream itself after each
            sublayer; for Pre-LN the normalised copies each sublayer reads.
        """
        if stack not in ("encoder", "decoder"):
            raise ValueError(f"stack must be 'encoder' or 'decoder', got {stack!r}")
        layers = self.encoder_layers if stack == "encoder" else self.decoder_layers
        final = self.encoder_final_norm if stack == "encoder" else self.decoder_final_norm
        labels, norms = [], []
        for number, layer in enumerate(layers, start=1):
            for sub in layer.sublayers:
                labels.append((number, sub.kind))
                norms.append(sub.norm)
        if final is not None:
            labels.append((len(layers) + 1, "final"))
            norms.append(final)
        return labels, np.stack([n.standardized if standardized else n.output for n in norms])

    def layer_outputs(self, stack: str = "encoder") -> np.ndarray:
        """The residual stream before the first layer and after each layer: ``[n_layers + 1, seq, d_model]``."""
        if stack not in ("encoder", "decoder"):
            raise ValueError(f"stack must be 'encoder' or 'decoder', got {stack!r}")
        first = self.encoder_input if stack == "encoder" else self.decoder_input
        layers = self.encoder_layers if stack == "encoder" else self.decoder_layers
        return np.stack([first] + [layer.output for layer in layers])


# ------------------------------------------------------------------------------------------------------- forward pass


def sinusoidal_positional_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / base^(2i/d)), PE(pos, 2i+1) = cos(pos / base^(2i/d)).

    The frequencies are RoPE's θ_i (:func:`shared.math.rope.rope_angles`): the same clock speeds, added here instead
    of rotated.

    Returns
    -------
    np.ndarray
        ``[n_positions, d_model]``, float64.

    References
    ----------
    Vaswani et al. 2017, §3.5; the PyTorch tutorial's ``PositionalEncoding``.
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    angles = rope_angles(np.arange(n_positions), d_model, base)  # [n, d/2]: pos · base^(−2i/d)
    pe = np.empty((n_positions, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe


def _token_ids(tokens, vocab: tuple[str, ...]) -> np.ndarray:
    unknown = [t for t in tokens if t not in vocab]
    if unknown:
        raise ValueError(f"tokens {unknown} are not in the vocabulary {vocab}")
    return np.array([vocab.index(t) for t in tokens], dtype=np.int64)


def _multi_head_attention(
    query_source: np.ndarray, key_value_source: np.ndarray, w: AttentionWeights, n_heads: int, causal: bool
) -> AttentionActivations:
    L, d_model = query_source.shape
    S = key_value_source.shape[0]
    d_head = d_model // n_heads

    def split_heads(x: np.ndarray) -> np.ndarray:  # [seq, d_model] → [n_heads, seq, d_head]
        return x.reshape(x.shape[0], n_heads, d_head).transpose(1, 0, 2)

    q = split_heads(query_source @ w.w_q + w.b_q)
    k = split_heads(key_value_source @ w.w_k + w.b_k)
    v = split_heads(key_value_source @ w.w_v + w.b_v)
    raw_scores = q @ k.transpose(0, 2, 1)
    scaled_scores = raw_scores / np.sqrt(d_head)
    allowed = np.tril(np.ones((L, S), dtype=bool)) if causal else np.ones((L, S), dtype=bool)
    masked_scores = np.where(allowed, scaled_scores, -np.inf)
    head_outputs, weights = scaled_dot_product_attention(q, k, v, causal=causal)
    concatenated = head_outputs.transpose(1, 0, 2).reshape(L, d_model)
    return AttentionActivations(
        query_source=query_source,
        key_value_source=key_value_source,
        q=q,
        k=k,
        v=v,
        raw_scores=raw_scores,
        scaled_scores=scaled_scores,
        masked_scores=masked_scores,
        weights=weights,
        head_outputs=head_outputs,
        concatenated=concatenated,
        output=concatenated @ w.w_o + w.b_o,
        causal=causal,
    )


def _feed_forward(x: np.ndarray, w: FeedForwardWeights) -> FeedForwardActivations:
    pre_activation = x @ w.w_1 + w.b_1
    hidden = np.maximum(pre_activation, 0.0)  # ReLU, as the paper's FFN(x) = max(0, xW1 + b1)W2 + b2
    return FeedForwardActivations(x, pre_activation, hidden, hidden @ w.w_2 + w.b_2)


def _layer_norm(x: np.ndarray, w: LayerNormWeights, eps: float) -> LayerNormActivations:
    return LayerNormActivations(x, layer_norm(x, eps=eps), layer_norm(x, w.gamma, w.beta, eps=eps))


def _attend_to(key_value_source, w: AttentionWeights, n_heads: int, *, causal: bool):
    """Sublayer function: self-attention when ``key_value_source`` is None, else cross-attention to it."""
    return lambda s: _multi_head_attention(s, s if key_value_source is None else key_value_source, w, n_heads, causal)


def _feed_forward_with(w: FeedForwardWeights):
    return lambda s: _feed_forward(s, w)


def _residual(kind: str, x: np.ndarray, norm_w: LayerNormWeights, f, config: TinyTransformerConfig) -> ResidualSublayer:
    """Wrap ``f`` (returns activations with an ``.output``) in ⊕ and LayerNorm at ``config.norm_position``."""
    eps = config.layer_norm_eps
    if config.norm_position == "post":
        sublayer_input = x
        inner = f(sublayer_input)
        residual = x + inner.output
        norm = _layer_norm(residual, norm_w, eps)
        output = norm.output
    else:
        norm = _layer_norm(x, norm_w, eps)
        sublayer_input = norm.output
        inner = f(sublayer_input)
        residual = x + inner.output
        output = residual
    is_attention = isinstance(inner, AttentionActivations)
    return ResidualSublayer(
        kind=kind,
        input=x,
        sublayer_input=sublayer_input,
        sublayer_output=inner.output,
        residual=residual,
        norm=norm,
        output=output,
        attention=inner if is_attention else None,
        feed_forward=None if is_attention else inner,
    )


def forward(
    config: TinyTransformerConfig,
    weights: TinyTransformerWeights,
    source_tokens=SOURCE_SENTENCE,
    target_tokens=TARGET_SENTENCE,
) -> TinyTransformerActivations:
    """Run the encoder on ``source_tokens`` and the decoder on ``<bos> + target_tokens`` (teacher forcing).

    Returns
    -------
    TinyTransformerActivations
        Every intermediate array; see its field comments for shapes.

    References
    ----------
    Vaswani et al. 2017, §3.1–3.5 (Post-LN); Xiong et al. 2020, "On Layer Normalization in the Transformer
    Architecture" (Pre-LN); ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` (``norm_first``).
    """
    source_tokens, target_tokens = tuple(source_tokens), tuple(target_tokens)
    decoder_input_tokens = (BOS,) + target_tokens
    decoder_target_tokens = target_tokens + (EOS,)
    source_ids = _token_ids(source_tokens, config.source_vocab)
    decoder_input_ids = _token_ids(decoder_input_tokens, config.target_vocab)
    d, h = config.d_model, config.n_heads
    embed_scale = np.sqrt(d)  # paper §3.4: embeddings are multiplied by √d_model

    source_embeddings = weights.source_embedding[source_ids] * embed_scale
    source_pe = sinusoidal_positional_encoding(len(source_ids), d, config.positional_base)
    x = encoder_input = source_embeddings + source_pe
    encoder_layers = []
    for lw in weights.encoder_layers:
        attn = _residual("self_attention", x, lw.norm_1, _attend_to(None, lw.self_attention, h, causal=False), config)
        ffn = _residual("feed_forward", attn.output, lw.norm_2, _feed_forward_with(lw.feed_forward), config)
        encoder_layers.append(EncoderLayerActivations(attn, ffn))
        x = ffn.output
    encoder_final_norm = None
    if weights.encoder_final_norm is not None:
        encoder_final_norm = _layer_norm(x, weights.encoder_final_norm, config.layer_norm_eps)
        x = encoder_final_norm.output
    memory = x

    target_embeddings = weights.target_embedding[decoder_input_ids] * embed_scale
    target_pe = sinusoidal_positional_encoding(len(decoder_input_ids), d, config.positional_base)
    y = decoder_input = target_embeddings + target_pe
    decoder_layers = []
    for lw in weights.decoder_layers:
        masked = _residual("self_attention", y, lw.norm_1, _attend_to(None, lw.self_attention, h, causal=True), config)
        cross = _residual(
            "cross_attention", masked.output, lw.norm_2, _attend_to(memory, lw.cross_attention, h, causal=False), config
        )
        ffn = _residual("feed_forward", cross.output, lw.norm_3, _feed_forward_with(lw.feed_forward), config)
        decoder_layers.append(DecoderLayerActivations(masked, cross, ffn))
        y = ffn.output
    decoder_final_norm = None
    if weights.decoder_final_norm is not None:
        decoder_final_norm = _layer_norm(y, weights.decoder_final_norm, config.layer_norm_eps)
        y = decoder_final_norm.output

    logits = y @ weights.output_projection
    probabilities = softmax(logits, axis=-1)
    return TinyTransformerActivations(
        config=config,
        weights=weights,
        source_tokens=source_tokens,
        decoder_input_tokens=decoder_input_tokens,
        decoder_target_tokens=decoder_target_tokens,
        source_ids=source_ids,
        decoder_input_ids=decoder_input_ids,
        source_embeddings=source_embeddings,
        source_positional_encodings=source_pe,
        encoder_input=encoder_input,
        encoder_layers=encoder_layers,
        encoder_final_norm=encoder_final_norm,
        memory=memory,
        target_embeddings=target_embeddings,
        target_positional_encodings=target_pe,
        decoder_input=decoder_input,
        decoder_layers=decoder_layers,
        decoder_final_norm=decoder_final_norm,
        decoder_output=y,
        logits=logits,
        probabilities=probabilities,
        predicted_tokens=tuple(config.target_vocab[i] for i in np.argmax(logits, axis=-1)),
    )


def run_tiny_transformer(
    config: TinyTransformerConfig | None = None, source_tokens=SOURCE_SENTENCE, target_tokens=TARGET_SENTENCE
) -> TinyTransformerActivations:
    """``forward(config, init_weights(config), …)`` with the default config and sentence pair."""
    config = TinyTransformerConfig() if config is None else config
    return forward(config, init_weights(config), source_tokens, target_tokens)


# ------------------------------------------------------------------------------------------- saved weights, translator


def _array_slots(obj, prefix: str = ""):
    """``(name, owner, attribute)`` of every array in a weights dataclass, in field order; names join fields with '/'
    (``encoder_layers/0/self_attention/w_q``), which torch accepts as parameter names and ``np.savez`` as keys."""
    for f in fields(obj):
        value, name = getattr(obj, f.name), f"{prefix}{f.name}"
        if isinstance(value, np.ndarray):
            yield name, obj, f.name
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from _array_slots(item, f"{name}/{i}/")
        elif value is not None:
            yield from _array_slots(value, f"{name}/")


def weights_to_arrays(weights: TinyTransformerWeights) -> dict[str, np.ndarray]:
    """Every weight as ``{name: array}`` (the layout of a trained run's ``.npz``; see :func:`weights_from_arrays`)."""
    return {name: getattr(owner, attribute) for name, owner, attribute in _array_slots(weights)}


def weights_from_arrays(config: TinyTransformerConfig, arrays) -> TinyTransformerWeights:
    """Weights for ``config`` from ``{name: array}`` (e.g. ``np.load("weights.npz")``), as float64.

    Raises
    ------
    ValueError
        When a name is missing or extra, or an array's shape differs from what ``config`` needs.
    """
    weights = init_weights(config)  # the structure and shapes; every array is then replaced
    slots = list(_array_slots(weights))
    names = {name for name, _, _ in slots}
    missing, extra = sorted(names - set(arrays)), sorted(set(arrays) - names)
    if missing or extra:
        raise ValueError(f"weights do not fit the config: missing {missing}, unexpected {extra}")
    for name, owner, attribute in slots:
        array = np.asarray(arrays[name], dtype=np.float64)
        if array.shape != getattr(owner, attribute).shape:
            needed = getattr(owner, attribute).shape
            raise ValueError(f"weight {name} has shape {array.shape}, the config needs {needed}")
        setattr(owner, attribute, array)
    return weights


def count_parameters(weights: TinyTransformerWeights) -> int:
    """Number of scalars in all weights."""
    return sum(a.size for a in weights_to_arrays(weights).values())


@dataclass(frozen=True)
class DecodingStep:
    """One greedy decoding step: what the decoder had written and what it predicted next."""

    prefix: tuple[str, ...]  # target tokens written so far (without <bos>)
    probabilities: np.ndarray  # [V]: softmax of the last position's logits
    top_tokens: tuple[str, ...]  # the k most probable next tokens, most probable first
    top_probabilities: tuple[float, ...]
    chosen: str  # top_tokens[0]: greedy decoding takes the argmax


@dataclass(frozen=True)
class Translator:
    """An encoder–decoder model with its vocabularies: translate greedily, inspect every step.

    Example
    -------
    >>> model = Translator(config, weights)            # or shared.runs.load_translator().model
    >>> model.translate(("我", "昨天", "看", "了", "一", "本", "书"))
    ('I', 'read', 'a', 'book', 'yesterday')
    """

    config: TinyTransformerConfig
    weights: TinyTransformerWeights
    max_length: int = 32  # decoding stops after this many tokens when no <eos> comes

    def activations(self, source_tokens, target_prefix=()) -> TinyTransformerActivations:
        """Every intermediate of one forward pass: the encoder on ``source_tokens``, the decoder on
        ``<bos> + target_prefix`` (teacher forcing; position t's logits predict the token after prefix[:t])."""
        return forward(self.config, self.weights, source_tokens, target_prefix)

    def decode(self, source_tokens, top_k: int = 5) -> list[DecodingStep]:
        """Greedy decoding, one :class:`DecodingStep` per token written (the last one chose <eos>, unless
        ``max_length`` ran out). Each step reruns the whole decoder on the prefix, as a model without a KV cache does.
        """
        vocab = self.config.target_vocab
        steps: list[DecodingStep] = []
        prefix: tuple[str, ...] = ()
        while len(steps) < self.max_length:
            probabilities = self.activations(source_tokens, prefix).probabilities[-1]
            order = np.argsort(-probabilities, kind="stable")[:top_k]
            top = tuple(vocab[i] for i in order)
            top_probabilities = tuple(float(p) for p in probabilities[order])
            steps.append(DecodingStep(prefix, probabilities, top, top_probabilities, top[0]))
            if top[0] == EOS:
                break
            prefix += (top[0],)
        return steps

    def translate(self, source_tokens) -> tuple[str, ...]:
        """The greedy translation, without <eos>."""
        return tuple(step.chosen for step in self.decode(source_tokens, top_k=1) if step.chosen != EOS)
