"""One pass over each log event for the literals of every metric filter of a log group.

Each compiled pattern states the literals a match needs (``FilterPattern.requirement``:
a literal, or ``("all" | "any", [...])``).  With many filters per log group (the CIS
pack has 15, most of them an ``||`` of event names) testing each literal with ``in``
costs one scan per literal; :class:`LiteralScanner` puts every distinct literal into
one RE2 set and finds all of them in a single linear pass, then each filter's
requirement is decided on the set of literals found.  (The multi-pattern prefilter
of STYLE.md §5: RE2 ``Set`` as the literal stage.)
"""

from __future__ import annotations

from typing import Any, Callable

import re2

Found = set[int]


def requirement_literals(requirement: Any) -> set[str]:
    """Every literal in a requirement."""
    if requirement is None:
        return set()
    if isinstance(requirement, str):
        return {requirement}
    return {lit for part in requirement[1] for lit in requirement_literals(part)}


def _byte_pattern(literal: str) -> str:
    """An RE2 (Latin-1 mode) pattern matching ``literal``'s UTF-8 bytes exactly."""
    return "".join(f"\\x{b:02x}" for b in literal.encode("utf-8", "surrogatepass"))


class LiteralScanner:
    """Finds which of a set of literals occur in a message, in one pass (RE2 ``Set``).

    Args:
        requirements: the requirements whose literals to look for.

    ``scan(message)`` returns the set of literal ids found; ``predicate(requirement)``
    compiles a requirement to ``found -> bool``.  Matching is on the UTF-8 bytes of
    the message (lone surrogates passed through), so a literal is found exactly when
    ``literal in message``.
    """

    def __init__(self, requirements: list[Any]) -> None:
        literals = sorted(set().union(*(requirement_literals(r) for r in requirements)))
        self.ids = {lit: i for i, lit in enumerate(literals)}
        options = re2.Options()
        options.encoding = re2.Options.Encoding.LATIN1
        options.max_mem = 64 << 20
        literal_set = re2.Set.SearchSet(options)
        for lit in literals:
            literal_set.Add(_byte_pattern(lit))
        literal_set.Compile()
        self._match = literal_set._set.Match  # bytes -> list of ids, no wrapper per call

    def scan(self, message: str) -> Found:
        """The ids of the literals that occur in ``message``."""
        return set(self._match(message.encode("utf-8", "surrogatepass")))

    def predicate(self, requirement: Any) -> Callable[[Found], bool] | None:
        """``found -> bool`` for a requirement (None when it needs nothing)."""
        if requirement is None:
            return None
        if isinstance(requirement, str):
            i = self.ids[requirement]
            return lambda found: i in found
        mode, parts = requirement
        if all(isinstance(p, str) for p in parts):
            ids = frozenset(self.ids[p] for p in parts)
            if mode == "all":
                return ids.issubset
            return lambda found: not ids.isdisjoint(found)
        preds = [self.predicate(p) for p in parts]
        if mode == "all":
            return lambda found: all(p(found) for p in preds)
        return lambda found: any(p(found) for p in preds)
