"""Errors: FilterPatternError's attributes and rendering, the 1024-character limit (§1) and
the TestMetricFilter request limits (§7)."""

from __future__ import annotations

import pytest

import castlewatch


def rejected(pattern: str) -> castlewatch.FilterPatternError:
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.compile_pattern(pattern)
    return info.value


# --------------------------------------------------------------------------- the class


def test_error_class_hierarchy_and_code():
    """§11: every rejection is InvalidParameterException; pattern errors are a kind of it."""
    assert issubclass(castlewatch.FilterPatternError, castlewatch.InvalidParameterError)
    assert issubclass(castlewatch.InvalidParameterError, ValueError)
    error = rejected("ERR*")
    assert isinstance(error, ValueError)
    assert error.code == "InvalidParameterException"


REPRESENTATIVE = [
    ("ERR*", "Invalid character(s) in term '*'"),
    ("%[abc%", "Failed to compile regular expression."),
    ("{ $.a == 1 }", "Invalid metric filter pattern"),
    ("{ $.a = 1", "If a filter pattern starts with '{' it must end with '}'"),
    ("[a, a]", "Duplicate field 'a'"),
    ("{ $.a[*].b[*] = 1 }", "Your filter pattern has a JSON path selector that exceeds the maximum of 1 wildcard allowed per json selector."),
    ("{ $.a = %x% && $.b = %y% && $.c = %z% }", "Your input has exceeded the maximum of 2 regular expressions per filter pattern."),
]


@pytest.mark.parametrize(("pattern", "message"), REPRESENTATIVE, ids=[m[:30] for _, m in REPRESENTATIVE])
def test_error_attributes(pattern, message):
    """§11 messages; `.pattern` is the pattern as given; `.column` is within the pattern."""
    error = rejected(pattern)
    assert error.message == message
    assert error.pattern == pattern
    assert 1 <= error.column <= len(pattern)
    assert isinstance(error.expected, str)


COLUMNS = [
    ("ERR*", 4, "star-after-term"),
    ("ERROR a.b", 8, "dot-in-second-term"),
    ("  ERR*", 6, "leading-spaces-count"),
    ("caf\u00e9", 4, "non-ascii-counts-code-points"),
    ('"\u00e9t\u00e9" x*', 8, "code-points-before"),
    ("%hello!%", 7, "regex-bang"),
    ("%^(ERROR|WARN)%", 3, "regex-paren"),
    ("{ $.a IS NOT NULL }", 10, "json-NOT"),
    ('{ $.a > "Alpha" }', 9, "json-quoted-relational"),
    ("[a, a]", 5, "duplicate-name"),
    ("[a, ..., b, ...]", 13, "second-ellipsis"),
]


@pytest.mark.parametrize(("pattern", "column"), [c[:2] for c in COLUMNS], ids=[c[2] for c in COLUMNS])
def test_column_points_at_offending_character(pattern, column):
    """Public API: `.column` is 1-based and points at the offending character."""
    assert rejected(pattern).column == column


def test_column_of_unterminated_quote_is_within_the_quoted_text():
    """§3.1 unterminated quote: the column lies between the quote and the end (which of the
    two is not pinned by the spec)."""
    error = rejected('ERROR "abc')
    assert 7 <= error.column <= 10


def test_column_of_bad_bare_value_is_within_the_value():
    """§5.3 bad bare value: the column lies inside the value named by the message."""
    error = rejected("{ $.a = a@b }")
    assert error.message == "Invalid character(s) in term 'a@b'"
    assert 9 <= error.column <= 11


@pytest.mark.parametrize(("pattern", "column"), [c[:2] for c in COLUMNS], ids=[c[2] for c in COLUMNS])
def test_str_shows_message_pattern_and_caret(pattern, column):
    """Public API: str(e) = message, an indented line with the pattern, then a caret under
    the column with the same indentation."""
    error = rejected(pattern)
    lines = str(error).split("\n")
    assert lines[0] == error.message
    assert lines[1].endswith(pattern)
    indent = lines[1][: len(lines[1]) - len(pattern)]
    assert indent.strip() == ""
    assert lines[2].rstrip() == indent + " " * (error.column - 1) + "^"
    assert error.pattern in str(error)


# --------------------------------------------------------------------------- §1 length


def test_pattern_of_1024_characters_is_accepted():
    """§1: filterPattern is 0 to 1024 characters."""
    compiled = castlewatch.compile_pattern("a" * 1024)
    assert compiled.matches("a" * 1024) is True
    assert compiled.matches("a" * 1023) is False


@pytest.mark.parametrize(
    "pattern", ["a" * 1025, " " * 1025, '"' + "x" * 1023 + '"'], ids=["term", "blank", "phrase"]
)
def test_pattern_over_1024_characters_is_rejected(pattern):
    """§1: more than 1024 characters is rejected (InvalidParameterException)."""
    with pytest.raises(castlewatch.InvalidParameterError) as info:
        castlewatch.compile_pattern(pattern)
    assert info.value.code == "InvalidParameterException"


def test_length_counts_code_points():
    """§1: castlewatch counts Unicode code points [adopted]: 1024 code points outside the
    BMP (2048 UTF-16 units, 4096 UTF-8 bytes) are accepted, 1025 are not."""
    emoji = "\U0001f600"
    accepted = '"' + emoji * 1022 + '"'
    assert len(accepted) == 1024
    assert castlewatch.compile_pattern(accepted).matches("x" + emoji * 1022) is True
    with pytest.raises(castlewatch.InvalidParameterError):
        castlewatch.compile_pattern('"' + emoji * 1023 + '"')


def test_blank_pattern_of_1024_characters_is_match_all():
    """§1/§2: 1024 spaces is within the limit and trims to match-all."""
    assert castlewatch.compile_pattern(" " * 1024).kind == "all"


def test_test_metric_filter_rejects_long_pattern():
    """§7: filterPattern 0–1024 on the TestMetricFilter request too."""
    with pytest.raises(castlewatch.InvalidParameterError):
        castlewatch.test_metric_filter("a" * 1025, ["a"])


# --------------------------------------------------------------------------- §7 request limits


@pytest.mark.parametrize(
    "messages",
    [[], ["x"] * 51, [""], ["ok", ""], ["x"] * 49 + [""]],
    ids=["none", "fifty-one", "empty-message", "second-empty", "last-empty"],
)
def test_test_metric_filter_request_limits(messages):
    """§7: logEventMessages must hold 1 to 50 strings of at least one character."""
    with pytest.raises(castlewatch.InvalidParameterError) as info:
        castlewatch.test_metric_filter("ERROR", messages)
    assert info.value.code == "InvalidParameterException"


def test_test_metric_filter_accepts_fifty_one_character_messages():
    """§7: 50 messages, each of one character, is a valid request."""
    result = castlewatch.test_metric_filter("x", ["x"] * 50)
    assert [m["eventNumber"] for m in result["matches"]] == list(range(1, 51))


def test_test_metric_filter_accepts_empty_pattern():
    """§7: filterPattern may be empty (0 characters)."""
    assert len(castlewatch.test_metric_filter("", ["a"])["matches"]) == 1
