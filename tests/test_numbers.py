"""Exact number comparisons without building the number (spec §5.3, §5.4, §6.4;
:mod:`castlewatch.grammar.numbers`).

Hostile log numbers (huge exponents, thousands of digits) are compared exactly and in time
linear in their text: these tests finishing at all is the time bound (no timed assertions).
"""

from __future__ import annotations

import pytest

import castlewatch
from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.grammar.numbers import NumberLiteral, compare_keys, decimal_key
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import LogEvent, Stats

pytestmark = pytest.mark.usefixtures("literal_backend")

HUGE_EXPONENT = "1e+999999999"  # the 42-byte line of issue 8: Fraction() never finishes
LONG_INT = "9" * 5000  # beyond Python's 4,300-digit int(str) limit


@pytest.mark.parametrize(
    "text, key",
    [
        ("0", (0, 0, "")),
        ("-0.000", (0, 0, "")),
        ("0e999999999999999999999", (0, 0, "")),
        ("1", (1, 1, "1")),
        ("1.0", (1, 1, "1")),
        ("1e0", (1, 1, "1")),
        ("+10E-1", (1, 1, "1")),
        ("-12.50", (-1, 2, "125")),
        (".05", (1, -1, "5")),
        ("000123000", (1, 6, "123")),
        ("1e+999999999", (1, 1000000000, "1")),
        ("1e-" + "9" * 1200, (1, float("-inf"), "1")),
        ("-2e+" + "9" * 1200, (-1, float("inf"), "2")),
    ],
)
def test_decimal_key(text, key):
    """A number's text read as (sign, exponent, significant digits), value 0.DIGITS x 10**exponent."""
    assert decimal_key(text) == key


@pytest.mark.parametrize(
    "a, b, order",
    [
        ("1", "1.0", 0),
        ("1e0", "1", 0),
        ("-0", "0", 0),
        ("0.1", "0.10000000000000001", -1),
        ("9007199254740993", "9007199254740992", 1),
        ("9007199254740993.0", "9007199254740993", 0),
        ("1e400", "1e401", -1),
        ("-1e400", "-1e401", 1),
        ("-1", "1", -1),
        ("12", "9", 1),
        ("0.9", "0.12", 1),
        ("1" + "0" * 5000, "1e5000", 0),
        ("1" + "0" * 4999 + "1", "1e5000", 1),
        (HUGE_EXPONENT, "1e999999998", 1),
    ],
)
def test_compare_keys_is_exact(a, b, order):
    assert compare_keys(decimal_key(a), decimal_key(b)) == order
    assert compare_keys(decimal_key(b), decimal_key(a)) == -order


@pytest.mark.parametrize(
    "literal, integer",
    [
        ("500", 500), ("5e2", 500), ("500.0", 500), ("-7", -7), ("0", 0),
        ("0.5", None), ("1e401", None), ("1e-999999", None),
    ],
)
def test_literal_integer_fast_path(literal, integer):
    """A whole literal of moderate size is also held as an exact int (for JSON integers)."""
    assert NumberLiteral(literal).integer == integer


@pytest.mark.parametrize(
    "literal, node, order",
    [
        ("12.5", 12, -1),
        ("12.5", 13, 1),
        ("-12.5", -13, -1),
        ("-12.5", -12, 1),
        ("1e-999999", 0, -1),
        ("-1e-999999", 0, 1),
        ("1e+999999", 2**64, -1),
        ("-1e+999999", -(2**64), 1),
        ("1e500", 10**500, 0),
        ("1e500", 10**500 + 1, 1),
        ("1e500", 10**499, -1),
    ],
)
def test_literal_compares_integers_exactly(literal, node, order):
    assert NumberLiteral(literal).compare_int(node) == order


def test_a_float_next_to_the_literal_is_undecided():
    """A decoder's double may have rounded its text: next to the literal's own double, only
    the text can tell (§5.4, numbers keep their source text)."""
    literal = NumberLiteral("0.1")
    assert literal.compare_float(0.1) is None
    assert literal.compare_float(0.2) == 1
    assert literal.compare_float(0.05) == -1
    assert NumberLiteral("1e400").compare_float(float("inf")) is None
    assert NumberLiteral("1e400").compare_float(1.7976931348623157e308) is None
    assert NumberLiteral("1e400").compare_float(1e300) == -1


@pytest.mark.parametrize(
    "condition, value, expected",
    [
        (">= 500", HUGE_EXPONENT, True),
        ("< 500", HUGE_EXPONENT, False),
        ("= 500", HUGE_EXPONENT, False),
        ("!= 500", HUGE_EXPONENT, True),
        ("> 0", "1e+10000000", True),
        ("= 1e+10000000", "1e+10000000", True),
        ("= 1e+10000000", "10e+9999999", True),
        ("= 1e+10000000", "1e+10000001", False),
        ("< 0.001", "1e-999999999", True),
        ("> 0", "1e-999999999", True),
        ("> 0", "-1e-999999999", False),
        ("= 0", "0e+999999999", True),
        ("> 5", LONG_INT, True),
        ("< -5", "-" + LONG_INT, True),
        ("= 1e5000", "1" + "0" * 5000, True),
        ("= 1e5000", "1" + "0" * 5000 + ".0000000001", False),
        ("= 1e400", "1e400", True),
        ("> 1.7976931348623157e308", "1.7976931348623158e308", True),
        ("= 0.1", "0.10000000000000001", False),
        ("< 0.10000000000000001", "0.1", True),
        ("= 1", "1.0", True),
        ("= 1e0", "1", True),
        ("= 0", "-0.0", True),
        ("= -0", "0", True),
        ("> 0", "1e-400", True),
        ("= 9007199254740993", "9007199254740993.0", True),
        ("= 9223372036854775808", "9223372036854775807", False),
        ("> 18446744073709551615", "18446744073709551616", True),
        ("= 18446744073709551616", "1.8446744073709551616e19", True),
    ],
)
def test_hostile_json_numbers(condition, value, expected):
    """§5.4: JSON numbers compare exactly, whatever their exponent or length."""
    pattern = castlewatch.compile_pattern(f"{{ $.status {condition} }}")
    event = f'{{"status": {value}}}'
    assert pattern.matches(event) is expected
    assert castlewatch.compile_pattern(f'{{ $.status {condition} }}').matches(f'{{"status": "{value}"}}') is (
        condition.startswith("!=") or (condition.startswith("= ") and condition[2:] == value)
    )


@pytest.mark.parametrize(
    "pattern, field, expected",
    [
        ("[x > 0]", "1e+10000000", True),
        ("[x > 0]", HUGE_EXPONENT, True),
        ("[x = 500]", HUGE_EXPONENT, False),
        ("[x != 500]", HUGE_EXPONENT, True),
        ("[x > 5]", LONG_INT, True),
        ("[x = 5]", LONG_INT, False),
        ("[x <= -1e+999999]", "-" + LONG_INT + "e+999999999", True),
        ("[x = 1e3]", "+1000.000", True),
        ("[x = 0.5]", ".5", True),
        ("[x > 1e-" + "9" * 900 + "]", "1e-" + "9" * 2000, False),
        ("[x < 1e+" + "9" * 900 + "]", "1e+" + "9" * 2000, False),
    ],
)
def test_hostile_space_delimited_fields(pattern, field, expected):
    """§6.4: a numeric field compares exactly, whatever its exponent or length."""
    assert castlewatch.compile_pattern(pattern).matches(field) is expected
    assert castlewatch.compile_pattern("[a, " + pattern[1:]).matches("a " + field) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.a = 1e+10000000 }",
        "{ $.a > 1e+" + "9" * 1000 + " }",
        "[x < -1e-" + "9" * 1000 + "]",
        "{ $.a = " + "9" * 1000 + " }",
    ],
)
def test_huge_literals_compile(pattern):
    """§5.3: any number literal compiles in time linear in its text (no 10**exponent)."""
    assert castlewatch.compile_pattern(pattern).matches('{"a": 1}') is False


def test_hostile_numbers_through_the_engine():
    """The engine's evaluator (shared decode and literal scan) counts these events exactly."""
    filters = [
        {"filterName": name, "filterPattern": pattern, "logGroupName": "g",
         "metricTransformations": [{"metricName": name, "metricNamespace": "n", "metricValue": "1"}]}
        for name, pattern in [("ge", "{ $.status >= 500 }"), ("eq", '{ $.status = "x" }'), ("sd", "[x > 0]")]
    ]
    stats = Stats()
    evaluator = LogGroupEvaluator(load_metric_filters(filters), stats)
    for message in [f'{{"status": {HUGE_EXPONENT}}}', f'{{"status": {LONG_INT}}}', "1e+10000000", LONG_INT]:
        evaluator.evaluate(LogEvent(1_709_629_230_000, message, "g"), lambda key, ts, value: None)
    assert stats.matched == {"ge": 2, "eq": 0, "sd": 2}


@pytest.mark.parametrize(
    "digits, selects",
    [("0" * 5000 + "1", True), ("9" * 5000, False), ("18446744073709551617", False)],
    ids=["leading-zeros", "long", "beyond-64-bits"],
)
def test_selector_index_of_any_length(digits, selects):
    """§5.2: `[N]` with any number of digits parses (no int() of unbounded text); an index
    past an array's end selects nothing."""
    from castlewatch.grammar.parser import parse_selector

    selector = parse_selector(f"$.a[{digits}]")
    assert selector is not None
    pattern = castlewatch.compile_pattern(f"{{ $.a[{digits[-900:]}] = 2 }}")
    assert pattern.matches('{"a": [1, 2]}') is selects
