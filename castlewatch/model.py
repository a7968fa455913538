"""Data shapes shared by sources, the evaluator, the aggregator and the sinks.

Metric filters use AWS's own shape and casing (``describe-metric-filters`` output
decodes straight into :class:`MetricFilter`); log events and datapoints are the
engine's internal records.  Spec: ``docs/filter-patterns.md`` §8-§9.
"""

from __future__ import annotations

import datetime as _dt
from array import array as _array
from collections import Counter as _count_list
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache as _cache
from typing import Any

import msgspec

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)


def iso8601_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 time (``2024-01-01T00:00:00Z``; UTC when it has no
    offset), exactly (integer arithmetic), or None if ``value`` is not such a string."""
    if type(value) is not str:
        return None
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return (moment - _EPOCH) // _MS


@_cache(maxsize=1 << 12)
def iso_seconds(seconds: int) -> str:
    """``seconds`` since the epoch as ISO 8601 UTC, e.g. ``2024-01-01T00:01:00Z`` (four-digit
    year from 0001). Cached: a run writes the same few minutes again and again.

    Raises:
        OverflowError: beyond year 9999 (or before year 1).
    """
    moment = _EPOCH + _dt.timedelta(seconds=seconds)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class MetricTransformation(msgspec.Struct, rename="camel", omit_defaults=True):
    """One ``metricTransformations`` entry (API_MetricTransformation, spec §8.1).

    ``metric_value`` is a number literal (``"1"``) or a reference (``$.path``,
    ``$name``, ``$N``); ``default_value`` is published once per non-matching event;
    ``dimensions`` map a dimension name to a reference; ``unit`` is one of the 27
    CloudWatch units (None means ``None``).
    """

    metric_name: str
    metric_namespace: str
    metric_value: str
    default_value: float | None = None
    dimensions: dict[str, str] | None = None
    unit: str | None = None


class MetricFilter(msgspec.Struct, rename="camel", omit_defaults=True):
    """A metric filter as PutMetricFilter takes it and DescribeMetricFilters prints it."""

    filter_name: str
    filter_pattern: str
    metric_transformations: list[MetricTransformation]
    log_group_name: str = ""
    creation_time: int | None = None
    emit_system_field_dimensions: list[str] | None = None
    field_selection_criteria: str | None = None
    apply_on_transformed_logs: bool = False

    def to_aws(self) -> dict[str, Any]:
        """The filter in the ``describe-metric-filters`` JSON shape."""
        return msgspec.to_builtins(self)


#: ``LogEvent.timestamp`` of an event whose time is to be read from its message (``lines``
#: sources); any other value, negative ones (before 1970) included, is the event's time.
READ_FROM_MESSAGE = -(2**63)


@dataclass(slots=True)
class LogEvent:
    """One log event.

    Attributes:
        timestamp: event time, epoch **milliseconds** (the minute it counts in, §8.4), or
            :data:`READ_FROM_MESSAGE`.
        message: the log event message.
        log_group: log group name the event belongs to.
        log_stream: log stream name, or ``""``.
    """

    timestamp: int
    message: str
    log_group: str
    log_stream: str = ""


@dataclass(slots=True)
class EventBatch:
    """Events read from one source in one go, with the checkpoint position after them.

    ``position`` is opaque JSON-able source state (e.g. a file's identity and byte
    offset) such that resuming from it reads exactly the events after this batch.

    Plain log lines whose time comes from the message travel light: ``messages``
    holds them (``events`` is then empty), all of log group ``log_group``, no log
    stream, timestamp -1 (read from the message by the evaluator).
    :meth:`log_events` gives either form as :class:`LogEvent` objects.

    ``malformed`` (reason -> count, or None) is the input the source skipped since
    its previous batch, all of it before ``position``: whoever evaluates the batch
    adds it to :attr:`Stats.malformed` then, so counts and positions checkpointed
    together always agree.
    """

    source: str
    events: list[LogEvent]
    position: Any = None
    messages: list[str] | None = None
    log_group: str = ""
    malformed: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.messages) if self.messages is not None else len(self.events)

    def log_events(self) -> list[LogEvent]:
        """The batch's events as :class:`LogEvent` objects, whichever form it holds."""
        if self.messages is None:
            return self.events
        return [LogEvent(READ_FROM_MESSAGE, m, self.log_group) for m in self.messages]


#: Distinct values a datapoint keeps in a dict; beyond, in numpy arrays (:class:`Datapoint`).
SMALL_VALUES = 64
#: A block of at most this many values for one datapoint is handed to ``add_block`` as a list
#: and counted by a dict (``collections.Counter``): less than numpy's fixed cost there.
LIST_BLOCK = 256
_BUFFER_MIN = 1024  # fold a large datapoint's buffer in at least this often


#: The longest dimension value PutMetricData takes, in characters (§9; code points, §12).
MAX_DIMENSION_VALUE = 1024


def dimension_value_problem(text: str) -> str | None:
    """Why PutMetricData refuses ``text`` as a dimension value (§9), or None: ``"not ASCII"``,
    ``"whitespace only"``, ``"over 1,024 characters"``. An empty value is not asked here
    (it publishes nothing without being counted, §8.3)."""
    if not text.isascii():
        return "not ASCII"
    if text.isspace():
        return "whitespace only"
    if len(text) > MAX_DIMENSION_VALUE:
        return "over 1,024 characters"
    return None


_NUMPY: tuple[Any, Any] | None = None


def _numpy() -> tuple[Any, Any]:
    """numpy and :mod:`castlewatch.values`, imported when first needed (a datapoint with more
    than :data:`SMALL_VALUES` values, a checkpoint): commands that need neither start faster.
    Kept once imported: an import statement per call cost the late-heavy replay 20 ms."""
    global _NUMPY
    if _NUMPY is None:
        import numpy

        from castlewatch import values

        _NUMPY = numpy, values
    return _NUMPY


class Datapoint:
    """The aggregate of one metric, one dimension set, one unit, over one minute (§8.4).

    Made empty and fed with :meth:`add`, or given whole: ``values`` (value -> count) and
    the statistics as keyword arguments, which are taken as they are.

    Attributes:
        namespace, metric_name, unit: from the metric transformation (unit ``"None"``
            when not set).
        dimensions: ((name, value), ...) in the transformation's order.
        timestamp: start of the minute, epoch **seconds** (UTC).
        sum, sample_count, minimum, maximum: statistics of the contributions; ``sum``
            adds the contributions one by one in their order (``sum += value * count``)
            while the datapoint is open; the aggregator closes it with the exact Sum of
            its values and counts, rounded once (:mod:`castlewatch.engine.exact_sum`).
        values: value -> number of contributions with that value (a property).
        serial, saved: the aggregator's bookkeeping for checkpoints (creation order; what
            the last checkpoint holds), see :mod:`castlewatch.engine.checkpoint`.

    The distinct values and their counts are exact. Up to :data:`SMALL_VALUES` distinct
    values they are a dict; beyond, two sorted numpy arrays (16 bytes a value,
    :mod:`castlewatch.values`) and a buffer of the values added since (8 bytes each),
    folded in whenever the buffer is as long as the arrays: a minute with a million
    distinct values takes tens of MB, not hundreds.
    """

    __slots__ = (
        "namespace", "metric_name", "dimensions", "unit", "timestamp", "sum", "sample_count", "minimum",
        "maximum", "serial", "saved", "_small", "_values", "_counts", "_buffer", "_limit", "_tracked",
        "_pending", "_mark",
    )

    def __init__(
        self,
        namespace: str,
        metric_name: str,
        dimensions: tuple[tuple[str, str], ...],
        unit: str,
        timestamp: int,
        values: dict[float, int] | None = None,
        sum: float = 0.0,
        sample_count: int = 0,
        minimum: float = float("inf"),
        maximum: float = float("-inf"),
    ) -> None:
        self.namespace = namespace
        self.metric_name = metric_name
        self.dimensions = dimensions
        self.unit = unit
        self.timestamp = timestamp
        self.sum = sum
        self.sample_count = sample_count
        self.minimum = minimum
        self.maximum = maximum
        self.serial = 0
        self.saved: Any = None
        self._small: dict[float, int] | None = {}  # value -> count, until there are too many
        self._values: Any = None  # then: float64, ascending, distinct
        self._counts: Any = None  # int64
        self._buffer: Any = None  # array('d'): values added since the last fold, 1 each
        self._limit = 0  # fold the buffer in at this length
        self._tracked = False  # take_changes() returned every value once: it tracks changes since
        self._pending: list[Any] = []  # raw values folded in since take_changes() last ran
        self._mark = 0  # the buffer's first entries take_changes() already returned
        if values:  # given whole, with the statistics (a record of another origin)
            self._small = dict(values)
            if len(values) > SMALL_VALUES:
                self._to_arrays()

    def __getstate__(self) -> tuple:
        # pickled (a backfill partition's result, Dask) as a tuple of the slots, in order:
        # about a quarter smaller than the default mapping of slot names to values
        return tuple([getattr(self, name) for name in Datapoint.__slots__])

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(Datapoint.__slots__, state):
            setattr(self, name, value)

    @classmethod
    def restored(
        cls,
        namespace: str,
        metric_name: str,
        dimensions: tuple[tuple[str, str], ...],
        unit: str,
        timestamp: int,
        values: Any,
        counts: Any,
        stats: tuple[float, int, float, float],
    ) -> Datapoint:
        """A datapoint as a checkpoint held it: ``values``/``counts`` distinct ascending
        numpy arrays (float64, int64), ``stats`` (sum, sample_count, minimum, maximum).
        Its :meth:`take_changes` then gives only what is added afterwards."""
        point = cls(namespace, metric_name, dimensions, unit, timestamp)
        point.sum, point.sample_count, point.minimum, point.maximum = stats
        if len(values) <= SMALL_VALUES:
            point._small = dict(zip(values.tolist(), counts.tolist()))
        else:
            point._small = None
            point._values, point._counts = values, counts
            point._buffer = _array("d")
            point._limit = max(_BUFFER_MIN, len(values))
            point._tracked = True
        return point

    def add(self, value: float, count: int = 1) -> None:
        """Fold ``count`` contributions of ``value`` in."""
        small = self._small
        if small is not None:
            held = small.get(value)
            if held is None:
                small[value] = count
                if len(small) > SMALL_VALUES:
                    self._to_arrays()
            else:
                small[value] = held + count
        elif count == 1:
            buffer = self._buffer
            buffer.append(value)
            if len(buffer) >= self._limit:
                self._fold_buffer()
        else:
            np, vs = _numpy()
            self._fold_buffer()
            one = vs.fold(np.array([value], np.float64), np.array([count], np.int64))
            self._values, self._counts = vs.merge(self._values, self._counts, *one)
            self._untrack()
        self.sum += value * count
        self.sample_count += count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    def add_block(self, total: float, count: int, minimum: float, maximum: float, raw: Any) -> None:
        """Fold a block of contributions in at once, with :meth:`add`'s result (the batch
        path, :mod:`castlewatch.engine.batch.fold`, computes the statistics in event order).

        Args:
            total: the new ``sum``: this datapoint's sum plus each value, added in order.
            count: how many contributions (``len(raw)``); ``minimum``/``maximum``: the new extremes.
            raw: the values in arrival order: a list of floats (at most :data:`LIST_BLOCK`,
                counted by a dict) or a float64 array (counted with numpy).
        """
        small = self._small
        if small is not None:
            pairs: Any = None
            if type(raw) is list:  # the distinct values in order of first arrival, as add() takes them
                first_value = raw[0]
                # one value (a count's 1.0, a default): the first kept, as a dict keeps the first
                # of equal keys (0.0 and -0.0 among them)
                pairs = ((first_value, count),) if raw.count(first_value) == count else _count_list(raw).items()
            elif (first_value := float(raw[0])) == raw[-1] and (raw == first_value).all():  # one value: the first kept
                pairs = ((first_value, count),)
            else:  # the distinct values in order of first arrival, as a dict takes them
                np, _ = _numpy()
                distinct, counts = np.unique(raw, return_counts=True)  # a plain sort: no first indexes yet
                at = int(np.searchsorted(distinct, 0.0))
                if at < len(distinct) and distinct[at] == 0.0:  # the block's first zero (0.0 or -0.0), as add() keeps it
                    distinct[at] = raw[int(np.flatnonzero(raw == 0.0)[0])]
                # (the values not held yet, counted without np.isin: it imports numpy.ma, 40 ms
                # of start-up; more distinct values than a dict holds cannot fit either way)
                new = len(distinct) if len(distinct) > SMALL_VALUES else sum(v not in small for v in distinct.tolist())
                if len(small) + new <= SMALL_VALUES:
                    _, first = np.unique(raw, return_index=True)
                    order = np.argsort(first)
                    pairs = zip(distinct[order].tolist(), counts[order].tolist())
                else:  # beyond a dict's share either way: to the arrays, with the distinct values found
                    self._to_arrays()
                    small = None
                    _, vs = _numpy()
                    self._values, self._counts = vs.merge(self._values, self._counts, distinct, counts.astype(np.int64))
                    self._limit = max(_BUFFER_MIN, len(self._values))
                    raw = None
            if small is not None:
                get = small.get
                for value, n in pairs:
                    small[value] = get(value, 0) + n
                if len(small) > SMALL_VALUES:
                    self._to_arrays()
        if small is None and raw is not None:
            if type(raw) is list:
                self._buffer.extend(raw)
            else:
                self._buffer.frombytes(raw.tobytes())
            if len(self._buffer) >= self._limit:
                self._fold_buffer()
        self.sum = total
        self.sample_count += count
        self.minimum = minimum
        self.maximum = maximum

    def _to_arrays(self) -> None:
        np, _ = _numpy()
        small, self._small = self._small, None
        values = np.fromiter(small.keys(), np.float64, len(small))
        counts = np.fromiter(small.values(), np.int64, len(small))
        order = np.argsort(values)  # distinct: no ties
        self._values, self._counts = values[order], counts[order]
        self._buffer = _array("d")
        self._limit = max(_BUFFER_MIN, len(small))
        self._untrack()

    def _untrack(self) -> None:
        """The next :meth:`take_changes` returns every value."""
        self._tracked = False
        self._pending = []
        self._mark = 0

    def _fold_buffer(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        np, vs = _numpy()
        self._buffer = _array("d")  # the old one is never appended to again: arrays may view it
        raw = np.frombuffer(buffer, np.float64)
        if self._tracked:
            self._pending.append(raw[self._mark :])
            self._mark = 0
        self._values, self._counts = vs.merge(self._values, self._counts, *vs.fold(raw))
        self._limit = max(_BUFFER_MIN, len(self._values))

    def absorb(self, other: Datapoint) -> None:
        """Fold every contribution of ``other`` (a datapoint of the same metric, dimensions,
        unit and minute) into this one, as if they had been added after this one's:
        the distinct values and their counts add up exactly, a value already here keeping
        its representation (this datapoint's zero wins over ``other``'s), SampleCount
        adds up, Minimum and Maximum are the smaller and the larger (this one's on a tie,
        so ``-0.0`` and ``0.0`` are told apart as :meth:`add` tells them), and ``sum``
        becomes ``self.sum + other.sum`` (an exact Sum is
        :func:`castlewatch.engine.exact_sum.point_sum`). ``other`` is left as it was.
        Used to merge partial aggregates (:mod:`castlewatch.engine.partial`)."""
        theirs = other._small
        if theirs is not None and self._small is not None:
            small = self._small
            for value, count in theirs.items():
                held = small.get(value)
                small[value] = count if held is None else held + count
            if len(small) > SMALL_VALUES:
                self._to_arrays()
        else:
            np, vs = _numpy()
            if self._small is not None:
                self._to_arrays()
            self._fold_buffer()
            if theirs is not None:
                pairs = sorted(theirs.items())
                new = (np.array([v for v, _ in pairs], np.float64), np.array([c for _, c in pairs], np.int64))
            else:
                other._fold_buffer()
                new = (other._values, other._counts)
            self._values, self._counts = vs.merge(self._values, self._counts, *new)
            self._limit = max(_BUFFER_MIN, len(self._values))
            self._untrack()
        self.sum += other.sum
        self.sample_count += other.sample_count
        if other.minimum < self.minimum:
            self.minimum = other.minimum
        if other.maximum > self.maximum:
            self.maximum = other.maximum

    def multiset(self) -> tuple[list[tuple[float, int]] | None, tuple[Any, Any] | None]:
        """The distinct values and their counts without copying a large datapoint's:
        ``(items, None)`` with (value, count) pairs (at most :data:`SMALL_VALUES`, any
        order), or ``(None, (values, counts))``, numpy arrays (float64 ascending, int64)."""
        if self._small is not None:
            return list(self._small.items()), None
        self._fold_buffer()
        return None, (self._values, self._counts)

    def zero(self) -> float | None:
        """The zero among the values (``0.0`` or ``-0.0``, the first one added), or None."""
        small = self._small
        if small is not None:
            if 0.0 not in small:
                return None
            for value in small:
                if value == 0.0:
                    return value
        self._fold_buffer()
        values = self._values
        at = int(values.searchsorted(0.0))
        return float(values[at]) if at < len(values) and values[at] == 0.0 else None

    def items(self) -> list[tuple[float, int]]:
        """(value, count) for each distinct value, ascending by value."""
        if self._small is not None:
            return sorted(self._small.items())
        self._fold_buffer()
        return list(zip(self._values.tolist(), self._counts.tolist()))

    def value_arrays(self) -> tuple[Any, Any] | None:
        """``(values, counts)``: the distinct values ascending (float64) and their counts
        (int64), numpy arrays not to be changed; None while the datapoint holds its values
        in a dict (at most :data:`SMALL_VALUES`: :meth:`items` is as cheap)."""
        if self._small is not None:
            return None
        self._fold_buffer()
        return self._values, self._counts

    @property
    def values(self) -> dict[float, int]:
        """value -> number of contributions with that value (a new dict, ascending by value)."""
        return dict(self.items())

    @property
    def distinct_values(self) -> int:
        """How many distinct values (an upper bound while a large datapoint's buffer waits)."""
        if self._small is not None:
            return len(self._small)
        return len(self._values) + len(self._buffer)

    def take_changes(self, everything: bool = False) -> tuple[bool, list[tuple[Any, Any]]]:
        """For a checkpoint: what it must fold into what it holds of this datapoint
        (``everything``: all the values, for a new checkpoint file).

        Returns ``(full, parts)``: ``parts`` are ``(values, counts)`` arrays (numpy or
        ``array.array``; float64, and int64 or None for 1 each) to fold together with
        :func:`castlewatch.values.fold`. ``full`` True: they are all the values (the first
        call; a datapoint of at most :data:`SMALL_VALUES` values; after a weighted add to
        a large one) and replace what the checkpoint held; False: the values added since
        the previous call, in order. Cost: proportional to what is returned. The arrays
        are never changed afterwards, so a thread may encode them while the datapoint
        takes more values.
        """
        small = self._small
        if small is not None:
            return True, [(_array("d", small.keys()), _array("q", small.values()))]
        np, _ = _numpy()
        if everything:
            self._untrack()
        buffer = self._buffer
        tail = np.frombuffer(buffer[self._mark :], np.float64)  # a copy: the buffer grows on
        full = not self._tracked
        parts = [(self._values, self._counts)] if full else [(raw, None) for raw in self._pending]
        parts.append((tail, None))
        self._tracked = True
        self._pending = []
        self._mark = len(buffer)
        return full, parts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Datapoint):
            return NotImplemented
        return self._key() == other._key() and self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _key(self) -> tuple:
        return (self.namespace, self.metric_name, self.dimensions, self.unit, self.timestamp, self.sum,
                self.sample_count, self.minimum, self.maximum)

    def __repr__(self) -> str:
        return (
            f"Datapoint(namespace={self.namespace!r}, metric_name={self.metric_name!r}, "
            f"dimensions={self.dimensions!r}, unit={self.unit!r}, timestamp={self.timestamp!r}, "
            f"sum={self.sum!r}, sample_count={self.sample_count!r}, minimum={self.minimum!r}, "
            f"maximum={self.maximum!r}, distinct_values={self.distinct_values})"
        )

    @property
    def iso_timestamp(self) -> str:
        """``timestamp`` as ISO 8601 UTC, e.g. ``2024-01-01T00:01:00Z`` (four-digit year from 0001)."""
        return iso_seconds(self.timestamp)

    def datum_count(self, max_values: int = 150) -> int:
        """How many PutMetricData datums :meth:`metric_data` gives (0 without contributions)."""
        size, _ = self._chunks()
        return -(-size // max_values)

    def metric_data(self, max_values: int = 150) -> list[dict[str, Any]]:
        """PutMetricData ``MetricDatum`` dicts for this datapoint (spec §9).

        One datum per ``max_values`` distinct values (PutMetricData's limit is 150),
        encoded as ``Values`` + ``Counts`` with ``StorageResolution`` 60; CloudWatch
        sums datums of the same minute, so every statistic and percentile survives.
        """
        return list(self.iter_metric_data(max_values))

    def iter_metric_data(self, max_values: int = 150) -> Iterator[dict[str, Any]]:
        """The datums of :meth:`metric_data` one at a time: a datapoint with a million
        distinct values never has them all as Python objects at once."""
        head = self.datum_head()
        unit = self.unit
        for values, counts in self.value_chunks(max_values):
            yield {**head, "Values": values, "Counts": counts, "Unit": unit, "StorageResolution": 60}

    def datum_head(self, **first: str) -> dict[str, Any]:
        """The keys every datum of this datapoint starts with: ``first`` (the JSON Lines
        sink puts ``Namespace`` there), ``MetricName``, ``Dimensions`` (when there are
        any) and ``Timestamp``; ``Values``, ``Counts``, ``Unit`` and ``StorageResolution``
        follow (:meth:`iter_metric_data`)."""
        head: dict[str, Any] = {**first, "MetricName": self.metric_name}
        if self.dimensions:
            head["Dimensions"] = [{"Name": n, "Value": v} for n, v in self.dimensions]
        head["Timestamp"] = self.iso_timestamp
        return head

    def value_chunks(self, max_values: int = 150, arrays: bool = False) -> Iterator[tuple[Any, Any]]:
        """``(Values, Counts)`` of each datum of :meth:`metric_data`, in order: the ascending
        distinct values, ``max_values`` at a time, and their counts as floats. Lists, or with
        ``arrays`` float64 numpy arrays for a large datapoint (C-contiguous, for
        ``orjson.OPT_SERIALIZE_NUMPY``, which writes them as it writes the lists)."""
        small = self._small
        if small and len(small) <= max_values:  # one datum (the usual case), built directly
            if len(small) == 1:
                for value, count in small.items():
                    yield [value], [float(count)]
                return
            items = sorted(small.items())
            yield [v for v, _ in items], [float(c) for _, c in items]
            return
        size, chunk = self._chunks(arrays)
        for start in range(0, size, max_values):
            yield chunk(start, start + max_values)

    def _chunks(self, arrays: bool = False) -> tuple[int, Any]:
        """(number of distinct values, ``chunk(start, end)``): the ascending values in that
        range and their counts as floats, as lists (or arrays, see :meth:`value_chunks`);
        built chunk by chunk from a large datapoint's arrays, never a list of all its values at once."""
        if self._small is not None:
            items = sorted(self._small.items())
            return len(items), lambda a, b: ([v for v, _ in items[a:b]], [float(c) for _, c in items[a:b]])
        self._fold_buffer()
        values, counts = self._values, self._counts
        if arrays:
            return len(values), lambda a, b: (values[a:b], counts[a:b].astype(float))
        return len(values), lambda a, b: (values[a:b].tolist(), counts[a:b].astype(float).tolist())

    def to_record(self) -> dict[str, Any]:
        """A flat record of the statistics, for CSV, Avro and tables."""
        if self._small is not None:
            items = sorted(self._small.items())
            values, counts = [v for v, _ in items], [c for _, c in items]
        else:
            self._fold_buffer()
            values, counts = self._values.tolist(), self._counts.tolist()
        return {
            "Namespace": self.namespace,
            "MetricName": self.metric_name,
            "Dimensions": {n: v for n, v in self.dimensions},
            "Timestamp": self.iso_timestamp,
            "Unit": self.unit,
            "SampleCount": self.sample_count,
            "Sum": self.sum,
            "Minimum": self.minimum,
            "Maximum": self.maximum,
            "Values": values,
            "Counts": counts,
        }


@dataclass(slots=True)
class Stats:
    """Counters of one engine run; nothing is dropped without being counted here.

    Attributes:
        events_read: log events handed to the evaluator.
        malformed: reason -> events counted and skipped (``invalid_utf8``,
            ``too_large``, ``invalid_json``, ``bad_timestamp``, ...).
        not_json: per JSON metric filter, events found not to be JSON objects (they
            are non-matching events for it, spec §8.3): every event that does not start
            with ``{``, and malformed ones that start like JSON once their literals made
            castlewatch decode them.
        late_events: contributions for a minute already closed (allowed lateness passed),
            published in a separate datapoint for their minute.
        matched: filter name -> matching events.
        datapoints_written: datapoints handed to the sinks (a CSV row or an Avro record each).
        datums_written: PutMetricData datums those datapoints make (a JSON Lines line each;
            a datapoint with more than 150 distinct values makes several, spec §9).
        disabled_filters: filter name -> why it was disabled during the run (too many
            distinct dimension value sets, spec §8.4).
        out_of_range: filter name -> matching events whose metric value is beyond what
            PutMetricData accepts (±2^360, e.g. ``1e400``; spec §9): they publish nothing.
        bad_dimension_values: filter name -> matching events with a dimension value
            PutMetricData refuses (not ASCII, whitespace only, over 1,024 characters;
            spec §8.3, §9): they publish nothing.
        published: datums a service (CloudWatch) accepted, over every such sink.
        refused: reason -> datums not published because CloudWatch refuses them
            (``too_old``: over two weeks old; ``too_far_ahead``: over two hours ahead;
            ``bad_dimension_value``), never sent to fail their request; ``rejected``:
            datums CloudWatch answered with a validation error.
        unknown_outcomes: requests whose outcome was unknown (a timeout, a connection
            dropped after sending, a crash while in flight) and that were sent again: their
            datums may be counted twice in CloudWatch.
        unpublished: datums not yet accepted when the counters were taken (kept in the
            sink's spool until they are).
    """

    events_read: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    not_json: dict[str, int] = field(default_factory=dict)
    late_events: int = 0
    matched: dict[str, int] = field(default_factory=dict)
    datapoints_written: int = 0
    datums_written: int = 0
    disabled_filters: dict[str, str] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    bad_dimension_values: dict[str, int] = field(default_factory=dict)
    published: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    unknown_outcomes: int = 0
    unpublished: int = 0

    def count_malformed(self, reason: str, n: int = 1) -> None:
        """Count ``n`` events skipped for ``reason``."""
        self.malformed[reason] = self.malformed.get(reason, 0) + n
