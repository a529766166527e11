"""The sections on the paper's band variants: each task's curves against n, the mean over tasks, the looped
parallel grid (n x loops), and what reordering the middle layers costs each task (the order claim)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from painters.report.draw import SIZE, bar_figure, curve_figure, label_axes, save
from painters.report.numbers import (
    BAND_VARIANTS,
    NO_GOLD,
    ORDER_VARIANTS,
    Section,
    consistent_rows,
    figure_rows,
    left_text,
    mean_over_tasks,
    stderr_of_mean,
    tasks_with_gold,
    variant_curves,
    with_errors,
)
from painters.tasks.catalog import get_task


def per_task_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    rows, used, left = consistent_rows(scores, ("full", *BAND_VARIANTS))
    if rows[rows.variant.isin(BAND_VARIANTS)].empty:
        return None
    figures, tables = [], []
    for task, part in rows.groupby("task", sort=True):
        curves = variant_curves(part, ["score", "gold"], ["stderr", "gold_stderr"])
        reference = part[part.variant == "full"].iloc[0]
        metric = get_task(task).primary
        shown = "score" if curves.score.notna().any() else "gold"  # GSM8K without generation has gold only
        if shown == "score":
            figures.append(curve_figure(
                folder / f"variants_{task}.png", curves, "score", metric, f"{task}: {metric}",
                {"full model": reference.score, "chance": reference.chance},
            ))  # fmt: skip
        if curves.gold.notna().any():
            figures.append(curve_figure(
                folder / f"variants_{task}_gold.png", curves, "gold", "mean gold log-likelihood",
                f"{task}: gold-answer log-likelihood", {"full model": reference.gold},
            ))  # fmt: skip
        tables.append(with_errors(curves.rename(columns={"score_stderr": "stderr"}), "n", "label", shown)
                      .set_axis(pd.MultiIndex.from_product([[task], curves.label.unique()]), axis=0))  # fmt: skip
    notes = [f"Runs: {'; '.join(used)}.", left_text(left)]
    if not rows.gold.notna().any():
        notes.append(NO_GOLD)
    text = (
        "Each task's score (and, for log-likelihood tasks, the gold answer's mean log-likelihood) against the "
        "number of affected middle layers n. Bars: ± 1 standard error; shuffle is the mean over seeds."
    )
    return Section("Variants per task", text, figures, pd.concat(tables), tuple(notes))


def variants_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    if (found := figure_rows(scores, BAND_VARIANTS)) is None:
        return None
    rows, tasks, notes = found
    figures, table = [], None
    keys = ["variant", "n", "seed", "loops"]
    if tasks:
        mean = mean_over_tasks(rows, keys, tasks).rename(columns={"normalised_stderr": "stderr"})
        curves = variant_curves(mean, ["normalised"], ["stderr"])
        figures.append(curve_figure(
            folder / "variants.png", curves, "normalised", "normalised score (chance 0, full 1)",
            "All variants, mean over tasks", {"full model": 1, "chance": 0},
        ))  # fmt: skip
        table = with_errors(curves, "n", "label", "normalised")
    gold_tasks, gold_note = tasks_with_gold(rows, keys)
    if gold_tasks:
        notes.append(gold_note)
        curves = variant_curves(mean_over_tasks(rows, keys, gold_tasks), ["token_change"], ["token_change_stderr"])
        figures.append(curve_figure(
            folder / "variants_gold.png", curves, "token_change", "change of gold log-likelihood per token (nats)",
            "Gold answer per token, mean over tasks", {"full model": 0},
        ))  # fmt: skip
    else:
        notes.append(NO_GOLD)
    if not figures:
        return Section("All variants", "No task has a full model above chance: no normalised mean to draw.", [])
    text = (
        "Mean over tasks of the normalised score, and of the change of the gold answer's log-likelihood per token "
        "(per token, so that tasks whose answers differ in length weigh alike)."
    )
    return Section("All variants", text, figures, table, tuple(notes))


def looped_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    if (found := figure_rows(scores, ("looped_parallel",))) is None:
        return None
    rows, tasks, notes = found
    if not tasks:
        text = "No task has a full model above chance: nothing to normalise."
        return Section("Looped parallel", text, [], None, tuple(notes))
    mean = mean_over_tasks(rows, ["n", "loops"], tasks)
    grid = mean.pivot(index="n", columns="loops", values="normalised")
    noise = mean.pivot(index="n", columns="loops", values="normalised_stderr")
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(grid.to_numpy(), cmap="viridis", origin="lower", aspect="auto")
    axes.set_xticks(range(len(grid.columns)), grid.columns)
    axes.set_yticks(range(len(grid.index)), grid.index)
    stars = _clear_best(grid, noise)
    if stars:
        axes.scatter([c for _, c in stars], [r for r, _ in stars], marker="*", s=120, color="red",
                     label="best loops, clear of the noise")  # fmt: skip
        axes.legend(fontsize=10, loc="upper left")
    label_axes(axes, "loops", "affected layers n", "Looped parallel: normalised score")
    figure.colorbar(image, ax=axes, label="normalised score")
    path = save(figure, folder / "looped_parallel.png")
    alt = (
        f"Heatmap of the normalised score (mean over {', '.join(tasks)}) for looped parallel blocks of n = "
        f"{', '.join(map(str, grid.index))} layers run {', '.join(map(str, grid.columns))} times; "
        f"{len(stars)} rows have a best loop count clear of the noise, starred."
    )
    text = (
        "Normalised score by block size n and number of loops. A star marks the best loop count of a row only "
        "where it beats the runner-up by more than twice the standard error of their difference."
    )
    table = with_errors(mean, "n", "loops", "normalised", transpose=False)
    return Section("Looped parallel", text, [(path, alt)], table, tuple(notes))


def _clear_best(grid: pd.DataFrame, noise: pd.DataFrame) -> list[tuple[int, int]]:
    """(row, column) of each row's best cell where it beats the runner-up by over 2 stderrs of the difference."""
    stars = []
    for row, (values, errors) in enumerate(zip(grid.to_numpy(), noise.to_numpy(), strict=True)):
        order = [k for k in np.argsort(-np.nan_to_num(values, nan=-np.inf)) if not np.isnan(values[k])]
        if len(order) >= 2:
            best, second = order[0], order[1]
            if values[best] - values[second] > 2 * np.hypot(errors[best], errors[second]):
                stars.append((row, best))
    return stars


def order_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    """What reordering or parallelising the middle layers costs each task: the paper's claim that order
    matters most for math and reasoning. The gold answer's log-likelihood per token compares tasks whose
    answers differ in length (a GSM8K solution is ~100 tokens, a LAMBADA word one or two)."""
    reordered = scores[scores.variant.isin(ORDER_VARIANTS)]
    if reordered.empty:
        return None
    common = set.intersection(*(set(part.n) for _, part in reordered.groupby("task")))
    if (found := figure_rows(scores[(scores.variant == "full") | scores.n.isin(common)], ORDER_VARIANTS)) is None:
        return None
    order, _, notes = found
    if len(common) < reordered.n.nunique():  # a mean over n compares tasks only over the same n
        notes.append(f"Means over n = {', '.join(str(int(n)) for n in sorted(common))}: the n every task has.")
    grouped = order.groupby(["task", "variant"])
    drop = pd.DataFrame({
        "score loss": 1 - grouped.normalised.mean(),
        "score loss_stderr": grouped.normalised_stderr.apply(stderr_of_mean),
        "gold change": grouped.token_change.mean(),
        "gold change_stderr": grouped.token_stderr.apply(stderr_of_mean),
    }).reset_index()  # fmt: skip
    drop["skill"] = drop.task.map(lambda t: get_task(t).skill)
    drop = drop.sort_values(["skill", "task"], kind="stable")
    figures = []
    if drop["score loss"].notna().any():
        figures.append(bar_figure(folder / "order_sensitivity.png", drop, "score loss",
                                   "loss of normalised score (mean over n)", "Sensitivity to layer order"))  # fmt: skip
    if drop["gold change"].notna().any():
        figures.append(bar_figure(folder / "order_sensitivity_gold.png", drop, "gold change",
                                   "change of gold log-likelihood per token (nats)",
                                   "Gold answer, per token (mean over n)"))  # fmt: skip
    else:
        notes.append(NO_GOLD)
    text = (
        "What reversing, shuffling or parallelising the middle layers costs each task, averaged over n, reasoning "
        "tasks against semantic ones: the loss of normalised score, and the change of the gold answer's "
        "log-likelihood per token against the full model. Bars: ± 1 standard error. The next section tests the "
        "difference between reasoning and semantic tasks paired over documents."
    )
    table = drop.assign(key=drop.task + " (" + drop.skill + ")")
    tables = [with_errors(table, "key", "variant", column) for column in ("score loss", "gold change")]
    return Section("Layer order", text, figures, pd.concat(tables, keys=["score loss", "gold per token"]), tuple(notes))
