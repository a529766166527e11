"""Scoring a model under a plan on benchmarks: `painters.evaluate` and what `painters eval` prints."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters import gsm8k
from painters.adapters import adapter_for
from painters.data import load_docs
from painters.errors import PaintersError
from painters.execution import apply_plan, resolve_plan
from painters.generation import greedy_texts
from painters.metrics import aggregate, choice_scores
from painters.plan import Plan
from painters.scoring import plan_loglikelihoods
from painters.tasks import Doc, Task, get_task


def evaluate(
    model: PreTrainedModel,
    tokenizer,
    plan: Plan | str | None,
    tasks: list[str],
    limit: int | None = None,
    batch_size: int = 32,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Scores of `model` under `plan` (None: unmodified) on `tasks`, with lm-eval's metric names.

    Returns `{"model", "plan", "limit", "results": {task: {metric, metric_stderr, ...}},
    "samples": {task: [per-document record]}}`; `limit` takes the first K documents of each split.
    """
    if adapter_for(model.config.model_type).encoder:
        raise PaintersError(f"'{model.config.model_type}' is an encoder: these benchmarks need a decoder model")
    if limit is not None and limit < 1:
        raise PaintersError(f"limit={limit} is out of range: give a positive number of documents")
    chosen = [get_task(name) for name in tasks]
    rows = {task.name: load_docs(task.name, data_dir)[:limit] for task in chosen}
    plan = resolve_plan(model, plan)
    samples = {}
    for task in chosen:
        unit, total = work(task, rows[task.name])
        with tqdm(total=total, desc=task.name, unit=unit, disable=not progress) as bar:
            samples[task.name] = run_task(model, tokenizer, task, rows[task.name], [plan], batch_size, bar.update)[plan]
    return {
        "model": model.config.name_or_path,
        "plan": str(plan),
        "limit": limit,
        "results": {task.name: summarise(task, samples[task.name]) for task in chosen},
        "samples": samples,
    }


def work(task: Task, rows: list[dict]) -> tuple[str, int]:
    """The unit `run_task` reports progress in, and how many of them one plan takes."""
    if task.kind == "generate":
        return "doc", len(rows)
    return "pair", sum(len(task.build(row).pairs) for row in rows)


def run_task(
    model: PreTrainedModel,
    tokenizer,
    task: Task,
    rows: list[dict],
    plans: list[Plan],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> dict[Plan, list[dict]]:
    """Per-document records of `task` under each plan; log-likelihood tasks run the plans' shared steps once."""
    if task.kind == "generate":
        records = {}
        for plan in plans:
            with apply_plan(model, plan):
                records[plan] = _run_gsm8k(model, tokenizer, rows, batch_size, progress)
        return records
    docs = [task.build(row) for row in rows]
    scores = plan_loglikelihoods(model, tokenizer, docs, plans, batch_size, progress=progress)
    return {plan: [_record(task, doc, pairs) for doc, pairs in zip(docs, scores[plan], strict=True)] for plan in scores}


def _record(task: Task, doc: Doc, pairs: list[tuple[float, bool]]) -> dict:
    """One document's scores; `gold_ll` is the log-likelihood of the right answer, a smooth signal of damage."""
    lls = [ll for ll, _ in pairs]
    if task.kind == "multiple_choice":
        metrics = choice_scores(lls, doc.gold, doc.choice_lengths)
        return {"lls": lls, "gold": doc.gold, "gold_ll": lls[doc.gold], "chance": 1 / len(lls), **metrics}
    return {"lls": lls, "perplexity": lls[0], "acc": float(pairs[0][1]), "gold_ll": lls[0], "chance": 0.0}


def _run_gsm8k(
    model, tokenizer, rows: list[dict], batch_size: int, progress: Callable[[int], None] | None
) -> list[dict]:
    prompts = [gsm8k.prompt(row["question"]) for row in rows]
    texts = greedy_texts(model, tokenizer, prompts, gsm8k.MAX_NEW_TOKENS, gsm8k.STOP, batch_size, progress)
    records = []
    for row, text in zip(rows, texts, strict=True):
        gold = gsm8k.reference(row["answer"])
        strict, flexible = gsm8k.strict_answer(text), gsm8k.flexible_answer(text)
        records.append({
            "generation": text, "gold": gold, "answer": strict, "answer_flexible": flexible,
            "exact_match": gsm8k.exact_match(strict, gold), "exact_match_flexible": gsm8k.exact_match(flexible, gold),
        })  # fmt: skip
    return records


def summarise(task: Task, records: list[dict]) -> dict[str, float]:
    """Each metric and its standard error, the chance level of `acc` and the number of documents."""
    summary: dict[str, float] = {}
    metrics = (*task.metrics, "exact_match_flexible") if task.kind == "generate" else (*task.metrics, "gold_ll")
    for metric in metrics:
        value, stderr = aggregate(metric, [record[metric] for record in records])
        summary[metric], summary[f"{metric}_stderr"] = value, stderr
    summary["chance"] = sum(record.get("chance", 0.0) for record in records) / len(records)
    summary["docs"] = len(records)
    return summary


NOT_METRICS = ("chance", "docs")  # summary entries that are not scores


def format_table(evaluation: dict) -> str:
    """The results as an aligned text table: task, metric, value, standard error, documents."""
    lines = [f"plan: {evaluation['plan']}", f"{'task':<16}{'metric':<22}{'value':>10}{'± stderr':>12}{'docs':>7}"]
    for task, summary in evaluation["results"].items():
        for metric, value in summary.items():
            if metric.endswith("_stderr") or metric in NOT_METRICS:
                continue
            stderr = summary.get(f"{metric}_stderr", float("nan"))
            stderr = stderr if isinstance(stderr, float) else float("nan")
            lines.append(f"{task:<16}{metric:<22}{value:>10.4f}{stderr:>12.4f}{summary.get('docs', ''):>7}")
    return "\n".join(lines)


def summary_json(evaluation: dict) -> str:
    """Model, plan, limit and results as strict JSON: an undefined standard error (one document) is null."""
    summary = {key: evaluation[key] for key in ("model", "plan", "limit", "results")}
    summary["results"] = {
        task: {metric: None if isinstance(v, float) and math.isnan(v) else v for metric, v in values.items()}
        for task, values in evaluation["results"].items()
    }
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"
