"""Scoring a model under a plan on benchmarks: `painters.evaluate` and what `painters eval` prints."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for
from painters.core.errors import PaintersError
from painters.core.execution import resolve_plan
from painters.core.plan import Plan
from painters.tasks import gsm8k
from painters.tasks.catalog import Doc, Task, get_task
from painters.tasks.documents import GlueOptions, TaskData, check_kinds, task_data
from painters.tasks.generation import plan_greedy_texts
from painters.tasks.glue import classify
from painters.tasks.metrics import aggregate, choice_scores
from painters.tasks.scoring import Batching, batching, by_doc, plan_batch_scores


def evaluate(
    model: PreTrainedModel,
    tokenizer,
    plan: Plan | str | None,
    tasks: list[str],
    limit: int | None = None,
    batch_size: int = 32,
    data_dir: str | Path | None = None,
    progress: bool = True,
    glue: GlueOptions | None = None,
    max_tokens: int | None = None,
    generate: bool = True,
    exact_attention: bool = False,
) -> dict:
    """Scores of `model` under `plan` (None: unmodified) on `tasks`, with lm-eval's (or GLUE's) metric names.

    A forward pass holds at most `batch_size` contexts and about `max_tokens` tokens (default: from the
    model's device). Without `generate`, GSM8K scores only its reference solution (`gold_ll`); with
    `exact_attention`, it generates through the model's own attention (`greedy_texts` says what differs).

    Returns `{"model", "plan", "limit", "results": {task: {metric, metric_stderr, ...}},
    "samples": {task: [per-document record, or per-fold record for GLUE]}}`, and for GLUE tasks the
    unnormalised `average` of their scores; `limit` takes the first K documents of each split.
    """
    if limit is not None and limit < 1:
        raise PaintersError(f"limit={limit} is out of range: give a positive number of documents")
    check_fit(model, [get_task(name) for name in tasks])
    data = [task_data(name, limit, data_dir, glue, generate) for name in tasks]
    plan = resolve_plan(model, plan)
    samples = {}
    for item in data:
        unit, total = work(item)
        with tqdm(total=total, desc=item.task.name, unit=unit, disable=not progress) as bar:
            runs = run_task(
                model, tokenizer, item, [plan], batch_size, bar.update, glue, max_tokens, exact_attention=exact_attention
            )  # fmt: skip
            samples[item.task.name] = runs[plan]
    results = {item.task.name: summarise(item.task, samples[item.task.name]) for item in data}
    evaluation = {"model": model.config.name_or_path, "plan": str(plan), "limit": limit, "results": results}
    if all(item.task.kind == "classification" for item in data):
        evaluation["average"] = sum(glue_score(summary) for summary in results.values()) / len(results)
    return {**evaluation, "samples": samples}


def check_fit(model: PreTrainedModel, tasks: list[Task]) -> None:
    """GLUE tasks need an encoder (BERT-style) model; the other benchmarks need a decoder."""
    model_type = model.config.model_type
    check_kinds(adapter_for(model_type).encoder, f"'{model_type}'", tasks)


def glue_score(summary: dict) -> float:
    """A GLUE task's score: accuracy, or the mean of accuracy and F1 where GLUE reports both (MRPC)."""
    return (summary["acc"] + summary["f1"]) / 2 if "f1" in summary else summary["acc"]


def work(data: TaskData) -> tuple[str, int]:
    """The unit `run_task` reports progress in, and how many of them one plan takes."""
    if data.task.kind == "classification":
        return "doc", len(data.rows)
    if data.task.kind == "generate":  # its solution's log-likelihood, then (maybe) its generation
        return "doc", len(data.rows) * (1 + data.generate)
    return "pair", sum(len(data.task.build(row).pairs) for row in data.rows)


def run_task(
    model: PreTrainedModel,
    tokenizer,
    data: TaskData,
    plans: list[Plan],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    glue: GlueOptions | None = None,
    max_tokens: int | None = None,
    memo_bytes: int | None = None,
    exact_attention: bool = False,
) -> dict[Plan, list[dict]]:
    """Records of a task under each plan: every part of it (`run_part`) over all its indices, assembled.

    `max_tokens` and `memo_bytes` bound a forward pass and the shared steps kept (`plan_batch_scores`).
    """
    batched = task_batching(model, tokenizer, data, batch_size, max_tokens)
    pieces: dict[Plan, dict[str, dict]] = {plan: {} for plan in plans}
    for part, items in part_items(data, batched, batch_size).items():
        indices = range(len(items))
        found = run_part(
            model, tokenizer, data, batched, plans, part, indices, batch_size, glue, memo_bytes, progress, exact_attention
        )  # fmt: skip
        for plan in plans:
            pieces[plan][part] = found[plan]
    return {plan: task_records(data, pieces[plan]) for plan in plans}


def task_batching(
    model: PreTrainedModel, tokenizer, data: TaskData, batch_size: int, max_tokens: int | None
) -> Batching | None:
    """How a log-likelihood task's pairs are batched (None for GLUE, which classifies its own way)."""
    if data.task.kind == "classification":
        return None
    docs = [data.task.build(row) for row in data.rows]
    return batching(model, tokenizer, docs, batch_size, max_tokens, shared_prefix=data.task.few_shot)


GENERATION_CHUNK = 4  # batches of GSM8K documents one generation index holds (see `part_items`)


def part_items(data: TaskData, batched: Batching | None, batch_size: int) -> dict[str, list[int]]:
    """A task's parts, each a list of indices that can run apart from the others (in a sweep's units of
    work), with the items of `work` each index holds: the batches of its pairs' scores; GSM8K's documents
    to generate from, in fixed chunks of GENERATION_CHUNK batches (a finished row is refilled from its own
    chunk only, so its texts never depend on which other chunks ran with it); GLUE's whole classification."""
    if batched is None:
        return {"folds": [len(data.rows)]}
    parts = {"scores": [sum(len(group.targets) for group in batch) for batch in batched.batches]}
    if data.task.kind == "generate" and data.generate:
        chunk = GENERATION_CHUNK * batch_size
        parts["generations"] = [len(data.rows[start : start + chunk]) for start in range(0, len(data.rows), chunk)]
    return parts


def run_part(
    model: PreTrainedModel,
    tokenizer,
    data: TaskData,
    batched: Batching | None,
    plans: list[Plan],
    part: str,
    indices: Iterable[int],
    batch_size: int = 32,
    glue: GlueOptions | None = None,
    memo_bytes: int | None = None,
    progress: Callable[[int], None] | None = None,
    exact_attention: bool = False,
) -> dict[Plan, dict[int, object]]:
    """Each plan's results at `indices` of one part of a task (`part_items`): JSON-ready values that
    `task_records` assembles, however the indices were split between runs. `exact_attention`: see `greedy_texts`."""
    if part == "scores":
        return plan_batch_scores(model, batched, plans, indices, progress, memo_bytes)
    if part == "generations":
        chunk, texts = GENERATION_CHUNK * batch_size, {plan: {} for plan in plans}
        for index in indices:
            prompts = [gsm8k.prompt(row["question"]) for row in data.rows[index * chunk : (index + 1) * chunk]]
            found = plan_greedy_texts(
                model, tokenizer, prompts, plans, gsm8k.MAX_NEW_TOKENS, gsm8k.STOP, batch_size, progress, memo_bytes,
                exact_attention,
            )  # fmt: skip
            for plan in plans:
                texts[plan][index] = found[plan]
        return texts
    options, found = (glue or GlueOptions()).check(), {}
    for plan in plans:
        found[plan] = {0: classify(model, tokenizer, data.task, data.rows, plan, options, data.train_rows)}
        if progress is not None:
            progress(len(data.rows))
    return found


def task_records(data: TaskData, pieces: dict[str, dict[int, object]]) -> list[dict]:
    """Per-document records (per-fold for GLUE) from every index of every part of a task under one plan."""
    task = data.task
    if task.kind == "classification":
        return pieces["folds"][0]
    docs = [task.build(row) for row in data.rows]
    scores = pieces["scores"]
    lengths = {(doc, pair): tokens for found in scores.values() for doc, pair, _, _, tokens in found}
    if len(lengths) != sum(len(doc.pairs) for doc in docs):
        raise PaintersError(f"{task.name}: the scores of {len(lengths)} pairs cannot make its {len(docs)} documents")
    chunks = pieces.get("generations", {})
    generations = [text for index in sorted(chunks) for text in chunks[index]]
    assembled = []
    for d, (doc, pairs) in enumerate(zip(docs, by_doc(docs, scores), strict=True)):
        record = _record(task, doc, pairs, [lengths[d, p] for p in range(len(doc.pairs))])
        record["gold_ll_per_token"] = record["gold_ll"] / lengths[d, doc.gold]  # per token of the gold answer
        if generations:
            record.update(_answers(data.rows[d], generations[d]))
        assembled.append(record)
    return assembled


def _record(task: Task, doc: Doc, pairs: list[tuple[float, bool]], tokens: list[int]) -> dict:
    """One document's scores; `gold_ll` is the log-likelihood of the right answer, a smooth signal of damage.
    `tokens`: each continuation's length in tokens."""
    lls = [ll for ll, _ in pairs]
    if task.kind == "generate":  # the reference solution's log-likelihood; generation adds the rest
        return {"lls": lls, "gold_ll": lls[0]}
    if task.kind == "multiple_choice":
        metrics = choice_scores(task.metrics, lls, doc.gold, doc.choice_lengths, tokens)
        return {"lls": lls, "gold": doc.gold, "gold_ll": lls[doc.gold], "chance": 1 / len(lls), **metrics}
    return {"lls": lls, "perplexity": lls[0], "acc": float(pairs[0][1]), "gold_ll": lls[0], "chance": 0.0}


def _answers(row: dict, text: str) -> dict:
    gold = gsm8k.reference(row["answer"])
    strict, flexible = gsm8k.strict_answer(text), gsm8k.flexible_answer(text)
    return {
        "generation": text, "gold": gold, "answer": strict, "answer_flexible": flexible,
        "exact_match": gsm8k.exact_match(strict, gold), "exact_match_flexible": gsm8k.exact_match(flexible, gold),
    }  # fmt: skip


GOLD_METRICS = ("gold_ll", "gold_ll_per_token")  # the gold answer's log-likelihood, in total and per token


def summarise(task: Task, records: list[dict]) -> dict[str, float]:
    """Each metric and its standard error, the chance level of `acc` and the number of documents."""
    summary: dict[str, float] = {}
    extra = {"generate": ("exact_match_flexible", *GOLD_METRICS), "classification": ()}
    metrics = [metric for metric in (*task.metrics, *extra.get(task.kind, GOLD_METRICS)) if metric in records[0]]
    for metric in metrics:
        value, stderr = aggregate(metric, [record[metric] for record in records])
        summary[metric], summary[f"{metric}_stderr"] = value, stderr
    summary["chance"] = sum(record.get("chance", 0.0) for record in records) / len(records)
    summary["docs"] = sum(record.get("items", 1) for record in records)  # GLUE records are folds
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
    if "average" in evaluation:
        lines.append(f"{'average':<16}{'glue score':<22}{evaluation['average']:>10.4f}")
    return "\n".join(lines)


def summary_json(evaluation: dict) -> str:
    """Model, plan, limit and results as strict JSON: an undefined standard error (one document) is null."""
    summary = {key: evaluation[key] for key in ("model", "plan", "limit", "results", "average") if key in evaluation}
    summary["results"] = {
        task: {metric: None if isinstance(v, float) and math.isnan(v) else v for metric, v in values.items()}
        for task, values in evaluation["results"].items()
    }
    return json.dumps(summary, indent=2, allow_nan=False) + "\n"
