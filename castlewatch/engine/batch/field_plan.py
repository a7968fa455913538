"""The ``fields`` plan: space-delimited patterns evaluated over a split block with numpy
(see :mod:`castlewatch.engine.batch`; spec §6, §8.3).

It fits when every filter is a space-delimited pattern of the same ``k`` fields without
``...``, each condition ``=`` or ``!=`` an exact string (no wildcard), each reference
(``metricValue``, dimensions) a field of the pattern (``$name`` or ``$N``, N <= k), and
the event time a field (``epoch_s`` or ``epoch_ms``). On a line whose split is exact
with ``k`` fields (:func:`~castlewatch.engine.batch.blocks.split`), the aligned values
are the fields, so:

- a condition is a comparison of the field's bytes with the literal's;
- a value is ``float(field)`` when the field is 1-15 digits (read in the split), else the
  general evaluator's own ``_numeric`` on its text;
- a dimension value is the field's text (ASCII, never blank; over 1,024 characters it is
  refused and counted, §9);
- the time is read as ``parse_time`` reads it (digits read in the split, else ``parse_time``);

and the counters follow the general evaluator's rules per event: a match counts unless
the event is to publish and has no usable time (``bad_timestamp``, then nothing of it
counts), a value out of range or a refused dimension is counted and publishes nothing.
A dimension filter's value sets (§8.4) are noted per contribution in order; a block in
which one could reach the limit, or with lines on the general path while a dimension
filter publishes from the others, takes the general path whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from castlewatch.engine.batch import blocks
from castlewatch.engine.batch.plan import NO_TIME, epoch_times, unique_first_inverse
from castlewatch.engine.evaluate import (
    _MAX_VALUE,
    DIMENSION_SETS_LIMIT,
    DIMENSION_WINDOW_MS,
    _numeric,
)
from castlewatch.grammar import ast
from castlewatch.model import MAX_DIMENSION_VALUE


class _Filter:
    """One filter as the plan runs it: conditions ``(index, literal bytes, equal)``, the
    value (a number, or a field index), dimensions ``(name, field index)``."""

    __slots__ = ("f", "conditions", "value", "value_index", "dims", "default")

    def __init__(self, f: Any, conditions: list, value_index: int | None, dims: list) -> None:
        self.f = f
        self.conditions = conditions
        self.value = f.value
        self.value_index = value_index
        self.dims = dims
        self.default = f.default


class _Columns:
    """The start (``which`` 0) or end (1) offsets of a split's fields as int64, a field's
    column converted when first used (``cols[rows, j]``): a plan reads a few of the fields."""

    __slots__ = ("bounds", "which", "cache")

    def __init__(self, bounds: Any, which: int) -> None:
        self.bounds, self.which, self.cache = bounds, which, {}

    def __getitem__(self, key: tuple) -> Any:
        rows, j = key
        column = self.cache.get(j)
        if column is None:
            column = self.cache[j] = self.bounds[:, j, self.which].astype(np.int64)
        return column[rows]


_DASH = ord("-")


def _index(ref: Any, k: int) -> int | None:
    """The field a reference reads on an exact line of ``k`` fields, or None."""
    if ref is None or ref.kind not in ("field", "position") or not 0 <= ref.index < k:
        return None
    return ref.index


class FieldPlan:
    """See the module docstring; :meth:`make` returns None when it does not fit."""

    def __init__(self, evaluator: Any, filters: list[_Filter], k: int, time_index: int, time_format: str) -> None:
        self.evaluator = evaluator
        self.filters = filters
        self.k = k
        self.time_index = time_index
        self.time_format = time_format
        # the fields read as numbers in the split: the values' and the time's; the comparisons it makes
        self.digit_fields = tuple(sorted({f.value_index for f in filters if f.value_index is not None} | {time_index}))
        self.equal_fields = tuple(dict.fromkeys((j, literal) for f in filters for j, literal, _ in f.conditions))
        self.key_fields = tuple(sorted({j for f in filters for _, j in f.dims}))

    @classmethod
    def make(cls, evaluator: Any, active: list) -> FieldPlan | None:
        spec = evaluator.timestamp
        if spec is None or spec.kind != "position" or spec.format not in ("epoch_s", "epoch_ms"):
            return None
        k = None
        out = []
        for f in active:
            tree = f.pattern.tree
            if f.kind != "space_delimited" or tree.ellipsis_index is not None or not tree.slots:
                return None
            if k is None:
                k = len(tree.slots)
            if len(tree.slots) != k:
                return None
            conditions = []
            for i, slot in enumerate(tree.slots):
                c = slot.condition
                if c is None:
                    continue
                if not isinstance(c, ast.FieldCondition) or c.op not in ("=", "!="):
                    return None
                v = c.value
                if not isinstance(v, ast.StringValue) or v.wildcard != "exact" or not v.core.isascii():
                    return None
                conditions.append((i, v.core.encode("ascii"), c.op == "="))
            value_index = None
            if f.value is None:
                value_index = _index(f.value_ref, k)
                if value_index is None:
                    return None
            dims = []
            for name, ref in f.dims:
                index = _index(ref, k)
                if index is None:
                    return None
                dims.append((name, index))
            out.append(_Filter(f, conditions, value_index, dims))
        if k is None or spec.position > k:
            return None
        plan = cls(evaluator, out, k, spec.position - 1, spec.format)
        if max(len(plan.digit_fields), len(plan.equal_fields), len(plan.key_fields)) > blocks.MAX_SPLIT_FIELDS:
            return None  # more than the split reads in one pass: the general path
        return plan

    # -- per block --

    def evaluate(self, path: Any, messages: list[str]) -> Any:
        """The block's contributions (:class:`~castlewatch.engine.batch.Contributions`), or
        None to evaluate it whole with the general evaluator."""
        from castlewatch.engine.batch import Contributions

        n = len(messages)
        block = blocks.block_of(messages)
        found = blocks.split(block, self.k, n, self.digit_fields, self.equal_fields, self.key_fields)
        if found is None:
            return None
        bounds, exact, numbers, equal_columns = found.bounds, found.exact, found.numbers, found.equal
        starts, ends = _Columns(bounds, 0), _Columns(bounds, 1)

        def digits(j: int) -> tuple[Any, Any]:
            """``(number, ok)`` of field ``j``: ok where it is 1-15 ASCII digits on an exact line."""
            column = numbers[:, self.digit_fields.index(j)]
            ok = column >= 0
            return np.where(ok, column, 0), ok

        def text(row: int, j: int) -> str:
            return block[starts[row, j] : ends[row, j]].decode("ascii")

        block_bytes = np.frombuffer(block, np.uint8)  # a view, no copy

        def equal(j: int, literal: bytes) -> Any:
            """Where field ``j`` is ``literal`` (an exact line), from the split."""
            return equal_columns[:, self.equal_fields.index((j, literal))]

        # per filter: matched, value, publishes (value and dimensions resolved), refused...
        evaluated = []
        publishes_any = np.zeros(n, bool)
        values_cache: dict[int, tuple[Any, Any]] = {}
        for pf in self.filters:
            f = pf.f
            if f.disabled:
                evaluated.append(None)
                continue
            matched = exact.copy()
            for j, literal, is_equal in pf.conditions:
                hit = equal(j, literal)
                matched &= hit if is_equal else ~hit
            value = np.full(n, pf.value if pf.value is not None else 0.0)
            has_value = matched.copy()
            out_of_range = np.zeros(n, bool)
            if pf.value_index is not None:
                j = pf.value_index
                if j not in values_cache:
                    number, ok = digits(j)
                    values_cache[j] = (number.astype(np.float64), ok)
                number, ok = values_cache[j]
                value = number.copy()
                other = np.flatnonzero(matched & ~ok)
                if len(other):  # "-" (a flow log record without data) is no number: no Python call for it
                    dash = (ends[other, j] - starts[other, j] == 1) & (block_bytes[starts[other, j]] == _DASH)
                    has_value[other[dash]] = False
                    other = other[~dash]
                for row in other.tolist():
                    v = _numeric(text(row, j))
                    if v is None:
                        has_value[row] = False
                    elif not -_MAX_VALUE <= v <= _MAX_VALUE:
                        has_value[row] = False
                        out_of_range[row] = True
                    else:
                        value[row] = v
            refused = np.zeros(n, bool)
            if pf.dims:
                for _, j in pf.dims:
                    refused |= has_value & ((ends[:, j] - starts[:, j]) > MAX_DIMENSION_VALUE)
                has_value &= ~refused
            publishes = has_value | (~matched & exact if pf.default is not None else False)
            if pf.default is not None:
                value = np.where(matched, value, pf.default)
            publishes_any |= publishes
            evaluated.append((pf, matched, value, publishes, out_of_range, refused))
        t = self.time_index
        times = epoch_times(*digits(t), self.time_format, lambda row: text(row, t), ends[:, t] - starts[:, t], exact)
        bad = exact & publishes_any & (times == NO_TIME)
        good = ~bad
        general = np.flatnonzero(~exact)
        # guard: dimension sets that could disable a filter in this block, or order with the general path
        dim_plans = []
        for item in evaluated:
            if item is None or not item[0].dims:
                continue
            pf, matched, value, publishes, _, _ = item
            rows = np.flatnonzero(publishes & good)
            if not len(rows):
                continue
            if len(general):
                return None
            plan = self._dimension_plan(pf, rows, starts, ends, block, found.keys, times)
            if plan is None:
                return None
            dim_plans.append(plan)
        # counters, then contributions
        stats = self.evaluator.stats
        if bad.any():
            stats.count_malformed("bad_timestamp", int(np.count_nonzero(bad)))
        rows_parts, kid_parts, order_parts = [], [], []
        dim_keys = {id(p["pf"]): p for p in dim_plans}
        for position, item in enumerate(evaluated):
            if item is None:
                continue
            pf, matched, value, publishes, out_of_range, refused = item
            name = pf.f.name
            count = int(np.count_nonzero(matched & good))
            if count:
                stats.matched[name] += count
            for counter, which in ((stats.out_of_range, out_of_range), (stats.bad_dimension_values, refused)):
                c = int(np.count_nonzero(which & good))
                if c:
                    counter[name] = counter.get(name, 0) + c
            rows = np.flatnonzero(publishes & good)
            if not len(rows):
                continue
            if pf.dims:
                plan = dim_keys[id(pf)]
                kid = np.array([path.key_id(key) for key in plan["keys"]], np.int64)[plan["codes"]]
                self._note_dimension_sets(plan)
            else:
                kid = np.full(len(rows), path.key_id(pf.f.key), np.int64)
            rows_parts.append(rows)
            kid_parts.append(kid)
            order_parts.append((rows, position, value[rows]))
        out = Contributions()
        out.general = general
        if rows_parts:
            rows = np.concatenate(rows_parts)
            position = np.concatenate([np.full(len(r), p) for r, p, _ in order_parts])
            order = np.lexsort((position, rows))
            out.rows = rows[order]
            out.kid = np.concatenate(kid_parts)[order]
            out.value = np.concatenate([v for _, _, v in order_parts]).astype(np.float64)[order]
            out.ts = times[out.rows]
        return out

    def _dimension_plan(self, pf: _Filter, rows: Any, starts: Any, ends: Any, block: bytes, packed_keys: Any,
                        times: Any) -> dict | None:
        """The dimension set of each contribution (``codes`` into ``keys``), or None when
        the filter could reach :data:`DIMENSION_SETS_LIMIT` in this block."""
        codes = np.zeros(len(rows), np.int64)
        texts_per_dim = []
        for _, j in pf.dims:
            packed = packed_keys[rows, self.key_fields.index(j)]
            if not bool((packed == blocks.NO_KEY).any()):  # every value at most 7 bytes: packed in the split
                _, first, inverse = unique_first_inverse(packed)
            else:
                s, e = starts[rows, j], ends[rows, j]
                index: dict[bytes, int] = {}
                inverse = np.array([index.setdefault(block[a:b], len(index)) for a, b in zip(s.tolist(), e.tolist())],
                                   np.int64)
                first = np.zeros(len(index), np.int64)
                first[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)
            texts = [block[starts[rows[i], j] : ends[rows[i], j]].decode("ascii") for i in first.tolist()]
            texts_per_dim.append(texts)
            codes = codes * len(texts) + inverse.reshape(-1)
        uniq, first, inverse = unique_first_inverse(codes)
        f = pf.f
        namespace, metric, _, unit = f.key
        keys, sets = [], []
        for code in uniq.tolist():
            parts = []
            for (name, _), texts in zip(reversed(pf.dims), reversed(texts_per_dim)):
                code, i = divmod(code, len(texts))
                parts.append((name, texts[i]))
            dims = tuple(reversed(parts))
            sets.append(dims)
            keys.append((namespace, metric, dims, unit))
        new = sum(1 for d in sets if d not in f.dimension_sets)
        if len(f.dimension_sets) + new >= DIMENSION_SETS_LIMIT:
            return None
        return {"pf": pf, "keys": keys, "sets": sets, "codes": inverse.reshape(-1), "ts": times[rows]}

    def _note_dimension_sets(self, plan: dict) -> None:
        """The evaluator's dimension-set bookkeeping (§8.4) for these contributions, in order:
        at once when every set is known and none can have expired, else one by one."""
        f = plan["pf"].f
        sets, codes, ts = plan["sets"], plan["codes"], plan["ts"]
        known = f.dimension_sets
        clock = max(f.clock, int(ts.max()))
        if all(d in known and known[d] > clock - DIMENSION_WINDOW_MS for d in sets):
            latest = np.full(len(sets), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(latest, codes, ts)
            for d, t in zip(sets, latest.tolist()):
                if t > known[d]:
                    known[d] = t
            f.clock = clock
            return
        count = self.evaluator._count_dimension_set
        for code, t in zip(codes.tolist(), ts.tolist()):
            count(f, sets[code], t)
