"""`painters eval`: the model under a plan scored on benchmarks, as lm-eval scores them (GLUE for encoders)."""

from __future__ import annotations

from pathlib import Path

import typer

from painters import checks
from painters.checks import comma_list, local_model, model_source, output_file
from painters.cli.options import (
    DATA_DIR,
    EXACT_ATTENTION,
    MAX_BATCH_TOKENS,
    MODEL,
    POOLING,
    PROTOCOL,
    SKIP_GENERATION,
    TASKS_NAMES,
    glue_options,
    load_planned,
    path_option,
    placed,
)
from painters.models.placement import Placement
from painters.tasks.catalog import get_task
from painters.tasks.documents import GlueOptions


@placed()
def evaluate(
    ctx: typer.Context,
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6)."),
    tasks: str = typer.Option("arc_easy", *TASKS_NAMES, help="Comma list of tasks."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first K documents of each task."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts (or prompts) per forward pass, at most."),
    json_path: Path | None = path_option(None, "--json", help="Also write the results as JSON to this file."),
    data_dir: Path | None = DATA_DIR,
    harness: str = typer.Option("painters", "--harness", help="painters, or lm-eval for any lm-eval task (hub)."),
    protocol: str = PROTOCOL,
    pooling: str | None = POOLING,
    folds: int = typer.Option(5, "--folds", help="GLUE: cross-validation folds over the validation split."),
    seed: int = typer.Option(0, "--seed", help="GLUE: seed of the folds, the probe and fine-tuning."),
    learning_rate: float = typer.Option(5e-5, "--learning-rate", help="GLUE finetune: AdamW learning rate."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="GLUE finetune: epochs."),
    train_batch_size: int = typer.Option(16, "--train-batch-size", min=1, help="GLUE finetune: batch size."),
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    skip_generation: bool = SKIP_GENERATION,
    exact_attention: bool = EXACT_ATTENTION,
    *,
    placement: Placement,
) -> None:
    """Score the model under a plan on benchmarks, as lm-eval-harness (or GLUE, for encoders) scores them."""
    names = comma_list(tasks, "--tasks", "arc_easy,hellaswag")
    checks.eval_options(harness, limit, data_dir)
    output_file(json_path, "--json", (local_model(model), data_dir))
    facts = model_source(model)
    glue = None
    if harness == "painters":
        names = [get_task(name).name for name in names]
        options = GlueOptions(protocol, pooling, folds, seed, learning_rate, epochs, train_batch_size)
        glue = glue_options(ctx, names, options)
        checks.task_data(names, limit, data_dir, glue, facts)
        checks.generation_given(skip_generation, names, exact_attention)
    early = checks.plan_before_load(plan, facts)
    loaded, tokenizer, chosen = load_planned(model, placement, plan, early)
    scoring = {"limit": limit, "batch_size": batch_size, "data_dir": data_dir, "glue": glue,
               "max_tokens": max_batch_tokens, "generate": not skip_generation, "exact_attention": exact_attention}  # fmt: skip
    result = _scores(loaded, tokenizer, chosen, names, harness, scoring)
    result["model"] = model
    _show(result, json_path)


def _scores(loaded, tokenizer, chosen, names: list[str], harness: str, scoring: dict) -> dict:
    """The evaluation by the chosen harness (imported only now: the checks above run without torch);
    `scoring`: `painters.evaluate`'s options (lm-eval takes the limit and batch size)."""
    from painters.tasks.evaluation import evaluate as run_evaluation
    from painters.tasks.harness import evaluate_with_lm_eval

    if harness == "lm-eval":
        limit, batch_size = scoring["limit"], scoring["batch_size"]
        return evaluate_with_lm_eval(loaded, tokenizer, chosen, names, limit=limit, batch_size=batch_size)
    return run_evaluation(loaded, tokenizer, chosen, names, **scoring)


def _show(result: dict, json_path: Path | None) -> None:
    """Print the table, and write the JSON when asked."""
    from painters.tasks.evaluation import format_table, summary_json

    typer.echo(format_table(result))
    if json_path is not None:
        json_path.write_text(summary_json(result))
