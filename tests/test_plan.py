"""Plan text: parsing, canonical printing, round-trip, and one-line errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from painters import Plan, PlanError

layer = st.integers(min_value=0, max_value=40)
unit = st.one_of(layer, st.lists(layer, min_size=1, max_size=5).map(tuple))
plans = st.lists(unit, min_size=1, max_size=40).map(lambda units: Plan(tuple(units)))


@given(plans)
def test_print_then_parse_round_trips(plan):
    assert Plan.parse(str(plan)) == plan
    assert str(Plan.parse(str(plan))) == str(plan)


@given(plans)
def test_printed_text_is_whitespace_insensitive(plan):
    spaced = str(plan)
    for mark in ",-[]x":
        spaced = spaced.replace(mark, f" {mark}\t")
    assert Plan.parse(f"  {spaced}\n") == plan


@pytest.mark.parametrize(
    "text, layers",
    [
        ("0-3", (0, 1, 2, 3)),
        ("17-12", (17, 16, 15, 14, 13, 12)),
        ("5", (5,)),
        ("5-5", (5,)),
        ("0-1,15x3,4", (0, 1, 15, 15, 15, 4)),
        ("0-2x2", (0, 1, 2, 0, 1, 2)),
        ("0,[1-3],4", (0, 1, 2, 3, 4)),
        ("0,[3-1,5]x2", (0, 3, 2, 1, 5, 3, 2, 1, 5)),
    ],
)
def test_parse_expands_ranges_repeats_and_blocks(text, layers):
    assert Plan.parse(text).layers() == layers


def test_parallel_blocks_are_units():
    assert Plan.parse("0-11,[12-17]x3,18-29").units == (
        *range(12),
        *[tuple(range(12, 18))] * 3,
        *range(18, 30),
    )


@pytest.mark.parametrize(
    "units, text",
    [
        ((0, 1, 2, 3, 5, 4, 6, 7), "0-3,5-4,6-7"),
        ((3, 4, 5, 5), "3-4,5x2"),
        ((15,) * 6, "15x6"),
        ((0, 2, 4), "0,2,4"),
        ((2, 1), "2-1"),
        (((1, 2, 3),) * 2 + (4,), "[1-3]x2,4"),
        (((3, 2, 7),), "[3-2,7]"),
        ((0, 1, 0, 1), "0-1,0-1"),
    ],
)
def test_printing_is_canonical(units, text):
    assert str(Plan(units)) == text


def test_equal_plans_have_one_text():
    assert Plan.parse("0,1,2,3") == Plan.parse("0-3") == Plan.parse(" 0 - 3 ")
    assert str(Plan.parse("15,15,15")) == "15x3"


def test_plan_is_immutable_and_hashable():
    plan = Plan.parse("0-3")
    with pytest.raises(AttributeError):
        plan.units = (1,)
    assert {plan: 1}[Plan.parse("0,1,2,3")] == 1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty plan"),
        ("   ", "empty plan"),
        ("0,,1", "empty step in plan '0,,1'"),
        ("0-3,", "empty step"),
        ("a", "bad step 'a'"),
        ("0-3,x2", "bad step 'x2'"),
        ("1-2-3", "bad step '1-2-3'"),
        ("3x0", "bad repeat in step '3x0'"),
        ("-1", "bad step '-1'"),
        ("[1,[2]]", "nested brackets"),
        ("[1,2", "unbalanced brackets"),
        ("1]", "unbalanced brackets"),
        ("[]", "empty parallel member in step '[]'"),
        ("[1-]", "bad parallel member '1-'"),
        ("[1x2]", "bad parallel member '1x2'"),
        ("1 2", "missing comma in plan '1 2' at '1 2'"),
        ("0-1 5", "missing comma"),
        ("\u0663", "bad step"),
        ("0-999999999", "longer than 100000 layers"),
        ("5x999999999", "more than 100000 layer calls"),
        ("[0-9]x20000", "more than 100000 layer calls"),
    ],
)
def test_malformed_text_raises_one_line_error_naming_the_token(text, fragment):
    with pytest.raises(PlanError) as error:
        Plan.parse(text)
    message = str(error.value)
    assert fragment in message
    assert "\n" not in message


def test_out_of_range_index_names_the_valid_range():
    with pytest.raises(PlanError, match=r"layer 30 .* has 30 layers \(valid indices 0-29\)"):
        Plan.parse("0-30", num_layers=30)
    with pytest.raises(PlanError, match="layer 7"):
        Plan.parse("[1,7]", num_layers=6)
    assert Plan.parse("0-29", num_layers=30) == Plan.full(30)


def test_range_check_happens_while_parsing():
    with pytest.raises(PlanError, match=r"layer 999999999 in step '0-999999999' is out of range"):
        Plan.parse("0-999999999", num_layers=30)
    with pytest.raises(PlanError, match="at least one layer"):
        Plan.parse("0", num_layers=0)


@pytest.mark.parametrize(
    "units, fragment",
    [((), "empty plan"), ((-1,), "bad layer -1"), (((),), "empty parallel block"), ((True,), "bad layer True"),
     (("3",), "bad layer '3'"), ((0, (1, -2)), "bad layer -2")],
)  # fmt: skip
def test_plan_values_are_validated(units, fragment):
    with pytest.raises(PlanError, match=fragment):
        Plan(units)


def test_plan_values_are_normalised():
    numpy = pytest.importorskip("numpy")
    assert Plan([0, 1, [2, 3]]) == Plan.parse("0-1,[2-3]")
    assert str(Plan((numpy.int64(3), numpy.int64(4)))) == "3-4"
    assert hash(Plan([0, 1])) == hash(Plan.parse("0-1"))
