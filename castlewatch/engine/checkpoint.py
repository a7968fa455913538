"""The daemon's checkpoint file: an append-only log of binary records, compacted now and then.

A checkpoint is, together and atomically, each source's position, the open minutes, each
file sink's size and the counters (the exactly-once design is in
:mod:`castlewatch.engine.runner`). Writing all open minutes at every save would cost the
size of the whole state each time: with an hour of allowed lateness and a value metric
that is every distinct value of sixty minutes. So a save writes what changed since the
previous one:

- **Format (version 2).** ``MAGIC`` (8 bytes, the last one the version), then records:
  ``u32 length, u32 CRC-32 of the payload`` (little-endian), payload = msgpack of a
  :class:`Record` (msgspec). A record holds the positions, sink sizes, counters,
  evaluator state and watermarks in full (they are small), and of the open datapoints
  only those that changed: new values of a large datapoint (numpy arrays as bytes,
  each in the narrowest type that is exact: 4 bytes for a whole number of bytes, 1 for
  a count under 256), all values of a small one (at most ``SMALL_VALUES``), the statistics, the
  serials of the datapoints closed since, the order of sealed late datapoints.
- **Reading** folds the records in order. The first record is a base (complete in
  itself). A record cut short or failing its CRC ends the log: a save interrupted by a
  crash (kill -9, power loss) leaves the records before it, a consistent checkpoint of
  its own (the restart truncates the sinks to *its* sizes); the next save overwrites
  the broken tail.
- **Saving** (:class:`CheckpointWriter`): on the event loop only the changed datapoints'
  new values are taken (:meth:`Datapoint.take_changes`, cost proportional to the
  change, no copy of the rest); a thread encodes and appends the record and fsyncs it,
  while the loop goes on evaluating. The next save waits for it.
- **Compaction**: when the records appended since the base outweigh it (and
  ``compact_min_bytes``), the writer thread folds the file into one base record and
  replaces the file atomically (temporary file, fsync, rename, fsync of the
  directory): from the file, not from the live state, so nothing is copied on the loop.
- **Version 1** (the JSON checkpoint of earlier castlewatch versions) is still read
  and migrated: the first save replaces it with a version 2 file.

Errors: :class:`CheckpointError` for a file that is not a castlewatch checkpoint, is of
another version, is corrupt before its first complete record, or not of the shape
castlewatch writes; the message names the file and says to move it away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from castlewatch.model import SMALL_VALUES, Stats

VERSION = 2
MAGIC = b"\x89CWCKPT" + bytes([VERSION])
_HEAD = struct.Struct("<II")  # payload length, CRC-32 of the payload
#: Compact once the records appended since the base weigh more than the base and this.
COMPACT_MIN_BYTES = 4 << 20

# numpy (through castlewatch.values) is imported by the functions that need it, when a
# checkpoint is used: the commands that use none start faster.

# where an open datapoint is in its aggregator
WINDOW, LATE, SEALED = 0, 1, 2


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used with this configuration."""


# ---- what a save takes from the aggregators (on the event loop) -------------------------------


@dataclass(slots=True)
class PointChange:
    """One changed datapoint of a save: its serial, where it is (:data:`WINDOW`,
    :data:`LATE`, :data:`SEALED`), ``(full, parts)`` from ``Datapoint.take_changes``,
    its statistics (sum, sample_count, minimum, maximum) and, on its first record, its
    key (namespace, metric name, dimensions, unit, minute start in epoch seconds)."""

    serial: int
    where: int
    full: bool
    parts: list[tuple[Any, Any]]
    stats: tuple[float, int, float, float]
    key: tuple[str, str, tuple[tuple[str, str], ...], str, int] | None


@dataclass(slots=True)
class AggregatorChanges:
    """What one aggregator's save holds: watermarks and late clocks ((namespace, metric,
    ms) each) and the next serial in full, the changed datapoints, the serials of those
    closed since the previous save, the serials of the sealed datapoints in order."""

    watermarks: list[tuple[str, str, int]]
    late_clocks: list[tuple[str, str, int]]
    next_serial: int
    points: list[PointChange]
    closed: list[int]
    sealed: list[int]


@dataclass(slots=True)
class RestoredPoint:
    """An open datapoint as the checkpoint holds it (values distinct, counts matching)."""

    serial: int
    where: int
    key: tuple[str, str, tuple[tuple[str, str], ...], str, int]
    values: Any  # numpy float64
    counts: Any  # numpy int64
    stats: tuple[float, int, float, float]


@dataclass(slots=True)
class AggregatorState:
    """One aggregator's state in a checkpoint, for ``MinuteAggregator.restore``: points in
    serial order (creation order)."""

    watermarks: list[tuple[str, str, int]]
    late_clocks: list[tuple[str, str, int]]
    next_serial: int
    points: list[RestoredPoint]
    sealed: list[int]


# ---- the records on disk ------------------------------------------------------------------------


class PointRecord(msgspec.Struct, array_like=True):
    """A changed datapoint in a record. ``values`` and ``counts``: little-endian arrays of
    numpy types ``value_type`` and ``count_type`` (the narrowest that is exact,
    :func:`castlewatch.values.pack_values`); empty ``counts`` means 1 for each value;
    ``full``: they replace the values held so far, else they are added. ``key`` on the
    datapoint's first record: namespace, metric name, dimensions ([name, value] pairs),
    unit, minute (epoch s)."""

    serial: int
    where: int
    full: bool
    values: bytes
    counts: bytes
    stats: tuple[float, int, float, float]
    key: tuple[str, str, list[tuple[str, str]], str, int] | None
    value_type: str
    count_type: str


class AggregatorRecord(msgspec.Struct, array_like=True):
    watermarks: list[tuple[str, str, int]]
    late_clocks: list[tuple[str, str, int]]
    next_serial: int
    points: list[PointRecord]
    closed: list[int]
    sealed: list[int]


class Record(msgspec.Struct):
    """One save. ``base``: complete in itself (the first record of a file)."""

    base: bool
    sources: dict[str, Any]
    evaluators: dict[str, Any]
    aggregators: dict[str, AggregatorRecord]
    sinks: list[Any]
    stats: dict[str, Any]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Record).decode


@dataclass(slots=True)
class Capture:
    """One save as taken on the event loop; :func:`_record` encodes it in the writer thread."""

    sources: dict[str, Any]
    evaluators: dict[str, Any]
    aggregators: dict[str, AggregatorChanges]
    sinks: list[Any]
    stats: dict[str, Any]


def _point_record(change: PointChange) -> PointRecord:
    import numpy as np

    from castlewatch import values as vs

    # parts are numpy arrays or array.array, contiguous: frombuffer views each without a copy
    parts = [(np.frombuffer(v, np.float64), None if c is None else np.frombuffer(c, np.int64))
             for v, c in change.parts if len(v)]
    if len(parts) == 1 and (parts[0][1] is not None or len(parts[0][0]) == 1):  # distinct already
        values, counts = parts[0]
    elif not parts:
        values, counts = vs.EMPTY_VALUES, None
    elif all(c is None for _, c in parts):  # raw contributions only
        values, counts = vs.fold(np.concatenate([v for v, _ in parts]))
    else:
        values = np.concatenate([v for v, _ in parts])
        counts = np.concatenate([np.ones(len(v), np.int64) if c is None else c for v, c in parts])
        values, counts = vs.fold(values, counts)
    value_type, data = vs.pack_values(values)
    count_type, counted = ("<u1", b"") if counts is None else vs.pack_counts(counts)
    key = None
    if change.key is not None:
        namespace, name, dims, unit, minute = change.key
        key = (namespace, name, [tuple(d) for d in dims], unit, minute)
    return PointRecord(change.serial, change.where, change.full, data, counted, change.stats, key, value_type,
                       count_type)


def _record(capture: Capture, base: bool) -> Record:
    aggregators = {
        name: AggregatorRecord(a.watermarks, a.late_clocks, a.next_serial, [_point_record(p) for p in a.points],
                               a.closed, a.sealed)
        for name, a in capture.aggregators.items()
    }
    return Record(base, capture.sources, capture.evaluators, aggregators, capture.sinks, capture.stats)


def _frame(record: Record) -> tuple[bytes, bytes]:
    """A record's head (length, CRC-32) and payload, to be written one after the other."""
    payload = _encode(record)
    return _HEAD.pack(len(payload), zlib.crc32(payload)), payload


# ---- folding records into a state ----------------------------------------------------------------


class _Point:
    __slots__ = ("where", "key", "stats", "parts")

    def __init__(self, key) -> None:
        self.key = key
        self.parts: list[tuple[Any, Any]] = []  # (values, counts or None) numpy arrays to fold


class _Fold:
    """The state the records read so far add up to."""

    def __init__(self) -> None:
        self.sources: dict[str, Any] = {}
        self.evaluators: dict[str, Any] = {}
        self.sinks: list[Any] = []
        self.stats: dict[str, Any] = {}
        self.aggregators: dict[str, dict[str, Any]] = {}

    def apply(self, record: Record) -> None:
        """Fold one record in. Raises ValueError for a record that contradicts the earlier ones."""
        from castlewatch import values as vs

        self.sources, self.evaluators, self.sinks, self.stats = (
            record.sources, record.evaluators, record.sinks, record.stats,
        )
        # every save holds every aggregator of the run: one that is missing belongs to a
        # source no longer configured, and goes
        self.aggregators = {name: self.aggregators.get(name, {"points": {}}) for name in record.aggregators}
        if record.base:
            self.aggregators = {name: {"points": {}} for name in record.aggregators}
        for name, a in record.aggregators.items():
            agg = self.aggregators[name]
            agg.update(watermarks=a.watermarks, late_clocks=a.late_clocks, next_serial=a.next_serial, sealed=a.sealed)
            points: dict[int, _Point] = agg["points"]
            for p in a.points:
                point = points.get(p.serial)
                if point is None:
                    if p.key is None:
                        raise ValueError(f"a change to datapoint {p.serial}, which no earlier record holds")
                    namespace, name_, dims, unit, minute = p.key
                    point = points[p.serial] = _Point((namespace, name_, tuple((n, v) for n, v in dims), unit, minute))
                if p.full:
                    point.parts = []
                values = vs.unpack(p.value_type, p.values, "values")
                counts = vs.unpack(p.count_type, p.counts, "counts") if p.counts else None
                if counts is not None and len(counts) != len(values):
                    raise ValueError(f"datapoint {p.serial} has {len(values)} values and {len(counts)} counts")
                if len(values):
                    point.parts.append((values, counts))
                point.where, point.stats = p.where, p.stats
            for serial in a.closed:
                if points.pop(serial, None) is None:
                    raise ValueError(f"datapoint {serial} closed, but no earlier record holds it")

    def aggregator_state(self, name: str, consume: bool = False) -> AggregatorState:
        """Aggregator ``name``'s state; ``consume``: drop each datapoint's parts once folded
        (compaction: less memory at once)."""
        import numpy as np

        from castlewatch import values as vs

        agg = self.aggregators[name]
        points = []
        for serial in sorted(agg["points"]):
            p = agg["points"][serial]
            if len(p.parts) == 1 and p.parts[0][1] is not None and len(p.parts[0][0]) <= SMALL_VALUES:
                values, counts = p.parts[0]
            elif p.parts:
                values = np.concatenate([v for v, _ in p.parts])
                counts = np.concatenate([np.ones(len(v), np.int64) if c is None else c for v, c in p.parts])
                values, counts = vs.fold(values, counts)
            else:
                values, counts = vs.EMPTY_VALUES, vs.EMPTY_COUNTS
            if consume:
                p.parts = [(values, counts)]
            points.append(RestoredPoint(serial, p.where, p.key, values, counts, tuple(p.stats)))
        return AggregatorState(agg["watermarks"], agg["late_clocks"], agg["next_serial"], points, agg["sealed"])

    def base(self) -> Record:
        """The state as one base record (compaction)."""
        from castlewatch import values as vs

        aggregators = {}
        for name in self.aggregators:
            state = self.aggregator_state(name, consume=True)
            points = []
            for p in state.points:
                (value_type, values), (count_type, counts) = vs.pack_values(p.values), vs.pack_counts(p.counts)
                key = (p.key[0], p.key[1], [tuple(d) for d in p.key[2]], p.key[3], p.key[4])
                points.append(PointRecord(p.serial, p.where, True, values, counts, p.stats, key, value_type, count_type))
            aggregators[name] = AggregatorRecord(state.watermarks, state.late_clocks, state.next_serial, points, [],
                                                 state.sealed)
        return Record(True, self.sources, self.evaluators, aggregators, self.sinks, self.stats)


@dataclass(slots=True)
class _Log:
    """What reading a version 2 file found: the fold, the length of its valid prefix, the
    size of its base record, and how many bytes after the valid prefix were dropped."""

    fold: _Fold
    good: int
    base: int
    dropped: int


def read_log(fh: BinaryIO, where: str, end: int | None = None) -> _Log:
    """Fold a version 2 checkpoint read from ``fh``, positioned after ``MAGIC`` (see the
    module docstring), one record at a time, up to byte ``end`` (default: its end).

    Raises:
        CheckpointError: no complete first record, or a record not of the shape
            castlewatch writes (``where`` names the file in the message).
    """
    fold = _Fold()
    offset, count, base = len(MAGIC), 0, 0
    size = os.fstat(fh.fileno()).st_size if end is None else end
    while offset + _HEAD.size <= size:
        head = fh.read(_HEAD.size)
        if len(head) < _HEAD.size:
            break  # the file was cut while read (a save overwriting a broken tail)
        length, crc = _HEAD.unpack(head)
        if length == 0 or length > size - offset - _HEAD.size:
            break  # a save cut short (zeros: a file extended before its data was written): the log ends
        payload = fh.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            record = _decode(payload)
            del payload
            if record.base != (count == 0):
                raise ValueError("the first record is not complete in itself" if count == 0
                                 else "a complete record after the first")
            fold.apply(record)
        except (msgspec.DecodeError, ValueError) as err:  # msgspec.ValidationError is a DecodeError
            raise CheckpointError(
                f"checkpoint {where} is not of the shape castlewatch writes (record {count + 1}: {err}); "
                "move it away to start afresh"
            ) from None
        offset += _HEAD.size + length
        count += 1
        if count == 1:
            base = offset
    if count == 0:
        raise CheckpointError(
            f"checkpoint {where} is corrupt: it holds no complete record (it was not written by castlewatch, "
            "or was damaged); move it away to start afresh"
        )
    return _Log(fold, offset, base, max(0, size - offset) if end is None else 0)


# ---- the file: load, save, compact ----------------------------------------------------------------


@dataclass
class CheckpointWriter:
    """Loads and writes one checkpoint file (or none: ``path`` None).

    Attributes:
        path: the checkpoint file.
        compact_min_bytes: compact when the records appended since the base weigh more
            than the base and this many bytes.
        report: what the writer did (``writes``, ``bytes``, ``write_s`` total and
            ``write_s_max``, ``compactions``, ``compact_s``, ``file_bytes``), for the
            benchmark and the logs.
        warnings: what loading found worth saying (a save cut short, a migration).
    """

    path: Path | None
    compact_min_bytes: int = COMPACT_MIN_BYTES
    report: dict[str, Any] = field(default_factory=lambda: {
        "writes": 0, "bytes": 0, "write_s": 0.0, "write_s_max": 0.0, "compactions": 0, "compact_s": 0.0,
        "file_bytes": 0})
    warnings: list[str] = field(default_factory=list)
    _good: int = 0  # length of the file's valid prefix (where the next record goes)
    _base: int = 0  # length of the magic and the base record
    _needs_base: bool = True  # the next save writes a new file with a base record
    _task: asyncio.Task | None = None
    _finished: float = field(default_factory=time.monotonic)

    # -- loading --

    def load(self) -> dict[str, Any]:
        """The checkpoint's state: ``sources``, ``evaluators``, ``aggregators`` (name ->
        :class:`AggregatorState`, or a version 1 dict), ``sinks``, ``stats``; ``{}`` when
        there is no file.

        Raises:
            CheckpointError: see the module docstring.
        """
        path = self.path
        if path is None or not path.exists():
            return {}
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(MAGIC))
                if head[:-1] == MAGIC[:-1] and len(head) == len(MAGIC):
                    if head != MAGIC:
                        raise CheckpointError(
                            f"checkpoint {path} has version {head[-1]}, this castlewatch reads versions 1 and "
                            f"{VERSION}; move it away to start afresh"
                        )
                    log = read_log(fh, str(path))
                else:
                    log = None
                    data = head + fh.read()
        except OSError as err:
            raise CheckpointError(f"checkpoint {path} cannot be read: {err.strerror or err}") from None
        if log is not None:
            if log.dropped:
                self.warnings.append(
                    f"checkpoint {path}: its last {log.dropped} bytes are a save that was cut short (a crash while "
                    "saving); resuming from the save before it"
                )
            fold = log.fold
            problem = stats_problem(fold.stats)
            if problem:
                raise CheckpointError(
                    f"checkpoint {path} is not of the shape castlewatch writes: {problem}; move it away to start afresh"
                )
            self._good, self._base, self._needs_base = log.good, log.base, False
            self.report["file_bytes"] = log.good
            return {
                "version": VERSION,
                "sources": fold.sources,
                "evaluators": fold.evaluators,
                "aggregators": {name: fold.aggregator_state(name) for name in fold.aggregators},
                "sinks": fold.sinks,
                "stats": fold.stats,
            }
        state = _load_version_1(data, path)
        self.warnings.append(f"checkpoint {path} is of version 1 (JSON); the first save rewrites it as version {VERSION}")
        return state

    # -- saving --

    def due(self, interval_s: float) -> bool:
        """True when no save is being written and ``interval_s`` seconds have passed since
        the previous one was (so saves never run back to back)."""
        task = self._task
        if task is not None:
            if not task.done():
                return False
            if task.cancelled() or task.exception() is not None:
                return True  # a failed save: the next one raises its error at once
        return time.monotonic() - self._finished >= interval_s

    async def idle(self) -> None:
        """Wait for the save being written, if any, without raising what it raised (the
        next :meth:`settle` does)."""
        if self._task is not None:
            await asyncio.wait([self._task])

    async def settle(self) -> None:
        """Wait for the save being written, if any; raise what it raised (an ``OSError``)."""
        task, self._task = self._task, None
        if task is not None:
            await task

    def start(self, capture: Capture | None, on_written: Callable[[], None] | None = None) -> None:
        """Write ``capture`` in a thread (:meth:`settle` waits for it). Raises nothing itself.

        ``on_written`` is called on the event loop once the write is durable (at once
        without a checkpoint file), not if it fails.
        """
        if self.path is None:
            self._finished = time.monotonic()
            if on_written is not None:
                on_written()
            return
        self._task = task = asyncio.ensure_future(asyncio.to_thread(self.write, capture))
        if on_written is not None:
            task.add_done_callback(lambda t: None if t.cancelled() or t.exception() is not None else on_written())

    @property
    def wants_everything(self) -> bool:
        """True when the next save must take every open datapoint (it starts a new file)."""
        return self._needs_base

    def write(self, capture: Capture) -> None:
        """Write ``capture`` now, in this thread: a new file with a base record (the first
        save, or after a failed one), else a record appended and fsynced, then compaction
        if due.

        Raises:
            OSError: the file could not be written (the next save then starts a new file).
        """
        started = time.perf_counter()
        try:
            if self._needs_base:
                self._write_base(_frame(_record(capture, base=True)))
            else:
                self._append(_frame(_record(capture, base=False)))
                if self._good - self._base > max(self._base, self.compact_min_bytes):
                    self._compact()
        except BaseException:
            self._needs_base = True  # what is on disk no longer matches what was taken
            raise
        finally:
            self._finished = time.monotonic()
            elapsed = time.perf_counter() - started
            self.report["writes"] += 1
            self.report["write_s"] += elapsed
            self.report["write_s_max"] = max(self.report["write_s_max"], elapsed)
            self.report["file_bytes"] = self._good

    def _write_base(self, frame: tuple[bytes, bytes]) -> None:
        write_atomically(self.path, (MAGIC, *frame))
        self._good = self._base = len(MAGIC) + len(frame[0]) + len(frame[1])
        self._needs_base = False
        self.report["bytes"] += self._good

    def _append(self, frame: tuple[bytes, bytes]) -> None:
        head, payload = frame
        with open(self.path, "r+b") as fh:
            fh.truncate(self._good)  # a save cut short before this one
            fh.seek(self._good)
            fh.write(head)
            fh.write(payload)
            fh.flush()
            os.fdatasync(fh.fileno()) if hasattr(os, "fdatasync") else os.fsync(fh.fileno())
        self._good += len(head) + len(payload)
        self.report["bytes"] += len(head) + len(payload)

    def _compact(self) -> None:
        started = time.perf_counter()
        with open(self.path, "rb") as fh:
            fh.seek(len(MAGIC))
            fold = read_log(fh, str(self.path), end=self._good).fold
        self._write_base(_frame(fold.base()))
        self.report["compactions"] += 1
        self.report["compact_s"] += time.perf_counter() - started


def capture(sources: dict[str, Any], evaluators: dict[str, Any], aggregators: dict[str, AggregatorChanges],
            sinks: list[Any], stats: Stats) -> Capture:
    """A save's :class:`Capture`: copies of the small parts that go on changing (positions
    are replaced, never changed, so a shallow copy holds them)."""
    return Capture(dict(sources), evaluators, aggregators, list(sinks), stats_state(stats))


# ---- counters ----------------------------------------------------------------------------------------

# Checkpointed Stats fields: name -> (type, type of the values for a dict, or None).
_STATS_FIELDS: dict[str, tuple[type, type | None]] = {
    "events_read": (int, None),
    "malformed": (dict, int),
    "not_json": (dict, int),
    "late_events": (int, None),
    "matched": (dict, int),
    "datapoints_written": (int, None),
    "datums_written": (int, None),
    "disabled_filters": (dict, str),
    "out_of_range": (dict, int),
    "bad_dimension_values": (dict, int),
    "published": (int, None),
    "refused": (dict, int),
    "unknown_outcomes": (int, None),
    "unpublished": (int, None),
}


def stats_state(stats: Stats) -> dict[str, Any]:
    """The checkpointed counters of ``stats`` (copies: the run goes on counting)."""
    out: dict[str, Any] = {}
    for name, (kind, _) in _STATS_FIELDS.items():
        value = getattr(stats, name)
        out[name] = dict(value) if kind is dict else value
    return out


def stats_problem(stats: Any) -> str | None:
    """What is wrong with a checkpoint's counters, or None."""
    if not isinstance(stats, dict):
        return "'stats' is not a JSON object"
    for name, value in stats.items():
        if name not in _STATS_FIELDS:
            return f"stats has an unknown counter {name!r}"
        kind, item = _STATS_FIELDS[name]
        if kind is int:
            if type(value) is not int or value < 0:
                return f"stats[{name!r}] is not a count"
        elif not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) is item and (item is not int or v >= 0) for k, v in value.items()
        ):
            return f"stats[{name!r}] is not an object of {'counts' if item is int else 'strings'}"
    return None


# ---- version 1: the JSON checkpoint --------------------------------------------------------------


def _load_version_1(data: bytes, path: Path) -> dict[str, Any]:
    """A version 1 (JSON) checkpoint's state; its aggregators stay dicts, read by
    :func:`state_of_version_1` when each aggregator restores."""
    if not data.strip():
        raise CheckpointError(f"checkpoint {path} is empty: not a castlewatch checkpoint; move it away to start afresh")
    if data.lstrip()[:1] not in (b"{", b"["):
        raise CheckpointError(f"checkpoint {path} is not a castlewatch checkpoint; move it away to start afresh")
    try:
        state = json.loads(data)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path} is not valid JSON: {err}") from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {path} is not a castlewatch checkpoint (not a JSON object); move it away to start afresh"
        )
    if state.get("version") != 1:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')!r}")
    problem = _version_1_problem(state)
    if problem:
        raise CheckpointError(
            f"checkpoint {path} is not of the shape castlewatch writes: {problem}; move it away to start afresh"
        )
    return state


def _version_1_problem(state: dict[str, Any]) -> str | None:
    for key in ("sinks", "stats"):
        if key not in state:
            return f"it has no {key!r}"
    for key, kind in (("sources", dict), ("aggregators", dict), ("evaluators", dict), ("sinks", list), ("stats", dict)):
        if key in state and not isinstance(state[key], kind):
            return f"{key!r} is not a JSON {'object' if kind is dict else 'array'}"
    for key in ("aggregators", "evaluators"):
        for name, value in state.get(key, {}).items():
            if not isinstance(value, dict):
                return f"{key}[{name!r}] is not a JSON object"
    return stats_problem(state["stats"])


def state_of_version_1(state: dict[str, Any]) -> AggregatorState:
    """An aggregator's state from its version 1 (JSON) snapshot: windows, late and sealed
    datapoints get serials in that order (their order in the snapshot).

    Raises:
        KeyError, TypeError, ValueError: not of the shape version 1 wrote.
    """
    import numpy as np

    from castlewatch import values as vs

    watermarks = [(ns, name, wm) for ns, name, wm in state["watermarks"]]
    points = []
    sealed = []
    for where, part in ((WINDOW, "windows"), (LATE, "late"), (SEALED, "sealed")):
        for item in state.get(part, []) if part != "windows" else state["windows"]:
            namespace, name, dims, unit = item["key"]
            pairs = item["values"]
            values, counts = vs.fold(np.array([float(v) for v, _ in pairs], np.float64),
                                     np.array([int(c) for _, c in pairs], np.int64))
            serial = len(points) + 1
            key = (namespace, name, tuple((n, v) for n, v in dims), unit, item["minute"] // 1000)
            total, count, minimum, maximum = item["stats"]
            points.append(RestoredPoint(serial, where, key, values, counts, (total, count, minimum, maximum)))
            if where == SEALED:
                sealed.append(serial)
    late_clocks = [(ns, name, t) for ns, name, t in state.get("late_clocks", [])]
    return AggregatorState(watermarks, late_clocks, len(points) + 1, points, sealed)


# ---- files ------------------------------------------------------------------------------------------


def write_atomically(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Replace ``path`` with ``data`` (bytes, or pieces written one after the other) so that
    a crash leaves the old or the new file whole.

    Raises:
        OSError: the file could not be written; the old one, if any, is left whole and the
            temporary file removed.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            for piece in (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_writable(path: Path) -> None:
    """CheckpointError unless a checkpoint can be written at ``path``: its directory exists
    and takes a new file (tried with the temporary file :func:`write_atomically` uses)."""
    directory = path.parent
    if not directory.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: the directory {directory} does not exist")
    if path.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a directory")
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise CheckpointError(f"cannot write the checkpoint {path}: {err.strerror or err}") from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint as plain data, for tests and inspection: ``version``, ``sources``,
    ``evaluators``, ``sinks``, ``stats`` and per aggregator ``watermark`` (the latest),
    ``watermarks``, ``late_clocks`` and ``windows``/``late``/``sealed`` (each datapoint:
    ``minute`` (ms), ``key`` [namespace, metric, dimensions, unit], ``values`` [[value,
    count], ...] ascending, ``stats`` [sum, sample_count, minimum, maximum]).

    Raises:
        CheckpointError: as loading does; FileNotFoundError if there is no file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    state = CheckpointWriter(path).load()
    out = {k: state[k] for k in ("sources", "evaluators", "sinks", "stats")}
    out["version"] = state.get("version", 1)
    out["aggregators"] = {}
    for name, agg in state["aggregators"].items():
        if isinstance(agg, dict):
            agg = state_of_version_1(agg)
        parts: dict[str, list] = {"windows": [], "late": [], "sealed": []}
        by_serial = {}
        for p in agg.points:
            item = {"minute": p.key[4] * 1000, "key": [p.key[0], p.key[1], [list(d) for d in p.key[2]], p.key[3]],
                    "values": [[v, c] for v, c in sorted(zip(p.values.tolist(), p.counts.tolist()))],
                    "stats": list(p.stats)}
            by_serial[p.serial] = item
            if p.where != SEALED:
                parts["windows" if p.where == WINDOW else "late"].append(item)
        parts["sealed"] = [by_serial[s] for s in agg.sealed]
        out["aggregators"][name] = {
            "watermark": max((wm for _, _, wm in agg.watermarks), default=-(2**62)),
            "watermarks": [list(w) for w in agg.watermarks],
            "late_clocks": [list(c) for c in agg.late_clocks],
            **parts,
        }
    return out
