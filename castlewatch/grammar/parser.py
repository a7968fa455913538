"""Filter pattern text -> typed AST (spec §2-§6), with the service's error messages.

``parse(pattern)`` trims the text, picks the pattern kind from its first character
(§2), runs the LALR parser of ``filter_pattern.lark`` with the transformer built in
(no parse tree is materialised), then applies the checks that are not context-free:
quotas (§1, §5.2), duplicate fields (§6.1), characters a bare value may not hold
(§5.3).  Every rejection is a :class:`FilterPatternError` pointing at a column.
"""

from __future__ import annotations

import os
import re

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from castlewatch.grammar import ast
from castlewatch.grammar.errors import (
    INVALID_PATTERN,
    JSON_UNCLOSED,
    SELECTOR_WILDCARDS,
    TOO_MANY_REGEX,
    TOO_MANY_WILDCARD_SELECTORS,
    FilterPatternError,
    duplicate_field,
    invalid_term,
)

MAX_PATTERN_LENGTH = 1024  # code points (§1, adopted)
MAX_REGEXES = 2  # per pattern (§1)
MAX_WILDCARD_SELECTORS = 3  # per pattern (§5.2)
_BLANK = " \t\n\r\f\v"
# Characters a bare (unquoted) value may not contain (§5.3); non-ASCII too.
_BARE_FORBIDDEN = frozenset("@$\\'[]{")


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


def _value(token: Token) -> ast.Value:
    """A value token (STRING, REGEX, BARE or SD_BARE) -> value node (§5.3)."""
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


def _check_operator(op: Token, value: ast.Value) -> None:
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


def _selector(token: Token) -> ast.Selector:
    text, pos = str(token), token.start_pos
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
        return _selector(Token("SELECTOR", text, start_pos=0))
    except _Reject:
        return None


@v_args(inline=True)
class _ToAst(Transformer):
    """Builds :mod:`castlewatch.grammar.ast` nodes straight from the LALR callbacks."""

    # terms (§3)
    def term_pattern(self, *tokens: Token) -> ast.TermPattern:
        terms = []
        for tok in tokens:
            text, role = str(tok), "required"
            if text[0] in "?-":
                role = "optional" if text[0] == "?" else "excluded"
                text = text[1:]
            if text.startswith('"'):
                if text == '""':  # the caret goes to the quote, after any prefix (§3.1)
                    pos = tok.start_pos + len(tok) - len(text)
                    raise _Reject(invalid_term('""'), pos, "a non-empty phrase")
                terms.append(ast.Term(_unescape(text[1:-1]), role, tok.start_pos))
            else:
                terms.extend(ast.Term(literal, role, tok.start_pos) for literal in _bare_term_literals(text))
        return ast.TermPattern(tuple(terms))

    def regex_pattern(self, token: Token) -> ast.RegexPattern:
        return ast.RegexPattern(ast.RegexValue(str(token), token.start_pos))

    # JSON (§5)
    def json_pattern(self, expr: ast.JsonExpr) -> ast.JsonPattern:
        return ast.JsonPattern(expr)

    def json_or(self, *items: ast.JsonExpr) -> ast.Or:
        return ast.Or(items)

    def json_and(self, *items: ast.JsonExpr) -> ast.And:
        return ast.And(items)

    def json_compare(self, selector: Token, op: Token, value: ast.Value) -> ast.Comparison:
        _check_operator(op, value)
        return ast.Comparison(_selector(selector), str(op), value)

    def json_is(self, selector: Token, _kw: Token, constant: Token) -> ast.IsCheck:
        return ast.IsCheck(_selector(selector), str(constant))  # type: ignore[arg-type]

    def json_not_exists(self, selector: Token, _kw: Token, _kw2: Token) -> ast.NotExists:
        return ast.NotExists(_selector(selector))

    def value(self, token: Token) -> ast.Value:
        return _value(token)

    sd_value = value

    # space-delimited (§6)
    def sd_pattern(self, *slots: ast.Slot) -> ast.SpaceDelimitedPattern:
        if len(slots) == 1 and slots[0].kind == "empty":
            slots = ()  # `[]`: no slots, every field extracted (§6.1)
        seen: set[str] = set()
        for slot in slots:
            key = "..." if slot.kind == "ellipsis" else slot.name
            if key is None:
                continue
            if key in seen:
                raise _Reject(duplicate_field(key), slot.pos, "each field name once, one '...'")
            seen.add(key)
        return ast.SpaceDelimitedPattern(slots)

    def sd_empty(self) -> ast.Slot:
        return ast.Slot("empty", None, None, -1)

    def sd_ellipsis(self, token: Token) -> ast.Slot:
        return ast.Slot("ellipsis", None, None, token.start_pos)

    def sd_named(self, token: Token) -> ast.Slot:
        return ast.Slot("named", str(token), None, token.start_pos)

    def sd_slot(self, expr: ast.FieldExpr) -> ast.Slot:
        """A slot with conditions, grouped or not (§6.1): all must name one field, the
        first condition's; naming another is "Invalid metric filter pattern"."""
        first = expr
        while not isinstance(first, ast.FieldCondition):
            first = first.items[0]
        for cond in _field_conditions(expr):
            if cond.field != first.field:
                raise _Reject(INVALID_PATTERN, cond.pos, f"conditions on '{first.field}' only in this slot")
        return ast.Slot("named", first.field, expr, first.pos)

    def sd_or(self, *items: ast.FieldExpr) -> ast.FieldOr:
        return ast.FieldOr(items)

    def sd_and(self, *items: ast.FieldExpr) -> ast.FieldAnd:
        return ast.FieldAnd(items)

    def sd_condition(self, field: Token, op: Token, value: ast.Value) -> ast.FieldCondition:
        _check_operator(op, value)
        return ast.FieldCondition(str(field), str(op), value, field.start_pos)


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


def _cache_file() -> str | bool:
    """Where Lark keeps the analysed grammar between processes (its ``cache`` option: the
    LALR tables in a file whose first line is the SHA-256 of the grammar and the options,
    checked on load, rebuilt on a mismatch): a file of the user's cache directory
    (``$XDG_CACHE_HOME``, else ``~/.cache``), never a shared temporary one; False (no
    cache) when there is no home. Start-up is about 30 ms shorter with it (issue 11)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return False
    folder = os.path.join(base, "castlewatch")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.path.join(folder, f"filter_pattern.lark-{lark.__version__}.cache")


_LARK = Lark.open(
    "filter_pattern.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    start=["term_pattern", "regex_pattern", "json_pattern", "sd_pattern"],
    transformer=_ToAst(),
    maybe_placeholders=False,
    cache=_cache_file(),
)
_SELECTOR_RE = re.compile(_LARK.get_terminal("SELECTOR").pattern.to_regexp())

# Human names for what the parser expected, for the caret message.
_EXPECTED_NAMES = {
    "TERM": "a term (letters, digits, _ and .) or a quoted phrase",
    "SELECTOR": "a selector such as $.eventName",
    "OP": "an operator (= != < > <= >=)",
    "KW_IS": "IS",
    "KW_NOT": "NOT",
    "KW_EXISTS": "EXISTS",
    "KW_CONSTANT": "NULL, TRUE or FALSE",
    "STRING": "a quoted value",
    "BARE": "a value",
    "SD_BARE": "a value",
    "REGEX": "a %regex%",
    "FIELD": "a field name",
    "ELLIPSIS": "...",
    "LPAR": "(",
    "RPAR": ")",
    "RBRACE": "}",
    "RSQB": "]",
    "COMMA": ",",
    "_AND": "&&",
    "_OR": "||",
    "LBRACE": "{",
    "LSQB": "[",
    "$END": "end of pattern",
}


def _expected(names) -> str:
    shown = sorted({_EXPECTED_NAMES.get(n, n) for n in names})
    return " or ".join(shown)


def _past_prefix(pattern: str, pos: int) -> int:
    """Where the offending text of a rejected term item starts (§3.1).

    §3.1: "An item is an optional prefix `?` (optional term) or `-` (excluded term),
    then" a bare term or a quoted phrase; the message quotes "<text from the quote to
    the end>" for an unterminated quote and "<text from that character to the next
    whitespace>" for "A character that starts neither form".  So after a prefix the
    quoted text (and the caret) start at the quote or at that character, not at the
    prefix: `-"abc def` gives '"abc def', `?*` gives '*'.  A prefix followed by
    whitespace or the end ("A prefix with no term after it") is itself the offence.
    """
    if pattern[pos] in "?-" and pos + 1 < len(pattern) and pattern[pos + 1] not in _BLANK:
        return pos + 1
    return pos


def _term_text(pattern: str, pos: int) -> str:
    """The 'term' the service quotes for a bad character (§3.1)."""
    if pattern[pos] == '"':
        return pattern[pos:].rstrip(_BLANK)
    end = pos
    while end < len(pattern) and pattern[end] not in _BLANK:
        end += 1
    return pattern[pos:end]


def _syntax_error(pattern: str, start: str, err: UnexpectedInput) -> FilterPatternError:
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        pos = len(pattern.rstrip(_BLANK)) - 1
        expected = getattr(err, "expected", None) or ()
    elif isinstance(err, UnexpectedToken):
        pos, expected = err.token.start_pos, err.expected
    else:
        pos, expected = err.pos_in_stream, err.allowed or ()
    if start == "term_pattern":
        pos = _past_prefix(pattern, pos)
        message = invalid_term(_term_text(pattern, pos))
    elif (
        start == "json_pattern"
        and isinstance(err, UnexpectedToken)
        and "KW_CONSTANT" in expected
        and str(err.token) == "NOT"
    ):
        # §5.1: "Rejections, "Invalid metric filter pattern" unless stated", and the one
        # stated exception after IS is "`IS NOT NULL` ("Invalid character(s) in term
        # 'NOT'")".  Any other token after IS (`}`, `&&`, `(`, `1`, `null`, …) takes
        # the default message below.
        message = invalid_term("NOT")
    else:
        message = INVALID_PATTERN
    return FilterPatternError(message, pattern, pos + 1, _expected(expected))


def parse(pattern: str) -> ast.Pattern:
    """Parse a filter pattern into its AST (spec §2-§6).

    Args:
        pattern: the ``filterPattern`` as sent to the service (0-1024 code points).

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
    try:
        tree = _LARK.parse(pattern, start=start)
    except UnexpectedInput as err:
        raise _syntax_error(pattern, start, err) from None
    except (_Reject, VisitError) as err:
        reject = err.orig_exc if isinstance(err, VisitError) else err
        if not isinstance(reject, _Reject):
            raise
        raise FilterPatternError(reject.message, pattern, reject.pos + 1, reject.expected) from None
    _check_quotas(pattern, tree)
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
