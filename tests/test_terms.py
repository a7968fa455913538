"""Pattern kinds (spec §2), term patterns (spec §3) and the TestMetricFilter response (§7).

Every test names the rule of ``docs/filter-patterns.md`` it pins.
"""

from __future__ import annotations

import pytest

import castlewatch

# every test here runs on both matcher backends (castlewatch.grammar.literals)
pytestmark = pytest.mark.usefixtures("literal_backend")


def matches(pattern: str, event: str) -> bool:
    return castlewatch.compile_pattern(pattern).matches(event)


def rejected(pattern: str) -> castlewatch.FilterPatternError:
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.compile_pattern(pattern)
    return info.value


# --------------------------------------------------------------------------- §2 kinds

KINDS = [
    ("", "all"),
    (" ", "all"),
    (" \t\n ", "all"),
    ("ERROR", "terms"),
    ("  ERROR  ", "terms"),
    ("?ERROR ?WARN", "terms"),
    ("-DEBUG", "terms"),
    ('"x y"', "terms"),
    ('" "', "terms"),
    ("{ $.a = 1 }", "json"),
    ("  { $.a = 1 }  ", "json"),
    ("{$.a=1}", "json"),
    ("[a, b]", "space_delimited"),
    ("  [a]  ", "space_delimited"),
    ("[]", "space_delimited"),
    ("[...]", "space_delimited"),
    ("%ERROR%", "regex"),
    ("  %ERROR|WARN%  ", "regex"),
]


@pytest.mark.parametrize(("pattern", "kind"), KINDS, ids=[repr(p) for p, _ in KINDS])
def test_kind_is_chosen_by_first_character_after_trimming(pattern, kind):
    """§2: trim, then the first character picks the kind; empty is match-all."""
    assert castlewatch.compile_pattern(pattern).kind == kind


@pytest.mark.parametrize("pattern", ["", " ", "   \t  "], ids=["empty", "space", "blanks"])
@pytest.mark.parametrize(
    "event", ["anything", "x", " ", "ERROR\nline two", '{"a": 1}'], ids=["word", "char", "space", "newline", "json"]
)
def test_match_all_matches_every_event_with_empty_extracted_values(pattern, event):
    """§2: an empty (after trimming) pattern matches every event, extractedValues {}."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.matches(event) is True
    assert compiled.extract(event) == {}


def test_match_all_through_test_metric_filter():
    """§2/§7: match-all lists every event with extractedValues {}."""
    result = castlewatch.test_metric_filter("", ["a", "b c"])
    assert result == {
        "matches": [
            {"eventNumber": 1, "eventMessage": "a", "extractedValues": {}},
            {"eventNumber": 2, "eventMessage": "b c", "extractedValues": {}},
        ]
    }


def test_single_space_is_match_all_but_quoted_space_is_a_phrase():
    """§2: "a pattern that is a single space is match-all, but `" "` is a term pattern"."""
    assert castlewatch.compile_pattern(" ").matches("nospace") is True
    assert castlewatch.compile_pattern('" "').matches("nospace") is False


@pytest.mark.parametrize(
    "pattern",
    ["{ $.a = 1", "{ $.a = 1 } trailing", "{", "  { $.a = 1 ) "],
    ids=["no-close", "text-after-close", "lone-brace", "paren-instead"],
)
def test_json_pattern_must_end_with_brace(pattern):
    """§2: a pattern starting with `{` must end with `}`, with the stated message."""
    assert rejected(pattern).message == "If a filter pattern starts with '{' it must end with '}'"


@pytest.mark.parametrize("pattern", ["[a, b", "[a] x", "["], ids=["no-close", "text-after", "lone-bracket"])
def test_space_delimited_pattern_must_end_with_bracket(pattern):
    """§2: a pattern starting with `[` must end with `]` (no message given: type only)."""
    rejected(pattern)


@pytest.mark.parametrize("pattern", ["%abc", "%a% b", "%a% %b%", "%"], ids=["unclosed", "text-after", "two", "lone"])
def test_regex_pattern_must_be_one_percent_pair(pattern):
    """§2: starting with `%`, the whole trimmed text is one `%…%` (message unspecified)."""
    rejected(pattern)


# --------------------------------------------------------------------------- §3.1 lexing

INVALID_CHARACTER = [
    ("ERR*", "*"),
    ("ERR*OR", "*OR"),
    ("ERROR *foo bar", "*foo"),
    ("ERROR a.b:c", ":c"),
    ("notification.id/x", "/x"),
    ("a.b@c d", "@c"),
    ("a.*", "*"),
    ("a:b", ":b"),
    ("http://x", "://x"),
    ("user@host y", "@host"),
    ("ERROR %abc%", "%abc%"),
    ("caf\u00e9", "\u00e9"),
    ("ERROR!", "!"),
    ("(ERROR)", "(ERROR)"),
    ("a\tb.c:d\te", ":d"),
    ("a [b]", "[b]"),
]


@pytest.mark.parametrize(("pattern", "term"), INVALID_CHARACTER, ids=[p for p, _ in INVALID_CHARACTER])
def test_invalid_character_message_quotes_text_to_next_whitespace(pattern, term):
    """§3.1: "Invalid character(s) in term '<text from that character to the next whitespace>'"."""
    assert rejected(pattern).message == f"Invalid character(s) in term '{term}'"


UNTERMINATED = [
    ('ERROR "abc def', '"abc def'),
    ('"abc', '"abc'),
    ('x "a\\"b', '"a\\"b'),
    ('ab"cd', '"cd'),
]


@pytest.mark.parametrize(("pattern", "term"), UNTERMINATED, ids=[p for p, _ in UNTERMINATED])
def test_unterminated_quote_message_quotes_text_to_end(pattern, term):
    """§3.1: an unterminated quote gives "Invalid character(s) in term '<quote to the end>'"."""
    assert rejected(pattern).message == f"Invalid character(s) in term '{term}'"


@pytest.mark.parametrize("pattern", ['""', 'ERROR ""'], ids=["alone", "after-term"])
def test_empty_phrase_is_rejected(pattern):
    """§3.1: `""` is rejected (no message given: type only)."""
    rejected(pattern)


@pytest.mark.parametrize("pattern", ["-", "?", "ERROR -", "ERROR ?", "--a", "?-a", "-?a"])
def test_prefix_without_term_is_rejected(pattern):
    """§3.1: a prefix with no term after it is rejected [adopted; type only]."""
    rejected(pattern)


# --------------------------------------------------------------------------- §3.2 semantics

SEMANTICS = [
    # bare terms are case-sensitive substrings, inside words too
    ("ERROR", "TERROR REQUEST", True, "bare-inside-word"),
    ("ERROR", "ERROR_ARGUMENTS", True, "bare-before-underscore"),
    ("ERROR", "error", False, "case-lower"),
    ("ERROR", "Error", False, "case-mixed"),
    ("ERROR", "ERRO R", False, "split-word"),
    ("404", "status 404 sent", True, "digits"),
    ("ERROR_ARGS", "ERROR_ARGS!", True, "underscore-in-term"),
    # all plain items must occur, in any order
    ("ERROR ARGUMENTS", "[ERROR 419] MISSING ARGUMENTS", True, "and-both"),
    ("ERROR ARGUMENTS", "ERROR only", False, "and-one-missing"),
    ("ARGUMENTS ERROR", "ERROR x ARGUMENTS", True, "and-order-free"),
    ("ERROR\tWARN", "WARN ERROR", True, "tab-separates"),
    # phrases are one exact substring
    ('"INTERNAL SERVER ERROR"', "ERROR INTERNAL  SERVER ERROR", False, "phrase-two-spaces"),
    ('"INTERNAL SERVER ERROR"', "500 INTERNAL SERVER ERROR!", True, "phrase-exact"),
    ('"INTERNAL SERVER ERROR"', "internal server error", False, "phrase-case"),
    ('"ERROR" "Exception"', "ERROR: NullPointerException", True, "two-phrases"),
    ('"ERROR" "Exception"', "Exception then ERROR", True, "two-phrases-any-order"),
    ('"ERROR" "Exception"', "ERROR only", False, "two-phrases-one-missing"),
    ('"Error"', "ERROR", False, "phrase-case-sensitive"),
    ('"h\u00e9llo w\u00f6rld"', "say h\u00e9llo w\u00f6rld", True, "phrase-non-ascii"),
    ('"a.b:c/d@e*"', "x a.b:c/d@e* y", True, "phrase-any-characters"),
    # newlines are part of the message
    ("ERROR", "line one\nERROR two", True, "newline-second-line"),
    ("one two", "one\ntwo", True, "terms-across-lines"),
    ('"one\ntwo"', "one\ntwo", True, "phrase-with-newline"),
    ('"one\ntwo"', "one two", False, "phrase-newline-not-space"),
    ("ERROR -DEBUG", "ERROR\nDEBUG", False, "exclusion-on-other-line"),
    # exclusions
    ("-DEBUG", "INFO", True, "exclusion-only-absent"),
    ("-DEBUG", "DEBUG", False, "exclusion-only-present"),
    ("-DEBUG", "xDEBUGx", False, "exclusion-substring"),
    ("ERROR -DEBUG", "ERROR", True, "required-and-excluded-ok"),
    ("ERROR -DEBUG", "ERROR DEBUG", False, "required-and-excluded-both"),
    ("ERROR -DEBUG", "INFO", False, "required-missing"),
    # optional items are ignored when plain or excluded items exist
    ("?ERROR ?ARGUMENTS -REQUEST", "hello", True, "optional-ignored-no-request"),
    ("?ERROR ?ARGUMENTS -REQUEST", "ERROR", True, "optional-ignored-error"),
    ("?ERROR ?ARGUMENTS -REQUEST", "BAD REQUEST", False, "optional-ignored-request"),
    ("?ERROR ?ARGUMENTS -REQUEST", "ERROR REQUEST", False, "optional-ignored-both"),
    ("ERROR ?WARN", "WARN", False, "optional-with-required-missing"),
    ("ERROR ?WARN", "ERROR", True, "optional-with-required-present"),
    ("?ERROR -WARN", "INFO", True, "optional-with-exclusion-only"),
    ("?ERROR -WARN", "ERROR WARN", False, "optional-with-exclusion-present"),
    # only optional items: any one
    ("?ERROR ?WARN", "a WARN here", True, "any-optional-second"),
    ("?ERROR ?WARN", "ERROR", True, "any-optional-first"),
    ("?ERROR ?WARN", "INFO", False, "any-optional-none"),
    ('?"a b" ?c', "a b", True, "optional-phrase"),
    ('?"a b" ?c', "xcx", True, "optional-bare"),
    ('?"a b" ?c', "a  b", False, "optional-none"),
    # " " is an ordinary phrase
    ('" "', "a b", True, "space-phrase-space"),
    ('" "', "ab", False, "space-phrase-none"),
    ('" "', "a\tb", False, "space-phrase-tab"),
    # whitespace is optional between items; hyphens start exclusions
    ('ERROR"bad thing"', "ERROR: bad thing", True, "term-then-phrase"),
    ('ERROR"bad thing"', "ERROR: bad", False, "term-then-phrase-missing"),
    ('"a""b"', "b a", True, "adjacent-phrases"),
    ('"a""b"', "a", False, "adjacent-phrases-missing"),
    ("ERROR-DEBUG", "ERROR", True, "hyphen-excludes"),
    ("ERROR-DEBUG", "ERROR DEBUG", False, "hyphen-excludes-present"),
    ("ERROR?WARN", "ERROR", True, "question-optional-ignored"),
    ("ERROR?WARN", "WARN", False, "question-optional-required-missing"),
    ("ORDER-ITEM-1", "ORDER-ITEM-1", False, "ORDER-ITEM-1-itself"),
    ("ORDER-ITEM-1", "ORDER-ITEM-2", False, "ORDER-ITEM-1-item"),
    ("ORDER-ITEM-1", "ORDER 2", True, "ORDER-ITEM-1-order-only"),
    ("ORDER-ITEM-1", "ORDER x1", False, "ORDER-ITEM-1-has-1"),
    ('"ORDER-ITEM-1"', "ORDER-ITEM-1", True, "quoted-hyphenated"),
    ('"ORDER-ITEM-1"', "ORDER ITEM 1", False, "quoted-hyphenated-spaces"),
    # escapes in phrases
    ('"a\\"b"', 'say a"b', True, "escaped-quote"),
    ('"a\\\\b"', "a\\b", True, "escaped-backslash"),
    ('"a\\\\b"', "a\\\\b", False, "escaped-backslash-is-one"),
    ('"a\\nb"', "a\\nb", True, "other-escape-kept"),
    ('"a\\nb"', "a\nb", False, "other-escape-not-newline"),
    ('"a\\\\"', "xa\\", True, "trailing-escaped-backslash"),
    ('"\\d"', "x\\dy", True, "backslash-letter-kept"),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[:3] for c in SEMANTICS], ids=[c[3] for c in SEMANTICS]
)
def test_term_semantics(pattern, event, expected):
    """§3.1 lexing and §3.2 semantics: substring tests, R/X/O rule, phrases, escapes."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "terms"
    assert compiled.matches(event) is expected


@pytest.mark.parametrize(
    ("pattern", "event"),
    [("ERROR", "an ERROR"), ('"a b"', "a b"), ("-DEBUG", "INFO"), ("?x ?y", "y")],
    ids=["bare", "phrase", "exclusion", "optional"],
)
def test_term_match_extracts_empty_dict(pattern, event):
    """§3.2: extractedValues is always {} for term patterns."""
    assert castlewatch.compile_pattern(pattern).extract(event) == {}


def test_term_non_match_extracts_none():
    """Public API: extract() is None when the event does not match (§3.2 non-match)."""
    assert castlewatch.compile_pattern("ERROR").extract("error") is None


# --------------------------------------------------------------------------- §3.1 dotted terms

DOTTED = [
    # [field]: deployed patterns, accepted by PutMetricFilter
    ("Malware scan timed out for notification.id", "Malware scan timed out for notification.id 42", True, "deployed"),
    ("Malware scan timed out for notification.id", "Malware scan timed out for notification id", False, "no-dot"),
    ("?notification.canada.ca SERVFAIL", "SERVFAIL notification.canada.ca", True, "deployed-optional"),
    ("?notification.canada.ca SERVFAIL", "SERVFAIL", True, "optional-ignored-with-required"),
    ("?notification.canada.ca ?SERVFAIL", "lookup notification.canada.ca", True, "only-optional"),
    ("?notification.canada.ca ?SERVFAIL", "notification canada ca", False, "only-optional-no-dots"),
    # [adopted]: one substring, dots included, case-sensitive, inside words too
    ("notification.id", "xnotification.idx", True, "inside-word"),
    ("notification.id", "id notification", False, "parts-not-enough"),
    ("notification.id", "notificationXid", False, "dot-is-literal"),
    ("notification.id", "Notification.id", False, "case-sensitive"),
    ("a.b -a.b.c", "a.b", True, "dotted-exclusion-absent"),
    ("a.b -a.b.c", "a.b.c", False, "dotted-exclusion-present"),
    ("v1.2", "version v1.2.3", True, "digits-and-dots"),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), [c[:3] for c in DOTTED], ids=[c[3] for c in DOTTED])
def test_dotted_bare_term_is_one_substring(pattern, event, expected):
    """§3.1: `.` is a bare-term character [field]; a dotted term is one substring [adopted]."""
    compiled = castlewatch.compile_pattern(pattern)
    assert compiled.kind == "terms"
    assert compiled.matches(event) is expected
    assert compiled.extract(event) == ({} if expected else None)


def test_dotted_term_is_one_term_in_the_tree():
    """§3.1: the longest run of letters, digits, `_` and `.` is one bare term."""
    tree = castlewatch.compile_pattern("?notification.canada.ca SERVFAIL").tree
    assert [(t.text, t.role) for t in tree.terms] == [("notification.canada.ca", "optional"), ("SERVFAIL", "required")]


@pytest.mark.parametrize(
    ("pattern", "term", "column"),
    [("a.b:c", ":c", 4), ("notification.id/x y", "/x", 16), ("a.b@c", "@c", 4), ("x.y*", "*", 4), ("x. *y", "*y", 4)],
)
def test_other_characters_after_a_dotted_term_stay_refused(pattern, term, column):
    """§3.1: `:`, `/`, `@`, `*` still start neither form; the message quotes the text from
    that character to the next whitespace, with the caret on it."""
    error = rejected(pattern)
    assert error.message == f"Invalid character(s) in term '{term}'"
    assert error.column == column


# --------------------------------------------------------------------------- §7 response


def test_metric_filter_response_lists_only_matches_with_one_based_numbers():
    """§7: only matching events, input order, 1-based eventNumber, message verbatim."""
    events = ["INFO ok", "an ERROR", "ERROR\twith tab ", "nothing", " ERROR "]
    result = castlewatch.test_metric_filter("ERROR", events)
    assert result == {
        "matches": [
            {"eventNumber": 2, "eventMessage": "an ERROR", "extractedValues": {}},
            {"eventNumber": 3, "eventMessage": "ERROR\twith tab ", "extractedValues": {}},
            {"eventNumber": 5, "eventMessage": " ERROR ", "extractedValues": {}},
        ]
    }


def test_metric_filter_response_with_no_match_is_empty_list():
    """§7: the response lists only matching events."""
    assert castlewatch.test_metric_filter("ERROR", ["INFO", "WARN"]) == {"matches": []}


def test_metric_filter_response_carries_extracted_values():
    """§7: extractedValues follows §6 for space-delimited patterns (values are strings)."""
    result = castlewatch.test_metric_filter("[a, b]", ["x 1", "y"])
    assert result == {
        "matches": [{"eventNumber": 1, "eventMessage": "x 1", "extractedValues": {"$a": "x", "$b": "1"}}]
    }


def test_metric_filter_rejects_bad_pattern_with_filter_pattern_error():
    """§7: InvalidParameterException for bad patterns."""
    with pytest.raises(castlewatch.FilterPatternError) as info:
        castlewatch.test_metric_filter("ERR*", ["ERR*"])
    assert info.value.message == "Invalid character(s) in term '*'"
    assert info.value.code == "InvalidParameterException"
