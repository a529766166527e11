"""Checks of command-line input that run before any model loads or any file is created.

Every command calls these first, so a bad path, name or number costs no waiting and leaves nothing
behind: each raises a PaintersError whose one line says what is wrong and what would be valid.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from painters.core.adapters import adapter_for, context_length
from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.core.variants import is_variant_spec
from painters.models.embedded import EMBEDDED, ModelError, embedded_path

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def comma_list(text: str, option: str, example: str) -> list[str]:
    """The distinct non-empty items of a comma list, in the order given."""
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not items:
        raise PaintersError(f"no values given for {option}: pass a comma list, e.g. {example}")
    return items


def output_file(path: Path | None, option: str, inputs: tuple[Path | None, ...] = ()) -> None:
    """A file a command will write: not a folder, in an existing folder where a file can be written, and
    none of the command's `inputs` (a store's -wal and -shm files included)."""
    if path is None:
        return
    no_broken_link(path, option)
    if path.is_dir():
        raise PaintersError(f"{option} '{path}' is a folder: give a file name inside it, e.g. {path / 'out'}")
    folder = path.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist; create it first"
        raise PaintersError(f"{option} '{path}': the folder '{folder}' {what}")
    if not (_can_rewrite(path) if path.exists() else _can_create_in(folder)):
        raise PaintersError(f"{option} '{path}' is not writable: give a path you can write to")
    _not_an_input(path, option, inputs, replaced=True)


def output_folder(path: Path, option: str, inputs: tuple[Path | None, ...] = (), replaced: bool = False) -> None:
    """A folder a command will create or fill (or, `replaced`, swap for a new one): not an existing file,
    inside a folder where files can be written; neither one of the command's `inputs` nor, when it is
    replaced, holding one."""
    no_broken_link(path, option)
    if path.exists() and not path.is_dir():
        raise PaintersError(f"{option} '{path}' is an existing file, not a folder: give a folder name")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise PaintersError(f"{option} '{path}': '{existing}' is a file, not a folder; give another path")
    if not _can_create_in(existing):
        raise PaintersError(f"{option} '{path}': '{existing}' is not a writable folder; give another path")
    _not_an_input(path, option, inputs, replaced)


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`: tried, since permissions do not say (root, /proc, read-only
    mounts); the folder's times are put back, so the try leaves no trace."""
    times = folder.stat()
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.utime(folder, ns=(times.st_atime_ns, times.st_mtime_ns))
    return True


def _can_rewrite(path: Path) -> bool:
    """Whether an existing file opens for writing (without truncating it or waiting on a pipe)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


def _not_an_input(path: Path, option: str, inputs: tuple[Path | None, ...], replaced: bool) -> None:
    """Writing `path` must not destroy what the command reads: it is no input (nor an input's SQLite side
    file), and a path written as a whole (a file, a replaced folder) holds none."""
    target = path.resolve()
    for source in filter(None, inputs):
        read = source.resolve()
        family = [read, *(read.with_name(read.name + suffix) for suffix in SQLITE_SIDE_FILES)]
        if any(target == member or _same_file(target, member) for member in family):
            raise PaintersError(f"{option} '{path}' is what the command reads ('{source}'): give another path")
        if replaced and read.is_relative_to(target):
            raise PaintersError(f"{option} '{path}' holds what the command reads ('{source}'): give another path")


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links, bind mounts


def input_folder(path: Path | None, option: str) -> None:
    """A folder a command reads from: it must exist and be a folder, never silently replaced by a default."""
    if path is not None and not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise PaintersError(f"{option} '{path}' {what}: give a folder of <task>.jsonl files")


def store_to_write(path: Path) -> None:
    """A results store a sweep writes: a new file in an existing folder, or an existing writable file, with
    its folder writable too (SQLite keeps its -wal and -shm files beside the store)."""
    no_broken_link(path, "--db")
    if path.exists():
        if not path.is_file():
            raise PaintersError(f"--db '{path}' is not a file: give a results store file, e.g. results.db")
        if not _can_rewrite(path) or not _can_create_in(path.parent):
            raise PaintersError(f"--db '{path}' is read-only: a sweep writes into its store; give a writable file")
        return
    if not path.parent.is_dir():
        raise PaintersError(f"--db '{path}': the folder '{path.parent}' does not exist; create it first")
    if not _can_create_in(path.parent):
        raise PaintersError(f"--db '{path}': the folder '{path.parent}' is not writable; give another path")


def no_broken_link(path: Path | None, option: str) -> None:
    """A symbolic link that leads nowhere (dangling, or a loop) is named as such, not taken for a new file."""
    if path is not None and path.is_symlink() and not path.exists():
        raise PaintersError(f"{option} '{path}' is a symbolic link that leads nowhere (dangling or a loop)")


@dataclass(frozen=True)
class ModelFacts:
    """What a model's files say before its weights load: its architecture and number of layers."""

    num_layers: int
    encoder: bool
    context_length: int


def local_model(name: str) -> Path | None:
    """The file or folder a model name reads on this machine (None for a hub id): an input no output may be."""
    path = _model_path(name)
    return path if name.strip() and path.exists() else None


def _model_path(name: str) -> Path:
    """Where a model name would be on this machine: an embedded model's (first) file, or the path as given."""
    return embedded_path(name, whole=False) if name in EMBEDDED else Path(name).expanduser()


def model_source(name: str) -> ModelFacts | None:
    """Check a model name before loading it; the facts its config (or GGUF header) gives, None for a hub id.

    An empty name would load the current folder and a folder without a config is no model, so both fail
    here; so does a .gguf file that is not GGUF.
    """
    if not name.strip():
        names = ", ".join(EMBEDDED)
        raise ModelError(f"empty --model: give an embedded name ({names}), a folder, a .gguf file or a hub id")
    path = _model_path(name)
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
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"'{config}' is not JSON ({error}): a model folder's config.json is") from None
    if not isinstance(values, dict) or not isinstance(values.get("model_type"), str):
        raise ModelError(f"'{config}' is not a Hugging Face model config: it names no model_type")
    encoder = adapter_for(values["model_type"]).encoder  # an architecture painters has no adapter for: listed
    layers = values.get("num_hidden_layers", values.get("n_layer"))
    if not _whole(layers):
        raise ModelError(f"'{config}' gives no layer count: num_hidden_layers must be a positive whole number")
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if key in values and not _whole(values[key]):
            raise ModelError(f"'{config}': {key} is {json.dumps(values[key])[:40]}, not a positive whole number")
    for weights in sorted(folder.glob("*.safetensors")):
        _safetensors_header(weights)
    return ModelFacts(layers, encoder, context_length(SimpleNamespace(**values)))


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _safetensors_header(path: Path) -> None:
    """A safetensors file starts with its header's length and the header, JSON: else it is damaged."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else size
        try:
            if length > size - 8 or not isinstance(json.loads(f.read(length)), dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            raise ModelError(f"'{path}' is not a safetensors file (its header is damaged): replace it") from None


def _gguf_facts(name: str, path: Path) -> ModelFacts:
    if path.suffix != ".gguf" and name not in EMBEDDED:  # an embedded model in chunks: its first chunk
        raise ModelError(f"'{name}' is a file but not a .gguf: give a model folder, a .gguf file or a hub id")
    try:
        with path.open("rb") as f:
            header = _gguf_header(f)
        arch = header["general.architecture"]
        layers, context = int(header[f"{arch}.block_count"]), int(header[f"{arch}.context_length"])
    except (ValueError, KeyError, struct.error, UnicodeDecodeError) as error:
        raise ModelError(f"cannot read the GGUF header of '{name}' ({error}): give a valid .gguf file") from None
    return ModelFacts(layers, False, context)  # painters loads a GGUF as a causal decoder


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}  # GGUF types
_STRING, _ARRAY = 8, 9
_WANTED = ("general.architecture", ".block_count", ".context_length")


def _gguf_header(f) -> dict[str, object]:
    """The scalar metadata of a GGUF file up to its layer count and context length, read from its first bytes.

    gguf.GGUFReader parses every tensor and the whole vocabulary first (seconds for a small model); this
    reads the key-value header in order (GGUF v2+, little-endian) and stops once it has what painters needs.
    """
    if f.read(4) != b"GGUF":
        raise ValueError("it does not start with 'GGUF'")
    _version, _tensors, count = struct.unpack("<IQQ", f.read(20))
    found: dict[str, object] = {}
    for _ in range(count):
        key = _gguf_string(f)
        found[key] = _gguf_value(f, struct.unpack("<I", f.read(4))[0])
        if sum(any(k.endswith(w) for k in found) for w in _WANTED) == len(_WANTED):
            break
    return found


def _gguf_string(f) -> str:
    (length,) = struct.unpack("<Q", f.read(8))
    if length > 1 << 20:
        raise ValueError(f"a string of {length} bytes in the header")
    return f.read(length).decode("utf-8")


def _gguf_value(f, kind: int) -> object:
    if kind in _SCALARS:
        fmt = "<" + _SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _gguf_string(f)
    if kind == _ARRAY:
        item, length = struct.unpack("<IQ", f.read(12))
        for _ in range(length):  # skipped: painters needs no array
            _gguf_value(f, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def limit(value: int | None) -> None:
    """A `--limit` of documents, when given, is positive."""
    if value is not None and value < 1:
        raise PaintersError(f"--limit {value} is out of range: give a positive number of documents")


def eval_options(harness: str, limit_value: int | None, data_dir: Path | None) -> None:
    """`painters eval`'s harness, limit and data folder."""
    if harness not in ("painters", "lm-eval"):
        raise PaintersError(f"unknown harness '{harness}': valid harnesses are painters, lm-eval")
    limit(limit_value)
    if data_dir is not None and harness == "lm-eval":
        raise PaintersError("--data-dir works with the painters harness only: lm-eval reads its own task data")
    if harness == "lm-eval" and importlib.util.find_spec("lm_eval") is None:
        raise PaintersError("--harness lm-eval needs lm-eval-harness: pip install 'painters[lm-eval]'")
    input_folder(data_dir, "--data-dir")


def text(value: str, option: str) -> None:
    """Text from the command line: not empty, and UTF-8 (a terminal can pass bytes no tokenizer reads)."""
    if not value:
        raise PaintersError(f"empty {option}: give the text to continue")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PaintersError(f"{option} is not UTF-8 text: give it in UTF-8") from None


def generation_given(skip_generation: bool, tasks: list[str], exact_attention: bool = False) -> None:
    """--skip-generation and --exact-attention say how a generation task is scored: without one among the
    tasks they mean nothing, and the second says how to generate, which the first skips."""
    from painters.tasks.catalog import get_task

    generating = any(get_task(name).kind == "generate" for name in tasks)
    for option, given in (("--skip-generation", skip_generation), ("--exact-attention", exact_attention)):
        if given and not generating:
            raise PaintersError(f"{option} applies to gsm8k (a generation task), and it is not among the tasks")
    if skip_generation and exact_attention:
        raise PaintersError("--exact-attention says how gsm8k generates, and --skip-generation skips generation")


def plan_before_load(spec: str, facts: ModelFacts | None) -> Plan | None:
    """The plan `spec` gives, resolved once, before anything loads: against the model's layers when its files
    tell them; for a hub id, plan text parsed (its indices are checked once the model has loaded) and a
    variant spec left to resolve then (None), since a variant needs the layer count."""
    if facts is not None:
        return Plan.resolve(spec, facts.num_layers)
    return None if is_variant_spec(spec) else Plan.parse(spec)


def decoder(facts: ModelFacts, what: str) -> None:
    """Generation needs a decoder."""
    if facts.encoder:
        raise PaintersError(f"the model is an encoder: {what} needs a decoder model such as smollm2-135m")


def new_tokens(max_new_tokens: int, context: int) -> None:
    """Prompt and new tokens share the model's context."""
    if max_new_tokens >= context:
        raise PaintersError(
            f"--max-new-tokens {max_new_tokens} does not fit the model's context of {context} tokens: "
            f"give at most {context - 1} (prompt and new tokens share the context)"
        )


def task_data(tasks: list[str], limit_value: int | None, data_dir: Path | None, glue, facts: ModelFacts | None) -> None:
    """The tasks suit the model (when its kind is known) and their data reads and fits (GLUE folds)."""
    from painters.tasks.catalog import get_task
    from painters.tasks.data import data_file
    from painters.tasks.documents import check_kinds
    from painters.tasks.documents import task_data as read_task_data

    if facts is not None:
        check_kinds(facts.encoder, "the model", [get_task(name) for name in tasks])
    if data_dir is not None:  # every file there before any is read: a missing one is the one thing said
        for name in tasks:
            data_file(data_dir, name)
    for name in tasks:
        read_task_data(name, limit_value, data_dir, glue)


def existing_store(path: Path) -> None:
    """An existing store must be one painters can resume (checked read-only, before the model loads)."""
    from painters.study.store import open_existing

    if path.is_file() and path.stat().st_size > 0:
        open_existing(path).close()
