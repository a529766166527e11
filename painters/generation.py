"""Greedy generation under a plan, with the KV cache (each executed layer call has its own slot)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import PreTrainedModel

from painters.adapters import adapter_for, context_length
from painters.devices import input_device
from painters.errors import PaintersError
from painters.execution import apply_plan
from painters.plan import Plan
from painters.scoring import encode


def greedy_continuation(model: PreTrainedModel, tokenizer, plan: Plan, prompt: str, max_new_tokens: int = 32) -> str:
    """The text the model, run under `plan`, greedily appends to `prompt`."""
    if adapter_for(model.config.model_type).encoder:
        raise PaintersError(
            f"'{model.config.model_type}' is an encoder: generation needs a decoder model such as smollm2-135m"
        )
    inputs = tokenizer(prompt, return_tensors="pt").to(input_device(model))
    check_length(inputs["input_ids"].shape[1], max_new_tokens, context_length(model.config))
    with apply_plan(model, plan), torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
        )
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def check_length(prompt_tokens: int, max_new_tokens: int, context: int) -> None:
    """A prompt of at least one token whose continuation fits the model's context."""
    if prompt_tokens == 0:
        raise PaintersError("the prompt has no tokens: give some text to continue")
    if prompt_tokens + max_new_tokens > context:
        raise PaintersError(
            f"{prompt_tokens} prompt tokens and --max-new-tokens {max_new_tokens} exceed the model's context of "
            f"{context} tokens: give at most {max(context - prompt_tokens, 0)} new tokens"
        )


def greedy_texts(
    model: PreTrainedModel,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    stops: tuple[str, ...] = (),
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy continuations of many prompts under the model's current plan, batched with left padding.

    Generation stops at any of `stops` or the end-of-sequence token; as lm-eval does, the text is decoded
    without special tokens and cut before the first stop.
    """
    pad = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    keep = context_length(model.config) - max_new_tokens  # lm-eval cuts prompts from the left to fit
    encoded = [encode(tokenizer, text)[-keep:] for text in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))  # similar lengths together
    texts = [""] * len(prompts)
    device = input_device(model)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in batch)
        ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch], device=device)
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch], device=device)
        with torch.no_grad():
            output = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                stop_strings=list(stops) or None, tokenizer=tokenizer, pad_token_id=pad,
            )  # fmt: skip
        for row, i in enumerate(batch):
            texts[i] = cut_at_stop(tokenizer.decode(output[row, width:], skip_special_tokens=True), stops)
        if progress is not None:
            progress(len(batch))
    return texts


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """The generation up to the first stop sequence, as lm-eval cuts it."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text
