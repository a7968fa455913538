"""Space-delimited patterns (spec §6): slot grammar, splitting, alignment, conditions,
extracted values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import castlewatch

# every test here runs on both matcher backends (castlewatch.grammar.literals)
pytestmark = pytest.mark.usefixtures("literal_backend")

INVALID = "Invalid metric filter pattern"


def rejected(pattern: str) -> castlewatch.FilterPatternError:
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.compile_pattern(pattern)
    return info.value


def check(pattern: str, event: str, extracted: dict[str, str] | None) -> None:
    """`extracted` None means: no match."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "space_delimited"
    assert compiled.matches(event) is (extracted is not None)
    assert compiled.extract(event) == extracted


def rows(cases):
    return pytest.mark.parametrize(
        ("pattern", "event", "extracted"), [c[:3] for c in cases], ids=[c[3] for c in cases]
    )


# --------------------------------------------------------------------------- §6.1 grammar

VALID = [
    "[a, b, c]",
    "[a,b,c]",
    "[ a , b ]",
    "[..., status_code=4*,]",
    "[, b]",
    "[ , ]",
    "[...]",
    "[..., a]",
    "[a, ...]",
    "[a, ..., b]",
    "[]",
    "[ ]",
    "[a-b_C1, d]",
    "[a, A]",
    "[w1=SPACE, w2, w3]",
    '[kind = "SPACE", value, bucket]',
    "[w1=ERROR, w2]",
    "[a = 1 || a = 2, b]",
    "[a > 1 && a < 5]",
    '[a = "x,y", b]',
    r"[a = %^\d{1,3}$%, b]",
    "[a, b != -, c >= 1e3]",
]


@pytest.mark.parametrize("pattern", VALID)
def test_valid_slot_grammar(pattern):
    """§6.1: empty slots, one ellipsis anywhere, names, conditions with && / ||, `[]`;
    `[w1=SPACE, …]` is accepted [adopted]; case-sensitive names make `a` and `A` distinct."""
    assert castlewatch.compile_pattern(pattern).kind == "space_delimited"


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("[..., ...]", "..."),
        ("[..., a, ...]", "..."),
        ("[a, ..., b, ..., c]", "..."),
        ("[a, a]", "a"),
        ("[a, b, a = 1]", "a"),
        ("[a = 1, b, a != 2]", "a"),
        ("[status, status]", "status"),
    ],
    ids=["two-ellipses", "ellipses-around", "ellipses-between", "names", "name-and-condition", "conditions", "word"],
)
def test_duplicate_field(pattern, name):
    """§6.1: a second ellipsis or a repeated name gives "Duplicate field '<name>'"."""
    assert rejected(pattern).message == f"Duplicate field '{name}'"


@pytest.mark.parametrize(
    "pattern",
    ["[status_code = 4* && bytes > 1000]", "[a, b = 1 || c = 2]", "[a = 1 && c = 2, b]"],
    ids=["doc-example", "or-other-field", "and-other-field"],
)
def test_condition_naming_another_field_is_rejected(pattern):
    """§6.1: every condition in a slot must name that slot's field; message "Invalid metric
    filter pattern" [adopted, text given]."""
    assert rejected(pattern).message == INVALID


@pytest.mark.parametrize(
    "pattern",
    ['[a > "1"]', "[a > x]", "[a < *]", "[a >= 1*]", "[a, b <= %1%]"],
    ids=["quoted", "word", "star", "wildcard", "regex"],
)
def test_relational_needs_bare_number(pattern):
    """§6.1: relational operators need a bare number literal [adopted; type only]."""
    rejected(pattern)


@pytest.mark.parametrize(
    "pattern",
    ["[a b, c]", "[a = ]", "[a = 1 &&]", "[a == 1]", "[a, b c = 1]"],
    ids=["two-words", "dangling-eq", "dangling-and", "double-eq", "words-before-op"],
)
def test_malformed_slots_are_rejected(pattern):
    """§6.1: malformed slots (message not pinned)."""
    rejected(pattern)


def test_bare_value_with_invalid_character():
    """§6.1 "Values are as in §5.3": a bare value with `@` gives the §5.3 message."""
    assert rejected("[a, b = a@b]").message == "Invalid character(s) in term 'a@b'"


# --------------------------------------------------------------------------- §6.2 splitting

SPLITS = [
    ("a b\tc", {"$1": "a", "$2": "b", "$3": "c"}, "space-and-tab"),
    ("  a   b  ", {"$1": "a", "$2": "b"}, "runs-and-edges"),
    ("a\nb\rc\fd\ve", {"$1": "a", "$2": "b", "$3": "c", "$4": "d", "$5": "e"}, "cr-lf-ff-vt"),
    ('"a b" c', {"$1": "a b", "$2": "c"}, "quoted"),
    ("[10/Oct/2000:13:55:36 -0700] GET", {"$1": "10/Oct/2000:13:55:36 -0700", "$2": "GET"}, "bracketed"),
    ('[t]"GET /" 200', {"$1": "t", "$2": "GET /", "$3": "200"}, "close-bracket-then-quote"),
    ('"a"b', {"$1": "a", "$2": "b"}, "close-quote-then-text"),
    ('"x"[y]"z"', {"$1": "x", "$2": "y", "$3": "z"}, "three-delimited-adjacent"),
    ('"unterminated rest', {"$1": '"unterminated', "$2": "rest"}, "unclosed-quote"),
    ("[unclosed rest", {"$1": "[unclosed", "$2": "rest"}, "unclosed-bracket"),
    ('ab"c d"', {"$1": 'ab"c', "$2": 'd"'}, "quote-inside-field"),
    ('x "" y', {"$1": "x", "$2": "", "$3": "y"}, "empty-quotes"),
    ("x [] y", {"$1": "x", "$2": "", "$3": "y"}, "empty-brackets"),
    ('[a "b] c"', {"$1": 'a "b', "$2": 'c"'}, "first-close-bracket"),
    ('"a [b" c]', {"$1": "a [b", "$2": "c]"}, "bracket-inside-quotes"),
    ("[a [b] c", {"$1": "a [b", "$2": "c"}, "bracket-up-to-first-close"),
    ("single", {"$1": "single"}, "one-field"),
]


@pytest.mark.parametrize(("event", "extracted"), [c[:2] for c in SPLITS], ids=[c[2] for c in SPLITS])
def test_splitting_with_empty_brackets(event, extracted):
    """§6.2 splitting, seen through `[]` which takes every field as `$N` (§6.3, §6.5)."""
    check("[]", event, extracted)


@pytest.mark.parametrize(("event", "extracted"), [c[:2] for c in SPLITS], ids=[c[2] for c in SPLITS])
def test_splitting_with_lone_ellipsis(event, extracted):
    """§6.3: `[...]` takes every field, like `[]`."""
    check("[...]", event, extracted)


@pytest.mark.parametrize("pattern", ["[]", "[ ]", "[...]"])
def test_no_slot_patterns_match_blank_event(pattern):
    """§6.1: `[]` matches every event; with no field there is nothing to extract."""
    check(pattern, "   ", {})


# --------------------------------------------------------------------------- §6.3 alignment

APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
APACHE_200 = APACHE.replace(" 404 ", " 200 ")

ALIGN = [
    ("[w1=ERROR, w2]", "ERROR request failed", {"$w1": "ERROR", "$w2": "request failed"}, "doc-absorb"),
    ("[w1=ERROR, w2]", "ERROR", None, "doc-too-few"),
    ("[w1=ERROR, w2]", "WARN request failed", None, "doc-condition-fails"),
    ("[a, b]", 'x "y z"  [w]', {"$a": "x", "$b": '"y z"  [w]'}, "absorb-raw-tail"),
    ("[a, b]", 'x "y z"', {"$a": "x", "$b": "y z"}, "single-leftover-unquoted"),
    ("[a, b]", "x [y]", {"$a": "x", "$b": "y"}, "single-leftover-unbracketed"),
    ("[a, b]", "x y z   ", {"$a": "x", "$b": "y z"}, "absorb-ends-at-last-field"),
    ("[a, b]", "x y\tz", {"$a": "x", "$b": "y\tz"}, "absorb-keeps-tab"),
    ("[a, b]", "  x   y", {"$a": "x", "$b": "y"}, "leading-spaces"),
    ("[a]", "x  y z", {"$a": "x  y z"}, "one-slot-absorbs-all"),
    ("[a]", "   ", None, "one-slot-no-field"),
    ("[a, b, c]", "x y", None, "fewer-fields"),
    ("[a, b]", "x y", {"$a": "x", "$b": "y"}, "exact-count"),
    ("[a, b = x]", "1 x y", None, "absorbed-tail-compared-whole"),
    ('[a, b = "request failed"]', "ERROR request failed", {"$a": "ERROR", "$b": "request failed"}, "absorbed-eq"),
    ("[a, b = request*]", "ERROR request failed", {"$a": "ERROR", "$b": "request failed"}, "absorbed-prefix"),
    ("[a, ..., b]", "1 2 3 4", {"$a": "1", "$2": "2", "$3": "3", "$b": "4"}, "ellipsis-middle"),
    ("[a, ..., b]", "1 2", {"$a": "1", "$b": "2"}, "ellipsis-covers-nothing"),
    ("[a, ..., b]", "1", None, "ellipsis-too-few"),
    ("[..., a]", "x y z", {"$1": "x", "$2": "y", "$a": "z"}, "ellipsis-first"),
    ("[a, ...]", "x y z", {"$a": "x", "$2": "y", "$3": "z"}, "ellipsis-last-no-absorb"),
    ("[..., a, b]", "1 2 3", {"$1": "1", "$a": "2", "$b": "3"}, "ellipsis-two-after"),
    ("[..., a]", '1 "2 3"', {"$1": "1", "$a": "2 3"}, "ellipsis-last-field-unquoted"),
    ("[..., a]", "1", {"$a": "1"}, "ellipsis-exactly-after"),
    ("[, b]", "x y", {"$1": "x", "$b": "y"}, "empty-first-slot"),
    ("[a, , c]", "1 2 3", {"$a": "1", "$2": "2", "$c": "3"}, "empty-middle-slot"),
    ("[a, ]", "x y z", {"$a": "x", "$2": "y z"}, "empty-last-slot-absorbs"),
    ("[ , ]", "p q", {"$1": "p", "$2": "q"}, "two-empty-slots"),
    ("[a, A]", "x y", {"$a": "x", "$A": "y"}, "case-sensitive-names"),
    ("[w1=SPACE, w2, w3]", "SPACE x y", {"$w1": "SPACE", "$w2": "x", "$w3": "y"}, "w1-SPACE-accepted"),
    (
        "[..., request=*.html*, status_code=4*,]",
        APACHE,
        {
            "$1": "127.0.0.1",
            "$2": "-",
            "$3": "frank",
            "$4": "10/Oct/2000:13:25:15 -0700",
            "$request": "GET /index.html HTTP/1.0",
            "$status_code": "404",
            "$7": "1534",
        },
        "apache-doc-example",
    ),
    ("[..., request=*.html*, status_code=4*,]", APACHE_200, None, "apache-200"),
    (
        "[ip, id, user, timestamp, request, status_code, size]",
        APACHE,
        {
            "$ip": "127.0.0.1",
            "$id": "-",
            "$user": "frank",
            "$timestamp": "10/Oct/2000:13:25:15 -0700",
            "$request": "GET /index.html HTTP/1.0",
            "$status_code": "404",
            "$size": "1534",
        },
        "apache-all-named",
    ),
]


@rows(ALIGN)
def test_alignment_and_extracted_values(pattern, event, extracted):
    """§6.3 alignment (absorption by the last slot, ellipsis, field counts) and §6.5 names."""
    check(pattern, event, extracted)


# --------------------------------------------------------------------------- §6.4 conditions

CONDITIONS = [
    # relational: the field must be numeric
    ("[a, n > 100]", "x 150", True, "gt"),
    ("[a, n > 100]", "x 100", False, "gt-equal"),
    ("[a, n > 100]", "x 50", False, "gt-less"),
    ("[a, n > 100]", "x -", False, "gt-hyphen"),
    ("[a, n > 100]", "x abc", False, "gt-text"),
    ("[a, n > 100]", "x 1534 extra", False, "gt-absorbed-tail"),
    ("[a, n > 100]", "x 1.5e3", True, "gt-scientific-field"),
    ("[a, n > 100]", "x 100.5", True, "gt-decimal-field"),
    ("[a, n > 100]", 'x "150"', True, "gt-quoted-numeric-field"),
    ("[a, n > 100]", "x 150ms", False, "gt-number-with-suffix"),
    ("[a, n >= 0]", "x -", False, "ge-hyphen"),
    ("[a, n < 10]", "x -", False, "lt-hyphen"),
    ("[a, n < 10]", "x 9", True, "lt"),
    ("[a, n < 10]", "x -3", True, "lt-negative"),
    ("[a, n <= 10]", "x 10.0", True, "le-equal-decimal"),
    ("[a, n > 1e2]", "x 150", True, "gt-scientific-literal"),
    # = / != with a number literal
    ("[a, n = 404]", "x 404", True, "eq-number"),
    ("[a, n = 404]", "x 404.0", True, "eq-number-numeric-field"),
    ("[a, n = 404]", "x 4.04e2", True, "eq-number-scientific-field"),
    ("[a, n = 404]", "x 405", False, "eq-number-other"),
    ("[a, n = 404]", "x abc", False, "eq-number-text-field"),
    ("[a, n = 1e2]", "x 100", True, "eq-scientific-literal"),
    ("[a, n = 1e2]", "x 1e2", True, "eq-scientific-literal-same-text"),
    ("[a, n != 404]", "x 405", True, "ne-number"),
    ("[a, n != 404]", "x 404", False, "ne-number-equal"),
    ("[a, n != 404]", "x 404.0", False, "ne-number-numeric-equal"),
    ("[a, n != 404]", "x abc", True, "ne-number-text-field"),
    # = / != with a string literal, wildcards
    ("[a, s = 4*]", "x 404", True, "eq-prefix"),
    ("[a, s = 4*]", "x 200", False, "eq-prefix-no"),
    ("[a, s != 4*]", "x 200", True, "ne-prefix"),
    ("[a, s != 4*]", "x 404", False, "ne-prefix-no"),
    ("[a, s != x]", "1 y", True, "ne-plain"),
    ("[a, s != x]", "1 x", False, "ne-plain-equal"),
    ("[a, s = ERROR]", "x error", False, "eq-case-sensitive"),
    ('[a, s = "a b"]', 'x "a b"', True, "eq-quoted-field"),
    ("[a, s = *.html*]", "x /index.html?x=1", True, "eq-contains"),
    ("[a, s = *]", "x y", True, "eq-star"),
    ("[a, s = a*b]", "x a*b", True, "eq-middle-star-literal"),
    ("[a, s = a*b]", "x axb", False, "eq-middle-star-not-wildcard"),
    ("[a, s = a?c]", "x a?c", True, "eq-question-literal"),
    ("[a, s = a?c]", "x abc", False, "eq-question-not-wildcard"),
    ("[a, s = -]", "x -", True, "eq-hyphen"),
    ('[a, s = "-"]', "x -", True, "eq-quoted-hyphen"),
    ("[a, s = true]", "x true", True, "eq-true-string"),
    ('[a = "x,y", b]', "x,y z", True, "quoted-comma-value"),
    ("[kind = \"SPACE\", value, bucket]", "SPACE 1 b", True, "quoted-SPACE"),
    # && and || inside a slot, && first
    ("[a = 1 || a = 2, b]", "2 y", True, "or"),
    ("[a = 1 || a = 2, b]", "3 y", False, "or-none"),
    ("[a > 1 && a < 5, b]", "3 y", True, "and"),
    ("[a > 1 && a < 5, b]", "7 y", False, "and-one-false"),
    ("[a = x || a = y && a = z]", "x", True, "precedence-left"),
    ("[a = x || a = y && a = z]", "y", False, "precedence-right-and"),
    ("[a = y && a = * || a = x]", "x", True, "precedence-and-first"),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[:3] for c in CONDITIONS], ids=[c[3] for c in CONDITIONS]
)
def test_field_conditions(pattern, event, expected):
    """§6.4: numeric vs text comparisons, wildcards, `!=` negation; §6.1 `&&` before `||`."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.matches(event) is expected
    extracted = compiled.extract(event)
    assert (extracted is not None) is expected


def test_extracted_values_are_strings_through_test_metric_filter():
    """§6.5/§7: one entry per field, string values, `$name` and `$N`."""
    result = castlewatch.test_metric_filter("[a, , n > 1]", ["x y 2", "x y 0", "x 1.5 3.25"])
    assert result == {
        "matches": [
            {"eventNumber": 1, "eventMessage": "x y 2", "extractedValues": {"$a": "x", "$2": "y", "$n": "2"}},
            {
                "eventNumber": 3,
                "eventMessage": "x 1.5 3.25",
                "extractedValues": {"$a": "x", "$2": "1.5", "$n": "3.25"},
            },
        ]
    }


@pytest.mark.parametrize(
    "event, fields",
    [
        ("a\x1cb c", ["a\x1cb", "c"]),  # information separators are not whitespace here (§6.2)
        ("a\u2000b c", ["a\u2000b", "c"]),  # nor is Unicode whitespace
        ("a\x0bb\x0cc\rd", ["a", "b", "c", "d"]),  # VT, FF, CR are (adopted)
        ("caf\u00e9  x", ["caf\u00e9", "x"]),
    ],
)
def test_split_fast_path_agrees_with_the_separator_rule(event, fields):
    """§6.2: the str.split() fast path must split exactly on spaces, tabs, CR, LF, FF, VT."""
    assert castlewatch.test_metric_filter("[]", [event])["matches"][0]["extractedValues"] == {
        f"${i}": v for i, v in enumerate(fields, 1)
    }


@pytest.mark.parametrize(
    "pattern, text",
    [("[a, b = x]y]", "x]y"), ("[a = x]]", "x]"), ("[a = x], b]", "x]")],
)
def test_bracket_inside_a_bare_value_is_an_invalid_character(pattern, text):
    """§6.1: slots are split on commas between the pattern's ``[`` and its closing ``]``,
    and values are as in §5.3, where a bare value holding ``]`` is rejected by name."""
    assert rejected(pattern).args[0] == f"Invalid character(s) in term '{text}'"
    assert castlewatch.compile_pattern("[a = x ]").matches("x")


@pytest.mark.parametrize(
    "pattern, event, expected",
    [
        ("[v = 9007199254740993]", "9007199254740993.0", True),
        ("[v >= 9007199254740993]", "9007199254740993.0", True),
        ("[v = 9007199254740993.0]", "9007199254740993", True),
        ("[v = 9007199254740993.0]", "9007199254740992", False),
        ("[v = 99999999999999999999]", "99999999999999999999.0", True),
        ("[v < 1e400]", "1e399", True),
        ("[v = 1e400]", "1e401", False),
        ("[v = 1]", "1.0", True),
    ],
)
def test_numeric_comparisons_are_exact_beyond_2_53(pattern, event, expected):
    """§6.4: ``=`` with a number is numeric equality and relational operators compare
    numbers; a whole-number literal and a decimal-written field compare by value, also
    where a float would round them."""
    assert castlewatch.compile_pattern(pattern).matches(event) is expected


# --------------------------------------------------------------------------- §6.1 parentheses [field]

DEPLOYED_OR = '[(w1="*ERROR*" || w1="*Error*") && w1!="*skip*"]'
DEPLOYED_AND = '[(w1="*ERROR*" && w1!="*UNAUTHORIZED*") || w1="*Task timed out*"]'

GROUPED = [
    # [field]: the deployed idiom "contains A or B but not C", one slot = the whole message
    (DEPLOYED_OR, "2024-01-09 ERROR request failed", {"$w1": "2024-01-09 ERROR request failed"}, "or-then-not"),
    (DEPLOYED_OR, "an Error here", {"$w1": "an Error here"}, "or-second-branch"),
    (DEPLOYED_OR, "ERROR skip this", None, "or-then-not-excluded"),
    (DEPLOYED_OR, "all fine", None, "or-neither"),
    (DEPLOYED_AND, "ERROR in handler", {"$w1": "ERROR in handler"}, "and-then-or"),
    (DEPLOYED_AND, "ERROR UNAUTHORIZED call", None, "and-then-or-excluded"),
    (DEPLOYED_AND, "ERROR UNAUTHORIZED Task timed out", {"$w1": "ERROR UNAUTHORIZED Task timed out"}, "or-rescues"),
    (DEPLOYED_AND, "Task timed out after 3.00 seconds", {"$w1": "Task timed out after 3.00 seconds"}, "or-branch"),
    ('[(w="*Error warming up cache*")]', "x Error warming up cache: y", {"$w": "x Error warming up cache: y"}, "one"),
    ('[(w="*Error warming up cache*")]', "Error warming cache", None, "one-no"),
    ('[(w1="*fatal*" )]', "a fatal error", {"$w1": "a fatal error"}, "space-before-close"),
    ('[ ( w1 = "*fatal*" ) ]', "fatal", {"$w1": "fatal"}, "spaces-everywhere"),
    ('[((w1="*a*"))]', "xay", {"$w1": "xay"}, "double-parentheses"),
    # grouping overrides && binding tighter
    ("[a = x || a = y && a = z]", "y", None, "ungrouped-and-first"),
    ("[(a = x || a = y) && a = *]", "y", {"$a": "y"}, "grouped-or-first"),
    ("[(a = x || a = y) && a != y]", "y", None, "grouped-or-then-ne"),
    ("[a = x || (a = y && a != y)]", "y", None, "grouped-and-right"),
    ("[(a > 1 && a < 5) || (a > 10 && a < 20)]", "15", {"$a": "15"}, "two-ranges"),
    ("[(a > 1 && a < 5) || (a > 10 && a < 20)]", "7", None, "two-ranges-between"),
    # several slots, the parenthesised one among others; the last one absorbs the rest
    ("[ip, (status = 4* || status = 5*) && status != 404, size]", "1.2.3.4 503 12",
     {"$ip": "1.2.3.4", "$status": "503", "$size": "12"}, "multi-slot"),
    ("[ip, (status = 4* || status = 5*) && status != 404, size]", "1.2.3.4 404 12", None, "multi-slot-excluded"),
    ("[ip, (status = 4* || status = 5*) && status != 404, size]", "1.2.3.4 200 12", None, "multi-slot-neither"),
    ("[..., (s = 4* || s = 5*), b]", "a b c 503 12", {"$1": "a", "$2": "b", "$3": "c", "$s": "503", "$b": "12"},
     "ellipsis-before"),
    ("[(a = x || a = y), ...]", "y 1 2", {"$a": "y", "$2": "1", "$3": "2"}, "ellipsis-after"),
    ("[a, (b = \"*z*\" || b = q)]", "1 x z", {"$a": "1", "$b": "x z"}, "absorbed-tail"),
]


@rows(GROUPED)
def test_parentheses_group_a_slots_conditions(pattern, event, extracted):
    """§6.1: conditions "grouped with parentheses as in JSON patterns" [field], `&&`
    binding tighter [adopted]; whitespace anywhere between tokens, before `)` too."""
    check(pattern, event, extracted)


@pytest.mark.parametrize(
    "pattern",
    ["[(a = 1 || b = 2)]", "[(a = 1) && (b = 2)]", "[x, (a = 1 || a = 2) && b != 3]", "[((a = 1) || (c = 2))]"],
    ids=["or-in-group", "and-of-groups", "and-after-group", "nested"],
)
def test_grouped_condition_naming_another_field_is_rejected(pattern):
    """§6.1: every condition, grouped or not, must name the slot's own field."""
    assert rejected(pattern).message == INVALID


@pytest.mark.parametrize(
    "pattern",
    ["[(a = 1]", "[a = 1)]", "[((a = 1)]", "[()]", "[(a)]", "[(...)]", "[a, (b)]", "[(a = 1) b]", "[(a = 1),(]"],
    ids=["unclosed", "unopened", "unbalanced", "empty", "name-only", "ellipsis", "name-only-second", "trailing-word",
         "dangling-open"],
)
def test_malformed_parentheses_are_rejected(pattern):
    """§6.1: parentheses group conditions only, balanced (message "Invalid metric filter pattern")."""
    assert rejected(pattern).message == INVALID


@pytest.mark.parametrize("pattern", ["[a = (x)]", "[a = x(y]", "[(a = x)y)]", "[a = (x || a = y)]"])
def test_bare_value_cannot_hold_parentheses(pattern):
    """§6.1: "A bare value cannot hold `(` or `)`: quote it"."""
    rejected(pattern)
    assert castlewatch.compile_pattern('[a = "(x)"]').matches("(x)")


@pytest.mark.parametrize(
    "pattern, requirement",
    [
        (DEPLOYED_OR, ("any", ["ERROR", "Error"])),
        (DEPLOYED_AND, ("any", ["ERROR", "Task timed out"])),
        ('[(w="*Error warming up cache*")]', "Error warming up cache"),
        ('[(w != "*a*")]', None),
        ('[(w = "*a*" || w != "*b*")]', None),
        ('[(w = "*a*" || w > 5) && w = "*c*"]', "c"),
        ('[(w = "*a*" && w = "*b*") || (w = "*a*" && w = "*c*")]', ("any", [("all", ["a", "b"]), ("all", ["a", "c"])])),
        ('[x, (w = "*a*" || w = "*b*"), y = "*c*"]', ("all", [("any", ["a", "b"]), "c"])),
    ],
    ids=["deployed-or", "deployed-and", "one", "ne", "or-with-ne", "or-with-number", "or-of-ands", "slots"],
)
def test_prefilter_requirement_under_grouping(pattern, requirement):
    """A pattern's literal requirement is a necessary condition: `!=` needs no literal,
    an `||` with a branch that needs none needs nothing (§6.1 grouping, §6.4)."""
    assert castlewatch.compile_pattern(pattern).requirement == requirement


# ---- hostile lines: unclosed '[' (§6.2) ------------------------------------------------------------


def test_a_line_of_unclosed_brackets_is_split_in_linear_time(literal_backend):
    # Each '[' with no ']' after it is a literal field.  A regex that looks for the ']' of
    # every '[' would rescan the rest of the line each time: a 1 MB line of '[ ' took about an
    # hour.  This line must split at once (the suite would hang otherwise).
    line = "1700000000 ERROR " + "[ " * 500_000
    got = castlewatch.test_metric_filter("[t, level=ERROR, rest]", [line])
    assert got["matches"][0]["extractedValues"] == {
        "$t": "1700000000",
        "$level": "ERROR",
        "$rest": ("[ " * 500_000).strip(),
    }
    assert castlewatch.compile_pattern("[t, level, a, b]").extract("x y [ [ z") == {
        "$t": "x", "$level": "y", "$a": "[", "$b": "[ z"
    }


@given(st.text(alphabet='"[] \tab', max_size=16))
def test_the_linear_split_is_the_regex_split(text):
    from castlewatch.grammar.compiler import _FIELD, _field_spans

    expected = [(m.span(), next(g for g in m.groups() if g is not None)) for m in _FIELD.finditer(text)]
    got = [((start, end), text[start + skip : end - skip]) for start, end, skip in _field_spans(text)]
    assert got == expected
