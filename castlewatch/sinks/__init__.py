"""Where datapoints go: one module per sink kind, behind one interface.

- :mod:`.base`: the :class:`Sink` interface, :class:`SinkError`, :class:`SinkKind`.
- :mod:`.registry`: the kinds (one line each), :class:`SinkSpec`, :func:`open_sink`.
- :mod:`.files`: the durable file under the file sinks (fsync, checkpoint position,
  truncate-and-append resume).
- :mod:`.jsonl`, :mod:`.csv`, :mod:`.avro`, :mod:`.stdout`: the local formats (the Avro
  schema ``datapoint.avsc`` ships with the package).

Every sink takes :class:`~castlewatch.model.Datapoint` objects (one metric, one dimension
set, one unit, one minute). Datapoints without any contribution (``sample_count == 0``)
publish nothing (spec §8.4) and are skipped by every sink.
"""

from castlewatch.sinks.avro import AvroSink, avro_schema
from castlewatch.sinks.base import PublishError, Sink, SinkBase, SinkContext, SinkError, SinkKind
from castlewatch.sinks.csv import CSV_HEADER, CsvSink, format_dimensions, parse_dimensions
from castlewatch.sinks.jsonl import JsonLinesSink
from castlewatch.sinks.registry import SINK_TYPES, SinkSpec, open_sink, sink_kind
from castlewatch.sinks.stdout import StdoutSink

__all__ = [
    "AvroSink",
    "CSV_HEADER",
    "CsvSink",
    "JsonLinesSink",
    "PublishError",
    "Sink",
    "SinkBase",
    "SinkContext",
    "SinkError",
    "SinkKind",
    "SinkSpec",
    "SINK_TYPES",
    "StdoutSink",
    "avro_schema",
    "format_dimensions",
    "open_sink",
    "parse_dimensions",
    "sink_kind",
]
