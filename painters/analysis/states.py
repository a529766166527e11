"""Capturing the hidden state after the embeddings and after every executed step of a plan.

A step is one unit of the plan: a layer, or a whole parallel block (whose state is the members' mean,
which only the block's last member returns). States are taken before the final norm, from hooks on
the planned model's slots, and only at real tokens: padding never reaches the statistics.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for, context_length
from painters.core.errors import PaintersError
from painters.core.execution import apply_plan
from painters.core.grammar import members, unit_text
from painters.core.plan import Plan
from painters.models.devices import input_device

MAX_LENGTH = 512  # tokens read from each text: enough for the statistics, short enough for a CPU


def state_labels(plan: Plan) -> list[str]:
    """What each captured state is: `embeddings`, then each executed step's layer text."""
    return ["embeddings", *(unit_text(unit) for unit in plan.units)]


def hidden_states(
    model: PreTrainedModel,
    tokenizer,
    texts: list[str],
    plan: Plan | str | None = None,
    batch_size: int = 16,
    max_length: int = MAX_LENGTH,
    progress: bool = False,
) -> Iterator[torch.Tensor]:
    """Per batch of texts, the states of its real tokens as a float32 tensor [states, tokens, hidden].

    Tokens are in text order (each text's first `max_length` tokens); states follow `state_labels(plan)`.
    Only one batch's states exist at a time, so statistics over any amount of text stay bounded. The
    plan is active while the iterator runs: consume it to the end (or close it) before using the model.
    """
    length = min(max_length, context_length(model.config))
    sequences = [tokenizer(text, truncation=True, max_length=length)["input_ids"] for text in texts]
    yield from token_states(model, sequences, plan, batch_size, progress, tokenizer.pad_token_id or 0)


@torch.no_grad()
def token_states(
    model: PreTrainedModel,
    sequences: list[list[int]],
    plan: Plan | str | None = None,
    batch_size: int = 16,
    progress: bool = False,
    pad_id: int = 0,
) -> Iterator[torch.Tensor]:
    """`hidden_states` for sequences of token ids: batches are right-padded and the padding dropped again."""
    empty = [number for number, tokens in enumerate(sequences, 1) if not tokens]
    if empty:
        raise PaintersError(f"text {empty[0]} has no tokens: every text needs at least one")
    with apply_plan(model, plan) as handle, tqdm(total=len(sequences), desc="states", disable=not progress) as bar:
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            yield _batch_states(model, handle.plan, batch, pad_id)
            bar.update(len(batch))


def _batch_states(model: PreTrainedModel, plan: Plan, batch: list[list[int]], pad_id: int) -> torch.Tensor:
    """The batch's states, gathered on the input's device whichever device each step ran on."""
    width, device = max(len(tokens) for tokens in batch), input_device(model)
    ids = torch.tensor([tokens + [pad_id] * (width - len(tokens)) for tokens in batch], device=device)
    mask = torch.tensor([[1] * len(tokens) + [0] * (width - len(tokens)) for tokens in batch], device=device)
    real = mask.bool()
    captured: list[torch.Tensor] = []

    def keep(hidden: torch.Tensor) -> None:
        captured.append(hidden[real.to(hidden.device)].to(device, torch.float32))

    slots = adapter_for(model.config.model_type).layer_list(model)
    hooks = [slots[0].register_forward_pre_hook(lambda _, args, kwargs: keep(_hidden(args, kwargs)), with_kwargs=True)]
    hooks += [slots[end].register_forward_hook(lambda _, __, output: keep(_first(output))) for end in _step_ends(plan)]
    try:
        model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(captured)


def _step_ends(plan: Plan) -> list[int]:
    """The slot that ends each step: a layer's own slot, or the last member of a parallel block."""
    ends, calls = [], 0
    for unit in plan.units:
        calls += len(members(unit))
        ends.append(calls - 1)
    return ends


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _first(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output
