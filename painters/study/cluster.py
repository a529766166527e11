"""Sweeps on a Ray cluster: each worker is a Ray actor that loads the model once and runs units of work.

The driver (`painters.study.sweep.run_sweep`) keeps the only connection to the results store and hands units
to whichever actor is free. An actor whose process dies (killed, its node lost) is restarted by Ray,
which loads the model again and reruns the unit it held, so a lost worker costs only that unit.
Ray is an optional dependency (`pip install 'painters[ray]'`).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from painters.core.errors import PaintersError
from painters.study.units import Done, Settings, Worker, WorkUnit

RAY = "ray>=2.60"  # what `painters[ray]` asks for
CONNECT_SECONDS = 5.0  # how long a head node's address may take to answer
RESTARTS = 8  # times a worker is restarted after its process died (and its unit retried), before the sweep stops


def connect(address: str):
    """Ray, connected: `local` starts a Ray instance on this machine; `auto` or HOST:PORT joins a running one."""
    try:
        import ray
    except ImportError:
        raise PaintersError(f"--ray needs Ray, which is not installed: pip install 'painters[ray]' ({RAY})") from None
    options = {"include_dashboard": False, "logging_level": "WARNING"}
    if address not in ("local", "auto"):
        _check_reachable(address)
    try:
        ray.init(address=address, **options)  # "local" always starts a new instance here
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PaintersError(
            f"no Ray cluster at --ray {address} ({first}): start one with `ray start --head`, or give --ray local"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """A HOST:PORT that answers: Ray itself retries an unreachable address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PaintersError(f"--ray {address}: give auto, local, or the head node's HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise PaintersError(
            f"no Ray cluster at --ray {address} ({error.strerror or error}): check the head node's address, "
            "or give --ray local"
        ) from None


def ray_pool(
    address: str, model: str, placement: dict[str, Any], workers: int | None, cpus: int, gpus: float
) -> RayPool:
    """Connect to Ray and start the workers: `workers` actors (default: one per `gpus` GPUs of the cluster
    with `gpus`, else one), each holding `cpus` CPUs (and the model's threads) and `gpus` GPUs."""
    ray = connect(address)
    try:
        count = _worker_count(ray.cluster_resources(), workers, cpus, gpus)
    except PaintersError:
        ray.shutdown()
        raise
    actor = ray.remote(_RayWorker).options(
        num_cpus=cpus, num_gpus=gpus, max_restarts=RESTARTS, max_task_retries=RESTARTS
    )
    pool = RayPool(ray, [actor.remote(model, placement, cpus) for _ in range(count)])
    try:
        pool.pids = pool.wait(ray.get, [worker.pid.remote() for worker in pool.actors])  # each loaded its model
    except PaintersError:
        pool.close()
        raise
    return pool


def _worker_count(resources: dict[str, float], workers: int | None, cpus: int, gpus: float) -> int:
    """How many workers the cluster holds at once; asking for more than it has is an error, not a hang."""
    have_gpus, have_cpus = resources.get("GPU", 0), resources.get("CPU", 0)
    if gpus and have_gpus < gpus:
        raise PaintersError(
            f"--gpus-per-worker {gpus:g}: the Ray cluster has {have_gpus:g} GPUs; "
            "add GPU nodes, or leave --gpus-per-worker out to run on CPUs"
        )
    count = workers or (int(have_gpus // gpus) if gpus else 1)
    if count * cpus > have_cpus or count * gpus > have_gpus:
        raise PaintersError(
            f"{count} workers x {cpus} CPUs{f' x {gpus:g} GPUs' if gpus else ''} do not fit the Ray cluster "
            f"({have_cpus:g} CPUs, {have_gpus:g} GPUs): give fewer --workers or --cpus-per-worker"
        )
    return count


class _RayWorker(Worker):
    """A worker in its own process: it loads the model itself, with `threads` torch threads."""

    def __init__(self, model: str, placement: dict[str, Any], threads: int) -> None:
        import torch

        from painters.models.loading import load_model

        torch.set_num_threads(threads)
        self.failed = ""
        try:
            super().__init__(*load_model(model, **placement))
        except Exception as error:  # noqa: BLE001 (said by `pid`: Ray would restart a constructor that raises)
            self.failed = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"

    def pid(self) -> int:
        """The actor's process id, once its model is loaded (tests kill it: a lost worker costs its unit only)."""
        if self.failed:
            raise PaintersError(f"loading the model failed on {socket.gethostname()}: {self.failed}")
        return os.getpid()


class RayPool:
    """Ray actors running units, at most one unit each at a time."""

    def __init__(self, ray, actors: list) -> None:
        self._ray, self.actors, self.pids = ray, actors, []
        self._flying: dict[object, int] = {}  # the result of a unit in flight -> the index of its actor

    def wait(self, get, *args):
        """`get(*args)`, a worker that failed or died for good (model not loadable on its node, killed
        more than RESTARTS times) turned into one line."""
        try:
            return get(*args)
        except (self._ray.exceptions.RayActorError, self._ray.exceptions.RayTaskError) as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            cause = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "")
            raise PaintersError(
                f"a Ray worker failed ({cause.strip()[:300]}): the units it finished are stored; "
                "fix the cause and run the same command again to resume"
            ) from None

    def call(self, method: str, *args):
        """A method of the first worker, waited for (what the model is, the plans' speeds, a task's items)."""
        return self.wait(self._ray.get, getattr(self.actors[0], method).remote(*args))

    def share(self, data):
        """The data in Ray's object store, so that every unit sends a reference, not the documents."""
        return self._ray.put(data)

    @property
    def workers(self) -> int:
        return len(self.actors)

    def free(self) -> int:
        return len(self.actors) - len(self._flying)

    def busy(self) -> int:
        return len(self._flying)

    def submit(self, unit: WorkUnit, data, settings: Settings) -> None:
        idle = next(i for i in range(len(self.actors)) if i not in self._flying.values())
        self._flying[self.actors[idle].run.remote(unit, data, settings)] = idle

    def next_done(self) -> Done:
        ready, _ = self._ray.wait(list(self._flying), num_returns=1)
        self._flying.pop(ready[0])
        return self.wait(self._ray.get, ready[0])

    def close(self) -> None:
        """Stop the workers and disconnect (a cluster this driver joined keeps running); again, nothing."""
        if self._ray.is_initialized():
            for actor in self.actors:
                self._ray.kill(actor)
            self._ray.shutdown()
        self._flying.clear()
