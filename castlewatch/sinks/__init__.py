"""Where datapoints go: local files (JSON Lines, CSV, Avro) and stdout.

See :mod:`castlewatch.sinks.local` for the formats, the Avro schema
(``datapoint.avsc``, shipped with the package) and the checkpoint/resume contract.
"""

from castlewatch.sinks.local import (
    CSV_HEADER,
    SINK_TYPES,
    AvroSink,
    CsvSink,
    JsonLinesSink,
    Sink,
    SinkError,
    SinkSpec,
    StdoutSink,
    avro_schema,
    open_sink,
)

__all__ = [
    "AvroSink",
    "CSV_HEADER",
    "CsvSink",
    "JsonLinesSink",
    "Sink",
    "SinkError",
    "SinkSpec",
    "SINK_TYPES",
    "StdoutSink",
    "avro_schema",
    "open_sink",
]
