"""What running a model under a plan will cost, known before any weight is read.

The weights' bytes follow from the parameter count and dtype; the KV cache holds, per token, the keys
and values of every executed layer call (a repeated or looped layer keeps one entry per call; a
sliding-window layer keeps at most its window). Both can be computed on an empty (meta-device) model.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for, context_length, kv_values_per_token, sliding_window
from painters.core.plan import Plan
from painters.models.devices import free_memory
from painters.models.placement import Placement

GIB = 1 << 30


def weight_bytes(model: PreTrainedModel, placement: Placement) -> int:
    """Bytes of the model's parameters in the placement's dtype (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters()) * placement.torch_dtype.itemsize


def kv_cache_bytes(model: PreTrainedModel, plan: Plan, placement: Placement, tokens: int) -> int:
    """Bytes of the KV cache for `tokens` tokens of one sequence under `plan` (0 for an encoder)."""
    config = model.config
    if adapter_for(config.model_type).encoder:
        return 0
    kept = [min(tokens, sliding_window(config, layer) or tokens) for layer in plan.layers()]
    return sum(kept) * kv_values_per_token(config) * placement.torch_dtype.itemsize


def plan_cost(model: PreTrainedModel, plan: Plan, placement: Placement) -> dict[str, str]:
    """What `painters layers --plan` prints: weights, KV cache per 1,000 tokens, and whether it fits the device."""
    placement = placement.check()  # `auto` means this machine's device
    weights = weight_bytes(model, placement)
    longest = kv_cache_bytes(model, plan, placement, context_length(model.config))
    need = weights + longest
    if placement.device_map is not None:
        fits = f"accelerate spreads {need / GIB:.2f} GiB over the GPUs, then CPU and disk (--device-map)"
    else:
        free = free_memory(torch.device(placement.device))
        verdict = "yes" if need <= free else "no"
        fits = f"{verdict}: {need / GIB:.2f} GiB of {free / GIB:.2f} GiB free on {placement.device}"
    return {
        "plan": str(plan),
        "layer calls": str(len(plan.layers())),
        "dtype": placement.dtype,
        "weights": f"{weights / GIB:.2f} GiB",
        "KV cache": f"{kv_cache_bytes(model, plan, placement, 1000) / GIB:.3f} GiB per 1,000 tokens",
        "fits": f"{fits} (weights + one sequence of {context_length(model.config):,} tokens)",
    }
