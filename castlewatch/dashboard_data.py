"""The datapoints a local dashboard draws: the Sum per minute of each metric and dimension set.

:class:`MinuteSums` holds, per series (namespace, metric name, dimension set), the Sum,
SampleCount, Minimum and Maximum of each minute, added up over every datapoint of that
minute: a minute's late datapoints (published separately, README "late contributions")
and the several datums of a datapoint with more than 150 values (spec §9) add up, as
CloudWatch adds up what it receives for a minute. Memory is bounded: only the
``max_minutes`` minutes up to the newest one seen are kept (older ones are dropped and
counted in ``outside``), and at most :data:`~castlewatch.dashboard.MAX_METRICS_PER_WIDGET`
dimension value sets per metric are drawn, as the ``cloudwatch_dashboard`` sink draws them.

The readers fill one from the files the file sinks wrote: JSON Lines (one PutMetricData
``MetricDatum`` plus ``Namespace`` per line, ``Values``/``Counts``, ``StatisticValues`` or
``Value``), Avro (``castlewatch.Datapoint`` records) and CSV (one row per datapoint).
:func:`datapoint_file` picks the file of a configuration to read.
"""

from __future__ import annotations

import csv
import datetime as _dt
import heapq
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from castlewatch.dashboard import MAX_METRICS_PER_WIDGET
from castlewatch.model import Datapoint, iso8601_ms

#: The file sink kinds a dashboard can be filled from, by preference when a config has several.
READABLE_SINKS = ("jsonl", "avro", "csv")

Dimensions = tuple[tuple[str, str], ...]
#: A series: (namespace, metric name, dimension set sorted by name).
SeriesKey = tuple[str, str, Dimensions]


class DatapointFileError(ValueError):
    """A datapoint file that cannot be read: ``str()`` names the file, the line (JSON
    Lines, CSV) or record (Avro) and what is wrong."""


@dataclass(slots=True)
class Cell:
    """One minute of one series: the statistics of every datapoint of that minute added up.

    Attributes:
        sum, sample_count, minimum, maximum: PutMetricData's ``StatisticValues``.
        datapoints: how many datapoints (or datums) were added up.
    """

    sum: float = 0.0
    sample_count: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    datapoints: int = 0

    def add(self, total: float, count: float, minimum: float, maximum: float) -> None:
        """Add one datapoint's statistics."""
        self.sum += total
        self.sample_count += count
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        self.datapoints += 1


@dataclass(slots=True)
class Series:
    """One metric and dimension set.

    Attributes:
        dimensions: the dimension set as first seen (in its metric transformation's order).
        units: the units its datapoints carried (``"None"`` when not set), in order seen.
        minutes: minute start (epoch **seconds**, UTC) -> :class:`Cell`.
        latest: the newest minute (epoch seconds) that has a cell, or None.
    """

    dimensions: Dimensions
    units: list[str] = field(default_factory=list)
    minutes: dict[int, Cell] = field(default_factory=dict)
    latest: int | None = None


class MinuteSums:
    """Per series and minute, the datapoints added up, for the last ``max_minutes`` minutes.

    Args:
        max_minutes: minutes kept, counted back from the newest minute seen (that one
            included); an older datapoint is counted in :attr:`outside`, not kept.

    Attributes:
        series: :data:`SeriesKey` -> :class:`Series`.
        seen: (namespace, metric name) -> the dimension sets seen, in the order seen, at
            most :data:`~castlewatch.dashboard.MAX_METRICS_PER_WIDGET` (what
            :func:`castlewatch.dashboard.dashboard_body` takes as ``seen``).
        newest: the newest minute seen (epoch seconds), or None.
        outside: datapoints not kept: older than the kept minutes, when they came or later.
        version: incremented at every change (a page redraws when it differs).
    """

    def __init__(self, max_minutes: int = 10_080) -> None:
        if max_minutes < 1:
            raise ValueError(f"max_minutes: {max_minutes!r}, expected at least 1")
        self.max_minutes = max_minutes
        self.series: dict[SeriesKey, Series] = {}
        self.seen: dict[tuple[str, str], dict[Dimensions, None]] = {}
        self.newest: int | None = None
        self.outside = 0
        self.version = 0
        self._by_minute: dict[int, list[SeriesKey]] = {}
        self._heap: list[int] = []

    @property
    def oldest_kept(self) -> int | None:
        """The first minute kept (epoch seconds), or None before any datapoint."""
        return None if self.newest is None else self.newest - 60 * (self.max_minutes - 1)

    def add(
        self,
        namespace: str,
        metric_name: str,
        dimensions: Dimensions,
        unit: str,
        timestamp: int,
        total: float,
        count: float,
        minimum: float,
        maximum: float,
    ) -> None:
        """Add one datapoint (or datum) of the minute starting at ``timestamp`` (epoch
        seconds; a time inside the minute counts for that minute)."""
        minute = timestamp - timestamp % 60
        if count <= 0:
            return
        sets = self.seen.setdefault((namespace, metric_name), {})
        if dimensions and dimensions not in sets and len(sets) < MAX_METRICS_PER_WIDGET:
            sets[dimensions] = None
        self.version += 1
        if self.newest is None or minute > self.newest:
            self.newest = minute
            self._prune()
        if minute < self.oldest_kept:  # type: ignore[operator]
            self.outside += 1
            return
        key = (namespace, metric_name, tuple(sorted(dimensions)))
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(dimensions)
        if unit not in series.units:
            series.units.append(unit)
        cell = series.minutes.get(minute)
        if cell is None:
            cell = series.minutes[minute] = Cell()
            keys = self._by_minute.get(minute)
            if keys is None:
                keys = self._by_minute[minute] = []
                heapq.heappush(self._heap, minute)
            keys.append(key)
            if series.latest is None or minute > series.latest:
                series.latest = minute
        cell.add(total, count, minimum, maximum)

    def add_datapoints(self, datapoints: Iterable[Datapoint]) -> None:
        """Add the engine's datapoints (those without contributions publish nothing and are skipped)."""
        for dp in datapoints:
            if dp.sample_count > 0:
                self.add(dp.namespace, dp.metric_name, dp.dimensions, dp.unit, dp.timestamp, float(dp.sum),
                         dp.sample_count, float(dp.minimum), float(dp.maximum))

    def _prune(self) -> None:
        cutoff = self.oldest_kept
        heap = self._heap
        while heap and heap[0] < cutoff:  # type: ignore[operator]
            minute = heapq.heappop(heap)
            for key in self._by_minute.pop(minute):
                series = self.series[key]
                self.outside += series.minutes.pop(minute).datapoints
                if not series.minutes:  # its latest minute is older than the cutoff too
                    del self.series[key]

    def lookup(self, namespace: str, metric_name: str, dimensions: Iterable[tuple[str, str]]) -> Series | None:
        """The series of that metric and dimension set (in any order), or None."""
        return self.series.get((namespace, metric_name, tuple(sorted(dimensions))))

    def minute_range(self) -> tuple[int, int] | None:
        """(first, last) minute with a kept cell (epoch seconds), or None when empty."""
        if not self._by_minute:
            return None
        return min(self._by_minute), max(self._by_minute)

    def copy(self) -> MinuteSums:
        """A copy that later additions to this one do not change (to render in a thread)."""
        other = MinuteSums(self.max_minutes)
        other.series = {
            key: Series(s.dimensions, list(s.units),
                        {m: Cell(c.sum, c.sample_count, c.minimum, c.maximum, c.datapoints)
                         for m, c in s.minutes.items()}, s.latest)
            for key, s in self.series.items()
        }
        other.seen = {key: dict(sets) for key, sets in self.seen.items()}
        other.newest, other.outside, other.version = self.newest, self.outside, self.version
        other._by_minute = {m: list(keys) for m, keys in self._by_minute.items()}
        other._heap = list(self._heap)
        return other


# ---- the files the sinks wrote ---------------------------------------------------------------------


def datapoint_file(config: Any) -> tuple[str, Path] | None:
    """(kind, path) of the file a dashboard of ``config`` is filled from: its first
    ``jsonl`` sink, else its first ``avro`` sink, else its first ``csv`` sink; None
    without any of them (they all hold the same datapoints)."""
    for kind in READABLE_SINKS:
        for spec in config.sinks:
            if spec.type == kind and spec.path:
                return kind, Path(spec.path)
    return None


def read_datapoints(kind: str, path: Path, into: MinuteSums) -> list[str]:
    """Add every datapoint of the ``kind`` sink's file ``path`` to ``into``.

    Returns:
        Notes worth printing: a JSON Lines or CSV file whose last line is not complete
        (a daemon writing it now) has that line left out.

    Raises:
        OSError: the file cannot be read (missing included).
        DatapointFileError: a line or record that is not a datapoint, naming where.
    """
    if kind == "jsonl":
        return _read_jsonl(path, into)
    if kind == "avro":
        _read_avro(path, into)
        return []
    if kind == "csv":
        return _read_csv(path, into)
    raise ValueError(f"cannot read datapoints from a {kind} sink")


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line without its end, complete) of a file, read in blocks."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            complete = line.endswith(b"\n")
            yield number, line.rstrip(b"\r\n"), complete


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return float(value)


def _datum_statistics(datum: dict[str, Any]) -> tuple[float, float, float, float]:
    """(Sum, SampleCount, Minimum, Maximum) of a PutMetricData ``MetricDatum``."""
    if "Values" in datum:
        values = datum["Values"]
        counts = datum.get("Counts") or [1.0] * len(values)
        if not isinstance(values, list) or not isinstance(counts, list) or len(values) != len(counts) or not values:
            raise ValueError("Values and Counts: expected two lists of the same non-zero length")
        values = [_number(v, "Values") for v in values]
        counts = [_number(c, "Counts") for c in counts]
        return sum(v * c for v, c in zip(values, counts)), sum(counts), min(values), max(values)
    if "StatisticValues" in datum:
        stats = datum["StatisticValues"]
        if not isinstance(stats, dict):
            raise ValueError("StatisticValues: expected an object")
        return tuple(_number(stats.get(k), f"StatisticValues.{k}")  # type: ignore[return-value]
                     for k in ("Sum", "SampleCount", "Minimum", "Maximum"))
    if "Value" in datum:
        value = _number(datum["Value"], "Value")
        return value, 1.0, value, value
    raise ValueError("no Values, StatisticValues or Value")


def _dimensions(raw: Any) -> Dimensions:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(d, dict) and isinstance(d.get("Name"), str) and isinstance(d.get("Value"), str) for d in raw
    ):
        raise ValueError("Dimensions: expected a list of {Name, Value} strings")
    return tuple((d["Name"], d["Value"]) for d in raw)


def _timestamp_s(value: Any) -> int:
    ms = iso8601_ms(value)
    if ms is None:
        raise ValueError(f"Timestamp: {value!r} is not an ISO 8601 time")
    return ms // 1000


def _read_jsonl(path: Path, into: MinuteSums) -> list[str]:
    notes = []
    for number, line, complete in _lines(path):
        if not line.strip():
            continue
        if not complete:  # a writer in the middle of its line: the rest comes at its next flush
            notes.append(f"{path}:{number}: the last line is not complete yet (no line end); left out")
            break
        try:
            datum = orjson.loads(line)
            if not isinstance(datum, dict):
                raise ValueError("not a JSON object")
            namespace, name = datum.get("Namespace"), datum.get("MetricName")
            if not isinstance(namespace, str) or not isinstance(name, str):
                raise ValueError("Namespace and MetricName: expected strings")
            unit = datum.get("Unit", "None")
            total, count, minimum, maximum = _datum_statistics(datum)
            into.add(namespace, name, _dimensions(datum.get("Dimensions")), unit if isinstance(unit, str) else "None",
                     _timestamp_s(datum.get("Timestamp")), total, count, minimum, maximum)
        except (orjson.JSONDecodeError, ValueError, TypeError) as err:
            raise DatapointFileError(f"{path}:{number}: not a datapoint (a MetricDatum with Namespace): {err}") from None
    return notes


def _read_avro(path: Path, into: MinuteSums) -> None:
    import fastavro

    with open(path, "rb") as fh:
        try:
            reader = fastavro.reader(fh)
        except Exception as err:  # fastavro raises several types for a bad header
            raise DatapointFileError(f"{path}: not an Avro container file: {err}") from None
        number = 0
        try:
            for number, record in enumerate(reader, 1):
                moment = record["Timestamp"]
                if isinstance(moment, _dt.datetime):
                    seconds = int(moment.timestamp())
                else:
                    seconds = int(moment) // 1000
                into.add(record["Namespace"], record["MetricName"], tuple(record["Dimensions"].items()),
                         record["Unit"], seconds, record["Sum"], record["SampleCount"], record["Minimum"],
                         record["Maximum"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DatapointFileError(f"{path}: record {number}: not a castlewatch.Datapoint: {err}") from None
        except Exception as err:  # a truncated or corrupt block
            raise DatapointFileError(f"{path}: after record {number}: {type(err).__name__}: {err}") from None


def _read_csv(path: Path, into: MinuteSums) -> list[str]:
    from castlewatch.sinks.csv import CSV_HEADER, parse_dimensions

    notes: list[str] = []

    def complete_lines() -> Iterator[str]:
        for number, line, complete in _lines(path):
            if not complete:
                notes.append(f"{path}:{number}: the last line is not complete yet (no line end); left out")
                return
            yield line.decode("utf-8") + "\n"

    rows = csv.reader(complete_lines())
    try:
        header = next(rows, None)
        if header is None:
            return notes
        if tuple(header) != CSV_HEADER:
            raise DatapointFileError(f"{path}:1: expected the header {','.join(CSV_HEADER)}")
        for row in rows:
            record = dict(zip(CSV_HEADER, row, strict=True))
            dims = tuple(parse_dimensions(record["Dimensions"]).items())
            into.add(record["Namespace"], record["MetricName"], dims, record["Unit"],
                     _timestamp_s(record["Timestamp"]), float(record["Sum"]), float(record["SampleCount"]),
                     float(record["Minimum"]), float(record["Maximum"]))
    except (ValueError, csv.Error) as err:  # UnicodeDecodeError is a ValueError
        raise DatapointFileError(f"{path}:{rows.line_num}: not a datapoint row: {err}") from None
    return notes
