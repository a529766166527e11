"""The paper's figures from a results store, as PNG files and one self-contained index.html.

Scores are normalised per task so that chance is 0 and the full model 1, as the paper averages them;
a task where the full model is not above chance (possible at small limits) is left out of averages.
Beside accuracy every figure has the mean log-likelihood of the gold answer, as its change from the
full model (nats): at small limits it shows damage far less noisily than accuracy.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from painters.errors import PaintersError
from painters.results import results_frame
from painters.store import Store
from painters.tasks import get_task

BAND_VARIANTS = ("skip", "middle_repeat", "reverse", "shuffle", "parallel", "looped_parallel")
GOLD = "gold_ll"


def report(store: Store, out: str | Path) -> Path:
    """Write the figures and index.html into `out`; returns the index path."""
    frame = results_frame(store)
    if frame.empty:
        raise PaintersError(f"the store '{store.path}' has no results yet: run `painters sweep` or `painters paper`")
    models = sorted(frame.model.unique())
    if len(models) > 1:
        raise PaintersError(f"the store holds results of several models ({', '.join(models)}): use one store per model")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scores = _scores(frame)
    sections = [_similarity_section(store, folder)]
    sections += [
        _layer_section(scores, folder),
        _variant_tasks_section(scores, folder),
        _variants_section(scores, folder),
        _looped_section(scores, folder),
        _order_section(scores, folder),
    ]
    index = folder / "index.html"
    index.write_text(_page(models[0], frame, [s for s in sections if s is not None]), encoding="utf-8")
    return index


def _scores(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (grid point, task): the primary metric, its stderr, gold_ll, chance, and their normalisations."""
    primary = frame[frame.metric == frame.task.map(lambda t: get_task(t).primary)]
    keys = ["plan", "variant", "n", "seed", "loops", "layer", "task"]
    table = primary[[*keys, "value", "stderr"]].rename(columns={"value": "score"}).set_index(keys)
    for metric, column in ((GOLD, "gold"), ("chance", "chance")):
        table[column] = frame[frame.metric == metric].set_index(keys).value
    table = table.reset_index()
    full = table[table.variant == "full"].set_index("task")
    table["full"], table["full_gold"] = table.task.map(full.score), table.task.map(full.gold)
    above = table.full > table.chance
    table["normalised"] = ((table.score - table.chance) / (table.full - table.chance)).where(above)
    table["gold_change"] = table.gold - table.full_gold
    return table


def _similarity_section(store: Store, folder: Path) -> tuple[str, str, str] | None:
    rows = store.query("SELECT csv, source FROM matrices WHERE name = 'cosine' ORDER BY plan LIMIT 1")
    if not rows:
        return None
    from painters.figures import heatmap

    matrix = pd.read_csv(io.StringIO(rows[0]["csv"]), index_col=0)
    heatmap(
        matrix, f"Mean cosine similarity of hidden states ({rows[0]['source']})", folder / "similarity.png", "cosine"
    )
    text = "Average cosine similarity between the hidden states of every two layers, per real token."
    return "Layer similarity", text, _figure_html(folder / "similarity.png", None)


def _layer_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    single = scores[scores.variant.isin(["skip_layer", "swap"])]
    if single.empty:
        return None
    mean = single.groupby(["variant", "layer"])[["normalised", "gold_change"]].mean().reset_index()
    figure, (left, right) = _figure(2)
    for variant, label in (("skip_layer", "skip layer i"), ("swap", "swap layers i, i+1")):
        part = mean[mean.variant == variant]
        left.plot(part.layer, part.normalised, marker="o", label=label)
        right.plot(part.layer, part.gold_change, marker="o", label=label)
    _reference_lines(left, right)
    _labels(left, "layer i", "normalised score (mean over tasks)", "Skipping one layer, swapping neighbours")
    _labels(right, "layer i", "change of gold-answer log-likelihood (nats)", "Gold-answer log-likelihood")
    path = _save(figure, folder / "single_layers.png")
    table = mean.pivot(index="layer", columns="variant", values="normalised").round(3)
    return (
        "Single layers",
        "Score after skipping each layer, and after swapping each pair of neighbours.",
        _figure_html(path, table),
    )


def _variant_tasks_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    band = scores[scores.variant.isin(BAND_VARIANTS)]
    if band.empty:
        return None
    tasks = sorted(band.task.unique())
    figure = Figure(figsize=(4.2 * len(tasks), 7.5), layout="constrained")
    axes = np.array(figure.subplots(2, len(tasks), squeeze=False))
    for column, task in enumerate(tasks):
        top, bottom = axes[0, column], axes[1, column]
        for variant, part in _curves(band[band.task == task], ["score", "gold"]):
            top.errorbar(part.n, part.score, yerr=part.spread_score, marker="o", capsize=2, label=variant)
            bottom.errorbar(part.n, part.gold, yerr=part.spread_gold, marker="o", capsize=2, label=variant)
        reference = scores[(scores.task == task) & (scores.variant == "full")].iloc[0]
        top.axhline(reference.score, color="black", linestyle="--", label="full model")
        top.axhline(reference.chance, color="grey", linestyle=":", label="chance")
        bottom.axhline(reference.gold, color="black", linestyle="--")
        _labels(top, "affected layers n", get_task(task).primary, task)
        _labels(bottom, "affected layers n", "mean gold-answer log-likelihood", None)
    axes[0, 0].legend(fontsize=7)
    path = _save(figure, folder / "variants_per_task.png")
    table = band.groupby(["task", "variant", "n"]).score.mean().unstack("n").round(3)
    text = (
        "Score (top) and gold-answer log-likelihood (bottom) against the number of affected middle layers. "
        "Bars: standard error; for shuffle, the spread (standard deviation) over seeds."
    )
    return "Variants per task", text, _figure_html(path, table)


def _curves(part: pd.DataFrame, columns: list[str]):
    """Per variant: mean over seeds of each column by n, with the spread (stderr, or std over seeds)."""
    for variant in [v for v in BAND_VARIANTS if v in set(part.variant)]:
        rows = part[part.variant == variant]
        if variant == "looped_parallel":
            rows = rows[rows.loops == rows.loops.max()]
        grouped = rows.groupby("n")
        curve = grouped[columns].mean()
        for column in columns:
            spread = grouped[column].std(ddof=1) if variant == "shuffle" else grouped["stderr"].mean()
            curve[f"spread_{column}"] = spread if column == "score" or variant == "shuffle" else np.nan
        yield (variant if variant != "looped_parallel" else f"looped x{rows.loops.max()}"), curve.reset_index()


def _variants_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    band = scores[scores.variant.isin(BAND_VARIANTS)]
    if band.empty:
        return None
    figure, (left, right) = _figure(2)
    means = {}
    for variant, part in _curves(
        band.groupby(["variant", "n", "seed", "loops"], dropna=False)
        .agg(normalised=("normalised", "mean"), gold_change=("gold_change", "mean"), stderr=("stderr", "mean"))
        .reset_index(),
        ["normalised", "gold_change"],
    ):
        left.errorbar(part.n, part.normalised, yerr=part.spread_normalised, marker="o", capsize=2, label=variant)
        right.plot(part.n, part.gold_change, marker="o", label=variant)
        means[variant] = part.set_index("n").normalised
    _reference_lines(left, right)
    _labels(left, "affected layers n", "normalised score (chance 0, full 1)", "All variants, mean over tasks")
    _labels(right, "affected layers n", "change of gold-answer log-likelihood (nats)", "Gold-answer log-likelihood")
    path = _save(figure, folder / "variants.png")
    return (
        "All variants",
        "Mean over tasks of the normalised score.",
        _figure_html(path, pd.DataFrame(means).T.round(3)),
    )


def _looped_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    looped = scores[scores.variant == "looped_parallel"]
    if looped.empty:
        return None
    grid = looped.groupby(["n", "loops"]).normalised.mean().unstack("loops")
    figure, (axes,) = _figure(1)
    image = axes.imshow(grid.to_numpy(), cmap="viridis", origin="lower", aspect="auto")
    axes.set_xticks(range(len(grid.columns)), grid.columns)
    axes.set_yticks(range(len(grid.index)), grid.index)
    best = np.nanargmax(np.nan_to_num(grid.to_numpy(), nan=-np.inf), axis=1)
    axes.scatter(best, range(len(grid.index)), marker="*", color="red", label="best loop count per n")
    _labels(axes, "loops", "affected layers n", "Looped parallel: normalised score")
    axes.legend(fontsize=7)
    figure.colorbar(image, ax=axes, label="normalised score")
    path = _save(figure, folder / "looped_parallel.png")
    return "Looped parallel", "Normalised score by block size and number of loops.", _figure_html(path, grid.round(3))


def _order_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    order = scores[scores.variant.isin(["reverse", "shuffle"])]
    if order.empty:
        return None
    drop = (1 - order.groupby(["task", "variant"]).normalised.mean()).unstack("variant")
    drop["skill"] = [get_task(task).skill for task in drop.index]
    drop = drop.sort_values(["skill", *[c for c in ("reverse", "shuffle") if c in drop]])
    figure, (axes,) = _figure(1)
    width = 0.8 / (len(drop.columns) - 1)
    for k, variant in enumerate(c for c in drop.columns if c != "skill"):
        axes.bar(np.arange(len(drop)) + k * width, drop[variant], width, label=variant)
    axes.set_xticks(
        np.arange(len(drop)) + width / 2, [f"{t}\n({s})" for t, s in zip(drop.index, drop.skill, strict=True)]
    )
    _labels(axes, None, "loss of normalised score (mean over n)", "Sensitivity to layer order")
    axes.legend(fontsize=7)
    path = _save(figure, folder / "order_sensitivity.png")
    text = "How much reversing or shuffling the middle layers costs each task: reasoning tasks against semantic ones."
    return "Layer order", text, _figure_html(path, drop.round(3))


def _figure(panels: int) -> tuple[Figure, list]:
    figure = Figure(figsize=(6.5 * panels, 4.8), layout="constrained")
    return figure, list(np.atleast_1d(figure.subplots(1, panels)))


def _reference_lines(score_axes, gold_axes) -> None:
    score_axes.axhline(1, color="black", linestyle="--", label="full model")
    score_axes.axhline(0, color="grey", linestyle=":", label="chance")
    gold_axes.axhline(0, color="black", linestyle="--", label="full model")


def _labels(axes, x: str | None, y: str, title: str | None) -> None:
    if x:
        axes.set_xlabel(x)
    axes.set_ylabel(y)
    if title:
        axes.set_title(title)
    if axes.get_legend_handles_labels()[0] and title:
        axes.legend(fontsize=7)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    return path


def _figure_html(path: Path, table: pd.DataFrame | None) -> str:
    image = base64.b64encode(path.read_bytes()).decode()
    numbers = "" if table is None else f'<div class="numbers">{table.to_html(na_rep="")}</div>'
    return f'<div class="row"><img src="data:image/png;base64,{image}" alt="{path.stem}">{numbers}</div>'


def _page(model: str, frame: pd.DataFrame, sections: list[tuple[str, str, str]]) -> str:
    limits = ", ".join(sorted({str(v) if not pd.isna(v) else "all" for v in frame["limit"]}))
    body = "\n".join(f"<h2>{html.escape(t)}</h2><p>{html.escape(d)}</p>{content}" for t, d, content in sections)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>painters report: {html.escape(model)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:110em}} .row{{display:flex;gap:2em;align-items:flex-start}}
img{{max-width:70%}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body><h1>Transformer layers as painters: {html.escape(model)}</h1>
<p>Tasks: {html.escape(", ".join(sorted(frame.task.unique())))}; documents per task: {limits}.
Normalised score: chance 0, full model 1, averaged over the tasks where the full model is above chance.</p>
{body}
</body></html>
"""
