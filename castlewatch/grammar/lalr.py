"""The LALR parser of ``filter_pattern.lark`` (Lark), with the transformer that builds the
AST in the parser's callbacks, and the service's messages for syntax errors (spec §11).

Imported by :func:`castlewatch.grammar.parser.parse` only for a pattern not in the tree
cache (:mod:`castlewatch.grammar.tree_cache`), so that a process whose patterns were all
parsed before does not import Lark (about 40 ms of start-up, issue 11).
"""

from __future__ import annotations

import os

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from castlewatch.grammar import ast, tree_cache
from castlewatch.grammar.errors import INVALID_PATTERN, FilterPatternError, duplicate_field, invalid_term
from castlewatch.grammar.parser import (
    _BLANK,
    _bare_term_literals,
    _check_operator,
    _field_conditions,
    _Reject,
    _selector,
    _unescape,
    _value,
)


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
        return ast.Comparison(_selector(str(selector), selector.start_pos), str(op), value)

    def json_is(self, selector: Token, _kw: Token, constant: Token) -> ast.IsCheck:
        return ast.IsCheck(_selector(str(selector), selector.start_pos), str(constant))  # type: ignore[arg-type]

    def json_not_exists(self, selector: Token, _kw: Token, _kw2: Token) -> ast.NotExists:
        return ast.NotExists(_selector(str(selector), selector.start_pos))

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


def _cache_file() -> str | bool:
    """Where Lark keeps the analysed grammar between processes (its ``cache`` option: the
    LALR tables in a file whose first line is the SHA-256 of the grammar and the options,
    checked on load, rebuilt on a mismatch): a file of the user's cache directory
    (:func:`~castlewatch.grammar.tree_cache.cache_folder`), never a shared temporary one;
    False (no cache) when there is none. Start-up is about 30 ms shorter with it (issue 11)."""
    folder = tree_cache.cache_folder()
    if folder is None:
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


def parse_tree(pattern: str, start: str) -> ast.Pattern:
    """``pattern`` parsed from the grammar's ``start`` rule into its AST.

    Raises:
        FilterPatternError: a syntax error or a rejection made while building the AST,
            with the service's message and the column.
    """
    try:
        return _LARK.parse(pattern, start=start)
    except UnexpectedInput as err:
        raise _syntax_error(pattern, start, err) from None
    except (_Reject, VisitError) as err:
        reject = err.orig_exc if isinstance(err, VisitError) else err
        if not isinstance(reject, _Reject):
            raise
        raise FilterPatternError(reject.message, pattern, reject.pos + 1, reject.expected) from None


def selector_regexp() -> str:
    """The regular expression of the grammar's SELECTOR terminal (a test checks that
    :data:`castlewatch.grammar.parser.SELECTOR_PATTERN` is it)."""
    return _LARK.get_terminal("SELECTOR").pattern.to_regexp()
