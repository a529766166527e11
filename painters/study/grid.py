"""A sweep's grid: which variants, at which n, seeds and loop counts, become which plans.

Each grid point keeps its label (variant, n, seed, loops, layer) next to its plan, so results can be
plotted per variant even when two points build the same plan (which is evaluated once).
"""

from __future__ import annotations

from dataclasses import dataclass

from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.core.variants import VARIANTS, options_of
from painters.study.store import NONE, Label


@dataclass(frozen=True)
class GridPoint:
    label: Label
    plan: Plan


def parse_values(text: str, option: str) -> list[int]:
    """`--n`/`--loops` values: a comma list (`2,4,8`) or `start:stop:step` with stop included (`2:28:2`)."""
    try:
        if ":" in text:
            start, stop, *step = (int(part) for part in text.split(":"))
            if len(step) > 1 or (step and step[0] < 1):
                raise ValueError
            values = list(range(start, stop + 1, step[0] if step else 1))
        else:
            values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise PaintersError(
            f"bad {option} '{text}': give a comma list such as 2,4,8 or start:stop:step such as 2:28:2"
        ) from None
    if not values:
        raise PaintersError(f"{option} '{text}' gives no values: give a comma list or start:stop:step")
    return values


def parse_variants(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        raise PaintersError(
            f"unknown variant '{unknown[0] if unknown else text}': valid variants are {', '.join(VARIANTS)}"
        )
    return names


def grid(
    num_layers: int, variants: list[str], ns: list[int], seeds: int = 1, loops: list[int] = (3,)
) -> list[GridPoint]:
    """Every grid point of `variants`, always with the full model first (the reference line of every figure).

    Band variants take each n; shuffle each of `seeds` seeds (0..seeds-1); looped_parallel each loop
    count; skip_layer every layer; swap every pair of neighbours.
    """
    if seeds < 1:
        raise PaintersError(f"--seeds {seeds} is out of range: give at least 1")
    points = [GridPoint(Label("full"), Plan.full(num_layers))]
    for variant in variants:
        points += [
            GridPoint(label, _plan(num_layers, label)) for label in _labels(variant, num_layers, ns, seeds, loops)
        ]
    return points


def _labels(variant: str, num_layers: int, ns: list[int], seeds: int, loops: list[int]) -> list[Label]:
    takes = options_of(variant)
    if "layer" in takes:
        last = num_layers - 1 if variant == "skip_layer" else num_layers - 2
        return [Label(variant, layer=layer) for layer in range(last + 1)]
    if "n" not in takes:
        return []  # full: already the first point
    seed_values = range(seeds) if "seed" in takes else [NONE]
    loop_values = loops if "loops" in takes else [NONE]
    return [Label(variant, n, seed, k) for n in ns for seed in seed_values for k in loop_values]


def _plan(num_layers: int, label: Label) -> Plan:
    options = {"n": label.n, "seed": label.seed, "loops": label.loops, "layer": label.layer}
    return Plan.variant(label.variant, num_layers, **{k: v for k, v in options.items() if v != NONE})
