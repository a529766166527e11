"""A sweep's grid: which variants, at which n, seeds and loop counts, become which plans.

Each grid point keeps its label (variant, n, seed, loops, layer) next to its plan, so results can be
plotted per variant even when two points build the same plan (which is evaluated once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from painters.core.errors import PaintersError
from painters.core.plan import Plan
from painters.core.variants import VARIANTS, options_of
from painters.study.store import NONE, Label

MAX_POINTS = 10_000  # plans in one grid, and values of one --n or --loops: far beyond the paper's, and a guard


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
            values = range(start, stop + 1, step[0] if step else 1)
        else:
            values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise PaintersError(
            f"bad {option} '{text}': give a comma list such as 2,4,8 or start:stop:step such as 2:28:2"
        ) from None
    count = len(values) if isinstance(values, list) else max(0, -(-(values.stop - values.start) // values.step))
    if not count:  # (a range's len() overflows past 2**63 values: counted by hand)
        raise PaintersError(f"{option} '{text}' gives no values: give a comma list or start:stop:step")
    if count > MAX_POINTS:
        raise PaintersError(f"{option} '{text}' gives {count} values, more than {MAX_POINTS}: give fewer")
    return list(values)


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
    every = (label for variant in variants for label in _labels(variant, num_layers, ns, seeds, loops))
    labels = list(islice(every, MAX_POINTS + 1))  # one past the limit says the grid is too large, lazily
    if len(labels) > MAX_POINTS:
        raise PaintersError(
            f"the grid has more than {MAX_POINTS} plans: give fewer --variants, --n, --seeds or --loops values"
        )
    return [GridPoint(Label("full"), Plan.full(num_layers)), *(GridPoint(lb, _plan(num_layers, lb)) for lb in labels)]


def _labels(variant: str, num_layers: int, ns: list[int], seeds: int, loops: list[int]) -> Iterator[Label]:
    takes = options_of(variant)
    if "layer" in takes:
        last = num_layers - 1 if variant == "skip_layer" else num_layers - 2
        yield from (Label(variant, layer=layer) for layer in range(last + 1))
    elif "n" in takes:  # full has neither: it is already the first point
        seed_values = range(seeds) if "seed" in takes else [NONE]
        loop_values = loops if "loops" in takes else [NONE]
        yield from (Label(variant, n, seed, k) for n in ns for seed in seed_values for k in loop_values)


def _plan(num_layers: int, label: Label) -> Plan:
    options = {"n": label.n, "seed": label.seed, "loops": label.loops, "layer": label.layer}
    return Plan.variant(label.variant, num_layers, **{k: v for k, v in options.items() if v != NONE})
