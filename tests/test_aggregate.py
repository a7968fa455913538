"""Per-minute aggregation (spec filter-patterns.md §8.4) and castlewatch's windows:
:class:`castlewatch.engine.aggregate.MinuteAggregator`, fed by the evaluator or directly.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from castlewatch.engine import aggregate, checkpoint
from castlewatch.engine.aggregate import MINUTE_MS, MinuteAggregator
from castlewatch.engine.checkpoint import CheckpointWriter
from castlewatch.engine.config import load_config_text
from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.engine.runner import Engine
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import READ_FROM_MESSAGE, Datapoint, EventBatch, LogEvent, Stats
from castlewatch.sinks import JsonLinesSink

GROUP = "app"
M0 = 1_709_629_200_000  # 2024-03-05T09:00:00Z, a minute start (ms)
KEY = ("ns", "m", (), "None")


def mf(pattern: str, value: str = "1", *, name: str = "f", default=None, dims=None, unit=None, metric="m") -> dict:
    t: dict[str, Any] = {"metricName": metric, "metricNamespace": "ns", "metricValue": value}
    if default is not None:
        t["defaultValue"] = default
    if dims is not None:
        t["dimensions"] = dims
    if unit is not None:
        t["unit"] = unit
    return {"filterName": name, "filterPattern": pattern, "logGroupName": GROUP, "metricTransformations": [t]}


def pipeline(*filters: dict, lateness_ms: int = 60_000) -> tuple[LogGroupEvaluator, MinuteAggregator, Stats]:
    stats = Stats()
    return LogGroupEvaluator(load_metric_filters(list(filters)), stats), MinuteAggregator(stats, lateness_ms), stats


def feed(ev: LogGroupEvaluator, agg: MinuteAggregator, events: list[tuple[int, str]]) -> None:
    for ts, message in events:
        ev.evaluate(LogEvent(ts, message, GROUP), agg.add)


def summary(points: list[Datapoint]) -> dict:
    """(metric, dimensions, unit, minute start s) -> (Sum, SampleCount, Minimum, Maximum, values)."""
    out = {}
    for p in points:
        k = (p.metric_name, p.dimensions, p.unit, p.timestamp)
        assert k not in out, f"two datapoints for {k}"
        out[k] = (p.sum, p.sample_count, p.minimum, p.maximum, dict(p.values))
    return out


# ---- minute of the event's own timestamp ----------------------------------------------------


@pytest.mark.parametrize("offset_ms", [0, 1, 29_999, 59_999])
def test_minute_is_the_floor_of_the_event_timestamp(offset_ms):
    ev, agg, _ = pipeline(mf("ERROR"))
    feed(ev, agg, [(M0 + offset_ms, "ERROR")])
    [p] = agg.close_all()
    assert p.timestamp == M0 // 1000
    assert p.iso_timestamp == "2024-03-05T09:00:00Z"


@pytest.mark.parametrize(
    "seconds, text",
    [(-62_135_596_800, "0001-01-01T00:00:00Z"), (-2_208_988_800, "1900-01-01T00:00:00Z"),
     (253_402_300_740, "9999-12-31T23:59:00Z")],
)
def test_minute_timestamps_have_four_digit_years(seconds, text):
    assert Datapoint("ns", "m", (), "None", seconds).iso_timestamp == text


def test_next_minute_starts_at_60_s():
    ev, agg, _ = pipeline(mf("ERROR"))
    feed(ev, agg, [(M0 + 59_999, "ERROR"), (M0 + 60_000, "ERROR")])
    assert [(p.timestamp, p.sample_count) for p in agg.close_all()] == [(M0 // 1000, 1), (M0 // 1000 + 60, 1)]


def test_old_and_future_events_land_in_their_own_minutes():
    """Events five minutes old or one hour ahead land in their own minutes (not the
    minute they are read in)."""
    now = M0 + 30_000
    ev, agg, stats = pipeline(mf("ERROR"), lateness_ms=2 * 3_600_000)
    feed(ev, agg, [(now, "ERROR now"), (now - 5 * MINUTE_MS, "ERROR old"), (now + 3_600_000, "ERROR ahead")])
    got = {p.timestamp: p.sample_count for p in agg.close_all()}
    assert got == {M0 // 1000: 1, M0 // 1000 - 300: 1, M0 // 1000 + 3600: 1}
    assert stats.late_events == 0


def test_old_then_current_then_future_with_default_lateness():
    ev, agg, stats = pipeline(mf("ERROR"))
    feed(ev, agg, [(M0 - 5 * MINUTE_MS, "ERROR old"), (M0, "ERROR now"), (M0 + 3_600_000, "ERROR ahead")])
    assert sorted(p.timestamp for p in agg.close_all()) == [M0 // 1000 - 300, M0 // 1000, M0 // 1000 + 3600]
    assert stats.late_events == 0


# ---- statistics ---------------------------------------------------------------------------------


def test_statistics_13_and_17_5():
    """Contributions 13 and 17.5 in one minute give Sum 30.5, SampleCount 2, Minimum 13,
    Maximum 17.5."""
    ev, agg, _ = pipeline(mf("{ $.v = * }", "$.v"))
    feed(ev, agg, [(M0 + 1_000, '{"v": 13}'), (M0 + 50_000, '{"v": "17.5"}')])
    [p] = agg.close_all()
    assert (p.sum, p.sample_count, p.minimum, p.maximum) == (30.5, 2, 13.0, 17.5)
    assert p.values == {13.0: 1, 17.5: 1}
    [datum] = p.metric_data()
    assert datum["Values"] == [13.0, 17.5] and datum["Counts"] == [1.0, 1.0]
    assert datum["Timestamp"] == "2024-03-05T09:00:00Z" and datum["StorageResolution"] == 60


def test_repeated_values_are_counted():
    ev, agg, _ = pipeline(mf("{ $.v = * }", "$.v"))
    feed(ev, agg, [(M0 + i, '{"v": %s}' % v) for i, v in enumerate([2, 2, 3, -1, 2])])
    [p] = agg.close_all()
    assert (p.sum, p.sample_count, p.minimum, p.maximum) == (8.0, 5, -1.0, 3.0)
    assert p.values == {2.0: 3, 3.0: 1, -1.0: 1}
    assert p.metric_data()[0]["Values"] == [-1.0, 2.0, 3.0]
    assert p.metric_data()[0]["Counts"] == [1.0, 3.0, 1.0]


def test_minute_without_contribution_publishes_nothing():
    """A minute with no contribution publishes nothing, not a zero."""
    ev, agg, _ = pipeline(mf("ERROR"), mf("{ $.v = * }", "$.v", name="g", metric="g"))
    feed(ev, agg, [(M0, "ERROR"), (M0 + 60_000, "INFO"), (M0 + 120_000, '{"v": "x"}'), (M0 + 180_000, "ERROR")])
    assert [(p.metric_name, p.timestamp) for p in agg.close_all()] == [("m", M0 // 1000), ("m", M0 // 1000 + 180)]


def test_no_contribution_at_all_no_datapoint(tmp_path):
    ev, agg, stats = pipeline(mf("ERROR"))
    feed(ev, agg, [(M0 + i * 1000, "INFO") for i in range(100)])
    assert agg.close_ready() == [] and agg.close_all() == []
    sink = JsonLinesSink(tmp_path / "d.jsonl")
    sink.write([])
    sink.close()
    assert (tmp_path / "d.jsonl").read_bytes() == b""


def test_default_value_zero_example(tmp_path):
    """With defaultValue 0, two matching events then two non-matching events in the next
    minute give Sum 2 (count 2), then Sum 0 (count 2)."""
    ev, agg, _ = pipeline(mf('{ $.status = "error" }', "1", default=0))
    feed(
        ev,
        agg,
        [
            (M0 + 5_000, '{"status": "error"}'),
            (M0 + 6_000, '{"status": "error"}'),
            (M0 + 65_000, '{"status": "ok"}'),
            (M0 + 66_000, '{"status": "ok"}'),
        ],
    )
    points = agg.close_all()
    assert [(p.timestamp, p.sum, p.sample_count) for p in points] == [(M0 // 1000, 2.0, 2), (M0 // 1000 + 60, 0.0, 2)]
    # the zero-sum minute is a real datapoint: it is written
    sink = JsonLinesSink(tmp_path / "d.jsonl")
    sink.write(points)
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [(d["Timestamp"], d["Values"], d["Counts"]) for d in lines] == [
        ("2024-03-05T09:00:00Z", [1.0], [2.0]),
        ("2024-03-05T09:01:00Z", [0.0], [2.0]),
    ]


# ---- keys: dimension sets and units ------------------------------------------------------------


def test_separate_datapoints_per_dimension_set():
    ev, agg, _ = pipeline(mf('{ $.op = * }', "1", dims={"User": "$.user", "Op": "$.op"}))
    feed(
        ev,
        agg,
        [
            (M0 + 1, '{"user": "alice", "op": "get"}'),
            (M0 + 2, '{"user": "bob", "op": "get"}'),
            (M0 + 3, '{"user": "alice", "op": "get"}'),
            (M0 + 4, '{"user": "alice", "op": "put"}'),
        ],
    )
    got = {p.dimensions: p.sample_count for p in agg.close_all()}
    assert got == {
        (("User", "alice"), ("Op", "get")): 2,
        (("User", "bob"), ("Op", "get")): 1,
        (("User", "alice"), ("Op", "put")): 1,
    }


def test_separate_datapoints_per_unit():
    """The unit is the transformation's, with no conversion: the same metric with two units
    gives two datapoints."""
    ev, agg, _ = pipeline(
        mf("{ $.ms = * }", "$.ms", name="a", unit="Milliseconds", metric="latency"),
        mf("{ $.s = * }", "$.s", name="b", unit="Seconds", metric="latency"),
    )
    feed(ev, agg, [(M0, '{"ms": 1500}'), (M0 + 1, '{"s": 2}'), (M0 + 2, '{"ms": 500}')])
    got = {(p.metric_name, p.unit): (p.sum, p.sample_count) for p in agg.close_all()}
    assert got == {("latency", "Milliseconds"): (2000.0, 2), ("latency", "Seconds"): (2.0, 1)}


def test_separate_datapoints_per_namespace_and_metric():
    stats = Stats()
    agg = MinuteAggregator(stats)
    for key in [("a", "m", (), "None"), ("b", "m", (), "None"), ("a", "n", (), "None"), ("a", "m", (), "None")]:
        agg.add(key, M0, 1.0)
    got = {(p.namespace, p.metric_name): p.sample_count for p in agg.close_all()}
    assert got == {("a", "m"): 2, ("b", "m"): 1, ("a", "n"): 1}


# ---- Values/Counts: at most 150 values per MetricDatum -----------------------------------------


@pytest.mark.parametrize(("distinct", "datums"), [(1, 1), (150, 1), (151, 2), (300, 2), (401, 3)])
def test_values_split_into_datums_of_at_most_150(distinct, datums, tmp_path):
    agg = MinuteAggregator(Stats())
    for i in range(distinct):
        for _ in range(1 + i % 3):
            agg.add(KEY, M0 + i, float(i) / 4)
    [p] = agg.close_all()
    data = p.metric_data()
    assert len(data) == datums
    assert all(len(d["Values"]) == len(d["Counts"]) <= 150 for d in data)
    merged: dict[float, float] = {}
    for d in data:
        assert d["Timestamp"] == "2024-03-05T09:00:00Z" and d["MetricName"] == "m" and d["Unit"] == "None"
        for v, c in zip(d["Values"], d["Counts"]):
            assert v not in merged
            merged[v] = c
    assert merged == {float(i) / 4: float(1 + i % 3) for i in range(distinct)}
    assert sum(merged.values()) == p.sample_count
    assert sum(v * c for v, c in merged.items()) == pytest.approx(p.sum)
    # the JSON Lines sink writes one line per datum
    sink = JsonLinesSink(tmp_path / "d.jsonl")
    sink.write([p])
    sink.close()
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == datums


# ---- watermark and allowed lateness ---------------------------------------------------------------


def test_contribution_within_allowed_lateness_is_folded():
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=30_000)
    agg.add(KEY, M0 + 10_000, 1.0)
    agg.add(KEY, M0 + 89_999, 1.0)  # watermark: end of minute + 29.999 s
    assert agg.close_ready() == []
    agg.add(KEY, M0 + 59_000, 5.0)  # for the first minute, still open
    assert stats.late_events == 0
    points = agg.close_all()
    assert [(p.timestamp, p.sum, p.sample_count) for p in points] == [(M0 // 1000, 6.0, 2), (M0 // 1000 + 60, 1.0, 1)]


def test_late_contribution_is_counted_and_published_for_its_own_minute():
    """§8.4: an event belongs to the minute of its own timestamp, even after that minute
    closed: the late contributions make a separate datapoint for it (CloudWatch adds up
    datapoints of one minute), published once the watermark enters a new minute."""
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=30_000)
    agg.add(KEY, M0 + 10_000, 1.0)
    agg.add(KEY, M0 + 90_000, 1.0)  # watermark = end of the first minute + allowed lateness
    closed = agg.close_ready()
    assert [(p.timestamp, p.sample_count) for p in closed] == [(M0 // 1000, 1)]
    agg.add(KEY, M0 + 59_000, 5.0)  # the first minute is closed: late
    agg.add(KEY, M0 + 1, 7.0)
    assert stats.late_events == 2
    assert agg.close_ready() == []  # still gathering late contributions
    agg.add(KEY, M0 + 120_000, 1.0)  # the watermark enters a new minute: the late datapoint is sealed
    agg.add(KEY, M0 + 2, 1.0)  # late again: a new late datapoint
    late = agg.close_ready()
    assert [(p.timestamp, p.sum, p.sample_count, p.minimum, p.maximum) for p in late] == [(M0 // 1000, 12.0, 2, 5.0, 7.0)]
    assert [(p.timestamp, p.sum) for p in agg.close_all()] == [(M0 // 1000, 1.0), (M0 // 1000 + 60, 1.0), (M0 // 1000 + 120, 1.0)]
    assert stats.late_events == 3


def test_late_datapoints_of_many_minutes_are_sealed_at_a_bound(monkeypatch):
    """Late events spread over many minutes (a shuffled archive) never make more than
    MAX_OPEN_LATE_DATAPOINTS open late datapoints: the open ones are sealed and published
    first, and every contribution still counts for its own minute."""
    monkeypatch.setattr(aggregate, "MAX_OPEN_LATE_DATAPOINTS", 50)
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=0)
    agg.add(KEY, M0 + 10_000 * MINUTE_MS, 1.0)  # the watermark, far ahead
    rng = random.Random(7)
    minutes = [rng.randrange(10_000) for _ in range(2_000)]
    published = []
    for m in minutes:
        agg.add(KEY, M0 + m * MINUTE_MS, 1.0)
        assert len(agg.late.get(KEY[:2], {})) <= 50
        published += agg.close_ready()
    published += agg.close_all()
    assert stats.late_events == len(minutes)
    totals: dict[int, int] = {}
    for p in published:
        totals[p.timestamp] = totals.get(p.timestamp, 0) + p.sample_count
    expected: dict[int, int] = {(M0 + 10_000 * MINUTE_MS) // 1000: 1}
    for m in minutes:
        expected[(M0 + m * MINUTE_MS) // 1000] = expected.get((M0 + m * MINUTE_MS) // 1000, 0) + 1
    assert totals == expected


def test_late_even_when_the_window_was_not_yet_collected():
    """Lateness is decided by the watermark, not by whether close_ready() ran."""
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=0)
    agg.add(KEY, M0, 1.0)
    agg.add(KEY, M0 + 60_000, 1.0)
    agg.add(KEY, M0 + 30_000, 1.0)  # minute ended, no lateness allowed
    assert stats.late_events == 1
    points = [(p.timestamp, p.sample_count) for p in agg.close_all()]
    assert sorted(points) == [(M0 // 1000, 1), (M0 // 1000, 1), (M0 // 1000 + 60, 1)]


def test_out_of_order_events_land_in_their_own_minutes():
    """An event one hour ahead, then the current traffic: nothing is lost, every
    contribution is published for its own minute (the late ones separately)."""
    ev, agg, stats = pipeline(mf("ERROR"))
    feed(ev, agg, [(M0 + 5 * MINUTE_MS, "ERROR"), (M0, "ERROR"), (M0 + 3_600_000, "ERROR ahead")]
         + [(M0 + i * 20_000, "ERROR now") for i in range(6)])
    totals: dict[int, int] = {}
    for p in agg.close_all():
        totals[p.timestamp] = totals.get(p.timestamp, 0) + p.sample_count
    assert totals == {M0 // 1000: 4, M0 // 1000 + 60: 3, M0 // 1000 + 300: 1, M0 // 1000 + 3600: 1}
    assert stats.late_events == 7


def test_late_events_through_the_evaluator_each_contribution_counted():
    ev, agg, stats = pipeline(mf("ERROR", name="a", metric="a"), mf("ERROR", name="b", metric="b", default=0))
    feed(ev, agg, [(M0 + 600_000, "ERROR"), (M0, "ERROR"), (M0 + 1, "INFO")])
    assert stats.late_events == 3  # a and b for the first late event, b's default for the second
    points = agg.close_all()
    assert sorted((p.metric_name, p.timestamp, p.sum, p.sample_count) for p in points) == [
        ("a", M0 // 1000, 1.0, 1),
        ("a", M0 // 1000 + 600, 1.0, 1),
        ("b", M0 // 1000, 1.0, 2),  # 1 for ERROR, the default 0 for INFO
        ("b", M0 // 1000 + 600, 1.0, 1),
    ]


def test_close_ready_closes_only_minutes_past_watermark_and_lateness():
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=60_000)
    for minute in range(5):
        agg.add(KEY, M0 + minute * 60_000 + 30_000, 1.0)
    # watermark M0 + 4:30; a minute m closes when m + 60 s + 60 s <= watermark: minutes 0, 1, 2
    assert [p.timestamp for p in agg.close_ready()] == [M0 // 1000 + 60 * m for m in range(3)]
    assert agg.close_ready() == []
    agg.advance(M0 + 5 * 60_000)
    assert [p.timestamp for p in agg.close_ready()] == [M0 // 1000 + 180]
    assert [p.timestamp for p in agg.close_all()] == [M0 // 1000 + 240]
    assert stats.late_events == 0


def _random_contributions(seed: int, n: int = 400) -> list[tuple[tuple, int, float]]:
    rng = random.Random(seed)
    out = []
    t = M0
    for _ in range(n):
        t += rng.randint(0, 20_000)
        jitter = rng.choice([0, 0, 0, -30_000, -90_000, -200_000, 5_000])
        key = (rng.choice(["ns", "other"]), rng.choice(["m", "n"]), rng.choice([(), (("D", "x"),)]), "None")
        out.append((key, t + jitter, float(rng.randint(0, 5))))
    return out


def _run(contributions, every: int, lateness_ms: int) -> tuple[dict, int]:
    """Feed contributions, calling close_ready() after every ``every`` of them."""
    stats = Stats()
    agg = MinuteAggregator(stats, lateness_ms)
    closed: list[Datapoint] = []
    for i, (key, ts, value) in enumerate(contributions, 1):
        agg.add(key, ts, value)
        if i % every == 0:
            closed += agg.close_ready()
    closed += agg.close_all()
    return _datapoints(closed), stats.late_events


def _datapoints(points: list[Datapoint]) -> list[tuple]:
    """Every datapoint, as comparable data (a minute may have a late datapoint too)."""
    return sorted((p.namespace, p.metric_name, p.dimensions, p.timestamp, sorted(p.values.items())) for p in points)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lateness_decisions_do_not_depend_on_batching(seed):
    contributions = _random_contributions(seed)
    results = [_run(contributions, every, 60_000) for every in (1, 2, 7, 50, len(contributions))]
    assert all(r == results[0] for r in results)
    assert results[0][1] > 0  # the data has late contributions, so the test means something


def _config(tmp_path: Path, lateness_s: float):
    (tmp_path / "in.log").write_text("")
    return load_config_text(
        f"""
metric_filters:
  - filterName: f
    logGroupName: {GROUP}
    filterPattern: '{{ $.v = * }}'
    metricTransformations: [{{metricName: m, metricNamespace: ns, metricValue: $.v}}]
  - filterName: g
    logGroupName: {GROUP}
    filterPattern: '{{ $.v > 2 }}'
    metricTransformations: [{{metricName: g, metricNamespace: ns, metricValue: "1", defaultValue: 0}}]
sources:
  - {{type: file, path: in.log, log_group: {GROUP}, timestamp: {{field: $.t, format: epoch_ms}}}}
sinks:
  - {{type: jsonl, path: out.jsonl}}
allowed_lateness_s: {lateness_s}
""",
        tmp_path,
    )


def _engine(tmp_path: Path, lateness_s: float) -> Engine:
    return Engine(_config(tmp_path, lateness_s))


@pytest.mark.parametrize("batch", [1, 3, 64, 10_000])
def test_engine_lateness_does_not_depend_on_batch_sizes(tmp_path, batch):
    rng = random.Random(7)
    events, t = [], M0
    for _ in range(300):
        t += rng.randint(0, 15_000)
        events.append(LogEvent(READ_FROM_MESSAGE, '{"t": %d, "v": %d}' % (t + rng.choice([0, 0, -70_000, -150_000]), rng.randint(0, 5)), GROUP))
    outputs = []
    for size in (batch, len(events)):
        d = tmp_path / str(size)
        d.mkdir(exist_ok=True)
        engine = _engine(d, 60)
        name = engine.sources[0].name
        for start in range(0, len(events), size):
            engine.process(EventBatch(name, events[start : start + size], None))
        engine.close_all_windows()
        for sink in engine.sinks:
            sink.close()
        lines = sorted((d / "out.jsonl").read_text().splitlines())
        outputs.append((lines, engine.stats.late_events, engine.stats.events_read))
    assert outputs[0] == outputs[1]
    assert outputs[0][1] > 0 and outputs[0][2] == 300


# ---- checkpoints: save / restore ----------------------------------------------------------------


def _save(writer: CheckpointWriter, agg: MinuteAggregator, stats: Stats) -> None:
    """One save of ``agg`` alone, written now (what Engine.save_checkpoint does in a thread)."""
    writer.write(checkpoint.capture({}, {}, {"a": agg.checkpoint_changes(writer.wants_everything)}, [], stats))


def _restored(path: Path, stats: Stats, lateness_ms: int = 60_000) -> MinuteAggregator:
    agg = MinuteAggregator(stats, lateness_ms)
    agg.restore(CheckpointWriter(path).load()["aggregators"]["a"])
    return agg


def _wide(seed: int, n: int = 600) -> list[tuple[tuple, int, float]]:
    """Contributions of many distinct values (large datapoints), zeros of both signs among them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = rng.choice([0.0, -0.0, rng.random() * 1e6, float(rng.randint(0, 50)), -rng.random()])
        out.append((("ns", "wide", (), "Bytes"), M0 + i * 300, value))
    return out


@pytest.mark.parametrize("every", [1, 7, 100])
@pytest.mark.parametrize("cut", [0, 1, 100, 250, 399, 400, 1002])
def test_checkpoint_round_trip(tmp_path, cut, every):
    """A run resumed from a checkpoint file (saves every ``every`` contributions, the last
    at ``cut``) closes exactly the same datapoints and counts exactly the same late
    contributions as an uninterrupted run; large datapoints (hundreds of distinct values)
    included."""
    contributions = _random_contributions(11) + _wide(12)
    contributions += [(("ns", "m", (), "None"), M0 + 10**7, 0.1), (("ns", "m", (), "None"), M0 + 10**7, 0.2)]
    reference = _run(contributions, 5, 60_000)

    stats = Stats()
    first = MinuteAggregator(stats, 60_000)
    writer = CheckpointWriter(tmp_path / "ck")
    closed: list[Datapoint] = []
    for i, (key, ts, value) in enumerate(contributions[:cut], 1):
        first.add(key, ts, value)
        if i % 5 == 0:
            closed += first.close_ready()
        if i % every == 0:
            _save(writer, first, stats)
    _save(writer, first, stats)
    second = _restored(tmp_path / "ck", stats)
    for i, (key, ts, value) in enumerate(contributions[cut:], cut + 1):
        second.add(key, ts, value)
        if i % 5 == 0:
            closed += second.close_ready()
    closed += second.close_all()
    resumed = _datapoints(closed)
    assert (resumed, stats.late_events) == reference


def test_restored_datapoints_are_identical(tmp_path):
    stats = Stats()
    agg = MinuteAggregator(stats)
    values = [13.0, 17.5, 0.1, 0.2, 0.30000000000000004, -1e300, 2.0**-30, 13.0, -0.0, 0.0]
    for i, v in enumerate(values):
        agg.add(("ns", "m", (("A", "x"), ("B", "1.50")), "Bytes"), M0 + i, v)
    for i in range(300):  # a large datapoint: arrays, not a dict
        agg.add(("ns", "big", (), "None"), M0 + i, i / 7 if i % 3 else -0.0)
    agg.add(KEY, M0 + 61_000, 4.0)
    writer = CheckpointWriter(tmp_path / "ck")
    _save(writer, agg, stats)
    agg.add(("ns", "big", (), "None"), M0 + 1, 1 / 7)  # one more value, in an appended record
    agg.add(("ns", "big", (), "None"), M0 + 2, 0.0)  # the zero stays -0.0, the first one seen
    _save(writer, agg, stats)
    other = _restored(tmp_path / "ck", Stats())
    assert other.watermark == agg.watermark
    ours, theirs = agg.close_all(), other.close_all()
    assert theirs == ours
    for a, b in zip(ours, theirs):
        assert [(repr(v), c) for v, c in a.items()] == [(repr(v), c) for v, c in b.items()]
        assert a.sum.hex() == b.sum.hex()
    big = next(p for p in theirs if p.metric_name == "big")
    assert big.items()[0] == (-0.0, 101) and repr(big.items()[0][0]) == "-0.0"


def test_engine_checkpoint_round_trip(tmp_path):
    """Engine.save_checkpoint / restart from it: the same output as an uninterrupted run."""
    events = [LogEvent(READ_FROM_MESSAGE, '{"t": %d, "v": %d}' % (M0 + i * 7_000, i % 4), GROUP) for i in range(60)]

    def output(d: Path) -> list[str]:
        return sorted((d / "out.jsonl").read_text().splitlines())

    whole = tmp_path / "whole"
    whole.mkdir()
    engine = _engine(whole, 5)
    engine.process(EventBatch(engine.sources[0].name, events, None))
    engine.close_all_windows()
    for sink in engine.sinks:
        sink.close()

    split = tmp_path / "split"
    split.mkdir()
    config = _config(split, 5)
    checkpoint = split / "ck.json"
    first = Engine(config, checkpoint=checkpoint)
    first.process(EventBatch(first.sources[0].name, events[:25], None))
    asyncio.run(first.save_checkpoint())
    # the crash: whatever comes after the checkpoint is lost
    first.process(EventBatch(first.sources[0].name, events[25:40], None))
    for sink in first.sinks:
        sink.close()  # written to disk after the checkpoint: the restart must drop it
    second = Engine(config, checkpoint=checkpoint)
    second.process(EventBatch(second.sources[0].name, events[25:], None))
    second.close_all_windows()
    for sink in second.sinks:
        sink.close()
    assert output(split) == output(whole)
    assert second.stats.events_read == 60


def test_late_traffic_behind_a_far_future_event_is_published_minute_by_minute():
    """One event far ahead freezes the watermark; the current traffic, all late, is
    still published as each of its minutes passes (not only at shutdown)."""
    stats = Stats()
    agg = MinuteAggregator(stats, allowed_lateness_ms=60_000)
    agg.add(KEY, M0 + 50 * 365 * 86_400_000, 1.0)  # fifty years ahead
    published = []
    for i in range(150):  # 150 events, one every 0.5 s of event time: 75 s
        agg.add(KEY, M0 + i * 500, 1.0)
        published += agg.close_ready()
    assert [(p.timestamp, p.sample_count) for p in published] == [(M0 // 1000, 120)]
    assert stats.late_events == 150
    rest = agg.close_all()
    assert sorted((p.timestamp, p.sample_count) for p in rest) == [(M0 // 1000 + 60, 30), (M0 // 1000 + 50 * 365 * 86_400, 1)]
