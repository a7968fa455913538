"""The naive baseline: decode every event, walk the pattern's syntax tree.

What a straightforward implementation does, written to be small and obviously
correct rather than fast: no prefilter, no closures specialised at compile time, no
shared work between patterns beyond decoding an event once per pack. The syntax tree
comes from castlewatch's own parser (:func:`castlewatch.grammar.parser.parse`); the
interpretation below is independent of castlewatch's compiler and follows
``docs/filter-patterns.md`` directly, so agreement between the two is a real
cross-check.

Scope (what the benchmark workloads need, and a bit more):

- term patterns (§3): required, optional, excluded terms and phrases, on the raw message;
- regex patterns (§4) and regex values: the AWS regex is run with Python's ``re`` after a
  minimal translation (``re.ASCII | re.DOTALL``, an unescaped ``$`` outside a class means
  the very end of the text);
- JSON patterns (§5): every event is ``orjson.loads``-ed (documents orjson refuses count
  as not JSON); selectors with keys, indexes and one wildcard; ``= != < > <= >=`` with
  strings (wildcards), numbers and regexes; ``IS NULL/TRUE/FALSE``; ``NOT EXISTS``;
  ``&&``/``||``. Out of scope: the source text of JSON floats (a float's text is taken
  as Python's ``repr``, so ``{ $.v = "1.50" }`` against ``1.50`` is not exact);
- space-delimited patterns (§6): field splitting, alignment with and without ``...``,
  field conditions and extracted values.
"""

from __future__ import annotations

import operator
import re
from typing import Any

import orjson

from castlewatch.grammar import ast
from castlewatch.grammar.parser import parse

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_BLANKS = " \t\n\r\f\v"
_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}
_NOT_JSON = object()


def decode(message: str) -> Any:
    """The event as a JSON object, or ``_NOT_JSON``."""
    try:
        doc = orjson.loads(message)
    except orjson.JSONDecodeError:
        return _NOT_JSON
    return doc if type(doc) is dict else _NOT_JSON


def aws_regex(source: str) -> re.Pattern:
    """``%…%`` -> a Python regex with the AWS meaning (search, ``.`` any, ``$`` the very end)."""
    body, out, i, in_class = source[1:-1], [], 0, False
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            out.append(body[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "$" and not in_class:
            ch = r"\Z"
        out.append(ch)
        i += 1
    return re.compile("".join(out), re.ASCII | re.DOTALL)


def wildcard_equal(text: str, literal: str) -> bool:
    """String equality under the ``*`` rules of §5.3."""
    if literal == "*":
        return True
    lead, trail = literal.startswith("*"), literal.endswith("*")
    if lead and trail:
        return literal[1:-1] in text
    if lead:
        return text.endswith(literal[1:])
    if trail:
        return text.startswith(literal[:-1])
    return text == literal


def is_number(node: Any) -> bool:
    return type(node) is int or type(node) is float  # not bool


class NaivePattern:
    """One filter pattern, interpreted by walking its syntax tree on every call."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.tree = parse(pattern)
        self.regexes: dict[str, re.Pattern] = {}

    # -- entry points --

    def matches(self, message: str) -> bool:
        """True if ``message`` matches; a JSON pattern decodes the message first."""
        if isinstance(self.tree, ast.JsonPattern):
            return self.match_document(decode(message))
        return self.extract(message) is not None

    def match_document(self, doc: Any) -> bool:
        """A JSON pattern on an already decoded event (``_NOT_JSON`` never matches)."""
        return doc is not _NOT_JSON and self.visit(self.tree.expr, doc)

    def extract(self, message: str) -> dict[str, str] | None:
        """The extracted values of a match (§6.5; ``{}`` for other kinds), else None."""
        tree = self.tree
        if isinstance(tree, ast.SpaceDelimitedPattern):
            return self.space_delimited(tree, message)
        if isinstance(tree, ast.JsonPattern):
            return {} if self.matches(message) else None
        return {} if self.visit(tree, message) else None

    # -- the interpreter: visit_<NodeClass>(node, subject) --

    def visit(self, node: Any, subject: Any) -> bool:
        return getattr(self, "visit_" + type(node).__name__)(node, subject)

    def visit_MatchAll(self, node: ast.MatchAll, message: str) -> bool:
        return True

    def visit_TermPattern(self, node: ast.TermPattern, message: str) -> bool:
        required = [t.text for t in node.terms if t.role == "required"]
        excluded = [t.text for t in node.terms if t.role == "excluded"]
        optional = [t.text for t in node.terms if t.role == "optional"]
        if required or excluded:
            return all(t in message for t in required) and not any(t in message for t in excluded)
        return any(t in message for t in optional)

    def visit_RegexPattern(self, node: ast.RegexPattern, message: str) -> bool:
        return self.search(node.regex, message)

    def visit_And(self, node: ast.And, doc: dict) -> bool:
        return all(self.visit(item, doc) for item in node.items)

    def visit_Or(self, node: ast.Or, doc: dict) -> bool:
        return any(self.visit(item, doc) for item in node.items)

    def visit_NotExists(self, node: ast.NotExists, doc: dict) -> bool:
        return not self.select(node.selector, doc)

    def visit_IsCheck(self, node: ast.IsCheck, doc: dict) -> bool:
        for n in self.select(node.selector, doc):
            if node.constant == "NULL" and (n is None or (type(n) is list and None in n)):
                return True
            if node.constant == "TRUE" and n is True:
                return True
            if node.constant == "FALSE" and n is False:
                return True
        return False

    def visit_Comparison(self, node: ast.Comparison, doc: dict) -> bool:
        return any(self.json_holds(node.op, node.value, n) for n in self.select(node.selector, doc))

    # -- JSON helpers (§5.2, §5.4) --

    def select(self, selector: ast.Selector, doc: dict) -> list:
        nodes = [doc]
        for segment in selector.segments:
            found = []
            for n in nodes:
                if isinstance(segment, ast.Key):
                    if type(n) is dict and segment.name in n:
                        found.append(n[segment.name])
                elif isinstance(segment, ast.Index):
                    if type(n) is list and segment.index < len(n):
                        found.append(n[segment.index])
                elif type(n) is dict:
                    found.extend(n.values())
                elif type(n) is list:
                    found.extend(n)
            nodes = found
        return nodes

    def json_holds(self, op: str, value: ast.Value, node: Any) -> bool:
        if op in _ORDER:
            return is_number(node) and _ORDER[op](node, float(value.text))
        if type(node) is str:
            text = node
        elif is_number(node):
            text = repr(node)
        else:
            return False  # null, booleans, arrays and objects satisfy neither = nor !=
        if isinstance(value, ast.NumberValue):
            equal = float(node) == float(value.text) if is_number(node) else text == value.text
        elif isinstance(value, ast.RegexValue):
            equal = self.search(value, text)
        else:
            equal = wildcard_equal(text, value.text)
        return equal if op == "=" else not equal

    def search(self, value: ast.RegexValue, text: str) -> bool:
        if value.source not in self.regexes:
            self.regexes[value.source] = aws_regex(value.source)
        return self.regexes[value.source].search(text) is not None

    # -- space-delimited (§6.2-§6.5) --

    @staticmethod
    def split(message: str) -> list[tuple[str, int, int]]:
        """Fields as (value, start, end) offsets in ``message``."""
        fields, i, n = [], 0, len(message)
        while i < n:
            ch = message[i]
            if ch in _BLANKS:
                i += 1
                continue
            close = {'"': '"', "[": "]"}.get(ch)
            end = message.find(close, i + 1) if close else -1
            if end != -1:
                fields.append((message[i + 1 : end], i, end + 1))
                i = end + 1
                continue
            j = i
            while j < n and message[j] not in _BLANKS:
                j += 1
            fields.append((message[i:j], i, j))
            i = j
        return fields

    def space_delimited(self, tree: ast.SpaceDelimitedPattern, message: str) -> dict[str, str] | None:
        fields = self.split(message)
        slots, n = tree.slots, len(fields)
        if not slots:
            return {f"${i + 1}": f[0] for i, f in enumerate(fields)}
        # (slot, value, 1-based field position) for every slot; the ellipsis gives its fields
        assigned: list[tuple[ast.Slot | None, str, int]] = []
        ell = tree.ellipsis_index
        if ell is None:
            k = len(slots)
            if n < k:
                return None
            for i in range(k - 1):
                assigned.append((slots[i], fields[i][0], i + 1))
            last = fields[k - 1][0] if n == k else message[fields[k - 1][1] : fields[-1][2]]
            assigned.append((slots[k - 1], last, k))
        else:
            before, after = ell, len(slots) - ell - 1
            if n < before + after:
                return None
            for i in range(before):
                assigned.append((slots[i], fields[i][0], i + 1))
            for j in range(before, n - after):
                assigned.append((None, fields[j][0], j + 1))
            for i in range(after):
                position = n - after + i
                assigned.append((slots[ell + 1 + i], fields[position][0], position + 1))
        out: dict[str, str] = {}
        for slot, value, position in assigned:
            if slot is not None and slot.condition is not None and not self.field_holds(slot.condition, value):
                return None
            name = slot.name if slot is not None and slot.kind == "named" else None
            out[f"${name}" if name else f"${position}"] = value
        return out

    def field_holds(self, expr: ast.FieldExpr, value: str) -> bool:
        if isinstance(expr, ast.FieldAnd):
            return all(self.field_holds(e, value) for e in expr.items)
        if isinstance(expr, ast.FieldOr):
            return any(self.field_holds(e, value) for e in expr.items)
        numeric = _NUMBER.fullmatch(value) is not None
        if expr.op in _ORDER:
            return numeric and _ORDER[expr.op](float(value), float(expr.value.text))
        literal = expr.value
        if isinstance(literal, ast.RegexValue):
            equal = self.search(literal, value)
        elif isinstance(literal, ast.NumberValue):
            equal = float(value) == float(literal.text) if numeric else value == literal.text
        else:
            equal = wildcard_equal(value, literal.text)
        return equal if expr.op == "=" else not equal


class NaivePack:
    """Several patterns on the same events: each event is decoded once, every tree walked."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [NaivePattern(p) for p in patterns]
        self.any_json = any(isinstance(p.tree, ast.JsonPattern) for p in self.patterns)

    def evaluate(self, message: str) -> list[bool]:
        doc = decode(message) if self.any_json else _NOT_JSON
        return [
            p.match_document(doc) if isinstance(p.tree, ast.JsonPattern) else p.matches(message)
            for p in self.patterns
        ]


def metric_value(text: str | None) -> float | None:
    """A metric value from an extracted field (§8.3): numeric strings only."""
    return float(text) if text is not None and _NUMBER.fullmatch(text) else None
