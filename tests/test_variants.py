"""The paper's variants, each checked against its definition over a range of L and n."""

import math
import random

import pytest

from painters import Plan, PlanError
from painters.core.variants import VARIANTS, middle_band

GRID = [(num_layers, n) for num_layers in (1, 2, 5, 6, 12, 24, 30, 32) for n in range(0, num_layers + 1)]


def band_of(num_layers, n):
    a = math.ceil((num_layers - n) / 2)
    return list(range(a)), list(range(a, a + n)), list(range(a + n, num_layers))


@pytest.mark.parametrize("num_layers, n", GRID)
def test_band_variants_match_their_definitions(num_layers, n):
    before, band, after = band_of(num_layers, n)
    assert middle_band(num_layers, n) == (len(before), len(before) + n)
    assert Plan.variant("full", num_layers=num_layers).layers() == tuple(range(num_layers))
    if n < num_layers:
        assert Plan.variant("skip", num_layers=num_layers, n=n).units == (*before, *after)
    assert Plan.variant("reverse", num_layers=num_layers, n=n).units == (*before, *band[::-1], *after)
    a, b = len(before), len(before) + n
    centre = num_layers // 2 if a <= num_layers // 2 < b else (a + b) // 2
    assert Plan.variant("middle_repeat", num_layers=num_layers, n=n).units == (*before, *[centre] * n, *after)
    shuffled = Plan.variant("shuffle", num_layers=num_layers, n=n, seed=3).units
    assert shuffled[: len(before)] == tuple(before) and shuffled[len(before) + n :] == tuple(after)
    assert sorted(shuffled[len(before) : len(before) + n]) == band
    block = [tuple(band)] if band else []
    assert Plan.variant("parallel", num_layers=num_layers, n=n).units == (*before, *block, *after)
    assert Plan.variant("looped_parallel", num_layers=num_layers, n=n, loops=4).units == (*before, *block * 4, *after)


def test_paper_examples_on_thirty_layers():
    expected = {
        "full": "0-29",
        "skip": "0-11,18-29",
        "reverse": "0-11,17-12,18-29",
        "middle_repeat": "0-11,15x6,18-29",
        "parallel": "0-11,[12-17],18-29",
        "looped_parallel": "0-11,[12-17]x3,18-29",
    }
    for name, text in expected.items():
        options = {} if name == "full" else {"n": 6}
        assert str(Plan.variant(name, num_layers=30, **options)) == text


def test_middle_repeat_uses_band_centre_when_middle_layer_is_outside():
    assert str(Plan.variant("middle_repeat", num_layers=30, band=(2, 6))) == "0-1,4x4,6-29"


def test_shuffle_is_the_seeded_mersenne_twister_permutation():
    order = list(range(11, 19))
    random.Random(7).shuffle(order)
    assert Plan.variant("shuffle", num_layers=30, n=8, seed=7).units[11:19] == tuple(order)
    assert str(Plan.variant("shuffle", num_layers=30, n=8, seed=1)) == "0-10,14,17,12,16,18,11,15,13,19-29"
    assert Plan.variant("shuffle", num_layers=30, n=8, seed=1) != Plan.variant("shuffle", num_layers=30, n=8, seed=2)


@pytest.mark.parametrize("num_layers", [2, 6, 30])
def test_single_layer_variants(num_layers):
    for i in range(num_layers):
        skipped = Plan.variant("skip_layer", num_layers=num_layers, layer=i).layers()
        assert skipped == tuple(j for j in range(num_layers) if j != i)
    for i in range(num_layers - 1):
        swapped = list(range(num_layers))
        swapped[i], swapped[i + 1] = i + 1, i
        assert Plan.variant("swap", num_layers=num_layers, layer=i).layers() == tuple(swapped)
    assert str(Plan.variant("swap", num_layers=30, layer=4)) == "0-3,5-4,6-29"


def test_explicit_band():
    assert str(Plan.variant("skip", num_layers=30, band=(10, 20))) == "0-9,20-29"
    assert str(Plan.variant("reverse", num_layers=30, band=(0, 3))) == "2-0,3-29"


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: Plan.variant("bogus", 30, n=2), "unknown variant 'bogus': valid variants are full, skip"),
        (lambda: Plan.variant("skip", 30, n=31), "n=31 is out of range: the model has 30 layers"),
        (lambda: Plan.variant("skip", 30, n=-1), "n=-1 is out of range"),
        (lambda: Plan.variant("skip", 30), "needs n"),
        (lambda: Plan.variant("skip", 30, n=30), "n=30 is out of range: the model has 30 layers (valid n: 0-29)"),
        (lambda: Plan.variant("skip", 30, band=(0, 30)), "band 0:30 holds 30 layers: this variant takes at most 29"),
        (lambda: Plan.variant("shuffle", 30, n=4, seed=-1), "seed=-1 is out of range"),
        (lambda: Plan.variant("looped_parallel", 30, n=6, loops=10**6), "give at most 16666 loops"),
        (lambda: Plan.variant("skip", 30, m=3), "variant 'skip' has no option 'm': it takes n, band"),
        (lambda: Plan.variant("skip", 30, n=3, layer=2), "variant 'skip' has no option 'layer'"),
        (lambda: Plan.variant("full", 30, n=3), "variant 'full' has no option 'n': it takes none"),
        (lambda: Plan.variant("skip", 30, band=(1.5, 3)), "bad value (1.5, 3) for option 'band'"),
        (lambda: Plan.variant("skip", 30, n="6"), "bad value '6' for option 'n': expected a whole number"),
        (lambda: Plan.variant("skip_layer", 1, layer=0), "needs a model with at least 2 layers, got 1"),
        (lambda: Plan.variant("swap", 1, layer=0), "needs a model with at least 2 layers, got 1"),
        (lambda: Plan.variant("skip", 30, band=(5, 40)), "band 5:40 is not inside"),
        (lambda: Plan.variant("skip", 30, band=(8, 5)), "band 8:5 is reversed: a band A:B needs A <= B"),
        (lambda: Plan.variant("skip", 30, n=4, band=(5, 8)), "disagrees with band 5:8"),
        (lambda: Plan.variant("looped_parallel", 30, n=4, loops=0), "loops=0"),
        (lambda: Plan.variant("swap", 30, layer=29), "needs layer I with 0 <= I <= 28"),
        (lambda: Plan.variant("skip_layer", 30), "variant 'skip_layer' needs layer I"),
        (lambda: Plan.variant("skip_layer", 30, layer=30), "needs layer I with 0 <= I <= 29, got 30"),
        (lambda: Plan.variant("full", 0), "num_layers=0 is out of range: a model has 1 to 100000 layers"),
    ],
)
def test_bad_variant_options_raise_plan_error(call, fragment):
    with pytest.raises(PlanError) as error:
        call()
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_every_variant_is_listed():
    assert set(VARIANTS) == {
        "full", "skip", "middle_repeat", "reverse", "shuffle", "parallel", "looped_parallel", "skip_layer", "swap",
    }  # fmt: skip


@pytest.mark.parametrize(
    "spec, text",
    [
        ("0-11,18-29", "0-11,18-29"),
        ("skip:n=6", "0-11,18-29"),
        ("full", "0-29"),
        ("swap:layer=4", "0-3,5-4,6-29"),
        ("looped_parallel:band=12:18,loops=2", "0-11,[12-17]x2,18-29"),
        ("shuffle:n=8,seed=1", "0-10,14,17,12,16,18,11,15,13,19-29"),
    ],
)
def test_plan_resolve(spec, text):
    assert str(Plan.resolve(spec, 30)) == text


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("skip:n=six", "bad value 'six' for option 'n'"),
        ("skip:depth=2", "unknown option 'depth'"),
        ("skip:band=1-2", "bad band '1-2'"),
        ("0-30", "out of range"),
        ("x2", "'x2' is neither plan text"),
        ("skip:n=6,n=2", "option 'n' is given twice"),
        ("skip:layer=3", "unknown option 'layer' for variant 'skip' in 'skip:layer=3': valid options are n, band"),
        ("full:n=3", "unknown option 'n' for variant 'full' in 'full:n=3': it takes no options"),
        ("skip:n=٣", "bad value '٣' for option 'n'"),  # non-ASCII digits, refused as plan text refuses them
        ("skip:n=1_0", "bad value '1_0' for option 'n'"),
        ("skip:band=1:٣", "bad band '1:٣'"),
    ],
)
def test_bad_specs(spec, fragment):
    with pytest.raises(PlanError, match=fragment):
        Plan.resolve(spec, 30)
