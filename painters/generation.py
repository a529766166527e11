"""Greedy generation under a plan, with the KV cache (each executed layer call has its own slot)."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from painters.adapters import adapter_for
from painters.errors import PaintersError
from painters.execution import apply_plan
from painters.plan import Plan


def greedy_continuation(model: PreTrainedModel, tokenizer, plan: Plan, prompt: str, max_new_tokens: int = 32) -> str:
    """The text the model, run under `plan`, greedily appends to `prompt`."""
    if adapter_for(model.config.model_type).encoder:
        raise PaintersError(
            f"'{model.config.model_type}' is an encoder: generation needs a decoder model such as smollm2-135m"
        )
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    with apply_plan(model, plan), torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
        )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
