"""The report's figure kinds (lines with bands, curves against n, bars), drawn with matplotlib's object API at
the page's text size: a 616 px wide figure whose type is at least the body's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FONT = {"font.size": 11}  # shown at 616 px, 11 pt is 16.8 px and a 10 pt legend 15.3 px: the body's 15 px at least


SIZE, DPI = (5.6, 4.0), 140  # shown at 616 px wide; the PNG holds 1.27x that, for zooming


def line_figure(path, rows, group, x, y, xlabel, ylabel, title, reference, marks=("", [])) -> tuple[Path, str]:
    """Lines with a ±1 stderr band, one per group; `marks` (name, x values) shades those x values."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    shade, marked = marks
    for k, value in enumerate(marked):
        axes.axvspan(value - 0.5, value + 0.5, color="tab:grey", alpha=0.2, linewidth=0, label=None if k else shade)
    error = f"{y}_stderr"
    for name, part in rows.groupby(group):
        part = part.sort_values(x)
        axes.plot(part[x], part[y], marker="o", markersize=3, label=_legend(name))
        axes.fill_between(part[x].astype(float), part[y] - part[error], part[y] + part[error], alpha=0.2)
    for value, style in zip(reference, ("--", ":"), strict=False):
        axes.axhline(value, color="black" if style == "--" else "grey", linestyle=style,
                     label="full model" if style == "--" else "chance")  # fmt: skip
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    label_axes(axes, xlabel, ylabel, title)
    groups = ", ".join(map(_legend, rows[group].unique()))
    alt = f"{title}: {ylabel} against {xlabel} for {groups}, with ± 1 stderr bands"
    alt += f"; shaded: {shade} ({', '.join(map(str, marked))})." if marked else "."
    return save(figure, path), alt


def curve_figure(path, curves, column, ylabel, title, references: dict[str, float]) -> tuple[Path, str]:
    """One line per variant against n, with ±1 stderr bars and reference lines."""
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    for label, part in curves.groupby("label", sort=False):
        axes.errorbar(part.n, part[column], yerr=part[f"{column}_stderr"], marker="o", markersize=3, capsize=2,
                      label=label)  # fmt: skip
    for (name, value), style in zip(references.items(), ("--", ":"), strict=False):
        if not pd.isna(value):
            axes.axhline(value, color="black" if style == "--" else "grey", linestyle=style, label=name)
    label_axes(axes, "affected layers n", ylabel, title)
    lines = ", ".join(f"{name} {value:.3g}" for name, value in references.items() if not pd.isna(value))
    alt = (
        f"{title}: {ylabel} against the number of affected layers n for {', '.join(curves.label.unique())}, "
        f"with ± 1 standard error bars; reference lines: {lines}."
    )
    return save(figure, path), alt


def bar_figure(path, drop, column, ylabel, title) -> tuple[Path, str]:
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
    crowded = len(names) > 4  # six labels of two lines overlap unless turned
    axes.set_xticks(positions + width * (len(variants) - 1) / 2, names, fontsize=10, rotation=35 if crowded else 0,
                    ha="right" if crowded else "center", rotation_mode="anchor")  # fmt: skip
    label_axes(axes, None, ylabel, title)
    alt = f"Bar chart, {title}: {ylabel} per task ({', '.join(names).replace(chr(10), ' ')}) for {', '.join(variants)}."
    return save(figure, path), alt


def _legend(name: object) -> str:
    return {"skip_layer": "skip layer i", "swap": "swap layers i, i+1"}.get(str(name), str(name))


def label_axes(axes, x: str | None, y: str, title: str | None) -> None:
    if x:
        axes.set_xlabel(x)
    axes.set_ylabel(y)
    if title:
        axes.set_title(title, fontsize=11)
    if axes.get_legend_handles_labels()[0] and not axes.get_legend():
        axes.legend(fontsize=10)


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    return path
