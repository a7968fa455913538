"""Patterns that make a backtracking engine explode must still give the right answer
(spec §4 regex search, §5.4 JSON, §6 fields).  No timing assertions: the point is that
these finish."""

from __future__ import annotations

import json

import pytest

import castlewatch

BIG = 100_000
NESTED_STARS = "%a*a*a*a*a*a*a*a*a*a*a*a*c%"
DOT_STARS = "%.*.*.*.*.*.*.*x%"


@pytest.mark.parametrize(
    ("event", "expected"),
    [("a" * BIG, False), ("a" * BIG + "c", True), ("c" + "a" * BIG, True), ("a" * (BIG // 2) + "c" + "a" * (BIG // 2), True)],
    ids=["no-c", "c-at-end", "c-at-start", "c-in-middle"],
)
def test_nested_stars_whole_pattern(event, expected):
    """§4: `%a*…a*c%` is a search; it matches exactly when the message contains `c`."""
    assert castlewatch.compile_pattern(NESTED_STARS).matches(event) is expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [("y" * BIG, False), ("y" * BIG + "x", True), ("y\n" * (BIG // 2) + "x", True), ("y\n" * (BIG // 2), False)],
    ids=["no-x", "x-at-end", "newlines-then-x", "newlines-no-x"],
)
def test_dot_stars_whole_pattern(event, expected):
    """§4: `.` is any character (newline included [adopted]); the search finds `x` or not."""
    assert castlewatch.compile_pattern(DOT_STARS).matches(event) is expected


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        (r"%\w*\w*\w*\w*\w*\w*\w*\x21%", "a" * BIG, False),
        (r"%\w*\w*\w*\w*\w*\w*\w*\x21%", "a" * BIG + "!", True),
        (r"%^[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*1$%", "b" * BIG, False),
        (r"%^[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*1$%", "b" * BIG + "1", True),
        (r"%a*b|a*c|a*d%", "a" * BIG, False),
        (r"%\s*\s*\s*\s*\s*\s*x$%", " " * BIG + "y", False),
        (r"%a{2,}a{2,}a{2,}c%", "a" * BIG, False),
    ],
    ids=["word-stars-bang", "word-stars-bang-hit", "class-stars-anchored", "class-stars-anchored-hit", "alternation", "space-stars", "bounded-min"],
)
def test_other_explosive_whole_pattern_regexes(pattern, event, expected):
    """§4: more patterns that backtrack badly; answers follow from search semantics."""
    assert castlewatch.compile_pattern(pattern).matches(event) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("{ $.msg = " + NESTED_STARS + " }", "a" * BIG, False),
        ("{ $.msg = " + NESTED_STARS + " }", "a" * BIG + "c", True),
        ("{ $.msg != " + NESTED_STARS + " }", "a" * BIG, True),
        ("{ $.msg = " + DOT_STARS + " && $.msg = " + NESTED_STARS + " }", "a" * BIG + "x", False),
        ("{ $.msg = " + DOT_STARS + " || $.msg = " + NESTED_STARS + " }", "a" * BIG + "x", True),
    ],
    ids=["eq-no", "eq-yes", "ne", "two-regexes-and", "two-regexes-or"],
)
def test_json_regex_value_on_large_string(pattern, value, expected):
    """§4/§5.4: a JSON regex value is searched in a 100,000-character string value."""
    event = json.dumps({"msg": value, "other": 1})
    assert castlewatch.compile_pattern(pattern).matches(event) is expected


def test_space_delimited_regex_on_large_field():
    """§4/§6.4: a field regex is searched in a 100,000-character field."""
    compiled = castlewatch.compile_pattern("[a, b = " + NESTED_STARS + "]")
    assert compiled.matches("x " + "a" * BIG) is False
    assert compiled.extract("x " + "a" * BIG + "c") == {"$a": "x", "$b": "a" * BIG + "c"}


def test_space_delimited_many_fields():
    """§6.3: `[...]` and `[a, ..., b]` over 50,000 fields."""
    event = "f " * 50_000
    extracted = castlewatch.compile_pattern("[...]").extract(event)
    assert extracted is not None and len(extracted) == 50_000
    assert extracted["$50000"] == "f"
    around = castlewatch.compile_pattern("[a, ..., b = f]").extract(event)
    assert around is not None and len(around) == 50_000


def test_long_quoted_field_and_unclosed_quote():
    """§6.2: a huge quoted field, and a huge unclosed quote, split as the rules say."""
    compiled = castlewatch.compile_pattern("[a, b]")
    assert compiled.extract('x "' + "y " * 50_000 + '"') == {"$a": "x", "$b": "y " * 50_000}
    unclosed = 'x "' + "y " * 50_000
    assert compiled.extract(unclosed) == {"$a": "x", "$b": unclosed[2:].rstrip()}


@pytest.mark.parametrize(
    "event",
    ['{"a":' * BIG + "1" + "}" * BIG, "[" * BIG + "]" * BIG, '{"a":' + "[" * BIG + "]" * BIG + "}", "{" * BIG],
    ids=["deep-objects", "deep-arrays", "deep-array-in-object", "unbalanced"],
)
def test_absurdly_deep_json_counts_as_not_json(event):
    """§5.4: "Unparseable or absurdly deep documents count as not JSON" — so even
    `NOT EXISTS` does not hold."""
    assert castlewatch.compile_pattern("{ $.zzz NOT EXISTS }").matches(event) is False


def test_terms_on_large_event():
    """§3.2: substring tests on a 100,000-character message."""
    compiled = castlewatch.compile_pattern('ERROR -DEBUG ?x "a a"')
    assert compiled.matches("a " * BIG + "ERROR") is True
    assert compiled.matches("a " * BIG + "ERROR DEBUG") is False
