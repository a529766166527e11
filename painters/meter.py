"""Wall-clock time and peak memory on the model's device: the one place that knows how each device counts them.

Accelerators run asynchronously, so a timing is only true once the device has finished the work: the
meter synchronises before starting and before stopping the clock. Peak memory is the device's own
counter on an accelerator (CUDA's peak allocated bytes) and the process's peak resident set size on the
CPU (Linux's VmHWM, reset through /proc/self/clear_refs after glibc has returned freed memory), so it
includes the weights.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None
if _LIBC is not None and not hasattr(_LIBC, "malloc_trim"):  # not glibc
    _LIBC = None


class Meter:
    """Times calls and tracks peak memory on one device."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"

    def seconds(self, call: Callable[[], object]) -> float:
        """How long `call` takes, the device's queued work included."""
        self._synchronize()
        start = time.perf_counter()
        call()
        self._synchronize()
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

    def _synchronize(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)
