"""The section on plan search (`painters search`): each method's plan per budget, judged on held-out
documents, with what finding it cost. One figure per search run (calibration source, objective, space,
held-out tasks and limit): runs that differ are never drawn together."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from painters.report.draw import SIZE, label_axes, save
from painters.report.numbers import PER_TOKEN, Section, plus_minus
from painters.study.store import Store

RUN = ["source", "objective", "search_space", "judged"]  # what makes two searches' numbers comparable


def search_section(store: Store, folder: Path) -> Section | None:
    """Held-out gold log-likelihood per token (mean over tasks, ± stderr; random: mean of its draws, their
    range) against the layer calls removed, per method; the table lists every record."""
    frame = search_frame(store.searches())
    if frame.empty:
        return None
    figures = []
    for number, (run, part) in enumerate(frame.groupby(RUN, sort=True)):
        figures.append(_figure(part, run, folder / f"search-{number}.png"))
    table = frame.assign(
        held_out=[plus_minus(v, e) for v, e in zip(frame.held_out, frame.held_out_stderr, strict=True)],
        calibration_ppl=frame.calibration_ppl.round(3), kl=frame.kl.round(4), seconds=frame.seconds.round(1),
        sharing=frame.sharing.round(3),
    )[["remove", "method", "calls", "objective", "search_space", "source", "calibration_ppl", "kl", "held_out",
       "versus_first", "judged", "candidates", "sharing", "seconds", "plan"]]  # fmt: skip
    text = (
        "Each method's plan per budget (layer calls removed), found on calibration text and judged on held-out "
        "documents (judged): the gold answer's log-likelihood per token, mean over the held-out tasks (higher is better; "
        "the full model is the dashed line). random is the mean of its draws (bars: their range). The table: "
        "calibration perplexity and KL from the full model; versus_first, the held-out difference from the first "
        "method's plan at the same budget, document by document (mean ± stderr over the paired documents: a "
        "difference within about two standard errors is noise); the search's candidates, the layer-call tokens "
        "it computed as a share of scoring every candidate alone (sharing), and its seconds."
    )
    return Section("Plan search", text, figures, table.set_index(["remove", "method"]))


def search_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record, with its held-out mean over tasks and what identifies its run."""
    rows = []
    for r in records:
        held, full = _task_mean(r.get("held_out", {})), _task_mean(r.get("full_held_out", {}))
        draws = [_task_mean(entry.get("held_out", {}))[0] for entry in r.get("plans", [])]
        cost = r["cost"]
        rows.append({
            "remove": r["remove"], "method": r["method"], "calls": r["calls"], "plan": r["plan"],
            "source": r["run"][0], "objective": r["run"][1], "search_space": r["run"][2], "judged": r["run"][3], "calibration_ppl": r["calibration"]["perplexity"],
            "kl": r["calibration"]["kl_per_token"], "held_out": held[0], "held_out_stderr": held[1],
            "low": min(draws, default=math.nan), "high": max(draws, default=math.nan), "full": full[0],
            "candidates": cost["candidates"], "seconds": cost["seconds"],
            "versus_first": _versus(r.get("versus_first"), r.get("versus")),
            "sharing": cost["layer_call_tokens"] / cost["unshared_layer_call_tokens"] if cost["candidates"] else math.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _versus(paired: list | None, method: str | None) -> str:
    return "" if not paired else f"{paired[0]:+.3f} ± {paired[1]:.3f} vs {method}"


def _task_mean(held_out: dict) -> tuple[float, float]:
    """The mean over tasks of the gold log-likelihood per token and its propagated standard error."""
    values = [numbers[PER_TOKEN] for numbers in held_out.values() if PER_TOKEN in numbers]
    if not values:
        return math.nan, math.nan
    errors = [e for _, e, *_ in values if e is not None]
    stderr = math.sqrt(sum(e * e for e in errors)) / len(values) if len(errors) == len(values) else math.nan
    return sum(v for v, *_ in values) / len(values), stderr


def _figure(part: pd.DataFrame, run: tuple, path: Path) -> tuple[Path, str]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.subplots()
    for method, rows in part.sort_values("remove").groupby("method", sort=False):
        low, high = rows.held_out - rows.low, rows.high - rows.held_out
        errors = rows.held_out_stderr.where(rows.low.isna(), None)
        yerr = [low.where(rows.low.notna(), errors), high.where(rows.high.notna(), errors)]
        axes.errorbar(rows.remove, rows.held_out, yerr=yerr, marker="o", markersize=4, capsize=3, label=method)
    axes.axhline(part.full.iloc[0], color="black", linestyle="--", label="full model")
    source, objective, space, judged = run
    title = f"{source.split()[0]}, {objective}, {space}"
    label_axes(axes, "layer calls removed", "held-out gold log-likelihood per token", title)
    alt = (f"Held-out gold log-likelihood per token (mean over {judged}) against layer calls removed, one line "
           f"per method; calibration {source}, objective {objective}, search space {space}.")  # fmt: skip
    return save(figure, path), alt
