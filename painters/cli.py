"""The `painters` command line. Every user error prints one line and exits with code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from painters.embedded import DEFAULT_MODEL
from painters.errors import PaintersError
from painters.plan import Plan
from painters.tasks import get_task
from painters.variants import VARIANTS, build_variant, is_variant_spec, parse_band, plan_from_spec

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


@app.command(name="export")
def export_command(
    out: Path = typer.Option(..., "--out", help="Folder for the checkpoint (hf), or the YAML file (mergekit)."),
    model: str = MODEL,
    plan: str = typer.Option(..., "--plan", help="Plan text or variant:key=value,... (skip:n=6); no parallel blocks."),
    fmt: str = typer.Option("hf", "--format", help="hf (a Hugging Face folder) or mergekit (a passthrough YAML)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing, non-empty --out."),
) -> None:
    """Write the model under a plan as a standard checkpoint any tool loads, or as mergekit's recipe for it."""
    from painters.export import check_destination, check_exportable, export
    from painters.models import load_model

    check_destination(out, fmt, force)
    if not is_variant_spec(plan):
        check_exportable(Plan.parse(plan))  # fail before loading the model
    loaded, tokenizer = load_model(model)
    chosen = check_exportable(plan_from_spec(plan, loaded.config.num_hidden_layers))
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(export(loaded, tokenizer, chosen, out, fmt, force))
    if fmt == "mergekit":
        typer.echo(f"build it with: mergekit-yaml {out} OUTPUT_FOLDER", err=True)


@app.command(name="bench")
def bench_command(
    plans: str = typer.Option(
        ..., "--plans", help="Plans separated by ';' (plan text has commas), e.g. 'skip:n=6;0-11,15x6,18-29'."
    ),
    model: str = MODEL,
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per prefill, and the batch of the second decode."),
    prompt_tokens: int = typer.Option(128, "--prompt-tokens", help="Tokens per prompt."),
    new_tokens: int = typer.Option(32, "--new-tokens", help="Tokens decoded through the KV cache (0: no decode)."),
    rounds: int = typer.Option(5, "--rounds", help="Measured rounds, after one warm-up round."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the rows as JSON to this file."),
) -> None:
    """Speed and peak memory of plans against the full model: prefill tokens/s, decode ms/token, peak MiB."""
    from painters.bench import Shape, bench, format_table, summary_json
    from painters.meter import Meter
    from painters.models import load_model

    shape = Shape(batch_size, prompt_tokens, new_tokens).check(rounds)
    specs = [spec.strip() for spec in plans.split(";") if spec.strip()]
    if not specs:
        raise PaintersError("no plans given: pass --plans with plans separated by ';', e.g. 'skip:n=6;0-11,18-29'")
    for spec in specs:
        if not is_variant_spec(spec):
            Plan.parse(spec)  # fail before loading the model
    loaded, _ = load_model(model)
    chosen = [plan_from_spec(spec, loaded.config.num_hidden_layers) for spec in specs]
    meter = Meter(loaded.device)
    rows = bench(loaded, chosen, shape, rounds, meter, progress=True)
    typer.echo(format_table(rows, shape, meter.describe()))
    if json_path is not None:
        json_path.write_text(summary_json(rows, model, meter.describe(), shape, rounds))


PROTOCOL = typer.Option("probe-under-plan", "--protocol", help="GLUE: probe-under-plan, probe-from-full or finetune.")
POOLING = typer.Option(None, "--pooling", help="GLUE: mean or cls (default: as the model is meant to be pooled).")


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
    protocol: str = PROTOCOL,
    pooling: str | None = POOLING,
    folds: int = typer.Option(5, "--folds", help="GLUE: cross-validation folds over the validation split."),
    seed: int = typer.Option(0, "--seed", help="GLUE: seed of the folds, the probe and fine-tuning."),
    learning_rate: float = typer.Option(5e-5, "--learning-rate", help="GLUE finetune: AdamW learning rate."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="GLUE finetune: epochs."),
    train_batch_size: int = typer.Option(16, "--train-batch-size", min=1, help="GLUE finetune: batch size."),
) -> None:
    """Score the model under a plan on benchmarks, as lm-eval-harness (or GLUE, for encoders) scores them."""
    from painters.evaluation import evaluate, format_table, summary_json
    from painters.glue import GlueOptions
    from painters.harness import evaluate_with_lm_eval
    from painters.models import load_model
    from painters.tasks import get_task

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    _check_eval_options(harness, names, limit, data_dir)
    glue = GlueOptions(protocol, pooling, folds, seed, learning_rate, epochs, train_batch_size).check()
    if harness == "painters":
        names = [get_task(name).name for name in names]  # fail before loading the model
    loaded, tokenizer = load_model(model)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    if harness == "lm-eval":
        result = evaluate_with_lm_eval(loaded, tokenizer, chosen, names, limit=limit, batch_size=batch_size)
    else:
        result = evaluate(loaded, tokenizer, chosen, names, limit, batch_size, data_dir, glue=glue)
    result["model"] = model
    typer.echo(format_table(result))
    if json_path is not None:
        json_path.write_text(summary_json(result))


TEXT_TASK = typer.Option(
    "lambada_openai", "--task", help="Task whose documents (context and gold answer) are the text."
)
TEXT_FILE = typer.Option(None, "--text-file", help="Read this file instead: one document per line.")
TEXT_LIMIT = typer.Option(256, "--limit", help="Documents to read.")
TEXT_BATCH = typer.Option(16, "--batch-size", min=1, help="Documents per forward pass.")
MAX_LENGTH = typer.Option(512, "--max-length", min=1, help="Tokens read from each document, at most.")
DATA_DIR = typer.Option(None, "--data-dir", help="Folder of <task>.jsonl files to use first.")


@app.command(name="similarity")
def similarity_command(
    out: Path = typer.Option(..., "--out", help="Folder for cosine, cka and importance .csv/.png."),
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6)."),
    task: str = TEXT_TASK,
    text_file: Path | None = TEXT_FILE,
    limit: int = TEXT_LIMIT,
    batch_size: int = TEXT_BATCH,
    max_length: int = MAX_LENGTH,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Compare the hidden states of every two steps (cosine, CKA) and rate each layer's importance."""
    from painters.layer_importance import importance_table
    from painters.layer_similarity import similarity
    from painters.similarity_files import write_similarity

    texts, loaded, tokenizer = _load_for_states(model, task, text_file, limit, data_dir)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    result = similarity(loaded, tokenizer, texts, chosen, batch_size=batch_size, max_length=max_length, progress=True)
    typer.echo(f"plan: {result.plan} · {len(texts)} documents, {result.tokens} tokens", err=True)
    for path in write_similarity(result, importance_table(result), out, model):
        typer.echo(path)


@app.command()
def suggest(
    n: int = typer.Option(..., "--n", help="Number of layers to drop."),
    metric: str = typer.Option("block_influence", "--metric", help="block_influence, or angular (best block)."),
    model: str = MODEL,
    task: str = TEXT_TASK,
    text_file: Path | None = TEXT_FILE,
    limit: int = TEXT_LIMIT,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Print the plan that drops the N layers a metric rates least important, ready for --plan.

    The layers are measured as `painters similarity` measures them, with its default batch and length.
    """
    from painters.layer_importance import check_suggestion, importance_table
    from painters.layer_importance import suggest as suggest_plan
    from painters.layer_similarity import similarity

    check_suggestion(metric, n)
    texts, loaded, tokenizer = _load_for_states(model, task, text_file, limit, data_dir)
    full = Plan.full(loaded.config.num_hidden_layers)
    check_suggestion(metric, n, len(full.units))
    result = similarity(loaded, tokenizer, texts, full, progress=True)
    typer.echo(str(suggest_plan(importance_table(result), full, n, metric)))


DB = typer.Option(..., "--db", help="The results store (SQLite): created if missing, resumed if present.")


@app.command(name="sweep")
def sweep_command(
    db: Path = DB,
    model: str = MODEL,
    variants: str = typer.Option(
        "skip,middle_repeat,reverse,shuffle,parallel,looped_parallel", "--variants", help="Comma list of variants."
    ),
    n: str = typer.Option("2:28:2", "--n", help="Affected layers: comma list, or start:stop:step (stop included)."),
    tasks: str = typer.Option("arc_easy,hellaswag", "--tasks", "-t", help="Comma list of tasks."),
    seeds: int = typer.Option(1, "--seeds", help="Shuffle seeds 0..S-1."),
    loops: str = typer.Option("3", "--loops", help="Loop counts of looped_parallel: comma list or start:stop:step."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first K documents of each task."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts per forward pass, at most."),
    data_dir: Path | None = DATA_DIR,
    protocol: str = PROTOCOL,
    pooling: str | None = POOLING,
) -> None:
    """Evaluate every plan of a grid of variants on tasks into a results store; rerun to resume."""
    from painters.glue import GlueOptions
    from painters.grid import grid, parse_values, parse_variants
    from painters.models import load_model
    from painters.store import Store
    from painters.sweep import sweep

    names, ns, loop_values = parse_variants(variants), parse_values(n, "--n"), parse_values(loops, "--loops")
    task_names = [get_task(name.strip()).name for name in tasks.split(",") if name.strip()]
    if limit is not None and limit < 1:
        raise PaintersError(f"--limit {limit} is out of range: give a positive number of documents")
    with Store(db) as store:
        loaded, tokenizer = load_model(model)
        points = grid(loaded.config.num_hidden_layers, names, ns, seeds, loop_values)
        glue = GlueOptions(protocol, pooling).check()
        computed = sweep(loaded, tokenizer, model, points, task_names, store, limit, batch_size, data_dir, glue=glue)
    typer.echo(f"{computed} cells computed; results in {db}", err=True)


@app.command()
def results(
    db: Path = typer.Option(..., "--db", help="The results store."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the table as CSV to this file instead."),
) -> None:
    """The stored results, one row per (plan, task, metric)."""
    from painters.results import results_frame
    from painters.store import open_existing

    with open_existing(db) as store:
        frame = results_frame(store)
    if csv is not None:
        frame.to_csv(csv, index=False)
    else:
        typer.echo(frame.astype(object).where(frame.notna(), "").to_string(index=False))  # unused fields blank


@app.command(name="report")
def report_command(
    db: Path = typer.Option(..., "--db", help="The results store."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG figures and index.html."),
) -> None:
    """The paper's figures from a results store: PNGs and one self-contained index.html."""
    from painters.report import report
    from painters.store import open_existing

    with open_existing(db) as store:
        typer.echo(report(store, out))


@app.command()
def paper(
    model: str = MODEL,
    out: Path | None = typer.Option(None, "--out", help="Folder for results.db and the report (paper-<model>)."),
    full: bool = typer.Option(False, "--full", help="The paper's whole grid, every document (for a GPU)."),
    limit: int | None = typer.Option(None, "--limit", help="Documents per task (default: 24, or all with --full)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts per forward pass, at most."),
) -> None:
    """The paper's study as one job: similarity, every variant, looped parallel, single layers, then the report."""
    from painters.paper import run_paper

    if limit is not None and limit < 1:
        raise PaintersError(f"--limit {limit} is out of range: give a positive number of documents")
    folder = out if out is not None else Path(f"paper-{Path(model).name}")
    typer.echo(run_paper(model, folder, full, limit, batch_size))


def _load_for_states(model: str, task: str, text_file: Path | None, limit: int, data_dir: Path | None):
    """The text (read first, so bad text options fail before the model loads), the model and its tokenizer."""
    from painters.models import load_model
    from painters.texts import load_texts

    texts = load_texts(None if text_file else task, text_file, limit, data_dir)
    return (texts, *load_model(model))


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


if __name__ == "__main__":
    main()
