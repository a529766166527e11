"""Judging a search's plans on held-out documents: a sweep of every method's plans (and the full model) into
the same store, so it resumes and runs as sweeps run; each record gets its plans' scores per task and its
paired difference from the first method's plan at the same budget, document by document (the same
documents score both, so the noise of the comparison is that of the differences, not of each score).
"""

from __future__ import annotations

import json
import math

from painters import __version__
from painters.core.plan import Plan
from painters.study.grid import GridPoint
from painters.study.results import results_frame
from painters.study.store import NONE, Label, Store
from painters.study.sweep import sweep
from painters.tasks.evaluation import GOLD_METRICS

PER_TOKEN = GOLD_METRICS[1]  # the held-out signal: the gold answer's log-likelihood per token


def judge(model, tokenizer, store: Store, records: list[dict], options, name: str, data_dir, progress: bool) -> None:
    """Score every record's plans (and the full model) on the held-out tasks (`options.eval_tasks`, the first
    `options.limit` documents); add their numbers to the records, and each record's paired difference from
    the first method's plan at its budget."""
    num_layers = model.config.num_hidden_layers
    points = [GridPoint(Label("full"), Plan.full(num_layers))]
    for record in records:
        plans = [entry["plan"] for entry in record.get("plans", [record])]
        for draw, plan in enumerate(plans):
            label = Label(f"search:{record['method']}", record["remove"], draw if len(plans) > 1 else NONE)
            points.append(GridPoint(label, Plan.parse(plan)))
    sweep(model, tokenizer, name, points, list(options.eval_tasks), store, options.limit, options.batch_size,
          data_dir, progress, max_tokens=options.max_tokens, memo_bytes=options.memo_bytes, generate=False)  # fmt: skip
    numbers = held_out_numbers(store, options.eval_tasks, options.limit)
    full = numbers.get(str(Plan.full(num_layers)), {})
    for record in records:
        for entry in record.get("plans", []):
            entry["held_out"] = numbers.get(entry["plan"], {})
        draws = [numbers.get(entry["plan"], {}) for entry in record.get("plans", [record])]
        record["held_out"] = draws[0] if len(draws) == 1 else _mean_over(draws)
        record["full_held_out"], record["held_out_limit"] = full, options.limit
    documents = document_values(store, options.eval_tasks, options.limit)
    chosen = {record["remove"]: record for record in reversed(records)}  # the first record of each budget
    for record in records:
        record["versus_first"] = paired(documents, _plans(record), _plans(chosen[record["remove"]]))


def held_out_numbers(store: Store, tasks: tuple[str, ...], limit: int | None) -> dict[str, dict]:
    """Per plan, per task: its primary metric and gold log-likelihood per token, each (value, stderr), from
    the store's latest cells at `limit`."""
    from painters.tasks.catalog import get_task

    frame = results_frame(store, detail=True)
    at_limit = frame["limit"].isna() if limit is None else (frame["limit"] == limit).fillna(False)
    frame = frame[frame.task.isin(tasks) & at_limit & (frame.version == __version__)]
    frame = frame.sort_values("created").drop_duplicates(["plan", "task", "metric"], keep="last")
    numbers: dict[str, dict] = {}
    for row in frame.itertuples():
        if row.metric in (get_task(row.task).primary, PER_TOKEN):
            numbers.setdefault(row.plan, {}).setdefault(row.task, {})[row.metric] = [row.value, row.stderr]
    return numbers


def _mean_over(draws: list[dict]) -> dict:
    """Random's draws: each number's mean over the draws (each draw's own numbers stay in its entry)."""
    merged: dict = {}
    for task in draws[0]:
        for metric in draws[0][task]:
            values = [numbers[task][metric][0] for numbers in draws]
            merged.setdefault(task, {})[metric] = [sum(values) / len(values), None]
    return merged


def document_values(store: Store, tasks: tuple[str, ...], limit: int | None) -> dict[str, dict[tuple[str, int], float]]:
    """Per plan, each held-out document's gold log-likelihood per token, keyed (task, document)."""
    found: dict[str, dict[tuple[str, int], float]] = {}
    for row in store.samples():
        if (
            row["task"] in tasks
            and row["limit"] == (NONE if limit is None else limit)
            and row["version"] == __version__
        ):
            values = found.setdefault(row["plan"], {})
            for index, record in enumerate(json.loads(row["records"])):
                values[row["task"], index] = record[PER_TOKEN]
    return found


def paired(documents: dict, plans: list[str], reference: list[str]) -> list[float] | None:
    """The mean over held-out documents of (plans' value - reference plans' value), its standard error and the
    number of documents; several plans (random's draws) count as their mean on each document."""
    mine, theirs = _per_document(documents, plans), _per_document(documents, reference)
    shared = sorted(set(mine) & set(theirs))
    if len(shared) < 2:
        return None
    differences = [mine[key] - theirs[key] for key in shared]
    mean = sum(differences) / len(differences)
    variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
    return [mean, math.sqrt(variance / len(differences)), len(differences)]


def _per_document(documents: dict, plans: list[str]) -> dict:
    keys = set.intersection(*(set(documents.get(plan, {})) for plan in plans))
    return {key: sum(documents[plan][key] for plan in plans) / len(plans) for key in keys}


def _plans(record: dict) -> list[str]:
    return [entry["plan"] for entry in record.get("plans", [record])]
