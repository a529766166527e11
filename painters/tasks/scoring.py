"""Log-likelihoods of continuations given contexts, as lm-eval-harness computes them, but leaner.

Tokens are exactly lm-eval's (`_encode_pair`: trailing context spaces move to the continuation; the
continuation is the tail of the whole text's encoding), so the numbers agree to float noise. Work is
shared where the results allow it: every continuation of a context (the choices of a multiple-choice
question) is scored against one encoding of that context, through its KV cache, instead of
re-encoding the context once per choice. Contexts are sorted by length and batched, so padding is small.

That sharing is exact to float32 noise. In bfloat16 (or float16), where each layer rounds its output to
8 (or 11) bits, a context run apart from its continuation rounds differently from the whole sequence,
and so does a sequence padded to a longer one (the kernels' blocking changes), which moves
log-likelihoods by ~0.1 and flips predictions near ties; on CPUs with AMX even rows of equal length
batched together round differently from each row alone. So there each row runs alone, as one whole
unpadded sequence, and its log-softmax and sum are taken in the model's dtype: lm-eval's arithmetic, as
lm-eval computes each request alone (at batch size 1).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import Cache, PreTrainedModel

from painters.core.adapters import adapter_for, context_length, has_sliding_window
from painters.core.errors import PaintersError
from painters.core.execution import apply_plan
from painters.core.plan import Plan
from painters.core.prefix_memo import PrefixMemo, shared_steps, sharing_order
from painters.core.versions import cache_argument, output_cache
from painters.models.devices import input_device, memo_budget, tokens_per_pass
from painters.tasks.catalog import Doc

PASS_COST = 8  # one more forward pass costs about 1/PASS_COST of a full pass's tokens of work (it streams all weights)


@dataclass
class _Group:
    """A shared token prefix and the rows run after it, with where each row's result goes.

    A row is the rest of its pair's context (empty when the whole context is shared, as for the choices
    of a question; WinoGrande's two contexts share the sentence up to the blank) and its continuation;
    only the continuation, the row's last `scored` tokens, is scored.
    """

    context: list[int]
    rows: list[tuple[list[int], int]] = field(default_factory=list)  # (tokens, scored)
    targets: list[tuple[int, int]] = field(default_factory=list)  # (doc index, pair index)


def encode(tokenizer, text: str) -> list[int]:
    """lm-eval's `tok_encode`: the tokenizer's own special tokens (a BOS, for Llama's), unless the text starts with BOS."""
    prefix = tokenizer.decode(prefix_token(tokenizer))
    return tokenizer.encode(text, add_special_tokens=not (prefix and text.startswith(prefix)))


def prefix_token(tokenizer) -> int:
    """What stands for an empty context, as in lm-eval: the BOS token, else EOS."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split of a (context, continuation) pair into tokens; an empty context is the prefix token."""
    if not context:
        prefix, continuation_tokens = prefix_token(tokenizer), tokenizer.encode(continuation, add_special_tokens=False)
        if continuation_tokens and continuation_tokens[0] == prefix:  # the continuation brings its own
            context_tokens, continuation_tokens = continuation_tokens[:1], continuation_tokens[1:]
        else:
            context_tokens = [prefix]
    else:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = encode(tokenizer, context + continuation)
        context_tokens = encode(tokenizer, context)
        continuation_tokens = whole[len(context_tokens) :]
    if not continuation_tokens:
        raise PaintersError(f"continuation {continuation!r} encodes to no tokens: there is nothing to score")
    return context_tokens, continuation_tokens


def truncate(context: list[int], continuation: list[int], max_length: int) -> list[int]:
    """The context cut from the left so that the scored sequence fits the model, as lm-eval cuts it."""
    excess = len(context) + len(continuation) - 1 - max_length
    return context[excess:] if excess > 0 else context


@dataclass(frozen=True)
class Batching:
    """A task's documents as the batches every plan runs, in order: the tokens every context shares (run
    once per batch), then the groups of each batch, longest context first.

    Each batch's scores depend only on the batch, so any range of batches can run anywhere (a sweep's
    units of work) and give what the whole task gives.
    """

    prefix: list[int]
    batches: list[list[_Group]]
    max_tokens: int
    prefixed: int = 0  # how many of the batches, the first ones, continue from `prefix` (the others start afresh)

    def prefix_of(self, index: int) -> list[int]:
        """The shared tokens batch `index` continues from (none for a document with another few-shot prompt)."""
        return self.prefix if index < self.prefixed else []


Score = tuple[int, int, float, bool, int]  # (doc, pair, log-likelihood, is greedy, continuation tokens)


def batching(
    model: PreTrainedModel,
    tokenizer,
    docs: list[Doc],
    batch_size: int = 32,
    max_tokens: int | None = None,
    shared_prefix: bool = False,
) -> Batching:
    """The batches of `docs`: at most `batch_size` contexts and about `max_tokens` tokens each, padding
    included (default: what the model's device needs to run at full speed, `painters.models.devices.tokens_per_pass`).
    With `shared_prefix` (every context starts with the same few-shot prompt), the tokens all contexts
    share run once per batch and every context continues from their KV cache."""
    max_tokens = max_tokens or tokens_per_pass(input_device(model))
    prefix, sharing, alone = _groups(tokenizer, docs, model.config, shared_prefix)
    prefixed = _batches(sharing, batch_size, max_tokens)
    return Batching(prefix, prefixed + _batches(alone, batch_size, max_tokens), max_tokens, len(prefixed))


def loglikelihoods(
    model: PreTrainedModel,
    tokenizer,
    docs: list[Doc],
    batch_size: int = 32,
    max_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
    shared_prefix: bool = False,
) -> list[list[tuple[float, bool]]]:
    """For each doc, (log-likelihood, is-greedy) of each of its pairs, batched as `batching` says;
    `progress(n)` after n pairs are done."""
    batched, score = batching(model, tokenizer, docs, batch_size, max_tokens, shared_prefix), _scorer(model)
    scores = {}
    for index in range(len(batched.batches)):
        scores[index] = _batch_scores(model, batched, index, score)
        if progress is not None:
            progress(len(scores[index]))
    return by_doc(docs, scores)


def plan_loglikelihoods(
    model: PreTrainedModel,
    tokenizer,
    docs: list[Doc],
    plans: list[Plan],
    batch_size: int = 32,
    max_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
    memo_bytes: int | None = None,
    shared_prefix: bool = False,
) -> dict[Plan, list[list[tuple[float, bool]]]]:
    """`loglikelihoods` under each of `plans`, equal to running them one by one (see `plan_batch_scores`)."""
    batched = batching(model, tokenizer, docs, batch_size, max_tokens, shared_prefix)
    scores = plan_batch_scores(model, batched, plans, range(len(batched.batches)), progress, memo_bytes)
    return {plan: by_doc(docs, found) for plan, found in scores.items()}


def plan_batch_scores(
    model: PreTrainedModel,
    batched: Batching,
    plans: list[Plan],
    indices: Iterable[int],
    progress: Callable[[int], None] | None = None,
    memo_bytes: int | None = None,
) -> dict[Plan, dict[int, list[Score]]]:
    """The scores of the batches at `indices` under each plan. Every batch runs the layer steps that plans
    share once (`painters.core.prefix_memo`, which keeps at most `memo_bytes`, default
    `painters.models.devices.memo_budget`). `progress(n)` counts pairs x plans."""
    order, memo, score = sharing_order(plans), plan_memo(model, plans, memo_bytes), _scorer(model)
    scores: dict[Plan, dict[int, list[Score]]] = {plan: {} for plan in order}
    for index in indices:
        for plan, following in zip(order, [*order[1:], None], strict=True):
            if memo is not None:
                memo.start_plan(plan, shared_steps(plan, following))
            with apply_plan(model, plan, memo):
                scores[plan][index] = _batch_scores(model, batched, index, score)
            if progress is not None:
                progress(len(scores[plan][index]))
        if memo is not None:
            memo.clear()
    return scores


def _batch_scores(model: PreTrainedModel, batched: Batching, index: int, score: Callable) -> list[Score]:
    """One batch's scores, each with the (doc, pair) it belongs to and its continuation's token count."""
    batch = batched.batches[index]
    found = []
    scores = score(model, batched.prefix_of(index), batch, batched.max_tokens)
    for group, group_scores in zip(batch, scores, strict=True):
        for (doc, pair), (_, scored), (ll, greedy) in zip(group.targets, group.rows, group_scores, strict=True):
            found.append((doc, pair, ll, greedy, scored))
    return found


def by_doc(docs: list[Doc], scores: dict[int, list[Score]]) -> list[list[tuple[float, bool]]]:
    """Batch scores back in document order: for each doc, (log-likelihood, is-greedy) of each of its pairs."""
    results = [[(0.0, False)] * len(doc.pairs) for doc in docs]
    for found in scores.values():
        for doc, pair, ll, greedy, _ in found:
            results[doc][pair] = (ll, greedy)
    return results


def plan_memo(model: PreTrainedModel, plans: list[Plan], memo_bytes: int | None) -> PrefixMemo | None:
    """The memo through which plans run one after another share steps (None for one plan: nothing to
    share); it keeps at most `memo_bytes` (default `painters.models.devices.memo_budget`)."""
    if len(set(plans)) < 2:
        return None
    budget = memo_budget(input_device(model)) if memo_bytes is None else memo_bytes
    return PrefixMemo(adapter_for(model.config.model_type), budget)


def _batches(groups: list[_Group], batch_size: int, max_tokens: int) -> list[list[_Group]]:
    """Consecutive groups (sorted longest context first) filling at most batch_size rows and ~max_tokens tokens."""
    batches: list[list[_Group]] = []
    for group in groups:
        if (
            not batches
            or len(batches[-1]) == batch_size
            or (len(batches[-1]) + 1) * len(batches[-1][0].context) > max_tokens
        ):
            batches.append([])
        batches[-1].append(group)
    return batches


def _groups(tokenizer, docs: list[Doc], config, shared_prefix: bool) -> tuple[list[int], list[_Group], list[_Group]]:
    """The prefix the sharing documents' contexts share (with `shared_prefix`; else none), and each doc's
    pairs after it grouped by their own shared context prefix, longest context first (for `_batches`):
    the groups of the sharing documents, then the others'.

    The documents that share are those with the most common few-shot prompt (`Doc.prompt`: OLMES gives
    the few documents that are themselves shots other shots); all of them where no doc names its prompt.
    The shared prefix stops a token short of the shortest context: that token's output predicts a
    continuation's first token. Sliding-window models share none: the padding between the prefix and a
    shorter context would take places in the window.
    """
    max_length, shared_prefix = context_length(config), shared_prefix and not has_sliding_window(config)
    encoded = []
    for doc in docs:
        pairs = []
        for context, continuation in doc.pairs:
            context_tokens, continuation_tokens = encode_pair(tokenizer, context, continuation)
            pairs.append((truncate(context_tokens, continuation_tokens, max_length), continuation_tokens))
        encoded.append(pairs)
    sharing = _sharing(docs) if shared_prefix else set()
    contexts = [context for d in sorted(sharing) for context, _ in encoded[d]]
    common = min(common_prefix(contexts), min(map(len, contexts)) - 1) if contexts else 0
    groups: dict[tuple[int, ...], _Group] = {}
    for d, pairs in enumerate(encoded):
        cut = common if d in sharing else 0
        pairs = [(context[cut:], continuation) for context, continuation in pairs]
        shared = common_prefix([context for context, _ in pairs])
        for p, (context, continuation) in enumerate(pairs):
            prefix = context[:shared] if shared else context
            group = groups.setdefault((d, *prefix), _Group(prefix))
            group.rows.append((context[len(prefix) :] + continuation, len(continuation)))
            group.targets.append((d, p))
    order = sorted(groups.values(), key=lambda g: (-len(g.context), -max(len(tokens) for tokens, _ in g.rows)))
    after = [bool(common) and group.targets[0][0] in sharing for group in order]
    return (
        contexts[0][:common] if common else [],
        [group for group, shares in zip(order, after, strict=True) if shares],
        [group for group, shares in zip(order, after, strict=True) if not shares],
    )


def _sharing(docs: list[Doc]) -> set[int]:
    """The documents whose contexts start with the most common few-shot prompt (every one, if none names it)."""
    prompts = Counter(doc.prompt for doc in docs)
    usual = prompts.most_common(1)[0][0] if docs else ""
    return {d for d, doc in enumerate(docs) if doc.prompt == usual}


def common_prefix(sequences: list[list[int]]) -> int:
    """How many leading tokens all the sequences share."""
    length = 0
    while all(len(s) > length for s in sequences) and len({s[length] for s in sequences}) == 1:
        length += 1
    return length


@torch.no_grad()
def _score_batch(
    model: PreTrainedModel, prefix: list[int], batch: list[_Group], max_tokens: int
) -> list[list[tuple[float, bool]]]:
    """Encode the batch's contexts once (left-padded, after the shared `prefix` if any), then all
    continuations against their cached context."""
    device = input_device(model)
    width = max(len(g.context) for g in batch)
    ids = torch.tensor([[0] * (width - len(g.context)) + g.context for g in batch], device=device)
    mask = torch.tensor([[0] * (width - len(g.context)) + [1] * len(g.context) for g in batch], device=device)
    cache = expanded(prefix_cache(model, prefix), len(batch)) if prefix else None
    mask = torch.cat([torch.ones(len(batch), len(prefix), dtype=mask.dtype, device=device), mask], dim=-1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, **cache_argument(cache), use_cache=True, logits_to_keep=1
    )
    first = F.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each continuation's first token

    rows = [(g, tokens, scored) for g, group in enumerate(batch) for tokens, scored in group.rows]
    on = first.device  # the output's device, which is the input's unless accelerate split the model
    first_tokens = torch.tensor([tokens[0] for _, tokens, _ in rows], device=on)
    first_rows = first[torch.tensor([g for g, _, _ in rows], device=on)]
    first_scored = torch.tensor([scored == len(tokens) for _, tokens, scored in rows], device=on)
    loglik = first_rows.gather(-1, first_tokens[:, None]).squeeze(-1) * first_scored
    greedy = (first_rows.argmax(-1) == first_tokens) | ~first_scored
    for chunk in _similar_lengths(rows, max_tokens):
        chunk_loglik, chunk_greedy = _continuation_scores(model, [rows[r] for r in chunk], output_cache(out), mask)
        loglik[chunk] += chunk_loglik
        greedy[chunk] &= chunk_greedy
    scores: list[list[tuple[float, bool]]] = [[] for _ in batch]
    for (g, _, _), value, is_greedy in zip(rows, loglik.tolist(), greedy.tolist(), strict=True):
        scores[g].append((value, is_greedy))
    return scores


def _scorer(model: PreTrainedModel) -> Callable:
    """How to score a batch: sharing contexts through the KV cache in float32, whole sequences below it."""
    return _score_batch if model.dtype == torch.float32 else _score_sequences


@torch.no_grad()
def _score_sequences(
    model: PreTrainedModel, prefix: list[int], batch: list[_Group], max_tokens: int
) -> list[list[tuple[float, bool]]]:
    """Each row alone, as one whole unpadded sequence, its log-softmax and sum in the model's dtype: lm-eval's
    arithmetic at batch size 1, for models whose precision makes splits, padding and batching visible.
    `max_tokens` is not needed: one row is the whole forward pass."""
    device = input_device(model)
    scores: list[list[tuple[float, bool]]] = []
    for group in batch:
        scores.append([])
        for continuation, scored in group.rows:
            tokens = prefix + group.context + continuation
            end = len(tokens) - 1
            logits = model(input_ids=torch.tensor([tokens[:-1]], device=device)).logits[0]
            logprobs = F.log_softmax(logits[end - scored : end], dim=-1)
            target = torch.tensor(tokens[-scored:], device=logprobs.device)
            chosen = logprobs.gather(-1, target[:, None]).squeeze(-1)
            scores[-1].append((float(chosen.sum()), bool((logprobs.argmax(-1) == target).all())))
    return scores


def prefix_cache(model: PreTrainedModel, prefix: list[int]) -> Cache:
    """The KV cache of a token prefix that every row of a batch starts with, run once."""
    ids = torch.tensor([prefix], device=input_device(model))
    return output_cache(model(input_ids=ids, use_cache=True, logits_to_keep=1))


def expanded(cache: Cache, rows: int) -> Cache:
    """A one-row cache repeated for `rows` rows, as views of its tensors: a forward pass writes the new
    tokens into new tensors (it concatenates), so the views are read and never copied or changed."""
    copied = copy.copy(cache)
    copied.layers = [copy.copy(layer) for layer in cache.layers]
    for layer in copied.layers:
        layer.keys, layer.values = (t.expand(rows, *t.shape[1:]) for t in (layer.keys, layer.values))
    return copied


def _similar_lengths(rows: list[tuple[int, list[int], int]], max_tokens: int) -> list[list[int]]:
    """Indices of the rows longer than one token, in chunks of similar length.

    Continuations of one batch vary in length (PIQA's solutions, HellaSwag's endings), and padding them
    all to the longest wastes work; but every forward pass also streams all the weights, which costs
    about max_tokens / PASS_COST tokens of work. Rows are sorted by length; a new chunk starts where the
    padding it saves the remaining rows exceeds that cost, or where the chunk would exceed max_tokens.
    """
    order = sorted((r for r, (_, tokens, _) in enumerate(rows) if len(tokens) > 1), key=lambda r: -len(rows[r][1]))
    chunks: list[list[int]] = []
    for i, r in enumerate(order):
        longest = len(rows[chunks[-1][0]][1]) - 1 if chunks else 0
        saved = (len(order) - i) * (longest + 1 - len(rows[r][1]))
        if not chunks or saved > max_tokens // PASS_COST or (len(chunks[-1]) + 1) * longest > max_tokens:
            chunks.append([])
        chunks[-1].append(r)
    return chunks


def _continuation_scores(model, rows, context_cache, context_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (group, tokens, scored) row: the log-likelihood of its scored tokens after the first, and
    whether each of them is the greedy choice."""
    device = input_device(model)
    length = max(len(tokens) for _, tokens, _ in rows) - 1
    index = torch.tensor([g for g, _, _ in rows], device=device)
    cache = copy.deepcopy(context_cache)  # reorder_cache replaces the tensors of the layers it is given
    cache.reorder_cache(index)  # one copy of its prefix's cache per row
    ids = torch.tensor([tokens[:-1] + [0] * (length - len(tokens) + 1) for _, tokens, _ in rows], device=device)
    context_lengths = context_mask.sum(-1)[index]
    positions = context_lengths[:, None] + torch.arange(length, device=device)
    mask = torch.cat([context_mask[index], torch.ones_like(ids)], dim=-1)  # right padding never reaches real tokens
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **cache_argument(cache), use_cache=True)
    logprobs = F.log_softmax(out.logits.float(), dim=-1)
    on = logprobs.device
    targets = torch.tensor([tokens[1:] + [0] * (length - len(tokens) + 1) for _, tokens, _ in rows], device=on)
    step = torch.arange(length, device=on)[None, :]  # output i predicts token i + 1
    ends = torch.tensor([len(tokens) - 1 for _, tokens, _ in rows], device=on)[:, None]
    starts = torch.tensor([len(tokens) - 1 - scored for _, tokens, scored in rows], device=on)[:, None]
    scored = (step >= starts) & (step < ends)
    chosen = logprobs.gather(-1, targets[..., None]).squeeze(-1)
    return (chosen * scored).sum(-1), ((logprobs.argmax(-1) == targets) | ~scored).all(-1)
