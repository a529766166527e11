"""Commands of the study: `sweep` (a grid of plans on tasks into a results store, in process or on Ray),
`results` (the store as a table or per-document records), `report` (the figures and page) and `paper`
(the paper's study as one job)."""

from __future__ import annotations

from pathlib import Path

import typer

from painters import checks
from painters.checks import comma_list, local_model, model_source, output_file, output_folder
from painters.cli.options import (
    DATA_DIR,
    EXACT_ATTENTION,
    MAX_BATCH_TOKENS,
    MEMO_BUDGET,
    MODEL,
    PLACEMENT_OPTIONS,
    POOLING,
    PROTOCOL,
    SKIP_GENERATION,
    TASKS_NAMES,
    gib_bytes,
    given,
    glue_options,
    load,
    path_option,
    placed,
)
from painters.core.errors import PaintersError
from painters.models.placement import Placement
from painters.tasks.catalog import get_task
from painters.tasks.documents import GlueOptions

DB = path_option(..., "--db", help="The results store (SQLite): created if missing, resumed if present.")
READ_DB = path_option(..., "--db", help="The results store (read only).")


@placed()
def sweep(
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
    exact_attention: bool = EXACT_ATTENTION,
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
    from painters.study.grid import grid, parse_values, parse_variants

    checks.store_to_write(db)
    names, ns, loop_values = parse_variants(variants), parse_values(n, "--n"), parse_values(loops, "--loops")
    task_names = [get_task(name).name for name in comma_list(tasks, "--tasks", "arc_easy,hellaswag")]
    checks.limit(limit)
    checks.input_folder(data_dir, "--data-dir")
    glue = glue_options(ctx, task_names, GlueOptions(protocol, pooling))
    checks.generation_given(skip_generation, task_names, exact_attention)
    _used_grid_options(ctx, names)
    facts = model_source(model)
    if facts is not None:
        grid(facts.num_layers, names, ns, seeds, loop_values)
    checks.task_data(task_names, limit, data_dir, glue, facts)
    checks.existing_store(db)
    from painters.study.cluster import ray_pool  # torch and transformers: after the checks
    from painters.study.store import Store
    from painters.study.sweep import LocalPool, run_sweep
    from painters.study.units import Settings, Worker

    if ray is None:
        _no_ray_options(ctx)
        loaded, tokenizer = load(model, placement)
        pool = LocalPool(Worker(loaded, tokenizer))
    else:
        where = str(Path(model).resolve()) if Path(model).exists() else model  # a folder, as every worker sees it
        placement_given = {name: ctx.params[name] for name, _, _ in PLACEMENT_OPTIONS}  # `auto` resolves per worker
        pool = ray_pool(ray, where, placement_given, workers, cpus_per_worker, gpus_per_worker)
    settings = Settings(batch_size, max_batch_tokens, gib_bytes(memo_budget), glue, exact_attention)
    try:
        points = grid(pool.call("describe")["num_layers"], names, ns, seeds, loop_values)
        with Store(db) as store:
            computed = run_sweep(pool, model, points, task_names, store, limit, data_dir, settings, not skip_generation)
    finally:
        pool.close()
    typer.echo(f"{computed} cells computed; results in {db}", err=True)


_RAY_OPTIONS = ("workers", "cpus_per_worker", "gpus_per_worker")
_GRID_OPTIONS = {"seeds": "shuffle", "loops": "looped_parallel"}  # option: the variant it shapes


def _used_grid_options(ctx: typer.Context, variants: list[str]) -> None:
    """--seeds and --loops shape one variant each: given without it, they are an error, not silently unused."""
    for name, variant in _GRID_OPTIONS.items():
        if given(ctx, name) and variant not in variants:
            raise PaintersError(f"--{name} applies to the {variant} variant, and it is not among --variants")


def _no_ray_options(ctx: typer.Context) -> None:
    """The Ray workers' options are an error without --ray, rather than silently unused."""
    named = [name for name in _RAY_OPTIONS if given(ctx, name)]
    if named:
        raise PaintersError(f"--{named[0].replace('_', '-')} sets the Ray workers: give --ray auto|HOST:PORT|local too")


def results(
    db: Path = READ_DB,
    csv: Path | None = path_option(None, "--csv", help="Write the table as CSV to this file instead."),
    samples: Path | None = path_option(
        None, "--samples", help="Write each document's record (JSON lines, as lm-eval's --log_samples) to this file."
    ),
) -> None:
    """The stored results, one row per (plan, task, metric); or with --samples, every document's record."""
    from painters.study.results import results_frame, write_samples
    from painters.study.store import open_existing

    if csv is not None and samples is not None:
        raise PaintersError("give --csv (the table) or --samples (every document's record), not both")
    output_file(csv, "--csv", (db,))
    output_file(samples, "--samples", (db,))
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


def report(
    db: Path = READ_DB,
    out: Path = path_option(..., "--out", help="Folder for the PNG figures and index.html."),
) -> None:
    """The paper's figures from a results store: PNGs and one self-contained index.html."""
    from painters.report.page import report as write_report
    from painters.study.store import open_existing

    output_folder(out, "--out", (db,))
    with open_existing(db) as store:
        typer.echo(write_report(store, out))


@placed()
def paper(
    model: str = MODEL,
    out: Path | None = path_option(None, "--out", help="Folder for results.db and the report (paper-<model>)."),
    full: bool = typer.Option(False, "--full", help="The paper's whole grid, every document (for a GPU)."),
    limit: int | None = typer.Option(None, "--limit", help="Documents per task (default: 24, or all with --full)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Contexts per forward pass, at most."),
    data_dir: Path | None = DATA_DIR,
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    memo_budget: float | None = MEMO_BUDGET,
    exact_attention: bool = EXACT_ATTENTION,
    *,
    placement: Placement,
) -> None:
    """The paper's study as one job: similarity, every variant, looped parallel, single layers, then the report."""
    from painters.paper import run_paper, study

    checks.limit(limit)
    checks.input_folder(data_dir, "--data-dir")
    if exact_attention and not full:
        raise PaintersError("--exact-attention says how gsm8k generates, which only --full runs: give --full too")
    folder = out if out is not None else Path(f"paper-{Path(model).name}")
    output_folder(folder, "--out", (local_model(model), data_dir))
    facts = model_source(model)
    if facts is not None:
        for part in study(facts.num_layers, full, limit, facts.encoder).parts:
            checks.task_data(part.tasks, part.limit, data_dir, None, facts)
    checks.existing_store(folder / "results.db")
    batching = {"batch_size": batch_size, "max_tokens": max_batch_tokens, "memo_bytes": gib_bytes(memo_budget)}
    batching["exact_attention"] = exact_attention
    typer.echo(run_paper(model, folder, full, limit, data_dir=data_dir, placement=placement, **batching))
