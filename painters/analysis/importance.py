"""Which steps matter: ShortGPT's Block Influence per step, and Gromov et al.'s angular distance per block.

Block Influence (Men et al. 2024) of a step is 1 - cos(its input, its output), token averaged: a step
that barely turns the state matters little. The angular distance of a block of n consecutive steps
(Gromov et al. 2024) is arccos(cos(block input, block output)) / pi, token averaged (Gromov et al. use
the last token only; we average every real token, as for the cosine matrix); the block with the
smallest distance is the best candidate to drop. Both read the matrices of `painters.similarity`.
"""

from __future__ import annotations

import pandas as pd
from transformers import PreTrainedModel

from painters.analysis.similarity import Similarity, similarity
from painters.core.errors import PaintersError
from painters.core.grammar import unit_text
from painters.core.plan import Plan

METRICS = ("block_influence", "angular")


def importance_table(result: Similarity) -> pd.DataFrame:
    """One row per scored block: metric, n (steps), start (first step), layers (plan text), value, best.

    `best` marks, per metric and n, the block the metric rates least important (the first on ties).
    """
    units = result.plan.units
    cosine, angular = result.cosine.to_numpy(), result.angular.to_numpy()
    rows = [_row("block_influence", units, k, 1, 1 - cosine[k, k + 1]) for k in range(len(units))]
    for n in range(1, len(units)):
        rows += [_row("angular", units, k, n, angular[k, k + n]) for k in range(len(units) - n + 1)]
    table = pd.DataFrame(rows)
    least = table.groupby(["metric", "n"], sort=False)["value"].idxmin()
    table["best"] = table.index.isin(least)
    return table


def _row(metric: str, units: tuple, start: int, n: int, value: float) -> dict:
    block = unit_text(units[start]) if n == 1 else str(Plan(units[start : start + n]))
    return {"metric": metric, "n": n, "start": start, "layers": block, "value": float(value)}


def importance(
    model: PreTrainedModel, tokenizer, texts: list[str], plan: Plan | str | None = None, **options
) -> pd.DataFrame:
    """`importance_table` of the model's states over `texts`; options go to `painters.similarity`."""
    return importance_table(similarity(model, tokenizer, texts, plan, **options))


def suggest(table: pd.DataFrame, plan: Plan, n: int, metric: str) -> Plan:
    """`plan` without the n steps `metric` rates least important (angular: the best contiguous block)."""
    check_suggestion(metric, n, len(plan.units))
    if metric == "block_influence":
        scores = table[table.metric == metric].sort_values(["value", "start"], kind="stable")
        dropped = set(scores.start[:n])
    else:
        best = table[(table.metric == metric) & (table.n == n) & table.best].iloc[0]
        dropped = set(range(best.start, best.start + n))
    return Plan(tuple(unit for k, unit in enumerate(plan.units) if k not in dropped))


def check_suggestion(metric: str, n: int, steps: int | None = None) -> None:
    """Raise a one-line error unless `metric` is known and dropping n steps (of `steps`, if known) leaves some."""
    if metric not in METRICS:
        raise PaintersError(f"unknown metric '{metric}': valid metrics are {', '.join(METRICS)}")
    if n < 1 or (steps is not None and n >= steps):
        valid = f"between 1 and {steps - 1} of the plan's steps" if steps is not None else "at least 1 layer"
        raise PaintersError(f"--n {n} is out of range: drop {valid}")
