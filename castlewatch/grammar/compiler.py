"""AST -> fast matcher (spec §3-§6).

A compiled :class:`FilterPattern` is a bundle of closures specialised for its
pattern, so that the per-event path does only what the pattern needs:

- term patterns are ``in`` tests on the raw message;
- JSON and space-delimited patterns first test the literals the pattern cannot
  match without (a *prefilter* on the raw message), then decode JSON once with
  orjson, or split fields once with a regex;
- regular expressions run on RE2 (:mod:`castlewatch.grammar.regex`), linear time.

JSON numbers keep their source text (§5.4): orjson gives ``int``/``float``, and the
rare condition that must compare a float's text (``{ $.v = "1.50" }`` against
``1.50``, or a float within one unit of a number literal, where the rounding may hide
the exact answer) asks for it by raising :class:`_NeedText`; the event is then decoded
once more with the standard library, numbers kept as text, and evaluated again.
Number comparisons are exact and never build the number
(:mod:`castlewatch.grammar.numbers`).
"""

from __future__ import annotations

import json
import operator
import re
from typing import Any, Callable

import orjson

from castlewatch.grammar import ast
from castlewatch.grammar import literals as _lit
from castlewatch.grammar.numbers import NumberLiteral
from castlewatch.grammar.regex import compile_regex

Predicate = Callable[[Any], bool]

MISSING = object()  # what a selector path yields when it selects nothing
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_BLANK = " \t\n\r\f\v"
_RELATIONAL = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
_NUMERIC = {**_RELATIONAL, "=": operator.eq}  # the comparisons of _json_number_test


# ---- JSON documents (§5.4) ---------------------------------------------------------------


class RawNumber(str):
    """A JSON number kept as its source text (standard-library decode path)."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def decode_json_event_exact(message: str) -> dict | None:
    """Like :func:`decode_json_event`, but every number is a :class:`RawNumber` holding its
    source text (§5.4: numbers keep their source text); the slow path, for the rare
    condition or dimension that needs a float's text.  None if not a JSON object."""
    try:
        doc = json.loads(message, parse_int=RawNumber, parse_float=RawNumber, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return doc if type(doc) is dict else None


def decode_json_event(message: str) -> dict | None:
    """Decode a log event message as a JSON object, as a JSON pattern sees it (§5.4).

    Returns the object (numbers as ``int``/``float``, or :class:`RawNumber` when orjson
    cannot represent them), or None when the message is not a JSON object: plain
    text, truncated JSON, a top-level array or scalar, text before the JSON, NaN,
    documents deeper than the decoders allow.  Duplicate keys: the last one wins.
    """
    try:
        doc = orjson.loads(message)
    except orjson.JSONDecodeError:
        text = message.strip(_BLANK)
        if not (text.startswith("{") and text.endswith("}")):
            return None
        return decode_json_event_exact(message)  # e.g. lone surrogate escapes orjson refuses
    return doc if type(doc) is dict else None


class _NeedText(Exception):
    """A condition needs the source text of a number that orjson decoded to a float."""


_NEED_TEXT = _NeedText()


def _number_text(node: Any) -> str:
    kind = type(node)
    if kind is RawNumber:
        return str.__str__(node)
    if kind is int and node:  # the text of a non-zero JSON integer is its repr; "-0" is not
        return repr(node)
    raise _NEED_TEXT


def _json_number_test(op: str, literal: NumberLiteral) -> Predicate:
    """``node -> bool``: the node is a JSON number and ``node op literal`` holds, exactly
    (§5.4: "numbers keep their source text"; see :mod:`castlewatch.grammar.numbers`).

    orjson's integers are exact; its floats may have rounded the source text (and it
    decodes integers beyond 64 bits to floats), so a float too close to the literal to
    decide raises :class:`_NeedText` and the event is read again with numbers as text
    (:class:`RawNumber`).  A number with a huge exponent or thousands of digits costs
    time linear in its text, never more.
    """
    compare = _NUMERIC[op]
    integer, compare_int = literal.integer, literal.compare_int
    compare_float, compare_text = literal.compare_float, literal.compare_text

    def test(node: Any) -> bool:
        kind = type(node)
        if kind is int:  # not bool: type() is exact
            return compare(node, integer) if integer is not None else compare(compare_int(node), 0)
        if kind is float:
            order = compare_float(node)
            if order is None:
                raise _NEED_TEXT
            return compare(order, 0)
        if kind is RawNumber:
            return compare(compare_text(node), 0)
        return False

    return test


def _string_predicate(value: ast.StringValue) -> Callable[[str], bool]:
    """``str -> bool`` for a string literal under the wildcard rules (§5.3)."""
    core = value.core
    if value.wildcard == "any":
        return lambda s: True
    if value.wildcard == "prefix":
        return lambda s: s.startswith(core)
    if value.wildcard == "suffix":
        return lambda s: s.endswith(core)
    if value.wildcard == "contains":
        return lambda s: core in s
    return core.__eq__


def _json_equals(value: ast.Value, pattern: str) -> Predicate:
    """``node -> bool`` for ``= value`` (§5.4 table)."""
    if isinstance(value, ast.NumberValue):
        text, numeric = value.text, _json_number_test("=", value.number)

        def equals(node: Any) -> bool:
            return node == text if type(node) is str else numeric(node)

        return equals
    if isinstance(value, ast.RegexValue):
        return _on_text(compile_regex(value.source, pattern, value.pos).search)
    matches = _string_predicate(value)
    if value.wildcard == "any":
        return lambda node: type(node) in (str, int, float, RawNumber)
    if not set(value.core) <= _NUMBER_CHARS:  # no number's text can match: skip numbers
        return lambda node: type(node) is str and matches(node)
    return _on_text(matches)


def _on_text(test: Callable[[str], bool]) -> Predicate:
    """``node -> bool``: ``test`` on a string, or on a number's source text (§5.4)."""

    def on_text(node: Any) -> bool:
        kind = type(node)
        if kind is str:
            return test(node)
        if kind is int or kind is float or kind is RawNumber:
            return test(_number_text(node))
        return False

    return on_text


def _json_test(leaf: ast.Comparison | ast.IsCheck, pattern: str) -> Predicate:
    """``node -> bool`` for one condition (§5.4)."""
    if isinstance(leaf, ast.IsCheck):
        if leaf.constant == "TRUE":
            return lambda node: node is True
        if leaf.constant == "FALSE":
            return lambda node: node is False
        return lambda node: node is None or (type(node) is list and None in node)
    op, value = leaf.op, leaf.value
    if op in _RELATIONAL:
        return _json_number_test(op, value.number)  # type: ignore[union-attr]
    equals = _json_equals(value, pattern)
    if op == "=":
        return equals
    return lambda node: type(node) in (str, int, float, RawNumber) and not equals(node)


def path_getter(segments: tuple[ast.Segment, ...]) -> Callable[[Any], Any]:
    """``node -> node or MISSING`` for a wildcard-free path of Key/Index segments (§5.2)."""
    steps = tuple((isinstance(s, ast.Key), s.name if isinstance(s, ast.Key) else s.index) for s in segments)
    if len(steps) == 1 and steps[0][0]:
        key = steps[0][1]

        def get_one(node: Any) -> Any:
            return node.get(key, MISSING) if type(node) is dict else MISSING

        return get_one

    def get(node: Any) -> Any:
        for is_key, step in steps:
            if is_key:
                if type(node) is not dict:
                    return MISSING
                node = node.get(step, MISSING)
                if node is MISSING:
                    return MISSING
            elif type(node) is list and step < len(node):
                node = node[step]
            else:
                return MISSING
        return node

    return get


def _nodes_getter(selector: ast.Selector) -> Callable[[dict], list]:
    """``doc -> [nodes]`` for a selector with one wildcard (§5.2)."""
    segments = selector.segments
    cut = next(i for i, s in enumerate(segments) if isinstance(s, ast.Wildcard))
    head, tail = path_getter(segments[:cut]), path_getter(segments[cut + 1 :])
    no_tail = cut == len(segments) - 1

    def nodes(doc: dict) -> list:
        parent = head(doc) if cut else doc
        if type(parent) is dict:
            children = list(parent.values())
        elif type(parent) is list:
            children = parent
        else:
            return []
        if no_tail:
            return children
        return [n for n in map(tail, children) if n is not MISSING]

    return nodes


def _json_condition(leaf: ast.Comparison | ast.IsCheck | ast.NotExists, pattern: str) -> Predicate:
    """``doc -> bool`` for one condition: true if any selected node satisfies it."""
    selector = leaf.selector
    if selector.wildcards:
        nodes = _nodes_getter(selector)
        if isinstance(leaf, ast.NotExists):
            return lambda doc: not nodes(doc)
        test = _json_test(leaf, pattern)
        return lambda doc: any(map(test, nodes(doc)))
    get = path_getter(selector.segments)
    if isinstance(leaf, ast.NotExists):
        return lambda doc: get(doc) is MISSING
    test = _json_test(leaf, pattern)

    def condition(doc: dict) -> bool:
        node = get(doc)
        return node is not MISSING and test(node)

    return condition


def _json_expr(expr: ast.JsonExpr, pattern: str) -> Predicate:
    if isinstance(expr, (ast.And, ast.Or)):
        parts = tuple(_json_expr(item, pattern) for item in expr.items)
        if isinstance(expr, ast.And):
            if len(parts) == 2:
                a, b = parts
                return lambda doc: a(doc) and b(doc)
            return lambda doc: all(p(doc) for p in parts)
        if len(parts) == 2:
            a, b = parts
            return lambda doc: a(doc) or b(doc)
        return lambda doc: any(p(doc) for p in parts)
    return _json_condition(expr, pattern)


# ---- prefilter: literals a match needs in the raw message ------------------------------------
#
# A requirement is None (nothing needed), a str (that substring), or a tuple
# ("all"|"any", [requirements]).


def _json_safe(literal: str) -> bool:
    """True if a decoded JSON string holding ``literal`` must show it verbatim in the raw
    text, unless the raw text uses ``\\u`` escapes: no character JSON may escape."""
    return bool(literal) and not any(ch in '"\\/' or ch < " " for ch in literal)


def _flatten(mode: str, reqs: list) -> list:
    out: list = []
    for r in reqs:
        parts = r[1] if isinstance(r, tuple) and r[0] == mode else [r]
        out.extend(p for p in parts if p not in out)
    return out


def _all(reqs: list) -> Any:
    reqs = _flatten("all", [r for r in reqs if r is not None])
    return None if not reqs else reqs[0] if len(reqs) == 1 else ("all", reqs)


def _any(reqs: list) -> Any:
    if not reqs or any(r is None for r in reqs):
        return None
    reqs = _flatten("any", reqs)
    return reqs[0] if len(reqs) == 1 else ("any", reqs)


def _value_literals(value: ast.Value, pattern: str, json_text: bool) -> list:
    """Literals an ``=`` match with ``value`` needs in the raw message.

    With ``json_text`` (JSON patterns), a string value's literal carries the JSON quotes
    it must have, and only literals that a JSON string shows verbatim are given (no
    ``"``, ``\\``, ``/`` or control character, which JSON may escape).
    """
    safe = _json_safe if json_text else bool
    if isinstance(value, ast.RegexValue):
        return [lit for lit in compile_regex(value.source, pattern, value.pos).literals if safe(lit)]
    if isinstance(value, ast.NumberValue) or value.wildcard == "any" or not value.core:
        return []
    core, mode = value.core, value.wildcard
    if not safe(core):
        return []
    quote = '"' if json_text and not set(core) <= _NUMBER_CHARS else ""  # a number's text has no quotes
    if mode == "exact":
        return [quote + core + quote]
    if mode == "prefix":
        return [quote + core]
    if mode == "suffix":
        return [core + quote]
    return [core]


def _json_requirement(expr: ast.JsonExpr, pattern: str) -> Any:
    """The literal(s) a JSON condition tree needs in the raw message.

    A condition needs its value's literal when it has a safe one (more selective than
    the key, which most events of a log group carry), else its last key's ``"name"``.
    """
    if isinstance(expr, ast.And):
        return _all([_json_requirement(e, pattern) for e in expr.items])
    if isinstance(expr, ast.Or):
        return _any([_json_requirement(e, pattern) for e in expr.items])
    if isinstance(expr, ast.NotExists):
        return None
    keys = [s.name for s in expr.selector.segments if isinstance(s, ast.Key)]
    key = '"' + keys[-1] + '"' if keys and _json_safe(keys[-1]) else None
    if isinstance(expr, ast.IsCheck):
        return _all([key, expr.constant.lower()])
    if expr.op == "=":
        values = _value_literals(expr.value, pattern, json_text=True)
        if values:
            return max(values, key=len)
    return key


def _field_requirement(expr: ast.FieldExpr, pattern: str) -> Any:
    if isinstance(expr, ast.FieldAnd):
        return _all([_field_requirement(e, pattern) for e in expr.items])
    if isinstance(expr, ast.FieldOr):
        return _any([_field_requirement(e, pattern) for e in expr.items])
    return _all(_value_literals(expr.value, pattern, json_text=False) if expr.op == "=" else [])


def _requirement_predicate(req: Any) -> Callable[[str], bool] | None:
    """Compile a requirement to ``message -> bool`` (None when nothing is required)."""
    if req is None:
        return None
    if isinstance(req, str):
        return _lit.literals((req,), (), ())
    mode, parts = req
    if all(isinstance(p, str) for p in parts):
        if mode == "all":
            return _lit.literals(tuple(parts), (), ())
        return _lit.literals((), (), tuple(parts))
    preds = [_requirement_predicate(p) for p in parts]
    if mode == "all":
        return lambda message: all(p(message) for p in preds)
    return lambda message: any(p(message) for p in preds)


# ---- space-delimited fields (§6.2-§6.4) --------------------------------------------------------

_PLAIN_FIELD = re.compile(r"[^ \t\n\r\f\v]+")
_FIELD = re.compile(r'"([^"]*)"|\[([^\]]*)\]|([^ \t\n\r\f\v]+)')
_FIELD_START = re.compile(r"[^ \t\n\r\f\v]")


def split_fields(message: str) -> list[str]:
    """The fields of a log event for a space-delimited pattern (§6.2).

    Runs of spaces, tabs, CR, LF, FF and VT separate fields; ``"…"`` and ``[…]`` make
    one field without their delimiters; an unclosed ``"`` or ``[`` is literal.  Linear
    time in the length of the message, whatever it holds (see :func:`_field_spans`).
    """
    fields = _lit.plain_split(message)  # str.split() when that is exact (the usual case)
    if fields is not None:
        return fields
    if '"' not in message and "[" not in message:
        return _PLAIN_FIELD.findall(message)
    if not _unclosed_bracket(message):
        return [a or b or c for a, b, c in _FIELD.findall(message)]
    return [message[start + skip : end - skip] for start, end, skip in _field_spans(message)]


def _unclosed_bracket(message: str) -> bool:
    """Whether a ``[`` comes after the last ``]``.  Only then can a field start with a ``[``
    that no ``]`` closes, and :data:`_FIELD` would scan the rest of the message for one at
    each such ``[`` (time quadratic in the length of ``[ [ [ …``)."""
    return message.rfind("[") > message.rfind("]")


def _field_spans(message: str) -> list[tuple[int, int, int]]:
    """``(start, end, delimiter)`` of each field, as :data:`_FIELD` splits (§6.2), in time
    linear in the length of the message: a ``[`` after the last ``]`` is known to be
    unclosed without a search.  ``delimiter`` is 1 for a ``"…"`` or ``[…]`` field (the
    value is ``message[start + 1 : end - 1]``), 0 otherwise."""
    spans = []
    last_close = message.rfind("]")
    find, start_at, plain = message.find, _FIELD_START.search, _PLAIN_FIELD.match
    i = 0
    while (m := start_at(message, i)) is not None:
        start = m.start()
        opener = message[start]
        close = -1
        if opener == '"':
            close = find('"', start + 1)  # a "-field is unclosed only if no " follows: once
        elif opener == "[" and start < last_close:
            close = find("]", start + 1)
        if close >= 0:
            spans.append((start, close + 1, 1))
            i = close + 1
        else:
            i = plain(message, start).end()
            spans.append((start, i, 0))
    return spans


def _tail(message: str, first: int) -> str:
    """Raw text from the start of field ``first`` (0-based) to the end of the last field."""
    if _unclosed_bracket(message):
        spans = _field_spans(message)
        return message[spans[first][0] : spans[-1][1]]
    spans = [m.span() for m in _FIELD.finditer(message)]
    return message[spans[first][0] : spans[-1][1]]


def _field_test(expr: ast.FieldExpr, pattern: str) -> Callable[[str], bool]:
    """``field value -> bool`` for a slot's conditions (§6.4)."""
    if isinstance(expr, (ast.FieldAnd, ast.FieldOr)):
        parts = tuple(_field_test(e, pattern) for e in expr.items)
        if isinstance(expr, ast.FieldAnd):
            return lambda v: all(p(v) for p in parts)
        return lambda v: any(p(v) for p in parts)
    op, value = expr.op, expr.value
    numeric = ast.NUMBER_RE.fullmatch
    if op in _RELATIONAL:  # exact, linear in the field's length (castlewatch.grammar.numbers)
        compare, compare_text = _RELATIONAL[op], value.number.compare_text  # type: ignore[union-attr]
        return lambda v: numeric(v) is not None and compare(compare_text(v), 0)
    if isinstance(value, ast.RegexValue):
        equals = compile_regex(value.source, pattern, value.pos).search
    elif isinstance(value, ast.NumberValue):
        compare_text, text = value.number.compare_text, value.text

        def equals(v: str) -> bool:
            return compare_text(v) == 0 if numeric(v) else v == text

    else:
        equals = _string_predicate(value)
    if op == "=":
        return equals
    return lambda v: not equals(v)


# ---- the compiled pattern ------------------------------------------------------------------------


class FilterPattern:
    """A compiled filter pattern: compile once with :func:`castlewatch.compile_pattern`,
    then call :meth:`matches` / :meth:`extract` on any number of log events.

    Attributes:
        filter_pattern: the pattern text as given.
        kind: ``"all"``, ``"terms"``, ``"regex"``, ``"json"`` or ``"space_delimited"`` (§2).
        tree: the typed AST (:mod:`castlewatch.grammar.ast`).
        prefilter: ``message -> bool``, a cheap necessary condition on the raw message,
            or None when the pattern needs no literal.
        requirement: the literals behind ``prefilter``: None, a literal ``str``, or
            ``("all" | "any", [requirement, ...])``.  For JSON patterns it holds only
            for messages without ``\\u`` escapes (``prefilter`` lets those through).
            Engines use it to test the literals of many patterns in one pass.
        matches: ``message -> bool``, True if the log event message matches (§3-§6).
    """

    __slots__ = (
        "filter_pattern",
        "kind",
        "tree",
        "prefilter",
        "requirement",
        "matches",
        "_extract",
        "_doc_match",
        "_slots",
    )

    def __init__(self, filter_pattern: str, tree: ast.Pattern) -> None:
        self.filter_pattern = filter_pattern
        self.tree = tree
        self.prefilter: Callable[[str], bool] | None = None
        self.requirement: Any = None
        if isinstance(tree, ast.MatchAll):
            self.kind = "all"
            self.matches = lambda message: True
        elif isinstance(tree, ast.TermPattern):
            self.kind = "terms"
            self.matches = _terms_matcher(tree)
        elif isinstance(tree, ast.RegexPattern):
            self.kind = "regex"
            rx = compile_regex(tree.regex.source, filter_pattern, tree.regex.pos)
            self.requirement = _all(list(rx.literals))
            self.prefilter = _requirement_predicate(self.requirement)
            search, pre = rx.search, self.prefilter
            self.matches = search if pre is None else (lambda message: pre(message) and search(message))
        elif isinstance(tree, ast.JsonPattern):
            self.kind = "json"
            self._compile_json(tree)
        else:
            self.kind = "space_delimited"
            self._compile_space_delimited(tree)

    # -- public API (``matches`` is an instance attribute: a closure specialised at compile time) --

    def extract(self, message: str) -> dict[str, str] | None:
        """The ``extractedValues`` of a match, or None when the message does not match.

        Term, regex and JSON patterns always give ``{}``; space-delimited patterns give
        ``$name`` and ``$N`` entries (§6.5).  Values are strings.
        """
        if self.kind == "space_delimited":
            return self._extract(message)
        return {} if self.matches(message) else None

    def __repr__(self) -> str:
        return f"FilterPattern({self.filter_pattern!r}, kind={self.kind!r})"

    # -- JSON --

    def _compile_json(self, tree: ast.JsonPattern) -> None:
        evaluate = _json_expr(tree.expr, self.filter_pattern)
        self.requirement = _json_requirement(tree.expr, self.filter_pattern)
        pre = _requirement_predicate(self.requirement)
        if pre is not None:
            required = pre
            pre = lambda message: required(message) or "\\u" in message  # noqa: E731
        self.prefilter = pre

        def match_document(doc: dict, message: str) -> bool:
            try:
                return evaluate(doc)
            except _NeedText:
                raw = decode_json_event_exact(message)
                return raw is not None and evaluate(raw)

        self._doc_match = match_document

        def matches(message: str) -> bool:
            if pre is not None and not pre(message):
                return False
            doc = decode_json_event(message)
            return doc is not None and match_document(doc, message)

        self.matches = matches

    def match_document(self, doc: dict, message: str) -> bool:
        """Evaluate a JSON pattern on an already decoded event (:func:`decode_json_event`).

        For engines that decode each event once for many patterns; ``message`` is the
        raw text, needed only in the rare case of comparing a float's source text.
        """
        return self._doc_match(doc, message)

    # -- space-delimited --

    def _compile_space_delimited(self, tree: ast.SpaceDelimitedPattern) -> None:
        pattern = self.filter_pattern
        slots = tree.slots
        self.requirement = _all([_field_requirement(s.condition, pattern) for s in slots if s.condition])
        self.prefilter = _requirement_predicate(self.requirement)
        k, ell = len(slots), tree.ellipsis_index
        tests = tuple((i, _field_test(s.condition, pattern)) for i, s in enumerate(slots) if s.condition)
        names = tuple(s.name for s in slots)

        if ell is None:

            def align(fields: list[str], message: str) -> list[str] | None:
                n = len(fields)
                if n < k:
                    return None
                if n > k:
                    return fields[: k - 1] + [_tail(message, k - 1)]
                return fields

        else:
            before, after = ell, k - ell - 1
            minimum = before + after

            def align(fields: list[str], message: str) -> list[str] | None:
                n = len(fields)
                if n < minimum:
                    return None
                return fields[:before] + [""] + (fields[n - after :] if after else [])

        def match_fields(fields: list[str], message: str) -> list[str] | None:
            values = align(fields, message)
            if values is None:
                return None
            for i, test in tests:
                if not test(values[i]):
                    return None
            return values

        self._slots = match_fields
        pre = self.prefilter

        if not slots:
            self.matches = lambda message: True
        elif ell is None:  # the common shape, inlined: the prefilter, one split, the count, the tests
            plain = _lit.plain_split

            def matches(message: str) -> bool:
                if pre is not None and not pre(message):
                    return False
                values = plain(message)
                if values is None:
                    values = split_fields(message)
                n = len(values)
                if n != k:
                    if n < k:
                        return False
                    values = values[: k - 1] + [_tail(message, k - 1)]
                for i, test in tests:
                    if not test(values[i]):
                        return False
                return True

            if len(tests) == 1 and pre is not None:  # one condition with a prefilter: no loop
                ((index, test),) = tests
                plain_field = _lit.plain_field  # only the field tested, not the list of all

                def matches(message: str) -> bool:
                    if not pre(message):
                        return False
                    got = plain_field(message, index)
                    if got is None:
                        values = split_fields(message)
                        n = len(values)
                        field = values[index] if index < n else None
                    else:
                        n, field = got
                    if n == k:
                        return test(field)
                    if n < k:
                        return False
                    return test(field if index < k - 1 else _tail(message, k - 1))

            self.matches = matches
        else:

            def matches(message: str) -> bool:
                if pre is not None and not pre(message):
                    return False
                return match_fields(split_fields(message), message) is not None

            self.matches = matches

        def extract(message: str) -> dict[str, str] | None:
            if pre is not None and not pre(message):
                return None
            fields = split_fields(message)
            if not slots:
                return {f"${i}": v for i, v in enumerate(fields, 1)}
            values = match_fields(fields, message)
            if values is None:
                return None
            out: dict[str, str] = {}
            n = len(fields)
            for i, name in enumerate(names):
                if i == ell:
                    for j in range(ell, n - (k - ell - 1)):
                        out[f"${j + 1}"] = fields[j]
                    continue
                position = i if ell is None or i < ell else n - (k - i)
                out[f"${name}" if name else f"${position + 1}"] = values[i]
            return out

        self._extract = extract

    def match_fields(self, fields: list[str], message: str) -> list[str] | None:
        """Evaluate a space-delimited pattern on fields from :func:`split_fields`.

        Returns the value of each slot (the ellipsis slot holds ``""``), or None when
        the event does not match.  For engines that split each event once.
        """
        return self._slots(fields, message)


def _terms_matcher(tree: ast.TermPattern) -> Callable[[str], bool]:
    """``message -> bool`` for a term pattern (§3.2), one literal scan call per event.

    With required or excluded terms: all required present, no excluded present
    (optional terms ignored); with only optional terms: any of them present.
    """
    required = tuple(dict.fromkeys(t.text for t in tree.terms if t.role == "required"))
    excluded = tuple(dict.fromkeys(t.text for t in tree.terms if t.role == "excluded"))
    optional = tuple(dict.fromkeys(t.text for t in tree.terms if t.role == "optional"))
    if required or excluded:
        return _lit.literals(required, excluded, ())
    return _lit.literals((), (), optional)
