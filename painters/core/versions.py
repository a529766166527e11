"""What differs between the library versions painters supports, decided once, here, from the installed
libraries themselves (what they have, not version numbers), so no other module checks a version.

transformers 5.24 renamed `past_key_values` to `cache`: in model outputs, in the arguments of a model's
forward, and in the arguments a model hands each decoder block. painters supports transformers from 5.17.
"""

from __future__ import annotations

from functools import cache


@cache
def cache_keyword() -> str:
    """`cache` (transformers 5.24 on) or `past_key_values`: the name of the KV cache in outputs and arguments.

    Read from transformers on first use, not at import, so that importing painters stays light."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def output_cache(output: object) -> object:
    """The KV cache a forward pass returned (with `use_cache=True`)."""
    return getattr(output, cache_keyword())


def cache_argument(kv_cache: object) -> dict[str, object]:
    """The keyword argument that hands a model's forward a KV cache: `model(..., **cache_argument(kv_cache))`."""
    return {cache_keyword(): kv_cache}


def converter_versions() -> dict[str, str]:
    """The versions of the libraries that turn a GGUF file into a checkpoint (its weights and tokenizer):
    part of the key of a converted model's cache, since another version may write other bytes."""
    import transformers

    return {"transformers": transformers.__version__, "gguf": _installed("gguf")}


def _installed(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
