"""`painters search`: the plan that keeps the most quality within a budget of layer calls (`painters.plan_search`)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer

from painters import checks
from painters.checks import comma_list, model_source, output_file
from painters.cli.options import DATA_DIR, MAX_BATCH_TOKENS, MEMO_BUDGET, MODEL, gib_bytes, load, path_option, placed
from painters.core.grammar import whole_number
from painters.models.placement import Placement

_BASELINES = "block_influence,angular,middle,random:3"
_EVAL = "lambada_openai,arc_easy,hellaswag"


@placed()
def search(
    remove: str = typer.Option(..., "--remove", help="Layer calls to remove: a comma list of budgets, e.g. 3,6,9."),
    db: Path = path_option(..., "--db", help="The results store (SQLite): created if missing, resumed if present."),
    model: str = MODEL,
    method: str = typer.Option(
        "greedy", "--method", help="greedy, beam:W, block_influence, angular, middle or random:S."
    ),
    baselines: str = typer.Option(_BASELINES, "--baselines", help="Methods compared with it (comma list), or none."),
    space: str = typer.Option("skip", "--space", help="skip (drop calls) or richer (also swap and repeat)."),
    objective: str = typer.Option(
        "ppl", "--objective", help="ppl (log-likelihood per token) or kl (from the full model)."
    ),
    calibration: str | None = typer.Option(
        None, "--calibration", help="TASK:N (the split's last N documents) or TASK:A-B [lambada_openai:64]."
    ),
    text_file: Path | None = path_option(
        None, "--text-file", help="Calibrate on this file instead: a document per line."
    ),
    max_length: int = typer.Option(256, "--max-length", min=2, help="Tokens read from each calibration document."),
    eval_tasks: str = typer.Option(
        _EVAL, "--eval-tasks", help="Held-out tasks (their first --limit documents), or none."
    ),
    limit: int | None = typer.Option(100, "--limit", help="Held-out documents per task."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Held-out contexts (and documents read) per pass."),
    data_dir: Path | None = DATA_DIR,
    max_batch_tokens: int | None = MAX_BATCH_TOKENS,
    memo_budget: float | None = MEMO_BUDGET,
    json_path: Path | None = path_option(None, "--json", help="Write one record per (budget, method) to this file."),
    *,
    placement: Placement,
) -> None:
    """Search for the plan that keeps the most quality with K fewer layer calls; compare it with the one-shot
    baselines on the same calibration text and judge all of them on held-out documents. Rerun to resume."""
    from painters.plan_search.methods import parse_method
    from painters.plan_search.run import SearchOptions
    from painters.tasks.catalog import get_task

    removes = tuple(dict.fromkeys(_whole(item) for item in comma_list(remove, "--remove", "3,6,9")))
    compared = [] if baselines.strip() == "none" else comma_list(baselines, "--baselines", _BASELINES)
    tasks = [] if eval_tasks.strip() == "none" else comma_list(eval_tasks, "--eval-tasks", _EVAL)
    tasks = [get_task(name).name for name in tasks]
    checks.limit(limit)
    checks.input_folder(data_dir, "--data-dir")
    options = SearchOptions(
        removes, parse_method(method), tuple(parse_method(m, "--baselines") for m in compared), space, objective,
        max_length, tuple(tasks), limit, batch_size, max_batch_tokens, gib_bytes(memo_budget),
    )  # fmt: skip
    facts = model_source(model)
    if facts is not None:
        checks.decoder(facts, "painters search")
        options.check(facts.num_layers)
    source = _source(calibration, text_file, data_dir, tasks, limit)
    checks.task_data(tasks, limit, data_dir, None, facts)
    output_file(json_path, "--json", (db, text_file))
    checks.store_to_write(db)
    checks.existing_store(db)
    from painters.plan_search.run import search as run_search
    from painters.study.results import strict
    from painters.study.store import Store

    loaded, tokenizer = load(model, placement)
    try:
        with Store(db) as store, contextlib.redirect_stdout(sys.stderr):  # stdout: the plans alone, ready for --plan
            records = run_search(loaded, tokenizer, store, source, options, model, data_dir)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: every scored (candidate, batch) is stored in {db}; run the same command again to "
                   "resume", err=True)  # fmt: skip
        raise
    typer.echo(format_records(records), err=True)
    if json_path is not None:
        json_path.write_text(json.dumps(strict(records), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    for record in records:
        if record["method"] == str(options.method):
            typer.echo(record["plan"])


def _whole(item: str) -> int:
    return whole_number(item, "--remove (layer calls, e.g. 3,6,9)")


def _source(calibration: str | None, text_file: Path | None, data_dir: Path | None, tasks: list[str], limit):
    """The calibration source, read and checked disjoint from the held-out documents before anything loads."""
    from painters.plan_search.calibration import check_disjoint, parse_source

    source = parse_source(calibration, text_file, data_dir)
    check_disjoint(source, tasks, limit)
    return source


def format_records(records: list[dict]) -> str:
    """The records as an aligned table: budget, method, calls, calibration, held-out primary metric, cost."""
    lines = [f"{'K':>3} {'method':<16}{'calls':>6}{'cal ppl':>10}{'cal KL':>9}  {'held-out':<40}{'cost s':>8}  plan"]
    for r in records:
        held = "  ".join(f"{task} {_held(numbers)}" for task, numbers in r.get("held_out", {}).items())
        cal, seconds = r["calibration"], r["cost"]["seconds"]
        lines.append(f"{r['remove']:>3} {r['method']:<16}{r['calls']:>6}{cal['perplexity']:>10.3f}"
                     f"{cal['kl_per_token']:>9.4f}  {held:<40}{seconds:>8.1f}  {r['plan']}")  # fmt: skip
    return "\n".join(lines)


def _held(numbers: dict) -> str:
    from painters.plan_search.held_out import PER_TOKEN

    primary = next(iter(v for k, v in numbers.items() if k != PER_TOKEN), None)
    return "-" if primary is None else f"{primary[0]:.3f}"
