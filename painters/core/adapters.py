"""What painters must know about each architecture, in one table keyed by `config.model_type`.

Every supported Hugging Face model keeps its blocks in one `nn.ModuleList` under its base model and
finds each block's KV-cache slot through a `layer_idx` attribute on the block's attention. That is
all planned execution needs: where the list lives, and whether the model is a causal decoder or a
bidirectional encoder. A new architecture of the same shape is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from painters.core.errors import PaintersError
from painters.core.versions import cache_keyword

if TYPE_CHECKING:  # the table itself needs neither, so the command line reads it without loading torch
    from torch import nn
    from transformers import PreTrainedModel


class UnsupportedModelError(PaintersError):
    """The model's architecture has no adapter."""


@dataclass(frozen=True)
class Adapter:
    """How one architecture exposes its layers.

    `layers` is the dotted path from the base model to the ModuleList of blocks; `encoder` marks a
    bidirectional encoder (loaded with AutoModel, no generation); `cache_argument` says how the model
    hands each block its KV cache: by keyword (its name) or by position (its index after the hidden states).
    """

    layers: str
    encoder: bool = False
    cache_argument: str | int | None = None  # None: the model's own name for it (`versions.cache_keyword`)

    def cache_of(self, args: tuple, kwargs: dict) -> object | None:
        """The KV cache among a block call's arguments (after the hidden states), or None."""
        if isinstance(self.cache_argument, int):
            return args[self.cache_argument] if len(args) > self.cache_argument else None
        return kwargs.get(self.cache_argument or cache_keyword())

    def layer_list(self, model: PreTrainedModel) -> nn.ModuleList:
        """The ModuleList the model's forward loops over."""
        owner, name = self._owner(model)
        return getattr(owner, name)

    def set_layer_list(self, model: PreTrainedModel, layers: nn.ModuleList) -> None:
        owner, name = self._owner(model)
        setattr(owner, name, layers)

    def _owner(self, model: PreTrainedModel) -> tuple[nn.Module, str]:
        *path, name = self.layers.split(".")
        owner = model.base_model
        for part in path:
            owner = getattr(owner, part)
        return owner, name


_DECODER = Adapter(layers="layers")
_ENCODER = Adapter(layers="encoder.layer", encoder=True)

ADAPTERS: dict[str, Adapter] = {
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "gemma3_text": _DECODER,
    "gpt_neox": Adapter(layers="layers", cache_argument="layer_past"),
    "gpt2": Adapter(layers="h", cache_argument=0),
    "bert": _ENCODER,
    "roberta": _ENCODER,
}


def adapter_for(model_type: str) -> Adapter:
    """The adapter of a `config.model_type`, or a clear error listing what is supported."""
    try:
        return ADAPTERS[model_type]
    except KeyError:
        raise UnsupportedModelError(
            f"unsupported architecture '{model_type}': painters supports {', '.join(sorted(ADAPTERS))}"
        ) from None


def cache_index_holders(layer: nn.Module) -> list[nn.Module]:
    """The submodules of a block that carry its KV-cache index: every supported architecture names it `layer_idx`."""
    return [m for m in layer.modules() if isinstance(getattr(m, "layer_idx", None), int)]


def kv_values_per_token(config) -> int:
    """Numbers one layer call keeps in the KV cache per token: keys and values of every key-value head."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * heads * head_dim


def sliding_window(config, layer: int) -> int | None:
    """The tokens a layer attends to at most when it is a sliding-window layer (its cache keeps no more), else None."""
    types = getattr(config, "layer_types", None)
    if types is not None and types[layer] == "sliding_attention":
        return config.sliding_window
    return None


def has_sliding_window(config) -> bool:
    """Whether any layer attends through a sliding window (Gemma 3's local layers, Mistral's window)."""
    types = getattr(config, "layer_types", None)
    if types is not None:
        return "sliding_attention" in types
    return getattr(config, "sliding_window", None) is not None


def full_attention_layers(config) -> list[int] | None:
    """The layers that attend to the whole context in a model that mixes them with sliding-window layers
    (Gemma 3: every sixth layer); None when every layer attends the same way."""
    kinds = [sliding_window(config, layer) is None for layer in range(config.num_hidden_layers)]
    return [layer for layer, full in enumerate(kinds) if full] if len(set(kinds)) > 1 else None


def context_length(config) -> int:
    """How many positions the model takes, read as lm-eval-harness reads it (2048 when the config is silent)."""
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    return 2048
