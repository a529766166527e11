"""Running a loaded model under a plan, in place, without copying weights.

The model's own forward keeps doing everything (embeddings, masks, rotary tables, KV cache, final
norm, generation). We only swap its layer list for one *slot* per executed layer call and tell the
config how many slots there are and which attention type each has, so the model builds a KV cache
with one entry per call. A slot runs the original layer module with its cache index pointed at the
slot, so repeated, reordered and looped layers never share cache entries.

A parallel block becomes one slot per member, run one after another: each member reads the block's
input, adds its output to the block's running sum and passes the input on; the last member returns
the mean. The sum is kept in float32 on the block input's device, whatever device each member runs on
(accelerate may split a block over GPUs), and cast back once: in bfloat16 a running sum would lose
most of a wide block's update. Every member keeps its own cache slot, so cached generation under a parallel plan is exact.
"""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn
from transformers import PreTrainedModel

from painters.core.adapters import Adapter, adapter_for, cache_index_holders
from painters.core.grammar import PlanError, Unit, members
from painters.core.plan import Plan
from painters.core.prefix_memo import PrefixMemo


class _Block:
    """The state a parallel block's members share during one forward pass."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.input: torch.Tensor | None = None
        self.total: torch.Tensor | None = None


class LayerSlot(nn.Module):
    """One executed layer call: an original layer, run in KV-cache slot `slot`.

    `prefix` is the plan's units up to and including this call's step, and `ends_step` says whether
    this call produces the step's output (a layer, or a parallel block's last member); a `memo` (see
    `painters.core.prefix_memo`) uses them to replay steps that plans share.
    """

    def __init__(
        self,
        layer: nn.Module,
        slot: int,
        holders: list[nn.Module],
        block: _Block | None,
        member: int,
        prefix: tuple[Unit, ...],
        memo: PrefixMemo | None = None,
    ):
        super().__init__()
        self.layer = layer
        self.slot = slot
        self.prefix = prefix
        self.ends_step = block is None or member == block.size - 1
        self._holders = holders
        self._block = block
        self._member = member
        self._memo = memo

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self._memo is not None:
            return self._memo.call(self, hidden_states, args, kwargs)
        return self.compute(hidden_states, args, kwargs)

    def compute(self, hidden_states: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
        """Run the layer (or parallel member) itself."""
        if self._block is None:
            return self._call_layer(hidden_states, args, kwargs)
        return self._call_member(hidden_states, args, kwargs)

    def _call_layer(self, hidden_states: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
        saved = [holder.layer_idx for holder in self._holders]
        for holder in self._holders:
            holder.layer_idx = self.slot
        try:
            return self.layer(hidden_states, *args, **kwargs)
        finally:
            for holder, index in zip(self._holders, saved, strict=True):
                holder.layer_idx = index

    def _call_member(self, hidden_states: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
        block = self._block
        if self._member == 0:
            block.input, block.total = hidden_states, None
        output = self._call_layer(block.input, args, kwargs).to(block.input.device, torch.float32)
        block.total = output if block.total is None else block.total + output
        if self._member < block.size - 1:
            return block.input
        mean = (block.total / block.size).to(block.input.dtype)
        block.input = block.total = None
        return mean

    def extra_repr(self) -> str:
        return f"slot={self.slot}"


class PlannedLayers(nn.ModuleList):
    """The layer list a planned model loops over; remembers its plan (slices, which the model takes, do not)."""

    def __init__(self, slots: list[LayerSlot], plan: Plan | None = None):
        super().__init__(slots)
        self.plan = plan


class PlanHandle:
    """A model running under a plan. `restore()` (or leaving the `with` block) puts it back as it was."""

    def __init__(self, model: PreTrainedModel, adapter: Adapter, plan: Plan, memo: PrefixMemo | None = None):
        """Swap in one slot per executed layer call and size the config (and so the KV cache) to match."""
        self.model, self.plan = model, plan
        self._adapter, self._layers = adapter, adapter.layer_list(model)
        adapter.set_layer_list(model, PlannedLayers(_slots(self._layers, plan, memo), plan))
        self._config = set_fields(model.base_model.config, planned_fields(model.base_model.config, plan))
        self.active = True

    def restore(self) -> None:
        """Put back the original layer list and config; calling it again does nothing."""
        if not self.active:
            return
        self._adapter.set_layer_list(self.model, self._layers)
        set_fields(self.model.base_model.config, self._config)
        self.active = False

    def __enter__(self) -> PlanHandle:
        return self

    def __exit__(self, kind: type | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.restore()


def apply_plan(model: PreTrainedModel, plan: Plan | str | None, memo: PrefixMemo | None = None) -> PlanHandle:
    """Make `model` run under `plan` (None: the full plan) for forward and generate, in place.

    Returns the handle that undoes it. A `memo` lets plans run one after another share their common
    prefix (`painters.core.prefix_memo`).
    While the plan is active the model's layer list holds the slots, so its `state_dict()` has slot keys
    and `config.num_hidden_layers` counts layer calls: restore before saving the model.
    """
    adapter = adapter_for(model.config.model_type)
    layers = adapter.layer_list(model)
    if isinstance(layers, PlannedLayers):
        raise PlanError(
            f"the model already runs under plan '{layers.plan}': restore its handle before applying another"
        )
    return PlanHandle(model, adapter, resolve_plan(model, plan), memo)


def resolve_plan(model: PreTrainedModel, plan: Plan | str | None) -> Plan:
    """`plan` checked against the model's layers: parsed if text, the full plan (the unmodified model) if None."""
    num_layers = len(adapter_for(model.config.model_type).layer_list(model))
    if plan is None:
        return Plan.full(num_layers)
    return Plan.parse(plan, num_layers) if isinstance(plan, str) else plan.check(num_layers)


def planned_fields(config, plan: Plan) -> dict[str, object]:
    """The config entries that describe the executed layer calls: their number and each call's attention type."""
    fields: dict[str, object] = {"num_hidden_layers": len(plan.layers())}
    if getattr(config, "layer_types", None) is not None:
        fields["layer_types"] = [config.layer_types[i] for i in plan.layers()]
    return fields


def set_fields(config, fields: dict[str, object]) -> dict[str, object]:
    """Set config entries; returns their previous values, which `set_fields` puts back."""
    previous = {name: getattr(config, name) for name in fields}
    for name, value in fields.items():
        setattr(config, name, value)
    return previous


def _slots(layers: nn.ModuleList, plan: Plan, memo: PrefixMemo | None) -> list[LayerSlot]:
    holders = [cache_index_holders(layer) for layer in layers]
    slots: list[LayerSlot] = []
    for step, unit in enumerate(plan.units):
        block = _Block(len(unit)) if isinstance(unit, tuple) else None
        prefix = plan.units[: step + 1]
        for member, index in enumerate(members(unit)):
            slots.append(LayerSlot(layers[index], len(slots), holders[index], block, member, prefix, memo))
    return slots
