"""The numbers every section draws from: one row per (grid point, task, run) with scores normalised so that
chance is 0 and the full model 1, the one consistent run per task a figure may show, and means over tasks
with propagated standard errors. A figure never mixes runs: what it leaves out is said in its notes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painters.tasks.catalog import get_task

BAND_VARIANTS = ("skip", "middle_repeat", "reverse", "shuffle", "parallel", "looped_parallel")


SINGLE_VARIANTS = ("skip_layer", "swap")


ORDER_VARIANTS = ("reverse", "shuffle", "parallel")


GOLD, PER_TOKEN = "gold_ll", "gold_ll_per_token"


DASH = "—"


NO_GOLD = (
    "Not drawn: no task in this store has a gold-answer log-likelihood per token (GLUE classification has none, "
    "nor do stores written before painters recorded it)."
)


@dataclass
class Section:
    """One part of the page: a title, what it shows, figures (path, alt text) and a table."""

    title: str
    text: str
    figures: list[tuple[Path, str]]
    table: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()

    @property
    def anchor(self) -> str:
        return self.title.lower().replace(" ", "-")


def score_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (grid point, task, run): the primary metric, the gold answer's log-likelihood (in total
    and per token) with their stderrs, chance, and the changes against the full model.

    A task may have no primary metric (GSM8K scored without generation): its score is then missing and
    its gold log-likelihood still counts.
    """
    run = ["task", "limit", "data_fingerprint"]
    keys = ["plan", "variant", "n", "seed", "loops", "layer", *run, "docs"]
    primary = frame.metric == frame.task.map(lambda t: get_task(t).primary)
    table = frame[primary | (frame.metric == GOLD)][keys].drop_duplicates().set_index(keys)
    for column, metric in (("score", primary), ("gold", frame.metric == GOLD), ("token", frame.metric == PER_TOKEN)):
        cells = frame[metric].set_index(keys)
        table[column], table[f"{column}_stderr"] = cells.value, cells.stderr
    table["chance"] = frame[frame.metric == "chance"].set_index(keys).value
    table = table.reset_index().rename(columns={"score_stderr": "stderr"})
    full = table[table.variant == "full"].drop_duplicates(run)[[*run, "score", "gold", "token"]]
    table = table.merge(full.rename(columns={"score": "full", "gold": "full_gold", "token": "full_token"}), on=run,
                        how="left")  # fmt: skip
    scale = (table.full - table.chance).where(table.full > table.chance)
    table["normalised"] = (table.score - table.chance) / scale
    table["normalised_stderr"] = table.stderr / scale
    table["token_change"] = table.token - table.full_token
    return table


def consistent_rows(scores: pd.DataFrame, variants: tuple[str, ...]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The rows of one figure: per task one run (limit and data), the largest where every plan shown was scored.

    A task whose best run holds under half of the figure's plans is left out rather than shown thin.
    Returns the rows (with the full model's), a line per task saying which run, and what was left out.
    """
    rows = scores[scores.variant.isin(variants)]
    best, left = {}, []
    for task, part in rows.groupby("task", sort=True):
        runs = []
        for run, cells in part.groupby(["limit", "data_fingerprint"], dropna=False):
            size = float("inf") if pd.isna(run[0]) else run[0]
            runs.append((not _full(scores, task, run).empty, set(cells.plan) >= set(part.plan), cells.plan.nunique(),
                         size, cells))  # fmt: skip
        runs.sort(key=lambda r: r[:4], reverse=True)
        left += [f"{task}: {_run_text(r[4])}, {r[2]} plans" for r in runs[1:]]
        if runs[0][0]:
            best[task] = runs[0][4]
        else:
            left.append(f"{task}: no full-model result to compare with")
    shown = len(set().union(*(set(cells.plan) for cells in best.values()))) if best else 0
    for task in [t for t, cells in best.items() if cells.plan.nunique() * 2 < shown]:
        left.append(f"{task}: {_run_text(best[task])}, only {best.pop(task).plan.nunique()} of {shown} plans")
    used = [f"{task}: {_run_text(cells)}" for task, cells in best.items()]
    return (pd.concat(best.values()) if best else rows.iloc[:0]), used, left


def figure_rows(scores: pd.DataFrame, variants: tuple[str, ...]) -> tuple[pd.DataFrame, list[str], list[str]] | None:
    """One figure's consistent rows of `variants` (None if it has none), the tasks its means include, and its notes."""
    rows, used, left = consistent_rows(scores, ("full", *variants))
    rows = rows[rows.variant.isin(variants)]
    if rows.empty:
        return None
    tasks, excluded = _included(rows)
    return rows, tasks, [f"Runs: {'; '.join(used)}.", left_text(left), _mean_text(tasks, excluded)]


def stderr_of_mean(errors: pd.Series) -> float:
    """The standard error of a mean of independent values with these standard errors."""
    return float(np.sqrt((errors**2).sum()) / len(errors))


def _full(scores: pd.DataFrame, task: str, run: tuple) -> pd.DataFrame:
    limit, data = run
    same = (scores.task == task) & (scores.variant == "full") & (scores.data_fingerprint == data)
    same &= scores["limit"].isna() if pd.isna(limit) else scores["limit"] == limit
    return scores[same]


def _run_text(cells: pd.DataFrame) -> str:
    first = cells.iloc[0]
    limit = "every document" if pd.isna(first["limit"]) else f"the first {first['limit']} documents"
    return f"{limit} ({int(first.docs)} scored), data {first.data_fingerprint}"


def _included(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Tasks a normalised mean includes, and those it leaves out with the reason."""
    full = rows.drop_duplicates("task").set_index("task")
    keep = [task for task in full.index if full.full[task] > full.chance[task]]
    out = [f"{task} (no {get_task(task).primary} scored: gold log-likelihood only)" if pd.isna(full.full[task])
           else f"{task} (full model {full.full[task]:.3f}, at or below chance {full.chance[task]:.3f})"
           for task in full.index if task not in keep]  # fmt: skip
    return keep, out


def mean_over_tasks(rows: pd.DataFrame, keys: list[str], tasks: list[str]) -> pd.DataFrame:
    """Per point: the mean over `tasks` of the normalised score and gold change, with propagated stderrs.

    A point missing any of the tasks is dropped, so every point of a curve averages the same tasks.
    """
    part = rows[rows.task.isin(tasks)]
    grouped = part.groupby(keys, dropna=False)
    mean = grouped.agg(
        normalised=("normalised", "mean"), token_change=("token_change", "mean"), count=("task", "nunique"),
        normalised_var=("normalised_stderr", lambda s: (s**2).sum()), token_var=("token_stderr", lambda s: (s**2).sum()),
    )  # fmt: skip
    mean = mean[mean["count"] == len(tasks)]
    mean["normalised_stderr"] = np.sqrt(mean.normalised_var) / len(tasks)
    mean["token_change_stderr"] = np.sqrt(mean.token_var) / len(tasks)
    return mean.reset_index()


def tasks_with_gold(rows: pd.DataFrame, keys: list[str]) -> tuple[list[str], str]:
    """The tasks with a gold log-likelihood per token at every point of a figure (a mean over them leaves no
    point out), and a note saying which tasks the gold means include and which they leave out."""
    points = len(rows[keys].drop_duplicates())
    counts = rows[rows.token.notna()].drop_duplicates([*keys, "task"]).groupby("task").size()
    tasks = sorted(task for task, count in counts.items() if count == points)
    left = [
        f"{task} (at {counts.get(task, 0)} of {points} points)" for task in sorted(set(rows.task)) if task not in tasks
    ]
    note = f"Gold means include {', '.join(tasks) if tasks else 'no task'}"
    return tasks, note + (f"; left out: {'; '.join(left)}." if left else ".")


def variant_curves(part: pd.DataFrame, columns: list[str], errors: list[str]) -> pd.DataFrame:
    """Per band variant and n: the mean over seeds of each column and its propagated standard error.

    looped_parallel is drawn at its largest loop count (the loops figure has every count).
    """
    frames = []
    for variant in [v for v in BAND_VARIANTS if v in set(part.variant)]:
        rows = part[part.variant == variant]
        label = variant
        if variant == "looped_parallel":
            rows = rows[rows.loops == rows.loops.max()]
            label = f"looped x{rows.loops.max()}"
        grouped = rows.groupby("n")
        curve = grouped[columns].mean()
        for column, error in zip(columns, errors, strict=True):
            curve[f"{column}_stderr"] = grouped[error].apply(stderr_of_mean)
        frames.append(curve.reset_index().assign(label=label))
    return pd.concat(frames, ignore_index=True)


def with_errors(rows: pd.DataFrame, index: str, columns: str, value: str, transpose: bool = True) -> pd.DataFrame:
    """A table of `value ± stderr` strings; blank cells are a dash."""
    error = f"{value}_stderr" if f"{value}_stderr" in rows else "stderr"
    text = rows.assign(cell=[plus_minus(v, e) for v, e in zip(rows[value], rows[error], strict=True)])
    table = text.pivot_table(index=columns if transpose else index, columns=index if transpose else columns,
                             values="cell", aggfunc="first", sort=False)  # fmt: skip
    return table.fillna(DASH)


def plus_minus(value: float, error: float) -> str:
    if pd.isna(value):
        return DASH
    return f"{value:.3f}" if pd.isna(error) else f"{value:.3f} ± {error:.3f}"


def left_text(left: list[str]) -> str:
    return f"Left out (other runs): {'; '.join(left)}." if left else "Nothing left out: every stored run is shown."


def _mean_text(tasks: list[str], excluded: list[str]) -> str:
    text = f"Normalised means include {', '.join(tasks) if tasks else 'no task'}"
    return text + (f"; left out: {'; '.join(excluded)}." if excluded else ".")


def attention_notes(facts: dict) -> tuple[str, ...]:
    """What a figure's marked layers mean, for a model that mixes full and sliding-window attention."""
    layers = facts.get("full_attention_layers")
    if not layers:
        return ()
    note = (
        f"Layers {', '.join(map(str, layers))} (marked full) attend to the whole context; the other layers only "
        f"to the last {facts['sliding_window']} tokens (a sliding window)."
    )
    return (note,)
