"""The paper's layer-execution variants (its Figure 1), each a function from options to the units a plan runs.

Most variants change a contiguous band of middle layers. The band is half-open [a, a+n) with
a = ceil((L - n) / 2), as in the paper's code, unless the caller gives it explicitly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from painters.core.grammar import MAX_CALLS, PlanError, Unit, whole_number

Band = tuple[int, int]
Units = tuple[Unit, ...]


def middle_band(num_layers: int, n: int | None = None, band: Band | None = None, most: int | None = None) -> Band:
    """The half-open band [a, b) a variant changes: explicit, or the n layers centred as the paper centres them.

    `most` is the largest n the variant takes (default: every layer).
    """
    most = num_layers if most is None else most
    if band is not None:
        a, b = band
        if a > b:
            raise PlanError(f"band {a}:{b} is reversed: a band A:B needs A <= B (half-open, e.g. 12:18)")
        if not 0 <= a <= b <= num_layers:
            raise PlanError(f"band {a}:{b} is not inside the model's layers: need 0 <= A <= B <= {num_layers}")
        if b - a > most:
            raise PlanError(f"band {a}:{b} holds {b - a} layers: this variant takes at most {most}")
        if n is not None and n != b - a:
            raise PlanError(f"n={n} disagrees with band {a}:{b}, which holds {b - a} layers: give one of them")
        return a, b
    if n is None:
        raise PlanError("this variant needs n (the number of affected layers) or band A:B")
    if not 0 <= n <= most:
        raise PlanError(f"n={n} is out of range: the model has {num_layers} layers (valid n: 0-{most})")
    a = math.ceil((num_layers - n) / 2)
    return a, a + n


def _replace_band(num_layers: int, band: Band, middle: list[Unit]) -> Units:
    a, b = band
    return (*range(a), *middle, *range(b, num_layers))


def _skip(num_layers: int, band: Band) -> Units:
    return _replace_band(num_layers, band, [])


def _middle_repeat(num_layers: int, band: Band) -> Units:
    a, b = band
    centre = num_layers // 2 if a <= num_layers // 2 < b else (a + b) // 2
    return _replace_band(num_layers, band, [centre] * (b - a))


def _reverse(num_layers: int, band: Band) -> Units:
    return _replace_band(num_layers, band, list(reversed(range(*band))))


def _shuffle(num_layers: int, band: Band, seed: int = 0) -> Units:
    if seed < 0:
        raise PlanError(f"seed={seed} is out of range: give a seed >= 0 (a negative seed repeats a positive one)")
    order = list(range(*band))
    random.Random(seed).shuffle(order)  # Mersenne Twister: the same order on every machine and run
    return _replace_band(num_layers, band, order)


def _parallel(num_layers: int, band: Band) -> Units:
    return _looped_parallel(num_layers, band, loops=1)


def _looped_parallel(num_layers: int, band: Band, loops: int = 3) -> Units:
    if loops < 1:
        raise PlanError(f"loops={loops} is out of range: a parallel block runs at least once (loops >= 1)")
    if loops * (band[1] - band[0]) > MAX_CALLS:
        most = MAX_CALLS // (band[1] - band[0])
        raise PlanError(f"loops={loops} runs more than {MAX_CALLS} layer calls: give at most {most} loops")
    block = [tuple(range(*band))] * loops if band[1] > band[0] else []
    return _replace_band(num_layers, band, block)


def _skip_layer(num_layers: int, layer: int) -> Units:
    _check_layer("skip_layer", layer, num_layers, last=num_layers - 1)
    return tuple(i for i in range(num_layers) if i != layer)


def _swap(num_layers: int, layer: int) -> Units:
    _check_layer("swap", layer, num_layers, last=num_layers - 2)
    order = list(range(num_layers))
    order[layer], order[layer + 1] = order[layer + 1], order[layer]
    return tuple(order)


def _check_layer(name: str, layer: int, num_layers: int, last: int) -> None:
    if num_layers < 2:
        raise PlanError(f"variant '{name}' needs a model with at least 2 layers, got {num_layers}")
    if not 0 <= layer <= last:
        raise PlanError(f"variant '{name}' needs layer I with 0 <= I <= {last}, got {layer}")


# name -> (builder, options it takes). Band variants take `band` computed from n or given explicitly.
def _full(num_layers: int) -> Units:
    return tuple(range(num_layers))


_VARIANTS: dict[str, tuple[Callable[..., Units], tuple[str, ...]]] = {
    "full": (_full, ()),
    "skip": (_skip, ("n", "band")),
    "middle_repeat": (_middle_repeat, ("n", "band")),
    "reverse": (_reverse, ("n", "band")),
    "shuffle": (_shuffle, ("n", "band", "seed")),
    "parallel": (_parallel, ("n", "band")),
    "looped_parallel": (_looped_parallel, ("n", "band", "loops")),
    "skip_layer": (_skip_layer, ("layer",)),
    "swap": (_swap, ("layer",)),
}
VARIANTS: tuple[str, ...] = tuple(_VARIANTS)


def options_of(name: str) -> tuple[str, ...]:
    """The options variant `name` takes."""
    return _VARIANTS[name][1]


def variant_units(name: str, num_layers: int, **options: int | Band | None) -> Units:
    """The units variant `name` runs on a model with `num_layers` layers (`Plan.variant` makes them a plan).

    Options (None means not given): n or band (A, B) for band variants, seed for shuffle (default 0),
    loops for looped_parallel (default 3), layer for skip_layer and swap. Bad options raise PlanError.
    """
    if name not in _VARIANTS:
        raise PlanError(f"unknown variant '{name}': valid variants are {', '.join(VARIANTS)}")
    if not 1 <= num_layers <= MAX_CALLS:
        raise PlanError(f"num_layers={num_layers} is out of range: a model has 1 to {MAX_CALLS} layers here")
    builder, takes = _VARIANTS[name]
    given = {key: _whole(key, value) for key, value in options.items() if value is not None}
    for key in given:
        if key not in takes:
            valid = f"it takes {', '.join(takes)}" if takes else "it takes none"
            raise PlanError(f"variant '{name}' has no option '{key}': {valid}")
    if "n" in takes:
        most = num_layers - 1 if name == "skip" else num_layers  # skipping every layer leaves nothing to run
        given["band"] = middle_band(num_layers, given.pop("n", None), given.get("band"), most)
    elif "layer" in takes and "layer" not in given:
        raise PlanError(f"variant '{name}' needs layer I (the layer it acts on)")
    return builder(num_layers, **given)


def _whole(key: str, value: object) -> int | Band:
    """Validate an option's type: whole numbers, and a pair of them for band."""
    parts = value if key == "band" and isinstance(value, tuple) and len(value) == 2 else (value,)
    if key == "band" and len(parts) != 2 or any(isinstance(p, bool) or not isinstance(p, int) for p in parts):
        expected = "a pair (A, B) of whole numbers" if key == "band" else "a whole number"
        raise PlanError(f"bad value {value!r} for option '{key}': expected {expected}")
    return value


def parse_spec(spec: str) -> tuple[str, dict[str, object]]:
    """A variant spec (`skip:n=6`, `swap:layer=4`, `shuffle:n=8,seed=1`) as its name and options."""
    name, _, option_text = spec.strip().partition(":")
    name = name.strip()
    if name not in _VARIANTS:
        raise PlanError(
            f"'{spec}' is neither plan text (such as '0-11,18-29') nor a variant: "
            f"valid variants are {', '.join(VARIANTS)}"
        )
    options: dict[str, object] = {}
    for item in filter(None, option_text.split(",")):
        key, _, value = (part.strip() for part in item.partition("="))
        if key in options:
            raise PlanError(f"option '{key}' is given twice in '{spec}'")
        options[key] = _option(name, key, value, spec)
    return name, options


def is_variant_spec(spec: str) -> bool:
    """Whether `spec` names a variant (`skip:n=6`) rather than giving plan text (`0-11,18-29`)."""
    return spec.strip()[:1].isalpha()


def parse_band(text: str) -> Band:
    """`A:B` as a half-open band."""
    try:
        a, b = text.split(":")
        return whole_number(a.strip(), "band"), whole_number(b.strip(), "band")
    except (ValueError, PlanError):
        raise PlanError(f"bad band '{text}': expected A:B with whole numbers, e.g. 12:18") from None


def _option(name: str, key: str, value: str, spec: str) -> object:
    takes = options_of(name)
    if key not in takes:
        valid = f"valid options are {', '.join(takes)}" if takes else "it takes no options"
        raise PlanError(f"unknown option '{key}' for variant '{name}' in '{spec}': {valid}")
    if key == "band":
        return parse_band(value)
    return whole_number(value, f"option '{key}' in '{spec}'")
