"""The %regex% subset of filter patterns (spec §4) and its RE2 translation."""

from __future__ import annotations

import pickle
import re
import string

import pytest
import re2
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from castlewatch.grammar.errors import INVALID_PATTERN, REGEX_COMPILE, FilterPatternError, invalid_term
from castlewatch.grammar.regex import MAX_REPEAT, AwsRegex, compile_regex

LITERALS = string.ascii_letters + string.digits + " :_#=@/;,-"
OPERATORS = "^$?*+.|\\[]{}"


def rx(source: str) -> AwsRegex:
    return compile_regex(source, source, 0)


def search(source: str, text: str) -> bool:
    return rx(source).search(text)


def rejected(source: str, pattern: str | None = None, offset: int = 0) -> FilterPatternError:
    with pytest.raises(FilterPatternError) as info:
        compile_regex(source, source if pattern is None else pattern, offset)
    return info.value


# -- characters -----------------------------------------------------------------------


@pytest.mark.parametrize("ch", list(LITERALS))
def test_each_literal_character_matches_itself(ch):
    regex = rx(f"%x{ch}%")
    assert regex.search(f"ax{ch}b")
    assert not regex.search("x" if ch != "x" else "y")


@pytest.mark.parametrize("ch", list(OPERATORS + " :_#=@/;,-"))
def test_backslash_makes_operators_and_punctuation_literal(ch):
    regex = rx(f"%\\{ch}%")
    assert regex.search(f"a{ch}b")
    assert not regex.search("ab")


@pytest.mark.parametrize(
    "ch", list("()!\"'<>~&%`") + ["\t", "\n", "\r", "\x00", "\x7f", "é", "\u00a0", "\u2028", "😀"]
)
def test_other_characters_are_invalid(ch):
    err = rejected(f"%ab{ch}c%")
    assert err.message == invalid_term(f"%ab{ch}")
    assert err.column == 4


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("%^(ERROR|WARN)%", "Invalid character(s) in term '%^('", 3),
        ("%hello!%", "Invalid character(s) in term '%hello!'", 7),
        ("%something!%", "Invalid character(s) in term '%something!'", 11),
        ("%café%", "Invalid character(s) in term '%café'", 5),
        ("%a%b%", "Invalid character(s) in term '%a%'", 3),
    ],
)
def test_invalid_character_messages(source, message, column):
    err = rejected(source)
    assert (err.message, err.column) == (message, column)


def test_character_check_comes_before_structure():
    assert rejected("%*[(%").message == invalid_term("%*[(")
    assert rejected("%\\!%").message == invalid_term("%\\!")


def test_columns_are_in_the_whole_pattern():
    pattern = "{ $.a = %ab!%}"
    err = rejected("%ab!%", pattern, 8)
    assert err.column == pattern.index("!") + 1
    assert err.message == invalid_term("%ab!")
    pattern = "[w1, w2=%x\\by%]"
    err = rejected("%x\\by%", pattern, pattern.index("%"))
    assert (err.message, err.column) == (REGEX_COMPILE, pattern.index("\\") + 1)


def test_empty_regex_is_an_invalid_pattern():
    err = rejected("%%", "{ $.a = %% }", 8)
    assert (err.message, err.column) == (INVALID_PATTERN, 9)


def test_source_must_be_delimited():
    for bad in ("", "%", "abc", "%abc", "abc%"):
        with pytest.raises(ValueError):
            compile_regex(bad, bad, 0)


# -- escapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("escape", "yes", "no"),
    [
        ("\\d", "0579", "aé٣\n"),  # ASCII digits only (not Arabic-Indic three)
        ("\\D", "aé\n ", "0579"),
        ("\\s", " \t\n\r\f", "a\v\u00a0\u2028é"),  # [adopted] RE2's \s: no vertical tab
        ("\\S", "a!é\v\u00a0", " \t\n\r\f"),
        ("\\w", "azAZ09_", "-é ß\n"),
        ("\\W", "-é \n!😀", "azAZ09_"),
    ],
)
def test_class_escapes_are_ascii(escape, yes, no):
    regex = rx(f"%^{escape}$%")
    for ch in yes:
        assert regex.search(ch), (escape, ch)
    for ch in no:
        assert not regex.search(ch), (escape, ch)


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("%\\x21%", "!"),
        ("%\\x25%", "100%"),
        ("%\\x28%", "f(x)"),
        ("%\\x41%", "A"),
        ("%\\x4a%", "J"),
        ("%\\x4A%", "J"),
        ("%\\x0a%", "a\nb"),
        ("%\\x00%", "a\x00b"),
        ("%caf\\xe9%", "café"),  # \xhh is the code point U+00hh
        ("%\\x5c%", "a\\b"),
    ],
)
def test_hex_escapes(source, text):
    assert search(source, text)
    assert not search(source, "zzz")


def test_hex_escape_is_one_character():
    assert not search("%\\x41%", "a")
    assert search("%^\\x411$%", "A1")


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("%\\b%", 2),
        ("%\\n%", 2),
        ("%\\t%", 2),
        ("%\\1%", 2),
        ("%\\A%", 2),
        ("%\\z%", 2),
        ("%\\X41%", 2),
        ("%ab\\x4%", 4),
        ("%ab\\x4g%", 4),
        ("%\\x%", 2),
        ("%ab\\%", 4),
        ("%[a\\b]%", 4),
        ("%[a\\%", 4),
    ],
)
def test_other_escapes_fail_to_compile(source, column):
    err = rejected(source)
    assert (err.message, err.column) == (REGEX_COMPILE, column)


# -- meaning --------------------------------------------------------------------------


def test_search_not_fullmatch():
    assert search("%ERROR|WARN%", "xERROR 500")
    assert search("%ERROR|WARN%", "a WARN")
    assert not search("%ERROR|WARN%", "error")  # case-sensitive
    assert search("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST")


def test_alternation_splits_the_whole_regex():
    regex = rx("%^starting|^initializing|^shutting down%")
    assert regex.search("starting server")
    assert regex.search("initializing cache")
    assert regex.search("shutting down now")
    assert not regex.search("skipping initializing cache")
    assert rx("%gra|ey%").search("grey") and rx("%gra|ey%").search("gray")
    assert rx("%abcc|ab[^c]$%").search("aba")


def test_anchors_are_the_whole_text():
    assert search("%end$%", "the end")
    assert not search("%end$%", "the end\n")  # $ is the very end only
    assert not search("%end$%", "the end\nx")
    assert search("%^a%", "ab")
    assert not search("%^b%", "a\nb")  # ^ is not after a newline
    assert search("%^$%", "")
    assert not search("%^$%", "\n")
    assert not search("%a^b%", "ab")
    assert rx("%^a$%").re2_pattern == "(?s)\\Aa\\z"


def test_dot_is_any_one_character():
    assert search("%a.b%", "a\nb")
    assert search("%a.b%", "a\rb")
    for ch in ("x", "\n", "é", "😀", "\ud800", "\x00"):
        assert search("%^.$%", ch), repr(ch)
    assert not search("%^..$%", "😀")
    assert search("%10.10.0.1%", "10010,051")
    assert not search("%10\\.10\\.0\\.1%", "10010,051")


def test_lone_surrogates_and_non_ascii_text():
    assert search("%a[^b]c%", "a\ud800c")
    assert search("%a\\Wc%", "a\udfffc")
    assert not search("%a\\wc%", "a\ud800c")
    assert search("%b%", "\ud800b\udc00")
    assert search("%\\S\\S%", "\ud83d\ude00")  # two code points in a Python str


@pytest.mark.parametrize(
    ("source", "yes", "no"),
    [
        ("%^colou?r$%", ["color", "colour"], ["colouur"]),
        ("%^ab*c$%", ["ac", "abc", "abbbc"], ["abd"]),
        ("%^ab+c$%", ["abc", "abbbc"], ["ac"]),
        ("%^a{3}$%", ["aaa"], ["aa", "aaaa"]),
        ("%^a{2,}$%", ["aa", "aaaaaaa"], ["a"]),
        ("%^a{,2}$%", ["", "a", "aa"], ["aaa"]),
        ("%^a{1,3}$%", ["a", "aaa"], ["", "aaaa"]),
        ("%^xa{0}y$%", ["xy"], ["xay"]),
        ("%^a{0,0}$%", [""], ["a"]),
        ("%^a{1000}$%", ["a" * 1000], ["a" * 999]),
        ("%^.{2}$%", ["é\n"], ["abc"]),
        ("%^[0-9]{2,3}$%", ["12", "123"], ["1", "1234"]),
        ("%^\\d{1,3}\\.\\d{1,3}$%", ["1.22"], ["1.2222"]),
    ],
)
def test_quantifiers(source, yes, no):
    regex = rx(source)
    for text in yes:
        assert regex.search(text), text
    for text in no:
        assert not regex.search(text), text


def test_open_lower_bound_is_translated():
    assert "{0,2}" in rx("%a{,2}%").re2_pattern


@pytest.mark.parametrize(
    ("source", "yes", "no"),
    [
        ("%^[abc]$%", ["a", "b", "c"], ["d", "ab"]),
        ("%^[a-z]$%", ["q"], ["Q", "9"]),
        ("%^[abcx-z]$%", ["a", "y", "z"], ["d", "w"]),
        ("%^[^a-c]$%", ["d", "\n", "é", "😀"], ["a", "c"]),
        ("%^[\\d_]$%", ["5", "_"], ["a"]),
        ("%^[^\\d]$%", ["a", "é"], ["5"]),
        ("%^[\\W\\d]$%", ["5", "-", "é"], ["a", "_"]),
        ("%^[.*+?$|{}^]$%", list(".*+?$|{}^"), ["a", "\\"]),
        ("%^[-a]$%", ["-", "a"], ["b"]),
        ("%^[a-]$%", ["-", "a"], ["b"]),
        ("%^[^-]$%", ["a"], ["-"]),
        ("%^[--/]$%", ["-", ".", "/"], [","]),
        ("%^[a\\-z]$%", ["a", "-", "z"], ["b"]),
        ("%^[\\[\\]]$%", ["[", "]"], ["a"]),
        ("%^[\\x41-\\x43]$%", ["A", "C"], ["D"]),
        ("%^[\\x00-\\xff]$%", ["\x00", "ÿ"], ["Ā"]),
        ("%^[ ]$%", [" "], ["\t"]),
        ("%\\[.\\]%", ["[a]", "[]]", "[ ]"], ["[ab]"]),
    ],
)
def test_classes(source, yes, no):
    regex = rx(source)
    for text in yes:
        assert regex.search(text), text
    for text in no:
        assert not regex.search(text), text


def test_empty_branches_match_the_empty_string():
    # [adopted] as in every regex dialect
    assert search("%a|%", "zzz")
    assert search("%|a%", "")
    assert search("%a||b%", "zzz")
    assert rx("%a|%").literals == ()


# -- structural errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("%[abc%", 2),  # unclosed class: at its '['
        ("%x[^abc%", 3),
        ("%[a-%", 2),
        ("%[]%", 3),  # empty class: at the ']'
        ("%[^]%", 4),
        ("%[]a]%", 3),
        ("%[z-a]%", 3),  # backwards range: at its start
        ("%[a-\\d]%", 4),  # class escape as a range end: at the '-'
        ("%[a[b]%", 4),  # '[' inside a class must be escaped
        ("%[a-b-c]%", 6),  # '-' in the middle must be escaped
        ("%*abc%", 2),  # nothing to repeat
        ("%?%", 2),
        ("%+a%", 2),
        ("%a**%", 4),
        ("%a+?%", 4),  # no lazy quantifiers
        ("%a*+%", 4),  # no possessive quantifiers
        ("%a{2}*%", 6),
        ("%a{2}{3}%", 6),
        ("%a|*b%", 4),
        ("%^*a%", 3),
        ("%a$+%", 4),
        ("%{2}%", 2),
        ("%a{b%", 3),  # '{' that is not a bound
        ("%a{%", 3),
        ("%a{1%", 3),
        ("%a{}%", 3),
        ("%a{,}%", 3),
        ("%a{ 1}%", 3),
        ("%a{2,1}%", 3),
        ("%a{1001}%", 3),
        ("%a{0,1001}%", 3),
        ("%a{1001,}%", 3),
        ("%a{99999999999999999999999999}%", 3),
        ("%a}%", 3),  # '}' and ']' outside a class must be escaped
        ("%a]%", 3),
    ],
)
def test_structural_errors(source, column):
    err = rejected(source)
    assert (err.message, err.column) == (REGEX_COMPILE, column), err


def test_bounds_up_to_the_limit():
    assert MAX_REPEAT == 1000
    assert rx("%a{1000}%") and rx("%a{0,1000}%") and rx("%a{1000,}%") and rx("%a{0001000}%")


def test_too_large_for_re2():
    source = "%" + "\\W{1000}" * 100 + "%"
    err = rejected(source, "  " + source, 2)
    assert (err.message, err.column) == (REGEX_COMPILE, 3)


# -- translation, literals, object ----------------------------------------------------------


def test_translation_is_explicit():
    assert rx("%ERROR: [0-9]+%").re2_pattern == "(?s)ERROR\\x{3a}\\x{20}[0-9]+"
    assert rx("%\\s%").re2_pattern == "(?s)[\\x{9}-\\x{a}\\x{c}-\\x{d}\\x{20}]"
    assert rx("%[^\\d-]%").re2_pattern == "(?s)[^\\x{2d}0-9]"


@pytest.mark.parametrize(
    ("source", "literals"),
    [
        ("%ERROR: [0-9]+%", ("ERROR: ",)),
        ("%ERROR|WARN%", ()),
        ("%AUTHORIZED%", ("AUTHORIZED",)),
        ("%^abc$%", ("abc",)),
        ("%abc?d%", ("ab", "d")),
        ("%ab*c%", ("a", "c")),
        ("%xa{2,5}y%", ("aay", "xaa")),
        ("%xa{2}y%", ("xaay",)),
        ("%xa+y%", ("ay", "xa")),
        ("%a.b%", ("a", "b")),
        ("%x[ab]{0}y%", ("xy",)),
        ("%10\\.0%", ("10.0",)),
        ("%user=\\d+ id=%", ("user=", " id=")),
        ("%ERROR 1|ERROR 2%", ()),
        ("%ERROR 1x|ERROR 1y|ERROR 1%", ("ERROR 1",)),
        ("%[Ee]rror|[Ff]ail%", ()),
        ("%.*%", ()),
        ("%a*%", ()),
    ],
)
def test_required_literals(source, literals):
    assert rx(source).literals == literals


def test_object_behaviour():
    regex = rx("%ERROR|WARN%")
    assert regex.source == "%ERROR|WARN%"
    assert regex == rx("%ERROR|WARN%") and hash(regex) == hash(rx("%ERROR|WARN%"))
    assert regex != rx("%ERROR%")
    assert repr(regex) == "AwsRegex('%ERROR|WARN%')"
    copy = pickle.loads(pickle.dumps(regex))
    assert copy == regex and copy.search("xWARN") and not copy.search("INFO")
    assert copy.re2_pattern == regex.re2_pattern and copy.literals == regex.literals


def test_linear_time_on_hostile_input():
    text = "a" * 50_000
    assert not search("%a*a*a*a*a*a*a*a*a*a*c%", text)
    assert not search("%.*.*.*.*.*.*=%", text)
    assert search("%.*.*.*.*.*.*=%", text + "=")
    assert not search("%^\\w*\\w*\\w*\\w*\\w*\\x21$%", text)
    assert not search("%[a-z]{1,1000}[a-z]{1,1000}b$%", text)


# -- properties -------------------------------------------------------------------------

BODY_CHARS = st.sampled_from(list(LITERALS[:6] + " :-_" + OPERATORS + "09x") + ["(", "!", "é", "\n", "%"])


@settings(max_examples=600, deadline=None)
@given(body=st.text(BODY_CHARS, max_size=14) | st.text(max_size=10), prefix=st.text(max_size=5))
@example(body="", prefix="")
@example(body="a{,}", prefix="{ $.x = ")
def test_any_body_compiles_or_raises_our_error(body, prefix):
    pattern = prefix + "%" + body + "%" + " }"
    try:
        regex = compile_regex("%" + body + "%", pattern, len(prefix))
    except FilterPatternError as err:
        assert err.pattern == pattern
        assert len(prefix) + 1 <= err.column <= len(prefix) + len(body) + 2
        assert err.message in (INVALID_PATTERN, REGEX_COMPILE) or err.message.startswith(
            "Invalid character(s) in term '%"
        )
        return
    assert isinstance(regex.search("abc\n é"), bool)
    assert all(lit for lit in regex.literals)


# Generated regexes: each atom with texts it matches, so that a matching text can be
# built together with the regex.
ATOMS = {
    "a": ["a"],
    "b": ["b"],
    "-": ["-"],
    " ": [" "],
    ":": [":"],
    ".": ["a", "\n", "é", "😀"],
    "\\d": ["0", "7"],
    "\\D": ["a", "\n", "é"],
    "\\s": [" ", "\t", "\n"],
    "\\S": ["a", "é"],
    "\\w": ["a", "_", "Z"],
    "\\W": ["-", "é", "\n"],
    "\\x61": ["a"],
    "\\x0a": ["\n"],
    "\\x25": ["%"],
    "\\.": ["."],
    "\\-": ["-"],
    "\\{": ["{"],
    "[ab]": ["a", "b"],
    "[^a]": ["b", "\n", "é"],
    "[a-c]": ["b"],
    "[-a]": ["-"],
    "[\\d_]": ["_", "5"],
    "[.*]": [".", "*"],
    "[^\\s]": ["x"],
    "[--/]": ["."],
}
QUANTIFIERS = {"": (1, 1), "?": (0, 1), "*": (0, 3), "+": (1, 3), "{2}": (2, 2), "{1,}": (1, 3),
               "{,2}": (0, 2), "{1,2}": (1, 2), "{0}": (0, 0)}


@st.composite
def regex_with_match(draw):
    """(regex source, a text it matches)."""
    branches, sample = [], None
    chosen = draw(st.integers(0, 2))
    for index in range(draw(st.integers(chosen + 1, 3))):
        start, end = draw(st.booleans()), draw(st.booleans())
        parts, text = ["^"] if start else [], ""
        for _ in range(draw(st.integers(0 if index else 1, 4))):
            atom = draw(st.sampled_from(sorted(ATOMS)))
            quant = draw(st.sampled_from(sorted(QUANTIFIERS)))
            low, high = QUANTIFIERS[quant]
            parts.append(atom + quant)
            text += "".join(draw(st.sampled_from(ATOMS[atom])) for _ in range(draw(st.integers(low, high))))
        parts += ["$"] if end else []
        branches.append("".join(parts))
        if index == chosen:
            before = "" if start else draw(st.text("ab\n é-", max_size=3))
            after = "" if end else draw(st.text("ab\n é-", max_size=3))
            sample = before + text + after
    return "%" + "|".join(branches) + "%", sample


def python_oracle(body: str) -> re.Pattern:
    """An independent reading of spec §4 with Python's re (ASCII classes, DOTALL,
    \\A and \\Z); valid for texts without a vertical tab (Python's \\s has it)."""
    out, i, in_class, first = [], 0, False, False
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            size = 4 if body[i + 1] == "x" else 2
            out.append(body[i : i + size])
            i += size
            first = False
            continue
        if in_class:
            if ch == "]" and not first:
                in_class = False
                out.append("]")
            elif ch == "-" and not first and body[i + 1] != "]":
                out.append("-")  # a range
            else:
                out.append(re.escape(ch))
            first = False
        elif ch == "[":
            in_class, first = True, True
            out.append("[^" if body[i + 1] == "^" else "[")
            i += 1 + (body[i + 1] == "^")
            continue
        elif ch == "{":
            end = body.index("}", i)
            bound = body[i : end + 1]
            out.append("{0," + bound[2:] if bound.startswith("{,") else bound)
            i = end + 1
            continue
        else:
            out.append({"^": r"\A", "$": r"\Z"}.get(ch, ch if ch in ".*+?|" else re.escape(ch)))
        i += 1
    return re.compile("".join(out), re.ASCII | re.DOTALL)


TEXT_CHARS = st.sampled_from(list("aAbZ_05-.: \n\t\r{%*/") + ["é", "😀", "\ud800", "\x00"])


@settings(max_examples=500, deadline=None)
@given(pair=regex_with_match(), noise=st.text(TEXT_CHARS, max_size=10))
def test_generated_regexes_match_their_samples_and_agree_with_python(pair, noise):
    source, sample = pair
    regex = rx(source)
    oracle = python_oracle(source[1:-1])
    assert regex.search(sample), (source, sample, regex.re2_pattern)
    assert oracle.search(sample), (source, sample)
    for text in (sample, noise, noise + sample, sample + noise):
        found = regex.search(text)
        assert found == bool(oracle.search(text)), (source, text, regex.re2_pattern)
        if found:  # the prefilter literals are sound
            assert all(lit in text for lit in regex.literals), (source, text, regex.literals)


FIXED = st.lists(
    st.tuples(st.booleans(), st.text("ab-:", min_size=0, max_size=3), st.booleans()), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(branches=FIXED, text=st.text("ab-:\n", max_size=8))
def test_fixed_string_shortcut_agrees_with_re2(branches, text):
    body = "|".join(("^" if s else "") + lit + ("$" if e else "") for s, lit, e in branches)
    assume(body)
    regex = rx("%" + body + "%")
    assert regex.search(text) == (re2.compile(regex.re2_pattern).search(text) is not None), body
