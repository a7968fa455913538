"""The ``literals`` plan: a block literal prefilter, and the time of the other lines read
without decoding them (see :mod:`castlewatch.engine.batch`).

A line no filter's requirement holds in (the literals it cannot match without, as the
general evaluator's prefilter decides: ``FilterPattern.requirement``), without ``\\u``,
opening a JSON object when a JSON filter is there, matches no filter: it contributes the
``defaultValue`` of each filter that has one. Its time (only needed then) is the
top-level timestamp field of the message, one JSON object: read in C by a strict JSON
validator (:func:`~castlewatch.engine.batch.blocks.json_times`: a string of CloudTrail's
form or null, the key at most once), else as msgspec decodes the message with a Struct
holding that field alone (a string or null; duplicate keys: the last, as orjson); a
message neither takes so takes the general path. Literals shorter than
:data:`~castlewatch.engine.batch.blocks.MIN_LITERAL` characters are not scanned: a
requirement needing one counts as met (more candidates, never fewer).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Optional

import numpy as np

from castlewatch.engine.batch import blocks
from castlewatch.engine.batch.plan import NO_TIME, iso_seconds_z
from castlewatch.engine.evaluate import MAX_EVENT_MS, MIN_EVENT_MS
from castlewatch.model import READ_FROM_MESSAGE, iso8601_ms



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


def _bit_tests(requirements: list, n_literals: int) -> tuple[bool, dict, list, list]:
    """The filters' requirements as tests of a block scan's masks (bit ``j`` of word
    ``j >> 6``: literal ``j`` is in the line): ``(always, any_bits, all_tests, nested)``.

    ``always``: some requirement is None (every line is a candidate). ``any_bits``:
    ``{word: bits}`` of the literals of every requirement one literal meets (an id, or
    ``("any", ids)``): a line with any of them is a candidate. ``all_tests``: per
    ``("all", parts)`` whose parts are ids and ``("any", ids)``: ``({word: bits} all of
    which the line has, [{word: bits} of each any-part, one of which it has])``.
    ``nested``: deeper requirements, for :meth:`LiteralPlan._met`."""

    def words(ids: list[int]) -> dict[int, Any]:
        out: dict[int, int] = {}
        for j in ids:
            out[j >> 6] = out.get(j >> 6, 0) | 1 << (j & 63)
        return {w: np.uint64(bits) for w, bits in sorted(out.items())}

    def flat(req: Any) -> bool:
        return not isinstance(req, int) and all(isinstance(p, int) for p in req[1])

    any_ids: list[int] = []
    all_tests: list = []
    nested: list = []
    for req in requirements:
        if req is None:
            return True, {}, [], []
        if isinstance(req, int):
            any_ids.append(req)
        elif req[0] == "any" and flat(req):
            any_ids.extend(req[1])
        elif req[0] == "all" and all(isinstance(p, int) or (p[0] == "any" and flat(p)) for p in req[1]):
            every = [p for p in req[1] if isinstance(p, int)]
            all_tests.append((words(every), [words(p[1]) for p in req[1] if not isinstance(p, int)]))
        else:
            nested.append(req)
    return False, words(any_ids), all_tests, nested


class LiteralPlan:
    """See the module docstring; :meth:`make` returns None when it does not fit."""

    def __init__(self, evaluator: Any, active: list, requirements: list, literals: list[str], field: str | None):
        self.evaluator = evaluator
        self.active = active
        self.requirements = requirements  # per filter, over literal ids (None: always met)
        self.literals = tuple(literals)
        self.setup: blocks.LiteralScan | None = None
        self.json = any(f.kind == "json" for f in active)
        self.defaults = [f for f in active if f.default is not None]
        self.field = field
        self.decoder = None
        self._found_map: tuple[list[int | None], frozenset[int]] | None = None
        self._found_cache: dict[bytes, frozenset[int]] = {}
        self._tests = _bit_tests(requirements, len(self.literals))

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

    def _met(self, req: Any, found: Any) -> Any:
        """Whether ``req`` holds on each line, from ``found`` (lines x literals, bool)."""
        if isinstance(req, int):
            return found[:, req]
        mode, parts = req
        ints = [p for p in parts if isinstance(p, int)]
        out = None
        if ints:
            out = found[:, ints].all(axis=1) if mode == "all" else found[:, ints].any(axis=1)
        for p in parts:
            if not isinstance(p, int):
                sub = self._met(p, found)
                out = sub if out is None else (out & sub if mode == "all" else out | sub)
        return out

    def _required(self, masks: Any) -> Any:
        """Per line of a block scan's ``masks``, whether some filter's requirement holds."""
        always, any_bits, all_tests, nested = self._tests
        if always:
            return np.ones(len(masks), bool)
        column = [masks[:, w] for w in range(masks.shape[1])]

        def any_of(bits: dict) -> Any:
            out = None
            for w, b in bits.items():
                has = (column[w] & b) != 0
                out = has if out is None else out | has
            return out

        out = any_of(any_bits) if any_bits else np.zeros(len(masks), bool)
        for every, groups in all_tests:
            met = None
            for w, b in every.items():
                has = (column[w] & b) == b
                met = has if met is None else met & has
            for bits in groups:
                met = any_of(bits) if met is None else met & any_of(bits)
            out |= met
        if nested:
            found = np.unpackbits(masks.view(np.uint8), axis=1, bitorder="little").view(bool)
            for req in nested:
                out |= self._met(req, found)
        return out

    def evaluate(self, path: Any, messages: list[str]) -> Any:
        """The block's contributions (:class:`~castlewatch.engine.batch.Contributions`)."""
        from castlewatch.engine.batch import Contributions

        if self.setup is None:
            self.setup = blocks.LiteralScan(self.literals, messages[:64])
        masks, flags = blocks.scan(messages, self.literals, self.setup)
        candidate = ((flags & blocks.NOT_SCANNED) != 0) | self._required(masks)
        if self.json:
            candidate |= (flags & blocks.ESCAPE_U) != 0
            candidate |= (flags & blocks.OPENS_OBJECT) == 0
        out = Contributions()
        if not self.defaults:
            out.general = np.flatnonzero(candidate)
            out.found = self._found(messages, out.general, masks, flags)
            return out
        times, every = self._times(messages, ~candidate)
        unknown = times == _UNKNOWN
        fast = ~candidate & ~unknown & (times != NO_TIME)
        general = candidate | unknown
        bad = int(np.count_nonzero(~general & ~fast))
        if bad:
            self.evaluator.stats.count_malformed("bad_timestamp", bad)
        out.general = np.flatnonzero(general)
        out.found = self._found(messages, out.general, masks, flags)
        if every is not None:  # the general path is given the times the C reading decided
            decided = every[out.general]
            out.times = np.where(decided >= MIN_EVENT_MS, decided, READ_FROM_MESSAGE).tolist()
        rows = np.flatnonzero(fast)
        k = len(self.defaults)
        out.rows = np.repeat(rows, k)
        out.ts = np.repeat(times[rows], k)
        out.kid = np.tile(np.array([path.key_id(f.key) for f in self.defaults], np.int64), len(rows))
        out.value = np.tile(np.array([f.default for f in self.defaults], np.float64), len(rows))
        return out

    def _found(self, messages: list[str], rows: Any, masks: Any, flags: Any) -> list[frozenset[int] | None] | None:
        """Per row of ``rows``, the general evaluator's scanner literals that occur in it, so
        that the evaluator does not scan the line again: the block-scanned ones from their
        bits, the others (too short for the block scan) by ``in``. Exactly the evaluator's
        own scan (its counters, such as ``not_json``, depend on which filters it visits).
        None for a line the block did not scan (a character beyond U+00FF) or with
        ``\\u``; None for all when the evaluator has no shared scanner."""
        ids = self.evaluator.scanner_ids
        if ids is None or not len(rows):
            return None
        if self._found_map is None:
            to_scanner = [ids.get(lit) for lit in self.literals]
            scanned = set(self.literals)
            self._found_map = (to_scanner, [(lit, i) for lit, i in ids.items() if lit not in scanned])
        to_scanner, unscanned = self._found_map
        cache = self._found_cache
        out: list[frozenset[int] | None] = []
        own = (flags[rows] & (blocks.NOT_SCANNED | blocks.ESCAPE_U)) != 0
        for row, row_mask, self_scan in zip(rows.tolist(), masks[rows], own.tolist()):
            if self_scan:
                out.append(None)
                continue
            key = row_mask.tobytes()
            got = cache.get(key)
            if got is None:
                bits = np.unpackbits(row_mask.view(np.uint8), bitorder="little")
                got = frozenset(to_scanner[j] for j in np.flatnonzero(bits[: len(to_scanner)]).tolist()
                                if to_scanner[j] is not None)
                if len(cache) < 4096:
                    cache[key] = got
            if unscanned:
                message = messages[row]
                extra = [i for lit, i in unscanned if lit in message]
                if extra:
                    got = got.union(extra)
            out.append(got)
        return out

    def _times(self, messages: list[str], wanted: Any) -> tuple[Any, Any]:
        """``(times, every)``: the event times (ms) of the ``wanted`` messages, :data:`NO_TIME`
        where the field gives no usable time (``bad_timestamp``), ``_UNKNOWN`` where msgspec
        does not take the message as one JSON object with a string or null (or no) field
        there (the general path decides); and the C reading of every message
        (:func:`.blocks.json_times`, None without the extension), which decides most messages
        first (msgspec reads the others) and gives the candidates' times to the general path."""
        import msgspec

        times = np.full(len(messages), _UNKNOWN, np.int64)
        rows = np.flatnonzero(wanted)
        every = blocks.json_times(messages, np.arange(len(messages)), self.field)
        if every is not None:
            decided = every[rows]
            known = decided != blocks.UNDECIDED_TIME
            times[rows[known]] = decided[known]
            rows = rows[~known]
        if self.decoder is None:
            struct = msgspec.defstruct("TimeOnly", [(self.field, Optional[str], None)])
            self.decoder = msgspec.json.Decoder(struct)
        decode = self.decoder.decode
        # RecursionError: nested deeper than msgspec goes (the general path decides)
        errors = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
        field = attrgetter(self.field)
        where = rows.tolist()
        picked = [messages[i] for i in where]
        try:  # the whole block at C speed when every message decodes (the usual case)
            values = list(map(field, map(decode, picked)))
        except errors:  # one by one: a message msgspec does not take stays _UNKNOWN
            values = []
            for message in picked:
                try:
                    values.append(field(decode(message)))
                except errors:
                    values.append(_UNDECODED)
        rows, texts = [], []
        for i, value in zip(where, values):
            if value.__class__ is str:
                rows.append(i)
                texts.append(value)
            elif value is None:
                times[i] = NO_TIME
        if rows:
            ms, ok = iso_seconds_z(texts)
            for j in np.flatnonzero(~ok).tolist():  # other forms: as the general evaluator reads them
                t = iso8601_ms(texts[j])
                ms[j] = t if t is not None and MIN_EVENT_MS <= t <= MAX_EVENT_MS else NO_TIME
            times[np.array(rows)] = ms
        return times, every


_UNKNOWN = NO_TIME + 1  # a time msgspec cannot tell
_UNDECODED = object()  # a message msgspec does not take
