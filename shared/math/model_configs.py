"""Architectures of a few public models, from their published Hugging Face ``config.json``, and the parameter count of
the Llama-style dense ones.

``MODEL_CONFIGS["Llama-3-8B"]`` and friends: every value is the one written in the model's ``config.json`` (field names
as there), except the few listed in each config's ``derived``, which ``config.json`` leaves out and Hugging Face's
config class or modelling code fills in (the comment beside each says how). Attention variants covered: MHA
(Llama-2-7B), GQA (Llama-3-8B, Llama-3-70B), MQA (Falcon-7B) and MLA (DeepSeek-V3).

Tested in ``tests/math/test_model_configs.py``: :func:`parameter_count` against the published totals and against
torch modules of the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """One model's architecture; field names as in Hugging Face ``config.json``.

    ``head_dim`` is the per-head dimension of keys and values (d_h). The five MLA fields are None except for models
    with multi-head latent attention (DeepSeek-V2/V3), whose KV cache holds a ``kv_lora_rank`` latent plus a
    ``qk_rope_head_dim`` RoPE key per token and layer instead of per-head keys and values. ``derived`` names the
    fields not written in ``config.json`` itself.
    """

    name: str
    source: str  # "<Hugging Face repo id>/config.json"
    model_type: str
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    hidden_size: int
    head_dim: int
    intermediate_size: int | None  # SwiGLU width; None where the MLP is not SwiGLU (Falcon)
    vocab_size: int
    tie_word_embeddings: bool
    torch_dtype: str
    max_position_embeddings: int | None = None  # None where config.json has none
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    derived: tuple[str, ...] = ()

    @property
    def uses_mla(self) -> bool:
        """True for multi-head latent attention (the KV cache is the compressed latent, not per-head K and V)."""
        return self.kv_lora_rank is not None


# Llama configs written before transformers 4.45 carry no "head_dim": LlamaConfig then uses hidden_size //
# num_attention_heads (4096 / 32 = 8192 / 64 = 128).
_LLAMA_HEAD_DIM = ("head_dim",)

MODEL_CONFIGS: dict[str, ModelConfig] = {
    cfg.name: cfg
    for cfg in (
        ModelConfig(  # multi-head attention: as many KV heads as query heads
            name="Llama-2-7B",
            source="meta-llama/Llama-2-7b-hf/config.json",
            model_type="llama",
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            hidden_size=4096,
            head_dim=128,
            intermediate_size=11008,
            vocab_size=32000,
            tie_word_embeddings=False,
            torch_dtype="float16",
            max_position_embeddings=4096,
            derived=_LLAMA_HEAD_DIM,
        ),
        ModelConfig(  # grouped-query attention: 4 query heads share each KV head
            name="Llama-3-8B",
            source="meta-llama/Meta-Llama-3-8B/config.json",
            model_type="llama",
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            hidden_size=4096,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=128256,
            tie_word_embeddings=False,
            torch_dtype="bfloat16",
            max_position_embeddings=8192,
            derived=_LLAMA_HEAD_DIM,
        ),
        ModelConfig(  # grouped-query attention: 8 query heads share each KV head
            name="Llama-3-70B",
            source="meta-llama/Meta-Llama-3-70B/config.json",
            model_type="llama",
            num_hidden_layers=80,
            num_attention_heads=64,
            num_key_value_heads=8,
            hidden_size=8192,
            head_dim=128,
            intermediate_size=28672,
            vocab_size=128256,
            tie_word_embeddings=False,
            torch_dtype="bfloat16",
            max_position_embeddings=8192,
            derived=_LLAMA_HEAD_DIM,
        ),
        ModelConfig(  # multi-query attention: config.json says "multi_query": true
            name="Falcon-7B",
            source="tiiuae/falcon-7b/config.json",
            model_type="falcon",
            num_hidden_layers=32,  # "n_layer" in the original RefinedWebModel config
            num_attention_heads=71,  # "n_head"
            # HF FalconAttention: num_kv_heads = 1 when multi_query and not new_decoder_architecture.
            num_key_value_heads=1,
            hidden_size=4544,
            head_dim=64,  # FalconAttention: hidden_size // num_attention_heads = 4544 // 71
            intermediate_size=None,  # a GELU MLP of 4·hidden_size, not SwiGLU
            vocab_size=65024,
            # Not in config.json: PretrainedConfig's default, and FalconForCausalLM ties lm_head to the embeddings.
            tie_word_embeddings=True,
            torch_dtype="bfloat16",
            derived=("num_key_value_heads", "head_dim", "tie_word_embeddings"),
        ),
        ModelConfig(  # multi-head latent attention (DeepSeek-V2 paper §2.1)
            name="DeepSeek-V3",
            source="deepseek-ai/DeepSeek-V3/config.json",
            model_type="deepseek_v3",
            num_hidden_layers=61,
            num_attention_heads=128,
            num_key_value_heads=128,
            hidden_size=7168,
            # d_h of the DeepSeek-V2 paper §2.1 (= qk_nope_head_dim = v_head_dim): the per-head key/value size an
            # MHA of the same heads would cache, the baseline of that paper's Table 1.
            head_dim=128,
            intermediate_size=18432,  # the dense FFN of the first 3 layers; experts are 2048 wide
            vocab_size=129280,
            tie_word_embeddings=False,
            torch_dtype="bfloat16",  # the published weights are FP8 (quantization_config); bf16 is the compute type
            max_position_embeddings=163840,
            q_lora_rank=1536,
            kv_lora_rank=512,
            qk_rope_head_dim=64,
            qk_nope_head_dim=128,
            v_head_dim=128,
            derived=("head_dim",),
        ),
    )
}


def parameter_count(cfg: ModelConfig) -> int:
    """Total parameters of a Llama-style dense decoder, from its config.

    Embeddings V·h; per layer the attention projections q (h × H·d), k and v (h × H_kv·d each, fewer with GQA) and
    o (H·d × h), the SwiGLU MLP 3·h·i (gate, up, down), two RMSNorm weights 2·h; a final RMSNorm h; and the output
    head V·h unless it is tied to the embeddings. No biases.

    Raises
    ------
    ValueError
        For a model that is not Llama-style (``model_type`` other than ``"llama"``).

    References
    ----------
    HF ``LlamaForCausalLM`` (``LlamaAttention``, ``LlamaMLP``, ``LlamaRMSNorm``); ``model.num_parameters()`` gives
    6,738,415,616 for Llama-2-7B, and the Hugging Face safetensors totals are 8,030,261,248 (Llama-3.1-8B) and
    70,553,706,496 (Llama-3.1-70B), with the same shapes as Llama-3-8B and Llama-3-70B.
    """
    if cfg.model_type != "llama":
        raise ValueError(
            f"parameter_count covers Llama-style dense models (model_type 'llama'); {cfg.name} is "
            f"'{cfg.model_type}', whose layers are shaped differently"
        )
    h, v = cfg.hidden_size, cfg.vocab_size
    q_width, kv_width = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    attention = 2 * h * q_width + 2 * h * kv_width  # q and o, k and v
    per_layer = attention + 3 * h * cfg.intermediate_size + 2 * h
    lm_head = 0 if cfg.tie_word_embeddings else v * h
    return v * h + cfg.num_hidden_layers * per_layer + h + lm_head
