"""What a candidate plan is worth on calibration text, computed once per plan and batch and kept in the store.

Two objectives from one forward pass: the mean log-likelihood per token of the text (perplexity), and the
mean KL divergence of the plan's next-token distribution from the full model's. The full model runs first
on each batch a round computes (its distribution is the reference the KL needs, recomputed per round
rather than kept: on a large model it is gigabytes per batch; each row's log-probabilities are kept at its
scored positions only), then the round's other plans in sorted
order through the prefix memo (`painters.core.prefix_memo`): candidates that differ only from step i on
compute steps 0..i-1 once. A plan's numbers are those of the same plan run alone, bit for bit.

Every (plan, batch) is stored once with what it cost: the layer-call tokens it computed, those it would
have computed alone, and its seconds. A round reads what is stored and computes only the missing batches
of missing plans, batch by batch, one transaction per batch: a search killed at any moment resumes
without recomputing anything stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.core.execution import apply_plan
from painters.core.plan import Plan
from painters.core.prefix_memo import shared_steps, sharing_order
from painters.models.devices import input_device
from painters.plan_search.calibration import Batch, Calibration
from painters.study.store import Store
from painters.tasks.scoring import plan_memo

OBJECTIVES = ("ppl", "kl")


@dataclass(frozen=True)
class Totals:
    """A plan's sums over a calibration source (or one batch of it), and its cost."""

    loglik: float
    kl: float
    tokens: int
    computed: int  # layer-call tokens computed
    unshared: int  # layer-call tokens the plan costs run alone
    seconds: float

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple:
        return (self.loglik, self.kl, self.tokens, self.computed, self.unshared, self.seconds)

    def value(self, objective: str) -> float:
        """What a search minimises: negative log-likelihood per token (ppl) or KL per token (kl); a plan whose
        numbers overflowed (inf, NaN: a low-precision plan can) ranks last."""
        value = -self.loglik / self.tokens if objective == "ppl" else self.kl / self.tokens
        return value if math.isfinite(value) else math.inf

    def summary(self) -> dict[str, float]:
        loss = -self.loglik / self.tokens
        return {"tokens": self.tokens, "perplexity": math.exp(loss) if loss < 700 else math.inf,
                "loglik_per_token": -loss, "kl_per_token": self.kl / self.tokens}  # fmt: skip


ZERO = Totals(0.0, 0.0, 0, 0, 0, 0.0)


class Evaluator:
    """Scores plans on a calibration source through the store (see the module docstring)."""

    def __init__(self, model: PreTrainedModel, store: Store, fingerprint: str, calibration: Calibration,
                 memo_bytes: int | None = None, progress: bool = True) -> None:  # fmt: skip
        self.model, self.store, self.fingerprint, self.calibration = model, store, fingerprint, calibration
        self.memo_bytes, self.progress = memo_bytes, progress
        self.full = Plan.full(model.config.num_hidden_layers)
        self._rows = {(row["plan"], row["batch"]): Totals(*list(row)[2:]) for row in store.calibration(fingerprint, calibration.key)}  # fmt: skip

    def totals(self, plans: list[Plan]) -> dict[Plan, Totals]:
        """Each plan's totals over every batch, computing (and storing) what is missing."""
        plans = list(dict.fromkeys(plans))
        missing = [
            (b, [p for p in plans if (str(p), b) not in self._rows]) for b in range(len(self.calibration.batches))
        ]
        missing = [(b, todo) for b, todo in missing if todo]
        work = sum(len(todo) for _, todo in missing)
        with tqdm(total=work, desc="candidates x batches", disable=not self.progress or not work) as bar:
            for b, todo in missing:
                found = batch_totals(self.model, self.calibration.batches[b], todo, self.memo_bytes)
                rows = [(str(plan), b, *totals.values()) for plan, totals in found.items()]
                self.store.put_calibration(self.fingerprint, self.calibration.key, rows)
                for plan, totals in found.items():  # the full model's first row stays, as the store keeps it
                    self._rows.setdefault((str(plan), b), totals)
                bar.update(len(todo))
        return {plan: self.plan_totals(plan) for plan in plans}

    def plan_totals(self, plan: Plan) -> Totals:
        """A scored plan's totals over every batch."""
        total = ZERO
        for b in range(len(self.calibration.batches)):
            total = total + self._rows[str(plan), b]
        return total

    def round_cost(self, plans: list[Plan]) -> Totals:
        """What scoring `plans` in one round costs: theirs and the reference full model's (nothing if none)."""
        total = ZERO
        if not plans:
            return total
        for plan in dict.fromkeys([self.full, *plans]):
            total = total + self.plan_totals(plan)
        return total


@torch.no_grad()
def batch_totals(model: PreTrainedModel, batch: Batch, plans: list[Plan], memo_bytes: int | None) -> dict[Plan, Totals]:
    """Each plan's totals on one batch, and the full model's: it runs first (the KL's reference), then the
    others in sorted order, sharing their common steps."""
    full = Plan.full(model.config.num_hidden_layers)
    order = [full, *(plan for plan in sharing_order(plans) if plan != full)]
    memo = plan_memo(model, order, memo_bytes)
    device = input_device(model)
    ids, mask = batch.ids.to(device), batch.mask.to(device)
    scored = mask[:, 1:].bool()
    found, reference = {}, None
    for plan, following in zip(order, [*order[1:], None], strict=True):
        start, replayed = time.perf_counter(), memo.replayed if memo is not None else 0
        if memo is not None:
            memo.start_plan(plan, shared_steps(plan, following))
        with apply_plan(model, plan, memo):
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]
        rows = [F.log_softmax(logits[r][scored[r]].float(), dim=-1) for r in range(ids.shape[0])]
        reference = rows if reference is None else reference
        loglik, kl = _sums(rows, reference, batch)
        unshared = len(plan.layers()) * ids.numel()
        computed = unshared - (memo.replayed - replayed if memo is not None else 0)
        found[plan] = Totals(loglik, kl, batch.tokens, computed, unshared, time.perf_counter() - start)
    if memo is not None:
        memo.clear()
    return found


def _sums(rows: list[torch.Tensor], reference: list[torch.Tensor], batch: Batch) -> tuple[float, float]:
    """The log-likelihood of the batch's scored tokens and KL(reference || plan) summed over them, from each
    row's log-probabilities at its scored positions (row by row: vocabulary-sized numbers per token)."""
    loglik = kl = 0.0
    for row, (logprobs, full) in enumerate(zip(rows, reference, strict=True)):
        targets = batch.ids[row, 1 : 1 + len(logprobs)].to(logprobs.device)
        loglik += float(logprobs.gather(-1, targets[:, None]).double().sum())
        kl += float(F.kl_div(logprobs, full, reduction="none", log_target=True).double().sum())
    return _finite(loglik, -math.inf), _finite(kl, math.inf)


def _finite(value: float, worst: float) -> float:
    """An overflowed sum (NaN) as the worst value, so that it is stored, and ranked, as the worst."""
    return worst if math.isnan(value) else value
