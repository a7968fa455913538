"""Metric filters applied to log events: what each event contributes (spec §8.3).

A :class:`LogGroupEvaluator` holds every metric filter of one log group and
evaluates them together on each event with shared work: a JSON event is decoded at
most once for all filters (and only if some JSON filter's literal prefilter passes),
a space-delimited event is split once.  Each contribution is handed to a callback
as ``(key, timestamp_ms, value)``, where ``key`` is
``(namespace, metric_name, dimensions, unit)``; the aggregator folds them per minute.
"""

from __future__ import annotations

import logging
import math
import time
from heapq import heapify, heappop, heappush
from dataclasses import dataclass
from typing import Any, Callable, Literal

from castlewatch.engine.prefilter import LiteralScanner, requirement_literals
from castlewatch.grammar import FilterPattern, ast, compile_pattern, decode_json_event, split_fields
from castlewatch.grammar.compiler import MISSING, RawNumber, decode_json_event_exact, path_getter
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.metric_filters import parse_reference
from castlewatch.model import MAX_DIMENSION_VALUE, READ_FROM_MESSAGE, LogEvent, MetricFilter, Stats, iso8601_ms

MetricKey = tuple[str, str, tuple[tuple[str, str], ...], str]
Emit = Callable[[MetricKey, int, float], None]

_NOTHING = object()  # a reference that resolves to no usable value (§8.3)
_REFUSED = object()  # a dimension value PutMetricData refuses (§8.3, §9)
_MAX_VALUE = 2.0**360  # PutMetricData's value range (§9)
_MAX_INT = 2**360
# Event times castlewatch can publish: years 1 to 9999 (what a datapoint's ISO 8601
# timestamp can say), epoch milliseconds; others are counted as ``bad_timestamp``.
MIN_EVENT_MS = -62_135_596_800_000
MAX_EVENT_MS = 253_402_300_799_999
_BLANK = " \t\n\r\f\v"
SHARED_PREFILTER_MIN_FILTERS = 2  # from this many filters with literals, scan them in one pass
#: The most sets of literals found whose filters to visit an evaluator remembers.
_VISITS_HELD = 4096

#: A metric filter is disabled when its dimensions take this many distinct value sets
#: within :data:`DIMENSION_WINDOW_MS` of event time (§8.4 [adopted], after the
#: PutMetricFilter API reference: AWS "might disable a metric filter if it generates
#: 1,000 different name/value pairs for your specified dimensions within an hour").
DIMENSION_SETS_LIMIT = 1000
DIMENSION_WINDOW_MS = 3_600_000

log = logging.getLogger("castlewatch.engine")


class UnsupportedMetricFilterError(InvalidParameterError):
    """A metric filter setting castlewatch cannot evaluate exactly, so it refuses it."""


class EventEvaluationError(Exception):
    """Evaluating one event raised: a castlewatch bug, never the event's fault.

    Raised by :meth:`LogGroupEvaluator.evaluate_message` once the event's counts are
    taken back, so the event had no effect at all; the caller counts it
    (``malformed["evaluation_error"]``), reports it and goes on with the next event.

    Attributes:
        filter_name: the metric filter being evaluated, or None while the event's time
            was read (``TimestampSpec``).
        cause: the exception raised (also ``__cause__``).
    """

    def __init__(self, filter_name: str | None, cause: BaseException) -> None:
        self.filter_name = filter_name
        self.cause = cause
        where = f"metric filter {filter_name!r}" if filter_name is not None else "reading the event's time"
        super().__init__(f"{where} raised {type(cause).__name__}: {cause}")


@dataclass(frozen=True, slots=True)
class TimestampSpec:
    """Where a ``lines`` event's time comes from.

    ``kind`` ``"json"``: the JSON selector ``selector`` (e.g. ``$.eventTime``);
    ``"position"``: the 1-based space-delimited field ``position`` (e.g. 11 for VPC
    Flow Logs ``start``); ``"ingestion"``: the time the event is read.  ``format``:
    ``iso8601``, ``epoch_s`` or ``epoch_ms``.
    """

    kind: Literal["json", "position", "ingestion"]
    selector: str = ""
    position: int = 0
    format: Literal["iso8601", "epoch_s", "epoch_ms"] = "iso8601"


def _epoch(scale: int) -> Callable[[Any], int | None]:
    def parse(value: Any) -> int | None:
        kind = type(value)
        if kind is not str and kind is not int and kind is not float and kind is not RawNumber:
            return None  # bool, null, objects
        try:
            number = float(value)
        except ValueError:
            return None
        number *= scale
        if number - number != 0:  # inf, nan (also after scaling)
            return None
        return int(number)

    return parse


_TIME_PARSERS: dict[str, Callable[[Any], int | None]] = {
    "iso8601": iso8601_ms,
    "epoch_s": _epoch(1000),
    "epoch_ms": _epoch(1),
}


def parse_time(value: Any, fmt: str) -> int | None:
    """A timestamp value in ``fmt`` -> epoch milliseconds, or None if it does not parse.

    ``iso8601`` takes ``2024-01-02T03:04:05Z`` and offsets (naive times are UTC);
    ``epoch_s`` / ``epoch_ms`` take numbers or numeric strings.
    """
    return _TIME_PARSERS[fmt](value)


def _numeric(node: Any) -> float | None:
    """A metric value from a resolved node (§8.3): numbers and numeric strings, or None.

    Not bounded: the caller checks PutMetricData's range (§9); an integer beyond any
    float is ``inf`` (``float()`` would raise).
    """
    kind = type(node)
    if kind is str and node.isdigit() and node.isascii():  # the common case: a plain integer
        return float(node)
    if kind is float:
        return node
    if kind is int:
        return float(node) if -_MAX_INT <= node <= _MAX_INT else math.copysign(math.inf, node)
    if (kind is str or kind is RawNumber) and ast.NUMBER_RE.fullmatch(node):
        return float(node)
    return None


def _dimension_text(node: Any, message: str, get: Callable[[Any], Any]) -> str | None:
    """A dimension value from a resolved node (§8.3, adopted rules)."""
    kind = type(node)
    if kind is str:
        return node or None
    if kind is bool:
        return "true" if node else "false"
    if kind is RawNumber:
        return str.__str__(node)
    if kind is int and node:
        return repr(node)
    if kind is int or kind is float:  # need the number's source text: decode once more, keeping it
        raw = decode_json_event_exact(message)
        node = get(raw) if raw is not None else None
        return str.__str__(node) if type(node) is RawNumber else None
    return None


class _Reference:
    """A ``metricValue`` / dimension reference compiled against its filter's pattern (§8.3).

    ``kind`` ``"json"`` (``get(doc)`` gives the node or None), ``"field"`` (``$name``:
    ``index`` of the slot so named, -1 when the pattern has none) or ``"position"``
    (``$N``: ``index`` = N - 1 into the event's fields).

    Raises:
        ValueError: ``text`` is not a reference (the config loader rejects those first).
    """

    __slots__ = ("kind", "get", "index", "node")

    def __init__(self, text: str, pattern: FilterPattern | None = None) -> None:
        ref = parse_reference(text)
        if ref is None:
            raise ValueError(f"not a reference: {text}")
        self.kind = ref.kind
        self.get: Callable[[Any], Any] | None = None
        self.index = -1
        if ref.kind == "json":
            getter = path_getter(ref.segments)
            self.get = lambda doc: None if (node := getter(doc)) is MISSING else node
        elif ref.kind == "position":
            self.index = ref.position - 1
        elif pattern is not None and pattern.kind == "space_delimited":
            names = [slot.name for slot in pattern.tree.slots]  # type: ignore[union-attr]
            self.index = names.index(ref.name) if ref.name in names else -1
        self.node = self._resolver(pattern.kind if pattern is not None else "")

    def _resolver(self, pattern_kind: str) -> Callable[[Any, Any, Any], Any]:
        """``(doc, fields, values) -> node or _NOTHING`` for a match of a ``pattern_kind``
        pattern: a JSON reference resolves only on a JSON pattern's document, a field
        reference only on a space-delimited pattern's fields (§8.3, adopted)."""
        i, get = self.index, self.get
        if self.kind == "json" and pattern_kind == "json":
            return lambda doc, fields, values: _NOTHING if (node := get(doc)) is None else node
        if self.kind == "position" and pattern_kind == "space_delimited" and i >= 0:  # $0 names no field
            return lambda doc, fields, values: fields[i] if values is not None and i < len(fields) else _NOTHING
        if self.kind == "field" and i >= 0:
            return lambda doc, fields, values: values[i] if values is not None else _NOTHING
        return lambda doc, fields, values: _NOTHING


def check_supported(f: MetricFilter) -> None:
    """Refuse a valid metric filter castlewatch cannot evaluate exactly (§8.3).

    Raises:
        UnsupportedMetricFilterError: ``fieldSelectionCriteria`` (its selection language
            is not specified well enough), ``emitSystemFieldDimensions`` (the account
            and region of the log group are not known locally).
    """
    if f.field_selection_criteria:
        raise UnsupportedMetricFilterError(
            f"metric filter '{f.filter_name}': fieldSelectionCriteria is not supported by castlewatch "
            "(its selection language is not specified well enough to evaluate exactly)"
        )
    if f.emit_system_field_dimensions:
        raise UnsupportedMetricFilterError(
            f"metric filter '{f.filter_name}': emitSystemFieldDimensions needs the account and region "
            "of the log group, which a local engine does not have; remove it"
        )


class _CompiledFilter:
    """One metric filter, ready to run: pattern, value, dimensions, default (§8.3)."""

    __slots__ = (
        "name", "pattern", "kind", "value", "value_ref", "dims", "default", "key", "silent", "check",
        "dimension_sets", "expiry", "clock", "disabled",
    )

    def __init__(self, f: MetricFilter) -> None:
        check_supported(f)
        t = f.metric_transformations[0]
        self.name = f.filter_name
        self.pattern: FilterPattern = compile_pattern(f.filter_pattern)
        self.kind = self.pattern.kind
        # `applyOnTransformedLogs: true` without a transformer publishes nothing (§8.3)
        self.silent = f.apply_on_transformed_logs
        unit = t.unit or "None"
        literal = ast.NUMBER_RE.fullmatch(t.metric_value)
        self.value = float(t.metric_value) if literal else None
        self.value_ref = None if literal else _Reference(t.metric_value, self.pattern)
        self.dims = tuple((name, _Reference(ref, self.pattern)) for name, ref in (t.dimensions or {}).items())
        self.key: MetricKey = (t.metric_namespace, t.metric_name, (), unit)
        self.default = t.default_value  # never together with dimensions (§8.2 step 4)
        self.check: Callable[[set[int]], bool] | None = None  # the shared scanner's prefilter
        # dimension cardinality (§8.4): value set -> its latest event time (ms), and the
        # latest event time the filter published at; a disabled filter evaluates nothing
        self.dimension_sets: dict[tuple, int] | None = {} if self.dims else None
        # a heap of (event time, value set), one entry per set, pruned from its front (see
        # LogGroupEvaluator._count_dimension_set)
        self.expiry: list[tuple[int, tuple]] = []
        self.clock = -(2**62)
        self.disabled = False

    def warnings(self, f: MetricFilter) -> list[str]:
        """Why this filter can never publish, if a reference cannot resolve on its pattern.

        The service accepts such filters (references are not checked, §8.2 step 3) and
        they publish nothing (§8.3); castlewatch runs them too, and says so.
        """
        t = f.metric_transformations[0]
        refs = [("metricValue", t.metric_value, self.value_ref)]
        refs += [(f"dimension {name}", (t.dimensions or {})[name], ref) for name, ref in self.dims]
        out = []
        for what, text, ref in refs:
            if ref is None:
                continue
            wants = "json" if ref.kind == "json" else "space_delimited"
            if self.kind != wants:
                reason = f"it refers to a {'JSON' if wants == 'json' else 'space-delimited'} value"
                out.append(f"{what} {text} cannot resolve on a {self.kind} pattern ({reason})")
            elif ref.kind == "field" and ref.index < 0:
                out.append(f"{what} {text} names no field of the pattern")
            elif ref.kind == "position" and ref.index < 0:
                out.append(f"{what} {text} names no field (fields are numbered from $1)")
        return [f"metric filter '{self.name}': {w}: it publishes nothing when it matches" for w in out]


class LogGroupEvaluator:
    """Every metric filter of one log group, evaluated together on each event.

    Args:
        filters: the log group's metric filters (already validated, §8.2).
        stats: counters to update (matched per filter, non-JSON events, malformed).
        timestamp: where ``lines`` events (``LogEvent.timestamp == READ_FROM_MESSAGE``) take their
            time from; None when every event carries its own.

    Attributes:
        warnings: one line per filter reference that can never resolve (see
            ``_CompiledFilter.warnings``).

    Raises:
        UnsupportedMetricFilterError: a filter uses a setting castlewatch refuses.
    """

    def __init__(self, filters: list[MetricFilter], stats: Stats, timestamp: TimestampSpec | None = None) -> None:
        self.filters = [_CompiledFilter(f) for f in filters]
        self.warnings = [w for f, c in zip(filters, self.filters) for w in c.warnings(f)]
        self.stats = stats
        self.timestamp = timestamp
        self._time_get = None
        if timestamp is not None and timestamp.kind == "json":
            self._time_get = _Reference(timestamp.selector).get
        for f in self.filters:
            stats.matched.setdefault(f.name, 0)
        self._json_names = tuple(f.name for f in self.filters if f.kind == "json" and not f.silent)
        # Many filters with literals: find all their literals in one pass per event, and
        # visit only the filters one of whose literals occurs (plus those that must see
        # every event: no literal, a defaultValue, or JSON literals behind \u escapes).
        literal_filters = [
            f for f in self.filters if f.kind != "terms" and f.pattern.requirement is not None and not f.silent
        ]
        self._scanner = None
        self._always = tuple(i for i, f in enumerate(self.filters) if not f.silent)
        if len(literal_filters) >= SHARED_PREFILTER_MIN_FILTERS:
            scanner = self._scanner = LiteralScanner([f.pattern.requirement for f in literal_filters])
            by_literal: dict[int, set[int]] = {}
            for i, f in enumerate(self.filters):
                if f in literal_filters:
                    f.check = scanner.predicate(f.pattern.requirement)
                    for lit in requirement_literals(f.pattern.requirement):
                        by_literal.setdefault(scanner.ids[lit], set()).add(i)
            self._by_literal = {lit: frozenset(ids) for lit, ids in by_literal.items()}
            self._always = tuple(
                i for i, f in enumerate(self.filters) if not f.silent and (f.check is None or f.default is not None)
            )
            self._json_checked = tuple(i for i, f in enumerate(self.filters) if f.check is not None and f.kind == "json")
        self._visits: dict[frozenset[int], list[int]] = {}  # _visit_found's, per set of literals found

    @property
    def scanner_ids(self) -> dict[str, int] | None:
        """Literal -> id of the shared literal scanner (the ids ``found`` holds in
        :meth:`evaluate_message`), or None when this evaluator has no shared scanner."""
        return None if self._scanner is None else self._scanner.ids

    def _visit(self, message: str) -> tuple[Any, Any]:
        """(filter indexes to evaluate, literals found) for one event, with the scanner."""
        found = self._scanner.scan(message)
        if self._json_checked and "\\u" in message:  # JSON literals may be \u-escaped
            return sorted(set(self._always).union(self._json_checked, self._literal_filters(found))), None
        return self._visit_found(found), found

    def _visit_found(self, found: set[int] | frozenset[int]) -> Any:
        """The filter indexes to evaluate on an event (without ``\\u``) where ``found`` are
        the scanner's literals that occur (for a frozenset, the batch path's, remembered:
        the same few sets come again and again)."""
        if not found:  # the usual event: none of the literals, nothing beyond the always-visited
            return self._always
        if type(found) is frozenset:
            visit = self._visits.get(found)
            if visit is None:
                visit = sorted(set(self._always).union(self._literal_filters(found)))
                if len(self._visits) < _VISITS_HELD:
                    self._visits[found] = visit
            return visit
        return sorted(set(self._always).union(self._literal_filters(found)))

    def _literal_filters(self, found: set[int]) -> set[int]:
        """Indexes of the filters that use one of the literals found."""
        by_literal = self._by_literal
        return set().union(*(by_literal[lit] for lit in found))

    def evaluate(self, event: LogEvent, emit: Emit) -> bool:
        """Run every filter on one event and ``emit`` its contributions (see :meth:`evaluate_message`)."""
        return self.evaluate_message(event.message, event.timestamp, emit)

    def evaluate_message(self, message: str, ts: int, emit: Emit, found: frozenset[int] | None = None) -> bool:
        """Run every filter on one log event message and ``emit`` its contributions.

        ``ts`` is the event time in epoch ms, or ``READ_FROM_MESSAGE`` to read it from the message per the
        timestamp spec, only once something is to be emitted.  Returns False (and
        counts the event as malformed, ``bad_timestamp``) when that time cannot be
        determined or is outside years 1-9999 (:data:`MIN_EVENT_MS`, :data:`MAX_EVENT_MS`);
        the event then contributes nothing and counts as no filter's match.

        All or nothing per event (as Vector's ``log_to_metric`` does): every filter is run
        first, its matches counted as they are found; the event's contributions are
        emitted (and its dimension sets noted, §8.4) only once every filter has run.  A
        reference value beyond PutMetricData's range (±2^360, §9, e.g. ``1e400``)
        publishes nothing and is counted in ``Stats.out_of_range``; a dimension value
        PutMetricData refuses (not ASCII, whitespace only, over 1,024 characters; §8.3,
        §9) publishes nothing and is counted in ``Stats.bad_dimension_values``.

        ``found``: the ids of this evaluator's scanner literals (:attr:`scanner_ids`) that
        occur in the message, when a block scan already looked (the batch path,
        :mod:`castlewatch.engine.batch.literal_plan`): exactly the set its own scan would
        find (the filters visited decide the ``not_json`` counter), and only for a message
        without ``\\u``. None: the evaluator scans the message itself.

        Raises:
            EventEvaluationError: evaluating a filter (or reading the event's time) on this
                event raised, a castlewatch bug: the event then had no effect at all (the
                counters are as they were before it), and the error names the filter.
        """
        stats = self.stats
        if ts != READ_FROM_MESSAGE and not MIN_EVENT_MS <= ts <= MAX_EVENT_MS:
            stats.count_malformed("bad_timestamp")
            return False
        doc: Any = _NOTHING  # decoded lazily, at most once
        fields: list[str] | None = None
        hits: list[str] | None = None  # filters matched (counted): taken back if the event fails
        out: list | None = None  # contributions (filter, key, value), emitted once every filter ran
        unpublished: list[str] | None = None  # filters whose value is out of PutMetricData's range
        bad_dims: list[str] | None = None  # filters with a dimension value PutMetricData refuses
        not_json = False  # counted in stats.not_json
        filters = self.filters
        f: _CompiledFilter | None = None
        try:
            if self._scanner is None:
                visit, found = self._always, None
            elif found is None:
                visit, found = self._visit(message)
            else:
                visit = self._visit_found(found)
            if self._json_names and message.lstrip(_BLANK)[:1] != "{":
                doc = None  # cannot be a JSON object: no decode needed to know
                not_json = True
                self._count_not_json()
            for i in visit:
                f = filters[i]
                if f.disabled:
                    continue
                kind = f.kind
                values = None
                check = f.check if found is not None else None
                matched = False
                if kind == "json":
                    if check is not None:
                        passes = check(found)
                    else:
                        pre = f.pattern.prefilter
                        passes = pre is None or pre(message)
                    if passes and doc is not None:
                        if doc is _NOTHING:
                            doc = decode_json_event(message)
                            if doc is None:
                                not_json = True
                                self._count_not_json()
                        if doc is not None:
                            matched = f.pattern.match_document(doc, message)
                elif kind == "space_delimited":
                    pre = f.pattern.prefilter
                    if check(found) if check is not None else pre is None or pre(message):
                        if fields is None:
                            fields = split_fields(message)
                        values = f.pattern.match_fields(fields, message)
                        matched = values is not None
                else:
                    matched = (check is None or check(found)) and f.pattern.matches(message)
                if matched:
                    stats.matched[f.name] += 1
                    if hits is None:
                        hits = [f.name]
                    else:
                        hits.append(f.name)
                    value = f.value
                    if value is None:
                        value = self._resolve_value(f, doc, fields, values, message)
                        if value is None:
                            continue
                        if not -_MAX_VALUE <= value <= _MAX_VALUE:  # PutMetricData refuses it (§9)
                            if unpublished is None:
                                unpublished = [f.name]
                            else:
                                unpublished.append(f.name)
                            continue
                    key = f.key
                    if f.dims:
                        dims = self._resolve_dimensions(f, doc, fields, values, message)
                        if dims is None:
                            continue
                        if dims is _REFUSED:
                            if bad_dims is None:
                                bad_dims = [f.name]
                            else:
                                bad_dims.append(f.name)
                            continue
                        key = (key[0], key[1], dims, key[3])
                elif f.default is not None:
                    key, value = f.key, f.default
                else:
                    continue
                if out is None:
                    out = [(f, key, value)]
                else:
                    out.append((f, key, value))
            f = None
            if out is not None and ts == READ_FROM_MESSAGE:
                ts, doc, fields = self._event_time(message, doc, fields)
                if ts is None or not MIN_EVENT_MS <= ts <= MAX_EVENT_MS:
                    for name in hits or ():
                        stats.matched[name] -= 1
                    stats.count_malformed("bad_timestamp")
                    return False
        except Exception as err:
            self._take_back(hits, not_json)
            raise EventEvaluationError(f.name if f is not None else None, err) from err
        if unpublished is not None:
            out_of_range = stats.out_of_range
            for name in unpublished:
                out_of_range[name] = out_of_range.get(name, 0) + 1
        if bad_dims is not None:
            bad_dimension_values = stats.bad_dimension_values
            for name in bad_dims:
                bad_dimension_values[name] = bad_dimension_values.get(name, 0) + 1
        if out is None:
            return True
        for f, key, value in out:
            if f.dimension_sets is not None:
                self._count_dimension_set(f, key[2], ts)
            emit(key, ts, value)
        return True

    def _take_back(self, hits: list[str] | None, not_json: bool) -> None:
        """Undo the counts of an event whose evaluation raised (matches, not JSON)."""
        matched = self.stats.matched
        for name in hits or ():
            matched[name] -= 1
        if not_json:
            counts = self.stats.not_json
            for name in self._json_names:
                counts[name] -= 1

    def _count_dimension_set(self, f: _CompiledFilter, dims: tuple, ts: int) -> None:
        """Note a dimension value set the filter publishes; disable the filter (after this
        contribution) when it reaches :data:`DIMENSION_SETS_LIMIT` distinct sets within
        the last :data:`DIMENSION_WINDOW_MS` of its event time (§8.4 [adopted]).

        The sets older than that window are dropped when the limit is reached, from the
        front of ``f.expiry``, a heap with one ``(time, set)`` entry per set: an entry's
        time is the set's time when it was pushed, at most its latest time (a set seen
        again only updates ``f.dimension_sets``), or already out of the window. A popped
        entry whose set was seen since is pushed again with its latest time, so a
        check costs O(log n) per set dropped or refreshed, not a scan of all the sets.
        """
        sets = f.dimension_sets
        if ts > f.clock:
            f.clock = ts
        last = sets.get(dims)
        if last is not None and last > f.clock - DIMENSION_WINDOW_MS:  # already counted
            if ts > last:
                sets[dims] = ts
            return
        sets[dims] = ts
        if last is None:
            heappush(f.expiry, (ts, dims))
        if len(sets) < DIMENSION_SETS_LIMIT:
            return
        oldest = f.clock - DIMENSION_WINDOW_MS
        expiry = f.expiry
        while expiry and expiry[0][0] <= oldest:
            _, old = heappop(expiry)
            latest = sets[old]
            if latest <= oldest:
                del sets[old]
            else:
                heappush(expiry, (latest, old))
        if len(sets) >= DIMENSION_SETS_LIMIT:
            f.disabled = True
            reason = (
                f"metric filter '{f.name}' disabled: its dimensions took {len(sets)} distinct value sets within an "
                f"hour of event time (the limit is {DIMENSION_SETS_LIMIT}, as AWS disables such filters); "
                f"it publishes nothing more in this run. Latest set: {dict(dims)}"
            )
            self.stats.disabled_filters[f.name] = reason
            log.error(reason)

    def reset(self) -> None:
        """Forget what the events so far left (each filter's dimension value sets and
        whether it was disabled, §8.4): as newly compiled, without compiling again (a
        backfill's next partition, :mod:`castlewatch.backfill.task`)."""
        for f in self.filters:
            f.dimension_sets = {} if f.dims else None
            f.expiry = []
            f.clock = -(2**62)
            f.disabled = False

    # -- checkpoints --

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state of the dimension cardinality counts (filters with dimensions)."""
        return {
            f.name: {
                "clock": f.clock,
                "disabled": f.disabled,
                "sets": [[[list(d) for d in dims], t] for dims, t in f.dimension_sets.items()],
            }
            for f in self.filters
            if f.dimension_sets is not None
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`."""
        for f in self.filters:
            item = state.get(f.name)
            if item is None or f.dimension_sets is None:
                continue
            f.clock, f.disabled = item["clock"], item["disabled"]
            f.dimension_sets = {tuple((n, v) for n, v in dims): t for dims, t in item["sets"]}
            f.expiry = [(t, dims) for dims, t in f.dimension_sets.items()]
            heapify(f.expiry)

    def _count_not_json(self) -> None:
        """An event that is not a JSON object met every JSON filter of the group (§5.4)."""
        not_json = self.stats.not_json
        for name in self._json_names:
            not_json[name] = not_json.get(name, 0) + 1

    def _event_time(self, message: str, doc: Any, fields: list[str] | None) -> tuple[int | None, Any, Any]:
        """The event's time from the message per the timestamp spec: (ms or None, doc, fields)."""
        spec = self.timestamp
        if spec is None or spec.kind == "ingestion":
            return int(time.time() * 1000), doc, fields
        parse = _TIME_PARSERS[spec.format]
        if spec.kind == "json":
            if doc is _NOTHING:
                doc = decode_json_event(message)
            return (parse(self._time_get(doc)) if doc is not None else None), doc, fields
        if fields is None:
            fields = split_fields(message)
        return (parse(fields[spec.position - 1]) if len(fields) >= spec.position else None), doc, fields

    @staticmethod
    def _resolve_value(f: _CompiledFilter, doc, fields, values, message) -> float | None:
        node = f.value_ref.node(doc, fields, values)
        return None if node is _NOTHING else _numeric(node)

    def _resolve_dimensions(self, f: _CompiledFilter, doc, fields, values, message):
        out = []
        for name, ref in f.dims:
            node = ref.node(doc, fields, values)
            if node is _NOTHING:
                return None
            text = _dimension_text(node, message, ref.get) if ref.kind == "json" else (node or None)
            if text is None:
                return None
            if not text.isascii() or len(text) > MAX_DIMENSION_VALUE or text.isspace():
                return _REFUSED  # PutMetricData refuses it (§9): counted, §8.3
            out.append((name, text))
        return tuple(out)


