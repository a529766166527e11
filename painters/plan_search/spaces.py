"""The plans a search step may move to. `skip` is the space of ShortGPT, SLEB and EvoPress: a step drops
one layer call. `richer` speaks the paper's vocabulary within the same budget: after each drop, a second
round may swap two neighbouring calls or replace a call by a repeat of the one before it (the paper's
middle repeat, one layer at a time), and keeps the change only where it scores better."""

from __future__ import annotations

from painters.core.errors import PaintersError
from painters.core.plan import Plan

SPACES = ("skip", "richer")


def check_space(space: str) -> str:
    if space not in SPACES:
        raise PaintersError(f"unknown --space '{space}': valid spaces are {', '.join(SPACES)}")
    return space


def drops(plan: Plan) -> list[Plan]:
    """Every plan with one step of `plan` left out (none of a plan of one step)."""
    units = plan.units
    if len(units) < 2:
        return []
    return list(dict.fromkeys(Plan(units[:j] + units[j + 1 :]) for j in range(len(units))))


def edits(plan: Plan) -> list[Plan]:
    """Every plan of as many calls that swaps two neighbouring steps, or repeats a step in place of the next."""
    units, found = plan.units, []
    for j in range(len(units) - 1):
        if units[j] != units[j + 1]:
            found.append(Plan(units[:j] + (units[j + 1], units[j]) + units[j + 2 :]))
            found.append(Plan(units[: j + 1] + (units[j],) + units[j + 2 :]))
    return list(dict.fromkeys(found))
