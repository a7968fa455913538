"""Partial aggregates and their exact merge (:mod:`castlewatch.engine.partial`, spec §8.4),
and the exact Sum every closed datapoint carries (:mod:`castlewatch.engine.exact_sum`).

The property: evaluating a list of events in one pass gives the same datapoints and
counters as splitting the events into any partitions, evaluating each on its own (each
object into its own partial aggregate, as a backfill does) and merging the partials in
any order and grouping; and the single-process aggregator publishes those datapoints too.
"""

from __future__ import annotations

import math
import pickle
import random
from fractions import Fraction

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.evaluate import DIMENSION_SETS_LIMIT, LogGroupEvaluator
from castlewatch.engine.exact_sum import exact_sum_arrays, exact_sum_items, point_sum
from castlewatch.engine.partial import PartialAggregate, dimension_set_risks, merge, merge_all, merge_stats
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import SMALL_VALUES, Datapoint, LogEvent, Stats

GROUP = "app"
M0 = 1_709_629_200_000  # 2024-03-05T09:00:00Z (ms)


def _filter(name: str, pattern: str, value: str, **transformation) -> dict:
    t = {"metricName": name, "metricNamespace": "ns", "metricValue": value, **transformation}
    return {"filterName": name, "filterPattern": pattern, "logGroupName": GROUP, "metricTransformations": [t]}


FILTERS = load_metric_filters([
    _filter("errors", "{ $.level = \"ERROR\" }", "1", defaultValue=0),
    _filter("value", "{ $.v = * }", "$.v"),
    _filter("by-host", "{ $.v = * }", "$.v", dimensions={"Host": "$.host"}, unit="Bytes"),
    _filter("terms", "timeout", "2"),
])

VALUES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 0.1, 0.2, 0.3, 1e100, -1e100, 2.5, 5e-324, 1e-300]),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.integers(-5, 5).map(float),
)


@st.composite
def events(draw) -> list[LogEvent]:
    out = []
    for i in range(draw(st.integers(0, 60))):
        kind = draw(st.integers(0, 4))
        ts = M0 + draw(st.integers(0, 5)) * 60_000 + draw(st.integers(0, 59_999))
        if kind == 0:
            message = "request timeout after 30 s"
        elif kind == 1:
            message = "not json at all"
        else:
            doc = {"level": draw(st.sampled_from(["ERROR", "INFO"])), "host": draw(st.sampled_from(["a", "b", "c"]))}
            if kind != 2:
                doc["v"] = draw(VALUES)
            message = orjson.dumps(doc).decode()
        out.append(LogEvent(ts, message, GROUP))
    return out


def _evaluate(objects: list[tuple[int, list[LogEvent]]]) -> PartialAggregate:
    """A partition as a backfill evaluates it: one evaluator, each object into its own
    partial aggregate (origin: its ordinal), merged into the partition's."""
    evaluator = LogGroupEvaluator(FILTERS, Stats())
    total = None
    for ordinal, evs in objects:
        part = PartialAggregate(origin=ordinal)
        part.evaluate(evaluator, evs)
        total = part if total is None else merge(total, part)
    return total


def _exact(points: list[Datapoint]) -> list[tuple]:
    """Comparable down to the bits: repr tells 0.0 from -0.0."""
    return [
        (p.namespace, p.metric_name, p.dimensions, p.unit, p.timestamp, p.sum.hex(), p.sample_count,
         repr(p.minimum), repr(p.maximum), [(repr(v), c) for v, c in p.items()])
        for p in points
    ]


@settings(max_examples=200, deadline=None)
@given(events(), st.data())
def test_any_split_merged_in_any_order_is_the_unsplit_aggregate(evs, data):
    whole = _evaluate([(0, evs)]) if evs else PartialAggregate()
    # single-process replay: the engine's own aggregator, nothing late
    stats = Stats()
    aggregator = MinuteAggregator(stats, allowed_lateness_ms=2**62)
    evaluator = LogGroupEvaluator(FILTERS, stats)
    for event in evs:
        evaluator.evaluate(event, aggregator.add)
    replayed = sorted(aggregator.close_all(), key=lambda p: (p.timestamp, p.namespace, p.metric_name, p.dimensions, p.unit))
    expected = _exact(whole.datapoints())
    assert _exact(replayed) == expected

    # each event its own object (ordinal = position); any assignment of objects to partitions
    n_parts = data.draw(st.integers(1, 5))
    assignment = [data.draw(st.integers(0, n_parts - 1)) for _ in evs]
    partitions = [[(i, [e]) for i, (e, p) in enumerate(zip(evs, assignment)) if p == k] for k in range(n_parts)]
    partials = [_evaluate(objs) for objs in partitions if objs]
    order = data.draw(st.permutations(range(len(partials))))
    pool = [partials[i] for i in order]
    while len(pool) > 1:  # any grouping: merge two at positions drawn
        i = data.draw(st.integers(0, len(pool) - 1))
        a = pool.pop(i)
        j = data.draw(st.integers(0, len(pool) - 1))
        pool[j] = merge(a, pool[j]) if data.draw(st.booleans()) else merge(pool[j], a)
    merged = pool[0] if pool else PartialAggregate()
    assert _exact(merged.datapoints()) == expected
    if evs:
        counters = merged.stats
        assert counters == whole.stats
        assert counters.events_read == len(evs)
        assert {k: v for k, v in stats.matched.items()} == counters.matched


def test_a_zero_keeps_the_sign_of_the_first_event_whatever_the_merge_order():
    first = [LogEvent(M0, '{"v": -0.0}', GROUP)]
    second = [LogEvent(M0 + 1, '{"v": 0.0}', GROUP), LogEvent(M0 + 2, '{"v": 3}', GROUP)]
    for a_first in (True, False):
        a, b = _evaluate([(0, first)]), _evaluate([(1, second)])
        merged = merge(a, b) if a_first else merge(b, a)
        point = next(p for p in merged.datapoints() if p.metric_name == "value")
        assert [(repr(v), c) for v, c in point.items()] == [("-0.0", 2), ("3.0", 1)]
        assert repr(point.minimum) == "-0.0" and point.sum == 3.0


def test_large_datapoints_merge_as_arrays():
    a, b = PartialAggregate(origin=0), PartialAggregate(origin=1)
    key = ("ns", "big", (), "None")
    for i in range(500):
        a.add(key, M0, i / 7)
        b.add(key, M0 + 1, (i + 250) / 7)
    merged = merge(b, a).datapoints()
    assert len(merged) == 1
    point = merged[0]
    assert point.sample_count == 1000 and point.distinct_values == 750
    exact = sum(Fraction(i / 7) for i in range(500)) + sum(Fraction((i + 250) / 7) for i in range(500))
    assert point.sum == float(exact)


def test_the_sum_is_exact_whatever_the_order():
    values = [1e16, 1.0, -1e16, 1.0, 0.1, 0.2, 0.3]
    sums = set()
    for seed in range(20):
        random.Random(seed).shuffle(values)
        agg = MinuteAggregator(Stats())
        for v in values:
            agg.add(("ns", "m", (), "None"), M0, v)
        sums.add(agg.close_all()[0].sum)
    assert sums == {float(sum(map(Fraction, values)))}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.floats(allow_nan=False, allow_infinity=False), st.integers(1, 2**40), max_size=80))
def test_exact_sum_is_the_correctly_rounded_sum(multiset):
    items = sorted(multiset.items())
    exact = sum((Fraction(v) * c for v, c in items), Fraction(0))
    try:
        want = float(exact) + 0.0
    except OverflowError:
        want = math.inf if exact > 0 else -math.inf
    assert exact_sum_items(items).hex() == want.hex()
    values = np.array([v for v, _ in items], np.float64)
    counts = np.array([c for _, c in items], np.int64)
    assert exact_sum_arrays(values, counts).hex() == want.hex()
    point = Datapoint("ns", "m", (), "None", 0)
    for v, c in items:
        point.add(v, c)
    assert point_sum(point).hex() == want.hex()


def test_stats_merge_adds_every_counter():
    a = Stats(events_read=3, malformed={"invalid_json": 1}, matched={"f": 2}, late_events=1,
              disabled_filters={"g": "b reason"}, out_of_range={"f": 1})
    b = Stats(events_read=4, malformed={"invalid_json": 2, "too_large": 1}, matched={"f": 1, "h": 0},
              disabled_filters={"g": "a reason"}, datapoints_written=5)
    for merged in (merge_stats(a, b), merge_stats(b, a)):
        assert merged == Stats(events_read=7, malformed={"invalid_json": 3, "too_large": 1}, matched={"f": 3, "h": 0},
                               late_events=1, disabled_filters={"g": "a reason"}, out_of_range={"f": 1},
                               datapoints_written=5)


def test_merge_all_of_nothing_is_empty():
    assert merge_all([]).datapoints() == [] and merge_all([]).stats == Stats()


def test_dimension_set_risks_name_filters_near_the_limit():
    filters = load_metric_filters([_filter("by-host", "{ $.v = * }", "$.v", dimensions={"Host": "$.host"}),
                                   _filter("plain", "{ $.v = * }", "$.v")])
    few, many = PartialAggregate(), PartialAggregate()
    for i in range(DIMENSION_SETS_LIMIT - 1):
        few.add(("ns", "by-host", (("Host", f"h{i}"),), "None"), M0 + i * 1000, 1.0)
    for i in range(DIMENSION_SETS_LIMIT):  # spread over 61 minutes: within one hour of event time
        many.add(("ns", "by-host", (("Host", f"h{i}"),), "None"), M0 + (i % 61) * 60_000, 1.0)
    assert dimension_set_risks(few.datapoints(), filters) == {}
    assert dimension_set_risks(many.datapoints(), filters) == {"by-host": DIMENSION_SETS_LIMIT}
    spread = PartialAggregate()  # the same sets two hours apart each: never 1,000 within an hour
    for i in range(DIMENSION_SETS_LIMIT):
        spread.add(("ns", "by-host", (("Host", f"h{i}"),), "None"), M0 + (i % 2) * 7_200_000, 1.0)
    assert dimension_set_risks(spread.datapoints(), filters) == {}


@pytest.mark.parametrize("distinct", [3, SMALL_VALUES + 50])
def test_a_pickled_partial_aggregate_gives_the_same_datapoints(distinct: int) -> None:
    """A partition's result crosses to the client pickled: a datapoint's values (a dict,
    or arrays and a buffer beyond SMALL_VALUES) and statistics come back whole."""
    key = ("NS", "Bytes", (("action", "ACCEPT"),), "None")
    part = PartialAggregate(origin=4)
    for i in range(distinct * 3):
        part.add(key, 60_000 * (i % 2), float(i % distinct) + 0.25)
    part.stats.events_read = distinct * 3
    copy = pickle.loads(pickle.dumps(part, protocol=5))
    assert copy.origin == 4 and copy.stats.events_read == distinct * 3
    mine, theirs = part.datapoints(), copy.datapoints()
    assert [(p.timestamp, p.sum, p.sample_count, p.minimum, p.maximum, p.values) for p in theirs] == \
        [(p.timestamp, p.sum, p.sample_count, p.minimum, p.maximum, p.values) for p in mine]
    theirs[0].add(1e9)  # still a working datapoint after the round trip
    assert theirs[0].maximum == 1e9
