"""The regular-expression subset of filter patterns, translated to RE2 (spec §4).

A ``%…%`` value is checked, parsed by a small recursive-descent parser, and
re-emitted as an RE2 pattern whose meaning does not depend on RE2's defaults:

- every literal that is not an ASCII letter or digit is written ``\\x{hh}``;
- classes and the ``\\d \\D \\s \\S \\w \\W`` escapes become explicit ranges;
- ``^`` becomes ``\\A``, ``$`` becomes ``\\z`` (only the very end of the text);
- the pattern starts with ``(?s)`` so that ``.`` matches newlines too;
- ``{,n}``, which RE2 does not know, becomes ``{0,n}``.

RE2 matches in time linear in the text, so no pattern can make an event slow.

Behaviour the spec leaves open ([adopted], spec §12) is decided here; each rule
lives in one place (the character sets and :data:`ADOPTED_CLASS_ESCAPES` below,
one parser method per construct):

- ``\\s`` is RE2's (and Perl's) set: tab, newline, form feed, carriage return and
  space; vertical tab (``\\x0b``) is not included;
- a backslash before any allowed non-alphanumeric character (operators, the
  punctuation literals and space) makes it literal; before a letter or digit
  other than ``dDsSwWx`` it is an error;
- ``\\xhh`` is the code point U+00hh (``\\xe9`` matches ``é``);
- ``]`` and ``}`` outside a class must be escaped; ``{`` must start a valid bound;
- a quantifier needs an item to repeat: one at the start of a branch, after an
  anchor or after another quantifier (``a**``, ``a+?``, ``a{2}*``) is an error,
  so lazy and possessive forms are rejected;
- inside a class ``[`` must be escaped (it would mean a nested class in Java
  and a POSIX class in RE2), an unescaped ``-`` is literal only first or last,
  a range needs single characters in order, and ``[]``/``[^]`` are errors;
- empty branches (``%a|%``) are accepted and match the empty string, as in
  every regex dialect;
- bounds above 1000 (RE2's limit) are errors, and so is a pattern RE2 refuses
  as too large for its default 8 MiB budget (e.g. forty copies of ``\\W{1000}``).

Matching: a regex whose every branch is one fixed string (``abc``, ``^abc``,
``abc$``, ``^abc$``) is searched with ``str`` operations; any other regex with the
low-level RE2 object on the UTF-8 text, skipping the Python match object.
"""

from __future__ import annotations

import re
from string import ascii_letters, digits, hexdigits
from typing import Callable, NamedTuple

import re2
from re2 import _re2

from castlewatch.grammar.errors import INVALID_PATTERN, REGEX_COMPILE, FilterPatternError, invalid_term

__all__ = ["AwsRegex", "compile_regex", "MAX_REPEAT"]

# -- the character sets of spec §4 --------------------------------------------------

_PUNCTUATION = ":_#=@/;,-"
_LITERALS = frozenset(ascii_letters + digits + " " + _PUNCTUATION)
_OPERATORS = frozenset("^$?*+.|\\[]{}")
_ALLOWED = _LITERALS | _OPERATORS
# A backslash before one of these makes it literal.
_ESCAPABLE = _OPERATORS | frozenset(" " + _PUNCTUATION)
_QUANTIFIERS = frozenset("?*+{")
_HEX = frozenset(hexdigits)

#: Largest count in a ``{m,n}`` bound; RE2 refuses more.
MAX_REPEAT = 1000
_MAX_CODE_POINT = 0x10FFFF

Ranges = tuple[tuple[int, int], ...]


def _complement(ranges: Ranges) -> Ranges:
    out, low = [], 0
    for lo, hi in ranges:
        if lo > low:
            out.append((low, lo - 1))
        low = hi + 1
    if low <= _MAX_CODE_POINT:
        out.append((low, _MAX_CODE_POINT))
    return tuple(out)


def _merge(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


_DIGIT: Ranges = ((0x30, 0x39),)
# [adopted] RE2's \s: tab, newline, form feed, carriage return, space (not \v).
_SPACE: Ranges = _merge([(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)])
_WORD: Ranges = _merge([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])

#: The class escapes of spec §4, as code-point ranges (ASCII classes, negations cover
#: every other code point, non-ASCII included).
ADOPTED_CLASS_ESCAPES: dict[str, Ranges] = {
    "d": _DIGIT,
    "D": _complement(_DIGIT),
    "s": _SPACE,
    "S": _complement(_SPACE),
    "w": _WORD,
    "W": _complement(_WORD),
}

# -- the parsed form ----------------------------------------------------------------


class _Item(NamedTuple):
    """One atom with its repetition: ``kind`` is ``char`` (``value`` a code point),
    ``set`` (``value`` = (negated, ranges)), ``any``, ``start`` or ``end``."""

    kind: str
    value: object
    low: int = 1
    high: int | None = 1  # None: unbounded


Branch = tuple[_Item, ...]


class _Parser:
    """Recursive descent over the body of one ``%…%``; positions index the body."""

    def __init__(self, body: str, pattern: str, offset: int) -> None:
        self.body = body
        self.pattern = pattern
        self.first = offset + 2  # 1-based column of body[0]
        self.pos = 0

    def fail(self, at: int, expected: str) -> FilterPatternError:
        return FilterPatternError(REGEX_COMPILE, self.pattern, self.first + at, expected)

    def check_characters(self) -> None:
        for i, ch in enumerate(self.body):
            if ch not in _ALLOWED:
                raise FilterPatternError(
                    invalid_term("%" + self.body[: i + 1]),
                    self.pattern,
                    self.first + i,
                    "letters, digits, space, : _ # = @ / ; , - or an operator; \\xhh for other characters",
                )

    def parse(self) -> tuple[Branch, ...]:
        branches = [self.branch()]
        while self.pos < len(self.body):  # only a '|' stops a branch early
            self.pos += 1
            branches.append(self.branch())
        return tuple(branches)

    def branch(self) -> Branch:
        items: list[_Item] = []
        body = self.body
        while self.pos < len(body) and body[self.pos] != "|":
            item = self.atom()
            if item.kind not in ("start", "end"):
                item = self.quantifier(item)
            if self.pos < len(body) and body[self.pos] in _QUANTIFIERS:
                raise self.fail(self.pos, "an item to repeat before the quantifier")
            items.append(item)
        return tuple(items)

    def atom(self) -> _Item:
        body, at = self.body, self.pos
        ch = body[at]
        self.pos += 1
        if ch == "^":
            return _Item("start", None)
        if ch == "$":
            return _Item("end", None)
        if ch == ".":
            return _Item("any", None)
        if ch == "[":
            return self.char_class(at)
        if ch == "\\":
            return self.escape(at)
        if ch in _QUANTIFIERS:
            raise self.fail(at, "an item to repeat before the quantifier")
        if ch in "]}":
            raise self.fail(at, f"'\\{ch}' for a literal '{ch}'")
        return _Item("char", ord(ch))

    def escape(self, at: int) -> _Item:
        """``\\`` at ``at``: a class escape, ``\\xhh`` or an escaped literal."""
        body = self.body
        expected = "\\d \\D \\s \\S \\w \\W, \\xhh, or \\ before an operator or punctuation"
        if at + 1 >= len(body):
            raise self.fail(at, expected)
        ch = body[at + 1]
        if ch in ADOPTED_CLASS_ESCAPES:
            self.pos = at + 2
            return _Item("set", (False, ADOPTED_CLASS_ESCAPES[ch]))
        if ch == "x":
            hh = body[at + 2 : at + 4]
            if len(hh) != 2 or not all(h in _HEX for h in hh):
                raise self.fail(at, "\\x followed by exactly two hex digits")
            self.pos = at + 4
            return _Item("char", int(hh, 16))
        if ch in _ESCAPABLE:
            self.pos = at + 2
            return _Item("char", ord(ch))
        raise self.fail(at, expected)

    def char_class(self, start: int) -> _Item:
        """``[`` at ``start``: members, ranges and ``^`` negation up to ``]``."""
        body = self.body
        negated = self.pos < len(body) and body[self.pos] == "^"
        if negated:
            self.pos += 1
        first = self.pos
        ranges: list[tuple[int, int]] = []
        while True:
            if self.pos >= len(body):
                raise self.fail(start, "a ']' closing this class")
            at = self.pos
            ch = body[at]
            if ch == "]":
                if at == first:
                    raise self.fail(at, "at least one character in the class")
                self.pos += 1
                return _Item("set", (negated, _merge(ranges)))
            if ch == "-" and at != first and body[at + 1 : at + 2] not in ("]", ""):
                raise self.fail(at, "'\\-' for a literal '-' inside a class")
            member = self.class_member()
            if isinstance(member, tuple):
                ranges.extend(member)
                continue
            if body[self.pos : self.pos + 1] == "-" and body[self.pos + 1 : self.pos + 2] not in ("]", ""):
                dash = self.pos
                self.pos += 1
                high = self.class_member()
                if isinstance(high, tuple):
                    raise self.fail(dash, "a single character after '-' in a range")
                if high < member:
                    raise self.fail(at, "a range whose start is not after its end")
                ranges.append((member, high))
            else:
                ranges.append((member, member))

    def class_member(self) -> int | Ranges:
        """One class member: a code point, or the ranges of a class escape."""
        at = self.pos
        ch = self.body[at]
        if ch == "[":
            raise self.fail(at, "'\\[' for a literal '[' inside a class")
        if ch != "\\":
            self.pos += 1
            return ord(ch)
        item = self.escape(at)
        return item.value[1] if item.kind == "set" else item.value

    def quantifier(self, item: _Item) -> _Item:
        body, at = self.body, self.pos
        ch = body[at] if at < len(body) else ""
        if ch == "?":
            low, high = 0, 1
        elif ch == "*":
            low, high = 0, None
        elif ch == "+":
            low, high = 1, None
        elif ch == "{":
            low, high = self.bound(at)
            return item._replace(low=low, high=high)
        else:
            return item
        self.pos += 1
        return item._replace(low=low, high=high)

    def bound(self, at: int) -> tuple[int, int | None]:
        """``{m}``, ``{m,}``, ``{,n}`` or ``{m,n}`` starting at ``at``."""
        match = _BOUND.match(self.body, at)
        expected = f"a bound {{m}}, {{m,}}, {{,n}} or {{m,n}} with m <= n <= {MAX_REPEAT}"
        if not match or not (match["low"] or match["high"]):
            raise self.fail(at, expected)
        low = _count(match["low"] or "0")
        if match["comma"] is None:
            high: int | None = low
        else:
            high = _count(match["high"]) if match["high"] else None
        if low > MAX_REPEAT or (high is not None and (high > MAX_REPEAT or high < low)):
            raise self.fail(at, expected)
        self.pos = match.end()
        return low, high


_BOUND = re.compile(r"\{(?P<low>[0-9]*)(?P<comma>,)?(?P<high>[0-9]*)\}", re.ASCII)


def _count(text: str) -> int:
    text = text.lstrip("0") or "0"
    return int(text) if len(text) <= 6 else MAX_REPEAT + 1  # never parse huge numbers


# -- emitting RE2 -------------------------------------------------------------------


def _emit_code_point(cp: int) -> str:
    ch = chr(cp)
    return ch if ch in ascii_letters or ch in digits else f"\\x{{{cp:x}}}"


def _emit_item(item: _Item) -> str:
    kind = item.kind
    if kind == "start":
        return r"\A"
    if kind == "end":
        return r"\z"
    if kind == "any":
        text = "."
    elif kind == "char":
        text = _emit_code_point(item.value)
    else:
        negated, ranges = item.value
        members = "".join(
            _emit_code_point(lo) if lo == hi else f"{_emit_code_point(lo)}-{_emit_code_point(hi)}"
            for lo, hi in ranges
        )
        text = f"[{'^' if negated else ''}{members}]"
    low, high = item.low, item.high
    if (low, high) == (1, 1):
        return text
    if (low, high) == (0, 1):
        return text + "?"
    if (low, high) == (0, None):
        return text + "*"
    if (low, high) == (1, None):
        return text + "+"
    if high is None:
        return f"{text}{{{low},}}"
    if low == high:
        return f"{text}{{{low}}}"
    return f"{text}{{{low},{high}}}"


def _emit(branches: tuple[Branch, ...]) -> str:
    return "(?s)" + "|".join("".join(_emit_item(i) for i in branch) for branch in branches)


# -- required literals (prefilter) ----------------------------------------------------


def _branch_literals(branch: Branch) -> set[str]:
    """Strings that every text matched by ``branch`` contains.

    Runs of adjacent fixed characters; anchors are zero-width and do not break a
    run; ``c{m,n}`` (m >= 1) ends a run with ``c*m`` and starts the next with it.
    """
    found: set[str] = set()
    run: list[str] = []

    def flush() -> None:
        literal = "".join(run)
        if literal:
            found.add(literal)
        run.clear()

    for item in branch:
        if item.kind in ("start", "end") or item.high == 0:
            continue
        if item.kind != "char":
            flush()
            continue
        piece = chr(item.value) * item.low
        run.append(piece)
        if item.high != item.low:
            flush()
            if piece:
                run.append(piece)
    flush()
    return found


def _required_literals(branches: tuple[Branch, ...]) -> tuple[str, ...]:
    """Literals all of which occur in any matched text; longest first, none redundant."""
    per_branch = [_branch_literals(b) for b in branches]
    common = {
        lit
        for lit in set().union(*per_branch)
        if all(any(lit in other for other in others) for others in per_branch)
    }
    kept = [lit for lit in common if not any(lit != other and lit in other for other in common)]
    return tuple(sorted(kept, key=lambda s: (-len(s), s)))


# -- matching -----------------------------------------------------------------------

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.never_capture = True
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_SURROGATE = re.compile("[\ud800-\udfff]")


def _re2_search(compiled: _re2.RE2) -> Callable[[str], bool]:
    """A fast ``text -> bool`` search on the low-level RE2 object (UTF-8 text)."""
    match = compiled.Match
    unanchored = _UNANCHORED

    def search(text: str) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8.  Every atom treats all code points
            # above U+00FF alike, so U+FFFD stands in for each one exactly.
            data = _SURROGATE.sub("\ufffd", text).encode()
        return match(unanchored, data, 0, len(data))[0][0] >= 0

    return search


def _fixed_string(branch: Branch) -> tuple[bool, str, bool] | None:
    """``(anchored at start, string, anchored at end)`` if ``branch`` is one fixed string."""
    items = list(branch)
    at_start = bool(items) and items[0].kind == "start"
    at_end = len(items) > at_start and items[-1].kind == "end"
    core = items[at_start : len(items) - at_end]
    if any(i.kind != "char" or i.low != i.high for i in core):
        return None
    return at_start, "".join(chr(i.value) * i.low for i in core), at_end


#: Up to this many unanchored fixed-string branches are searched with ``in``;
#: beyond it one RE2 pass is cheaper.
_MAX_SUBSTRING_BRANCHES = 4


def _literal_search(branches: tuple[Branch, ...]) -> Callable[[str], bool] | None:
    """Plain ``str`` operations doing the same search when every branch is a fixed
    string (``abc``, ``^abc``, ``abc$``, ``^abc$``); ``None`` otherwise."""
    contains: list[str] = []
    prefixes: list[str] = []
    suffixes: list[str] = []
    exact: set[str] = set()
    for branch in branches:
        fixed = _fixed_string(branch)
        if fixed is None:
            return None
        at_start, literal, at_end = fixed
        if at_start and at_end:
            exact.add(literal)
        elif at_start:
            prefixes.append(literal)
        elif at_end:
            suffixes.append(literal)
        else:
            contains.append(literal)
    if len(contains) > _MAX_SUBSTRING_BRANCHES:
        return None
    checks: list[Callable[[str], bool]] = []
    if exact:
        checks.append(frozenset(exact).__contains__)
    if prefixes:
        starts = tuple(prefixes)
        checks.append(lambda text: text.startswith(starts))
    if suffixes:
        ends = tuple(suffixes)
        checks.append(lambda text: text.endswith(ends))
    for literal in contains:
        checks.append(_contains(literal))
    if len(checks) == 1:
        return checks[0]
    all_checks = tuple(checks)

    def search(text: str) -> bool:
        for check in all_checks:
            if check(text):
                return True
        return False

    return search


def _contains(literal: str) -> Callable[[str], bool]:
    return lambda text: literal in text


class AwsRegex:
    """A compiled AWS filter-pattern regex (spec §4), made by :func:`compile_regex`.

    Attributes:
        source: the text including the surrounding ``%`` signs, e.g. ``'%ERROR|WARN%'``.
        re2_pattern: the RE2 pattern it was translated to.
        literals: strings that all occur in every text the regex matches (longest
            first; possibly empty), for a cheap ``in`` prefilter before :meth:`search`.

    Instances compare and hash by ``source`` and pickle by recompiling it.
    """

    __slots__ = ("source", "re2_pattern", "literals", "search", "__weakref__")

    def __init__(
        self, source: str, re2_pattern: str, literals: tuple[str, ...], search: Callable[[str], bool]
    ) -> None:
        self.source = source
        self.re2_pattern = re2_pattern
        self.literals = literals
        # search(text) -> bool: True if the regex matches anywhere in ``text`` (any
        # str: newlines, non-ASCII, lone surrogates).  A plain function, so that a
        # call costs no method binding on the per-event path.
        self.search = search

    def __repr__(self) -> str:
        return f"AwsRegex({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AwsRegex) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __reduce__(self):
        return (compile_regex, (self.source, self.source, 0))


def compile_regex(source: str, pattern: str, offset: int) -> AwsRegex:
    """Check and compile one ``%…%`` regex (spec §4).

    Args:
        source: the regex token exactly as written, both ``%`` included.
        pattern: the whole filter pattern, for the error report.
        offset: 0-based index of ``source``'s first ``%`` in ``pattern``.

    Returns:
        An :class:`AwsRegex` whose ``search(text)`` is a linear-time search.

    Raises:
        FilterPatternError: with ``column`` the 1-based column in ``pattern`` of the
            offending character:
            ``Invalid character(s) in term '%…'`` for a character outside the
            allowed set (checked first; the text runs up to that character);
            ``Failed to compile regular expression.`` for a structural error
            (bad escape, class, bound or quantifier; anything RE2 refuses);
            ``Invalid metric filter pattern`` for the empty ``%%``.
        ValueError: ``source`` is not delimited by ``%`` (a caller bug).
    """
    if len(source) < 2 or source[0] != "%" or source[-1] != "%":
        raise ValueError(f"a regex must be written %…%, got {source!r}")
    body = source[1:-1]
    if not body:
        raise FilterPatternError(INVALID_PATTERN, pattern, offset + 1, "a regex between the % signs")
    parser = _Parser(body, pattern, offset)
    parser.check_characters()
    branches = parser.parse()
    re2_pattern = _emit(branches)
    compiled = _re2.RE2(re2_pattern.encode(), _OPTIONS)
    if not compiled.ok():
        raise FilterPatternError(REGEX_COMPILE, pattern, offset + 1, "a smaller regular expression")
    search = _literal_search(branches) or _re2_search(compiled)
    return AwsRegex(source, re2_pattern, _required_literals(branches), search)
