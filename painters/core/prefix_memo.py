"""Sharing the layers that plans have in common: every plan whose first k steps agree runs them once.

Plans of a sweep run one after another on the same batch, in sorted order, so plans sharing a prefix
are neighbours. Each forward pass a plan makes on the batch is numbered; the scoring code makes the
same passes, in the same order, under every plan. For each pass, the memo keeps the output of every
step whose prefix the next plan shares, with the KV-cache layers its slots filled; a plan that reaches
a kept prefix takes them instead of running its layers. The tensors are the ones the layers computed
on identical inputs, so results are bit-identical to running each plan alone on the same batches.

What the memo keeps is bounded by a byte budget: a step that would start past it is not kept, and the
plans after it simply run that step themselves (the same numbers, less shared work).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from painters.core.adapters import Adapter
from painters.core.grammar import Unit
from painters.core.plan import Plan


@dataclass
class _Entry:
    """One step of one pass: its output once complete, and each of its slots' KV-cache layer."""

    output: torch.Tensor | None = None
    cache_layers: dict[int, object] = field(default_factory=dict)

    def bytes(self) -> int:
        tensors = [self.output, *(t for layer in self.cache_layers.values() for t in vars(layer).values())]
        return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


class PrefixMemo:
    """Step outputs of one batch that later plans with the same prefix reuse; see the module docstring."""

    def __init__(self, adapter: Adapter, budget: int) -> None:
        self._adapter = adapter
        self._budget = budget  # bytes
        self._entries: dict[tuple[int, tuple[Unit, ...]], _Entry] = {}
        self._keep = 0
        self._pass = -1
        self.bytes = 0
        self.replayed = 0  # layer-call tokens taken from the memo instead of computed (what sharing saved)

    def start_plan(self, plan: Plan, keep_steps: int) -> None:
        """Before `plan` runs on the batch: drop what it cannot use, keep its first `keep_steps` steps' outputs."""
        self._entries = {key: e for key, e in self._entries.items() if plan.units[: len(key[1])] == key[1]}
        self._keep, self._pass = keep_steps, -1
        self.bytes = sum(entry.bytes() for entry in self._entries.values())

    def clear(self) -> None:
        """Forget everything (a new batch)."""
        self._entries.clear()
        self.bytes = 0

    def call(self, slot, hidden_states: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
        """Run `slot` (a LayerSlot) or replay it from the memo."""
        if slot.slot == 0:
            self._pass += 1
        key = (self._pass, slot.prefix)
        cache = self._adapter.cache_of(args, kwargs)
        entry = self._entries.get(key)
        if entry is not None and entry.output is not None:
            self.replayed += hidden_states.numel() // hidden_states.shape[-1]
            if cache is not None:
                cache.layers[slot.slot] = copy.copy(entry.cache_layers[slot.slot])
            return entry.output if slot.ends_step else hidden_states
        output = slot.compute(hidden_states, args, kwargs)
        if len(slot.prefix) <= self._keep:
            if entry is None and self.bytes < self._budget:  # a step's first call decides whether it is kept
                entry = self._entries[key] = _Entry()
            if entry is not None:
                before = entry.bytes()
                if cache is not None:
                    entry.cache_layers[slot.slot] = copy.copy(cache.layers[slot.slot])  # updates replace tensors
                if slot.ends_step:
                    entry.output = output
                self.bytes += entry.bytes() - before
        return output


def shared_steps(first: Plan, second: Plan | None) -> int:
    """How many leading steps two plans have in common (0 when there is no second plan)."""
    if second is None:
        return 0
    count = 0
    for a, b in zip(first.units, second.units, strict=False):
        if a != b:
            break
        count += 1
    return count


def sharing_order(plans: list[Plan]) -> list[Plan]:
    """The distinct plans, sorted by their units so that plans sharing a prefix are neighbours."""
    return sorted(
        set(plans), key=lambda plan: [(0, unit) if isinstance(unit, int) else (1, unit) for unit in plan.units]
    )
