"""Scoring a model under a plan on benchmarks: `painters.evaluate` and what `painters eval` prints."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters import gsm8k
from painters.adapters import adapter_for
from painters.data import load_docs
from painters.errors import PaintersError
from painters.execution import apply_plan
from painters.generation import greedy_texts
from painters.metrics import aggregate, choice_scores
from painters.plan import Plan
from painters.scoring import loglikelihoods
from painters.tasks import Task, get_task


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
    adapter = adapter_for(model.config.model_type)
    if adapter.encoder:
        raise PaintersError(f"'{model.config.model_type}' is an encoder: these benchmarks need a decoder model")
    if limit is not None and limit < 1:
        raise PaintersError(f"limit={limit} is out of range: give a positive number of documents")
    chosen = [get_task(name) for name in tasks]
    rows = {task.name: load_docs(task.name, data_dir)[:limit] for task in chosen}
    plan = Plan.full(len(adapter.layer_list(model))) if plan is None else plan
    with apply_plan(model, plan) as handle:
        samples = {task.name: _run(model, tokenizer, task, rows[task.name], batch_size, progress) for task in chosen}
    results = {task.name: _summarise(task, samples[task.name]) for task in chosen}
    return {
        "model": model.config.name_or_path,
        "plan": str(handle.plan),
        "limit": limit,
        "results": results,
        "samples": samples,
    }


def _run(model, tokenizer, task: Task, rows: list[dict], batch_size: int, progress: bool) -> list[dict]:
    if task.kind == "generate":
        return _run_gsm8k(model, tokenizer, rows, batch_size, progress)
    docs = [task.build(row) for row in rows]
    with tqdm(total=sum(len(d.pairs) for d in docs), desc=task.name, unit="pair", disable=not progress) as bar:
        scores = loglikelihoods(model, tokenizer, docs, batch_size, progress=bar.update)
    records = []
    for doc, pairs in zip(docs, scores, strict=True):
        lls = [ll for ll, _ in pairs]
        if task.kind == "multiple_choice":
            metrics = choice_scores(lls, doc.gold, doc.choice_lengths)
            records.append({"lls": lls, "gold": doc.gold, **metrics})
        else:
            records.append({"lls": lls, "perplexity": lls[0], "acc": float(pairs[0][1])})
    return records


def _run_gsm8k(model, tokenizer, rows: list[dict], batch_size: int, progress: bool) -> list[dict]:
    prompts = [gsm8k.prompt(row["question"]) for row in rows]
    with tqdm(total=len(rows), desc="gsm8k", unit="doc", disable=not progress) as bar:
        texts = greedy_texts(model, tokenizer, prompts, gsm8k.MAX_NEW_TOKENS, gsm8k.STOP, batch_size, bar.update)
    records = []
    for row, text in zip(rows, texts, strict=True):
        gold = gsm8k.reference(row["answer"])
        strict, flexible = gsm8k.strict_answer(text), gsm8k.flexible_answer(text)
        records.append({
            "generation": text, "gold": gold, "answer": strict, "answer_flexible": flexible,
            "exact_match": gsm8k.exact_match(strict, gold), "exact_match_flexible": gsm8k.exact_match(flexible, gold),
        })  # fmt: skip
    return records


def _summarise(task: Task, records: list[dict]) -> dict[str, float]:
    summary: dict[str, float] = {}
    metrics = (*task.metrics, "exact_match_flexible") if task.kind == "generate" else task.metrics
    for metric in metrics:
        value, stderr = aggregate(metric, [record[metric] for record in records])
        summary[metric], summary[f"{metric}_stderr"] = value, stderr
    summary["docs"] = len(records)
    return summary


def format_table(evaluation: dict) -> str:
    """The results as an aligned text table: task, metric, value, standard error, documents."""
    lines = [f"plan: {evaluation['plan']}", f"{'task':<16}{'metric':<22}{'value':>10}{'± stderr':>12}{'docs':>7}"]
    for task, summary in evaluation["results"].items():
        for metric, value in summary.items():
            if metric.endswith("_stderr") or not isinstance(value, float):
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
