"""Running a grid of plans on tasks into the results store, resuming where a previous run stopped.

First the speed-up of each plan not yet measured is measured, all of them in the same rounds
(`painters.tools.bench.speedups`), for the report's trade-off of score against speed. Cells already stored are
skipped. The rest run in groups of plans sorted so that plans sharing a prefix are
neighbours, cut into units of work (`painters.study.units`): some batches of one task's pairs (or documents to
generate from) under one group, so that every batch runs the steps its plans share once
(`painters.core.prefix_memo`). A unit's size follows its measured speed, about UNIT_SECONDS of work; where
a task has too few batches to keep every worker busy, smaller groups of plans split the work instead.

A pool runs the units: this process (`LocalPool`), or Ray actors across a cluster (`painters.study.cluster`).
This process alone writes the store: each unit's results in one transaction as they come back, and a
cell, with its per-document records, when its last unit is in. So an interruption loses only the units
in flight, and the numbers are the same whichever worker ran a unit and however many there were.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, replace

from tqdm.auto import tqdm
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for
from painters.core.plan import Plan
from painters.core.prefix_memo import sharing_order
from painters.study.fingerprints import data_fingerprint
from painters.study.grid import GridPoint
from painters.study.store import NONE, Cell, Finished, Piece, Store, check_model
from painters.study.units import Done, Settings, Worker, WorkUnit
from painters.tasks.catalog import get_task
from painters.tasks.documents import GlueOptions, TaskData, check_kinds, task_data
from painters.tasks.evaluation import NOT_METRICS, summarise, task_records

GROUP = 64  # plans per group at most: only plans of one group share their steps
UNIT_SECONDS = 60.0  # the work a unit aims at, once its part's speed is measured (its first unit has one index)


class LocalPool:
    """Units run one at a time in this process, on a model already loaded."""

    workers = 1

    def __init__(self, worker: Worker) -> None:
        self._worker, self._queue = worker, []

    def call(self, method: str, *args):
        return getattr(self._worker, method)(*args)

    def share(self, data: TaskData) -> TaskData:
        return data

    def free(self) -> int:
        return 1 - len(self._queue)

    def busy(self) -> int:
        return len(self._queue)

    def submit(self, unit: WorkUnit, data: TaskData, settings: Settings) -> None:
        self._queue.append((unit, data, settings))

    def next_done(self) -> Done:
        return self._worker.run(*self._queue.pop())

    def close(self) -> None:
        self._queue.clear()


@dataclass
class _Job:
    """One task under one group of plans: its cells not yet stored, the indices each plan's cell holds per
    part, and the indices not yet handed out (those some plan of the group still lacks)."""

    data: TaskData
    shared: object  # the data as the pool's workers receive it
    key: str
    layout: str  # what fixes the parts' indices besides the data (the batching's settings)
    items: dict[str, list[int]]  # per part, the items of work at each index
    cells: dict[Plan, Cell]
    have: dict[Plan, dict[str, set[int]]]
    todo: dict[str, list[int]]

    def work(self) -> int:
        return sum(self.items[part][i] for part, indices in self.todo.items() for i in indices) * len(self.cells)

    def stored(self, part: str) -> str:
        """A part's name in the store: pieces of another batching never mix with this one's."""
        return f"{part} {self.layout}"


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
    exact_attention: bool = False,
) -> int:
    """Evaluate every distinct plan of `points` on every task not yet in `store`, in this process; returns
    the cells computed.

    `max_tokens` and `memo_bytes` bound a forward pass and the shared steps kept (default: from the device);
    without `generate`, GSM8K scores only its reference solution; `exact_attention`: see `Settings`.
    """
    pool = LocalPool(Worker(model, tokenizer))
    settings = Settings(batch_size, max_tokens, memo_bytes, glue, exact_attention)
    return run_sweep(pool, name, points, tasks, store, limit, data_dir, settings, generate, progress)


def run_sweep(
    pool,
    name: str,
    points: list[GridPoint],
    tasks: list[str],
    store: Store,
    limit: int | None,
    data_dir,
    settings: Settings,
    generate: bool = True,
    progress: bool = True,
) -> int:
    """`sweep` on a pool of workers (`LocalPool`, or `painters.study.cluster.RayPool`); returns the cells computed."""
    facts = pool.call("describe")
    check_kinds(adapter_for(facts["model_type"]).encoder, f"'{facts['model_type']}'", [get_task(t) for t in tasks])
    fingerprint = facts["fingerprint"]
    check_model(store, fingerprint)
    store.put_model(fingerprint, facts["facts"])
    for point in points:
        store.label(fingerprint, str(point.plan), point.label)
    plans = sharing_order([point.plan for point in points])
    _record_speeds(pool, fingerprint, plans, store, progress)
    settings = replace(settings, max_tokens=settings.max_tokens or facts["max_tokens"])
    ran = {**facts["environment"], "command": shlex.join(["painters", *sys.argv[1:]])}
    jobs = []
    for task in tasks:
        data = task_data(task, limit, data_dir, settings.glue, generate)
        jobs += _jobs(pool, data, plans, (name, fingerprint), store, limit, settings, ran)
    jobs.sort(key=lambda job: -job.work())  # the largest first, so that every worker stays busy to the end
    todo = sum(len(job.cells) for job in jobs)
    done = len(plans) * len(tasks) - todo
    if done:
        tqdm.write(f"{done} of {len(plans) * len(tasks)} cells already stored: skipping them")
    with tqdm(total=sum(job.work() for job in jobs), desc="sweep", unit="item", disable=not progress) as bar:
        try:
            _drive(pool, jobs, store, name, settings, bar)
        except KeyboardInterrupt:
            _say_what_was_kept(jobs, store, done)
            raise
    return todo


def _say_what_was_kept(jobs: list[_Job], store: Store, done: int) -> None:
    """On Ctrl-C: how many cells of this run are stored, how many are not (their finished units are kept)."""
    kept = sum(store.has(cell) for job in jobs for cell in job.cells.values())
    todo = sum(len(job.cells) for job in jobs)
    tqdm.write(
        f"interrupted: {kept} of this run's {todo} cells are stored in {store.path} ({done + kept} in all); "
        f"of the {todo - kept} others, every finished unit of work is stored; run the same command again to resume",
        file=sys.stderr,
    )


def _record_speeds(pool, fingerprint: str, plans: list[Plan], store: Store, progress: bool) -> None:
    """Each plan's speed-up over the full model, measured once per plan (all new plans in the same rounds)."""
    todo = [plan for plan in plans if not store.has_speed(fingerprint, str(plan))]
    if not todo:
        return
    ratios, shape, device = pool.call("speedups", todo, progress)
    for plan, ratio in ratios.items():
        store.put_speed(fingerprint, plan, ratio, shape, device)


def _jobs(
    pool, data: TaskData, plans: list[Plan], model: tuple[str, str], store: Store, limit: int | None,
    settings: Settings, ran: dict,
) -> list[_Job]:  # fmt: skip
    """The task's cells not yet stored, in groups of GROUP plans (one plan per group for GLUE, whose plans
    share no steps). A GLUE protocol changes the numbers, so its options key the cell too. A cell whose
    every piece is stored (which a single writer never leaves behind) is completed here.

    `model` is the model's (name, fingerprint)."""
    name, fingerprint = model
    inputs = data.fingerprint_inputs()
    if data.task.kind == "classification":
        inputs["protocol"] = asdict((settings.glue or GlueOptions()).check())
    key = data_fingerprint(inputs)
    cells = {
        plan: Cell(fingerprint, str(plan), data.task.name, NONE if limit is None else limit, key) for plan in plans
    }
    todo = [plan for plan in plans if not store.has(cells[plan])]
    if not todo:
        return []
    protocol = {"protocol": inputs["protocol"]} if "protocol" in inputs else {}
    store.put_run(cells[todo[0]], {**ran, **protocol})
    shared = pool.share(data)
    items = pool.call("items", key, shared, settings)
    layout = f"batch_size={settings.batch_size} max_tokens={settings.max_tokens}"
    whole = _Job(data, shared, key, layout, items, {plan: cells[plan] for plan in todo}, {}, {})
    whole.have = {plan: {part: store.indices(cells[plan], whole.stored(part)) for part in items} for plan in todo}
    ready = [_finish(whole, plan, store, name, {}) for plan in todo if _complete(whole, plan)]
    if ready:
        store.put_pieces([], ready)
        _say_finished(ready)
    todo = [plan for plan in todo if not _complete(whole, plan)]
    jobs = []
    size = _group_size(len(todo), max(map(len, items.values())), pool.workers, data.task.kind == "classification")
    for start in range(0, len(todo), size):
        group = todo[start : start + size]
        missing = {
            part: [i for i in range(len(counts)) if any(i not in whole.have[plan][part] for plan in group)]
            for part, counts in items.items()
        }
        jobs.append(replace(whole, cells={plan: cells[plan] for plan in group}, todo=missing))
    return jobs


def _group_size(plans: int, indices: int, workers: int, apart: bool) -> int:
    """Plans per group: GROUP, so that plans share their steps (one if they share none, `apart`), but
    fewer where the task has too few indices to give every worker two units: plans then split the work."""
    if apart:
        return 1
    splits = 1 if workers == 1 else -(-2 * workers // indices)
    return max(1, min(GROUP, -(-plans // splits)))


def _drive(pool, jobs: list[_Job], store: Store, name: str, settings: Settings, bar) -> None:
    """Hand out units while workers are free, and store each unit's results as it comes back."""
    rates: dict[tuple[str, str], float] = {}  # seconds per index and plan, per (task, part), as last measured
    owners: dict[WorkUnit, _Job] = {}
    cells, stored = sum(len(job.cells) for job in jobs), 0
    while True:
        while pool.free() > 0 and (handed := _next_unit(jobs, rates, pool.workers)) is not None:
            unit, job = handed
            owners[unit] = job
            pool.submit(unit, job.shared, settings)
        if not pool.busy():
            return
        done = pool.next_done()
        job = owners.pop(done.unit)
        rates[job.data.task.name, done.unit.part] = done.rate
        stored += _store_done(done, job, store, name, bar)
        bar.set_postfix_str(f"{stored}/{cells} cells", refresh=False)


def _next_unit(jobs: list[_Job], rates: dict[tuple[str, str], float], workers: int) -> tuple[WorkUnit, _Job] | None:
    """The next unit of the first job with indices left: about UNIT_SECONDS of work at its part's last
    measured speed (one index while it has none), and no more than a fair share of what the job has left
    for each worker, so that no worker is left with a long unit at the end while the others wait."""
    for job in jobs:
        for part, indices in job.todo.items():
            if not indices:
                continue
            rate = rates.get((job.data.task.name, part))
            size = 1 if not rate else int(UNIT_SECONDS / (rate * len(job.cells)))
            size = max(1, min(size, -(-len(indices) // workers)))
            chosen, job.todo[part] = tuple(indices[:size]), indices[size:]
            return WorkUnit(job.key, part, chosen, tuple(job.cells)), job
    return None


def _store_done(done: Done, job: _Job, store: Store, name: str, bar) -> int:
    """Store a unit's results in one transaction: pieces of cells still incomplete, and the cells it
    completes (returns how many)."""
    unit, seconds = done.unit, done.rate
    pieces, finished = [], []
    for plan in unit.plans:
        new = {i: value for i, value in done.found[str(plan)].items() if i not in job.have[plan][unit.part]}
        job.have[plan][unit.part].update(new)
        if new and _complete(job, plan):
            fresh = {unit.part: {i: (value, seconds) for i, value in new.items()}}
            finished.append(_finish(job, plan, store, name, fresh))
        else:
            pieces += [Piece(job.cells[plan], job.stored(unit.part), i, value, seconds) for i, value in new.items()]
    store.put_pieces(pieces, finished)
    bar.update(sum(job.items[unit.part][i] for i in unit.indices) * len(unit.plans))
    _say_finished(finished)
    return len(finished)


def _say_finished(finished: list[Finished]) -> None:
    """A line per stored cell: its task, plan and metrics."""
    for cell in finished:
        shown = "  ".join(
            f"{m}={v:.4f}" for m, v in cell.metrics.items() if m not in NOT_METRICS and "_stderr" not in m
        )
        tqdm.write(f"{cell.cell.task:<15} {cell.cell.plan}  {shown}")


def _complete(job: _Job, plan: Plan) -> bool:
    return all(len(job.have[plan][part]) == len(counts) for part, counts in job.items.items())


def _finish(job: _Job, plan: Plan, store: Store, name: str, fresh: dict[str, dict[int, tuple]]) -> Finished:
    """A complete cell from its stored pieces and the `fresh` ones not yet stored: records, then metrics,
    exactly as `painters eval` computes them."""
    cell, stored = job.cells[plan], store.pieces(job.cells[plan])
    pieces = {part: {**stored.get(job.stored(part), {}), **fresh.get(part, {})} for part in job.items}
    records = task_records(job.data, {part: {i: v for i, (v, _) in got.items()} for part, got in pieces.items()})
    summary = summarise(job.data.task, records)
    metrics = {key: value for key, value in summary.items() if key != "docs"}
    seconds = sum(s for got in pieces.values() for _, s in got.values())
    return Finished(cell, name, metrics, summary["docs"], seconds, records)
