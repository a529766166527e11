"""The section on accuracy against speed: each plan's normalised score against its measured speed-up, with
the Pareto front."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from painters.report.draw import SIZE, label_axes, save
from painters.report.numbers import BAND_VARIANTS, SINGLE_VARIANTS, Section, figure_rows, mean_over_tasks, plus_minus
from painters.study.store import Store


def tradeoff_section(scores: pd.DataFrame, store: Store, folder: Path, facts: dict) -> Section | None:
    """Each plan's normalised mean score against its measured speed-up, the Pareto front marked and labelled;
    `facts` (`Store.model_facts`) say where a token's work goes."""
    speeds = pd.DataFrame([dict(row) for row in store.speeds()], columns=["plan", "speedup", "shape", "device"])
    if speeds.empty or (found := figure_rows(scores, (*BAND_VARIANTS, *SINGLE_VARIANTS))) is None:
        return None
    rows, tasks, notes = found
    if not tasks:
        text = "No task has a full model above chance: no score to draw."
        return Section("Accuracy against speed", text, [], notes=split_notes(facts))
    keys = ["plan", "variant", "n", "seed", "loops", "layer"]
    mean = mean_over_tasks(pd.concat([rows, _full_rows(scores, rows)]), keys, tasks)
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
    label_axes(
        axes, "measured speed-up over the full model", "normalised score (mean over tasks)", "Accuracy against speed"
    )
    alt = (
        "Scatter of each plan's normalised score (mean over tasks, ± 1 stderr) against its measured speed-up over "
        f"the full model; the Pareto front ({', '.join(front.label)}) is joined and labelled."
    )
    path = save(figure, folder / "tradeoff.png")
    table = front.assign(
        score=[plus_minus(v, e) for v, e in zip(front.normalised, front.normalised_stderr, strict=True)]
    )
    table = table.assign(speedup=table.speedup.round(3))[["label", "plan", "speedup", "score"]].set_index("label")
    shapes = ", ".join(sorted({_shape_text(shape) for shape in points["shape"]}))
    text = (
        "Each plan's normalised score (mean over tasks) against its speed-up over the full model, measured once per "
        f"plan by the sweep ({', '.join(sorted(set(points.device)))}; one forward of batch x prompt tokens "
        f"{shapes}, median of rounds interleaved with the full model). The Pareto front: the plans no other plan "
        "beats on both; the table lists them."
    )
    notes = [*split_notes(facts), *notes]
    return Section("Accuracy against speed", text, [(path, alt)], table.rename_axis(None), tuple(notes))


def split_notes(facts: dict) -> tuple[str, ...]:
    """Where a token's work goes, layers against the output layer: why skipping buys little on some models."""
    if "weight_split" not in facts:
        return ()
    layers, output, count = facts["weight_split"]["layers"], facts["weight_split"]["output_layer"], facts["num_layers"]
    half = layers * (count // 2) / count
    note = (
        f"Where a token's work goes: the {count} layers do {layers:.0%} of the multiply-adds with weights, the output "
        f"layer {output:.0%}. Leaving out k of the {count} layer calls removes k/{count} of the layers' share: "
        f"skipping {count // 2} layers removes {half:.0%} of those multiply-adds ({1 / (1 - half):.2f}x if they were "
        "all the time; measured speed-ups also carry each layer's attention over the context and per-call overheads, "
        "so at small sizes they can be larger)."
    )
    return (note,)


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
