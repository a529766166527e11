"""Sweeps on Ray against the single-process sweep, on the default `painters paper` grid, in one run.

The grid of every part of the default study (fewer documents per task) is swept three times, one after
another (never two torch processes at once on 2 cores), each into a fresh store that already holds the
plans' measured speeds (measured once beforehand, untimed), so that only evaluation is timed:

1. in this process, at one torch thread (`painters.study.sweep.sweep`);
2. on a local Ray instance with one worker of one CPU (one thread);
3. on the same with two such workers.

Every run must store the same cells, every metric `==`. Reported: each run's wall time, Ray's start-up
(connecting and the workers loading the model), the units each Ray run handed out, the scaling
(2 workers / 1 worker; target <= 0.6) and Ray's overhead (1 worker / single process; target < 1.10).

    .venv/bin/python benchmarks/ray_sweep.py [--model smollm2-135m] [--limit 8]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import ray
import torch

from painters import load_model
from painters.paper import study
from painters.study.cluster import ray_pool
from painters.study.grid import grid
from painters.study.store import Store
from painters.study.sweep import LocalPool, run_sweep
from painters.study.units import Settings, Worker

PLACEMENT = {"device": "cpu", "dtype": "float32", "device_map": None, "attn": None}


def sweep_all(pool, model: str, parts, points, store_path: Path, settings: Settings) -> float:
    """Sweep every part into the store; the seconds it took."""
    start = time.perf_counter()
    with Store(store_path) as store:
        for part, part_points in zip(parts, points, strict=True):
            run_sweep(
                pool, model, part_points, part.tasks, store, part.limit, None, settings, generate=False, progress=False
            )
    return time.perf_counter() - start


def cells(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute('SELECT plan, task, "limit", metrics, items FROM cells ORDER BY plan, task').fetchall()


def counted(pool) -> list[int]:
    """Count the units the pool returns."""
    units, returned = [0], pool.next_done

    def next_done():
        units[0] += 1
        return returned()

    pool.next_done = next_done
    return units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_model(args.model, device="cpu", dtype="float32")
    layers = model.config.num_hidden_layers
    parts = study(layers, False, args.limit).parts
    points = [grid(layers, part.variants, part.ns, part.seeds, list(part.loops)) for part in parts]
    settings = Settings(args.batch_size)
    folder = Path(tempfile.mkdtemp(prefix="ray-sweep-"))
    with Store(folder / "speeds.db") as store:  # measure the speeds once: every run below starts from them
        local = LocalPool(Worker(model, tokenizer))
        for part, part_points in zip(parts, points, strict=True):
            run_sweep(local, args.model, part_points, [], store, part.limit, None, settings, progress=False)
    with sqlite3.connect(folder / "speeds.db") as db:
        plans = len(db.execute("SELECT plan FROM speeds").fetchall())
    for name in ("single", "ray1", "ray2"):
        (folder / f"{name}.db").write_bytes((folder / "speeds.db").read_bytes())

    single = sweep_all(LocalPool(Worker(model, tokenizer)), args.model, parts, points, folder / "single.db", settings)
    del model
    rows = []
    for workers in (1, 2):
        start = time.perf_counter()
        pool = ray_pool("local", args.model, PLACEMENT, workers, 1, 0)

        ray.get([actor.pid.remote() for actor in pool.actors])  # every worker has loaded the model
        startup = time.perf_counter() - start
        units = counted(pool)
        try:
            seconds = sweep_all(pool, args.model, parts, points, folder / f"ray{workers}.db", settings)
        finally:
            pool.close()
        rows.append((workers, startup, seconds, units[0]))
    expected = cells(folder / "single.db")
    for workers in (1, 2):
        if cells(folder / f"ray{workers}.db") != expected:
            raise SystemExit(f"the store of {workers} Ray workers differs from the single-process store")

    tasks = sorted({task for part in parts for task in part.tasks})
    print(f"{args.model}, {plans} plans, tasks {', '.join(tasks)} at --limit {args.limit} (parts' own limits), "
          f"{len(expected)} cells, identical in all three stores")  # fmt: skip
    print("| run | start-up s | sweep s | units | vs single | vs 1 worker |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| single process, 1 thread | - | {single:.1f} | - | 1.00 | - |")
    one = rows[0][2]
    for workers, startup, seconds, units in rows:
        print(f"| Ray, {workers} worker(s) x 1 CPU | {startup:.1f} | {seconds:.1f} | {units} | "
              f"{seconds / single:.2f} | {seconds / one:.2f} |")  # fmt: skip
    overhead = (one - single) / rows[0][3]
    print(f"scaling (2 workers / 1): {rows[1][2] / one:.2f} (target <= 0.6); overhead (1 worker / single): "
          f"{one / single:.2f} (target < 1.10), {overhead * 1000:.0f} ms per unit")  # fmt: skip


if __name__ == "__main__":
    main()
