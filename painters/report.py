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
import json
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
        _tradeoff_section(scores, store, folder),
    ]
    index = folder / "index.html"
    index.write_text(_page(models[0], frame, [s for s in sections if s is not None]), encoding="utf-8")
    return index


def _scores(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (grid point, task): the primary metric, its stderr, gold_ll, chance, and their normalisations."""
    primary = frame[frame.metric == frame.task.map(lambda t: get_task(t).primary)]
    keys = ["plan", "variant", "n", "seed", "loops", "layer", "task", "limit"]
    table = primary[[*keys, "value", "stderr"]].rename(columns={"value": "score"}).set_index(keys)
    for metric, column in ((GOLD, "gold"), ("chance", "chance")):
        table[column] = frame[frame.metric == metric].set_index(keys).value
    table = table.reset_index()
    full = table[table.variant == "full"].drop_duplicates(["task", "limit"])[["task", "limit", "score", "gold"]]
    table = table.merge(full.rename(columns={"score": "full", "gold": "full_gold"}), on=["task", "limit"], how="left")
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
        matrix, f"Mean cosine similarity of hidden states\n{rows[0]['source']}", folder / "similarity.png", "cosine"
    )
    text = "Average cosine similarity between the hidden states of every two layers, per real token."
    return "Layer similarity", text, _figure_html(folder / "similarity.png", None)


def _layer_section(scores: pd.DataFrame, folder: Path) -> tuple[str, str, str] | None:
    single = scores[scores.variant.isin(["skip_layer", "swap"])]
    if single.empty:
        return None
    mean = single.groupby(["variant", "layer"])[["normalised", "gold_change"]].mean().reset_index()
    figure, left, right = _panels(scores)
    for variant, label in (("skip_layer", "skip layer i"), ("swap", "swap layers i, i+1")):
        part = mean[mean.variant == variant]
        left.plot(part.layer, part.normalised, marker="o", label=label)
        if right is not None:
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
    rows = 2 if _has_gold(scores) else 1
    figure = Figure(figsize=(4.2 * len(tasks), 3.75 * rows), layout="constrained")
    axes = np.array(figure.subplots(rows, len(tasks), squeeze=False))
    for column, task in enumerate(tasks):
        top, bottom = axes[0, column], axes[1, column] if rows == 2 else None
        for variant, part in _curves(band[band.task == task], ["score", "gold"]):
            top.errorbar(part.n, part.score, yerr=part.spread_score, marker="o", capsize=2, label=variant)
            if bottom is not None:
                bottom.errorbar(part.n, part.gold, yerr=part.spread_gold, marker="o", capsize=2, label=variant)
        reference = scores[(scores.task == task) & (scores.variant == "full")].iloc[0]
        top.axhline(reference.score, color="black", linestyle="--", label="full model")
        top.axhline(reference.chance, color="grey", linestyle=":", label="chance")
        _labels(top, "affected layers n", get_task(task).primary, task)
        if bottom is not None:
            bottom.axhline(reference.gold, color="black", linestyle="--")
            _labels(bottom, "affected layers n", "mean gold-answer log-likelihood", None)
    axes[0, 0].legend(fontsize=7)
    path = _save(figure, folder / "variants_per_task.png")
    table = band.groupby(["task", "variant", "n"]).score.mean().unstack("n").round(3)
    text = (
        "Score (top) and, for log-likelihood tasks, gold-answer log-likelihood (bottom) against the number of "
        "affected middle layers. "
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
    figure, left, right = _panels(scores)
    means = {}
    for variant, part in _curves(
        band.groupby(["variant", "n", "seed", "loops"], dropna=False)
        .agg(normalised=("normalised", "mean"), gold_change=("gold_change", "mean"), stderr=("stderr", "mean"))
        .reset_index(),
        ["normalised", "gold_change"],
    ):
        left.errorbar(part.n, part.normalised, yerr=part.spread_normalised, marker="o", capsize=2, label=variant)
        if right is not None:
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
    order = scores[scores.variant.isin(["reverse", "shuffle"])].copy()
    if order.empty:
        return None
    order["relative_gold"] = order.gold_change / order.full_gold.abs()
    grouped = order.groupby(["task", "variant"])
    drop = pd.concat({"score loss": 1 - grouped.normalised.mean(), "gold change": grouped.relative_gold.mean()}, axis=1)
    drop = drop.unstack("variant")
    skills = pd.Series({task: get_task(task).skill for task in drop.index}, name="skill")
    drop = drop.loc[skills.sort_values(kind="stable").index]
    figure, left, right = _panels(scores)
    positions = np.arange(len(drop))
    variants = list(drop["score loss"].columns)
    for k, variant in enumerate(variants):
        left.bar(positions + k * 0.4, drop["score loss", variant], 0.4, label=variant)
        if right is not None:
            right.bar(positions + k * 0.4, drop["gold change", variant], 0.4, label=variant)
    names = [f"{task}\n({skills[task]})" for task in drop.index]
    for axes in (left, right)[: 1 if right is None else 2]:
        axes.set_xticks(positions + 0.2 * (len(variants) - 1), names, fontsize=8)
    _labels(left, None, "loss of normalised score (mean over n)", "Sensitivity to layer order")
    _labels(right, None, "gold-answer log-likelihood change / |full model's|", "Gold-answer log-likelihood")
    path = _save(figure, folder / "order_sensitivity.png")
    text = (
        "What reversing or shuffling the middle layers costs each task, averaged over n, reasoning tasks "
        "against semantic ones. Tasks where the full model is not above chance have no normalised score."
    )
    return "Layer order", text, _figure_html(path, drop.round(3))


def _tradeoff_section(scores: pd.DataFrame, store: Store, folder: Path) -> tuple[str, str, str] | None:
    columns = ["plan", "speedup", "shape", "device"]
    speeds = pd.DataFrame([dict(row) for row in store.query(f"SELECT {', '.join(columns)} FROM speeds")], columns=columns)
    plans = scores.drop_duplicates(["plan", "task", "limit"]).groupby("plan").normalised.mean().rename("score")
    labels = scores.drop_duplicates("plan").set_index("plan").apply(_point_label, axis=1).rename("label")
    points = speeds.join(plans, on="plan").join(labels, on="plan").dropna(subset=["score"])
    if points.empty:
        return None
    points["front"] = pareto_front(points.speedup, points.score)
    front = points[points.front].sort_values("speedup")
    figure, (axes,) = _figure(1)
    axes.scatter(points.speedup, points.score, color="tab:blue", alpha=0.5, label="plan")
    axes.plot(front.speedup, front.score, color="tab:red", marker="o", label="Pareto front")
    for row in front.itertuples():
        axes.annotate(row.label, (row.speedup, row.score), fontsize=7, xytext=(4, 4), textcoords="offset points")
    axes.axhline(1, color="black", linestyle="--", label="full model")
    axes.axvline(1, color="black", linestyle=":")
    _labels(axes, "measured speed-up over the full model", "normalised score (mean over tasks)",
            "Accuracy against speed")  # fmt: skip
    path = _save(figure, folder / "tradeoff.png")
    table = front[["label", "plan", "speedup", "score"]].set_index("label").rename_axis(None).round(3)
    text = (
        "Each plan's normalised score (mean over tasks) against its speed-up over the full model, measured once per "
        f"plan by the sweep ({', '.join(sorted(set(points.device)))}; one forward of batch x prompt tokens "
        f"{', '.join(sorted({_shape_text(shape) for shape in points['shape']}))}, median of rounds interleaved "
        "with the full model). "
        "The Pareto front: the plans no other plan beats on both; the table lists them."
    )
    return "Accuracy against speed", text, _figure_html(path, table)


def pareto_front(speed: pd.Series, score: pd.Series) -> pd.Series:
    """Whether each point is on the Pareto front: no other point is at least as fast and as good, and better in one."""
    values = list(zip(speed, score, strict=True))
    return pd.Series(
        [not any(s >= sp and c >= sc and (s, c) != (sp, sc) for s, c in values) for sp, sc in values], index=speed.index
    )


def _shape_text(shape: str) -> str:
    sizes = json.loads(shape)
    return f"{sizes['batch_size']} x {sizes['prompt_tokens']}"


def _point_label(row: pd.Series) -> str:
    """A grid point in a few characters: 'skip n=6', 'looped_parallel n=6 x3', 'swap 4'."""
    parts = [row.variant]
    if pd.notna(row.n):
        parts.append(f"n={row.n}")
    if pd.notna(row.layer):
        parts.append(str(row.layer))
    if pd.notna(row.seed) and row.variant == "shuffle":
        parts.append(f"seed {row.seed}")
    if pd.notna(row.loops):
        parts.append(f"x{row.loops}")
    return " ".join(parts)


def _figure(panels: int) -> tuple[Figure, list]:
    figure = Figure(figsize=(6.5 * panels, 4.8), layout="constrained")
    return figure, list(np.atleast_1d(figure.subplots(1, panels)))


def _has_gold(scores: pd.DataFrame) -> bool:
    """Whether any task has a gold-answer log-likelihood (GLUE classification has none)."""
    return bool(scores.gold.notna().any())


def _panels(scores: pd.DataFrame) -> tuple[Figure, object, object | None]:
    """A figure with a score panel and, when there is one to draw, a gold-answer log-likelihood panel."""
    figure, axes = _figure(2 if _has_gold(scores) else 1)
    return figure, axes[0], axes[1] if len(axes) > 1 else None


def _reference_lines(score_axes, gold_axes) -> None:
    score_axes.axhline(1, color="black", linestyle="--", label="full model")
    score_axes.axhline(0, color="grey", linestyle=":", label="chance")
    if gold_axes is not None:
        gold_axes.axhline(0, color="black", linestyle="--", label="full model")


def _labels(axes, x: str | None, y: str, title: str | None) -> None:
    if axes is None:
        return
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
