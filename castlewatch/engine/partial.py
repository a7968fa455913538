"""Partial aggregates and their exact merge (spec §8.4): what a backfill's partitions return.

A :class:`PartialAggregate` is what evaluating part of one source's events gives: one
datapoint per (metric key, minute) and the counters (:class:`~castlewatch.model.Stats`)
of that part. It is the evaluator's ``emit`` target (:meth:`PartialAggregate.add`), with
no watermark and no lateness: every contribution goes to the datapoint of its own minute.

:func:`merge` combines two partial aggregates of disjoint parts of the events into the
partial aggregate of their union, exactly:

- Values/Counts: the multisets add up (:meth:`~castlewatch.model.Datapoint.absorb`);
  SampleCount adds up; Minimum and Maximum are the smaller and the larger;
- Sum: computed from the merged Values/Counts, exactly, rounded once
  (:mod:`castlewatch.engine.exact_sum`), never by adding partial float sums, whose
  result would depend on the order; the single-process aggregator
  (:class:`~castlewatch.engine.aggregate.MinuteAggregator`) publishes that same Sum;
- every counter of Stats adds up (per reason, per filter);
- a value equal to zero is kept as the zero that came first in the order of the events
  (as one datapoint keeps it): each partial aggregate knows the ordinal of its events'
  first object (``origin``), and each of its datapoints the ordinal of the object its
  zero came from (``zero_at``); a merge keeps the zero of the lower one. Minimum and
  Maximum follow the same rule on a tie between ``0.0`` and ``-0.0``.

So the merge is associative and commutative: any split of the events into partitions,
merged in any order and any grouping, gives the aggregate of the whole, datapoint for
datapoint, Values/Counts, Sum and the sign of a zero included, provided each partition
was evaluated in the order of the events and the ordinals follow that order.

What a merge cannot know: whether the service would have disabled a metric filter for
too many dimension value sets (§8.4: 1,000 within an hour, decided event by event in
order). :func:`dimension_set_risks` says which filters come near enough that the order
could matter; a backfill refuses to publish them rather than guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from castlewatch.engine.evaluate import (
    DIMENSION_SETS_LIMIT,
    DIMENSION_WINDOW_MS,
    EventEvaluationError,
    LogGroupEvaluator,
    MetricKey,
)
from castlewatch.engine.exact_sum import point_sum
from castlewatch.model import Datapoint, LogEvent, MetricFilter, Stats

MINUTE_MS = 60_000
PointKey = tuple[MetricKey, int]  # (metric key, minute start in epoch ms)


class PartialAggregate:
    """The datapoints and counters of part of one source's events.

    Args:
        stats: the counters of those events (a new :class:`Stats` if None).
        origin: the ordinal of the first object (file, S3 object) those events came
            from, in the order a replay reads them; orders zeros in :func:`merge`.

    Attributes:
        points: (metric key, minute start ms) -> datapoint (``sum`` is a running sum
            until :meth:`datapoints` makes it exact).
        stats, origin: as given.
        zero_at: point key -> ordinal of the object its zero came from, where not ``origin``.
    """

    __slots__ = ("points", "stats", "origin", "zero_at")

    def __init__(self, stats: Stats | None = None, origin: int = 0) -> None:
        self.points: dict[PointKey, Datapoint] = {}
        self.stats = stats if stats is not None else Stats()
        self.origin = origin
        self.zero_at: dict[PointKey, int] = {}

    def add(self, key: MetricKey, timestamp_ms: int, value: float) -> None:
        """Fold one contribution into the datapoint of its minute (an evaluator's ``emit``)."""
        minute = timestamp_ms - timestamp_ms % MINUTE_MS
        point = self.points.get((key, minute))
        if point is None:
            point = self.points[key, minute] = Datapoint(key[0], key[1], key[2], key[3], minute // 1000)
        point.add(value)

    def evaluate(
        self,
        evaluator: LogGroupEvaluator,
        events: Iterable[LogEvent],
        on_error: Callable[[LogEvent, EventEvaluationError], None] | None = None,
    ) -> None:
        """Evaluate ``events`` in order with ``evaluator`` (the log group's metric
        filters, :class:`~castlewatch.engine.evaluate.LogGroupEvaluator`) into this
        partial aggregate, its counters into :attr:`stats`, as the engine's replay does
        (:meth:`castlewatch.engine.runner.Engine.process`): every event counts in
        ``events_read``; one whose evaluation raises (a castlewatch bug) had no effect, is
        counted ``malformed["evaluation_error"]`` and handed to ``on_error``.

        The evaluator keeps its own state (the dimension value sets of §8.4) from one
        call to the next; its counters go to this partial aggregate's ``stats``.
        """
        stats = self.stats
        for f in evaluator.filters:
            stats.matched.setdefault(f.name, 0)
        evaluator.stats = stats
        evaluate, add = evaluator.evaluate, self.add
        read = 0
        for event in events:
            read += 1
            try:
                evaluate(event, add)
            except EventEvaluationError as err:
                stats.count_malformed("evaluation_error")
                if on_error is not None:
                    on_error(event, err)
        stats.events_read += read

    def datapoints(self) -> list[Datapoint]:
        """Every datapoint with its exact Sum, ordered by minute, then namespace, metric
        name, dimensions and unit."""
        out = []
        for (key, minute), point in sorted(self.points.items(), key=_order):
            point.sum = point_sum(point)
            out.append(point)
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _order(item: tuple[PointKey, Datapoint]) -> tuple:
    (namespace, name, dimensions, unit), minute = item[0]
    return (minute, namespace, name, dimensions, unit)


def merge(a: PartialAggregate, b: PartialAggregate) -> PartialAggregate:
    """The partial aggregate of the events of ``a`` and ``b`` (disjoint parts of one
    source's events): see the module docstring. Associative and commutative.

    ``a`` and ``b`` are consumed (their datapoints are reused): use neither afterwards.
    """
    if len(a.points) < len(b.points):
        a, b = b, a  # fold the smaller into the larger
    out = PartialAggregate(merge_stats(a.stats, b.stats), min(a.origin, b.origin))
    points, zero_at = a.points, out.zero_at
    for key in a.zero_at.keys() | ({key for key in points} if a.origin != out.origin else set()):
        at = a.zero_at.get(key, a.origin)
        if at != out.origin and points[key].zero() is not None:
            zero_at[key] = at
    for key, theirs in b.points.items():
        their_zero = b.zero_at.get(key, b.origin) if theirs.zero() is not None else None
        ours = points.get(key)
        if ours is None:
            points[key] = theirs
            if their_zero is not None and their_zero != out.origin:
                zero_at[key] = their_zero
            continue
        our_zero = zero_at.get(key, out.origin) if ours.zero() is not None else None
        if their_zero is not None and (our_zero is None or their_zero < our_zero):
            if our_zero is not None:
                ours, theirs = theirs, ours  # theirs holds the earlier zero: it is kept
            if their_zero != out.origin:
                zero_at[key] = their_zero
            else:
                zero_at.pop(key, None)
        ours.absorb(theirs)  # its sum is a running one until datapoints() makes it exact
        points[key] = ours
    out.points = points
    return out


def merge_all(parts: Iterable[PartialAggregate]) -> PartialAggregate:
    """The merge of every partial aggregate of ``parts`` (an empty one for none)."""
    total: PartialAggregate | None = None
    for part in parts:
        total = part if total is None else merge(total, part)
    return total if total is not None else PartialAggregate()


def merge_datapoints(points: Iterable[Datapoint]) -> list[Datapoint]:
    """The datapoints of ``points`` with those of one metric, dimension set, unit and
    minute merged into one, as CloudWatch adds up the datapoints of a minute (a replay
    publishes a minute's late contributions in a datapoint of their own, §8.4): ordered as
    :meth:`PartialAggregate.datapoints`, Sums exact. Where two of them hold a zero, the
    zero of the one made first (``Datapoint.serial``) is kept. ``points`` are consumed."""
    out = PartialAggregate()
    for point in sorted(points, key=lambda p: p.serial):
        key = ((point.namespace, point.metric_name, point.dimensions, point.unit), point.timestamp * 1000)
        held = out.points.get(key)
        if held is None:
            out.points[key] = point
        else:
            held.absorb(point)
    return out.datapoints()


def merge_stats(a: Stats, b: Stats) -> Stats:
    """Counters of two disjoint parts of a run, added up (a new :class:`Stats`): numbers
    add, per-key counts add per key; ``disabled_filters`` (filter -> reason) keeps, for a
    filter in both, the reason that sorts first (so the merge is commutative)."""
    out = Stats()
    for field in dataclasses.fields(Stats):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, dict):
            merged = dict(x)
            for key, value in y.items():
                held = merged.get(key)
                if held is None:
                    merged[key] = value
                elif isinstance(value, str):
                    merged[key] = min(held, value)
                else:
                    merged[key] = held + value
            setattr(out, field.name, merged)
        else:
            setattr(out, field.name, x + y)
    return out


def dimension_set_risks(points: Iterable[Datapoint], filters: Iterable[MetricFilter]) -> dict[str, int]:
    """Metric filters with dimensions that may have been disabled had their events been
    evaluated in one pass (§8.4: :data:`DIMENSION_SETS_LIMIT` distinct dimension value
    sets within :data:`DIMENSION_WINDOW_MS` of event time, decided in event order):
    filter name -> the most distinct sets seen in any window of 61 minutes.

    One pass only ever holds sets seen within the last hour of its clock, so the sets it
    holds at any time were all seen within 61 consecutive minutes: a filter whose metric
    never has :data:`DIMENSION_SETS_LIMIT` distinct sets within 61 minutes is certainly
    never disabled, and is not named. A filter named here may or may not have been (it
    depends on the order): a caller that merged partitions cannot tell. The sets of a
    metric are counted over every filter publishing it (an upper bound for each).
    """
    points = list(points)
    span = DIMENSION_WINDOW_MS // MINUTE_MS + 1  # minutes an hour of event time touches
    risks: dict[str, int] = {}
    for f in filters:
        t = f.metric_transformations[0]
        if not t.dimensions:
            continue
        metric = (t.metric_namespace, t.metric_name, t.unit or "None")
        by_minute: dict[int, set] = {}
        for p in points:
            if (p.namespace, p.metric_name, p.unit) == metric:
                by_minute.setdefault(p.timestamp // 60, set()).add(p.dimensions)
        most = _most_in_window(by_minute, span)
        if most >= DIMENSION_SETS_LIMIT:
            risks[f.filter_name] = most
    return risks


def _most_in_window(by_minute: dict[int, set], span: int) -> int:
    """The most distinct sets within any ``span`` consecutive minutes."""
    minutes = sorted(by_minute)
    held: dict[Any, int] = {}  # set -> minutes of the window it is in
    most = 0
    start = 0
    for minute in minutes:
        for dims in by_minute[minute]:
            held[dims] = held.get(dims, 0) + 1
        while minutes[start] <= minute - span:
            for dims in by_minute[minutes[start]]:
                held[dims] -= 1
                if not held[dims]:
                    del held[dims]
            start += 1
        most = max(most, len(held))
    return most
