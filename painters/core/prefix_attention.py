"""Attention for rows that share a cached prefix: the prefix's keys and values read once per step for all rows.

GSM8K's rows all start with the same 8-shot prompt (about 730 tokens). A plain KV cache holds that prompt
once per row, so every decoding step streams it once per row (and sdpa may repeat it per query head too).
Here each row's cache holds only its own tokens; the prefix's keys and values stay once per layer call
(`SharedPrefix`). A step scores all rows' queries against the prefix in one matrix product per key-value
head, and each row's queries against its own tokens apart; one softmax over both parts' scores, then
the two parts' weighted values added, is softmax attention over prefix and own tokens together (Hydragen,
Juravsky et al. 2024, and bifurcated attention, Athiwaratkun et al. 2024, merge the parts by their
log-sum-exp instead, which lets each part run in a fused kernel; here both are plain products).

That is the same arithmetic in another order: in float32 the outputs differ from sdpa's at rounding
level, and greedy generations stay the same on the documents the tests check. transformers calls the
function through its attention interface, under `NAME`, while `prefix_attention(model)` is active, with
the keyword arguments the forward pass was given: `shared_prefix=` carries the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn
from transformers import Cache, PreTrainedModel

from painters.core.errors import PaintersError

NAME = "painters_shared_prefix"
_UNSUPPORTED = ("sliding_window", "softcap", "s_aux", "sinks")  # attention variants this function does not compute


@dataclass(frozen=True)
class SharedPrefix:
    """The one-row KV cache of the tokens every row starts with, under the plan that decodes the rows."""

    cache: Cache

    @property
    def length(self) -> int:
        return self.cache.get_seq_length()

    def keys_values(self, slot: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The prefix's keys and values of one layer call: [key-value heads, prefix tokens, head dim] each."""
        layer = self.cache.layers[slot]
        return layer.keys[0], layer.values[0]


@contextmanager
def prefix_attention(model: PreTrainedModel) -> Iterator[None]:
    """Run the model's attention through `shared_prefix_attention` inside the block; every forward pass
    there must pass `shared_prefix=`. The model's own attention is back afterwards."""
    _register()
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = previous


@cache
def _register() -> None:
    """Name the function and its mask (sdpa's boolean one) in transformers' registries, once per process."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def shared_prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    shared_prefix: SharedPrefix | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Softmax attention of `query` ([rows, heads, queries, dim]) over the shared prefix and then each row's
    own cached `key` and `value` ([rows, kv heads, own tokens, dim]); returns [rows, queries, heads, dim].

    `attention_mask` is sdpa's boolean mask over the own tokens (True: attend), or None for plain causal."""
    if shared_prefix is None:
        raise PaintersError("shared-prefix attention needs the prefix: pass shared_prefix= to the forward pass")
    used = [name for name in _UNSUPPORTED if kwargs.get(name) is not None]
    if used or dropout:
        raise PaintersError(f"shared-prefix attention does not compute {', '.join(used) or 'dropout'}")
    rows, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    prefix_keys, prefix_values = shared_prefix.keys_values(module.layer_idx)
    prefix = prefix_keys.shape[-2]
    # Queries grouped by their key-value head: [rows, kv heads, group x queries, dim].
    grouped = query.reshape(rows, kv_heads, group * length, dim) * scaling
    own = (grouped @ key.transpose(-1, -2)).masked_fill(~_allowed(attention_mask, group, length, key), float("-inf"))
    # Every row's queries against the prefix, one product per kv head: [kv heads, rows x group x queries, prefix].
    stacked = grouped.transpose(0, 1).reshape(kv_heads, rows * group * length, dim)
    shared = (stacked @ prefix_keys.transpose(-1, -2)).view(kv_heads, rows, group * length, prefix).transpose(0, 1)
    # One softmax over both parts (in float32, as transformers' eager attention takes it).
    weights = torch.cat([shared, own], dim=-1).float().softmax(-1).to(value.dtype)
    by_head = weights[..., :prefix].transpose(0, 1).reshape(kv_heads, rows * group * length, prefix)
    from_prefix = (by_head @ prefix_values).view(kv_heads, rows, group * length, dim).transpose(0, 1)
    output = weights[..., prefix:] @ value + from_prefix
    return output.view(rows, heads, length, dim).transpose(1, 2).contiguous(), None


def _allowed(mask: torch.Tensor | None, group: int, queries: int, key: torch.Tensor) -> torch.Tensor:
    """Which own tokens each query sees, broadcastable over [rows, kv heads, group x queries, own]: the
    boolean mask repeated for every head of a group, or causal where transformers left the mask out."""
    if mask is None:
        keys = key.shape[-2]
        return torch.ones(queries, keys, dtype=torch.bool, device=key.device).tril(keys - queries).repeat(group, 1)
    rows, _, _, width = mask.shape
    return mask[:, :, None].expand(rows, 1, group, queries, width).reshape(rows, 1, group * queries, width)
