"""Where a model runs and in what precision: the one module that knows about devices.

A user names a device (`auto`, `cpu`, `cuda`, `cuda:N`, `mps`), a dtype (`auto`, `float32`, `bfloat16`,
`float16`), optionally an accelerate device map (`auto`, `balanced`, `sequential`: one model over every
visible GPU, spilling to CPU and disk if it must) and an attention kernel. `Placement.check()` resolves
`auto` and refuses what this machine cannot do, before anything loads. Everything downstream asks this
module where a model takes its inputs, how many tokens a forward pass should hold, how much memory
the prefix memo may keep, and how to time work and read peak memory (`Meter`), instead of testing device
names itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from painters.core.errors import PaintersError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICE_MAPS = ("auto", "balanced", "sequential")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
MEMO_FRACTION = 0.25  # of the free memory where the model takes its inputs: the prefix memo's default budget
_TOKENS_PER_PASS = {"cpu": 1024, "mps": 4096, "cuda": 16384}  # past these a device runs at full speed
_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None
if _LIBC is not None and not hasattr(_LIBC, "malloc_trim"):  # not glibc
    _LIBC = None


@dataclass(frozen=True)
class Placement:
    """Where and how to load a model. `check()` gives the resolved placement (no `auto` left but the map's)."""

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    attn: str | None = None

    def check(self) -> Placement:
        """This placement with `auto` resolved, or a one-line error naming what is wrong and what is valid."""
        device = _resolve_device(self.device)
        if self.device_map is not None:
            if self.device_map not in DEVICE_MAPS:
                raise PaintersError(f"unknown --device-map '{self.device_map}': valid maps are {', '.join(DEVICE_MAPS)}")
            if self.device not in ("auto", "cpu") and not device.startswith("cuda"):
                raise PaintersError(f"--device-map spreads a model over CUDA GPUs, CPU and disk: not over '{device}'")
        if self.attn is not None and self.attn not in ATTENTION:
            raise PaintersError(f"unknown --attn '{self.attn}': valid kernels are {', '.join(ATTENTION)}")
        return replace(self, device=device, dtype=_resolve_dtype(self.dtype, device))

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def load_options(self, offload_folder: Path) -> dict:
        """Keyword arguments for `from_pretrained` that load the weights straight into place and precision."""
        options: dict = {"dtype": self.torch_dtype}
        if self.device_map is not None:
            options.update(device_map=self.device_map, offload_folder=str(offload_folder))
        elif self.device != "cpu":
            options["device_map"] = self.device  # no float32 copy in host memory first
        if self.attn is not None:
            options["attn_implementation"] = self.attn
        return options


def _resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise PaintersError("--device mps: this machine has no Apple GPU (valid here: auto, cpu)")
        return name
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise PaintersError(f"unknown --device '{name}': valid devices are auto, cpu, cuda, cuda:N, mps")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(match.group(1) or 0)
    if index >= count:
        have = "no CUDA GPU" if count == 0 else f"{count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
        raise PaintersError(f"--device {name}: this machine has {have} (valid here: {', '.join(_valid_devices())})")
    return f"cuda:{index}"


def _valid_devices() -> list[str]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu", *(f"cuda:{i}" for i in range(count)), *(["mps"] if torch.backends.mps.is_available() else [])]


def _resolve_dtype(name: str, device: str) -> str:
    if name == "auto":
        on_gpu = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return "bfloat16" if on_gpu else "float32"
    if name not in DTYPES:
        raise PaintersError(f"unknown --dtype '{name}': valid dtypes are auto, {', '.join(DTYPES)}")
    return name


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
