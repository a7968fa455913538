"""Regular expressions through the public API (spec §4, quota of §1).

Whole-pattern regexes, regexes as JSON values (§5.3) and as space-delimited field values
(§6.1).  The regex translator itself is tested elsewhere; these tests only look at what
compile_pattern / matches / extract report.
"""

from __future__ import annotations

import json

import pytest

import castlewatch

# every test here runs on both matcher backends (castlewatch.grammar.literals)
pytestmark = pytest.mark.usefixtures("literal_backend")

TOO_MANY_REGEX = "Your input has exceeded the maximum of 2 regular expressions per filter pattern."
COMPILE_FAILED = "Failed to compile regular expression."


def rejected(pattern: str) -> castlewatch.FilterPatternError:
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.compile_pattern(pattern)
    return info.value


# --------------------------------------------------------------------------- whole pattern

WHOLE = [
    # search, not full match; case-sensitive
    (r"%ERROR|WARN%", "xERROR 500", True, "search-alternation"),
    (r"%ERROR|WARN%", "a WARN", True, "second-branch"),
    (r"%ERROR|WARN%", "error warn", False, "case-sensitive"),
    (r"%ERR%", "xxERRxx", True, "substring"),
    # literals: letters, digits, space and : _ # = @ / ; , -
    (r"%a:b_c#d=e@f/g;h,i-j%", "<a:b_c#d=e@f/g;h,i-j>", True, "literal-punctuation"),
    (r"%ERROR 500%", "got ERROR 500", True, "literal-space"),
    (r"%ERROR 500%", "got ERROR  500", False, "literal-space-exact"),
    # anchors: start and very end of the searched text
    (r"%^ERROR%", "ERROR x", True, "caret-start"),
    (r"%^ERROR%", "x ERROR", False, "caret-not-start"),
    (r"%^ERROR%", "x\nERROR", False, "caret-not-line-start"),
    (r"%ERROR$%", "x ERROR", True, "dollar-end"),
    (r"%ERROR$%", "x ERROR\n", False, "dollar-not-before-final-newline"),
    (r"%ERROR$%", "ERROR\nx", False, "dollar-not-line-end"),
    # dot is any character, newline included
    (r"%a.b%", "a-b", True, "dot-any"),
    (r"%^a.b$%", "a\nb", True, "dot-newline"),
    (r"%a.b%", "ab", False, "dot-needs-one"),
    # quantifiers
    (r"%^a?b$%", "b", True, "optional-absent"),
    (r"%^a?b$%", "ab", True, "optional-present"),
    (r"%^a?b$%", "aab", False, "optional-at-most-one"),
    (r"%^ab*c$%", "ac", True, "star-zero"),
    (r"%^ab*c$%", "abbbc", True, "star-many"),
    (r"%^ab+c$%", "ac", False, "plus-zero"),
    (r"%^ab+c$%", "abbc", True, "plus-many"),
    (r"%^a{2}$%", "aa", True, "bound-exact"),
    (r"%^a{2}$%", "aaa", False, "bound-exact-more"),
    (r"%^a{2}$%", "a", False, "bound-exact-less"),
    (r"%^a{2,}$%", "aaaa", True, "bound-min"),
    (r"%^a{2,}$%", "a", False, "bound-min-less"),
    (r"%^a{,2}b$%", "b", True, "bound-max-zero"),
    (r"%^a{,2}b$%", "aab", True, "bound-max-two"),
    (r"%^a{,2}b$%", "aaab", False, "bound-max-three"),
    (r"%^a{1,3}$%", "aaa", True, "bound-range-top"),
    (r"%^a{1,3}$%", "aaaa", False, "bound-range-over"),
    (r"%^[0-9]{3}$%", "404", True, "class-bound"),
    # classes
    (r"%^[a-c]+$%", "abcab", True, "class-range"),
    (r"%^[a-c]+$%", "abd", False, "class-range-outside"),
    (r"%^[^a-c]+$%", "xyz", True, "class-negated"),
    (r"%^[^a-c]+$%", "xaz", False, "class-negated-inside"),
    # alternation has the lowest precedence and splits the whole regex
    (r"%^starting|^initializing%", "initializing server", True, "anchored-branches-second"),
    (r"%^starting|^initializing%", "starting x", True, "anchored-branches-first"),
    (r"%^starting|^initializing%", "server initializing", False, "anchored-branches-none"),
    (r"%^starting|initializing%", "server initializing", True, "second-branch-unanchored"),
    (r"%^ab|cd$%", "xx cd", True, "split-whole-regex-second"),
    (r"%^ab|cd$%", "ab xx", True, "split-whole-regex-first"),
    (r"%^ab|cd$%", "xabx", False, "split-whole-regex-none"),
    # ASCII escape classes
    (r"%\d%", "a1", True, "digit"),
    (r"%\d%", "\u0663", False, "digit-ascii-only"),
    (r"%^\D+$%", "abc", True, "non-digit"),
    (r"%^\D+$%", "ab1", False, "non-digit-with-digit"),
    (r"%\D%", "\u0663", True, "non-digit-non-ascii"),
    (r"%a\sb%", "a b", True, "space-class-space"),
    (r"%a\sb%", "a\tb", True, "space-class-tab"),
    (r"%a\sb%", "a\nb", True, "space-class-newline"),
    (r"%a\sb%", "ab", False, "space-class-none"),
    (r"%a\sb%", "a\u00a0b", False, "space-class-ascii-only"),
    (r"%^\S+$%", "abc", True, "non-space"),
    (r"%^\S+$%", "a b", False, "non-space-with-space"),
    (r"%^\w+$%", "a_Z9", True, "word"),
    (r"%\w%", "\u00e9", False, "word-ascii-only"),
    (r"%\W%", "\u00e9", True, "non-word-non-ascii"),
    (r"%\W%", "abc", False, "non-word-none"),
    # \xhh
    (r"%\x21%", "hello!", True, "hex-bang"),
    (r"%\x21%", "hello", False, "hex-bang-absent"),
    (r"%100\x25%", "100%", True, "hex-percent"),
    (r"%100\x25%", "100", False, "hex-percent-absent"),
    (r"%\x41%", "A", True, "hex-letter"),
    (r"%\x2a%", "*", True, "hex-lower-digits"),
    (r"%\x2A%", "*", True, "hex-upper-digits"),
    (r"%\x28ok\x29%", "(ok)", True, "hex-parens"),
    # backslash makes an operator or punctuation literal
    (r"%a\.b%", "a.b", True, "escaped-dot"),
    (r"%a\.b%", "axb", False, "escaped-dot-not-any"),
    (r"%a\+b%", "a+b", True, "escaped-plus"),
    (r"%a\+b%", "aab", False, "escaped-plus-not-quantifier"),
    (r"%\$5%", "cost $5", True, "escaped-dollar"),
    (r"%\[x\]%", "[x]", True, "escaped-brackets"),
    (r"%\[x\]%", "x", False, "escaped-brackets-not-class"),
    (r"%a\\b%", "a\\b", True, "escaped-backslash"),
    (r"%\{%", "{", True, "escaped-brace"),
    (r"%\|%", "a|b", True, "escaped-bar"),
    (r"%\|%", "ab", False, "escaped-bar-not-alternation"),
    (r"%\^%", "2^3", True, "escaped-caret"),
    (r"%\*%", "*", True, "escaped-star"),
    (r"%\?%", "?", True, "escaped-question"),
    (r"%\?%", "a", False, "escaped-question-not-optional"),
    (r"%\-%", "a-b", True, "escaped-hyphen"),
    (r"%\:%", "a:b", True, "escaped-colon"),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), [c[:3] for c in WHOLE], ids=[c[3] for c in WHOLE])
def test_whole_pattern_regex(pattern, event, expected):
    """§4: a whole-pattern regex is searched in the message with the stated meaning."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "regex"
    assert compiled.matches(event) is expected


def test_whole_pattern_regex_extracts_empty_dict():
    """§4: "A whole-pattern regex match has extractedValues {}"."""
    compiled = castlewatch.compile_pattern(r"%ERROR\s\d+%")
    assert compiled.extract("x ERROR 500") == {}
    assert compiled.extract("x ERROR") is None
    result = castlewatch.test_metric_filter(r"%ERROR\s\d+%", ["x ERROR 500"])
    assert result["matches"] == [{"eventNumber": 1, "eventMessage": "x ERROR 500", "extractedValues": {}}]


def test_whole_pattern_regex_is_trimmed():
    """§2: surrounding whitespace is trimmed before the `%…%` is read."""
    assert castlewatch.compile_pattern("  %ERR%\t").matches("ERR") is True


# --------------------------------------------------------------------------- rejections

INVALID_CHAR = [
    (r"%^(ERROR|WARN)%", "%^("),
    (r"%hello!%", "%hello!"),
    (r"%ab)%", "%ab)"),
    ('%a"b%', '%a"'),
    ("%it's%", "%it'"),
    (r"%a<b%", "%a<"),
    (r"%a>b%", "%a>"),
    (r"%a~b%", "%a~"),
    (r"%a&b%", "%a&"),
    ("%caf\u00e9%", "%caf\u00e9"),
    ("%a\tb%", "%a\t"),
]


@pytest.mark.parametrize(("pattern", "term"), INVALID_CHAR, ids=[repr(p) for p, _ in INVALID_CHAR])
def test_regex_invalid_character_message(pattern, term):
    """§4: other characters give "Invalid character(s) in term '%<text up to and including it>'"."""
    assert rejected(pattern).message == f"Invalid character(s) in term '{term}'"


COMPILE_ERRORS = [
    (r"%[abc%", "unclosed-class"),
    (r"%*a%", "dangling-star"),
    (r"%+a%", "dangling-plus"),
    (r"%?a%", "dangling-question"),
    (r"%a|*b%", "dangling-after-bar"),
    (r"%a\b%", "escape-b"),
    (r"%a\n%", "escape-n"),
    (r"%a\1%", "escape-backref"),
]


@pytest.mark.parametrize("pattern", [c[0] for c in COMPILE_ERRORS], ids=[c[1] for c in COMPILE_ERRORS])
def test_regex_that_does_not_compile(pattern):
    """§4: unclosed class [rec], dangling quantifiers and undocumented escapes [adopted]
    give "Failed to compile regular expression."."""
    assert rejected(pattern).message == COMPILE_FAILED


@pytest.mark.parametrize(
    "pattern", [r"%\x4%", r"%\xZZ%", r"%\x%", "%abc\\%"], ids=["hex-one-digit", "hex-not-hex", "hex-none", "trailing-backslash"]
)
def test_malformed_escapes_are_rejected(pattern):
    """§4: `\\xhh` needs exactly two hex digits (message unspecified: type only)."""
    rejected(pattern)


def test_empty_regex_is_rejected():
    """§4: an empty `%%` gives "Invalid metric filter pattern" [adopted, text given]."""
    assert rejected("%%").message == "Invalid metric filter pattern"


# --------------------------------------------------------------------------- JSON values

JSON_VALUES = [
    (r"{ $.msg = %ERR% }", {"msg": "xERRx"}, True, "eq-search"),
    (r"{ $.msg = %ERR% }", {"msg": "err"}, False, "eq-case"),
    (r"{ $.msg = %ERR% }", {"other": "ERR"}, False, "eq-missing"),
    (r"{ $.msg = %ERR% }", {"msg": None}, False, "eq-null"),
    (r"{ $.msg = %^ERR$% }", {"msg": "ERR"}, True, "anchors-on-value"),
    (r"{ $.msg = %^ERR$% }", {"msg": "xERR"}, False, "anchors-on-value-start"),
    (r"{ $.msg != %ERR% }", {"msg": "ok"}, True, "ne-no-match"),
    (r"{ $.msg != %ERR% }", {"msg": "an ERR"}, False, "ne-match"),
    (r"{ $.msg != %ERR% }", {}, False, "ne-missing"),
    (r"{ $.msg != %ERR% }", {"msg": None}, False, "ne-null"),
    (r"{ $.a = %a b% }", {"a": "xa by"}, True, "space-literal"),
    (r"{ $.a = %^\d{1,3}$% }", {"a": "123"}, True, "braces-inside-json"),
    (r"{ $.a = %^\d{1,3}$% }", {"a": "1234"}, False, "braces-inside-json-over"),
    (r"{ $.a = %ERR% && $.b = %WARN% }", {"a": "ERR", "b": "WARN"}, True, "two-regexes"),
]


@pytest.mark.parametrize(
    ("pattern", "doc", "expected"), [c[:3] for c in JSON_VALUES], ids=[c[3] for c in JSON_VALUES]
)
def test_regex_as_json_value(pattern, doc, expected):
    """§4/§5.4: a regex value is searched in the string value; `!=` needs a string or number."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "json"
    event = json.dumps(doc)
    assert compiled.matches(event) is expected
    assert compiled.extract(event) == ({} if expected else None)


@pytest.mark.parametrize(
    ("pattern", "event"),
    [(r"{ $.n = %^1\.50$% }", '{"n": 1.50}'), (r"{ $.n = %^4\d\d$% }", '{"n": 404}')],
    ids=["decimal-source-text", "integer-source-text"],
)
def test_regex_searches_json_numbers_through_source_text(pattern, event):
    """§5.4 table: "numbers are searched through their source text" [adopted, stated]."""
    assert castlewatch.compile_pattern(pattern).matches(event) is True


def test_regex_json_value_invalid_character():
    """§4: the invalid-character message for a regex value quotes from its `%`."""
    assert rejected(r"{ $.a = %a(b% }").message == "Invalid character(s) in term '%a('"


def test_regex_json_value_that_does_not_compile():
    """§4: "Failed to compile regular expression." applies to a JSON regex value too."""
    assert rejected(r"{ $.a = %[ab% }").message == COMPILE_FAILED


@pytest.mark.parametrize(
    "pattern", [r"{ $.a > %1% }", r"{ $.a <= %^1$% }"], ids=["gt", "le"]
)
def test_regex_json_value_only_with_equality(pattern):
    """§5.3: a regex value is allowed with `=` or `!=` only (message unspecified: type only)."""
    rejected(pattern)


# --------------------------------------------------------------------------- field values

FIELD_VALUES = [
    (r"[a, b = %^4\d\d$%]", "x 404", {"$a": "x", "$b": "404"}, "eq-match"),
    (r"[a, b = %^4\d\d$%]", "x 200", None, "eq-no-match"),
    (r"[a, b != %^4%]", "x 200", {"$a": "x", "$b": "200"}, "ne-match"),
    (r"[a, b != %^4%]", "x 404", None, "ne-no-match"),
    (r"[a = %^\d{1,3}$%, b]", "123 y", {"$a": "123", "$b": "y"}, "comma-inside-regex"),
    (r"[a = %^\d{1,3}$%, b]", "1234 y", None, "comma-inside-regex-over"),
    (r"[a, b = %fail%]", "ERROR request failed", {"$a": "ERROR", "$b": "request failed"}, "absorbed-tail"),
    (r"[a, b = %ERR%]", "x err", None, "case-sensitive"),
]


@pytest.mark.parametrize(
    ("pattern", "event", "extracted"), [c[:3] for c in FIELD_VALUES], ids=[c[3] for c in FIELD_VALUES]
)
def test_regex_as_space_delimited_value(pattern, event, extracted):
    """§4/§6.4: a regex field value is searched in the field's value; `!=` negates."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "space_delimited"
    assert compiled.matches(event) is (extracted is not None)
    assert compiled.extract(event) == extracted


# --------------------------------------------------------------------------- quota (§1)

@pytest.mark.parametrize(
    "pattern",
    [
        r"{ $.a = %x% && $.b = %y% && $.c = %z% }",
        r"{ ($.a = %x% || $.b != %y%) && $.c = %z% }",
        r"{ $.a = %x% || $.b = %y% || $.c = %z% || $.d = %w% }",
        r"[a = %x%, b = %y%, c = %z%]",
        r"[a = %x% || a = %y% || a = %z%, b]",
    ],
    ids=["json-three", "json-mixed-three", "json-four", "fields-three", "one-slot-three"],
)
def test_more_than_two_regexes_are_rejected(pattern):
    """§1: "Your input has exceeded the maximum of 2 regular expressions per filter pattern."."""
    assert rejected(pattern).message == TOO_MANY_REGEX


@pytest.mark.parametrize(
    "pattern",
    [r"{ $.a = %x% && $.b = %y% }", r"[a = %x%, b = %y%, c]", r"%x|y%"],
    ids=["json-two", "fields-two", "whole-one"],
)
def test_up_to_two_regexes_are_accepted(pattern):
    """§1: at most 2 regular expressions per pattern, so two are fine."""
    castlewatch.compile_pattern(pattern)
