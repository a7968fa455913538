"""Filter pattern text -> typed AST (spec §2-§6), with the service's error messages.

``parse(pattern)`` trims the text, picks the pattern kind from its first character
(§2), takes the tree of a pattern parsed before from :mod:`.tree_cache`, else runs the
LALR parser of ``filter_pattern.lark`` with the transformer built in (:mod:`.lalr`; no
parse tree is materialised), then applies the checks that are not context-free: quotas
(§1, §5.2), duplicate fields (§6.1), characters a bare value may not hold (§5.3).  Every
rejection is a :class:`FilterPatternError` pointing at a column.  The AST-building helpers
the transformer calls live here, so that :func:`parse_selector` needs no parser.
"""

from __future__ import annotations

import re
from typing import Any

from castlewatch.grammar import ast, tree_cache
from castlewatch.grammar.errors import (
    INVALID_PATTERN,
    JSON_UNCLOSED,
    SELECTOR_WILDCARDS,
    TOO_MANY_REGEX,
    TOO_MANY_WILDCARD_SELECTORS,
    FilterPatternError,
    invalid_term,
)

MAX_PATTERN_LENGTH = 1024  # code points (§1, adopted)
MAX_REGEXES = 2  # per pattern (§1)
MAX_WILDCARD_SELECTORS = 3  # per pattern (§5.2)
_BLANK = " \t\n\r\f\v"
# Characters a bare (unquoted) value may not contain (§5.3); non-ASCII too.
_BARE_FORBIDDEN = frozenset("@$\\'[]{")
#: The grammar's SELECTOR terminal as a regular expression (``filter_pattern.lark``; a test
#: checks it against Lark's): :func:`parse_selector` needs no parser.
SELECTOR_PATTERN = r"""\$(?:\.[A-Za-z0-9_-]+|\.?\[(?:[0-9]+|\*|'[^']*'|"[^"]*")\]|\.\*)+"""
_SELECTOR_RE = re.compile(SELECTOR_PATTERN)


class _Reject(Exception):
    """Raised inside the transformer; ``parse`` adds the pattern text."""

    def __init__(self, message: str, pos: int, expected: str = "") -> None:
        super().__init__(message)
        self.message, self.pos, self.expected = message, pos, expected


def _unescape(body: str) -> str:
    r"""Resolve ``\"`` and ``\\``; a backslash before anything else stays (§3.1)."""
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _bare_term_literals(text: str) -> tuple[str, ...]:
    """The substrings a bare term of a term pattern tests for (§3.1, §3.2).

    [adopted] §3.1: a bare term is ONE case-sensitive substring, dots included:
    `notification.id` matches only where that exact text occurs, not `notification` and
    `id` apart.  Accepting dotted terms is [field] (the BARE_TERM terminal of
    ``filter_pattern.lark``); how the service matches them is unrecorded, so this rule
    lives here alone.
    """
    return (text,)


def _value(token: Any) -> ast.Value:
    """A value token (a Lark ``Token`` of type STRING, REGEX, BARE or SD_BARE) -> value node (§5.3)."""
    text, pos = str(token), token.start_pos
    if token.type == "STRING":
        return ast.StringValue.make(_unescape(text[1:-1]), text, pos)
    if token.type == "REGEX":
        return ast.RegexValue(text, pos)
    if len(text) > 1 and text[0] == "'" == text[-1]:  # single quotes are not quotes (§5.1)
        raise _Reject(INVALID_PATTERN, pos, 'a double-quoted value, e.g. "' + text[1:-1] + '"')
    if any(ch in _BARE_FORBIDDEN or ord(ch) > 127 for ch in text):
        raise _Reject(invalid_term(text), pos, 'a quoted value, e.g. "' + text + '"')
    if text == "null":  # `= null` is rejected by the service (§5.1)
        raise _Reject(INVALID_PATTERN, pos, "IS NULL to test for null")
    if ast.NUMBER_RE.fullmatch(text):
        return ast.NumberValue(text, pos)
    return ast.StringValue.make(text, text, pos)


def _check_operator(op: str, value: ast.Value) -> None:
    """Relational operators need a bare number; a regex only goes with = and != (§5.1, §5.3)."""
    if op in ("<", ">", "<=", ">=") and not isinstance(value, ast.NumberValue):
        raw = value.source if isinstance(value, ast.RegexValue) else value.raw
        raise _Reject(invalid_term(raw), value.pos, "a bare number after " + op)


_MAX_INDEX_DIGITS = 18  # an index of more digits is past the end of any array


def _index(digits: str) -> int:
    """A ``[N]`` segment's index (§5.2): any number of digits, never ``int()`` of unbounded
    text (Python refuses more than 4,300 digits); one beyond 10**18 selects nothing, like
    every index past an array's end."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_INDEX_DIGITS else 10**_MAX_INDEX_DIGITS


def _selector(text: str, pos: int) -> ast.Selector:
    segments: list[ast.Segment] = []
    i = 1
    while i < len(text):
        if text.startswith(".*", i):
            segments.append(ast.Wildcard())
            i += 2
        elif text[i] == "." and text[i + 1] != "[":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            segments.append(ast.Key(text[i + 1 : j]))
            i = j
        else:
            if text[i] == ".":
                i += 1
            close = text.index("]", i + 1) if text[i + 1] not in "'\"" else text.index(text[i + 1] + "]", i + 2) + 1
            inner = text[i + 1 : close]
            if inner == "*":
                segments.append(ast.Wildcard())
            elif inner[0] in "'\"":
                segments.append(ast.Key(inner[1:-1]))
            else:
                segments.append(ast.Index(_index(inner)))
            i = close + 1
    selector = ast.Selector(text, tuple(segments), pos)
    if selector.wildcards > 1:
        raise _Reject(SELECTOR_WILDCARDS, pos, "at most one [*] or .* per selector")
    return selector


def parse_selector(text: str) -> ast.Selector | None:
    """A JSON selector such as ``$.a.b[0]`` or ``$.['k.d']`` (§5.2) as an AST node.

    Returns None when ``text`` is not exactly one selector (metric values and
    dimensions use this to tell a reference from a literal, §8.2).  Wildcards are
    allowed here; callers that forbid them check ``Selector.wildcards``.
    """
    if not _SELECTOR_RE.fullmatch(text):  # the grammar's own SELECTOR terminal
        return None
    try:
        return _selector(text, 0)
    except _Reject:
        return None


def _field_conditions(expr: ast.FieldExpr):
    if isinstance(expr, ast.FieldCondition):
        yield expr
    else:
        for item in expr.items:
            yield from _field_conditions(item)


def _json_leaves(expr: ast.JsonExpr):
    if isinstance(expr, (ast.And, ast.Or)):
        for item in expr.items:
            yield from _json_leaves(item)
    else:
        yield expr


def regex_values(tree: ast.Pattern) -> list[ast.RegexValue]:
    """Every ``%…%`` of a pattern, in source order."""
    if isinstance(tree, ast.RegexPattern):
        return [tree.regex]
    if isinstance(tree, ast.JsonPattern):
        leaves = [c.value for c in _json_leaves(tree.expr) if isinstance(c, ast.Comparison)]
    elif isinstance(tree, ast.SpaceDelimitedPattern):
        leaves = [c.value for s in tree.slots if s.condition for c in _field_conditions(s.condition)]
    else:
        return []
    return sorted((v for v in leaves if isinstance(v, ast.RegexValue)), key=lambda v: v.pos)


def parse(pattern: str, cached: bool = True) -> ast.Pattern:
    """Parse a filter pattern into its AST (spec §2-§6).

    Args:
        pattern: the ``filterPattern`` as sent to the service (0-1024 code points).
        cached: take the tree of a pattern parsed before from the tree cache
            (:mod:`castlewatch.grammar.tree_cache`); False parses it again (``bench``
            times the parser itself).

    Returns:
        one of :class:`~castlewatch.grammar.ast.MatchAll`, ``TermPattern``,
        ``RegexPattern``, ``JsonPattern``, ``SpaceDelimitedPattern``.

    Raises:
        FilterPatternError: for every pattern the service rejects, with the service's
            message (§11) and the column of the problem.  Regex bodies are checked
            later, by the compiler (:mod:`castlewatch.grammar.regex`).
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise FilterPatternError(
            f"1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PATTERN_LENGTH}",
            pattern,
            MAX_PATTERN_LENGTH + 1,
            f"at most {MAX_PATTERN_LENGTH} characters",
        )
    text = pattern.strip(_BLANK)
    if not text:
        return ast.MatchAll()
    first = text[0]
    if first == "{":
        start = "json_pattern"
        if not text.endswith("}"):
            raise FilterPatternError(JSON_UNCLOSED, pattern, len(pattern.rstrip(_BLANK)), "'}' at the end")
    elif first == "[":
        start = "sd_pattern"
        if not text.endswith("]"):
            raise FilterPatternError(INVALID_PATTERN, pattern, len(pattern.rstrip(_BLANK)), "']' at the end")
    elif first == "%":
        start = "regex_pattern"
    else:
        start = "term_pattern"
    tree = tree_cache.get(pattern) if cached else None
    if tree is not None:
        return tree
    from castlewatch.grammar import lalr

    tree = lalr.parse_tree(pattern, start)
    _check_quotas(pattern, tree)
    tree_cache.put(pattern, tree)
    return tree


def _check_quotas(pattern: str, tree: ast.Pattern) -> None:
    """Per-pattern quotas: 2 regexes (§1), 3 wildcard selectors (§5.2)."""
    regexes = regex_values(tree)
    if len(regexes) > MAX_REGEXES:
        raise FilterPatternError(TOO_MANY_REGEX, pattern, regexes[MAX_REGEXES].pos + 1, "at most 2 %regex% values")
    if isinstance(tree, ast.JsonPattern):
        wild = [leaf.selector for leaf in _json_leaves(tree.expr) if leaf.selector.wildcards]
        if len(wild) > MAX_WILDCARD_SELECTORS:
            raise FilterPatternError(
                TOO_MANY_WILDCARD_SELECTORS,
                pattern,
                wild[MAX_WILDCARD_SELECTORS].pos + 1,
                "at most 3 selectors with a wildcard",
            )
