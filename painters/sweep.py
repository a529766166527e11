"""Running a grid of plans on tasks into the results store, resuming where a previous run stopped.

First the speed-up of each plan not yet measured is measured, all of them in the same rounds
(`painters.bench.speedups`), for the report's trade-off of score against speed. Cells already stored are
skipped. The rest run task by task, in groups of plans sorted so that plans sharing a prefix are
neighbours: within a group, every batch runs the shared steps once (`painters.prefix_memo`). A group's
cells are stored as soon as the group finishes, each in its own transaction, so an interruption loses
only the group in flight.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.bench import SPEEDUP_SHAPE, speedups
from painters.evaluation import NOT_METRICS, TaskData, check_fit, run_task, summarise, task_data, work
from painters.fingerprints import data_fingerprint, model_fingerprint
from painters.glue import GlueOptions
from painters.grid import GridPoint
from painters.meter import Meter
from painters.plan import Plan
from painters.prefix_memo import sharing_order
from painters.store import NONE, Cell, Store
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
) -> int:
    """Evaluate every distinct plan of `points` on every task not yet in `store`; returns the cells computed."""
    check_fit(model, [get_task(task) for task in tasks])
    fingerprint = model_fingerprint(model)
    for point in points:
        store.label(fingerprint, str(point.plan), point.label)
    plans = sharing_order([point.plan for point in points])
    _record_speeds(model, fingerprint, plans, store, progress)
    jobs = [_job(task_data(task, limit, data_dir), plans, fingerprint, store, limit, glue) for task in tasks]
    total = sum(work(job.data)[1] * len(job.cells) for job in jobs)
    done = sum(len(plans) - len(job.cells) for job in jobs)
    if done:
        tqdm.write(f"{done} of {len(plans) * len(jobs)} cells already stored: skipping them")
    with tqdm(total=total, desc="sweep", unit="item", disable=not progress, smoothing=0.1) as bar:
        for job in jobs:
            todo = list(job.cells)
            for start in range(0, len(todo), GROUP):
                _run_group(model, tokenizer, name, job, todo[start : start + GROUP], store, batch_size, bar, glue)
    return sum(len(job.cells) for job in jobs)


def _record_speeds(model: PreTrainedModel, fingerprint: str, plans: list[Plan], store: Store, progress: bool) -> None:
    """Each plan's speed-up over the full model, measured once per plan (all new plans in the same rounds)."""
    todo = [plan for plan in plans if not store.has_speed(fingerprint, str(plan))]
    if not todo:
        return
    meter = Meter(model.device)
    shape = json.dumps(asdict(SPEEDUP_SHAPE))
    for plan, ratio in speedups(model, todo, meter, progress).items():
        store.put_speed(fingerprint, plan, ratio, shape, meter.describe())


def _job(data: TaskData, plans: list[Plan], fingerprint: str, store: Store, limit: int | None, glue) -> _Job:
    """The task's cells not yet stored. A GLUE protocol changes the numbers, so its options key the cell too."""
    inputs = {"rows": data.rows, "train": data.train_rows}
    if data.task.kind == "classification":
        inputs["protocol"] = asdict((glue or GlueOptions()).check())
    digest = data_fingerprint(inputs)
    cells = {
        plan: Cell(fingerprint, str(plan), data.task.name, NONE if limit is None else limit, digest) for plan in plans
    }
    return _Job(data, {plan: cell for plan, cell in cells.items() if not store.has(cell)})


def _run_group(model, tokenizer, name: str, job: _Job, group: list[Plan], store: Store, batch_size: int, bar, glue):
    start = time.perf_counter()
    records = run_task(model, tokenizer, job.data, group, batch_size, bar.update, glue)
    seconds = (time.perf_counter() - start) / len(group)
    for plan in group:
        summary = summarise(job.data.task, records[plan])
        metrics = {key: value for key, value in summary.items() if key != "docs"}
        store.put(job.cells[plan], name, metrics, summary["docs"], seconds)
        shown = "  ".join(f"{m}={v:.4f}" for m, v in summary.items() if m not in NOT_METRICS and "_stderr" not in m)
        tqdm.write(f"{job.data.task.name:<15} {plan}  {shown}")
