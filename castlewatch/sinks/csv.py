"""CSV file sink (``type: csv``): one row per datapoint, a scalar per cell.

RFC 4180 CSV in UTF-8 (``\\r\\n`` line ends, fields quoted when needed), tidy: one row
per datapoint, one scalar per cell, header :data:`CSV_HEADER`
``Namespace,MetricName,Dimensions,Timestamp,Unit,SampleCount,Sum,Minimum,Maximum``
written once when the file is new or empty. The statistics are PutMetricData's
``StatisticValues`` (``SampleCount`` an integer; ``Sum``, ``Minimum``, ``Maximum`` in
Python's shortest round-trip form, ``30.5``, ``13.0``); ``Timestamp`` is ISO 8601 UTC
(``2024-01-01T00:01:00Z``); ``Dimensions`` is one canonical string,
``Name=Value`` pairs sorted by name and joined by ``,`` (``Region=eu-west-1,User=alice``),
with ``\\``, ``,`` and ``=`` inside a name or value escaped by a backslash
(``Path=/a\\,b``), and empty when the metric has no dimensions (see
:func:`format_dimensions`, :func:`parse_dimensions`). The distinct values and their
counts (for percentiles) are in the JSON Lines and Avro sinks only.

Resuming a CSV file checks that it starts with :data:`CSV_HEADER` (an older castlewatch
wrote other columns). Durability and resume: :mod:`castlewatch.sinks.files`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any

from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkKind
from castlewatch.sinks.files import FileSink

#: Column names of the CSV sink, in order (the Avro record has these and ``Values``, ``Counts``).
CSV_HEADER: tuple[str, ...] = (
    "Namespace",
    "MetricName",
    "Dimensions",
    "Timestamp",
    "Unit",
    "SampleCount",
    "Sum",
    "Minimum",
    "Maximum",
)

_DIMENSION_SPECIAL = re.compile(r"([\\,=])")
_DIMENSION_PAIR = re.compile(r"((?:[^\\,=]|\\[\\,=])*)=((?:[^\\,=]|\\[\\,=])*)(,?)")
_ESCAPED = re.compile(r"\\([\\,=])")


def _escape(text: str) -> str:
    return _DIMENSION_SPECIAL.sub(r"\\\1", text)


def format_dimensions(dimensions: tuple[tuple[str, str], ...]) -> str:
    """The CSV ``Dimensions`` cell: ``Name=Value`` pairs sorted by name, joined by ``,``;
    ``\\``, ``,`` and ``=`` in a name or value get a backslash before them; ``""`` for none.

    ``(("User", "alice"), ("Path", "/a,b"))`` gives ``Path=/a\\,b,User=alice``. A metric's
    identity in CloudWatch is its dimension set, in any order, hence the sort.
    """
    return ",".join(f"{_escape(name)}={_escape(value)}" for name, value in sorted(dimensions))


def parse_dimensions(text: str) -> dict[str, str]:
    """The dimensions of a CSV ``Dimensions`` cell as ``{name: value}`` (the reverse of
    :func:`format_dimensions`; ``""`` gives ``{}``).

    Raises:
        ValueError: ``text`` is not of that form.
    """
    out: dict[str, str] = {}
    position, end = 0, len(text)
    while position < end:
        pair = _DIMENSION_PAIR.match(text, position)
        if pair is None or (pair.end() < end and not pair.group(3)) or (pair.end() == end and pair.group(3)):
            raise ValueError(f"not a list of Name=Value pairs (at character {position + 1}): {text!r}")
        out[_ESCAPED.sub(r"\1", pair.group(1))] = _ESCAPED.sub(r"\1", pair.group(2))
        position = pair.end()
    return out


class CsvSink(FileSink):
    """CSV file: header :data:`CSV_HEADER` (once, when the file is new or empty), then
    one row per datapoint, a scalar per cell; see the module docstring.

    Raises:
        SinkError: resuming a file that does not start with :data:`CSV_HEADER` (and the
            errors of :func:`open_sink`).
    """

    def __init__(self, path: str | os.PathLike[str], position: Any = None) -> None:
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\r\n")
        super().__init__(path, position)

    def _take(self) -> bytes:
        data = self._buf.getvalue().encode("utf-8")
        self._buf.seek(0)
        self._buf.truncate(0)
        return data

    def _header(self) -> bytes:
        self._csv.writerow(CSV_HEADER)
        return self._take()

    def _encode(self, datapoints: list[Datapoint]) -> tuple[bytes]:
        writerow = self._csv.writerow
        for dp in datapoints:
            if dp.sample_count <= 0:
                continue
            writerow(
                (
                    dp.namespace,
                    dp.metric_name,
                    format_dimensions(dp.dimensions),
                    dp.iso_timestamp,
                    dp.unit,
                    dp.sample_count,
                    float(dp.sum),
                    float(dp.minimum),
                    float(dp.maximum),
                )
            )
        return (self._take(),)


KIND = SinkKind("csv", lambda spec, position, context: CsvSink(spec.path, position), needs_path=True)
