"""``metricValue`` and dimension references and number literals (spec §8.2 step 3, §8.3).

Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from castlewatch.grammar import ast
from castlewatch.grammar.parser import parse_selector

MAX_NUMBER = 2.0**360  # number literals, as PutMetricData accepts them (§8.2 step 3, §9)
_POSITION_DIGITS = 18
MAX_POSITION = 10**_POSITION_DIGITS  # `$N` beyond this names no field of any event (§6.5)

_FIELD_REFERENCE_RE = re.compile(r"\$([A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``metricValue`` or dimension reference (§8.2 step 3, §8.3).

    Attributes:
        kind: ``"json"`` (``$.path``), ``"field"`` (``$name``, a named slot of a
            space-delimited pattern) or ``"position"`` (``$7``: the 7th field).
        text: the reference as written.
        segments: for ``json``, the selector's :class:`~castlewatch.grammar.ast.Key` /
            :class:`~castlewatch.grammar.ast.Index` segments (never a wildcard).
        name: for ``field``, the slot name (without ``$``).
        position: for ``position``, the 1-based field number.
    """

    kind: Literal["json", "field", "position"]
    text: str
    segments: tuple[ast.Key | ast.Index, ...] = ()
    name: str = ""
    position: int = 0


def parse_reference(text: str) -> Reference | None:
    """``text`` as a reference, or None if it is not one (§8.2 step 3).

    A reference is ``$`` plus a §5.2 selector without wildcards (``$.a.b[0]``,
    ``$.['k.d']``), or ``$name`` with ``name`` in ``[A-Za-z0-9_-]+``; all digits
    (``$7``) is a 1-based field position.  References are not checked against any
    pattern: ``$missing`` is a reference [rec].
    """
    if not isinstance(text, str) or not text.startswith("$"):
        return None
    if text.startswith(("$.", "$[")):
        selector = parse_selector(text)
        if selector is None or selector.wildcards:
            return None
        return Reference("json", text, segments=selector.segments)  # type: ignore[arg-type]
    match = _FIELD_REFERENCE_RE.fullmatch(text)
    if match is None:
        return None
    name = match.group(1)
    if name.isdigit():
        # A position of more digits than any event has fields names no field; int() of it
        # could exceed Python's int-size limit (4,300 digits), so it is capped instead.
        significant = name.lstrip("0") or "0"
        position = int(significant) if len(significant) <= _POSITION_DIGITS else MAX_POSITION
        return Reference("position", text, position=position)
    return Reference("field", text, name=name)


def parse_number_literal(text: str) -> float | None:
    """A number literal (§5.3 form, finite, within ±2^360) as a float, else None."""
    if not isinstance(text, str) or not ast.NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        return None
    return value


def parse_metric_value(text: str) -> float | Reference | None:
    """A ``metricValue``: a number (float), a :class:`Reference`, or None if neither (§8.2 step 3)."""
    number = parse_number_literal(text)
    return number if number is not None else parse_reference(text)
