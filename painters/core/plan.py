"""A layer plan: which layers run, in what order, how often, and which run side by side.

A plan is a plain immutable value: the sequence of units the model executes (`painters.core.grammar`).
Its text form is the one users type and the one we store, so printing is canonical and
`Plan.parse(str(plan)) == plan` always holds. Text and variant specs become a Plan once, at the edge
(`Plan.resolve`); everything after takes the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from painters.core import variants
from painters.core.grammar import Unit, check_index, format_units, members, normalise_units, parse_units


@dataclass(frozen=True)
class Plan:
    """The executed sequence of units; equal plans run the same computation."""

    units: tuple[Unit, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", normalise_units(self.units))

    @classmethod
    def parse(cls, text: str, num_layers: int | None = None) -> Plan:
        """Parse plan text; with `num_layers`, also check every index is in range."""
        return cls(parse_units(text, num_layers))

    @classmethod
    def full(cls, num_layers: int) -> Plan:
        """Every layer once, in its own order: the unmodified model."""
        return cls.variant("full", num_layers)

    @classmethod
    def variant(cls, name: str, num_layers: int, **options: int | tuple[int, int] | None) -> Plan:
        """A named variant of the paper's Figure 1 with its options; see `painters.core.variants`."""
        return cls(variants.variant_units(name, num_layers, **options))

    @classmethod
    def resolve(cls, spec: str, num_layers: int) -> Plan:
        """Plan text (`0-11,18-29`) or a variant with options (`skip:n=6`, `shuffle:n=8,seed=1`), for a model
        with `num_layers` layers: what a `--plan` option means."""
        if not variants.is_variant_spec(spec):
            return cls.parse(spec, num_layers)
        name, options = variants.parse_spec(spec)
        return cls.variant(name, num_layers, **options)

    def check(self, num_layers: int) -> Plan:
        """Raise PlanError unless every layer index is valid for a model with `num_layers` layers."""
        for layer in self.layers():
            check_index(layer, num_layers, f"plan '{self}'")
        return self

    def layers(self) -> tuple[int, ...]:
        """Every layer call in execution order, parallel members flattened in block order."""
        return tuple(m for unit in self.units for m in members(unit))

    def __str__(self) -> str:
        return format_units(self.units)

    def __repr__(self) -> str:
        return f"Plan('{self}')"
