"""Property tests: compile_pattern is total (compiles or raises FilterPatternError with a
column inside the pattern), and matches/extract/test_metric_filter agree (spec §2–§7).

HYPOTHESIS_EXAMPLES (default 300) sets max_examples.
"""

from __future__ import annotations

import json
import os
import string

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import castlewatch

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- pattern soup

PUNCTUATION = list('{}[]()$.*%"=!<>&|,?-') + ["\\", "'", "@", ":", "/", "#", "^", "+", ";", "_", "~", "`"]
KEYWORDS = ["IS", "NULL", "TRUE", "FALSE", "NOT", "EXISTS", "true", "null", "is", "not"]
PIECES = [
    "&&",
    "||",
    "$.",
    "$.a",
    "$.b[0]",
    "[*]",
    ".*",
    "...",
    "!=",
    "<=",
    ">=",
    "%a%",
    "%^\\d+$%",
    "\\x21",
    "\\d",
    "{1,3}",
    '"a b"',
    "['k.x']",
    "1e3",
    "-1.5",
    "404",
    "ERROR",
]
WHITESPACE = [" ", "  ", "\t", "\n", "\r"]
ODD = ["\u00e9", "\u00a0", "\U0001f600", "\x00", "\u2028"]

token = st.one_of(
    st.sampled_from(PUNCTUATION),
    st.sampled_from(KEYWORDS),
    st.sampled_from(PIECES),
    st.sampled_from(WHITESPACE),
    st.sampled_from(ODD),
    st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=4),
)
soup = st.lists(token, max_size=30).map("".join)
soup_in_braces = soup.map(lambda s: "{" + s + "}")
soup_in_brackets = soup.map(lambda s: "[" + s + "]")
soup_in_percents = soup.map(lambda s: "%" + s + "%")
any_text = st.text(max_size=120)

all_patterns = st.one_of(soup, soup_in_braces, soup_in_brackets, soup_in_percents, any_text)

# --------------------------------------------------------------------------- grammar-shaped patterns

word = st.sampled_from(["ERROR", "WARN", "a", "b", "x", "404", "ORDER_1", "err"])
term_item = st.one_of(word, word.map(lambda w: f'"{w} {w}"'), st.just('" "'))
term_pattern = st.lists(
    st.tuples(st.sampled_from(["", "", "?", "-"]), term_item), min_size=1, max_size=4
).map(lambda items: " ".join(p + t for p, t in items))

regex_body = st.lists(
    st.sampled_from(["a", "b", "E", "R", "\\d", "\\s", ".", "x", "[a-c]", "^", "$", "|", "*", "+", "?", "{1,2}", " "]),
    min_size=1,
    max_size=6,
).map("".join)
regex_value = regex_body.map(lambda b: f"%{b}%")

name = st.sampled_from(["a", "b", "c", "n", "x-y"])
segment = st.one_of(
    name.map(lambda n: "." + n),
    st.integers(0, 2).map(lambda i: f"[{i}]"),
    st.sampled_from(["[*]", ".*", ".['k.x']", "['a']", '["b"]']),
)
selector = st.lists(segment, min_size=1, max_size=3).map(lambda s: "$" + "".join(s))
literal = st.sampled_from(
    ["1", "1.0", "1e0", "-2", "0.5", "abc", "*", "a*", "*b", "*c*", "a*b", "true", '"1"', '"a b"', '"*"', "-"]
)
json_condition = st.one_of(
    st.builds(lambda s, o, v: f"{s} {o} {v}", selector, st.sampled_from(["=", "!="]), st.one_of(literal, regex_value)),
    st.builds(
        lambda s, o, v: f"{s} {o} {v}", selector, st.sampled_from(["<", ">", "<=", ">="]), st.sampled_from(["1", "0", "-1.5", "1e1"])
    ),
    st.builds(lambda s, k: f"{s} {k}", selector, st.sampled_from(["IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS"])),
)
json_expr = st.recursive(
    json_condition,
    lambda inner: st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["&&", "||"]), inner),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=4,
)
json_pattern = json_expr.map(lambda e: "{ " + e + " }")

field_name = st.sampled_from(["a", "b", "c", "d", "status"])


def field_condition(n: str):
    """One condition on field ``n`` (§6.1)."""
    equality = st.builds(lambda o, v: f"{n} {o} {v}", st.sampled_from(["=", "!="]), st.one_of(literal, regex_value))
    relational = st.builds(
        lambda o, v: f"{n} {o} {v}",
        st.sampled_from(["<", ">", "<=", ">="]),
        st.sampled_from(["1", "100", "-1", "2.5", "1e2"]),
    )
    return st.one_of(equality, relational)


def field_expr(n: str):
    """Conditions on field ``n`` joined by && and ||, grouped with parentheses (§6.1)."""
    return st.recursive(
        field_condition(n),
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(["&&", "||"]), inner),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"( {e} )"),
        ),
        max_leaves=4,
    )


@st.composite
def space_delimited_pattern(draw):
    count = draw(st.integers(0, 5))
    ellipsis_at = draw(st.one_of(st.none(), st.integers(0, count)))
    slots = []
    used = set()
    for _ in range(count):
        kind = draw(st.sampled_from(["empty", "name", "cond"]))
        if kind == "empty":
            slots.append("")
            continue
        n = draw(field_name.filter(lambda v: v not in used))
        used.add(n)
        if kind == "name":
            slots.append(n)
        else:
            slots.append(draw(field_expr(n)))
    if ellipsis_at is not None:
        slots.insert(ellipsis_at, "...")
    return "[" + ", ".join(slots) + "]"


grammar_patterns = st.one_of(
    st.just(""),
    term_pattern,
    regex_value,
    json_pattern,
    space_delimited_pattern(),
)

# --------------------------------------------------------------------------- events

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["1", "1.0", "abc", "a*b", "ERROR", "", "a b", "true", "x.y", "404"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "n", "k", "k.x", "x-y", "0"]), inner, max_size=4),
    ),
    max_leaves=10,
)
json_events = st.dictionaries(
    st.sampled_from(["a", "b", "c", "n", "k.x", "x-y", "status"]), json_values, max_size=5
).map(json.dumps)
field = st.one_of(
    st.sampled_from(["ERROR", "404", "1.5e3", "-", "abc", "x", "a*b", "100", '"a b"', "[t z]", '"open', "[open"]),
    st.text(alphabet=string.ascii_letters + string.digits + '."[]-*', min_size=1, max_size=6),
)
line_events = st.lists(
    st.tuples(field, st.sampled_from([" ", "  ", "\t", "", "\n"])), min_size=0, max_size=8
).map(lambda parts: "".join(f + sep for f, sep in parts))
text_events = st.text(
    alphabet=string.ascii_letters + string.digits + ' \t\n"[]{}:,.*-?!%\\' + "\u00e9", min_size=1, max_size=60
)
events = st.one_of(json_events, line_events, text_events, st.text(min_size=1, max_size=60)).filter(bool)

# --------------------------------------------------------------------------- helpers


def compile_or_error(pattern: str):
    """Compile, or check the FilterPatternError contract and return None."""
    try:
        return castlewatch.compile_pattern(pattern)
    except castlewatch.FilterPatternError as error:
        assert error.pattern == pattern
        assert isinstance(error.column, int)
        assert 1 <= error.column <= max(1, len(pattern))
        assert isinstance(error.message, str) and error.message
        assert error.code == "InvalidParameterException"
        assert str(error).startswith(error.message)
        return None


def check_consistency(compiled, event: str) -> None:
    matched = compiled.matches(event)
    extracted = compiled.extract(event)
    assert isinstance(matched, bool)
    assert matched == (extracted is not None)
    if extracted is not None:
        assert isinstance(extracted, dict)
        assert all(isinstance(k, str) and k.startswith("$") for k in extracted)
        assert all(isinstance(v, str) for v in extracted.values())
        if compiled.kind in ("all", "terms", "regex", "json"):
            # §2, §3.2, §4, §5.4: extractedValues is always {}
            assert extracted == {}


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(all_patterns)
def test_any_text_compiles_or_raises_filter_pattern_error(pattern):
    """§2–§6: every string compiles or is rejected with FilterPatternError whose column lies
    in 1..max(1, len(pattern)); no other exception."""
    compiled = compile_or_error(pattern)
    if compiled is not None:
        assert compiled.kind in ("all", "terms", "regex", "json", "space_delimited")


@SETTINGS
@given(grammar_patterns)
def test_grammar_shaped_patterns_compile_or_raise_filter_pattern_error(pattern):
    """§2–§6: patterns shaped by the grammar (mostly valid) never raise anything else."""
    compile_or_error(pattern)


@SETTINGS
@given(st.one_of(grammar_patterns, all_patterns), st.lists(events, min_size=1, max_size=4))
def test_matches_agrees_with_extract(pattern, messages):
    """Public API: matches(e) == (extract(e) is not None); term/regex/JSON/match-all patterns
    extract {} (§3.2, §4, §5.4, §2); space-delimited values are strings (§6.5)."""
    compiled = compile_or_error(pattern)
    assume(compiled is not None)
    for message in messages:
        check_consistency(compiled, message)


@SETTINGS
@given(grammar_patterns, st.lists(events, min_size=1, max_size=6))
def test_test_metric_filter_agrees_with_compiled_pattern(pattern, messages):
    """§7: matches are the matching events, in input order, 1-based, verbatim, with the
    extracted values of extract()."""
    compiled = compile_or_error(pattern)
    assume(compiled is not None)
    expected = [
        {"eventNumber": i, "eventMessage": m, "extractedValues": compiled.extract(m)}
        for i, m in enumerate(messages, start=1)
        if compiled.matches(m)
    ]
    assert castlewatch.test_metric_filter(pattern, messages) == {"matches": expected}


@SETTINGS
@given(grammar_patterns, events)
def test_surrounding_whitespace_does_not_change_the_pattern(pattern, event):
    """§2: the pattern is trimmed before its kind is read."""
    compiled = compile_or_error(pattern)
    assume(compiled is not None)
    padded = castlewatch.compile_pattern(" \t" + pattern + " \n")
    assert padded.kind == compiled.kind
    assert padded.extract(event) == compiled.extract(event)


@SETTINGS
@given(
    st.lists(
        st.text(alphabet=string.ascii_letters + string.digits + "_.", min_size=1, max_size=5), min_size=1, max_size=4
    ),
    events,
)
def test_bare_terms_are_substring_tests(words, event):
    """§3.1/§3.2: plain bare terms (dots included) match when every one is a substring of the message."""
    compiled = castlewatch.compile_pattern(" ".join(words))
    assert compiled.matches(event) is all(w in event for w in words)


@SETTINGS
@given(st.text(alphabet=string.ascii_letters + string.digits + " .:*", min_size=1, max_size=8), events)
def test_quoted_phrase_is_a_substring_test(phrase, event):
    """§3.1/§3.2: a quoted phrase (no quote or backslash inside) is one exact substring."""
    compiled = castlewatch.compile_pattern(f'"{phrase}"')
    assert compiled.matches(event) is (phrase in event)


def _metric_filter(name: str, pattern: str) -> dict:
    t = {"metricName": name, "metricNamespace": "p", "metricValue": "1"}
    return {"filterName": name, "filterPattern": pattern, "logGroupName": "g", "metricTransformations": [t]}


@SETTINGS
@given(st.one_of(space_delimited_pattern(), json_pattern), st.lists(events, min_size=1, max_size=4))
def test_every_evaluation_path_agrees(pattern, messages):
    """§5.4, §6.1-§6.4: the literal prefilter is a necessary condition under any nesting of
    ``&&``, ``||``, ``!=`` and parentheses, and ``matches``, ``extract``, the engine's
    split-once ``match_fields`` and a LogGroupEvaluator deciding through the shared
    LiteralScanner (the pattern among other filters with literals) give the same answer."""
    from castlewatch.engine.evaluate import LogGroupEvaluator
    from castlewatch.grammar import split_fields
    from castlewatch.metric_filters import load_metric_filters
    from castlewatch.model import LogEvent, Stats

    compiled = compile_or_error(pattern)
    assume(compiled is not None)
    companions = ['[x = "*zz-companion-zz*"]', '{ $.companion = "zz-companion-zz" }']
    stats = Stats()
    evaluator = LogGroupEvaluator(
        load_metric_filters(
            [_metric_filter("p", pattern)] + [_metric_filter(f"c{i}", c) for i, c in enumerate(companions)]
        ),
        stats,
    )
    for message in messages:
        matched = compiled.matches(message)
        assert (compiled.extract(message) is not None) is matched
        if matched and compiled.prefilter is not None:
            assert compiled.prefilter(message)
        if compiled.kind == "space_delimited":
            assert (compiled.match_fields(split_fields(message), message) is not None) is matched
        before = stats.matched["p"]
        evaluator.evaluate(LogEvent(1_709_629_230_000, message, "g"), lambda key, ts, value: None)
        assert stats.matched["p"] - before == int(matched)


# --------------------------------------------------------------------------- hostile numbers

# Log numbers: edges of doubles and integers (2**53, 2**63, 2**64), long digit strings,
# huge exponents (beyond Decimal's own range too), as JSON numbers, JSON strings and
# space-delimited fields, against a slow exact reference.  A run finishing is the time
# bound: nothing here would finish if a comparison built 10**exponent.

EDGE_INTEGERS = [2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, 2**64, 2**64 + 1, 10**308]
EDGE_TEXTS = [
    t
    for n in EDGE_INTEGERS
    for t in (str(n), str(-n), f"{n}.0", f"{n}.5", repr(float(n)), f"{str(n)[0]}.{str(n)[1:]}e{len(str(n)) - 1}")
] + ["0", "-0", "0.0", "-0.0", "1e-400", "4.9e-324", "2.5e-324", "1.7976931348623157e308", "1.7976931348623159e308"]
exponent_value = st.one_of(
    st.integers(-30, 30),
    st.sampled_from([307, 308, 309, -307, -308, -323, -324, -325, 400, -400, 4300, 10**7, 999999999, -999999999]),
    st.sampled_from([10**17, 10**18, 10**18 + 7, 10**30, -(10**30)]),
)
exponent_text = st.one_of(
    exponent_value.map(str),
    exponent_value.filter(lambda e: e >= 0).map(lambda e: f"+{e}"),
    st.builds(
        lambda sign, digit, n: sign + digit * n,
        st.sampled_from(["", "+", "-"]),
        st.sampled_from("19"),
        st.integers(1100, 5000),
    ),
)
long_digits = st.builds(
    lambda head, body, n: head + body * n,
    st.sampled_from("123456789"),
    st.sampled_from(["0", "9", "5", "1234567890"]),
    st.integers(0, 1200),
)
short_digits = st.text(alphabet="0123456789", min_size=1, max_size=25)


@st.composite
def number_text(draw, json_form: bool, literal: bool = False):
    """A text matching §5.3's number form; a valid JSON number when ``json_form``."""
    if draw(st.integers(0, 4)) == 0:
        text = draw(st.sampled_from(EDGE_TEXTS))
        return text.lstrip("+") if json_form else text
    sign = draw(st.sampled_from(["", "-"] if json_form else ["", "-", "+"]))
    whole = draw(short_digits if literal else st.one_of(short_digits, long_digits))
    if json_form:
        whole = whole.lstrip("0") or "0"
    fraction = draw(st.one_of(st.just(""), short_digits.map(lambda d: "." + d)))
    if not json_form and fraction and draw(st.booleans()):
        whole = ""  # `.5`
    exponent = ""
    if draw(st.booleans()):
        e = draw(exponent_value.map(str) if literal else exponent_text)
        exponent = draw(st.sampled_from("eE")) + e
    return sign + whole + fraction + exponent


def _split(text: str) -> tuple[str, str]:
    cut = max(text.find("e"), text.find("E"))
    return (text, "0") if cut < 0 else (text[:cut], text[cut + 1 :])


def reference_order(value: str, literal: str) -> int:
    """-1, 0, 1: ``value`` against ``literal``, exactly, with :class:`decimal.Decimal`.

    Both texts are scaled by 10**-(literal's exponent); Decimal reads the mantissas and the
    shifted value exactly when the shift is moderate (under 10**17).  Beyond, the value is
    astronomically large or small next to the literal, whose mantissa has at most ~60 digits
    and the value's at most ~1,300 here.
    """
    from decimal import Decimal

    def order(a, b) -> int:
        return (a > b) - (a < b)

    mantissa_v, exponent_v = _split(value)
    mantissa_l, exponent_l = _split(literal)
    a, b = Decimal(mantissa_v), Decimal(mantissa_l)
    digits_v = exponent_v.lstrip("+-").lstrip("0")
    shift = None if len(digits_v) > 1100 else int(exponent_v) - int(exponent_l)
    if shift is not None and abs(shift) < 10**17:
        return order(Decimal(f"{mantissa_v}E{shift}"), b)
    if (shift > 0) if shift is not None else not exponent_v.startswith("-"):  # astronomically large
        return order(a, 0) if a != 0 else order(0, b)
    return order(0, b) if b != 0 else order(a, 0)  # astronomically small


NUMERIC_OPS = {"=": lambda o: o == 0, "!=": lambda o: o != 0, "<": lambda o: o < 0, ">": lambda o: o > 0,
               "<=": lambda o: o <= 0, ">=": lambda o: o >= 0}


@SETTINGS
@given(number_text(json_form=True), number_text(json_form=False, literal=True), st.sampled_from(sorted(NUMERIC_OPS)))
def test_json_numbers_compare_exactly(value, literal, op):
    """§5.4: a JSON number satisfies ``op N`` exactly as its decimal value does; a JSON
    string holding the same text satisfies ``= N`` only with N's very text, ``!= N``
    otherwise, and no relational operator."""
    pattern = castlewatch.compile_pattern(f"{{ $.v {op} {literal} }}")
    assert pattern.matches(f'{{"v": {value}}}') is NUMERIC_OPS[op](reference_order(value, literal))
    as_string = {"=": value == literal, "!=": value != literal}.get(op, False)
    assert pattern.matches(f'{{"v": "{value}"}}') is as_string


@SETTINGS
@given(number_text(json_form=False), number_text(json_form=False, literal=True), st.sampled_from(sorted(NUMERIC_OPS)))
def test_space_delimited_numbers_compare_exactly(value, literal, op):
    """§6.4: a numeric field satisfies ``op N`` exactly as its decimal value does, in any
    slot (the last one absorbing nothing more here)."""
    expected = NUMERIC_OPS[op](reference_order(value, literal))
    assert castlewatch.compile_pattern(f"[v {op} {literal}]").matches(value) is expected
    assert castlewatch.compile_pattern(f"[a, v {op} {literal}, b]").extract(f"x {value} y") == (
        {"$a": "x", "$v": value, "$b": "y"} if expected else None
    )
