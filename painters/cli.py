"""The `painters` command line. Every user error prints one line and exits with code 2."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import typer

from painters import checks
from painters.checks import ModelFacts, comma_list, model_source, output_file, output_folder
from painters.devices import Placement
from painters.embedded import DEFAULT_MODEL
from painters.errors import PaintersError
from painters.plan import Plan
from painters.tasks import get_task
from painters.variants import VARIANTS, build_variant, is_variant_spec, parse_band, plan_from_spec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no boxes, no <bool> metavars on flags
    help="Run pretrained transformers under altered layer execution, exactly, and measure what it does.",
)

MODEL = typer.Option(
    DEFAULT_MODEL, "--model", "-m", help="Embedded name (smollm2-135m, minilm-l6), folder, .gguf or hub id."
)
DEVICE = typer.Option("auto", "--device", help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps.")
DTYPE = typer.Option(
    "auto", "--dtype", help="auto (bfloat16 on a GPU that has it, else float32), float32, bfloat16, float16."
)
DEVICE_MAP = typer.Option(
    None, "--device-map", help="auto, balanced or sequential: accelerate spreads the model over GPUs, CPU and disk."
)
ATTN = typer.Option(None, "--attn", help="Attention kernel: sdpa, eager or flash_attention_2 (default: transformers').")
MAX_BATCH_TOKENS = typer.Option(
    None, "--max-batch-tokens", min=1, help="Tokens per forward pass, padding included (default: from the device)."
)
SKIP_GENERATION = typer.Option(
    False,
    "--skip-generation",
    help="GSM8K: score only the reference solution's log-likelihood (gold_ll), no generation.",
)
MEMO_BUDGET = typer.Option(
    None, "--memo-budget", min=0.0, help="GiB the steps shared by plans may keep (default: 1/4 of the free memory)."
)


PLACEMENT_OPTIONS = (("device", str, DEVICE), ("dtype", str, DTYPE), ("device_map", str | None, DEVICE_MAP),
                     ("attn", str | None, ATTN))  # fmt: skip


def placed(attn: bool = True) -> Callable[[Callable], Callable]:
    """Give a command the placement options (--device, --dtype, --device-map and, with `attn`, --attn),
    declared once here. The command takes a `placement` argument instead: those options as a `Placement`,
    checked before the command runs, so a bad device fails before anything else is read or loaded."""

    def wrap(command: Callable) -> Callable:
        options = PLACEMENT_OPTIONS if attn else PLACEMENT_OPTIONS[:3]
        signature = inspect.signature(command)
        assert "placement" in signature.parameters, f"{command.__name__} takes no placement"

        @functools.wraps(command)
        def run(**kwargs):
            placement = Placement(**{name: kwargs.pop(name) for name, _, _ in options}).check()
            return command(placement=placement, **kwargs)

        own = [p for p in signature.parameters.values() if p.name != "placement"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                 for name, kind, default in options]  # fmt: skip
        run.__signature__ = signature.replace(parameters=[*own, *added])
        return run

    return wrap


def _load(model: str, placement: Placement):
    """`load_model` with the command's placement: (model, tokenizer)."""
    from painters.models import load_model

    return load_model(model, **asdict(placement))


@app.command()
@placed(attn=False)
def layers(
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="The plan whose cost to estimate (plan text or variant:k=v)."),
    *,
    placement: Placement,
) -> None:
    """Describe a model (architecture, layers, hidden size, parameters) and what a plan will cost on the device.

    Only the model's config is read: its weights are neither loaded nor allocated.
    """
    from painters.models import describe, empty_model

    facts = model_source(model)
    if facts is not None:
        _check_plan(plan, facts)
    empty = empty_model(model)
    lines = {**describe(empty), **_cost(empty, plan_from_spec(plan, empty.config.num_hidden_layers), placement)}
    for key, value in lines.items():
        typer.echo(f"{key:<14}{value}")


def _cost(empty, chosen: Plan, placement: Placement) -> dict[str, str]:
    from painters.costs import plan_cost

    return plan_cost(empty, chosen, placement)


@app.command()
@placed(attn=False)
def plan(
    name: str = typer.Argument(..., help=f"Variant: {', '.join(VARIANTS)}."),
    num_layers: int | None = typer.Option(None, "--layers", help="Number of layers L of the model (or --model)."),
    n: int | None = typer.Option(None, "--n", help="Number of affected middle layers."),
    band: str | None = typer.Option(None, "--band", help="Explicit half-open band A:B instead of --n."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the shuffle variant (default 0)."),
    loops: int | None = typer.Option(None, "--loops", help="Loops of the looped_parallel variant (default 3)."),
    layer: int | None = typer.Option(None, "--layer", help="Layer I of skip_layer and swap."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Take L from this model and print the plan's cost on the device to stderr."
    ),
    *,
    placement: Placement,
) -> None:
    """Print the plan text of a variant of the paper's Figure 1 (with --model, also what it will cost)."""
    if (num_layers is None) == (model is None):
        raise PaintersError("give one of --layers L (the number of layers) and --model M (to read it from the model)")
    empty = None
    if model is not None:
        from painters.models import empty_model

        empty = empty_model(model)
        num_layers = empty.config.num_hidden_layers
    built = build_variant(
        name, num_layers, n=n, band=parse_band(band) if band is not None else None, seed=seed, loops=loops, layer=layer
    )
    typer.echo(str(built))
    if empty is not None:
        for key, value in _cost(empty, built, placement).items():
            typer.echo(f"{key:<14}{value}", err=True)


@app.command()
@placed()
def generate(
    prompt: str = typer.Option(..., "--prompt", "-p", help="Text to continue."),
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text (0-11,18-29) or variant:key=value,... (skip:n=6)."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens to generate (within the context)."),
    *,
    placement: Placement,
) -> None:
    """Greedy continuation of a prompt under a plan, with the KV cache."""
    from painters.generation import greedy_continuation

    if not prompt:
        raise PaintersError("empty --prompt: give the text to continue")
    facts = model_source(model)
    if facts is not None:
        _check_decoder(facts, "generation")
        _check_plan(plan, facts)
        _check_new_tokens(max_new_tokens, facts.context_length)
    loaded, tokenizer = _load(model, placement)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    text = greedy_continuation(loaded, tokenizer, chosen, prompt, max_new_tokens)
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(text)


@app.command(name="export")
def export_command(
    out: Path = typer.Option(..., "--out", help="Folder for the checkpoint (hf), or the YAML file (mergekit)."),
    model: str = MODEL,
    plan: str = typer.Option(..., "--plan", help="Plan text or variant:key=value,... (skip:n=6); no parallel blocks."),
    fmt: str = typer.Option("hf", "--format", help="hf (a Hugging Face folder) or mergekit (a passthrough YAML)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing, non-empty --out."),
    dtype: str = DTYPE,
) -> None:
    """Write the model under a plan as a standard checkpoint any tool loads, or as mergekit's recipe for it."""
    from painters.export import check_destination, check_exportable, export

    check_destination(out, fmt, force)
    placement = Placement("cpu", dtype).check()  # the weights are written, not run: host memory is enough
    if not is_variant_spec(plan):
        check_exportable(Plan.parse(plan))  # fail before loading the model
    loaded, tokenizer = _load(model, placement)
    chosen = check_exportable(plan_from_spec(plan, loaded.config.num_hidden_layers))
    typer.echo(f"plan: {chosen}", err=True)
    typer.echo(export(loaded, tokenizer, chosen, out, fmt, force))
    if fmt == "mergekit":
        typer.echo(f"build it with: mergekit-yaml {out} OUTPUT_FOLDER", err=True)


@app.command(name="bench")
@placed()
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
    *,
    placement: Placement,
) -> None:
    """Speed and peak memory of plans against the full model: prefill tokens/s, decode ms/token, peak MiB."""
    from painters.bench import Shape, bench, format_table, summary_json
    from painters.devices import Meter, input_device

    shape = Shape(batch_size, prompt_tokens, new_tokens).check(rounds)
    specs = [spec.strip() for spec in plans.split(";") if spec.strip()]
    if not specs:
        raise PaintersError("no plans given: pass --plans with plans separated by ';', e.g. 'skip:n=6;0-11,18-29'")
    for spec in specs:
        if not is_variant_spec(spec):
            Plan.parse(spec)  # fail before loading the model
    output_file(json_path, "--json")
    loaded, _ = _load(model, placement)
    chosen = [plan_from_spec(spec, loaded.config.num_hidden_layers) for spec in specs]
    meter = Meter(input_device(loaded))
    rows = bench(loaded, chosen, shape, rounds, meter, progress=True)
    typer.echo(format_table(rows, shape, meter.describe()))
    if json_path is not None:
        json_path.write_text(summary_json(rows, model, meter.describe(), shape, rounds))


PROTOCOL = typer.Option("probe-under-plan", "--protocol", help="GLUE: probe-under-plan, probe-from-full or finetune.")
POOLING = typer.Option(None, "--pooling", help="GLUE: mean or cls (default: as the model is meant to be pooled).")


TASKS_NAMES = ("--tasks", "--task", "-t")


@app.command(name="eval")
@placed()
def evaluate_command(
    ctx: typer.Context,
    model: str = MODEL,
    plan: str = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6)."),
    tasks: str = typer.Option("arc_easy", *TASKS_NAMES, help="Comma list of tasks."),
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
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    skip_generation: bool = SKIP_GENERATION,
    *,
    placement: Placement,
) -> None:
    """Score the model under a plan on benchmarks, as lm-eval-harness (or GLUE, for encoders) scores them."""
    from painters.evaluation import evaluate, format_table, summary_json
    from painters.glue import GlueOptions
    from painters.harness import evaluate_with_lm_eval

    names = comma_list(tasks, "--tasks", "arc_easy,hellaswag")
    _check_eval_options(harness, names, limit, data_dir)
    output_file(json_path, "--json")
    facts = model_source(model)
    glue = None
    if harness == "painters":
        names = [get_task(name).name for name in names]
        options = GlueOptions(protocol, pooling, folds, seed, learning_rate, epochs, train_batch_size)
        glue = _glue_options(ctx, names, options)
        _check_data(names, limit, data_dir, glue, facts)
    if facts is not None:
        _check_plan(plan, facts)
    loaded, tokenizer = _load(model, placement)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    if harness == "lm-eval":
        result = evaluate_with_lm_eval(loaded, tokenizer, chosen, names, limit=limit, batch_size=batch_size)
    else:
        result = evaluate(
            loaded, tokenizer, chosen, names, limit, batch_size, data_dir, glue=glue, max_tokens=max_batch_tokens,
            generate=not skip_generation,
        )  # fmt: skip
    result["model"] = model
    typer.echo(format_table(result))
    if json_path is not None:
        json_path.write_text(summary_json(result))


TEXT_TASK = typer.Option(
    None, "--task", "--tasks", help="Task whose documents (context and gold answer) are the text [lambada_openai]."
)
TEXT_FILE = typer.Option(None, "--text-file", help="Read this file instead: one document per line.")
TEXT_LIMIT = typer.Option(256, "--limit", help="Documents to read.")
TEXT_BATCH = typer.Option(16, "--batch-size", min=1, help="Documents per forward pass.")
MAX_LENGTH = typer.Option(512, "--max-length", min=1, help="Tokens read from each document, at most.")
DATA_DIR = typer.Option(None, "--data-dir", help="Folder of <task>.jsonl files to use first.")
PLAN = typer.Option("full", "--plan", help="Plan text or variant:key=value,... (skip:n=6).")


@app.command(name="similarity")
@placed()
def similarity_command(
    out: Path = typer.Option(..., "--out", help="Folder for cosine, cka and importance .csv/.png."),
    model: str = MODEL,
    plan: str = PLAN,
    task: str | None = TEXT_TASK,
    text_file: Path | None = TEXT_FILE,
    limit: int = TEXT_LIMIT,
    batch_size: int = TEXT_BATCH,
    max_length: int = MAX_LENGTH,
    data_dir: Path | None = DATA_DIR,
    *,
    placement: Placement,
) -> None:
    """Compare the hidden states of every two steps (cosine, CKA) and rate each layer's importance."""
    from painters.layer_importance import importance_table
    from painters.layer_similarity import similarity
    from painters.similarity_files import write_similarity

    output_folder(out, "--out")
    facts = model_source(model)
    if facts is not None:
        _check_plan(plan, facts)
    texts, loaded, tokenizer = _load_for_states(model, task, text_file, limit, data_dir, placement)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    result = similarity(loaded, tokenizer, texts, chosen, batch_size=batch_size, max_length=max_length, progress=True)
    typer.echo(f"plan: {result.plan} · {len(texts)} documents, {result.tokens} tokens", err=True)
    for path in write_similarity(result, importance_table(result), out, model):
        typer.echo(path)


@app.command()
@placed()
def suggest(
    n: int = typer.Option(..., "--n", help="Number of steps to drop (the n of skip:n=N), from the plan's steps."),
    metric: str = typer.Option("block_influence", "--metric", help="block_influence, or angular (best block)."),
    model: str = MODEL,
    plan: str = PLAN,
    task: str | None = TEXT_TASK,
    text_file: Path | None = TEXT_FILE,
    limit: int = TEXT_LIMIT,
    batch_size: int = TEXT_BATCH,
    max_length: int = MAX_LENGTH,
    data_dir: Path | None = DATA_DIR,
    *,
    placement: Placement,
) -> None:
    """Print the plan that drops the N steps of a plan a metric rates least important, ready for --plan.

    The steps are measured as `painters similarity` measures them.
    """
    from painters.layer_importance import check_suggestion, importance_table
    from painters.layer_importance import suggest as suggest_plan
    from painters.layer_similarity import similarity

    check_suggestion(metric, n)
    facts = model_source(model)
    if facts is not None:
        check_suggestion(metric, n, len(_check_plan(plan, facts).units))
    texts, loaded, tokenizer = _load_for_states(model, task, text_file, limit, data_dir, placement)
    chosen = plan_from_spec(plan, loaded.config.num_hidden_layers)
    check_suggestion(metric, n, len(chosen.units))
    result = similarity(loaded, tokenizer, texts, chosen, batch_size=batch_size, max_length=max_length, progress=True)
    typer.echo(str(suggest_plan(importance_table(result), chosen, n, metric)))


DB = typer.Option(..., "--db", help="The results store (SQLite): created if missing, resumed if present.")


@app.command(name="sweep")
@placed()
def sweep_command(
    ctx: typer.Context,
    db: Path = DB,
    model: str = MODEL,
    variants: str = typer.Option(
        "skip,middle_repeat,reverse,shuffle,parallel,looped_parallel", "--variants", help="Comma list of variants."
    ),
    n: str = typer.Option("2:28:2", "--n", help="Affected layers: comma list, or start:stop:step (stop included)."),
    tasks: str = typer.Option("arc_easy,hellaswag", *TASKS_NAMES, help="Comma list of tasks."),
    seeds: int = typer.Option(1, "--seeds", help="Shuffle seeds 0..S-1."),
    loops: str = typer.Option("3", "--loops", help="Loop counts of looped_parallel: comma list or start:stop:step."),
    limit: int | None = typer.Option(None, "--limit", help="Score only the first K documents of each task."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts per forward pass, at most."),
    data_dir: Path | None = DATA_DIR,
    protocol: str = PROTOCOL,
    pooling: str | None = POOLING,
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    memo_budget: float | None = MEMO_BUDGET,
    skip_generation: bool = SKIP_GENERATION,
    ray: str | None = typer.Option(
        None, "--ray", help="Run on Ray: auto (the running cluster), HOST:PORT, or local (start one here)."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Ray workers (default: one per --gpus-per-worker GPUs, else 1)."
    ),
    cpus_per_worker: int = typer.Option(1, "--cpus-per-worker", min=1, help="CPUs (and threads) of each Ray worker."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs of each Ray worker."),
    *,
    placement: Placement,
) -> None:
    """Evaluate every plan of a grid of variants on tasks into a results store; rerun to resume.

    With --ray, Ray actors across a cluster run the units of work, each loading the model once; this
    process alone writes the store, which ends the same as without --ray.
    """
    from painters.cluster import ray_pool
    from painters.glue import GlueOptions
    from painters.grid import grid, parse_values, parse_variants
    from painters.store import Store
    from painters.sweep import LocalPool, run_sweep
    from painters.units import Settings, Worker

    checks.store_to_write(db)
    names, ns, loop_values = parse_variants(variants), parse_values(n, "--n"), parse_values(loops, "--loops")
    task_names = [get_task(name).name for name in comma_list(tasks, "--tasks", "arc_easy,hellaswag")]
    _check_limit(limit)
    checks.input_folder(data_dir, "--data-dir")
    glue = _glue_options(ctx, task_names, GlueOptions(protocol, pooling))
    facts = model_source(model)
    if facts is not None:
        grid(facts.num_layers, names, ns, seeds, loop_values)
    _check_data(task_names, limit, data_dir, glue, facts)
    _check_existing_store(db)
    if ray is None:
        _no_ray_options(ctx)
        loaded, tokenizer = _load(model, placement)
        pool = LocalPool(Worker(loaded, tokenizer))
    else:
        where = str(Path(model).resolve()) if Path(model).exists() else model  # a folder, as every worker sees it
        given = {name: ctx.params[name] for name, _, _ in PLACEMENT_OPTIONS}  # `auto` resolves on each worker
        pool = ray_pool(ray, where, given, workers, cpus_per_worker, gpus_per_worker)
    settings = Settings(batch_size, max_batch_tokens, _bytes(memo_budget), glue)
    try:
        points = grid(pool.call("describe")["num_layers"], names, ns, seeds, loop_values)
        with Store(db) as store:
            computed = run_sweep(pool, model, points, task_names, store, limit, data_dir, settings, not skip_generation)
    finally:
        pool.close()
    typer.echo(f"{computed} cells computed; results in {db}", err=True)


@app.command()
def results(
    db: Path = typer.Option(..., "--db", help="The results store (read only)."),
    csv: Path | None = typer.Option(None, "--csv", help="Write the table as CSV to this file instead."),
    samples: Path | None = typer.Option(
        None, "--samples", help="Write each document's record (JSON lines, as lm-eval's --log_samples) to this file."
    ),
) -> None:
    """The stored results, one row per (plan, task, metric); or with --samples, every document's record."""
    from painters.results import results_frame, write_samples
    from painters.store import open_existing

    if csv is not None and samples is not None:
        raise PaintersError("give --csv (the table) or --samples (every document's record), not both")
    output_file(csv, "--csv")
    output_file(samples, "--samples")
    with open_existing(db) as store:
        if samples is not None:
            typer.echo(f"{write_samples(store, samples)} records written to {samples}", err=True)
            return
        frame = results_frame(store)
    if frame.empty:
        raise PaintersError(f"the store '{db}' has no results yet: run `painters sweep --db {db}` first")
    if csv is not None:
        frame.to_csv(csv, index=False)
    else:
        typer.echo(frame.astype(object).where(frame.notna(), "").to_string(index=False))  # unused fields blank


@app.command(name="report")
def report_command(
    db: Path = typer.Option(..., "--db", help="The results store (read only)."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG figures and index.html."),
) -> None:
    """The paper's figures from a results store: PNGs and one self-contained index.html."""
    from painters.report import report
    from painters.store import open_existing

    output_folder(out, "--out")
    with open_existing(db) as store:
        typer.echo(report(store, out))


@app.command()
@placed()
def paper(
    model: str = MODEL,
    out: Path | None = typer.Option(None, "--out", help="Folder for results.db and the report (paper-<model>)."),
    full: bool = typer.Option(False, "--full", help="The paper's whole grid, every document (for a GPU)."),
    limit: int | None = typer.Option(None, "--limit", help="Documents per task (default: 24, or all with --full)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts per forward pass, at most."),
    data_dir: Path | None = DATA_DIR,
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    memo_budget: float | None = MEMO_BUDGET,
    *,
    placement: Placement,
) -> None:
    """The paper's study as one job: similarity, every variant, looped parallel, single layers, then the report."""
    from painters.paper import run_paper, study

    _check_limit(limit)
    checks.input_folder(data_dir, "--data-dir")
    folder = out if out is not None else Path(f"paper-{Path(model).name}")
    output_folder(folder, "--out")
    facts = model_source(model)
    if facts is not None:
        for part in study(facts.num_layers, full, limit, facts.encoder).parts:
            _check_data(part.tasks, part.limit, data_dir, None, facts)
    _check_existing_store(folder / "results.db")
    batching = {"batch_size": batch_size, "max_tokens": max_batch_tokens, "memo_bytes": _bytes(memo_budget)}
    typer.echo(run_paper(model, folder, full, limit, data_dir=data_dir, placement=placement, **batching))


def _bytes(gib: float | None) -> int | None:
    return None if gib is None else int(gib * (1 << 30))


def _load_for_states(
    model: str, task: str | None, text_file: Path | None, limit: int, data_dir: Path | None, placement: Placement
):
    """The text (read first, so bad text options fail before the model loads), the model and its tokenizer."""
    from painters.texts import load_texts

    if task is not None and text_file is not None:
        raise PaintersError("give --task or --text-file, not both: the text is one or the other")
    checks.input_folder(data_dir, "--data-dir")
    texts = load_texts(None if text_file else task or "lambada_openai", text_file, limit, data_dir)
    return (texts, *_load(model, placement))


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise PaintersError(f"--limit {limit} is out of range: give a positive number of documents")


def _check_eval_options(harness: str, names: list[str], limit: int | None, data_dir: Path | None) -> None:
    """Reject bad `eval` options before the model loads."""
    if harness not in ("painters", "lm-eval"):
        raise PaintersError(f"unknown harness '{harness}': valid harnesses are painters, lm-eval")
    _check_limit(limit)
    if data_dir is not None and harness == "lm-eval":
        raise PaintersError("--data-dir works with the painters harness only: lm-eval reads its own task data")
    checks.input_folder(data_dir, "--data-dir")


_GLUE_OPTIONS = ("protocol", "pooling", "folds", "seed", "learning_rate", "epochs", "train_batch_size")


def _glue_options(ctx: typer.Context, tasks: list[str], options):
    """The GLUE options, checked, when a GLUE task is among `tasks`; given without one, they are an error."""
    if any(get_task(name).kind == "classification" for name in tasks):
        return options.check()
    given = [name for name in _GLUE_OPTIONS if name in ctx.params and _given(ctx, name)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise PaintersError(f"{flag} applies to the GLUE tasks (sst2, mrpc, rte) only, and none is among the tasks")
    return None


_RAY_OPTIONS = ("workers", "cpus_per_worker", "gpus_per_worker")


def _no_ray_options(ctx: typer.Context) -> None:
    """The Ray workers' options are an error without --ray, rather than silently unused."""
    given = [name for name in _RAY_OPTIONS if _given(ctx, name)]
    if given:
        raise PaintersError(f"--{given[0].replace('_', '-')} sets the Ray workers: give --ray auto|HOST:PORT|local too")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option `name` on the command line (not its default)."""
    return ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")


def _check_plan(spec: str, facts: ModelFacts) -> Plan:
    """The plan `spec` gives on a model with these facts: plan errors before the model loads."""
    return plan_from_spec(spec, facts.num_layers)


def _check_decoder(facts: ModelFacts, what: str) -> None:
    if facts.encoder:
        raise PaintersError(f"the model is an encoder: {what} needs a decoder model such as smollm2-135m")


def _check_new_tokens(max_new_tokens: int, context: int) -> None:
    if max_new_tokens >= context:
        raise PaintersError(
            f"--max-new-tokens {max_new_tokens} does not fit the model's context of {context} tokens: "
            f"give at most {context - 1} (prompt and new tokens share the context)"
        )


def _check_data(tasks: list[str], limit: int | None, data_dir: Path | None, glue, facts: ModelFacts | None) -> None:
    """The tasks suit the model (when its kind is known) and their data reads and fits (GLUE folds)."""
    from painters.evaluation import check_kinds, task_data

    if facts is not None:
        check_kinds(facts.encoder, "the model", [get_task(name) for name in tasks])
    for name in tasks:
        task_data(name, limit, data_dir, glue)


def _check_existing_store(path: Path) -> None:
    """An existing store must be one painters can resume (checked read-only, before the model loads)."""
    from painters.store import open_existing

    if path.is_file() and path.stat().st_size > 0:
        open_existing(path).close()


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2, no traceback.

    Usage errors (an unknown option, a value of the wrong type) are one line too; Ctrl-C says so and
    exits 130 (a sweep first says what it kept and how to resume).
    """
    try:
        code = app(standalone_mode=False, prog_name="painters")
    except PaintersError as error:
        _fail(f"error: {error}", 2)
    except typer.TyperException as error:  # click's usage errors
        _fail(f"error: {_one_line(error)}", getattr(error, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into this exit code
        _fail("interrupted", INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


INTERRUPTED = 130


def _one_line(error: Exception) -> str:
    message = error.format_message() if hasattr(error, "format_message") else str(error)
    command = getattr(getattr(error, "ctx", None), "command_path", "painters")
    return f"{' '.join(message.split())} (see `{command} --help`)"


def _fail(message: str, code: int) -> None:
    typer.echo(message, err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
