"""Reference computations the planned execution is checked against, built without painters' execution code."""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

from painters import Plan, apply_plan
from painters.core.adapters import adapter_for, cache_index_holders
from painters.core.versions import cache_keyword


def output_of(model, **inputs) -> torch.Tensor:
    """Logits of a causal LM, last hidden state of an encoder."""
    with torch.no_grad():
        out = model(**inputs)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def rebuilt(model, order: tuple[int, ...]):
    """A copy of `model` whose layer list is physically rebuilt in `order` from copies of its layers."""
    clone = copy.deepcopy(model)
    adapter = adapter_for(clone.config.model_type)
    originals = adapter.layer_list(clone)
    layers = []
    for position, index in enumerate(order):
        layer = copy.deepcopy(originals[index])
        for module in cache_index_holders(layer):
            module.layer_idx = position
        layers.append(layer)
    adapter.set_layer_list(clone, nn.ModuleList(layers))
    config = clone.base_model.config
    config.num_hidden_layers = len(order)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in order]
    return clone


class Recorder:
    """Records each call of some layers: its hidden-state input, its other arguments, and its output."""

    def __init__(self, layers: dict[int, nn.Module]):
        self.calls: list[dict] = []
        self._handles = []
        for index, layer in layers.items():
            self._handles.append(layer.register_forward_pre_hook(self._pre(index), with_kwargs=True))
            self._handles.append(layer.register_forward_hook(self._post))

    def _pre(self, index):
        def hook(module, args, kwargs):
            self.calls.append({"layer": index, "input": args[0], "args": args[1:], "kwargs": dict(kwargs)})

        return hook

    def _post(self, module, args, output):
        self.calls[-1]["output"] = output

    def remove(self):
        for handle in self._handles:
            handle.remove()


def sequential_error(model, inputs: dict, plan: Plan) -> tuple[float, float]:
    """Max |planned - physically rebuilt| output, and max |planned - unmodified| (how much the plan changes)."""
    expected = output_of(rebuilt(model, plan.layers()), **inputs)
    with apply_plan(model, plan):
        planned = output_of(model, **inputs)
    plain = output_of(model, **inputs)
    return (planned - expected).abs().max().item(), (planned - plain).abs().max().item()


def parallel_error(model, inputs: dict, text: str, block: tuple[int, ...], after: int) -> float:
    """Max |input of the step after the plan's first block - mean of the block's members called directly|.

    The mean is taken in float32 and cast back once to the model's dtype.

    `after` is the layer that runs right after the first block; every member must receive the same input.
    """
    layers = adapter_for(model.config.model_type).layer_list(model)
    recorder = Recorder({i: layers[i] for i in (*block, after)})
    with apply_plan(model, text):
        output_of(model, **inputs)
    recorder.remove()
    members = recorder.calls[: len(block)]
    block_input = members[0]["input"]
    direct = []
    for call in members:
        assert torch.equal(call["input"], block_input)
        layer = layers[call["layer"]]
        bound = inspect.signature(layer.forward).bind(block_input, *call["args"], **call["kwargs"])
        for name in (cache_keyword(), "layer_past"):  # a direct call, outside any KV cache
            bound.arguments.pop(name, None)
        with torch.no_grad():
            direct.append(layer(*bound.args, **bound.kwargs))
    mean = (sum((d.float() for d in direct[1:]), direct[0].float()) / len(direct)).to(block_input.dtype)
    return (recorder.calls[len(block)]["input"] - mean).abs().max().item()
