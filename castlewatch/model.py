"""Data shapes shared by sources, the evaluator, the aggregator and the sinks.

Metric filters use AWS's own shape and casing (``describe-metric-filters`` output
decodes straight into :class:`MetricFilter`); log events and datapoints are the
engine's internal records.  Spec: ``docs/filter-patterns.md`` §8-§9.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Datapoint:
    """The aggregate of one metric, one dimension set, one unit, over one minute (§8.4).

    Attributes:
        namespace, metric_name, unit: from the metric transformation (unit ``"None"``
            when not set).
        dimensions: ((name, value), ...) in the transformation's order.
        timestamp: start of the minute, epoch **seconds** (UTC).
        values: value -> number of contributions with that value.
        sum, sample_count, minimum, maximum: statistics of the contributions.
    """

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    timestamp: int
    values: dict[float, int] = field(default_factory=dict)
    sum: float = 0.0
    sample_count: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float, count: int = 1) -> None:
        """Fold ``count`` contributions of ``value`` in."""
        self.values[value] = self.values.get(value, 0) + count
        self.sum += value * count
        self.sample_count += count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value

    @property
    def iso_timestamp(self) -> str:
        """``timestamp`` as ISO 8601 UTC, e.g. ``2024-01-01T00:01:00Z``."""
        return _dt.datetime.fromtimestamp(self.timestamp, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def datum_count(self, max_values: int = 150) -> int:
        """How many PutMetricData datums :meth:`metric_data` gives (0 without contributions)."""
        return -(-len(self.values) // max_values)

    def metric_data(self, max_values: int = 150) -> list[dict[str, Any]]:
        """PutMetricData ``MetricDatum`` dicts for this datapoint (spec §9).

        One datum per ``max_values`` distinct values (PutMetricData's limit is 150),
        encoded as ``Values`` + ``Counts`` with ``StorageResolution`` 60; CloudWatch
        sums datums of the same minute, so every statistic and percentile survives.
        """
        items = sorted(self.values.items())
        data = []
        for start in range(0, len(items), max_values):
            chunk = items[start : start + max_values]
            datum: dict[str, Any] = {"MetricName": self.metric_name}
            if self.dimensions:
                datum["Dimensions"] = [{"Name": n, "Value": v} for n, v in self.dimensions]
            datum["Timestamp"] = self.iso_timestamp
            datum["Values"] = [v for v, _ in chunk]
            datum["Counts"] = [float(c) for _, c in chunk]
            datum["Unit"] = self.unit
            datum["StorageResolution"] = 60
            data.append(datum)
        return data

    def to_record(self) -> dict[str, Any]:
        """A flat record of the statistics, for CSV, Avro and tables."""
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
            "Values": sorted(self.values),
            "Counts": [self.values[v] for v in sorted(self.values)],
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

    def count_malformed(self, reason: str, n: int = 1) -> None:
        """Count ``n`` events skipped for ``reason``."""
        self.malformed[reason] = self.malformed.get(reason, 0) + n
