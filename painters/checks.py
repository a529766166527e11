"""Checks of command-line input that run before any model loads or any file is created.

Every command calls these first, so a bad path, name or number costs no waiting and leaves nothing
behind: each raises a PaintersError whose one line says what is wrong and what would be valid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from painters.adapters import adapter_for, context_length
from painters.embedded import EMBEDDED, ModelError, embedded_path
from painters.errors import PaintersError

def comma_list(text: str, option: str, example: str) -> list[str]:
    """The distinct non-empty items of a comma list, in the order given."""
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not items:
        raise PaintersError(f"no values given for {option}: pass a comma list, e.g. {example}")
    return items


def output_file(path: Path | None, option: str) -> None:
    """A file a command will write: its folder must exist and be writable, and it must not be a folder."""
    if path is None:
        return
    if path.is_dir():
        raise PaintersError(f"{option} '{path}' is a folder: give a file name inside it, e.g. {path / 'out'}")
    folder = path.parent
    if not folder.is_dir():
        raise PaintersError(f"{option} '{path}': the folder '{folder}' does not exist; create it first")
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise PaintersError(f"{option} '{path}' is not writable: give a path you can write to")


def output_folder(path: Path, option: str) -> None:
    """A folder a command will create or fill: not an existing file, inside a writable existing folder."""
    if path.exists() and not path.is_dir():
        raise PaintersError(f"{option} '{path}' is an existing file, not a folder: give a folder name")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PaintersError(f"{option} '{path}': '{existing}' is not a writable folder; give another path")


def input_folder(path: Path | None, option: str) -> None:
    """A folder a command reads from: it must exist and be a folder, never silently replaced by a default."""
    if path is not None and not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise PaintersError(f"{option} '{path}' {what}: give a folder of <task>.jsonl files")


def store_to_write(path: Path) -> None:
    """A results store a sweep writes: a new file in an existing folder, or an existing writable file."""
    if path.exists():
        if not path.is_file():
            raise PaintersError(f"--db '{path}' is not a file: give a results store file, e.g. results.db")
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise PaintersError(f"--db '{path}' is read-only: a sweep writes into its store; give a writable file")
        return
    if not path.parent.is_dir():
        raise PaintersError(f"--db '{path}': the folder '{path.parent}' does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise PaintersError(f"--db '{path}': the folder '{path.parent}' is not writable; give another path")


@dataclass(frozen=True)
class ModelFacts:
    """What a model's files say before its weights load: its architecture and number of layers."""

    num_layers: int
    encoder: bool
    context_length: int


def model_source(name: str) -> ModelFacts | None:
    """Check a model name before loading it; the facts its config (or GGUF header) gives, None for a hub id.

    An empty name would load the current folder and a folder without a config is no model, so both fail
    here; so does a .gguf file that is not GGUF.
    """
    if not name.strip():
        names = ", ".join(EMBEDDED)
        raise ModelError(f"empty --model: give an embedded name ({names}), a folder, a .gguf file or a hub id")
    path = embedded_path(name) if name in EMBEDDED else Path(name).expanduser()
    if path.is_dir():
        return _folder_facts(name, path)
    if path.is_file():
        return _gguf_facts(name, path)
    return None  # a hub id, or a missing path: load_model says which


def _folder_facts(name: str, folder: Path) -> ModelFacts:
    config = folder / "config.json"
    if not config.is_file():
        raise ModelError(f"folder '{name}' holds no model: a model folder has a config.json (and weights)")
    try:
        values = json.loads(config.read_text(encoding="utf-8"))
        layers = int(values.get("num_hidden_layers", values.get("n_layer")))
        encoder = adapter_for(str(values["model_type"])).encoder
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelError(f"'{config}' is not a Hugging Face model config (it needs model_type and a layer count)") from None
    return ModelFacts(layers, encoder, context_length(SimpleNamespace(**values)))


def _gguf_facts(name: str, path: Path) -> ModelFacts:
    if path.suffix != ".gguf":
        raise ModelError(f"'{name}' is a file but not a .gguf: give a model folder, a .gguf file or a hub id")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ModelError(f"'{name}' is not a GGUF file (it does not start with 'GGUF'): give a valid .gguf file")
    import gguf

    try:
        fields = gguf.GGUFReader(str(path)).fields
        arch = fields["general.architecture"].contents()
        layers = int(fields[f"{arch}.block_count"].contents())
        context = int(fields[f"{arch}.context_length"].contents())
    except (ValueError, KeyError, IndexError, OSError) as error:
        raise ModelError(f"cannot read the GGUF header of '{name}' ({error}): give a valid .gguf file") from None
    return ModelFacts(layers, False, context)  # painters loads a GGUF as a causal decoder
