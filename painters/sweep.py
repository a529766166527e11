"""Running a grid of plans on tasks into the results store, resuming where a previous run stopped.

First the speed-up of each plan not yet measured is measured, all of them in the same rounds
(`painters.bench.speedups`), for the report's trade-off of score against speed. Cells already stored are
skipped. The rest run task by task, in groups of plans sorted so that plans sharing a prefix are
neighbours: within a group, every batch runs the shared steps once (`painters.prefix_memo`). A group's
cells are stored as soon as the group finishes, each in its own transaction, so an interruption loses
only the group in flight (up to GROUP cells), and says so.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.bench import SPEEDUP_SHAPE, speedups
from painters.devices import input_device
from painters.evaluation import NOT_METRICS, TaskData, check_fit, run_task, summarise, task_data, work
from painters.fingerprints import data_fingerprint, model_fingerprint
from painters.glue import GlueOptions
from painters.grid import GridPoint
from painters.devices import Meter
from painters.plan import Plan
from painters.prefix_memo import sharing_order
from painters.store import NONE, Cell, Store, check_model
from painters.tasks import get_task

GROUP = 64  # plans per group: cells are stored this often, and only plans of one group share their steps


@dataclass
class _Job:
    data: TaskData
    cells: dict[Plan, Cell]  # the plans still to run, and their cells


def sweep(
    model: PreTrainedModel,
    tokenizer,
    name: str,
    points: list[GridPoint],
    tasks: list[str],
    store: Store,
    limit: int | None = None,
    batch_size: int = 32,
    data_dir=None,
    progress: bool = True,
    glue: GlueOptions | None = None,
    max_tokens: int | None = None,
    memo_bytes: int | None = None,
    generate: bool = True,
) -> int:
    """Evaluate every distinct plan of `points` on every task not yet in `store`; returns the cells computed.

    `max_tokens` and `memo_bytes` bound a forward pass and the shared steps kept (default: from the device);
    without `generate`, GSM8K scores only its reference solution.
    """
    check_fit(model, [get_task(task) for task in tasks])
    fingerprint = model_fingerprint(model)
    check_model(store, fingerprint)
    for point in points:
        store.label(fingerprint, str(point.plan), point.label)
    plans = sharing_order([point.plan for point in points])
    _record_speeds(model, fingerprint, plans, store, progress)
    ran = environment(model)
    jobs = [
        _job(task_data(task, limit, data_dir, glue, generate), plans, fingerprint, store, limit, glue, ran)
        for task in tasks
    ]
    total = sum(work(job.data)[1] * len(job.cells) for job in jobs)
    done = sum(len(plans) - len(job.cells) for job in jobs)
    if done:
        tqdm.write(f"{done} of {len(plans) * len(jobs)} cells already stored: skipping them")
    with tqdm(total=total, desc="sweep", unit="item", disable=not progress, smoothing=0.1) as bar:
        try:
            for job in jobs:
                todo = list(job.cells)
                for start in range(0, len(todo), GROUP):
                    group = todo[start : start + GROUP]
                    _run_group(model, tokenizer, name, job, group, store, bar, batch_size, glue, max_tokens, memo_bytes)
        except KeyboardInterrupt:
            _say_what_was_kept(jobs, store, done)
            raise
    return sum(len(job.cells) for job in jobs)


def _say_what_was_kept(jobs: list[_Job], store: Store, done: int) -> None:
    """On Ctrl-C: how many cells of this run are stored, how many are not (the group in flight among them)."""
    kept = sum(store.has(cell) for job in jobs for cell in job.cells.values())
    todo = sum(len(job.cells) for job in jobs)
    tqdm.write(
        f"interrupted: {kept} of this run's {todo} cells are stored in {store.path} ({done + kept} in all); "
        f"{todo - kept} are not, the group in flight among them; run the same command again to resume",
        file=sys.stderr,
    )



def _record_speeds(model: PreTrainedModel, fingerprint: str, plans: list[Plan], store: Store, progress: bool) -> None:
    """Each plan's speed-up over the full model, measured once per plan (all new plans in the same rounds)."""
    todo = [plan for plan in plans if not store.has_speed(fingerprint, str(plan))]
    if not todo:
        return
    meter = Meter(input_device(model))
    shape = json.dumps(asdict(SPEEDUP_SHAPE))
    for plan, ratio in speedups(model, todo, meter, progress).items():
        store.put_speed(fingerprint, plan, ratio, shape, meter.describe())


def _job(data: TaskData, plans: list[Plan], fingerprint: str, store: Store, limit: int | None, glue, ran: dict) -> _Job:
    """The task's cells not yet stored. A GLUE protocol changes the numbers, so its options key the cell too."""
    inputs = data.fingerprint_inputs()
    if data.task.kind == "classification":
        inputs["protocol"] = asdict((glue or GlueOptions()).check())
    digest = data_fingerprint(inputs)
    cells = {
        plan: Cell(fingerprint, str(plan), data.task.name, NONE if limit is None else limit, digest) for plan in plans
    }
    todo = {plan: cell for plan, cell in cells.items() if not store.has(cell)}
    if todo:
        protocol = {"protocol": inputs["protocol"]} if "protocol" in inputs else {}
        store.put_run(next(iter(todo.values())), {**ran, **protocol})
    return _Job(data, todo)


def environment(model: PreTrainedModel) -> dict[str, object]:
    """What computed a run, beside what keys its cells: library versions, dtype, device and the command."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "dtype": str(model.dtype),
            "device": str(input_device(model)), "command": shlex.join(["painters", *sys.argv[1:]])}  # fmt: skip


def _run_group(model, tokenizer, name: str, job: _Job, group: list[Plan], store: Store, bar, *options) -> None:
    """Run a group of plans (`options`: run_task's batch size, glue, max_tokens, memo_bytes) and store its cells."""
    start = time.perf_counter()
    batch_size, glue, max_tokens, memo_bytes = options
    records = run_task(model, tokenizer, job.data, group, batch_size, bar.update, glue, max_tokens, memo_bytes)
    seconds = (time.perf_counter() - start) / len(group)
    for plan in group:
        summary = summarise(job.data.task, records[plan])
        metrics = {key: value for key, value in summary.items() if key != "docs"}
        store.put(job.cells[plan], name, metrics, summary["docs"], seconds)
        shown = "  ".join(f"{m}={v:.4f}" for m, v in summary.items() if m not in NOT_METRICS and "_stderr" not in m)
        tqdm.write(f"{job.data.task.name:<15} {plan}  {shown}")
