"""Tiny random-weight models of every supported architecture, built in-process from a config."""

from __future__ import annotations

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    BertConfig,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedModel,
    Qwen2Config,
    Qwen3Config,
    RobertaConfig,
)

NUM_LAYERS = 6
VOCAB = 96
_COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=NUM_LAYERS)
_GQA = dict(_COMMON, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)

CONFIGS = {
    "llama": lambda: LlamaConfig(**_GQA),
    "mistral": lambda: MistralConfig(**_GQA, sliding_window=None),
    "qwen2": lambda: Qwen2Config(**_GQA),
    "qwen3": lambda: Qwen3Config(**_GQA, head_dim=8),
    "gemma3_text": lambda: Gemma3TextConfig(
        **_GQA,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"] * (NUM_LAYERS // 2),
    ),
    "gpt2": lambda: GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=NUM_LAYERS, n_head=4, n_positions=128),
    "gpt_neox": lambda: GPTNeoXConfig(**_COMMON, num_attention_heads=4, max_position_embeddings=128),
    "bert": lambda: BertConfig(**_COMMON, num_attention_heads=4, max_position_embeddings=128),
    "roberta": lambda: RobertaConfig(**_COMMON, num_attention_heads=4, max_position_embeddings=130, pad_token_id=1),
}
ENCODERS = ("bert", "roberta")
DECODERS = tuple(name for name in CONFIGS if name not in ENCODERS)


def tiny_model(model_type: str, seed: int = 0) -> PreTrainedModel:
    """A deterministic random-weight model in eval mode, float32, eager attention."""
    torch.manual_seed(seed)
    config = CONFIGS[model_type]()
    auto = AutoModel if model_type in ENCODERS else AutoModelForCausalLM
    return auto.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()


class CharTokenizer:
    """A character-level tokenizer for the tiny models' 96-token vocabulary (it adds no special tokens)."""

    bos_token_id = eos_token_id = 1

    def encode(self, text, add_special_tokens=True):
        return [3 + ord(char) % 90 for char in text]

    def decode(self, ids):
        """BOS as `<s>`; the lossy character codes as `?` (scoring only decodes the BOS)."""
        return "".join("<s>" if i == 1 else "?" for i in ([ids] if isinstance(ids, int) else ids))
