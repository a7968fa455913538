"""castlewatch's metrics for Prometheus (``run --serve``'s ``/metrics``), through prometheus-client.

A collector reads, at each scrape, the engine's :class:`~castlewatch.model.Stats`, its
sources' progress and the recent closed datapoints (a
:class:`~castlewatch.dashboard_data.MinuteSums`); scraping changes nothing. Names follow
Prometheus's conventions (``castlewatch_`` prefix, ``_total`` counters, base units):

Counters (since the run's start, a resumed run's checkpoint included):

- ``castlewatch_events_read_total``: log events read and evaluated;
- ``castlewatch_events_matched_total{filter_name}``: events each metric filter matched;
- ``castlewatch_events_malformed_total{reason}``: events counted and skipped (``invalid_json``, ...);
- ``castlewatch_events_not_json_total{filter_name}``: events a JSON filter found not to be JSON;
- ``castlewatch_late_contributions_total``: contributions to a minute already closed;
- ``castlewatch_out_of_range_events_total{filter_name}``, ``castlewatch_bad_dimension_value_events_total{filter_name}``:
  matching events that publish nothing (a value or dimension value PutMetricData refuses);
- ``castlewatch_datapoints_written_total``, ``castlewatch_datums_written_total``;
- ``castlewatch_datums_published_total``, ``castlewatch_datums_refused_total{reason}``,
  ``castlewatch_unknown_outcomes_total``: a ``cloudwatch`` sink's delivery.

Gauges:

- ``castlewatch_datums_unpublished``: datums not yet accepted by CloudWatch;
- ``castlewatch_filter_disabled{filter_name}``: 1 for a filter disabled in the run;
- ``castlewatch_source_event_time_seconds{source}``: the source's event-time watermark, the
  time of the latest event that published (moved on with the wall clock while the source
  is idle), epoch seconds; ``castlewatch_source_lag_seconds{source}``: now minus it, how far
  behind the source's present castlewatch's minutes are;
  ``castlewatch_source_last_read_timestamp_seconds{source}``: when its last batch was evaluated;
- the closed datapoints, per series (``namespace``, ``metric_name``, ``dimensions`` as the CSV
  sink writes them, ``Name=Value`` pairs sorted by name joined by ``,``, and ``unit``), of the
  series' newest minute, every datapoint of that minute added up:
  ``castlewatch_datapoint_sum``, ``castlewatch_datapoint_sample_count``,
  ``castlewatch_datapoint_minimum``, ``castlewatch_datapoint_maximum`` and
  ``castlewatch_datapoint_timestamp_seconds`` (the minute's start). Only series with a
  datapoint in the minutes the live dashboard keeps are listed (bounded memory);
- ``castlewatch_info{version}``: 1.

The process collector's ``process_*`` metrics (memory, CPU, open files) come along.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from castlewatch.dashboard_data import MinuteSums
from castlewatch.sinks.csv import format_dimensions


class CastlewatchCollector:
    """A prometheus-client collector (see the module docstring) of ``live.engine`` 's counters
    (none while it is None: the run is starting) and ``live.store`` 's datapoints; ``clock``
    gives the wall time (epoch seconds)."""

    def __init__(self, live: Any, clock: Any = time.time) -> None:
        self.live = live
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """The metric families, read now."""
        from castlewatch import __version__

        info = GaugeMetricFamily("castlewatch_info", "castlewatch's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        engine = self.live.engine
        if engine is not None:
            yield from self._counters(engine)
            yield from self._sources(engine)
        yield from self._datapoints(self.live.store)

    def _counters(self, engine: Any) -> Iterator[Metric]:
        stats = engine.stats
        yield CounterMetricFamily("castlewatch_events_read", "Log events read and evaluated.", value=stats.events_read)
        yield _labelled(CounterMetricFamily, "castlewatch_events_matched", "Log events each metric filter matched.",
                        "filter_name", stats.matched)
        yield _labelled(CounterMetricFamily, "castlewatch_events_malformed",
                        "Log events that could not be read, counted and skipped, per reason.", "reason",
                        stats.malformed)
        yield _labelled(CounterMetricFamily, "castlewatch_events_not_json",
                        "Log events a JSON metric filter found not to be JSON objects.", "filter_name",
                        stats.not_json)
        yield CounterMetricFamily("castlewatch_late_contributions",
                                  "Contributions to a minute already closed (published in a datapoint of their own).",
                                  value=stats.late_events)
        yield _labelled(CounterMetricFamily, "castlewatch_out_of_range_events",
                        "Matching events whose metric value PutMetricData refuses (they publish nothing).",
                        "filter_name", stats.out_of_range)
        yield _labelled(CounterMetricFamily, "castlewatch_bad_dimension_value_events",
                        "Matching events with a dimension value PutMetricData refuses (they publish nothing).",
                        "filter_name", stats.bad_dimension_values)
        yield CounterMetricFamily("castlewatch_datapoints_written", "Datapoints handed to the sinks.",
                                  value=stats.datapoints_written)
        yield CounterMetricFamily("castlewatch_datums_written", "PutMetricData datums those datapoints make.",
                                  value=stats.datums_written)
        yield CounterMetricFamily("castlewatch_datums_published", "Datums CloudWatch accepted.", value=stats.published)
        yield _labelled(CounterMetricFamily, "castlewatch_datums_refused",
                        "Datums not published because CloudWatch refuses them, per reason.", "reason", stats.refused)
        yield CounterMetricFamily("castlewatch_unknown_outcomes",
                                  "PutMetricData requests sent again after an unknown outcome.",
                                  value=stats.unknown_outcomes)
        yield GaugeMetricFamily("castlewatch_datums_unpublished", "Datums not yet accepted by CloudWatch.",
                                value=stats.unpublished)
        yield _labelled(GaugeMetricFamily, "castlewatch_filter_disabled",
                        "1 for a metric filter disabled during the run (too many dimension value sets).",
                        "filter_name", {name: 1 for name in stats.disabled_filters})

    def _sources(self, engine: Any) -> Iterator[Metric]:
        now = self.clock()
        event_time = GaugeMetricFamily(
            "castlewatch_source_event_time_seconds",
            "The source's event-time watermark: the time of its latest event that published, epoch seconds.",
            labels=["source"])
        lag = GaugeMetricFamily("castlewatch_source_lag_seconds",
                                "Wall-clock time minus the source's event-time watermark.", labels=["source"])
        last = GaugeMetricFamily("castlewatch_source_last_read_timestamp_seconds",
                                 "When the source's last batch of log events was evaluated, epoch seconds.",
                                 labels=["source"])
        for name, aggregator in engine.aggregators.items():
            if aggregator.watermarks:
                seconds = aggregator.watermark / 1000
                event_time.add_metric([name], seconds)
                lag.add_metric([name], now - seconds)
            if name in engine.last_batch_at:
                last.add_metric([name], engine.last_batch_at[name])
        yield event_time
        yield lag
        yield last

    def _datapoints(self, store: MinuteSums) -> Iterator[Metric]:
        labels = ["namespace", "metric_name", "dimensions", "unit"]
        help_tail = "of the series' newest closed minute (every datapoint of that minute added up)."
        families = {
            "sum": GaugeMetricFamily("castlewatch_datapoint_sum", f"Sum {help_tail}", labels=labels),
            "sample_count": GaugeMetricFamily("castlewatch_datapoint_sample_count", f"SampleCount {help_tail}",
                                              labels=labels),
            "minimum": GaugeMetricFamily("castlewatch_datapoint_minimum", f"Minimum {help_tail}", labels=labels),
            "maximum": GaugeMetricFamily("castlewatch_datapoint_maximum", f"Maximum {help_tail}", labels=labels),
            "timestamp": GaugeMetricFamily("castlewatch_datapoint_timestamp_seconds",
                                           "Start of the series' newest closed minute, epoch seconds.", labels=labels),
        }
        for (namespace, name, dims), series in store.series.items():
            if series.latest is None:  # pragma: no cover - a kept series has a minute
                continue
            cell = series.minutes[series.latest]
            values = [namespace, name, format_dimensions(dims), ", ".join(series.units)]
            families["sum"].add_metric(values, cell.sum)
            families["sample_count"].add_metric(values, cell.sample_count)
            families["minimum"].add_metric(values, cell.minimum)
            families["maximum"].add_metric(values, cell.maximum)
            families["timestamp"].add_metric(values, series.latest)
        yield from families.values()


def _labelled(family: Any, name: str, documentation: str, label: str, counts: dict[str, Any]) -> Metric:
    metric = family(name, documentation, labels=[label])
    for key, value in counts.items():
        metric.add_metric([key], value)
    return metric


def registry_for(live: Any) -> CollectorRegistry:
    """A registry of its own (not the process-global one) with castlewatch's collector of
    ``live`` (a :class:`~castlewatch.live.LiveDashboard`) and the process collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CastlewatchCollector(live))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of a scrape: the Prometheus text format, or OpenMetrics when
    the ``Accept`` header asks for it (prometheus-client's negotiation)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
