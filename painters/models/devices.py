"""Where a model runs, at run time: the one module that asks a loaded model's devices anything.

The names a user gives (`--device`, `--dtype`, `--device-map`, `--attn`) and what `auto` means on this
machine are `painters.models.placement`. Everything downstream asks this module where a model takes its
inputs, how many tokens a forward pass should hold, how much memory the prefix memo may keep, and how to
time work and read peak memory (`Meter`), instead of testing device names itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from painters.core.errors import PaintersError
from painters.models.placement import DTYPE_NAMES

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
MEMO_FRACTION = 0.25  # of the free memory where the model takes its inputs: the prefix memo's default budget
_TOKENS_PER_PASS = {"cpu": 1024, "mps": 4096, "cuda": 16384}  # past these a device runs at full speed
_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None
if _LIBC is not None and not hasattr(_LIBC, "malloc_trim"):  # not glibc
    _LIBC = None


def input_device(model: torch.nn.Module) -> torch.device:
    """Where the model takes its input ids: its embedding's execution device.

    Under accelerate's offload the embedding's weights may sit on the `meta` device (`model.device` says
    so); its hook then names the device it runs on.
    """
    embedding = model.get_input_embeddings()
    hook = getattr(embedding, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is not None:
        return torch.device(device if not isinstance(device, int) else f"cuda:{device}")
    return embedding.weight.device


def stored_tensor(model: torch.nn.Module, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The values of the state-dict entry `name`, wherever they are kept.

    accelerate's cpu and disk offload leave an offloaded parameter on the `meta` device and keep its
    values in the weights map of its module's hook, from which they are read (from disk, if there).
    """
    if tensor.device.type != "meta":
        return tensor
    path, _, attribute = name.rpartition(".")
    hook = getattr(model.get_submodule(path), "_hf_hook", None)
    for candidate in getattr(hook, "hooks", None) or [hook]:
        weights = getattr(candidate, "weights_map", None)
        if weights is not None and attribute in weights:
            return weights[attribute]
    raise PaintersError(f"the model's weight {name} is on the meta device and no offload hook holds its values")


def tokens_per_pass(device: torch.device) -> int:
    """Default tokens per forward pass, padding included: enough to run the device at full speed."""
    return _TOKENS_PER_PASS.get(device.type, _TOKENS_PER_PASS["cpu"])


def free_memory(device: torch.device) -> int:
    """Bytes free on `device` now (host memory for the CPU and Apple GPUs, which share it)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def memo_budget(device: torch.device) -> int:
    """Default bytes the prefix memo may keep: a fraction of the free memory where the states live."""
    return int(MEMO_FRACTION * free_memory(device))


def statistics_device(device: torch.device) -> torch.device:
    """Where float64 statistics of states on `device` can be computed: there, unless it lacks float64 (mps)."""
    return torch.device("cpu") if device.type == "mps" else device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Meter:
    """Times calls and tracks peak memory on one device.

    Accelerators run asynchronously, so a timing is only true once the device has finished the work: the
    meter synchronises before starting and before stopping the clock. Peak memory is the device's own
    counter on CUDA (peak allocated bytes) and the process's peak resident set size on the CPU (Linux's
    VmHWM, reset through /proc/self/clear_refs after glibc has returned freed memory), so it includes the
    weights.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"

    def seconds(self, call: Callable[[], object]) -> float:
        """How long `call` takes, the device's queued work included."""
        synchronize(self.device)
        start = time.perf_counter()
        call()
        synchronize(self.device)
        return time.perf_counter() - start

    def reset_peak(self) -> None:
        """Start a new peak-memory window."""
        if self._cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        elif _CLEAR_REFS.exists():
            if _LIBC is not None:
                _LIBC.malloc_trim(0)  # hand freed memory back, or an earlier run's peak stays resident and hides this one
            _CLEAR_REFS.write_text("5")

    def peak_mib(self) -> float:
        """The peak memory since `reset_peak` in MiB (NaN where the platform does not say)."""
        if self._cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if not _STATUS.exists():
            return float("nan")
        return int(re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())[1]) / 1024

    def describe(self) -> str:
        """The device in words, for tables and stored measurements."""
        if self._cuda:
            return torch.cuda.get_device_name(self.device)
        threads = torch.get_num_threads()
        return f"cpu, {threads} thread{'s' if threads > 1 else ''}"
