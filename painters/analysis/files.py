"""The files `painters similarity` writes: each matrix as CSV and PNG, and the importance table and figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from painters.analysis.figures import heatmap, importance_figure
from painters.analysis.similarity import Similarity
from painters.core.errors import PaintersError

FILES = ("cosine.csv", "cosine.png", "cka.csv", "cka.png", "importance.csv", "importance.png")


def write_similarity(result: Similarity, table: pd.DataFrame, out: str | Path, model: str) -> list[Path]:
    """Write FILES into `out` (created if needed); returns their paths."""
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PaintersError(f"cannot create output folder '{folder}': {error}") from None
    about = f"{model} · plan {result.plan} · {result.tokens} tokens"
    result.cosine.to_csv(folder / "cosine.csv", float_format="%.6f")
    heatmap(result.cosine, f"Mean cosine similarity of hidden states\n{about}", folder / "cosine.png", "cosine")
    result.cka.to_csv(folder / "cka.csv", float_format="%.6f")
    heatmap(result.cka, f"Linear CKA (minibatch) of hidden states\n{about}", folder / "cka.png", "CKA")
    table.to_csv(folder / "importance.csv", index=False, float_format="%.6f")
    importance_figure(table, f"Layer importance · {about}", folder / "importance.png")
    return [folder / name for name in FILES]
