"""The section on layer similarity: the cosine matrix a study stored, as a heatmap."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from painters.report.draw import DPI
from painters.report.numbers import Section, attention_notes
from painters.study.store import Store


def similarity_section(store: Store, folder: Path, facts: dict) -> Section | None:
    """The stored cosine matrix as a heatmap; `facts` (`Store.model_facts`) mark its full-attention layers."""
    rows = store.query("SELECT csv, source FROM matrices WHERE name = 'cosine' ORDER BY plan LIMIT 1")
    if not rows:
        return None
    from painters.analysis.figures import heatmap

    matrix = pd.read_csv(io.StringIO(rows[0]["csv"]), index_col=0)
    marked = {str(layer): f"{layer} (full)" for layer in facts.get("full_attention_layers") or []}
    heatmap(matrix, "Mean cosine similarity", folder / "similarity.png", "cosine", (5.6, 5.6), 12, DPI, marked)
    alt = (
        f"Heatmap of the mean cosine similarity between the hidden states after each of {len(matrix)} steps "
        f"(embeddings and every layer); {rows[0]['source']}."
    )
    text = (
        f"Average cosine similarity between the hidden states of every two layers, per real token "
        f"({rows[0]['source']}). Similar layers share a representation space."
    )
    figures = [(folder / "similarity.png", alt)]
    return Section("Layer similarity", text, figures, notes=attention_notes(facts))
