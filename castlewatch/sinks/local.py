"""Local sinks for datapoints: JSON Lines, CSV, Avro and stdout.

Every sink takes :class:`~castlewatch.model.Datapoint` objects (one metric, one
dimension set, one unit, one minute) and writes them in one of four formats. Datapoints
without any contribution (``sample_count == 0``) publish nothing (spec §8.4) and are
skipped by every sink.

JSON Lines (``type: jsonl``) and stdout (``type: stdout``)
    One line per PutMetricData ``MetricDatum`` (``Datapoint.metric_data()``: ``Values`` +
    ``Counts``, at most 150 distinct values per datum, so a datapoint with more values
    gives several lines), with the ``Namespace`` added as the first key::

        {"Namespace":"CISBenchmark","MetricName":"RootUsage","Dimensions":[{"Name":"User","Value":"root"}],
         "Timestamp":"2024-01-01T00:01:00Z","Values":[1.0],"Counts":[2.0],"Unit":"None","StorageResolution":60}

    (``Dimensions`` is absent when the metric has none.) A line is therefore ready for
    ``aws cloudwatch put-metric-data``, one request per line::

        jq -c '{Namespace: .Namespace, MetricData: [del(.Namespace)]}' datapoints.jsonl |
        while IFS= read -r request; do
            aws cloudwatch put-metric-data --cli-input-json "$request"
        done

    or, for a single line held in ``$line``::

        aws cloudwatch put-metric-data \\
            --namespace "$(jq -r .Namespace <<<"$line")" \\
            --metric-data "$(jq -c '[del(.Namespace)]' <<<"$line")"

    (Batching several datums into one request is allowed up to 1,000 datums and 1 MB per
    request, all of one namespace; spec §9. AWS rejects namespaces starting with ``AWS/``
    and timestamps more than two weeks old.)

CSV (``type: csv``)
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

Avro (``type: avro``)
    An Avro object container file (deflate codec) of ``castlewatch.Datapoint`` records,
    one per datapoint; the schema is ``castlewatch/sinks/datapoint.avsc`` (see
    :func:`avro_schema`). The CSV's fields plus ``Values`` and ``Counts``; ``Dimensions`` is a
    ``map<string>`` and ``Timestamp`` a ``long`` with logical type ``timestamp-millis``
    (epoch milliseconds of the minute start, UTC; fastavro reads it back as an aware
    ``datetime``, readers without logical types see the long). ``Values`` is
    ``array<double>``, ``Counts`` ``array<long>``.

Durability and resume
    ``write()`` only buffers / writes to the OS; ``flush()`` makes everything written
    so far durable (``flush`` + ``os.fsync``; for Avro it first ends the current block)
    and returns the checkpoint position ``{"size": <bytes>}`` (``None`` for stdout).
    ``open_sink(spec, position)`` with that position truncates the file back to it and
    appends, so whatever was written after the checkpoint (a torn line, a half Avro
    block, whole datapoints the runner will produce again) is dropped, not duplicated.
    Resuming a CSV file checks that it starts with :data:`CSV_HEADER` (an older
    castlewatch wrote other columns), as resuming an Avro file checks its schema.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

import fastavro
import fastavro.schema
import fastavro.write
import orjson

from castlewatch.model import Datapoint

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
    "format_dimensions",
    "open_sink",
    "parse_dimensions",
]

SinkType = Literal["jsonl", "csv", "avro", "stdout"]

#: The sink types a config's ``sinks: [{type: ...}]`` may name.
SINK_TYPES: tuple[str, ...] = ("jsonl", "csv", "avro", "stdout")

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


_AVRO_SCHEMA_FILE = "datapoint.avsc"
_AVRO_CODEC = "deflate"


class SinkError(ValueError):
    """A sink cannot be opened as asked.

    Raised for an invalid :class:`SinkSpec` (unknown type, missing path), an invalid
    resume position, a file shorter than the checkpoint position (it was replaced or
    truncated behind castlewatch's back), an Avro file that is not a container file or
    was written with another schema, and for writes after ``close()``. OS errors
    (permissions, full disk) are raised as the usual ``OSError``.
    """


@dataclass(frozen=True)
class SinkSpec:
    """Where datapoints go: one entry of the config's ``sinks: [{type, path}]``.

    Attributes:
        type: ``"jsonl"``, ``"csv"``, ``"avro"`` or ``"stdout"``.
        path: the output file; required for ``jsonl``, ``csv`` and ``avro``, ignored
            for ``stdout``. Parent directories are created when the sink is opened.

    Raises:
        SinkError: (a ``ValueError``) for an unknown type or a file type without path.
    """

    type: SinkType
    path: str | None = None

    def __post_init__(self) -> None:
        if self.type not in SINK_TYPES:
            raise SinkError(f"unknown sink type {self.type!r}; expected one of: {', '.join(SINK_TYPES)}")
        if self.type != "stdout" and not self.path:
            raise SinkError(f"sink type {self.type!r} needs a path")


@runtime_checkable
class Sink(Protocol):
    """What the runner writes datapoints to."""

    def write(self, datapoints: list[Datapoint]) -> None:
        """Write the datapoints (cheap: no fsync; may stay in memory until ``flush``)."""
        ...

    def flush(self) -> Any:
        """Make everything written durable; return the checkpoint position or None."""
        ...

    def close(self) -> None:
        """Flush (durably) and release the file; idempotent."""
        ...


# --------------------------------------------------------------------------- helpers


def _position_size(position: Any) -> int:
    """The byte size recorded in a checkpoint position ``{"size": N}``."""
    if isinstance(position, dict):
        size = position.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            return size
    raise SinkError(f"invalid sink position {position!r}; expected {{'size': <non-negative int>}}")


def _fsync_dir(path: Path) -> None:
    """fsync a directory so a newly created entry in it survives a crash (POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _prepare_file(path: Path, position: Any) -> int:
    """Create parents; truncate the file for a fresh run or back to ``position``.

    Returns the file's size afterwards (0 for a fresh run).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if position is None:
        existed = path.exists()
        with open(path, "wb"):
            pass
        if not existed:
            _fsync_dir(path.parent)
        return 0
    size = _position_size(position)
    try:
        current = path.stat().st_size
    except FileNotFoundError:
        if size:
            raise SinkError(f"{path}: cannot resume at byte {size}: the file does not exist") from None
        with open(path, "wb"):
            pass
        _fsync_dir(path.parent)
        return 0
    if current < size:
        raise SinkError(
            f"{path}: cannot resume at byte {size}: the file has only {current} bytes "
            "(was it truncated or replaced?)"
        )
    if current > size:
        os.truncate(path, size)
    return size


# --------------------------------------------------------------------------- file sinks


class _DurableFileSink:
    """What every file sink shares: a binary file that ``flush`` makes durable and
    measures (the checkpoint position), ``close``, and context-manager use.
    Subclasses set ``path`` and ``_fh`` and may end a block in ``_end_block``."""

    path: Path
    _fh: BinaryIO | None

    def _file(self) -> BinaryIO:
        if self._fh is None:
            raise SinkError(f"{self.path}: sink is closed")
        return self._fh

    def _end_block(self) -> None:
        """Write out anything buffered above the file (Avro's open block)."""

    def flush(self) -> dict[str, int]:
        """Flush and fsync the file; return the position ``{"size": bytes}`` to resume at."""
        fh = self._file()
        self._end_block()
        fh.flush()
        os.fsync(fh.fileno())
        return {"size": os.fstat(fh.fileno()).st_size}

    def close(self) -> None:
        """Flush durably and close the file; calling it again does nothing."""
        if self._fh is None:
            return
        try:
            self.flush()
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class _FileSink(_DurableFileSink):
    """A sink appending encoded batches to one file; subclasses define ``_encode``."""

    def __init__(self, path: str | os.PathLike[str], position: Any = None) -> None:
        self.path = Path(path)
        if position is not None:
            self._check_resumable(_position_size(position))  # before anything is truncated
        size = _prepare_file(self.path, position)
        self._fh = open(self.path, "ab")
        if size == 0:
            head = self._header()
            if head:
                self._fh.write(head)

    def _header(self) -> bytes:
        return b""

    def _check_resumable(self, size: int) -> None:
        """Raise SinkError if the file cut back to ``size`` bytes cannot be appended to:
        it must start with the header (a missing or short file is left to _prepare_file)."""
        head = self._header()
        if not head or size == 0:
            return
        try:
            with open(self.path, "rb") as fh:
                start = fh.read(len(head))
        except FileNotFoundError:
            return
        if len(start) < min(size, len(head)):
            return
        if size < len(head) or start != head:
            raise SinkError(
                f"{self.path}: does not start with the header castlewatch writes "
                f"({head.decode('utf-8').strip()}); written by another castlewatch version? cannot append"
            )

    def _encode(self, datapoints: list[Datapoint]) -> Iterable[bytes]:  # pragma: no cover - abstract
        """The bytes to append for ``datapoints``, in pieces written one after the other
        (so a minute of many datums is never held twice in memory)."""
        raise NotImplementedError

    def write(self, datapoints: list[Datapoint]) -> None:
        """Append the datapoints to the file (buffered; durable only after ``flush``).

        Raises:
            SinkError: the sink is closed.
        """
        write = self._file().write
        for piece in self._encode(datapoints):
            write(piece)


def _jsonl_lines(datapoints: list[Datapoint]) -> Iterator[bytes]:
    """One JSON Lines line (newline included) per MetricDatum of ``datapoints``."""
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    for dp in datapoints:
        if dp.sample_count <= 0:
            continue
        ns = dp.namespace
        for datum in dp.iter_metric_data():
            yield dumps({"Namespace": ns, **datum}, option=nl)


class JsonLinesSink(_FileSink):
    """JSON Lines file: one PutMetricData ``MetricDatum`` plus ``Namespace`` per line.

    A datapoint with more than 150 distinct values gives several lines (same metric,
    dimensions and timestamp; CloudWatch adds them up). See the module docstring for
    the line shape and the ``aws cloudwatch put-metric-data`` command.
    """

    def _encode(self, datapoints: list[Datapoint]) -> Iterator[bytes]:
        return _jsonl_lines(datapoints)


class CsvSink(_FileSink):
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


@cache
def avro_schema() -> dict[str, Any]:
    """The parsed Avro schema ``castlewatch.Datapoint`` (from the packaged ``datapoint.avsc``).

    Fields: ``Namespace``, ``MetricName``, ``Unit`` (string); ``Dimensions``
    (map<string>); ``Timestamp`` (long, logical type ``timestamp-millis``: epoch ms of
    the minute start, UTC); ``SampleCount`` (long); ``Sum``, ``Minimum``, ``Maximum``
    (double); ``Values`` (array<double>, ascending distinct values); ``Counts``
    (array<long>, ``Counts[i]`` contributions equal to ``Values[i]``).
    """
    text = resources.files("castlewatch.sinks").joinpath(_AVRO_SCHEMA_FILE).read_text(encoding="utf-8")
    return fastavro.parse_schema(orjson.loads(text))


def _avro_record(dp: Datapoint) -> dict[str, Any]:
    items = dp.items()
    return {
        "Namespace": dp.namespace,
        "MetricName": dp.metric_name,
        "Dimensions": dict(dp.dimensions),
        "Timestamp": dp.timestamp * 1000,
        "Unit": dp.unit,
        "SampleCount": dp.sample_count,
        "Sum": float(dp.sum),
        "Minimum": float(dp.minimum),
        "Maximum": float(dp.maximum),
        "Values": [float(v) for v, _ in items],
        "Counts": [c for _, c in items],
    }


class AvroSink(_DurableFileSink):
    """Avro object container file of ``castlewatch.Datapoint`` records (see :func:`avro_schema`).

    ``flush()`` ends the current Avro block, so every returned position is a block
    boundary: the file read up to it is a valid container file, and resuming there
    appends new blocks with the file's own sync marker. The file can be read with
    ``fastavro.reader`` after any ``flush()`` and after ``close()``.
    """

    def __init__(self, path: str | os.PathLike[str], position: Any = None) -> None:
        self.path = Path(path)
        size = _prepare_file(self.path, position)
        schema = avro_schema()
        if size == 0:
            fh = open(self.path, "w+b")
        else:
            fh = open(self.path, "a+b")
            try:
                fh.seek(0)
                try:
                    file_schema = fastavro.reader(fh).writer_schema
                except Exception as exc:  # fastavro raises several types for a bad header
                    raise SinkError(f"{self.path}: not an Avro container file up to byte {size}: {exc}") from exc
                ours = fastavro.schema.to_parsing_canonical_form(schema)
                if fastavro.schema.to_parsing_canonical_form(file_schema) != ours:
                    raise SinkError(f"{self.path}: written with a different Avro schema; cannot append")
                fh.seek(0, os.SEEK_END)
            except BaseException:
                fh.close()
                raise
        # On a non-empty file opened 'a+b' the Writer reads the header and appends
        # blocks with the existing sync marker and codec; otherwise it writes a header.
        try:
            self._writer = fastavro.write.Writer(fh, schema, codec=_AVRO_CODEC)
        except BaseException:
            fh.close()
            raise
        self._fh: BinaryIO | None = fh

    def write(self, datapoints: list[Datapoint]) -> None:
        """Add one record per datapoint (buffered in the current block until ``flush``).

        Raises:
            SinkError: the sink is closed.
        """
        self._file()
        w = self._writer.write
        for dp in datapoints:
            if dp.sample_count > 0:
                w(_avro_record(dp))

    def _end_block(self) -> None:
        self._writer.flush()


class StdoutSink:
    """JSON Lines (same lines as :class:`JsonLinesSink`) on ``sys.stdout``, flushed per write.

    ``sys.stdout`` is looked up at each write (so redirection by the caller applies);
    ``flush()`` returns None (no resumable position) and ``close()`` leaves stdout open.
    """

    def write(self, datapoints: list[Datapoint]) -> None:
        """Print one line per MetricDatum and flush stdout."""
        out = sys.stdout
        wrote = False
        for line in _jsonl_lines(datapoints):
            out.write(line.decode("utf-8"))
            wrote = True
        if wrote:
            out.flush()

    def flush(self) -> None:
        """Flush stdout; there is no checkpoint position, so returns None."""
        sys.stdout.flush()
        return None

    def close(self) -> None:
        """Flush stdout (it is not closed)."""
        sys.stdout.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "StdoutSink()"


_FILE_SINKS = {"jsonl": JsonLinesSink, "csv": CsvSink, "avro": AvroSink}


def open_sink(spec: SinkSpec, position: Any = None) -> Sink:
    """Open the sink ``spec`` describes.

    Args:
        spec: sink type and path.
        position: ``None`` for a fresh run (the file is created, or truncated if it
            exists); or a position an earlier ``flush()`` returned (``{"size": N}``) to
            resume after a crash: the file is truncated back to it and appended to.
            Ignored for stdout.

    Returns:
        A :class:`Sink` (``JsonLinesSink``, ``CsvSink``, ``AvroSink`` or ``StdoutSink``).

    Raises:
        SinkError: invalid spec or position, file shorter than the position, an Avro
            file that cannot be appended to (see :class:`SinkError`).
        OSError: the file or its directory cannot be created or written.
    """
    if spec.type == "stdout":
        return StdoutSink()
    cls = _FILE_SINKS.get(spec.type)
    if cls is None:
        raise SinkError(f"unknown sink type {spec.type!r}; expected one of: {', '.join(SINK_TYPES)}")
    if not spec.path:
        raise SinkError(f"sink type {spec.type!r} needs a path")
    return cls(spec.path, position)
