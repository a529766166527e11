"""The paper's figures from a results store, as PNG files and one self-contained index.html.

A figure never mixes runs: per figure and task it takes one set of cells (one limit and one data
fingerprint: the largest limit at which every plan of the figure was scored) and says which, and what
it left out. Scores are normalised per task so that chance is 0 and the full model 1, as the paper
averages them; a task where the full model is not above chance is left out of the averages, and the
page says so. Every number carries its standard error, as a bar or band in the figures and as
`value ± stderr` in the tables. Beside accuracy, the mean log-likelihood of the gold answer shows
damage far less noisily at small limits. The page says what produced it (model, versions, data, when).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from painters.errors import PaintersError
from painters.results import results_frame
from painters.store import Store
from painters.tasks import get_task
from painters.variants import build_variant

BAND_VARIANTS = ("skip", "middle_repeat", "reverse", "shuffle", "parallel", "looped_parallel")
SINGLE_VARIANTS = ("skip_layer", "swap")
ORDER_VARIANTS = ("reverse", "shuffle", "parallel")
GOLD, PER_TOKEN = "gold_ll", "gold_ll_per_token"
DASH = "—"
FONT = {"font.size": 11}  # shown at 616 px, 11 pt is 16.8 px and a 10 pt legend 15.3 px: the body's 15 px at least
SIZE, DPI = (5.6, 4.0), 140  # shown at 616 px wide; the PNG holds 1.27x that, for zooming
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


def report(store: Store, out: str | Path) -> Path:
    """Write the figures and index.html into `out`; returns the index path."""
    frame = results_frame(store, detail=True)
    if frame.empty:
        raise PaintersError(f"the store '{store.path}' has no results yet: run `painters sweep` or `painters paper`")
    models = sorted(frame.model.unique())
    if len(models) > 1:
        raise PaintersError(f"the store holds results of several models ({', '.join(models)}): use one store per model")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scores = _scores(frame)
    with rc_context(FONT):
        sections = [
            _similarity_section(store, folder),
            _single_section(scores, folder),
            _per_task_section(scores, folder),
            _variants_section(scores, folder),
            _looped_section(scores, folder),
            _order_section(scores, folder),
            _tradeoff_section(scores, store, folder),
        ]
    index = folder / "index.html"
    page = _page(models[0], frame, store, folder, [s for s in sections if s is not None])
    index.write_text(page, encoding="utf-8")
    return index


def _scores(frame: pd.DataFrame) -> pd.DataFrame:
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


def _consistent(scores: pd.DataFrame, variants: tuple[str, ...]) -> tuple[pd.DataFrame, list[str], list[str]]:
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


def _figure_rows(scores: pd.DataFrame, variants: tuple[str, ...]) -> tuple[pd.DataFrame, list[str], list[str]] | None:
    """One figure's consistent rows of `variants` (None if it has none), the tasks its means include, and its notes."""
    rows, used, left = _consistent(scores, ("full", *variants))
    rows = rows[rows.variant.isin(variants)]
    if rows.empty:
        return None
    tasks, excluded = _included(rows)
    return rows, tasks, [f"Runs: {'; '.join(used)}.", _left_text(left), _mean_text(tasks, excluded)]


def _stderr_of_mean(errors: pd.Series) -> float:
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


def _mean_over_tasks(rows: pd.DataFrame, keys: list[str], tasks: list[str]) -> pd.DataFrame:
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


def _gold_tasks(rows: pd.DataFrame, keys: list[str]) -> tuple[list[str], str]:
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


def _similarity_section(store: Store, folder: Path) -> Section | None:
    rows = store.query("SELECT csv, source FROM matrices WHERE name = 'cosine' ORDER BY plan LIMIT 1")
    if not rows:
        return None
    from painters.figures import heatmap

    matrix = pd.read_csv(io.StringIO(rows[0]["csv"]), index_col=0)
    heatmap(matrix, "Mean cosine similarity", folder / "similarity.png", "cosine", (5.6, 5.6), 12, DPI)
    alt = (
        f"Heatmap of the mean cosine similarity between the hidden states after each of {len(matrix)} steps "
        f"(embeddings and every layer); {rows[0]['source']}."
    )
    text = (
        f"Average cosine similarity between the hidden states of every two layers, per real token "
        f"({rows[0]['source']}). Similar layers share a representation space."
    )
    return Section("Layer similarity", text, [(folder / "similarity.png", alt)])


def _single_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    if (found := _figure_rows(scores, SINGLE_VARIANTS)) is None:
        return None
    rows, tasks, notes = found
    mean = _mean_over_tasks(rows, ["variant", "layer"], tasks) if tasks else None
    figures = []
    if mean is not None and not mean.empty:
        figures.append(_line_figure(
            folder / "single_layers.png", mean, "variant", "layer", "normalised", "layer i",
            "normalised score (mean over tasks)", "Skipping one layer, swapping neighbours", reference=(1, 0),
        ))  # fmt: skip
    gold_tasks, gold_note = _gold_tasks(rows, ["variant", "layer"])
    gold = _mean_over_tasks(rows, ["variant", "layer"], gold_tasks)
    if gold_tasks:
        notes.append(gold_note)
        figures.append(_line_figure(
            folder / "single_layers_gold.png", gold, "variant", "layer", "token_change", "layer i",
            "change of gold log-likelihood per token (nats)", "Gold answer per token, mean over tasks", reference=(0,),
        ))  # fmt: skip
    else:
        notes.append(NO_GOLD)
    table = _with_errors(mean if mean is not None else gold, "layer", "variant", "normalised")
    text = "Normalised score after skipping each layer i, and after swapping layers i and i+1 (bands: ± 1 stderr)."
    return Section("Single layers", text, figures, table, tuple(notes))


def _per_task_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    rows, used, left = _consistent(scores, ("full", *BAND_VARIANTS))
    if rows[rows.variant.isin(BAND_VARIANTS)].empty:
        return None
    figures, tables = [], []
    for task, part in rows.groupby("task", sort=True):
        curves = _curves(part, ["score", "gold"], ["stderr", "gold_stderr"])
        reference = part[part.variant == "full"].iloc[0]
        metric = get_task(task).primary
        shown = "score" if curves.score.notna().any() else "gold"  # GSM8K without generation has gold only
        if shown == "score":
            figures.append(_curve_figure(
                folder / f"variants_{task}.png", curves, "score", metric, f"{task}: {metric}",
                {"full model": reference.score, "chance": reference.chance},
            ))  # fmt: skip
        if curves.gold.notna().any():
            figures.append(_curve_figure(
                folder / f"variants_{task}_gold.png", curves, "gold", "mean gold log-likelihood",
                f"{task}: gold-answer log-likelihood", {"full model": reference.gold},
            ))  # fmt: skip
        tables.append(_with_errors(curves.rename(columns={"score_stderr": "stderr"}), "n", "label", shown)
                      .set_axis(pd.MultiIndex.from_product([[task], curves.label.unique()]), axis=0))  # fmt: skip
    notes = [f"Runs: {'; '.join(used)}.", _left_text(left)]
    if not rows.gold.notna().any():
        notes.append(NO_GOLD)
    text = (
        "Each task's score (and, for log-likelihood tasks, the gold answer's mean log-likelihood) against the "
        "number of affected middle layers n. Bars: ± 1 standard error; shuffle is the mean over seeds."
    )
    return Section("Variants per task", text, figures, pd.concat(tables), tuple(notes))


def _curves(part: pd.DataFrame, columns: list[str], errors: list[str]) -> pd.DataFrame:
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
            curve[f"{column}_stderr"] = grouped[error].apply(_stderr_of_mean)
        frames.append(curve.reset_index().assign(label=label))
    return pd.concat(frames, ignore_index=True)


def _variants_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    if (found := _figure_rows(scores, BAND_VARIANTS)) is None:
        return None
    rows, tasks, notes = found
    figures, table = [], None
    keys = ["variant", "n", "seed", "loops"]
    if tasks:
        mean = _mean_over_tasks(rows, keys, tasks).rename(columns={"normalised_stderr": "stderr"})
        curves = _curves(mean, ["normalised"], ["stderr"])
        figures.append(_curve_figure(
            folder / "variants.png", curves, "normalised", "normalised score (chance 0, full 1)",
            "All variants, mean over tasks", {"full model": 1, "chance": 0},
        ))  # fmt: skip
        table = _with_errors(curves, "n", "label", "normalised")
    gold_tasks, gold_note = _gold_tasks(rows, keys)
    if gold_tasks:
        notes.append(gold_note)
        curves = _curves(_mean_over_tasks(rows, keys, gold_tasks), ["token_change"], ["token_change_stderr"])
        figures.append(_curve_figure(
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


def _looped_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    if (found := _figure_rows(scores, ("looped_parallel",))) is None:
        return None
    rows, tasks, notes = found
    if not tasks:
        text = "No task has a full model above chance: nothing to normalise."
        return Section("Looped parallel", text, [], None, tuple(notes))
    mean = _mean_over_tasks(rows, ["n", "loops"], tasks)
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
    _labels(axes, "loops", "affected layers n", "Looped parallel: normalised score")
    figure.colorbar(image, ax=axes, label="normalised score")
    path = _save(figure, folder / "looped_parallel.png")
    alt = (
        f"Heatmap of the normalised score (mean over {', '.join(tasks)}) for looped parallel blocks of n = "
        f"{', '.join(map(str, grid.index))} layers run {', '.join(map(str, grid.columns))} times; "
        f"{len(stars)} rows have a best loop count clear of the noise, starred."
    )
    text = (
        "Normalised score by block size n and number of loops. A star marks the best loop count of a row only "
        "where it beats the runner-up by more than twice the standard error of their difference."
    )
    table = _with_errors(mean, "n", "loops", "normalised", transpose=False)
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


def _tradeoff_section(scores: pd.DataFrame, store: Store, folder: Path) -> Section | None:
    """Each plan's normalised mean score against its measured speed-up, the Pareto front marked and labelled."""
    speeds = pd.DataFrame([dict(row) for row in store.speeds()], columns=["plan", "speedup", "shape", "device"])
    if speeds.empty or (found := _figure_rows(scores, (*BAND_VARIANTS, *SINGLE_VARIANTS))) is None:
        return None
    rows, tasks, notes = found
    if not tasks:
        return Section("Accuracy against speed", "No task has a full model above chance: no score to draw.", [])
    keys = ["plan", "variant", "n", "seed", "loops", "layer"]
    mean = _mean_over_tasks(pd.concat([rows, _full_rows(scores, rows)]), keys, tasks)
    points = mean.merge(speeds, on="plan").drop_duplicates("plan")
    points["label"] = points.apply(_point_label, axis=1)
    points["front"] = pareto_front(points.speedup, points.normalised)
    front = points[points.front].sort_values("speedup")
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    axes.errorbar(points.speedup, points.normalised, yerr=points.normalised_stderr, fmt="o", markersize=3,
                  alpha=0.5, capsize=2, label="plan")  # fmt: skip
    axes.plot(front.speedup, front.normalised, color="tab:red", marker="o", label="Pareto front")
    for row in front.itertuples():
        axes.annotate(row.label, (row.speedup, row.normalised), fontsize=9, xytext=(4, 4), textcoords="offset points")
    axes.axhline(1, color="black", linestyle="--", label="full model")
    axes.axvline(1, color="grey", linestyle=":")
    _labels(
        axes, "measured speed-up over the full model", "normalised score (mean over tasks)", "Accuracy against speed"
    )
    alt = (
        "Scatter of each plan's normalised score (mean over tasks, ± 1 stderr) against its measured speed-up over "
        f"the full model; the Pareto front ({', '.join(front.label)}) is joined and labelled."
    )
    path = _save(figure, folder / "tradeoff.png")
    table = front.assign(
        score=[_plus_minus(v, e) for v, e in zip(front.normalised, front.normalised_stderr, strict=True)]
    )
    table = table.assign(speedup=table.speedup.round(3))[["label", "plan", "speedup", "score"]].set_index("label")
    shapes = ", ".join(sorted({_shape_text(shape) for shape in points["shape"]}))
    text = (
        "Each plan's normalised score (mean over tasks) against its speed-up over the full model, measured once per "
        f"plan by the sweep ({', '.join(sorted(set(points.device)))}; one forward of batch x prompt tokens "
        f"{shapes}, median of rounds interleaved with the full model). The Pareto front: the plans no other plan "
        "beats on both; the table lists them."
    )
    return Section("Accuracy against speed", text, [(path, alt)], table.rename_axis(None), tuple(notes))


def _full_rows(scores: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The full model's rows in the same runs as `rows` (a figure's rows hold only its variants)."""
    run = ["task", "limit", "data_fingerprint"]
    return scores[scores.variant == "full"].merge(rows[run].drop_duplicates(), on=run)


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
        parts.append(f"n={int(row.n)}")
    if pd.notna(row.layer):
        parts.append(str(int(row.layer)))
    if pd.notna(row.seed) and row.variant == "shuffle":
        parts.append(f"seed {int(row.seed)}")
    if pd.notna(row.loops):
        parts.append(f"x{int(row.loops)}")
    return " ".join(parts)


def _order_section(scores: pd.DataFrame, folder: Path) -> Section | None:
    """What reordering or parallelising the middle layers costs each task: the paper's claim that order
    matters most for math and reasoning. The gold answer's log-likelihood per token compares tasks whose
    answers differ in length (a GSM8K solution is ~100 tokens, a LAMBADA word one or two)."""
    if (found := _figure_rows(scores, ORDER_VARIANTS)) is None:
        return None
    order, _, notes = found
    grouped = order.groupby(["task", "variant"])
    drop = pd.DataFrame({
        "score loss": 1 - grouped.normalised.mean(),
        "score loss_stderr": grouped.normalised_stderr.apply(_stderr_of_mean),
        "gold change": grouped.token_change.mean(),
        "gold change_stderr": grouped.token_stderr.apply(_stderr_of_mean),
    }).reset_index()  # fmt: skip
    drop["skill"] = drop.task.map(lambda t: get_task(t).skill)
    drop = drop.sort_values(["skill", "task"], kind="stable")
    figures = []
    if drop["score loss"].notna().any():
        figures.append(_bar_figure(folder / "order_sensitivity.png", drop, "score loss",
                                   "loss of normalised score (mean over n)", "Sensitivity to layer order"))  # fmt: skip
    if drop["gold change"].notna().any():
        figures.append(_bar_figure(folder / "order_sensitivity_gold.png", drop, "gold change",
                                   "change of gold log-likelihood per token (nats)",
                                   "Gold answer, per token (mean over n)"))  # fmt: skip
    else:
        notes.append(NO_GOLD)
    text = (
        "What reversing, shuffling or parallelising the middle layers costs each task, averaged over n, reasoning "
        "tasks against semantic ones: the loss of normalised score, and the change of the gold answer's "
        "log-likelihood per token against the full model. Bars: ± 1 standard error."
    )
    table = drop.assign(key=drop.task + " (" + drop.skill + ")")
    tables = [_with_errors(table, "key", "variant", column) for column in ("score loss", "gold change")]
    return Section("Layer order", text, figures, pd.concat(tables, keys=["score loss", "gold per token"]), tuple(notes))


def _line_figure(path, rows, group, x, y, xlabel, ylabel, title, reference) -> tuple[Path, str]:
    """Lines with a ±1 stderr band, one per group."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    error = f"{y}_stderr"
    for name, part in rows.groupby(group):
        part = part.sort_values(x)
        axes.plot(part[x], part[y], marker="o", markersize=3, label=_legend(name))
        axes.fill_between(part[x].astype(float), part[y] - part[error], part[y] + part[error], alpha=0.2)
    for value, style in zip(reference, ("--", ":"), strict=False):
        axes.axhline(value, color="black" if style == "--" else "grey", linestyle=style,
                     label="full model" if style == "--" else "chance")  # fmt: skip
    _labels(axes, xlabel, ylabel, title)
    alt = f"{title}: {ylabel} against {xlabel} for {', '.join(map(_legend, rows[group].unique()))}, with ± 1 stderr bands."
    return _save(figure, path), alt


def _curve_figure(path, curves, column, ylabel, title, references: dict[str, float]) -> tuple[Path, str]:
    """One line per variant against n, with ±1 stderr bars and reference lines."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    for label, part in curves.groupby("label", sort=False):
        axes.errorbar(part.n, part[column], yerr=part[f"{column}_stderr"], marker="o", markersize=3, capsize=2,
                      label=label)  # fmt: skip
    for (name, value), style in zip(references.items(), ("--", ":"), strict=False):
        if not pd.isna(value):
            axes.axhline(value, color="black" if style == "--" else "grey", linestyle=style, label=name)
    _labels(axes, "affected layers n", ylabel, title)
    lines = ", ".join(f"{name} {value:.3g}" for name, value in references.items() if not pd.isna(value))
    alt = (
        f"{title}: {ylabel} against the number of affected layers n for {', '.join(curves.label.unique())}, "
        f"with ± 1 standard error bars; reference lines: {lines}."
    )
    return _save(figure, path), alt


def _bar_figure(path, drop, column, ylabel, title) -> tuple[Path, str]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    drop = drop.assign(key=drop.task + "\n(" + drop.skill + ")")
    names = list(dict.fromkeys(drop.key))
    positions = np.arange(len(names))
    variants = list(dict.fromkeys(drop.variant))
    width = 0.8 / len(variants)
    for k, variant in enumerate(variants):
        part = drop[drop.variant == variant].set_index("key").reindex(names)
        axes.bar(positions + k * width, part[column], width, yerr=part[f"{column}_stderr"], capsize=2, label=variant)
    axes.set_xticks(positions + width * (len(variants) - 1) / 2, names, fontsize=10)
    _labels(axes, None, ylabel, title)
    alt = f"Bar chart, {title}: {ylabel} per task ({', '.join(names).replace(chr(10), ' ')}) for {', '.join(variants)}."
    return _save(figure, path), alt


def _legend(name: object) -> str:
    return {"skip_layer": "skip layer i", "swap": "swap layers i, i+1"}.get(str(name), str(name))


def _labels(axes, x: str | None, y: str, title: str | None) -> None:
    if x:
        axes.set_xlabel(x)
    axes.set_ylabel(y)
    if title:
        axes.set_title(title, fontsize=11)
    if axes.get_legend_handles_labels()[0] and not axes.get_legend():
        axes.legend(fontsize=10)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path


def _with_errors(rows: pd.DataFrame, index: str, columns: str, value: str, transpose: bool = True) -> pd.DataFrame:
    """A table of `value ± stderr` strings; blank cells are a dash."""
    error = f"{value}_stderr" if f"{value}_stderr" in rows else "stderr"
    text = rows.assign(cell=[_plus_minus(v, e) for v, e in zip(rows[value], rows[error], strict=True)])
    table = text.pivot_table(index=columns if transpose else index, columns=index if transpose else columns,
                             values="cell", aggfunc="first", sort=False)  # fmt: skip
    return table.fillna(DASH)


def _plus_minus(value: float, error: float) -> str:
    if pd.isna(value):
        return DASH
    return f"{value:.3f}" if pd.isna(error) else f"{value:.3f} ± {error:.3f}"


def _left_text(left: list[str]) -> str:
    return f"Left out (other runs): {'; '.join(left)}." if left else "Nothing left out: every stored run is shown."


def _mean_text(tasks: list[str], excluded: list[str]) -> str:
    text = f"Normalised means include {', '.join(tasks) if tasks else 'no task'}"
    return text + (f"; left out: {'; '.join(excluded)}." if excluded else ".")


GLOSSARY = [
    ("full", "The unmodified model: every layer once, in order."),
    ("skip", "The n middle layers are left out."),
    ("middle_repeat", "The centre layer runs n times in place of the n middle layers."),
    ("reverse", "The n middle layers run in reverse order."),
    ("shuffle", "The n middle layers run in a random order (one per seed)."),
    ("parallel", "The n middle layers all read the same input and their outputs are averaged."),
    ("looped_parallel", "The parallel block runs K times, each pass feeding the next (loops K, here 3)."),
    ("skip_layer", "One layer i is left out (here i = 14)."),
    ("swap", "Layers i and i+1 exchange places (here i = 14)."),
]
TERMS = [
    ("affected layers n", "How many middle layers a variant changes: the band [a, a+n) with a = ceil((L - n) / 2)."),
    (
        "normalised score",
        (
            "(score - chance) / (full model's score - chance): chance is 0 and the full model 1, "
            "defined only on tasks where the full model is above chance."
        ),
    ),
    (
        "gold log-likelihood",
        (
            "The mean log-probability (nats) the model gives the right answer; its change from the "
            "full model shows damage even when accuracy is too noisy to."
        ),
    ),
]


def _glossary() -> str:
    rows = []
    for name, meaning in GLOSSARY:
        options = {"layer": 14} if name in SINGLE_VARIANTS else {} if name == "full" else {"n": 6}
        plan = build_variant(name, 30, **options)
        rows.append(f"<dt>{name}</dt><dd>{html.escape(meaning)} <code>{plan}</code></dd>")
    rows += [f"<dt>{html.escape(term)}</dt><dd>{html.escape(meaning)}</dd>" for term, meaning in TERMS]
    return f"<p>Plans shown for a model of L = 30 layers, n = 6.</p><dl>{''.join(rows)}</dl>"


def _provenance(model: str, frame: pd.DataFrame, store: Store, folder: Path) -> str:
    """What produced the page: model, versions, dtype, device, data, protocol, when, and how to redraw it."""
    runs = store.runs()
    environments = [json.loads(row["environment"]) for row in runs]

    def recorded(key: str) -> str:
        values = sorted({str(e[key]) if not isinstance(e[key], dict) else json.dumps(e[key])
                         for e in environments if key in e})  # fmt: skip
        return ", ".join(values) if values else "not recorded (written before painters recorded it)"

    cells = frame.drop_duplicates(["task", "limit", "data_fingerprint"]).sort_values(["task", "limit"])
    data = "; ".join(
        f"{row.task} ({'all' if pd.isna(row['limit']) else row['limit']} documents, data {row.data_fingerprint})"
        for _, row in cells.iterrows()
    )
    facts = [
        ("model", f"{model} (fingerprint {', '.join(sorted(frame.model_fingerprint.unique()))})"),
        ("painters", ", ".join(sorted(frame.version.unique()))),
        ("transformers", recorded("transformers")), ("torch", recorded("torch")),
        ("dtype", recorded("dtype")), ("device", recorded("device")),
        ("tasks", data), ("GLUE protocol", recorded("protocol") if frame.task.map(_is_glue).any() else "no GLUE task"),
        ("runs made", f"{frame.created.min()} to {frame.created.max()} UTC"),
        ("made by", recorded("command")),
        ("redraw with", f"painters report --db {store.path} --out {folder}"),
    ]  # fmt: skip
    if any("note" in e for e in environments):
        facts.append(("note", recorded("note")))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f'<div class="numbers"><table class="facts">{body}</table></div>'


def _is_glue(task: str) -> bool:
    return get_task(task).kind == "classification"


def _figure_html(path: Path, alt: str) -> str:
    image = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><label class="zoom" title="click to zoom"><input type="checkbox">'
        f'<img src="data:image/png;base64,{image}" alt="{html.escape(alt)}"></label></figure>'
    )


def _section_html(section: Section) -> str:
    figures = "".join(_figure_html(path, alt) for path, alt in section.figures)
    table = "" if section.table is None else f'<div class="numbers">{section.table.to_html(na_rep=DASH)}</div>'
    notes = "".join(f"<p class=note>{html.escape(note)}</p>" for note in section.notes)
    return (
        f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2><p>{html.escape(section.text)}</p>'
        f'{notes}<div class="figures">{figures}</div>{table}</section>'
    )


STYLE = """
body{font-family:sans-serif;font-size:15px;line-height:1.4;margin:0 auto;padding:1em;max-width:90em}
h1{font-size:1.6em} .figures{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;max-width:100%;overflow-x:auto} .zoom input{display:none}
.zoom img{display:block;width:616px;max-width:100%;height:auto;cursor:zoom-in}
.zoom input:checked+img{width:auto;max-width:none;cursor:zoom-out}
.numbers{max-width:100%;overflow-x:auto;margin:1em 0} table{border-collapse:collapse;font-size:14px}
td,th{border:1px solid #ccc;padding:2px 6px;white-space:nowrap;text-align:right} .facts td{text-align:left;white-space:normal}
.note{color:#333} dt{font-weight:bold} dd{margin:0 0 .5em 1.5em} code{overflow-wrap:anywhere}
"""


def _page(model: str, frame: pd.DataFrame, store: Store, folder: Path, sections: list[Section]) -> str:
    contents = [("what-produced-it", "What produced it"), ("glossary", "Glossary")]
    contents += [(s.anchor, s.title) for s in sections]
    toc = "".join(f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title in contents)
    body = "\n".join(_section_html(section) for section in sections)
    missing = [name for name in ("Layer similarity", "Single layers", "Variants per task", "Looped parallel",
                                 "Layer order") if name not in {s.title for s in sections}]  # fmt: skip
    absent = f"<p>Not in this store, so not drawn: {', '.join(missing)}.</p>" if missing else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>painters report: {html.escape(model)}</title><style>{STYLE}</style></head><body>
<h1>Transformer layers as painters: {html.escape(model)}</h1>
<p>The experiments of "Transformer Layers as Painters" (arXiv 2407.09298) on {html.escape(model)}.
Click a figure to see it at full size. Every number is shown with its standard error.</p>
<nav><h2>Contents</h2><ol>{toc}</ol></nav>{absent}
<section id="what-produced-it"><h2>What produced it</h2>{_provenance(model, frame, store, folder)}</section>
<section id="glossary"><h2>Glossary</h2>{_glossary()}</section>
{body}
</body></html>
"""
