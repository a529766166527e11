"""Sweeps on Ray: a local Ray instance with two one-thread CPU workers against the single-process sweep.

Each test starts and stops its own Ray instance (a few seconds); the workers load a tiny model folder.
"""

import os
import signal
import sqlite3

import pytest

ray = pytest.importorskip("ray", reason="Ray is optional (painters[ray]); the locked CI run has it")

import torch

import painters.study.sweep as sweep_module
from painters.models.loading import load_model
from painters.study.cluster import ray_pool
from painters.study.grid import grid
from painters.study.store import Store
from painters.study.sweep import LocalPool, run_sweep
from painters.study.units import Settings, Worker

PLACEMENT = {"device": "cpu", "dtype": "float32", "device_map": None, "attn": None}
TASKS = ["arc_easy", "winogrande", "lambada_openai"]
SETTINGS = Settings(batch_size=2, max_tokens=256)
POINTS = grid(6, ["skip", "parallel", "reverse"], [2, 4])


def swept(path, pool) -> tuple[list, list, int]:
    """Sweep the grid on `pool` into a new store; its cells, records and leftover pieces."""
    with Store(path) as store:
        run_sweep(pool, "tiny", POINTS, TASKS, store, 4, None, SETTINGS, progress=False)
    with sqlite3.connect(path) as db:
        cells = db.execute('SELECT plan, task, "limit", data_fingerprint, metrics, items FROM cells ORDER BY 1, 2')
        samples = db.execute("SELECT plan, task, records FROM samples ORDER BY plan, task")
        return cells.fetchall(), samples.fetchall(), db.execute("SELECT COUNT(*) FROM pieces").fetchone()[0]


@pytest.fixture(scope="module")
def single(tiny_folder, tmp_path_factory):
    """The single-process sweep, at one thread as each Ray worker runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, tokenizer = load_model(str(tiny_folder), **{k: v for k, v in PLACEMENT.items() if v})
        cells, samples, pieces = swept(tmp_path_factory.mktemp("single") / "r.db", LocalPool(Worker(model, tokenizer)))
    finally:
        torch.set_num_threads(threads)
    assert len(cells) == len(samples) == 7 * 3 and pieces == 0  # 6 plans and the full model, 3 tasks
    return cells, samples


def test_a_sweep_on_two_ray_workers_equals_the_single_process_sweep(tiny_folder, single, tmp_path):
    pool = ray_pool("local", str(tiny_folder), PLACEMENT, 2, 1, 0)
    try:
        assert len(pool.actors) == 2
        cells, samples, pieces = swept(tmp_path / "r.db", pool)
    finally:
        pool.close()
    assert (cells, samples, pieces) == (*single, 0)  # every metric and stderr, and every record, ==


def test_a_killed_worker_costs_only_its_unit(tiny_folder, single, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "UNIT_SECONDS", 0.0)  # units of one batch: many, on both workers
    pool = ray_pool("local", str(tiny_folder), PLACEMENT, 2, 1, 0)
    pids = pool.pids
    returned, killed = pool.next_done, []

    def kill_after_the_first_unit():
        done = returned()
        if not killed:
            os.kill(pids[1], signal.SIGKILL)  # the second worker, busy with its unit
            killed.append(pids[1])
        return done

    monkeypatch.setattr(pool, "next_done", kill_after_the_first_unit)
    try:
        cells, samples, pieces = swept(tmp_path / "r.db", pool)
        restarted = ray.get(pool.actors[1].pid.remote())
    finally:
        pool.close()
    assert killed and restarted != pids[1]  # Ray restarted the worker, which reran the unit it held
    assert (cells, samples, pieces) == (*single, 0)  # the full store, identical, each cell once


def test_gpus_per_worker_without_gpus_is_one_line(tiny_folder):
    from painters.core.errors import PaintersError

    with pytest.raises(PaintersError, match=r"^--gpus-per-worker 1: the Ray cluster has 0 GPUs; add GPU nodes"):
        ray_pool("local", str(tiny_folder), PLACEMENT, None, 1, 1.0)
    assert not ray.is_initialized()


def test_a_worker_that_cannot_load_the_model_is_one_line(tmp_path):
    from painters.core.errors import PaintersError

    with pytest.raises(PaintersError, match=r"^a Ray worker failed \(.*no_such_model.*\): the units it finished"):
        ray_pool("local", str(tmp_path / "no_such_model"), PLACEMENT, 1, 1, 0)
    assert not ray.is_initialized()
