"""Log-likelihoods of continuations given contexts, as lm-eval-harness computes them, but leaner.

Tokens are exactly lm-eval's (`_encode_pair`: trailing context spaces move to the continuation; the
continuation is the tail of the whole text's encoding), so the numbers agree to float noise. Work is
shared where the results allow it: every continuation of a context (the choices of a multiple-choice
question) is scored against one encoding of that context, through its KV cache, instead of
re-encoding the context once per choice. Contexts are sorted by length and batched, so padding is small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from painters.tasks import Doc


@dataclass
class _Group:
    """One context and the continuations scored against it, with where each result goes."""

    context: list[int]
    continuations: list[list[int]] = field(default_factory=list)
    targets: list[tuple[int, int]] = field(default_factory=list)  # (doc index, pair index)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split of a (context, continuation) pair into tokens."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    context_tokens = tokenizer.encode(context)
    return context_tokens, whole[len(context_tokens) :]


def loglikelihoods(
    model: PreTrainedModel,
    tokenizer,
    docs: list[Doc],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[list[tuple[float, bool]]]:
    """For each doc, (log-likelihood, is-greedy) of each of its pairs; `progress(n)` after n pairs are done."""
    groups = _groups(tokenizer, docs)
    results: list[list[tuple[float, bool]]] = [[(0.0, False)] * len(doc.pairs) for doc in docs]
    groups.sort(key=lambda g: (-len(g.context), -max(map(len, g.continuations))))
    for start in range(0, len(groups), batch_size):
        batch = groups[start : start + batch_size]
        for group, scores in zip(batch, _score_batch(model, batch), strict=True):
            for (doc, pair), score in zip(group.targets, scores, strict=True):
                results[doc][pair] = score
        if progress is not None:
            progress(sum(len(g.targets) for g in batch))
    return results


def _groups(tokenizer, docs: list[Doc]) -> list[_Group]:
    groups: dict[tuple[int, ...], _Group] = {}
    for d, doc in enumerate(docs):
        for p, (context, continuation) in enumerate(doc.pairs):
            context_tokens, continuation_tokens = encode_pair(tokenizer, context, continuation)
            group = groups.setdefault((d, *context_tokens), _Group(context_tokens))
            group.continuations.append(continuation_tokens)
            group.targets.append((d, p))
    return list(groups.values())


@torch.no_grad()
def _score_batch(model: PreTrainedModel, batch: list[_Group]) -> list[list[tuple[float, bool]]]:
    """Encode the batch's contexts once (left-padded), then all continuations against their cached context."""
    device = model.device
    width = max(len(g.context) for g in batch)
    ids = torch.tensor([[0] * (width - len(g.context)) + g.context for g in batch], device=device)
    mask = torch.tensor([[0] * (width - len(g.context)) + [1] * len(g.context) for g in batch], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    first = F.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each continuation's first token

    rows = [(g, c) for g, group in enumerate(batch) for c in group.continuations]
    rest = _continuation_logprobs(model, batch, rows, out.cache, mask) if any(len(c) > 1 for _, c in rows) else None
    scores: list[list[tuple[float, bool]]] = [[] for _ in batch]
    for r, (g, tokens) in enumerate(rows):
        logprobs = first[g : g + 1] if rest is None else torch.cat([first[g : g + 1], rest[r, : len(tokens) - 1]])
        target = torch.tensor(tokens, device=device)
        chosen = logprobs.gather(-1, target[:, None]).squeeze(-1)
        scores[g].append((chosen.sum().item(), bool((logprobs.argmax(-1) == target).all())))
    return scores


def _continuation_logprobs(model, batch, rows, cache, context_mask) -> torch.Tensor:
    """Log-probabilities after each continuation token but the last, for every (group, continuation) row."""
    device = model.device
    length = max(len(tokens) for _, tokens in rows) - 1
    index = torch.tensor([g for g, _ in rows], device=device)
    cache.reorder_cache(index)  # one copy of its context's cache per continuation
    ids = torch.tensor([tokens[:-1] + [0] * (length - len(tokens) + 1) for _, tokens in rows], device=device)
    context_lengths = context_mask.sum(-1)[index]
    positions = context_lengths[:, None] + torch.arange(length, device=device)
    mask = torch.cat([context_mask[index], torch.ones_like(ids)], dim=-1)  # right padding never reaches real tokens
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
    return F.log_softmax(out.logits.float(), dim=-1)
