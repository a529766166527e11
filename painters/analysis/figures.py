"""Figures of layer similarity and importance, drawn with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_MAX_TICKS = 40  # beyond this many states, label every k-th one so the labels stay readable


def heatmap(
    frame: pd.DataFrame,
    title: str,
    path: str | Path,
    label: str,
    figsize: tuple[float, float] | None = None,
    max_ticks: int = _MAX_TICKS,
    dpi: int = 120,
    marked: dict[str, str] | None = None,
) -> None:
    """A labelled square heatmap of a state x state matrix, with a colour bar, written as PNG.

    By default the figure grows with the matrix and labels up to 40 states in small type; a report
    gives a fixed size and fewer ticks, so the labels stay as large as its text. `marked` relabels some
    states (always ticked, in bold), e.g. the full-attention layers of a model that mixes attention kinds.
    """
    size = len(frame)
    marked = marked or {}
    figure = Figure(figsize=figsize or (7 + size / 12, 6 + size / 12), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(frame.to_numpy(), cmap="viridis", origin="upper")
    regular = range(0, size, max(1, -(-size // max_ticks)))
    ticks = sorted({*regular, *(t for t in range(size) if str(frame.index[t]) in marked)})
    font = None if figsize else 7
    names = [marked.get(str(frame.index[t]), str(frame.index[t])) for t in ticks]
    axes.set_xticks(ticks, names, rotation=90, fontsize=font)
    axes.set_yticks(ticks, names, fontsize=font)
    for tick in [*axes.get_xticklabels(), *axes.get_yticklabels()]:
        if tick.get_text() in marked.values():
            tick.set_fontweight("bold")
    axes.set_xlabel("state (after step)")
    axes.set_ylabel("state (after step)")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label=label)
    figure.savefig(path, dpi=dpi)


def importance_figure(table: pd.DataFrame, title: str, path: str | Path) -> None:
    """Block Influence per step (bars) beside the angular distance of every block (n x first step).

    A one-step plan has no block of steps to compare, so its figure has the bars alone (no empty panel).
    """
    influence = table[table.metric == "block_influence"]
    angular = table[table.metric == "angular"].pivot(index="n", columns="start", values="value")
    figure = Figure(figsize=(14 if len(angular) else 7, 5.5), layout="constrained")
    left, *rest = np.atleast_1d(figure.subplots(1, 2 if len(angular) else 1))
    left.bar(influence.start, influence.value, color="tab:blue")
    left.set_xticks(influence.start, influence.layers, rotation=90, fontsize=7)
    left.set_xlabel("step (layer)")
    left.set_ylabel("block influence: 1 - cos(input, output)")
    left.set_title("Block Influence per step")
    if rest:
        _angular_panel(figure, rest[0], angular, table[(table.metric == "angular") & table.best])
    figure.suptitle(title)
    figure.savefig(path, dpi=120)


def _angular_panel(figure: Figure, right, angular: pd.DataFrame, best: pd.DataFrame) -> None:
    image = right.imshow(angular.to_numpy(), cmap="magma", origin="lower", aspect="auto")
    right.scatter(best.start, best.n - 1, marker="o", facecolors="none", edgecolors="cyan", label="best block per n")
    right.set_xlabel("first step of the block")
    right.set_ylabel("block size n (steps)")
    right.set_yticks(np.arange(len(angular.index))[::2], angular.index[::2])
    right.set_title("Angular distance between block input and output")
    right.legend(loc="upper right", fontsize=8)
    figure.colorbar(image, ax=right, label="arccos(cos) / pi")
