"""The typed syntax tree of a filter pattern (spec §2-§6).

Nodes are frozen msgspec Structs (slotted, hashable, compared by value, like frozen
dataclasses, but made in a fraction of their start-up cost, issue 11), built by
:mod:`castlewatch.grammar.parser` and consumed by :mod:`castlewatch.grammar.compiler`.
``pos`` fields are 0-based offsets into the original pattern text, kept for error messages.
"""

from __future__ import annotations

import re
from typing import Literal, Union

from msgspec import Struct

from castlewatch.grammar.numbers import NumberLiteral

# §5.3: the number literal form; also decides whether a space-delimited field is
# numeric (§6.4) and whether a metric value string converts (§8.3).
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# ---- values (§5.3) -------------------------------------------------------------------


class StringValue(Struct, frozen=True):
    """A string literal, quoted or bare, escapes already resolved.

    ``wildcard`` says how ``*`` applies (§5.3): ``"any"`` (``*`` alone),
    ``"prefix"`` (trailing ``*``: starts with ``core``), ``"suffix"`` (leading ``*``:
    ends with ``core``), ``"contains"`` (both), ``"exact"``.  A ``*`` elsewhere is a
    literal character, kept in ``core``.
    """

    text: str
    raw: str
    pos: int
    core: str
    wildcard: Literal["any", "prefix", "suffix", "contains", "exact"]

    @classmethod
    def make(cls, text: str, raw: str, pos: int) -> "StringValue":
        """The literal ``text`` (escapes resolved; ``raw`` as written) with its wildcard mode."""
        if text == "*":
            return cls(text, raw, pos, "", "any")
        lead, trail = text.startswith("*"), text.endswith("*")
        if lead and trail:
            return cls(text, raw, pos, text[1:-1], "contains")
        if lead:
            return cls(text, raw, pos, text[1:], "suffix")
        if trail:
            return cls(text, raw, pos, text[:-1], "prefix")
        return cls(text, raw, pos, text, "exact")


class NumberValue(Struct, frozen=True):
    """A bare number literal such as ``200``, ``-1.5`` or ``1e+3``; ``text`` is as written."""

    text: str
    pos: int

    @property
    def number(self) -> NumberLiteral:
        """The literal, ready for exact comparisons with log numbers (§5.4, §6.4); built in
        time linear in the text, whatever its exponent (see :mod:`castlewatch.grammar.numbers`)."""
        return NumberLiteral(self.text)


class RegexValue(Struct, frozen=True):
    """A ``%…%`` regular expression (§4); ``source`` includes both ``%``."""

    source: str
    pos: int


Value = Union[StringValue, NumberValue, RegexValue]


# ---- term patterns (§3) ----------------------------------------------------------------


class Term(Struct, frozen=True):
    """One item of a term pattern: a bare term or a phrase (unescaped) and its role."""

    text: str
    role: Literal["required", "optional", "excluded"]
    pos: int


class TermPattern(Struct, frozen=True):
    """A term pattern (§3): its items in source order."""

    terms: tuple[Term, ...]


class MatchAll(Struct, frozen=True):
    """The empty (or all-blank) pattern: every event matches (§2)."""


class RegexPattern(Struct, frozen=True):
    """A whole-pattern ``%regex%`` (§4), searched in the message."""

    regex: RegexValue


# ---- JSON patterns (§5) ----------------------------------------------------------------


class Key(Struct, frozen=True):
    """Selector segment ``.name`` or ``['name']``: an object member."""

    name: str


class Index(Struct, frozen=True):
    """Selector segment ``[N]``: an array element, zero-based."""

    index: int


class Wildcard(Struct, frozen=True):
    """Selector segment ``[*]`` or ``.*``: every element of an array or value of an object."""


Segment = Union[Key, Index, Wildcard]


class Selector(Struct, frozen=True):
    """A JSON selector such as ``$.requestParameters.items[0]`` (§5.2)."""

    text: str
    segments: tuple[Segment, ...]
    pos: int

    @property
    def wildcards(self) -> int:
        """How many ``[*]`` / ``.*`` segments the selector has (at most 1 is valid, §5.2)."""
        return sum(isinstance(s, Wildcard) for s in self.segments)


class Comparison(Struct, frozen=True):
    """``selector op value`` with op one of ``= != < > <= >=``."""

    selector: Selector
    op: str
    value: Value


class IsCheck(Struct, frozen=True):
    """``selector IS NULL|TRUE|FALSE``."""

    selector: Selector
    constant: Literal["NULL", "TRUE", "FALSE"]


class NotExists(Struct, frozen=True):
    """``selector NOT EXISTS``."""

    selector: Selector


class And(Struct, frozen=True):
    """``a && b && ...`` of JSON conditions (binds tighter than ``||``, §5.1)."""

    items: tuple["JsonExpr", ...]


class Or(Struct, frozen=True):
    """``a || b || ...`` of JSON conditions (§5.1)."""

    items: tuple["JsonExpr", ...]


JsonExpr = Union[Comparison, IsCheck, NotExists, And, Or]


class JsonPattern(Struct, frozen=True):
    """A JSON pattern ``{ ... }`` (§5): its condition tree."""

    expr: JsonExpr


# ---- space-delimited patterns (§6) -------------------------------------------------------


class FieldCondition(Struct, frozen=True):
    """``name op value`` inside a slot."""

    field: str
    op: str
    value: Value
    pos: int


class FieldAnd(Struct, frozen=True):
    """``&&`` of conditions on one space-delimited field (§6.1)."""

    items: tuple["FieldExpr", ...]


class FieldOr(Struct, frozen=True):
    """``||`` of conditions on one space-delimited field (§6.1)."""

    items: tuple["FieldExpr", ...]


FieldExpr = Union[FieldCondition, FieldAnd, FieldOr]


class Slot(Struct, frozen=True):
    """One comma-separated slot: ``kind`` is ``"empty"``, ``"ellipsis"`` or ``"named"``;
    a named slot may carry conditions on its own field."""

    kind: Literal["empty", "ellipsis", "named"]
    name: str | None
    condition: FieldExpr | None
    pos: int


class SpaceDelimitedPattern(Struct, frozen=True):
    """A space-delimited pattern ``[ ... ]`` (§6): its slots; none for ``[]``."""

    slots: tuple[Slot, ...]

    @property
    def ellipsis_index(self) -> int | None:
        """Index of the ``...`` slot, or None."""
        for i, slot in enumerate(self.slots):
            if slot.kind == "ellipsis":
                return i
        return None


Pattern = Union[MatchAll, TermPattern, RegexPattern, JsonPattern, SpaceDelimitedPattern]
