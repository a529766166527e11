"""Where and how a model is to be loaded, as the user names it: device, dtype, device map, attention kernel.

`Placement.named()` checks the names alone, without torch, so the command line answers a misspelt option
in well under a second; `Placement.check()` then asks this machine (torch) what `auto` means and whether
the named device exists, before anything loads. What a device does at run time is `painters.models.devices`.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from painters.core.errors import PaintersError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = ("float32", "bfloat16", "float16")
DEVICE_MAPS = ("auto", "balanced", "sequential")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::(\d+))?")


@dataclass(frozen=True)
class Placement:
    """Where and how to load a model. `check()` gives the resolved placement (no `auto` left but the map's)."""

    device: str = "auto"
    dtype: str = "auto"
    device_map: str | None = None
    attn: str | None = None

    def named(self) -> Placement:
        """This placement if every name is one painters knows (and flash attention, if named, is installed),
        or a one-line error naming what is valid."""
        if _DEVICE.fullmatch(self.device) is None:
            raise PaintersError(f"unknown --device '{self.device}': valid devices are auto, cpu, cuda, cuda:N, mps")
        if self.dtype != "auto" and self.dtype not in DTYPE_NAMES:
            raise PaintersError(f"unknown --dtype '{self.dtype}': valid dtypes are auto, {', '.join(DTYPE_NAMES)}")
        if self.device_map is not None:
            if self.device_map not in DEVICE_MAPS:
                raise PaintersError(
                    f"unknown --device-map '{self.device_map}': valid maps are {', '.join(DEVICE_MAPS)}"
                )
            if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
                raise PaintersError(
                    f"--device-map spreads a model over CUDA GPUs, CPU and disk: not over '{self.device}'"
                )
        if self.attn is not None and self.attn not in ATTENTION:
            raise PaintersError(f"unknown --attn '{self.attn}': valid kernels are {', '.join(ATTENTION)}")
        if self.attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            raise PaintersError("--attn flash_attention_2 needs the flash-attn package: pip install flash-attn")
        return self

    def check(self) -> Placement:
        """This placement with `auto` resolved on this machine, or a one-line error naming what is valid here."""
        device = _resolve_device(self.named().device)
        return replace(self, device=device, dtype=_resolve_dtype(self.dtype, device))

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)  # a resolved placement's dtype is one of DTYPE_NAMES

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
    import torch

    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise PaintersError("--device mps: this machine has no Apple GPU (valid here: auto, cpu)")
        return name
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(_DEVICE.fullmatch(name).group(1) or 0)
    if index >= count:
        have = "no CUDA GPU" if count == 0 else f"{count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
        raise PaintersError(f"--device {name}: this machine has {have} (valid here: {', '.join(_valid_devices())})")
    return f"cuda:{index}"


def _valid_devices() -> list[str]:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [
        "auto",
        "cpu",
        *(f"cuda:{i}" for i in range(count)),
        *(["mps"] if torch.backends.mps.is_available() else []),
    ]


def _resolve_dtype(name: str, device: str) -> str:
    import torch

    if name == "auto":
        on_gpu = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return "bfloat16" if on_gpu else "float32"
    return name
