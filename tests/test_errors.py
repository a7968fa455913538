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
    ("ERROR a.b:c", 10, "colon-after-dotted-term"),
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


@pytest.mark.parametrize(
    ("pattern", "messages", "expected"),
    [
        ("ERROR", ["x"] * 51, "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: "
                              "Member must have length less than or equal to 50"),
        ("ERROR", [], "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: "
                      "Member must have length greater than or equal to 1"),
        ("ERROR", ["ok", ""], "1 validation error detected: Value at 'logEventMessages.2.member' failed to satisfy "
                              "constraint: Member must have length greater than or equal to 1"),
        ("a" * 1025, ["x"] * 51, "2 validation errors detected: Value at 'filterPattern' failed to satisfy constraint: "
                                 "Member must have length less than or equal to 1024; Value at 'logEventMessages' "
                                 "failed to satisfy constraint: Member must have length less than or equal to 50"),
    ],
    ids=["fifty-one", "none", "empty-member", "two-violations"],
)
def test_test_metric_filter_request_messages_are_the_services(pattern, messages, expected):
    """§7, §11: the service's validation text (no "between", no count), every violation
    named, the pattern's length among them."""
    with pytest.raises(castlewatch.InvalidParameterError) as info:
        castlewatch.test_metric_filter(pattern, messages)
    assert str(info.value) == expected


def test_test_metric_filter_accepts_fifty_one_character_messages():
    """§7: 50 messages, each of one character, is a valid request."""
    result = castlewatch.test_metric_filter("x", ["x"] * 50)
    assert [m["eventNumber"] for m in result["matches"]] == list(range(1, 51))


def test_test_metric_filter_accepts_empty_pattern():
    """§7: filterPattern may be empty (0 characters)."""
    assert len(castlewatch.test_metric_filter("", ["a"])["matches"]) == 1


# --------------------------------------------------------------------------- §3.1 prefixed items

PREFIXED = [
    # (pattern, quoted text, column of its first character)
    ('-"abc def', '"abc def', 2),  # unterminated quote: "<text from the quote to the end>"
    ('?"abc', '"abc', 2),
    ('ERROR -"abc def  ', '"abc def', 8),
    ("?*", "*", 2),  # "<text from that character to the next whitespace>"
    ("-*x", "*x", 2),
    ("-*x y", "*x", 2),
    ("ERROR-*", "*", 7),  # whitespace is optional: `-` starts an item
    ('a-"b', '"b', 3),
    ("?\u00e9t\u00e9 x", "\u00e9t\u00e9", 2),
    ("ERROR ?:b", ":b", 8),
    ("ERROR ?a.b/c", "/c", 11),
    ("--a", "-a", 2),  # a second prefix starts neither a term nor a phrase
]


@pytest.mark.parametrize(("pattern", "term", "column"), PREFIXED, ids=[p for p, _, _ in PREFIXED])
def test_prefixed_item_message_quotes_text_after_the_prefix(pattern, term, column):
    """§3.1: an item is an optional prefix `?` or `-`, then a term or a phrase; the message
    quotes the text from the quote (to the end) or from the character that starts neither
    form (to the next whitespace), without the prefix, and the caret is on its first
    character."""
    error = rejected(pattern)
    assert error.message == f"Invalid character(s) in term '{term}'"
    assert error.column == column
    assert pattern[error.column - 1] == term[0]
    lines = str(error).split("\n")
    assert lines[2].index("^") == lines[1].index(pattern) + column - 1


@pytest.mark.parametrize(
    ("pattern", "column"),
    [("-", 1), ("?", 1), ("ERROR -", 7), ("ERROR ? x", 7)],
    ids=["minus", "query", "end", "space"],
)
def test_prefix_without_term_names_the_prefix(pattern, column):
    """§3.1: a prefix with no term after it [adopted]: the prefix itself is the offence."""
    error = rejected(pattern)
    assert error.message == f"Invalid character(s) in term '{pattern[column - 1]}'"
    assert error.column == column


@pytest.mark.parametrize(("pattern", "column"), [('-""', 2), ('ERROR ?""', 8)], ids=["excluded", "optional"])
def test_prefixed_empty_phrase_caret_on_the_quote(pattern, column):
    """§3.1: `""` is rejected; after a prefix the caret is on the quote the message names."""
    error = rejected(pattern)
    assert error.message == "Invalid character(s) in term '\"\"'"
    assert error.column == column


# --------------------------------------------------------------------------- §5.1 after IS

AFTER_IS = [
    ("{ $.a IS }", 10, "closing-brace"),
    ("{$.a IS}", 8, "closing-brace-no-space"),
    ("{ $.a IS && $.b = 1 }", 10, "and"),
    ("{ $.a IS || $.b = 1 }", 10, "or"),
    ("{ $.a IS ( }", 10, "paren"),
    ("{ ($.a IS ) }", 11, "close-paren"),
    ("{ $.a IS 1 }", 10, "number"),
    ('{ $.a IS "x" }', 10, "quoted"),
    ("{ $.a IS %x% }", 10, "regex"),
    ("{ $.a IS MAYBE }", 10, "word"),
    ("{ $.a IS IS }", 10, "IS-twice"),
    ("{ $.a IS EXISTS }", 10, "EXISTS"),
    ("{ $.a IS NOTHING }", 10, "NOT-prefix-word"),
    ("{ $.a IS null }", 10, "lower-case-null"),
    ("{ $.a IS true }", 10, "lower-case-true"),
]


@pytest.mark.parametrize(("pattern", "column"), [a[:2] for a in AFTER_IS], ids=[a[2] for a in AFTER_IS])
def test_bad_token_after_is_is_invalid_metric_filter_pattern(pattern, column):
    """§5.1: rejections give "Invalid metric filter pattern" unless stated; only `IS NOT NULL`
    is stated otherwise.  The caret is on the token after IS."""
    error = rejected(pattern)
    assert error.message == "Invalid metric filter pattern"
    assert error.column == column


@pytest.mark.parametrize(
    "pattern", ["{ $.a IS NOT NULL }", "{ $.a IS NOT }", "{$.a IS NOT NULL}"], ids=["null", "alone", "no-space"]
)
def test_is_not_keeps_its_message(pattern):
    """§5.1: `IS NOT NULL` ("Invalid character(s) in term 'NOT'"), caret on NOT."""
    error = rejected(pattern)
    assert error.message == "Invalid character(s) in term 'NOT'"
    assert pattern[error.column - 1 : error.column + 2] == "NOT"
