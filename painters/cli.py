"""The `painters` command line. Every user error prints one line and exits with code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from painters.embedded import DEFAULT_MODEL
from painters.errors import PaintersError
from painters.variants import VARIANTS, build_variant, parse_band, plan_from_spec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run pretrained transformers under altered layer execution, exactly, and measure what it does.",
)

MODEL = typer.Option(
    DEFAULT_MODEL, "--model", "-m", help="Embedded name (smollm2-135m, minilm-l6), folder, .gguf or hub id."
)


@app.command()
def layers(model: str = MODEL) -> None:
    """Describe a model: architecture, number of layers, hidden size, parameters."""
    from painters.models import describe, load_model

    loaded, _ = load_model(model)
    for key, value in describe(loaded).items():
        typer.echo(f"{key:<14}{value}")


@app.command()
def plan(
    name: str = typer.Argument(..., help=f"Variant: {', '.join(VARIANTS)}."),
    num_layers: int = typer.Option(..., "--layers", help="Number of layers L of the model."),
    n: int | None = typer.Option(None, "--n", help="Number of affected middle layers."),
    band: str | None = typer.Option(None, "--band", help="Explicit half-open band A:B instead of --n."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the shuffle variant (default 0)."),
    loops: int | None = typer.Option(None, "--loops", help="Loops of the looped_parallel variant (default 3)."),
    layer: int | None = typer.Option(None, "--layer", help="Layer I of skip_layer and swap."),
) -> None:
    """Print the plan text of a variant of the paper's Figure 1."""
    built = build_variant(
        name, num_layers, n=n, band=parse_band(band) if band is not None else None, seed=seed, loops=loops, layer=layer
    )
    typer.echo(str(built))


@app.command()
def generate(
    prompt: str = typer.Option(..., "--prompt", "-p", help="Text to continue."),
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text (0-11,18-29) or variant:key=value,... (skip:n=6)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens to generate."),
) -> None:
    """Greedy continuation of a prompt under a plan, with the KV cache."""
    from painters.generation import greedy_continuation
    from painters.models import load_model

    loaded, tokenizer = load_model(model)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(greedy_continuation(loaded, tokenizer, chosen, prompt, max_new_tokens))


@app.command(name="eval")
def evaluate_command(
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6)."),
    tasks: str = typer.Option("arc_easy", "--tasks", "-t", help="Comma list of tasks."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first K documents of each task."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts (or prompts) per forward pass, at most."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the results as JSON to this file."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of <task>.jsonl files to use first."),
    harness: str = typer.Option("painters", "--harness", help="painters, or lm-eval for any lm-eval task (hub)."),
) -> None:
    """Score the model under a plan on benchmarks, as lm-eval-harness scores them."""
    from painters.evaluation import evaluate, format_table, summary_json
    from painters.harness import evaluate_with_lm_eval
    from painters.models import load_model
    from painters.tasks import get_task

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    _check_eval_options(harness, names, limit, data_dir)
    if harness == "painters":
        names = [get_task(name).name for name in names]  # fail before loading the model
    loaded, tokenizer = load_model(model)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    if harness == "lm-eval":
        result = evaluate_with_lm_eval(loaded, tokenizer, chosen, names, limit=limit, batch_size=batch_size)
    else:
        result = evaluate(loaded, tokenizer, chosen, names, limit=limit, batch_size=batch_size, data_dir=data_dir)
    result["model"] = model
    typer.echo(format_table(result))
    if json_path is not None:
        json_path.write_text(summary_json(result))


def _check_eval_options(harness: str, names: list[str], limit: int | None, data_dir: Path | None) -> None:
    """Reject bad `eval` options before the model loads."""
    if harness not in ("painters", "lm-eval"):
        raise PaintersError(f"unknown harness '{harness}': valid harnesses are painters, lm-eval")
    if not names:
        raise PaintersError("no tasks given: pass --tasks with a comma list, e.g. arc_easy,hellaswag")
    if limit is not None and limit < 1:
        raise PaintersError(f"--limit {limit} is out of range: give a positive number of documents")
    if data_dir is not None and harness == "lm-eval":
        raise PaintersError("--data-dir works with the painters harness only: lm-eval reads its own task data")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2, no traceback."""
    try:
        app()
    except PaintersError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
