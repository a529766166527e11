"""Greedy generation under a plan, with the KV cache (each executed layer call has its own slot).

`plan_greedy_texts` is lm-eval's `generate_until` (GSM8K) without its waste: the prompt tokens every
document shares run once per plan, finished rows leave the batch and new ones take their place, and the
cache keeps room for the coming tokens instead of being copied at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import Cache, PreTrainedModel

from painters.core.adapters import adapter_for, context_length, has_sliding_window
from painters.core.errors import PaintersError
from painters.core.execution import apply_plan
from painters.core.plan import Plan
from painters.core.prefix_attention import SharedPrefix, prefix_attention
from painters.core.prefix_memo import shared_steps, sharing_order
from painters.core.versions import cache_argument, output_cache
from painters.models.devices import input_device
from painters.tasks.roomy_cache import RoomyLayer
from painters.tasks.scoring import common_prefix, encode, expanded, plan_memo, prefix_cache


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


def plan_greedy_texts(
    model: PreTrainedModel,
    tokenizer,
    prompts: list[str],
    plans: list[Plan],
    max_new_tokens: int,
    stops: tuple[str, ...] = (),
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    memo_bytes: int | None = None,
    exact_attention: bool = False,
) -> dict[Plan, list[str]]:
    """Greedy continuations of many prompts under each plan, as lm-eval's `generate_until` makes them.

    The tokens every prompt starts with (a few-shot prompt) run once per plan, and plans sharing their
    first steps run those steps of that prefix once (`painters.core.prefix_memo`); each plan then decodes
    all prompts from the prefix's KV cache (`greedy_texts`, which says what `exact_attention` does).
    `progress(n)` counts prompts x plans.
    As lm-eval does, the tokenizer's end-of-text token, written out, is one more stop sequence.
    """
    if not prompts:
        return {plan: [] for plan in plans}
    context = context_length(model.config)
    check_length(1, max_new_tokens, context)
    encoded = [encode(tokenizer, text)[max_new_tokens - context :] for text in prompts]  # cut as lm-eval cuts
    for tokens in encoded:
        check_length(len(tokens), max_new_tokens, context)
    if tokenizer.eos_token_id is not None:
        stops = (*stops, tokenizer.decode([tokenizer.eos_token_id]))
    shared = 0 if has_sliding_window(model.config) else common_prefix(encoded)
    shared = min(shared, *(len(tokens) - 1 for tokens in encoded))  # each row runs one token at least
    order, memo, texts = sharing_order(plans), plan_memo(model, plans, memo_bytes), {}
    for plan, following in zip(order, [*order[1:], None], strict=True):
        if memo is not None:
            memo.start_plan(plan, shared_steps(plan, following))
        with apply_plan(model, plan, memo):
            prefix = prefix_cache(model, encoded[0][:shared]) if shared else None
        with apply_plan(model, plan):
            texts[plan] = greedy_texts(
                model, tokenizer, encoded, max_new_tokens, stops, batch_size, progress, prefix, exact_attention
            )
    return texts


@torch.no_grad()
def greedy_texts(
    model: PreTrainedModel,
    tokenizer,
    prompts: list[list[int]],
    max_new_tokens: int,
    stops: tuple[str, ...] = (),
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    prefix: Cache | None = None,
    exact_attention: bool = False,
) -> list[str]:
    """Greedy continuations of tokenized prompts under the model's current plan.

    `prefix` is the KV cache of the tokens every prompt starts with; each prompt runs only the rest. The
    rows' caches hold only their own tokens, and they attend to the prefix through shared-prefix attention
    (`painters.core.prefix_attention`), which reads it once per step for all rows: the same arithmetic as
    sdpa's in another order, so in float32 the numbers differ at rounding level. `exact_attention` instead
    gives every row its own copy of the prefix's cache and the model's own attention (lm-eval's numbers).
    Up to `batch_size` prompts decode together, longest first (lm-eval's order); a row leaves the batch
    when it ends (the end-of-sequence token, a stop sequence in its new text, or `max_new_tokens`), and
    the batch is refilled from the queue, so no step decodes a finished row. Each row's numbers are its
    own, whichever rows it shares a batch with (padding is masked), so the texts are lm-eval's: the
    generation decoded without special tokens and cut before the first stop. That holds in float32; in
    bfloat16 or float16 a row's rounding depends on its padding and batch, as lm-eval's own does.

    A sliding-window cache keeps only its last tokens, and a window counts padding placed among a row's
    tokens; so there rows are only left-padded, which keeps every window exact, and join only at the start.
    """
    refill = not has_sliding_window(model.config)
    if prefix is not None and not refill:
        raise PaintersError("a sliding-window model cannot share a prefix: its padding would take places in windows")
    ends = _end_tokens(model)
    lookback = max((len(tokenizer.encode(stop, add_special_tokens=False)) + 2 for stop in stops), default=0)
    queue = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    shared = prefix.get_seq_length() if prefix is not None else 0
    apart = SharedPrefix(prefix) if prefix is not None and not exact_attention else None
    texts, batch = [""] * len(prompts), None
    while queue or batch is not None:
        free = batch_size - (len(batch.rows) if batch is not None else 0)
        changed = bool(queue and free and (batch is None or refill))
        if changed:
            joining, queue = queue[:free], queue[free:]
            new = _prefill(model, prefix, apart, joining, [prompts[i][shared:] for i in joining])
            batch = new if batch is None else batch.join(new)
        done = batch.advance(ends, max_new_tokens, lambda tokens: _stopped(tokenizer, tokens, stops, lookback))
        for row in done:
            texts[row.index] = cut_at_stop(tokenizer.decode(row.tokens, skip_special_tokens=True), stops)
        if progress is not None and done:
            progress(len(done))
        batch = batch.without(done, trim=refill)
        if batch is not None:
            if refill:  # (a window's layers keep their own shape)
                batch.make_room(max_new_tokens, batch_size)
            batch.step(model)
    return texts


@dataclass(eq=False)
class _Row:
    index: int  # which prompt
    tokens: list[int] = field(default_factory=list)  # generated so far


@dataclass
class _Batch:
    """Rows decoding together: their KV cache, attention mask (0 for padding) and each row's next token.

    The cache holds every token a row has seen except its `next` one, or, with a `prefix` kept apart,
    those after the prefix; rows joined later are padded on the left, and columns that no row uses any
    more are dropped. Once it has room (`make_room`, `painters.tasks.roomy_cache`), rows leave and join in place.
    """

    rows: list[_Row]
    cache: Cache
    mask: torch.Tensor  # [rows, cache length]
    next: torch.Tensor  # [rows]
    prefix: SharedPrefix | None = None

    def advance(self, ends: set[int], max_new_tokens: int, stopped: Callable[[list[int]], bool]) -> list[_Row]:
        """Append each row's next token; the rows that have ended."""
        done = []
        for row, token in zip(self.rows, self.next.tolist(), strict=True):
            row.tokens.append(token)
            if token in ends or len(row.tokens) >= max_new_tokens or stopped(row.tokens):
                done.append(row)
        return done

    def without(self, done: list[_Row], trim: bool) -> _Batch | None:
        """The batch less its finished rows (None if none are left)."""
        if not done:
            return self
        kept = [i for i, row in enumerate(self.rows) if row not in done]
        if not kept:
            return None
        index = torch.tensor(kept, device=self.mask.device)
        if _roomy(self.cache):
            for layer in self.cache.layers:
                layer.keep(kept)
        else:
            self.cache.reorder_cache(index)  # (moves the index to each layer's device, wherever accelerate put it)
        mask = self.mask[index]
        unused = int(mask.any(0).int().argmax()) if trim else 0  # leading columns only padding uses
        if unused:
            _drop_leading(self.cache, unused)
        return _Batch([self.rows[i] for i in kept], self.cache, mask[:, unused:], self.next[index], self.prefix)

    def join(self, other: _Batch) -> _Batch:
        """Both batches' rows in one (this batch's cache has room), the shorter cache padded on the left."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.join(theirs.keys, theirs.values)
        mask = torch.cat([_pad_left(m, width - m.shape[1]) for m in (self.mask, other.mask)])
        return _Batch(self.rows + other.rows, self.cache, mask, torch.cat([self.next, other.next]), self.prefix)

    def make_room(self, tokens: int, rows: int) -> None:
        """Room for the next step's token in every cache layer: where a layer has none left (or was never
        given any), it is built anew with room for `tokens` more tokens and `rows` rows in all."""
        if not (_roomy(self.cache) and all(layer.has_room() for layer in self.cache.layers)):
            self.cache.layers = [RoomyLayer(layer.keys, layer.values, tokens, rows) for layer in self.cache.layers]

    def step(self, model: PreTrainedModel) -> None:
        """Run each row's next token: it joins the cache, and the greedy choice after it is the new next."""
        positions = self.mask.sum(-1, keepdim=True)
        self.mask = torch.cat([self.mask, torch.ones_like(positions)], dim=-1)
        self.cache, self.next = _forward(model, self.next[:, None], self.mask, positions, self.cache, self.prefix)


def _prefill(
    model: PreTrainedModel, prefix: Cache | None, apart: SharedPrefix | None, rows: list[int], prompts: list[list[int]]
) -> _Batch:
    """A batch of new rows: their prompts after the shared prefix, left-padded, run from the prefix's cache,
    which is kept `apart` or else becomes the first columns of every row's cache."""
    device = input_device(model)
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    cached = prefix.get_seq_length() if prefix is not None and apart is None else 0
    mask = torch.cat([torch.ones(len(prompts), cached, dtype=mask.dtype, device=device), mask], dim=-1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
    cache = expanded(prefix, len(prompts)) if cached else None
    out_cache, next_tokens = _forward(model, ids, mask, positions, cache, apart)
    return _Batch([_Row(i) for i in rows], out_cache, mask, next_tokens, apart)


def _forward(
    model: PreTrainedModel,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache: Cache | None,
    prefix: SharedPrefix | None,
) -> tuple[Cache, torch.Tensor]:
    """Run the rows' new tokens; their cache and the greedy choice after each row's last token. With a
    prefix kept apart, the mask covers only the rows' own tokens and positions continue after the prefix."""
    inputs = dict(input_ids=ids, attention_mask=mask, **cache_argument(cache), use_cache=True, logits_to_keep=1)
    if prefix is None:
        out = model(**inputs, position_ids=positions)
    else:
        with prefix_attention(model):
            out = model(**inputs, position_ids=positions + prefix.length, shared_prefix=prefix)
    return output_cache(out), out.logits[:, -1].argmax(-1).to(mask.device)


def _roomy(cache: Cache) -> bool:
    return all(isinstance(layer, RoomyLayer) for layer in cache.layers)


def _drop_leading(cache: Cache, columns: int) -> None:
    """Drop the first token columns of every layer of the cache (padding in every row)."""
    for layer in cache.layers:
        if isinstance(layer, RoomyLayer):
            layer.drop_leading(columns)
        else:
            layer.keys, layer.values = layer.keys[..., columns:, :], layer.values[..., columns:, :]


def _pad_left(mask: torch.Tensor, width: int) -> torch.Tensor:
    """`width` zero columns before a mask's tokens."""
    return torch.cat([mask.new_zeros(mask.shape[0], width), mask], dim=-1) if width else mask


def _end_tokens(model: PreTrainedModel) -> set[int]:
    """The tokens that end a generation, as transformers' `generate` takes them from the generation config."""
    ends = model.generation_config.eos_token_id
    return set() if ends is None else set(ends) if isinstance(ends, list) else {ends}


def _stopped(tokenizer, tokens: list[int], stops: tuple[str, ...], lookback: int) -> bool:
    """Whether a stop sequence shows in the text of the last tokens, as lm-eval's stopping criterion looks."""
    if not stops:
        return False
    tail = tokenizer.decode(tokens[-lookback:])
    return any(stop in tail for stop in stops if stop)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """The generation up to the first stop sequence, as lm-eval cuts it."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text
