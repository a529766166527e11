"""The paper's layer-execution variants (its Figure 1), each a function from options to a Plan.

Most variants change a contiguous band of middle layers. The band is half-open [a, a+n) with
a = ceil((L - n) / 2), as in the paper's code, unless the caller gives it explicitly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from painters.plan import Plan, PlanError, Unit

Band = tuple[int, int]


def middle_band(num_layers: int, n: int | None = None, band: Band | None = None) -> Band:
    """The half-open band [a, b) a variant changes: explicit, or the n layers centred as the paper centres them."""
    if band is not None:
        a, b = band
        if not 0 <= a <= b <= num_layers:
            raise PlanError(f"band {a}:{b} is not inside the model's layers: need 0 <= A <= B <= {num_layers}")
        if n is not None and n != b - a:
            raise PlanError(f"n={n} disagrees with band {a}:{b}, which holds {b - a} layers: give one of them")
        return a, b
    if n is None:
        raise PlanError("this variant needs n (the number of affected layers) or band A:B")
    if not 0 <= n <= num_layers:
        raise PlanError(f"n={n} is out of range: the model has {num_layers} layers (valid n: 0-{num_layers})")
    a = math.ceil((num_layers - n) / 2)
    return a, a + n


def _replace_band(num_layers: int, band: Band, middle: list[Unit]) -> Plan:
    a, b = band
    return Plan((*range(a), *middle, *range(b, num_layers)))


def _full(num_layers: int, **_: object) -> Plan:
    return Plan.full(num_layers)


def _skip(num_layers: int, band: Band, **_: object) -> Plan:
    return _replace_band(num_layers, band, [])


def _middle_repeat(num_layers: int, band: Band, **_: object) -> Plan:
    a, b = band
    centre = num_layers // 2 if a <= num_layers // 2 < b else (a + b) // 2
    return _replace_band(num_layers, band, [centre] * (b - a))


def _reverse(num_layers: int, band: Band, **_: object) -> Plan:
    return _replace_band(num_layers, band, list(reversed(range(*band))))


def _shuffle(num_layers: int, band: Band, seed: int, **_: object) -> Plan:
    order = list(range(*band))
    random.Random(seed).shuffle(order)  # Mersenne Twister: the same order on every machine and run
    return _replace_band(num_layers, band, order)


def _parallel(num_layers: int, band: Band, **_: object) -> Plan:
    return _looped_parallel(num_layers, band, loops=1)


def _looped_parallel(num_layers: int, band: Band, loops: int, **_: object) -> Plan:
    block = [tuple(range(*band))] * loops if band[1] > band[0] else []
    return _replace_band(num_layers, band, block)


def _skip_layer(num_layers: int, layer: int, **_: object) -> Plan:
    return Plan(tuple(i for i in range(num_layers) if i != layer))


def _swap(num_layers: int, layer: int, **_: object) -> Plan:
    order = list(range(num_layers))
    order[layer], order[layer + 1] = order[layer + 1], order[layer]
    return Plan(tuple(order))


_BAND_VARIANTS: dict[str, Callable[..., Plan]] = {
    "skip": _skip,
    "middle_repeat": _middle_repeat,
    "reverse": _reverse,
    "shuffle": _shuffle,
    "parallel": _parallel,
    "looped_parallel": _looped_parallel,
}
_LAYER_VARIANTS: dict[str, Callable[..., Plan]] = {"skip_layer": _skip_layer, "swap": _swap}
VARIANTS: tuple[str, ...] = ("full", *_BAND_VARIANTS, *_LAYER_VARIANTS)
_OPTIONS = ("n", "band", "seed", "loops", "layer")


def build_variant(
    name: str,
    num_layers: int,
    n: int | None = None,
    band: Band | None = None,
    seed: int = 0,
    loops: int = 3,
    layer: int | None = None,
) -> Plan:
    """Build the plan of variant `name` for a model with `num_layers` layers; bad options raise PlanError."""
    if num_layers < 1:
        raise PlanError(f"a model needs at least one layer, got num_layers={num_layers}")
    if loops < 1:
        raise PlanError(f"loops={loops} is out of range: a parallel block runs at least once (loops >= 1)")
    if name == "full":
        return _full(num_layers)
    if name in _BAND_VARIANTS:
        return _BAND_VARIANTS[name](num_layers, band=middle_band(num_layers, n, band), seed=seed, loops=loops)
    if name in _LAYER_VARIANTS:
        last = num_layers - 2 if name == "swap" else num_layers - 1
        if layer is None or not 0 <= layer <= last:
            raise PlanError(f"variant '{name}' needs layer I with 0 <= I <= {last}, got {layer}")
        return _LAYER_VARIANTS[name](num_layers, layer=layer)
    raise PlanError(f"unknown variant '{name}': valid variants are {', '.join(VARIANTS)}")


def plan_from_spec(spec: str, num_layers: int) -> Plan:
    """Plan text (`0-11,18-29`) or a variant with options (`skip:n=6`, `swap:layer=4`, `shuffle:n=8,seed=1`)."""
    if not spec.strip() or not spec.strip()[0].isalpha():
        return Plan.parse(spec, num_layers)
    name, _, option_text = spec.strip().partition(":")
    options: dict[str, object] = {}
    for item in filter(None, option_text.split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = _option(key.strip(), value.strip(), spec)
    return build_variant(name.strip(), num_layers, **options)


def parse_band(text: str) -> Band:
    """`A:B` as a half-open band."""
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        raise PlanError(f"bad band '{text}': expected A:B with whole numbers, e.g. 12:18") from None


def _option(key: str, value: str, spec: str) -> object:
    if key not in _OPTIONS:
        raise PlanError(f"unknown option '{key}' in '{spec}': valid options are {', '.join(_OPTIONS)}")
    if key == "band":
        return parse_band(value)
    try:
        return int(value)
    except ValueError:
        raise PlanError(f"bad value '{value}' for option '{key}' in '{spec}': expected a whole number") from None
