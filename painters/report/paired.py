"""The paper's order claim as a paired test: the same documents under the full model and under each plan, so
that how much more a reasoning task loses than a semantic one has its own standard error.

Per task t and plan p, the paired loss is mean_d [s_full(d) - s_p(d)] / (mean_d s_full(d) - chance): the
share of the full model's margin over chance that the plan loses (1: all of it), on the task's primary
metric per document. A plan's gap is the mean loss of the reasoning tasks minus that of the semantic
ones; its excess is its gap minus skip's gap at the same n, the claim measured against removing the same
layers. Standard errors come from a paired bootstrap over documents: each replicate draws every task's
documents once (with a fixed seed) and scores every plan on that draw, so the correlations between plans
and between the full model and a plan are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from painters.report.draw import curve_figure
from painters.report.numbers import ORDER_VARIANTS, Section, consistent_rows, left_text, plus_minus
from painters.study.store import NONE, Store
from painters.tasks.catalog import get_task

BOOTSTRAP, SEED = 2000, 0
PAIRED_VARIANTS = ("skip", *ORDER_VARIANTS)
SKILLS = ("reasoning", "semantic")


def paired_losses(
    store: Store, scores: pd.DataFrame, tasks: list[str] | None = None
) -> tuple[pd.DataFrame, list[str], list[str]] | None:
    """Per (variant, n), and per variant its mean over n (n "mean"): each task's paired loss, each skill's mean,
    the gap and the excess over skip, each with its bootstrap standard error; the tasks used per skill; and
    what was left out. `tasks` limits the tasks (default: every task of the store). None without a task of
    each skill or a (variant, n) they all have."""
    scores = scores if tasks is None else scores[scores.task.isin(tasks)]
    rows, used, left = consistent_rows(scores, ("full", *PAIRED_VARIANTS))
    matrices, points = _document_scores(store, rows, left)
    if not points or not all(any(get_task(t).skill == skill for t in matrices) for skill in SKILLS):
        return None
    rng = np.random.default_rng(SEED)
    draws = {task: rng.integers(0, len(m["full"]), (BOOTSTRAP, len(m["full"]))) for task, m in matrices.items()}
    by_skill = {skill: [t for t in matrices if get_task(t).skill == skill] for skill in SKILLS}
    table = []
    for variant, n in points:
        found = {"variant": variant, "n": n}
        for task in [t for members in by_skill.values() for t in members]:  # columns by skill
            found[task] = float(_loss(matrices[task], variant, n, None))
            found[f"{task}_draws"] = _loss(matrices[task], variant, n, draws[task])
        for skill, members in by_skill.items():
            found[skill] = float(np.mean([found[t] for t in members]))
            found[f"{skill}_draws"] = np.mean([found[f"{t}_draws"] for t in members], axis=0)
        table.append(found)
    table = pd.DataFrame(table)
    means = table.groupby("variant", sort=False).agg(lambda column: np.mean(np.stack(column.to_list()), axis=0))
    table = pd.concat([table, means.drop(columns="n").reset_index().assign(n="mean")], ignore_index=True)
    skills = [f"{skill}: {', '.join(members)}" for skill, members in by_skill.items()]
    return _summarise(table), [*used, *skills], left


def _document_scores(store: Store, rows: pd.DataFrame, left: list[str]) -> tuple[dict, list[tuple[str, int]]]:
    """Per task above chance with a primary metric: the full model's per-document scores, chance, and each
    (variant, n)'s plans' per-document scores (shuffle: every seed); and the (variant, n) every task has."""
    records = {(r["plan"], r["task"], r["limit"], r["data_fingerprint"]): r["records"] for r in store.samples()}
    matrices = {}
    for task, part in rows.groupby("task"):
        full = part[part.variant == "full"].iloc[0]
        if pd.isna(full.full) or not full.full > full.chance:
            continue
        run = (task, NONE if pd.isna(full["limit"]) else int(full["limit"]), full.data_fingerprint)
        plans = {point: [_per_document(records, plan, run) for plan in points.plan]
                 for point, points in part[part.variant != "full"].groupby(["variant", "n"])}  # fmt: skip
        found = _per_document(records, full.plan, run)
        if found is None or any(s is None for scores in plans.values() for s in scores):
            left.append(f"{task}: per-document records missing (a store written before painters kept them)")
            continue
        matrices[task] = {"full": found, "chance": full.chance, **plans}
    common = set.intersection(*(set(m) - {"full", "chance"} for m in matrices.values())) if matrices else set()
    return matrices, sorted(common, key=lambda point: (PAIRED_VARIANTS.index(point[0]), point[1]))


def _per_document(records: dict, plan: str, run: tuple) -> np.ndarray | None:
    """A plan's primary metric per document in one run (task, limit, data), or None if not stored."""
    found = records.get((plan, *run))
    metric = get_task(run[0]).primary
    return None if found is None else np.array([record[metric] for record in json.loads(found)], float)


def _loss(matrix: dict, variant: str, n: int, draws: np.ndarray | None) -> np.ndarray | float:
    """The paired loss of (variant, n) on one task (the mean over a shuffle's seeds): on all documents, or per
    bootstrap replicate when `draws` holds each replicate's document indices."""
    full = matrix["full"] if draws is None else matrix["full"][draws]
    margin = full.mean(axis=-1) - matrix["chance"]
    losses = [(full - plan if draws is None else full - plan[draws]).mean(axis=-1) for plan in matrix[variant, n]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(margin > 0, np.mean(losses, axis=0) / margin, np.nan)


def _summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Add the gap (reasoning - semantic) and its excess over skip at the same n, with bootstrap stderrs."""
    table["gap"] = table.reasoning - table.semantic
    table["gap_draws"] = [r - s for r, s in zip(table.reasoning_draws, table.semantic_draws, strict=True)]
    skip = table[table.variant == "skip"].set_index("n")  # its mean over n too
    table["excess"] = [g - skip.gap.get(n, np.nan) for g, n in zip(table.gap, table.n, strict=True)]
    table["excess_draws"] = [
        d - skip.gap_draws[n] if n in skip.index else np.full_like(d, np.nan)
        for d, n in zip(table.gap_draws, table.n, strict=True)
    ]
    for column in [c.removesuffix("_draws") for c in table.columns if c.endswith("_draws")]:
        table[f"{column}_stderr"] = [float(np.nanstd(d, ddof=1)) for d in table.pop(f"{column}_draws")]
    return table


def paired_section(store: Store, scores: pd.DataFrame, folder: Path) -> Section | None:
    """Reasoning against semantic tasks under reordering and parallel plans, paired over documents."""
    if (found := paired_losses(store, scores)) is None:
        return None
    table, used, left = found
    curves = table[table.n != "mean"].rename(columns={"variant": "label"}).astype({"n": int})
    figure = curve_figure(
        folder / "order_paired.png", curves, "gap", "reasoning loss - semantic loss",
        "Reasoning against semantics (paired)", {"no difference": 0.0},
    )  # fmt: skip
    columns = [c.removesuffix("_stderr") for c in table.columns if c.endswith("_stderr")]
    shown = table.assign(**{c: [plus_minus(v, e) for v, e in zip(table[c], table[f"{c}_stderr"], strict=True)]
                            for c in columns})  # fmt: skip
    shown = shown.set_index(["variant", "n"])[columns].rename_axis([None, "n"])
    text = (
        "Paired over documents: per task, the share of the full model's margin over chance (primary metric) that "
        "a plan loses on the same documents; per skill, the mean over its tasks. The gap is the reasoning loss "
        "minus the semantic loss; excess is the gap minus skip's at the same n: above 0 beyond its error, "
        "reordering or parallelising hurts reasoning more than removing the same layers does. ± 1 standard error "
        f"from a paired bootstrap over documents ({BOOTSTRAP} replicates, seed {SEED})."
    )
    *runs, reasoning, semantic = used
    notes = (f"Tasks by skill ({reasoning}; {semantic}).", f"Runs: {'; '.join(runs)}.", left_text(left))
    return Section("Reasoning against semantics", text, [figure], shown, notes)
