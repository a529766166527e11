"""The section on single layers: skipping each layer i, and swapping layers i and i+1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from painters.report.draw import line_figure
from painters.report.numbers import (
    NO_GOLD,
    SINGLE_VARIANTS,
    Section,
    attention_notes,
    figure_rows,
    mean_over_tasks,
    tasks_with_gold,
    with_errors,
)


def single_layers_section(scores: pd.DataFrame, folder: Path, facts: dict) -> Section | None:
    """`facts`: the model's (`Store.model_facts`); its full-attention layers are shaded in the figures."""
    if (found := figure_rows(scores, SINGLE_VARIANTS)) is None:
        return None
    rows, tasks, notes = found
    notes = [*attention_notes(facts), *notes]
    marks = ("full-attention layer", facts.get("full_attention_layers") or [])
    mean = mean_over_tasks(rows, ["variant", "layer"], tasks) if tasks else None
    figures = []
    if mean is not None and not mean.empty:
        figures.append(line_figure(
            folder / "single_layers.png", mean, "variant", "layer", "normalised", "layer i",
            "normalised score (mean over tasks)", "Skipping one layer, swapping neighbours", reference=(1, 0),
            marks=marks,
        ))  # fmt: skip
    gold_tasks, gold_note = tasks_with_gold(rows, ["variant", "layer"])
    gold = mean_over_tasks(rows, ["variant", "layer"], gold_tasks)
    if gold_tasks:
        notes.append(gold_note)
        figures.append(line_figure(
            folder / "single_layers_gold.png", gold, "variant", "layer", "token_change", "layer i",
            "change of gold log-likelihood per token (nats)", "Gold answer per token, mean over tasks", reference=(0,),
            marks=marks,
        ))  # fmt: skip
    else:
        notes.append(NO_GOLD)
    table = with_errors(mean if mean is not None else gold, "layer", "variant", "normalised")
    text = "Normalised score after skipping each layer i, and after swapping layers i and i+1 (bands: ± 1 stderr)."
    return Section("Single layers", text, figures, table, tuple(notes))
