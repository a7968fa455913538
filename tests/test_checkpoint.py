"""The daemon's checkpoint file (:mod:`castlewatch.engine.checkpoint`) and the compact
values of a datapoint (:mod:`castlewatch.values`, ``Datapoint``).

Exactness, not speed (that is ``bench/checkpoint.py``): a datapoint's Values/Counts and Sum
are exactly those of a plain dict fed in order; a checkpoint read back is exactly the state
saved, through appended records, compaction, a save cut short at any byte, a failed
write, and the version 1 (JSON) format; an engine restarted from any of them writes
exactly what an uninterrupted run writes.
"""

from __future__ import annotations

import asyncio
import json
import random
import struct
import zlib
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from castlewatch.cli import main
from castlewatch.engine import checkpoint
from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.checkpoint import MAGIC, CheckpointError, CheckpointWriter, read_checkpoint
from castlewatch.engine.config import load_config_text
from castlewatch.engine.runner import Engine
from castlewatch.model import READ_FROM_MESSAGE, SMALL_VALUES, Datapoint, EventBatch, LogEvent, Stats

M0 = 1_709_629_200_000  # 2024-03-05T09:00:00Z (ms)
KEY = ("ns", "m", (), "Bytes")


# ---- a datapoint's values: exactly a dict's ---------------------------------------------------


class DictPoint:
    """What a datapoint computed before its values became arrays: the reference."""

    def __init__(self) -> None:
        self.values: dict[float, int] = {}
        self.sum, self.sample_count = 0.0, 0
        self.minimum, self.maximum = float("inf"), float("-inf")

    def add(self, value: float, count: int = 1) -> None:
        self.values[value] = self.values.get(value, 0) + count
        self.sum += value * count
        self.sample_count += count
        self.minimum, self.maximum = min(self.minimum, value), max(self.maximum, value)

    def metric_data(self) -> list[dict]:
        items = sorted(self.values.items())
        return [{"Values": [v for v, _ in items[s : s + 150]], "Counts": [float(c) for _, c in items[s : s + 150]]}
                for s in range(0, len(items), 150)]


def _exact(pairs) -> list[tuple[str, object]]:
    """Comparable down to the bits: repr tells 0.0 from -0.0 and int from float."""
    return [(repr(v), c) for v, c in pairs]


values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e300, -1e-300, 5e-324]),
    st.integers(-3, 40).map(float),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(values, max_size=3000), st.integers(0, 4))
def test_values_counts_and_sum_are_a_dicts_exactly(seq, weighted_every):
    point, reference = Datapoint("ns", "m", (), "None", 60), DictPoint()
    for i, value in enumerate(seq):
        count = 3 if weighted_every and i % 97 == weighted_every else 1
        point.add(value, count)
        reference.add(value, count)
    assert _exact(point.items()) == _exact(sorted(reference.values.items()))
    assert point.values == reference.values
    assert point.sum.hex() == reference.sum.hex() and point.sample_count == reference.sample_count
    assert (point.minimum, point.maximum) == (reference.minimum, reference.maximum)
    data = point.metric_data()
    assert [{"Values": d["Values"], "Counts": d["Counts"]} for d in data] == reference.metric_data()
    assert [_exact(zip(d["Values"], d["Counts"])) for d in data] == [
        _exact(zip(d["Values"], d["Counts"])) for d in reference.metric_data()]
    record = point.to_record()
    assert _exact(zip(record["Values"], record["Counts"])) == _exact(sorted(reference.values.items()))


def test_a_million_distinct_values_are_arrays_not_a_dict():
    point = Datapoint("ns", "m", (), "None", 60)
    n = 1_000_003  # prime: i * 7919 mod n visits every residue once
    for i in range(n):
        point.add(((i * 7919) % n) / 8)
    assert point._small is None  # the values moved to arrays past SMALL_VALUES
    assert point.sample_count == point.distinct_values == n
    data = point.metric_data()
    assert len(data) == -(-n // 150)
    assert data[0]["Values"][:3] == [0.0, 0.125, 0.25] and data[-1]["Values"][-1] == (n - 1) / 8
    assert all(c == [1.0] * len(c) for c in (d["Counts"] for d in data))


@settings(max_examples=60, deadline=None)
@given(st.lists(values, max_size=2500), st.lists(st.integers(0, 2500), max_size=6))
def test_changes_taken_at_any_moments_add_up_to_the_values(seq, cuts):
    """Whatever the moments a checkpoint takes a datapoint's changes, folding them in as the
    checkpoint does (a full set replaces, the rest adds) gives the datapoint's values."""
    import numpy as np

    from castlewatch import values as vs

    point = Datapoint("ns", "m", (), "None", 60)
    held: list = []  # what the checkpoint holds: parts to fold
    cuts = sorted(set(cuts))
    for i, value in enumerate(seq):
        if i in cuts:
            full, parts = point.take_changes()
            held = (parts if full else held + parts)
        point.add(value)
    full, parts = point.take_changes()
    held = parts if full else held + parts
    if held:
        merged = vs.fold(np.concatenate([np.frombuffer(v, np.float64) for v, _ in held]),
                         np.concatenate([np.ones(len(v), np.int64) if c is None else np.frombuffer(c, np.int64)
                                         for v, c in held]))
        got = list(zip(merged[0].tolist(), merged[1].tolist()))
    else:
        got = []
    assert _exact(got) == _exact(point.items())


# ---- the file: deltas, compaction, a save cut short, a failed write -------------------------------


def _agg_with(values_per_minute: dict[int, list[float]], stats: Stats | None = None) -> MinuteAggregator:
    agg = MinuteAggregator(stats or Stats(), 3_600_000)
    for minute, vals in values_per_minute.items():
        for i, v in enumerate(vals):
            agg.add(KEY, M0 + minute * 60_000 + i % 60_000, v)
    return agg


def _save(writer: CheckpointWriter, agg: MinuteAggregator, events: int = 0) -> None:
    stats = Stats(events_read=events)
    writer.write(checkpoint.capture({"s": {"n": events}}, {}, {"a": agg.checkpoint_changes(writer.wants_everything)},
                                    [{"size": events}], stats))


def test_a_save_writes_what_changed_not_the_whole_state(tmp_path):
    """Thirty open minutes of 5,000 distinct values each: the first save writes them all
    (9 bytes a value: a double and a one-byte count); a save after ten more contributions
    appends a record of a few hundred bytes, not the state again."""
    rng = random.Random(1)
    agg = _agg_with({m: [rng.random() * 1e6 for _ in range(5_000)] for m in range(30)})
    writer = CheckpointWriter(tmp_path / "ck")
    _save(writer, agg, 1)
    base = (tmp_path / "ck").stat().st_size
    assert 30 * 5_000 * 9 <= base < 30 * 5_000 * 9 * 1.1
    for i in range(10):
        agg.add(KEY, M0 + 29 * 60_000 + i, rng.random())
    _save(writer, agg, 2)
    grown = (tmp_path / "ck").stat().st_size - base
    assert grown < 1_000
    _save(writer, agg, 3)  # nothing changed but the counters
    assert (tmp_path / "ck").stat().st_size - base - grown < 300
    state = read_checkpoint(tmp_path / "ck")
    assert state["stats"]["events_read"] == 3 and state["sinks"] == [{"size": 3}]
    assert sum(len(w["values"]) for w in state["aggregators"]["a"]["windows"]) == 30 * 5_000 + 10


def test_whole_numbers_take_four_bytes_and_small_counts_one(tmp_path):
    """Byte counts (whole numbers) are stored as 32-bit integers, counts under 256 in a
    byte: 5 bytes a value; with a negative zero, which an integer cannot hold, the values
    go in floats (here single precision holds them exactly) and the zero keeps its sign."""
    agg = _agg_with({0: [float(v) for v in range(20_000)] * 3})
    writer = CheckpointWriter(tmp_path / "ck")
    _save(writer, agg)
    assert 20_000 * 5 <= (tmp_path / "ck").stat().st_size < 20_000 * 5 * 1.1
    before = (tmp_path / "ck").stat().st_size
    for v in [-0.0] + [float(v) for v in range(1, 1_000)]:  # a minute whose zero is negative
        agg.add(KEY, M0 + 60_000, v)
    _save(writer, agg)
    assert 1_000 * 5 <= (tmp_path / "ck").stat().st_size - before < 1_000 * 5 * 1.2
    first, second = read_checkpoint(tmp_path / "ck")["aggregators"]["a"]["windows"]
    assert len(first["values"]) == 20_000 and first["values"][0] == [0.0, 3]
    assert repr(second["values"][0][0]) == "-0.0" and second["values"][1] == [1.0, 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=300), st.lists(st.integers(0, 2**62), max_size=300))
def test_packed_values_and_counts_are_exact(seq, counts):
    import numpy as np

    from castlewatch import values as vs

    array = np.array(seq, np.float64)
    code, data = vs.pack_values(array)
    back = vs.unpack(code, bytes(data), "values")
    assert [repr(v) for v in back.tolist()] == [repr(v) for v in seq]
    array = np.array(counts, np.int64)
    code, data = vs.pack_counts(array)
    assert vs.unpack(code, bytes(data), "counts").tolist() == counts


def _mixed(seed: int) -> MinuteAggregator:
    """An aggregator in every state: windows small and large, late, sealed, closed ones."""
    rng = random.Random(seed)
    agg = MinuteAggregator(Stats(), 60_000)
    for i in range(3_000):
        key = rng.choice([KEY, ("ns", "n", (("D", "x"),), "None"), ("other", "m", (), "None")])
        t = M0 + i * 100 + rng.choice([0, 0, 0, -200_000, -400_000])
        agg.add(key, t, rng.choice([rng.random(), float(rng.randint(0, 3)), -0.0, 0.0]))
        if i % 500 == 499:
            agg.close_ready()
    return agg


def _states_equal(a: Path, b: Path) -> None:
    left, right = read_checkpoint(a), read_checkpoint(b)
    assert json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def test_compaction_keeps_the_state_exactly(tmp_path):
    compacting = CheckpointWriter(tmp_path / "compacted", compact_min_bytes=0)
    plain = CheckpointWriter(tmp_path / "plain", compact_min_bytes=1 << 40)
    agg_a, agg_b = _mixed(3), _mixed(3)
    rng = random.Random(4)
    for step in range(12):
        for _ in range(200):
            key, t, v = KEY, M0 + 300_000 + rng.randint(0, 400_000), rng.random()
            agg_a.add(key, t, v)
            agg_b.add(key, t, v)
        agg_a.close_ready(), agg_b.close_ready()
        _save(compacting, agg_a, step)
        _save(plain, agg_b, step)
    assert compacting.report["compactions"] >= 1 and plain.report["compactions"] == 0
    assert (tmp_path / "compacted").stat().st_size < (tmp_path / "plain").stat().st_size
    _states_equal(tmp_path / "compacted", tmp_path / "plain")
    restored = MinuteAggregator(Stats(), 60_000)
    restored.restore(CheckpointWriter(tmp_path / "compacted").load()["aggregators"]["a"])
    assert restored.close_all() == agg_a.close_all()


def test_a_save_cut_short_at_any_byte_leaves_the_save_before(tmp_path):
    """A crash while appending a record (kill -9, power loss) leaves a torn tail: whatever
    its length, and also when it reads as zeros (a file extended before its data reached
    the disk), loading gives the previous save, says so, and the next save replaces the
    tail."""
    path = tmp_path / "ck"
    agg = _mixed(5)
    writer = CheckpointWriter(path)
    _save(writer, agg, 1)
    _save(writer, agg, 2)
    before = path.read_bytes()
    (tmp_path / "reference").write_bytes(before)
    for i in range(50):
        agg.add(KEY, M0 + 250_000 + i, i / 3)
    _save(writer, agg, 3)
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before) + 8
    torn = [before + after[len(before) : cut] for cut in range(len(before) + 1, len(after))]
    torn.append(before + bytes(len(after) - len(before)))
    torn.append(before + after[len(before) : -1] + bytes([after[-1] ^ 1]))
    for data in torn:
        path.write_bytes(data)
        resumed = CheckpointWriter(path)
        state = resumed.load()
        assert state["stats"]["events_read"] == 2
        assert any("cut short" in w for w in resumed.warnings) == (len(data) > len(before))
        _states_equal(path, tmp_path / "reference")
    # the next save after a torn tail overwrites it
    resumed = CheckpointWriter(path)
    restored = MinuteAggregator(Stats(), 60_000)
    restored.restore(resumed.load()["aggregators"]["a"])
    _save(resumed, restored, 4)
    again = CheckpointWriter(path)
    assert again.load()["stats"]["events_read"] == 4 and again.warnings == []


def test_the_state_of_a_source_no_longer_configured_is_dropped(tmp_path):
    """Every save holds every source's aggregator; one a later save lacks (its source left
    the configuration) is not carried on."""
    writer = CheckpointWriter(tmp_path / "ck")
    a, b = _mixed(7), _mixed(8)
    writer.write(checkpoint.capture({}, {}, {"a": a.checkpoint_changes(True), "b": b.checkpoint_changes(True)}, [],
                                    Stats()))
    assert set(read_checkpoint(tmp_path / "ck")["aggregators"]) == {"a", "b"}
    a.add(KEY, M0 + 250_000, 1.0)
    writer.write(checkpoint.capture({}, {}, {"a": a.checkpoint_changes()}, [], Stats()))
    assert set(read_checkpoint(tmp_path / "ck")["aggregators"]) == {"a"}


def test_a_failed_write_is_raised_and_the_next_save_starts_a_new_file(tmp_path):
    path = tmp_path / "ck"
    agg = _mixed(6)
    writer = CheckpointWriter(path)
    _save(writer, agg, 1)
    path.unlink()
    path.mkdir()  # appending now fails (as a full disk would)
    agg.add(KEY, M0 + 250_000, 0.5)
    with pytest.raises(OSError):
        _save(writer, agg, 2)
    path.rmdir()
    assert writer.wants_everything
    agg.add(KEY, M0 + 250_001, 0.25)
    _save(writer, agg, 3)  # a complete new file: what the failed save took is in it
    restored = MinuteAggregator(Stats(), 60_000)
    restored.restore(CheckpointWriter(path).load()["aggregators"]["a"])
    assert restored.close_all() == agg.close_all()


def test_saves_are_never_back_to_back():
    """The interval runs from the end of the previous save, and not while one is written."""

    async def run() -> list[bool]:
        writer = CheckpointWriter(None)
        seen = [writer.due(3600), writer.due(0)]
        writer.start(None)
        seen.append(writer.due(3600))
        writer._task = asyncio.ensure_future(asyncio.sleep(0.05))  # a write in flight
        seen.append(writer.due(0))
        await writer.settle()
        seen.append(writer.due(0))
        return seen

    assert asyncio.run(run()) == [False, True, False, False, True]


# ---- the engine: restart from a save cut short, from a version 1 checkpoint --------------------


def _config(d: Path, sinks: str = "[{type: jsonl, path: out.jsonl}, {type: csv, path: out.csv}]"):
    (d / "in.log").write_text("")
    return load_config_text(
        f"""
metric_filters:
  - filterName: bytes
    logGroupName: g
    filterPattern: '{{ $.b = * }}'
    metricTransformations: [{{metricName: Bytes, metricNamespace: ns, metricValue: $.b, unit: Bytes}}]
  - filterName: count
    logGroupName: g
    filterPattern: '{{ $.b > 500 }}'
    metricTransformations: [{{metricName: Big, metricNamespace: ns, metricValue: "1", defaultValue: 0}}]
sources:
  - {{type: file, path: in.log, log_group: g, timestamp: {{field: $.t, format: epoch_ms}}}}
sinks: {sinks}
allowed_lateness_s: 3600
""",
        d,
    )


def _events(n: int = 3_000) -> list[LogEvent]:
    rng = random.Random(8)
    return [LogEvent(READ_FROM_MESSAGE, '{"t": %d, "b": %r}' % (M0 + i * 400 + rng.choice([0, -90_000]),
                                                               rng.random() * 1000), "g") for i in range(n)]


def _outputs(d: Path) -> tuple[list[str], list[str]]:
    return sorted((d / "out.jsonl").read_text().splitlines()), sorted((d / "out.csv").read_text().splitlines())


def _uninterrupted(tmp_path: Path, events: list[LogEvent]) -> tuple[list[str], list[str]]:
    whole = tmp_path / "whole"
    whole.mkdir()
    engine = Engine(_config(whole))
    engine.process(EventBatch(engine.sources[0].name, events, None))
    engine.close_all_windows()
    for sink in engine.sinks:
        sink.close()
    return _outputs(whole)


def _finish(d: Path, path: Path, events: list[LogEvent]) -> Engine:
    """Restart from ``path``, evaluate the events after those its checkpoint read, stop."""
    engine = Engine(_config(d), checkpoint=path)
    engine.process(EventBatch(engine.sources[0].name, events[engine.stats.events_read :], None))
    engine.close_all_windows()
    asyncio.run(engine.save_checkpoint())
    for sink in engine.sinks:
        sink.close()
    return engine


@pytest.mark.parametrize("cut", [1, 8, 100, -1])
def test_engine_restarted_after_a_kill_during_a_save_writes_what_an_uninterrupted_run_writes(tmp_path, cut):
    """Saves after 1,000 and 2,000 events; the second is cut short ``cut`` bytes into its
    record (-1: one byte short), as a kill -9 during the write leaves it, with the sinks
    already flushed past the first save. The restart resumes from the first save: the
    sinks are truncated to its sizes and the same datapoints come out, once."""
    events = _events()
    split = tmp_path / "split"
    split.mkdir()
    path = split / "ck"
    engine = Engine(_config(split), checkpoint=path)
    name = engine.sources[0].name
    engine.process(EventBatch(name, events[:1_000], None))
    asyncio.run(engine.save_checkpoint())
    first = path.stat().st_size
    engine.process(EventBatch(name, events[1_000:2_000], None))
    asyncio.run(engine.save_checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: first + cut] if cut > 0 else data[:cut])
    engine.process(EventBatch(name, events[2_000:2_500], None))
    for sink in engine.sinks:
        sink.close()  # what the killed process had written stays on disk; the restart drops it
    resumed = _finish(split, path, events)
    assert any("cut short" in w for w in resumed.warnings)
    assert resumed.stats.events_read == len(events)
    assert _outputs(split) == _uninterrupted(tmp_path, events)


def test_engine_resumes_from_a_version_1_checkpoint_and_rewrites_it(tmp_path):
    """A JSON checkpoint of castlewatch before this format is migrated, not refused: the
    run resumes from it exactly, says so, and its first save writes the new format."""
    events = _events()
    split = tmp_path / "split"
    split.mkdir()
    path = split / "ck"
    engine = Engine(_config(split), checkpoint=path)
    engine.process(EventBatch(engine.sources[0].name, events[:1_500], None))
    asyncio.run(engine.save_checkpoint())
    for sink in engine.sinks:
        sink.close()
    old = read_checkpoint(path)  # the version 1 document's shape, as castlewatch wrote it
    old["version"] = 1
    assert old["aggregators"][engine.sources[0].name]["windows"]
    path.write_text(json.dumps(old))
    resumed = _finish(split, path, events)
    assert any("version 1" in w for w in resumed.warnings)
    assert path.read_bytes().startswith(MAGIC)
    assert read_checkpoint(path)["stats"]["events_read"] == len(events)
    assert _outputs(split) == _uninterrupted(tmp_path, events)


# ---- files that are not a checkpoint of this configuration ----------------------------------------


def _frame(payload: bytes) -> bytes:
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def _record(**changes) -> bytes:
    record = {"base": True, "sources": {}, "evaluators": {}, "aggregators": {}, "sinks": [None, None], "stats": {}}
    record.update(changes)
    return msgspec.msgpack.encode(record)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"\x00\x01binary junk", "is not a castlewatch checkpoint; move it away"),
        (b"", "is empty: not a castlewatch checkpoint"),
        (b"{not json", "is not valid JSON"),
        (MAGIC[:-1] + b"\x09" + b"rest", "has version 9, this castlewatch reads versions 1 and 2"),
        (MAGIC, "is corrupt: it holds no complete record"),
        (MAGIC + b"\x05\x00\x00", "is corrupt: it holds no complete record"),
        (MAGIC + _frame(b"\xc1"), "is not of the shape castlewatch writes (record 1:"),
        (MAGIC + _frame(_record(sinks="x")), "is not of the shape castlewatch writes (record 1: Expected `array`"),
        (MAGIC + _frame(_record(base=False)), "the first record is not complete in itself"),
        (MAGIC + _frame(_record(stats={"events_read": -1})), "stats['events_read'] is not a count"),
        (MAGIC + _frame(_record(sinks=[None])), "was written for 1 sinks, the configuration has 2"),
        (MAGIC + _frame(_record(aggregators={"SOURCE": [[], [], 1, [[1, 0, False, b"", b"", [1.0, 1, 1.0, 1.0], None, "<f8", "<u1"]],
                                                         [], []]})),
         "a change to datapoint 1, which no earlier record holds"),
        (MAGIC + _frame(_record(aggregators={"SOURCE": [[], [], 2, [], [], [7]]})),
         "the sealed datapoints' order names other datapoints"),
    ],
    ids=["binary", "empty", "bad-json", "version-9", "magic-only", "torn-first", "not-msgpack", "bad-sinks",
         "no-base", "negative-count", "sink-count", "unknown-datapoint", "bad-sealed"],
)
def test_a_file_that_is_not_a_checkpoint_of_this_configuration_is_a_clear_error(tmp_path, content, fragment):
    config = tmp_path / "c.yaml"
    config.write_text(
        "metric_filters: [{filterName: f, logGroupName: g, filterPattern: '', "
        "metricTransformations: [{metricName: m, metricNamespace: n, metricValue: '1'}]}]\n"
        f"sources: [{{type: file, path: {tmp_path / 'in.log'}, log_group: g, timestamp: ingestion}}]\n"
        "sinks: [{type: jsonl, path: a.jsonl}, {type: csv, path: b.csv}]\n"
    )
    (tmp_path / "in.log").write_text("")
    if b"SOURCE" in content:  # the source's state goes under its name
        payload = msgspec.msgpack.decode(content[len(MAGIC) + 8 :])
        payload["aggregators"] = {f"file:{tmp_path / 'in.log'}": payload["aggregators"]["SOURCE"]}
        content = MAGIC + _frame(msgspec.msgpack.encode(payload))
    path = tmp_path / "ck"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--checkpoint", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: checkpoint {path}") and fragment in result.output, result.output
    assert not isinstance(result.exception, (KeyError, AttributeError, TypeError))


def test_read_checkpoint_needs_a_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "none")
    (tmp_path / "x").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a castlewatch checkpoint"):
        read_checkpoint(tmp_path / "x")


def test_small_and_large_datapoints_both_restore(tmp_path):
    """A datapoint at the dict/array boundary (SMALL_VALUES) and past it round-trips."""
    agg = MinuteAggregator(Stats(), 3_600_000)
    for n, key in ((SMALL_VALUES, ("ns", "a", (), "None")), (SMALL_VALUES + 1, ("ns", "b", (), "None"))):
        for i in range(n):
            agg.add(key, M0 + i, i * 1.5)
    writer = CheckpointWriter(tmp_path / "ck")
    _save(writer, agg)
    restored = MinuteAggregator(Stats(), 3_600_000)
    restored.restore(CheckpointWriter(tmp_path / "ck").load()["aggregators"]["a"])
    assert restored.close_all() == agg.close_all()
