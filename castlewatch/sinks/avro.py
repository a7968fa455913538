"""Avro file sink (``type: avro``): an object container file of ``castlewatch.Datapoint`` records.

An Avro object container file (deflate codec) of ``castlewatch.Datapoint`` records,
one per datapoint; the schema is ``castlewatch/sinks/datapoint.avsc`` (see
:func:`avro_schema`). The CSV's fields plus ``Values`` and ``Counts``; ``Dimensions`` is a
``map<string>`` and ``Timestamp`` a ``long`` with logical type ``timestamp-millis``
(epoch milliseconds of the minute start, UTC; fastavro reads it back as an aware
``datetime``, readers without logical types see the long). ``Values`` is
``array<double>``, ``Counts`` ``array<long>``.

Resuming an Avro file checks its schema. Durability and resume: :mod:`castlewatch.sinks.files`.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkError, SinkKind
from castlewatch.sinks.files import DurableFileSink, prepare_file


def _fastavro() -> Any:
    """fastavro, imported when an Avro sink is first used (a replay without one starts faster)."""
    import fastavro
    import fastavro.schema
    import fastavro.write

    return fastavro

_AVRO_SCHEMA_FILE = "datapoint.avsc"
_AVRO_CODEC = "deflate"


@cache
def avro_schema() -> dict[str, Any]:
    """The parsed Avro schema ``castlewatch.Datapoint`` (from the packaged ``datapoint.avsc``).

    Fields: ``Namespace``, ``MetricName``, ``Unit`` (string); ``Dimensions``
    (map<string>); ``Timestamp`` (long, logical type ``timestamp-millis``: epoch ms of
    the minute start, UTC); ``SampleCount`` (long); ``Sum``, ``Minimum``, ``Maximum``
    (double); ``Values`` (array<double>, ascending distinct values); ``Counts``
    (array<long>, ``Counts[i]`` contributions equal to ``Values[i]``).
    """
    from importlib import resources  # when an Avro sink is used (start-up)

    text = resources.files("castlewatch.sinks").joinpath(_AVRO_SCHEMA_FILE).read_text(encoding="utf-8")
    fastavro = _fastavro()
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


class AvroSink(DurableFileSink):
    """Avro object container file of ``castlewatch.Datapoint`` records (see :func:`avro_schema`).

    ``flush()`` ends the current Avro block, so every returned position is a block
    boundary: the file read up to it is a valid container file, and resuming there
    appends new blocks with the file's own sync marker. The file can be read with
    ``fastavro.reader`` after any ``flush()`` and after ``close()``.
    """

    def __init__(self, path: str | os.PathLike[str], position: Any = None) -> None:
        self.path = Path(path)
        size = prepare_file(self.path, position)
        schema = avro_schema()
        if size == 0:
            fh = open(self.path, "w+b")
        else:
            fh = open(self.path, "a+b")
            try:
                fh.seek(0)
                try:
                    file_schema = _fastavro().reader(fh).writer_schema
                except Exception as exc:  # fastavro raises several types for a bad header
                    raise SinkError(f"{self.path}: not an Avro container file up to byte {size}: {exc}") from exc
                canonical = _fastavro().schema.to_parsing_canonical_form
                ours = canonical(schema)
                if canonical(file_schema) != ours:
                    raise SinkError(f"{self.path}: written with a different Avro schema; cannot append")
                fh.seek(0, os.SEEK_END)
            except BaseException:
                fh.close()
                raise
        # On a non-empty file opened 'a+b' the Writer reads the header and appends
        # blocks with the existing sync marker and codec; otherwise it writes a header.
        try:
            self._writer = _fastavro().write.Writer(fh, schema, codec=_AVRO_CODEC)
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


KIND = SinkKind("avro", lambda spec, position, context: AvroSink(spec.path, position), needs_path=True)
