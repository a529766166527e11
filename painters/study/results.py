"""The stored results as one table: a row per (grid point, task, metric), ready for CSV, pandas or a report;
and every document's record, for analyses the metrics do not cover."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from painters.core.errors import PaintersError
from painters.study.store import NONE, Store

COLUMNS = ["model", "plan", "variant", "n", "seed", "loops", "layer", "task", "metric", "value", "stderr", "limit"]
DETAIL = ["model_fingerprint", "data_fingerprint", "version", "docs", "created"]  # what keys a cell, and when


def results_frame(store: Store, detail: bool = False) -> pd.DataFrame:
    """Every stored cell joined with the grid points that produced its plan; unused label fields are empty.

    With `detail`, also the DETAIL columns, so cells of different runs (limit, data) are never confused.
    """
    rows = store.query(
        'SELECT c.model, c.plan, l.variant, l.n, l.seed, l.loops, l.layer, c.task, c.metrics, c."limit", '
        "c.model_fingerprint, c.data_fingerprint, c.version, c.items AS docs, c.created "
        "FROM cells c JOIN labels l ON c.model_fingerprint = l.model_fingerprint AND c.plan = l.plan "
        "ORDER BY c.task, l.variant, l.n, l.seed, l.loops, l.layer"
    )
    records = []
    for row in rows:
        metrics = json.loads(row["metrics"])
        for metric, value in metrics.items():
            if metric.endswith("_stderr"):
                continue
            stderr = metrics.get(f"{metric}_stderr")
            records.append({
                **{key: row[key] for key in COLUMNS[:8]}, "metric": metric, "value": value, "stderr": stderr,
                "limit": row["limit"], **{key: row[key] for key in DETAIL},
            })  # fmt: skip
    frame = pd.DataFrame(records, columns=COLUMNS + DETAIL)
    for column in ("n", "seed", "loops", "layer", "limit"):
        frame[column] = frame[column].astype("Int64").replace(NONE, pd.NA)
    frame[["value", "stderr"]] = frame[["value", "stderr"]].astype(float).fillna(np.nan)
    return frame if detail else frame[COLUMNS]


def write_samples(store: Store, path: Path) -> int:
    """Every stored cell's per-document records (per fold for GLUE) as JSON lines, each with its cell's key
    and its index in the task's documents; returns how many were written."""
    rows = store.samples()
    if not rows:
        raise PaintersError(
            f"'{store.path}' holds no per-document records: it has no complete cell, or only cells computed "
            "before painters kept records (schema 1); sweep into a new --db to get them"
        )
    count = 0
    with open(path, "w") as out:
        for row in rows:
            key = {name: row[name] for name in ("plan", "task", "limit", "model_fingerprint", "data_fingerprint")}
            key["limit"] = None if key["limit"] == NONE else key["limit"]
            for index, record in enumerate(json.loads(row["records"])):
                out.write(json.dumps(strict({**key, "doc": index, **record}), allow_nan=False) + "\n")
                count += 1
    return count


def strict(value: object) -> object:
    """`value` with every NaN or infinity as None, so each line is strict JSON (an undefined F1 of a fold, say)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    return [strict(item) for item in value] if isinstance(value, list) else value
