"""The ``literals`` plan: a block literal prefilter, and the time of the other lines read
by msgspec (see :mod:`castlewatch.engine.batch`).

A line no filter's requirement holds in (the literals it cannot match without, as the
general evaluator's prefilter decides: ``FilterPattern.requirement``), with no backslash,
opening a JSON object when a JSON filter is there, matches no filter: it contributes the
``defaultValue`` of each filter that has one. Its time (only needed then) is the
timestamp field as msgspec decodes the message, one JSON object, with a Struct holding
that top-level field alone (a string or null; duplicate keys: the last, as orjson);
a message msgspec does not take so takes the general path. Literals shorter than
:data:`~castlewatch.engine.batch.blocks.MIN_LITERAL` characters are not scanned: a
requirement needing one counts as met (more candidates, never fewer).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from castlewatch.engine.batch import blocks
from castlewatch.engine.batch.plan import NO_TIME
from castlewatch.engine.evaluate import MAX_EVENT_MS, MIN_EVENT_MS
from castlewatch.model import iso8601_ms

_TIME_CACHE = 4096


def _requirement(f: Any) -> Any:
    """What a filter needs in the message to possibly match, or None (anything may match)."""
    pattern = f.pattern
    if pattern.kind == "terms":
        terms = pattern.tree.terms
        required = [t.text for t in terms if t.role == "required"]
        if required:
            return ("all", required)
        if any(t.role == "excluded" for t in terms):
            return None
        optional = [t.text for t in terms if t.role == "optional"]
        return ("any", optional) if optional else None
    return pattern.requirement if pattern.kind in ("json", "regex", "space_delimited") else None


class LiteralPlan:
    """See the module docstring; :meth:`make` returns None when it does not fit."""

    def __init__(self, evaluator: Any, active: list, requirements: list, literals: list[str], field: str | None):
        self.evaluator = evaluator
        self.active = active
        self.requirements = requirements  # per filter, over literal ids (None: always met)
        self.literals = tuple(literals)
        self.anchors: tuple[int, ...] = tuple(0 for _ in literals)
        self.anchored = False
        self.json = any(f.kind == "json" for f in active)
        self.defaults = [f for f in active if f.default is not None]
        self.field = field
        self.decoder = None
        self.times: dict[str, int] = {}

    @classmethod
    def make(cls, evaluator: Any, active: list) -> LiteralPlan | None:
        ids: dict[str, int] = {}

        def compile_(req: Any) -> Any:
            if isinstance(req, str):
                if len(req) < blocks.MIN_LITERAL:
                    return None  # not scanned: counts as met
                return ids.setdefault(req, len(ids))
            mode, parts = req
            parts = [compile_(p) for p in parts]
            if mode == "any" and any(p is None for p in parts):
                return None
            parts = [p for p in parts if p is not None]
            return (mode, parts) if parts else None

        requirements = []
        for f in active:
            req = _requirement(f)
            if req is None:
                return None
            requirements.append(compile_(req))
        if all(r is None for r in requirements):
            return None
        field = None
        if any(f.default is not None for f in active):
            spec = evaluator.timestamp
            if spec is None or spec.kind != "json" or spec.format != "iso8601":
                return None
            ref = spec.selector
            if not ref.startswith("$.") or not ref[2:].isidentifier():
                return None
            field = ref[2:]
        return cls(evaluator, active, requirements, sorted(ids, key=ids.get), field)

    # -- per block --

    def _anchor(self, messages: list[str]) -> None:
        """Where in each literal the C scan looks first: its 4 characters rarest in this batch."""
        sample = "".join(messages[:256]).encode("latin-1", "ignore")
        counts = np.bincount(np.frombuffer(sample, np.uint8), minlength=256).astype(np.float64) + 1
        cost = np.log(counts)
        anchors = []
        for lit in self.literals:
            codes = [min(ord(c), 255) for c in lit]
            anchors.append(int(np.argmin([sum(cost[c] for c in codes[i:i + 4]) for i in range(len(codes) - 3)])))
        self.anchors = tuple(anchors)
        self.anchored = True

    def _met(self, req: Any, masks: Any, n: int) -> Any:
        if req is None:
            return np.ones(n, bool)
        if isinstance(req, int):
            return (masks[:, req >> 6] >> np.uint64(req & 63)) & np.uint64(1) != 0
        mode, parts = req
        out = self._met(parts[0], masks, n)
        for p in parts[1:]:
            out = (out & self._met(p, masks, n)) if mode == "all" else (out | self._met(p, masks, n))
        return out

    def evaluate(self, path: Any, messages: list[str]) -> Any:
        """The block's contributions (:class:`~castlewatch.engine.batch.Contributions`)."""
        from castlewatch.engine.batch import Contributions

        n = len(messages)
        if not self.anchored:
            self._anchor(messages)
        masks, flags = blocks.scan(messages, self.literals, self.anchors)
        candidate = (flags & blocks.NOT_SCANNED) != 0
        for req in self.requirements:
            candidate |= self._met(req, masks, n)
        if self.json:
            candidate |= (flags & blocks.BACKSLASH) != 0
            candidate |= (flags & blocks.OPENS_OBJECT) == 0
        out = Contributions()
        if not self.defaults:
            out.general = np.flatnonzero(candidate)
            return out
        times = self._times(messages, ~candidate)
        unknown = times == _UNKNOWN
        fast = ~candidate & ~unknown & (times != NO_TIME)
        general = candidate | unknown
        bad = int(np.count_nonzero(~general & ~fast))
        if bad:
            self.evaluator.stats.count_malformed("bad_timestamp", bad)
        out.general = np.flatnonzero(general)
        rows = np.flatnonzero(fast)
        k = len(self.defaults)
        out.rows = np.repeat(rows, k)
        out.ts = np.repeat(times[rows], k)
        out.kid = np.tile(np.array([path.key_id(f.key) for f in self.defaults], np.int64), len(rows))
        out.value = np.tile(np.array([f.default for f in self.defaults], np.float64), len(rows))
        return out

    def _times(self, messages: list[str], wanted: Any) -> Any:
        """Event times (ms) of the ``wanted`` messages: :data:`NO_TIME` where the field gives no
        usable time (``bad_timestamp``), ``_UNKNOWN`` where msgspec does not take the message
        as one JSON object with a string or null (or no) field there (the general path decides)."""
        import msgspec

        if self.decoder is None:
            struct = msgspec.defstruct("TimeOnly", [(self.field, Optional[str], None)])
            self.decoder = msgspec.json.Decoder(struct)
        decode = self.decoder.decode
        errors = (msgspec.DecodeError, msgspec.ValidationError)
        times = np.full(len(messages), _UNKNOWN, np.int64)
        cache = self.times
        name = self.field
        for i in np.flatnonzero(wanted).tolist():
            try:
                value = getattr(decode(messages[i]), name)
            except errors:
                continue
            t = cache.get(value) if value is not None else NO_TIME
            if t is None:
                t = iso8601_ms(value)
                if t is None or not MIN_EVENT_MS <= t <= MAX_EVENT_MS:
                    t = NO_TIME
                if len(cache) >= _TIME_CACHE:
                    cache.clear()
                cache[value] = t
            times[i] = t
        return times


_UNKNOWN = NO_TIME + 1  # a time msgspec cannot tell
