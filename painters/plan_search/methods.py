"""Search methods, each judged by the same evaluator (`painters.plan_search.objective`).

`greedy` is SLEB's procedure over painters' plans: each round scores every move of the current plan and
keeps the best; `beam:W` keeps the W best. Their path is nested, so one run to the largest budget gives
every smaller one on the way. The one-shot baselines cost one reading each: `block_influence` (ShortGPT)
and `angular` (Gromov et al.) from the hidden states of the calibration text, `middle` (the paper's
centred skip band), and `random:S` (S plans dropping random layers, seeded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from painters.core.errors import PaintersError
from painters.core.grammar import whole_number
from painters.core.plan import Plan
from painters.plan_search.objective import ZERO, Evaluator, Totals
from painters.plan_search.spaces import drops, edits

SEARCHES = ("greedy", "beam")
ONE_SHOT = ("block_influence", "angular", "middle", "random")


@dataclass(frozen=True)
class Method:
    """A method by name, with its parameter: a beam's width, or random's number of plans."""

    name: str
    size: int = 1

    def __str__(self) -> str:
        return f"{self.name}:{self.size}" if self.name in ("beam", "random") else self.name


def parse_method(text: str, option: str = "--method") -> Method:
    name, _, size = text.strip().partition(":")
    valid = "greedy, beam:W, block_influence, angular, middle or random:S"
    if name not in (*SEARCHES, *ONE_SHOT) or bool(size) != (name in ("beam", "random")):
        raise PaintersError(f"unknown {option} '{text}': valid methods are {valid}")
    number = whole_number(size, f"{option} '{text}'") if size else 1
    if not 1 <= number <= 64:
        raise PaintersError(f"bad {option} '{text}': {name}'s number is a whole number from 1 to 64")
    return Method(name, number)


@dataclass(frozen=True)
class Found:
    """A method's plan at one budget: the plans (random's several, others' one) and what finding it cost."""

    plans: tuple[Plan, ...]
    cost: Totals
    candidates: int


def beam_search(evaluator: Evaluator, removes: list[int], width: int, space: str, objective: str) -> dict[int, Found]:
    """Beam search (greedy at width 1) from the full model to the largest budget; the best plan at each.
    Its cost counts each candidate once, in the round that first scores it."""
    if max(removes) >= len(evaluator.full.units):
        raise PaintersError(f"cannot remove {max(removes)} of {len(evaluator.full.units)} layer calls: one must stay")
    beam, seen, found = [evaluator.full], _Spent(), {}
    for removed in range(1, max(removes) + 1):
        beam = _round(evaluator, beam, [p for b in beam for p in drops(b)], width, objective, seen, keep=False)
        if space == "richer":
            beam = _round(evaluator, beam, [p for b in beam for p in edits(b)], width, objective, seen, keep=True)
        if removed in removes:
            found[removed] = Found((beam[0],), seen.cost, len(seen.plans))
    return found


class _Spent:
    """The candidates a search has scored so far, and what scoring them cost."""

    def __init__(self) -> None:
        self.plans: set[Plan] = set()
        self.cost = ZERO


def _round(evaluator: Evaluator, beam: list[Plan], moves: list[Plan], width: int, objective: str, spent: _Spent,
           keep: bool) -> list[Plan]:  # fmt: skip
    """Score the moves; the best `width` of them (and of the beam, where `keep`)."""
    moves = list(dict.fromkeys(moves))
    totals = evaluator.totals([*beam, *moves] if keep else moves)
    new = [move for move in moves if move not in spent.plans]
    spent.plans.update(new)
    spent.cost = spent.cost + evaluator.round_cost(new)
    return sorted(totals, key=lambda plan: (totals[plan].value(objective), str(plan)))[:width]


def one_shot_plans(method: Method, num_layers: int, removed: int, importance=None) -> tuple[Plan, ...]:
    """A baseline's plans for a budget; `importance` is the table of `painters.analysis.importance`."""
    from painters.analysis.importance import suggest

    full = Plan.full(num_layers)
    if method.name in ("block_influence", "angular"):
        return (suggest(importance, full, removed, method.name),)
    if method.name == "middle":
        return (Plan.variant("skip", num_layers, n=removed),)
    draws = []
    for seed in range(method.size):
        dropped = set(random.Random(f"{removed}:{seed}").sample(range(num_layers), removed))
        draws.append(Plan(tuple(layer for layer in range(num_layers) if layer not in dropped)))
    return tuple(draws)
