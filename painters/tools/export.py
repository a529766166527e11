"""A plan as a checkpoint other tools load: a standard Hugging Face folder, or a mergekit passthrough recipe.

A plan without parallel blocks is just another stack of the model's own layers, which the standard
format expresses: the layer list becomes one layer per executed call (a layer used twice is written
twice: the format has no sharing), the config gets the new layer count and per-layer attention types,
and transformers' `save_pretrained` writes the rest (safetensors, tied weights, generation config).
A parallel block averages the outputs of several layers that read the same input; a standard
checkpoint is a plain sequence of layers and has no way to say that.

Both formats are written beside the target first and renamed into place, so an export killed part-way
leaves no half-written checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from torch import nn
from transformers import PreTrainedModel

from painters.core.adapters import adapter_for
from painters.core.errors import PaintersError
from painters.core.execution import PlannedLayers, planned_fields, resolve_plan, set_fields
from painters.core.grammar import unit_text
from painters.core.plan import Plan
from painters.core.staging import staging_folder

FORMATS = ("hf", "mergekit")
_SENTENCE_TRANSFORMERS = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def check_destination(out: str | Path, fmt: str, force: bool) -> None:
    """Reject an unknown format or an occupied destination, before any model loads or file is written."""
    if fmt not in FORMATS:
        raise PaintersError(f"unknown format '{fmt}': valid formats are {', '.join(FORMATS)}")
    target = Path(out)
    if target.exists() and not force and (target.is_file() or any(target.iterdir())):
        raise PaintersError(f"'{target}' already exists and is not empty: give another --out, or --force to replace it")


def check_exportable(plan: Plan) -> Plan:
    """The plan, unless it runs parallel blocks, which no checkpoint format can express."""
    blocks = [unit_text(unit) for unit in plan.units if isinstance(unit, tuple) and len(unit) > 1]
    if blocks:
        raise PaintersError(
            f"plan '{plan}' runs parallel blocks ({', '.join(sorted(set(blocks)))}): a checkpoint is a plain "
            "sequence of layers and cannot express the mean of layers that read the same input; "
            "export a plan without '[...]'"
        )
    return plan


def export(model: PreTrainedModel, tokenizer, plan: Plan | str | None, out: str | Path, fmt: str = "hf",
           force: bool = False) -> Path:  # fmt: skip
    """Write `model` under `plan` to `out` as a Hugging Face folder (`hf`) or a mergekit YAML file; returns `out`."""
    check_destination(out, fmt, force)
    plan = check_exportable(resolve_plan(model, plan))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mergekit":
        with _staged(target, folder=False) as staging:
            staging.write_text(mergekit_yaml(model, plan), encoding="utf-8")
        return target
    with _staged(target, folder=True) as staging:
        with _materialised(model, plan):
            model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _copy_sentence_transformers(Path(model.name_or_path), staging)
    return target


def mergekit_yaml(model: PreTrainedModel, plan: Plan) -> str:
    """mergekit's passthrough recipe for `plan`: one slice per ascending run of layers, ranges half-open."""
    runs: list[list[int]] = []
    for layer in plan.layers():
        if runs and layer == runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([layer, layer + 1])
    source = str(Path(model.name_or_path).resolve()) if Path(model.name_or_path).exists() else model.name_or_path
    recipe = {
        "slices": [{"sources": [{"model": source, "layer_range": run}]} for run in runs],
        "merge_method": "passthrough",
        "dtype": str(model.dtype).removeprefix("torch."),
    }
    return f"# painters plan {plan}\n" + yaml.safe_dump(recipe, sort_keys=False, default_flow_style=None)


@contextmanager
def _materialised(model: PreTrainedModel, plan: Plan) -> Iterator[None]:
    """The model with one real layer per executed call (later uses of a layer are copies), config to match."""
    adapter = adapter_for(model.config.model_type)
    layers = adapter.layer_list(model)
    if isinstance(layers, PlannedLayers):
        raise PaintersError(f"the model runs under plan '{layers.plan}': restore its handle before exporting")
    seen: set[int] = set()
    stack = []
    for index in plan.layers():
        stack.append(copy.deepcopy(layers[index]) if index in seen else layers[index])
        seen.add(index)
    adapter.set_layer_list(model, nn.ModuleList(stack))
    previous = set_fields(model.config, planned_fields(model.config, plan))
    try:
        yield
    finally:
        adapter.set_layer_list(model, layers)
        set_fields(model.config, previous)


def _copy_sentence_transformers(source: Path, folder: Path) -> None:
    """A sentence-transformers model's pooling and module files: they say how its embeddings are pooled."""
    for name in _SENTENCE_TRANSFORMERS:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    if (source / "modules.json").is_file():
        for module in json.loads((source / "modules.json").read_text()):
            if module.get("path") and (source / module["path"]).is_dir():
                shutil.copytree(source / module["path"], folder / module["path"])


@contextmanager
def _staged(target: Path, folder: bool) -> Iterator[Path]:
    """A temporary path beside `target` to write into; renamed onto `target` (replacing it) once complete."""
    staging = staging_folder(target.parent)  # a killed export's is removed by the next one
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the export gets the permissions of any new folder
    written = staging if folder else staging / target.name
    try:
        yield written
        _replace(written, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(written: Path, target: Path) -> None:
    """Rename `written` onto `target`; an old target is moved aside first and deleted only afterwards."""
    old = None
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent)) / target.name
        os.replace(target, old)
    os.replace(written, target)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
