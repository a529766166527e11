"""Plan text: the grammar users type and painters stores, turned into units and printed back canonically.

A unit is one layer index or a parallel block (a tuple of layer indices that all receive the same input
and whose outputs are averaged). Parsing expands ranges and repeats; printing folds them again, so the
text of equal unit sequences is one text. `painters.core.plan.Plan` wraps the units as a value.

    plan := step ("," step)*      step := unit ("x" K)?      unit := i | a-b | "[" group "]"
"""

from __future__ import annotations

import re

from painters.core.errors import PaintersError

Unit = int | tuple[int, ...]

_STEP = re.compile(r"(?P<unit>\[[^\[\]]*\]|[0-9]+(?:-[0-9]+)?)(?:x(?P<times>[0-9]+))?")
_MEMBER = re.compile(r"([0-9]+)(?:-([0-9]+))?")
MAX_CALLS = 100_000  # layer calls in one plan: far beyond any real plan, and a guard against '0-999999999'
_WHOLE = re.compile(r"-?[0-9]+")
_EMPTY = "empty plan: give at least one layer, e.g. '0-29'"
_SYNTAX = "expected a layer 'i', a range 'a-b' or a parallel block '[i,a-b,...]', optionally followed by 'xK'"


class PlanError(PaintersError):
    """Bad plan text or variant arguments; the message is one line naming the offending token."""


def parse_units(text: str, num_layers: int | None = None) -> tuple[Unit, ...]:
    """The units plan text runs; with `num_layers`, also check every index is in range."""
    if glued := re.search(r"[0-9]+\s+[0-9]+", text):
        raise PlanError(f"missing comma in plan '{text}' at '{glued[0]}': separate steps with ','")
    compact = re.sub(r"\s+", "", text)
    if not compact:
        raise PlanError(_EMPTY)
    units: list[Unit] = []
    calls = 0
    for token in _split_top_level(compact):
        step, times = _parse_step(token, compact, num_layers)
        calls += times * sum(len(members(unit)) for unit in step)
        if calls > MAX_CALLS:
            raise PlanError(f"plan '{compact}' runs more than {MAX_CALLS} layer calls: shorten its ranges or repeats")
        units.extend(step * times)
    return tuple(units)


def normalise_units(units: tuple) -> tuple[Unit, ...]:
    """Units as plain ints and tuples, so equal plans compare, hash and print alike; empty or oversized fails."""
    units = tuple(_normalise(unit) for unit in units)
    if not units:
        raise PlanError(_EMPTY)
    calls = sum(len(members(unit)) for unit in units)
    if calls > MAX_CALLS:
        raise PlanError(f"the plan runs {calls} layer calls, more than {MAX_CALLS}: use fewer repeats or loops")
    return units


def format_units(units: tuple[Unit, ...]) -> str:
    """The canonical text: repeats print as xK; runs of single layers (ascending or descending) as ranges."""
    parts, i = [], 0
    while i < len(units):
        times = _repeat_length(units, i)
        if times > 1:
            parts.append(f"{unit_text(units[i])}x{times}")
            i += times
            continue
        if isinstance(units[i], tuple):
            parts.append(unit_text(units[i]))
            i += 1
            continue
        end = _run_end(units, i, lambda j: isinstance(units[j], int) and _repeat_length(units, j) == 1)
        parts.append(_format_run(units[i:end]))
        i = end
    return ",".join(parts)


def whole_number(text: str, what: str) -> int:
    """An integer written with ASCII digits, as plan text writes them (int() also takes '٣', '1_0' and ' 1')."""
    if not _WHOLE.fullmatch(text):
        raise PlanError(f"bad value '{text}' for {what}: expected a whole number written with digits 0-9")
    return int(text)


def members(unit: Unit) -> tuple[int, ...]:
    """The layers of a unit: itself, or a parallel block's members."""
    return unit if isinstance(unit, tuple) else (unit,)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside a parallel block."""
    tokens, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise PlanError(f"unbalanced brackets in plan '{text}': a ']' has no matching '['")
        if depth > 1:
            raise PlanError(f"nested brackets in plan '{text}': parallel blocks cannot nest")
        if char == "," and depth == 0:
            tokens.append(text[start:i])
            start = i + 1
    if depth:
        raise PlanError(f"unbalanced brackets in plan '{text}': every '[' needs a matching ']'")
    tokens.append(text[start:])
    return tokens


def _parse_step(token: str, text: str, num_layers: int | None) -> tuple[list[Unit], int]:
    """One step's units (a range expanded, or one parallel block) and how many times it runs."""
    match = _STEP.fullmatch(token)
    if not match:
        what = f"bad step '{token}'" if token else "empty step"
        raise PlanError(f"{what} in plan '{text}': {_SYNTAX}")
    times = int(match["times"] or 1)
    if times < 1:
        raise PlanError(f"bad repeat in step '{token}': K in 'xK' must be at least 1")
    unit_token = match["unit"]
    if unit_token.startswith("["):
        block = [m for part in unit_token[1:-1].split(",") for m in _parse_range(part, token, num_layers)]
        return [tuple(block)], times
    return list(_parse_range(unit_token, token, num_layers)), times


def _parse_range(part: str, token: str, num_layers: int | None) -> range:
    match = _MEMBER.fullmatch(part)
    if not match:
        what = f"bad parallel member '{part}'" if part else "empty parallel member"
        raise PlanError(f"{what} in step '{token}': expected a layer 'i' or a range 'a-b'")
    first = int(match[1])
    last = int(match[2]) if match[2] is not None else first
    for index in (first, last):
        if num_layers is not None:
            check_index(index, num_layers, f"step '{token}'")
    if abs(last - first) >= MAX_CALLS:
        raise PlanError(f"range '{part}' in step '{token}' is longer than {MAX_CALLS} layers")
    step = 1 if last >= first else -1
    return range(first, last + step, step)


def check_index(layer: int, num_layers: int, where: str) -> None:
    if num_layers < 1:
        raise PlanError(f"a model needs at least one layer, got num_layers={num_layers}")
    if not 0 <= layer < num_layers:
        raise PlanError(
            f"layer {layer} in {where} is out of range: "
            f"this model has {num_layers} layers (valid indices 0-{num_layers - 1})"
        )


def _normalise(unit: object) -> Unit:
    if isinstance(unit, tuple | list):
        if not unit:
            raise PlanError("empty parallel block: a block needs at least one layer")
        return tuple(_layer_index(member) for member in unit)
    return _layer_index(unit)


def _layer_index(value: object) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < 0:
        raise PlanError(f"bad layer {value!r}: a layer index is a whole number >= 0")
    return value.__index__()


def _repeat_length(units: tuple[Unit, ...], i: int) -> int:
    times = 1
    while i + times < len(units) and units[i + times] == units[i]:
        times += 1
    return times


def _run_end(seq: tuple, i: int, joinable=lambda j: True) -> int:
    """End of the run stepping by +1 or -1 that starts at i, extended only over joinable elements."""
    end = i + 1
    if end < len(seq) and joinable(end) and abs(seq[end] - seq[i]) == 1:
        step = seq[end] - seq[i]
        while end < len(seq) and joinable(end) and seq[end] - seq[end - 1] == step:
            end += 1
    return end


def _format_run(run: tuple[int, ...]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def unit_text(unit: Unit) -> str:
    """The text of one unit: '5', or a parallel block such as '[10-15]'."""
    if isinstance(unit, int):
        return str(unit)
    parts, i = [], 0
    while i < len(unit):
        end = _run_end(unit, i)
        parts.append(_format_run(unit[i:end]))
        i = end
    return "[" + ",".join(parts) + "]"
