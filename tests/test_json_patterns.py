"""JSON patterns (spec §5): grammar, selectors, values and evaluation.

Events are written as raw JSON text where the source text of numbers matters.
"""

from __future__ import annotations

import json

import pytest

import castlewatch

# every test here runs on both matcher backends (castlewatch.grammar.literals)
pytestmark = pytest.mark.usefixtures("literal_backend")

INVALID = "Invalid metric filter pattern"
ONE_WILDCARD = (
    "Your filter pattern has a JSON path selector that exceeds the maximum of 1 wildcard "
    "allowed per json selector."
)
THREE_SELECTORS = "Your input has exceeded the maximum of 3 JSON wildcard selectors allowed per filter pattern."


def rejected(pattern: str) -> castlewatch.FilterPatternError:
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.compile_pattern(pattern)
    return info.value


def ev(doc) -> str:
    """An event: a JSON text as is, anything else serialised."""
    return doc if isinstance(doc, str) else json.dumps(doc)


def check(pattern: str, event: str, expected: bool) -> None:
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "json"
    assert compiled.matches(event) is expected
    # §5.4: extractedValues is always {} (None when the event does not match)
    assert compiled.extract(event) == ({} if expected else None)


def table(rows):
    """Parametrize (pattern, event, expected) rows that carry an id in 4th place."""
    return pytest.mark.parametrize(
        ("pattern", "event", "expected"),
        [(p, ev(e), x) for p, e, x, _ in rows],
        ids=[i for *_, i in rows],
    )


# --------------------------------------------------------------------------- §5.1 grammar

P_OR_AND = "{ $.a = 1 || $.b = 2 && $.c = 3 }"
P_PARENS = "{ ($.a = 1 || $.b = 2) && $.c = 3 }"
P_AND_OR = "{ $.a = 1 && $.b = 2 || $.c = 3 }"

PRECEDENCE = [
    (P_OR_AND, {"a": 1}, True, "a-alone"),
    (P_OR_AND, {"b": 2, "c": 3}, True, "b-and-c"),
    (P_OR_AND, {"b": 2}, False, "b-alone"),
    (P_OR_AND, {"c": 3}, False, "c-alone"),
    (P_OR_AND, {"a": 1, "b": 5}, True, "a-with-wrong-b"),
    (P_OR_AND, {"a": 0, "b": 2, "c": 0}, False, "none"),
    (P_PARENS, {"a": 1}, False, "parens-a-alone"),
    (P_PARENS, {"a": 1, "c": 3}, True, "parens-a-and-c"),
    (P_PARENS, {"b": 2, "c": 3}, True, "parens-b-and-c"),
    (P_AND_OR, {"c": 3}, True, "and-or-c-alone"),
    (P_AND_OR, {"a": 1}, False, "and-or-a-alone"),
    (P_AND_OR, {"a": 1, "b": 2}, True, "and-or-a-and-b"),
    ("{ ((($.a = 1))) }", {"a": 1}, True, "nested-parens"),
]


@table(PRECEDENCE)
def test_and_binds_tighter_than_or(pattern, event, expected):
    """§5.1: `&&` binds tighter than `||`; parentheses override."""
    check(pattern, event, expected)


WHITESPACE = [
    ("{($.eventName=X)||($.eventName=Y)}", {"eventName": "Y"}, True, "doc-example-y"),
    ("{($.eventName=X)||($.eventName=Y)}", {"eventName": "Z"}, False, "doc-example-z"),
    ("{$.a=1&&$.b=2}", {"a": 1, "b": 2}, True, "and-no-spaces"),
    ("{$.a>5}", {"a": 6}, True, "gt-no-spaces"),
    ("{$.a!=x}", {"a": "y"}, True, "ne-no-spaces"),
    ("{$.a<=5||$.a>=10}", {"a": 11}, True, "le-ge-no-spaces"),
    ("{$.a<=5||$.a>=10}", {"a": 7}, False, "le-ge-no-spaces-between"),
    ("{ $.a IS TRUE&&$.b NOT EXISTS }", {"a": True}, True, "keyword-then-and"),
    ("{   $.a    =    1   }", {"a": 1}, True, "extra-spaces"),
    ("{\n  $.a = 1\n  && $.b = 2\n}", {"a": 1, "b": 2}, True, "newlines"),
]


@table(WHITESPACE)
def test_whitespace_between_tokens_is_optional(pattern, event, expected):
    """§5.1: "Whitespace between tokens is optional"."""
    check(pattern, event, expected)


@pytest.mark.parametrize(
    "pattern",
    ["{ $.a is null }", "{ $.a IS null }", "{ $.a Is Null }", "{ $.a not exists }", "{ $.a NOT exists }", "{ $.a IS true }"],
)
def test_keywords_are_upper_case_only(pattern):
    """§5.1: keywords are upper-case only [adopted; no message: type only]."""
    rejected(pattern)


REJECT_INVALID = [
    ("{ $.a == 1 }", "double-equals"),
    ("{ $.a = null }", "eq-null"),
    ("{ $.a EXISTS }", "exists-without-not"),
    ("{ a = 1 }", "selector-without-dollar"),
    ("{ .a = 1 }", "selector-dot-only"),
    ('{ "source": ["aws.ec2"] }', "eventbridge"),
    ('{"detail-type": ["EC2 Instance State-change Notification"]}', "eventbridge-detail-type"),
    ("{}", "empty"),
    ("{ }", "empty-with-space"),
    ("{ $.a = }", "dangling-eq"),
    ("{ $.a = 1 && }", "dangling-and"),
    ("{ $.a = 1 || }", "dangling-or"),
    ("{ && $.a = 1 }", "leading-and"),
    ("{ $.a }", "selector-alone"),
    ("{ ($.a = 1 }", "unbalanced-open"),
    ("{ $.a = 1) }", "unbalanced-close"),
    ("{ (($.a = 1) }", "unbalanced-double"),
]


@pytest.mark.parametrize("pattern", [p for p, _ in REJECT_INVALID], ids=[i for _, i in REJECT_INVALID])
def test_rejected_as_invalid_metric_filter_pattern(pattern):
    """§5.1: these rejections give "Invalid metric filter pattern"."""
    assert rejected(pattern).message == INVALID


def test_is_not_null_is_rejected_naming_not():
    """§5.1: `IS NOT NULL` gives "Invalid character(s) in term 'NOT'"."""
    assert rejected("{ $.a IS NOT NULL }").message == "Invalid character(s) in term 'NOT'"


def test_relational_with_quoted_value_is_rejected_naming_it():
    """§5.1: `> "Alpha"` gives "Invalid character(s) in term '"Alpha"'"."""
    assert rejected('{ $.a > "Alpha" }').message == "Invalid character(s) in term '\"Alpha\"'"


@pytest.mark.parametrize(
    "pattern",
    ["{ $.a > abc }", "{ $.a < * }", "{ $.a >= 1* }", '{ $.a <= "5" }', "{ $.a > true }"],
    ids=["bare-word", "star", "wildcard-number", "quoted-number", "bare-true"],
)
def test_relational_needs_bare_number(pattern):
    """§5.1: a relational operator whose value is not a bare number is rejected (type only)."""
    rejected(pattern)


@pytest.mark.parametrize(
    "pattern",
    ["{ $.a = 'x' }", "{ $ = 1 }", "{ $.a = x y }", "{ $.a IS MAYBE }", "{ $.a = 1 $.b = 2 }", "{ $. = 1 }"],
    ids=["single-quoted", "bare-dollar", "two-values", "bad-keyword", "missing-operator", "empty-name"],
)
def test_other_syntax_errors_are_rejected(pattern):
    """§5.1/§5.2: other malformed patterns are rejected (message not pinned by the spec)."""
    rejected(pattern)


# --------------------------------------------------------------------------- §5.2 selectors

SELECTORS = [
    ("{ $.user-name = x }", {"user-name": "x"}, True, "name-with-hyphen"),
    ("{ $.a_b1 = x }", {"a_b1": "x"}, True, "name-with-underscore-digit"),
    ("{ $.A = x }", {"a": "x"}, False, "name-case-sensitive"),
    ("{ $.a.b.c = x }", {"a": {"b": {"c": "x"}}}, True, "nested"),
    ("{ $.arr[0] = a }", {"arr": ["a", "b"]}, True, "index-zero"),
    ("{ $.arr[1] = b }", {"arr": ["a", "b"]}, True, "index-one"),
    ("{ $.arr[1] = a }", {"arr": ["a", "b"]}, False, "index-zero-based"),
    ("{ $.matrix[0][1] = 2 }", {"matrix": [[1, 2], [3, 4]]}, True, "index-chained"),
    ("{ $.matrix[1][0] = 2 }", {"matrix": [[1, 2], [3, 4]]}, False, "index-chained-other"),
    ("{ $.a[1].b = x }", {"a": [{"b": "y"}, {"b": "x"}]}, True, "index-then-member"),
    ("{ $.arr[5] = a }", {"arr": ["a"]}, False, "index-out-of-range"),
    ("{ $.a[0] = x }", {"a": {"0": "x"}}, False, "index-never-reads-object-key"),
    ("{ $.a.b = 1 }", {"a": [{"b": 1}]}, False, "member-on-array"),
    ("{ $.a.b = 1 }", {"a": 5}, False, "member-on-scalar"),
    ("{ $.['cluster.name'] = x }", {"cluster.name": "x"}, True, "dot-bracket-key"),
    ("{ $['cluster.name'] = x }", {"cluster.name": "x"}, True, "bracket-key"),
    ('{ $.["cluster.name"] = x }', {"cluster.name": "x"}, True, "double-quoted-bracket-key"),
    ("{ $.a.['b.c'] = x }", {"a": {"b.c": "x"}}, True, "dot-bracket-key-nested"),
    ("{ $.a['b.c'] = x }", {"a": {"b.c": "x"}}, True, "bracket-key-nested"),
    ("{ $['a b'] = 1 }", {"a b": 1}, True, "bracket-key-with-space"),
    ("{ $.cluster.name = x }", {"cluster.name": "x"}, False, "dotted-path-never-reads-flat-key"),
    ("{ $.cluster.name = x }", {"cluster": {"name": "x"}}, True, "dotted-path-nested"),
    ("{ $.['cluster.name'] = x }", {"cluster": {"name": "x"}}, False, "bracket-key-not-nested"),
    # wildcards over arrays and objects, not descending further
    ("{ $.arr[*] = hit }", {"arr": {"0": "hit"}}, True, "star-over-object"),
    ("{ $.arr[*] = hit }", {"arr": ["x", "hit"]}, True, "star-over-array"),
    ("{ $.arr[*] = hit }", {"arr": ["x", "y"]}, False, "star-no-element"),
    ("{ $.arr.* = hit }", {"arr": {"k": "hit"}}, True, "dot-star-over-object"),
    ("{ $.arr.* = 2 }", {"arr": [1, 2]}, True, "dot-star-over-array"),
    ("{ $.* = x }", {"a": "x"}, True, "dot-star-top"),
    ("{ $[*] = x }", {"k": "x"}, True, "star-top"),
    ("{ $.arr[*] = hit }", {"arr": [["hit"]]}, False, "star-not-descending-array"),
    ("{ $.arr[*] = hit }", {"arr": {"k": {"z": "hit"}}}, False, "star-not-descending-object"),
    ("{ $.arr[*] = hit }", {"arr": "hit"}, False, "star-over-scalar"),
    ("{ $.items[*].id = 3 }", {"items": [{"id": 1}, {"id": 3}]}, True, "star-then-member"),
    ("{ $.items[*].id = 3 }", {"items": {"x": {"id": 3}}}, True, "star-object-then-member"),
    ("{ $.items[*].id = 3 }", {"items": [{"id": 1}, {"id": 2}]}, False, "star-then-member-none"),
    ("{ $.items[*] = 2 }", {"items": [1, 2, 3]}, True, "any-node"),
    ("{ $.items[*] != 2 }", {"items": [2, 3]}, True, "ne-any-node"),
    ("{ $.items[*] != 2 }", {"items": [2]}, False, "ne-only-node-equal"),
    (
        "{ $.items[*].a = 1 && $.items[*].b = 2 }",
        {"items": [{"a": 1}, {"b": 2}]},
        True,
        "conditions-met-by-different-elements",
    ),
]


@table(SELECTORS)
def test_selectors(pattern, event, expected):
    """§5.2 selectors and §5.4 "a condition holds if any node satisfies it"."""
    check(pattern, event, expected)


@pytest.mark.parametrize(
    "pattern",
    ["{ $.a[*].b[*] = 1 }", "{ $.a.*.b.* = 1 }", "{ $.a[*].* = 1 }", "{ $[*][*] = 1 }"],
    ids=["two-brackets", "two-dots", "mixed", "top"],
)
def test_more_than_one_wildcard_in_a_selector(pattern):
    """§5.2: more than one wildcard in a selector gives the stated message."""
    assert rejected(pattern).message == ONE_WILDCARD


def test_more_than_three_wildcard_selectors():
    """§5.2: more than three selectors with a wildcard gives the stated message."""
    pattern = "{ $.a[*] = 1 || $.b[*] = 1 || $.c.* = 1 || $.d[*].e = 1 }"
    assert rejected(pattern).message == THREE_SELECTORS


def test_three_wildcard_selectors_are_accepted():
    """§5.2: three wildcard selectors are within the limit."""
    compiled = castlewatch.compile_pattern("{ $.a[*] = 1 || $.b[*] = 1 || $.c.* = 1 }")
    assert compiled.matches('{"c": {"k": 1}}') is True


# --------------------------------------------------------------------------- §5.3 values

VALUES = [
    # quoted strings and escapes
    ('{ $.v = "hello world" }', {"v": "hello world"}, True, "quoted"),
    ('{ $.v = "hello world" }', {"v": "hello  world"}, False, "quoted-exact"),
    ('{ $.v = "a\\"b" }', {"v": 'a"b'}, True, "quoted-escaped-quote"),
    ('{ $.v = "a\\\\b" }', {"v": "a\\b"}, True, "quoted-escaped-backslash"),
    ('{ $.v = "a\\nb" }', {"v": "a\\nb"}, True, "quoted-other-escape-kept"),
    ('{ $.v = "a\\nb" }', {"v": "a\nb"}, False, "quoted-other-escape-not-newline"),
    ('{ $.v = "caf\u00e9" }', '{"v": "caf\\u00e9"}', True, "quoted-non-ascii-vs-json-escape"),
    ('{ $.v = "%x%" }', {"v": "%x%"}, True, "quoted-percent-is-literal"),
    ('{ $.v = "%x%" }', {"v": "x"}, False, "quoted-percent-not-regex"),
    # bare strings
    ("{ $.v = abc }", {"v": "abc"}, True, "bare"),
    ("{ $.v = abc }", {"v": "ABC"}, False, "bare-case"),
    ("{ $.v = abc }", {"v": "abcd"}, False, "bare-exact"),
    ("{ $.host = s3.amazonaws.com }", {"host": "s3.amazonaws.com"}, True, "bare-with-dots"),
    ("{ $.ip = 123.123.* }", {"ip": "123.123.4.5"}, True, "bare-dotted-prefix"),
    ("{ $.ip = 123.123.* }", {"ip": "123.124.1.1"}, False, "bare-dotted-prefix-other"),
    ("{ $.v = x&&$.w = y }", {"v": "x", "w": "y"}, True, "bare-ends-at-ampersand"),
    ("{($.v=x)}", {"v": "x"}, True, "bare-ends-at-paren"),
    ("{ $.v = - }", {"v": "-"}, True, "bare-hyphen"),
    ("{ $.v = true }", {"v": "true"}, True, "bare-true-is-string"),
    ("{ $.v = true }", {"v": True}, False, "bare-true-not-boolean"),
    ("{ $.v = false }", {"v": False}, False, "bare-false-not-boolean"),
    ("{ $.v = false }", {"v": "false"}, True, "bare-false-is-string"),
    # wildcards
    ("{ $.v = * }", {"v": "x"}, True, "star-string"),
    ("{ $.v = * }", {"v": ""}, True, "star-empty-string"),
    ("{ $.v = * }", {"v": 5}, True, "star-number"),
    ("{ $.v = *.html }", {"v": "index.html"}, True, "ends-with"),
    ("{ $.v = *.html }", {"v": "index.html5"}, False, "ends-with-no"),
    ("{ $.v = GET* }", {"v": "GET /x"}, True, "starts-with"),
    ("{ $.v = GET* }", {"v": "xGET"}, False, "starts-with-no"),
    ("{ $.v = *err* }", {"v": "an error here"}, True, "contains"),
    ("{ $.v = *err* }", {"v": "ERR"}, False, "contains-case"),
    ("{ $.v = a*b }", {"v": "a*b"}, True, "middle-star-literal"),
    ("{ $.v = a*b }", {"v": "axb"}, False, "middle-star-not-wildcard"),
    ("{ $.v = *a*b* }", {"v": "xa*by"}, True, "contains-with-literal-star"),
    ("{ $.v = *a*b* }", {"v": "xaby"}, False, "contains-literal-star-required"),
    ('{ $.v = "*.html" }', {"v": "a.html"}, True, "quoted-ends-with"),
    ('{ $.v = "GET*" }', {"v": "GET /"}, True, "quoted-starts-with"),
    ('{ $.v = "a*b" }', {"v": "axb"}, False, "quoted-middle-star-literal"),
    ("{ $.v = a?c }", {"v": "a?c"}, True, "question-literal"),
    ("{ $.v = a?c }", {"v": "abc"}, False, "question-not-wildcard"),
    ("{ $.s = 4* }", {"s": 404}, True, "wildcard-on-number-text"),
    ("{ $.s = 4* }", {"s": 500}, False, "wildcard-on-number-text-no"),
]


@table(VALUES)
def test_values(pattern, event, expected):
    """§5.3 values: quoted, bare, wildcards, `?` literal, `true`/`false` strings (§12 for `4*`)."""
    check(pattern, event, expected)


BAD_BARE = [
    ("{ $.a = a@b }", "a@b"),
    ("{ $.a = a$b }", "a$b"),
    ("{ $.a = $.b }", "$.b"),
    ("{ $.a = a\\b }", "a\\b"),
    ("{ $.a = it's }", "it's"),
    ("{ $.a = a[0] }", "a[0]"),
    ("{ $.a = a]b }", "a]b"),
    ("{ $.a = caf\u00e9 }", "caf\u00e9"),
]


@pytest.mark.parametrize(("pattern", "value"), BAD_BARE, ids=[v for _, v in BAD_BARE])
def test_bare_value_with_invalid_character(pattern, value):
    """§5.3: a bare value containing `@ $ \\ ' [ ]` or non-ASCII gives
    "Invalid character(s) in term '<value>'"."""
    assert rejected(pattern).message == f"Invalid character(s) in term '{value}'"


@pytest.mark.parametrize(
    ("pattern", "value"),
    [('{ $.a = "a@b" }', "a@b"), ('{ $.a = "it\'s [x] $y \u00e9" }', "it's [x] $y \u00e9")],
    ids=["at", "mixed"],
)
def test_quoted_values_may_contain_those_characters(pattern, value):
    """§5.3: those characters "must be quoted", and quoted they are fine."""
    assert castlewatch.compile_pattern(pattern).matches(json.dumps({"a": value})) is True


# --------------------------------------------------------------------------- §5.4 table

NUMBERS = [
    ("{ $.v = 1 }", '{"v": 1}', True, "eq1-int"),
    ("{ $.v = 1 }", '{"v": 1.0}', True, "eq1-decimal"),
    ("{ $.v = 1 }", '{"v": 1e0}', True, "eq1-exponent"),
    ("{ $.v = 1 }", '{"v": 10}', False, "eq1-ten"),
    ("{ $.v = 1 }", '{"v": "1"}', True, "eq1-string-same-text"),
    ("{ $.v = 1 }", '{"v": "1.0"}', False, "eq1-string-other-text"),
    ("{ $.v = 1 }", '{"v": true}', False, "eq1-true"),
    ("{ $.v = 1 }", '{"v": null}', False, "eq1-null"),
    ("{ $.v = 1 }", '{"v": [1]}', False, "eq1-array"),
    ("{ $.v = 1 }", '{"v": {"x": 1}}', False, "eq1-object"),
    ("{ $.v = 1 }", "{}", False, "eq1-missing"),
    ("{ $.v = 1e+0 }", '{"v": "1"}', False, "exp-vs-string-1"),
    ("{ $.v = 1e+0 }", '{"v": "1e+0"}', True, "exp-vs-string-same-text"),
    ("{ $.v = 1e+0 }", '{"v": 1}', True, "exp-vs-number"),
    ("{ $.v = 1.0 }", '{"v": "1.0"}', True, "decimal-vs-string-same-text"),
    ("{ $.v = 1.0 }", '{"v": "1"}', False, "decimal-vs-string-other-text"),
    ("{ $.v = 1.0 }", '{"v": 1}', True, "decimal-vs-number"),
    ("{ $.v = 1.50 }", '{"v": "1.5"}', False, "number-text-kept"),
    ("{ $.v = 1.50 }", '{"v": 1.5}', True, "number-value-equal"),
    ("{ $.v = 1e3 }", '{"v": 1000}', True, "exponent-equal"),
    ("{ $.v = -2.5 }", '{"v": -2.5}', True, "negative"),
    ("{ $.v = -2.5 }", '{"v": -25e-1}', True, "negative-exponent"),
    ("{ $.v = .5 }", '{"v": 0.5}', True, "leading-dot"),
    ("{ $.v = +3 }", '{"v": 3}', True, "leading-plus"),
    ('{ $.v = "1.0" }', '{"v": 1.0}', True, "quoted-vs-number-source-text"),
    ('{ $.v = "1.0" }', '{"v": 1}', False, "quoted-vs-number-other-text"),
    ('{ $.v = "1.0" }', '{"v": "1.0"}', True, "quoted-vs-string"),
    # != : strings or numbers for which = is false
    ("{ $.v != 1 }", '{"v": 2}', True, "ne-number"),
    ("{ $.v != 1 }", '{"v": "x"}', True, "ne-string"),
    ("{ $.v != 1 }", '{"v": 1.0}', False, "ne-equal-number"),
    ("{ $.v != 1 }", '{"v": "1"}', False, "ne-equal-string"),
    ("{ $.v != 1 }", "{}", False, "ne-missing"),
    ("{ $.v != 1 }", '{"v": null}', False, "ne-null"),
    ("{ $.v != 1 }", '{"v": true}', False, "ne-boolean"),
    ("{ $.v != 1 }", '{"v": [2]}', False, "ne-array"),
    ("{ $.v != 1 }", '{"v": {"a": 2}}', False, "ne-object"),
    ("{ $.v != abc }", '{"v": "abd"}', True, "ne-string-other"),
    ("{ $.v != abc }", '{"v": 5}', True, "ne-string-vs-number"),
    ("{ $.v != abc }", '{"v": "abc"}', False, "ne-string-same"),
    ("{ $.v != * }", '{"v": "x"}', False, "ne-star-string"),
    ("{ $.v != * }", '{"v": null}', False, "ne-star-null"),
    ("{ $.v != a* }", '{"v": "b"}', True, "ne-prefix-other"),
    ("{ $.v != a* }", '{"v": "ab"}', False, "ne-prefix-same"),
    # = * needs a string or number
    ("{ $.v = * }", '{"v": null}', False, "star-null"),
    ("{ $.v = * }", '{"v": true}', False, "star-true"),
    ("{ $.v = * }", '{"v": false}', False, "star-false"),
    ("{ $.v = * }", '{"v": []}', False, "star-array"),
    ("{ $.v = * }", '{"v": {}}', False, "star-object"),
    ("{ $.v = * }", "{}", False, "star-missing"),
    # relational: JSON numbers only
    ("{ $.v > 5 }", '{"v": 6}', True, "gt"),
    ("{ $.v > 5 }", '{"v": 5}', False, "gt-equal"),
    ("{ $.v > 5 }", '{"v": 5.5}', True, "gt-decimal"),
    ("{ $.v > 5 }", '{"v": "6"}', False, "gt-numeric-string"),
    ("{ $.v > 5 }", "{}", False, "gt-missing"),
    ("{ $.v >= 5 }", '{"v": 5}', True, "ge-equal"),
    ("{ $.v < 5 }", '{"v": 4.9}', True, "lt"),
    ("{ $.v < 5 }", '{"v": null}', False, "lt-null"),
    ("{ $.v < 5 }", '{"v": true}', False, "lt-boolean"),
    ("{ $.v < 5 }", '{"v": [1]}', False, "lt-array"),
    ("{ $.v <= 5 }", '{"v": 5.0}', True, "le-equal-decimal"),
    ("{ $.v <= 5 }", '{"v": 6}', False, "le-greater"),
    ("{ $.v < -1 }", '{"v": -2}', True, "lt-negative"),
    ("{ $.v > 1e2 }", '{"v": 150}', True, "gt-exponent-literal"),
    ("{ $.v > 100 }", '{"v": 1.5e2}', True, "gt-exponent-event"),
    ("{ $.v[*] > 5 }", '{"v": [1, 9]}', True, "gt-any-element"),
    # IS NULL / IS TRUE / IS FALSE
    ("{ $.v IS NULL }", '{"v": null}', True, "null"),
    ("{ $.v IS NULL }", '{"v": [1, null]}', True, "null-in-array"),
    ("{ $.v IS NULL }", '{"v": [1]}', False, "null-array-without"),
    ("{ $.v IS NULL }", '{"v": "null"}', False, "null-string"),
    ("{ $.v IS NULL }", "{}", False, "null-missing"),
    ("{ $.v IS NULL }", '{"v": {}}', False, "null-object"),
    ("{ $.v IS NULL }", '{"v": false}', False, "null-false"),
    ("{ $.v IS TRUE }", '{"v": true}', True, "true"),
    ("{ $.v IS TRUE }", '{"v": "true"}', False, "true-string"),
    ("{ $.v IS TRUE }", '{"v": false}', False, "true-false"),
    ("{ $.v IS TRUE }", '{"v": 1}', False, "true-one"),
    ("{ $.v IS FALSE }", '{"v": false}', True, "false"),
    ("{ $.v IS FALSE }", '{"v": "false"}', False, "false-string"),
    ("{ $.v IS FALSE }", '{"v": 0}', False, "false-zero"),
    ("{ $.v IS FALSE }", '{"v": null}', False, "false-null"),
    # NOT EXISTS
    ("{ $.v NOT EXISTS }", "{}", True, "missing"),
    ("{ $.v NOT EXISTS }", '{"v": null}', False, "present-null-exists"),
    ("{ $.v NOT EXISTS }", '{"v": 1}', False, "present"),
    ("{ $.a.b NOT EXISTS }", '{"a": null}', True, "crosses-null"),
    ("{ $.a.b NOT EXISTS }", '{"a": 5}', True, "crosses-scalar"),
    ("{ $.a.b NOT EXISTS }", '{"a": "s"}', True, "crosses-string"),
    ("{ $.a.b NOT EXISTS }", '{"a": [{"b": 1}]}', True, "crosses-array"),
    ("{ $.a.b NOT EXISTS }", '{"a": {}}', True, "missing-member"),
    ("{ $.a.b NOT EXISTS }", '{"a": {"b": null}}', False, "nested-null-exists"),
    ("{ $.a.b NOT EXISTS }", '{"a": {"b": 1}}', False, "nested-present"),
    ("{ $.a[5] NOT EXISTS }", '{"a": [1]}', True, "index-out-of-range"),
    ("{ $.a[*] NOT EXISTS }", '{"a": []}', True, "wildcard-empty-array"),
    ("{ $.a[*] NOT EXISTS }", '{"a": {}}', True, "wildcard-empty-object"),
    ("{ $.a[*] NOT EXISTS }", "{}", True, "wildcard-missing"),
    ("{ $.a[*] NOT EXISTS }", '{"a": 5}', True, "wildcard-over-scalar"),
    ("{ $.a[*] NOT EXISTS }", '{"a": [1]}', False, "wildcard-element"),
    ("{ $.a[*] NOT EXISTS }", '{"a": {"k": null}}', False, "wildcard-null-value"),
    # case-sensitive string values
    ("{ $.v = Error }", '{"v": "ERROR"}', False, "value-case"),
]


@table(NUMBERS)
def test_evaluation_table(pattern, event, expected):
    """§5.4 table and "Consequences" (numbers, `!=`, `= *`, relational, IS, NOT EXISTS)."""
    check(pattern, event, expected)


# --------------------------------------------------------------------------- non-JSON events

NON_JSON = [
    ("plain text", "plain-text"),
    ('{"a": 1', "truncated"),
    ('{"b":', "truncated-after-colon"),
    ('[{"a": 1}]', "top-level-array"),
    ("[]", "empty-array"),
    ('"string"', "top-level-string"),
    ("42", "top-level-number"),
    ("null", "top-level-null"),
    ('2024-01-01T00:00:00.000Z\t8f6a7c2e-1111-2222-3333-444455556666\t{"b": 1}', "lambda-prefix"),
    ('INFO {"b": 1}', "text-before"),
    ('{"b": 1} trailing', "text-after"),
    ("{b: 1}", "unquoted-key"),
]


@pytest.mark.parametrize("event", [e for e, _ in NON_JSON], ids=[i for _, i in NON_JSON])
@pytest.mark.parametrize(
    "pattern",
    ["{ $.a NOT EXISTS }", "{ $.a != 1 }", "{ $.b = * }", "{ $.b IS NULL || $.b NOT EXISTS }"],
    ids=["not-exists", "ne", "star", "null-or-missing"],
)
def test_non_json_event_never_matches(pattern, event):
    """§5.4: a message that is not a JSON object matches no condition, NOT EXISTS included."""
    check(pattern, event, False)


@pytest.mark.parametrize(
    "event",
    ['  {"b": 1}  ', '\n{"b": 1}\n', '\t{"b": 1}', '{"b": 1}\r\n'],
    ids=["spaces", "newlines", "tab", "crlf"],
)
def test_surrounding_whitespace_is_allowed(event):
    """§5.4: "The message must parse as a JSON object (surrounding whitespace allowed)"."""
    check("{ $.a NOT EXISTS && $.b = 1 }", event, True)


@pytest.mark.parametrize(
    ("pattern", "expected"), [("{ $.a = 2 }", True), ("{ $.a = 1 }", False)], ids=["last", "first"]
)
def test_duplicate_keys_last_one_wins(pattern, expected):
    """§5.4: "Duplicate keys: the last one wins"."""
    check(pattern, '{"a": 1, "a": 2}', expected)


def test_duplicate_keys_nested_last_one_wins():
    """§5.4: duplicate keys in a nested object, last wins."""
    check("{ $.o.k = new }", '{"o": {"k": "old", "k": "new"}}', True)
    check("{ $.o.k = old }", '{"o": {"k": "old", "k": "new"}}', False)


def test_json_match_through_test_metric_filter_has_empty_extracted_values():
    """§5.4/§7: "extractedValues is always {}" for JSON patterns."""
    result = castlewatch.test_metric_filter(
        "{ $.level = ERROR }", ['{"level": "INFO"}', '{"level": "ERROR", "n": 5}', "ERROR"]
    )
    assert result == {
        "matches": [{"eventNumber": 2, "eventMessage": '{"level": "ERROR", "n": 5}', "extractedValues": {}}]
    }


@pytest.mark.parametrize(
    "pattern, event",
    [
        (r'{ $.a = "\"q\"" }', r'{"a":"\"q\""}'),
        (r'{ $.a = "q\"" }', r'{"a":"q\""}'),
        (r'{ $.a = "\"q" }', r'{"a":"\"q"}'),
        (r'{ $.a = "\"q*" }', r'{"a":"\"qz"}'),
        (r'{ $.a = "*q\"" }', r'{"a":"zq\""}'),
        (r'{ $.a = "a\\b" }', r'{"a":"a\\b"}'),
    ],
)
def test_quotes_and_backslashes_inside_string_values(pattern, event):
    """§5.3: a quoted value's ``\"`` is ``"``, so it equals a JSON string holding a quote,
    which the raw text shows escaped: the literal prefilter must not require it verbatim."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.matches(event)
    assert not compiled.matches(event.replace("q", "x").replace("b", "x"))


BIG = "99999999999999999999"  # beyond 64 bits: orjson decodes it to a float


@pytest.mark.parametrize(
    "condition, event, expected",
    [
        (f"= {BIG}", f'{{"a":{BIG}}}', True),
        ("= 1e20", f'{{"a":{BIG}}}', False),
        (f"!= {BIG}", f'{{"a":{BIG}}}', False),
        (f">= {BIG}", f'{{"a":{BIG}}}', True),
        (f"< {BIG}", f'{{"a":{BIG}}}', False),
        ("> 99999999999999999998", f'{{"a":{BIG}}}', True),
        ("= 12345678901234567890123", '{"a":12345678901234567890123}', True),
        ("<= 12345678901234567890122", '{"a":12345678901234567890123}', False),
        ("= -9223372036854775809", '{"a":-9223372036854775809}', True),
        (f'= "{BIG}"', f'{{"a":{BIG}}}', True),
        ("= 1e20", '{"a":1e20}', True),
        ("> 1e19", '{"a":1e20}', True),
        ("= 1.5", '{"a":1.50}', True),
        ("= 9007199254740993", '{"a":9007199254740993.0}', True),
        (">= 9007199254740993", '{"a":9007199254740993.0}', True),
        ("= 9007199254740993.0", '{"a":9007199254740992}', False),
        ("> 1e400", '{"a":1e401}', True),
        ("= 1e400", '{"a":1e401}', False),
    ],
)
def test_integers_beyond_64_bits_compare_exactly(condition, event, expected):
    """§5.4: "numbers keep their source text" and ``= N`` is numeric equality, so a
    huge integer equals itself, and comparisons use its exact value."""
    assert castlewatch.compile_pattern(f"{{ $.a {condition} }}").matches(event) is expected
