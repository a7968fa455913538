"""JSON Lines file sink (``type: jsonl``): one PutMetricData ``MetricDatum`` per line.

One line per ``Datapoint.metric_data()`` datum (``Values`` + ``Counts``, at most 150
distinct values per datum, so a datapoint with more values gives several lines), with
the ``Namespace`` added as the first key::

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
and timestamps more than two weeks old.) Durability and resume: :mod:`castlewatch.sinks.files`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

try:
    from castlewatch.grammar import _speedups
except ImportError:  # pragma: no cover - the extension not built: pure Python
    _speedups = None

from castlewatch.grammar import literals as _literals
from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkKind
from castlewatch.sinks.files import FileSink


def jsonl_lines(datapoints: list[Datapoint], max_values: int = 150) -> Iterator[bytes]:
    """One JSON Lines line (newline included) per MetricDatum of ``datapoints``: the
    datum of :meth:`~castlewatch.model.Datapoint.iter_metric_data` with ``Namespace`` first."""
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY  # numpy float64 written as floats are
    for dp in datapoints:
        if dp.sample_count <= 0:
            continue
        head = dp.datum_head(Namespace=dp.namespace)
        unit = dp.unit
        held = dp.value_arrays()
        whole = _whole(held[0]) if held is not None else None
        if whole is not None:  # many values, all whole numbers (bytes, packets...)
            opening = dumps(head)[:-1] + b',"Values":'
            closing = b',"Unit":' + dumps(unit) + b',"StorageResolution":60}\n'
            counts = held[1]
            for start in range(0, len(whole), max_values):
                end = start + max_values
                yield b"".join((opening, _float_text(whole[start:end]), b',"Counts":',
                                _float_text(counts[start:end]), closing))
            continue
        for values, counts in dp.value_chunks(max_values, arrays=True):
            yield dumps({**head, "Values": values, "Counts": counts, "Unit": unit, "StorageResolution": 60},
                        option=option)


#: Below this magnitude a whole float64 is an exact integer that orjson (as Python's repr)
#: writes as its digits and ``.0`` (from 1e16 on it uses an exponent).
_WHOLE_LIMIT = 2.0**53


def _whole(values: Any) -> Any:
    """``values`` (a float64 numpy array) as int64 when every one is a whole number of
    magnitude below 2**53 and none is ``-0.0``, else None. (Array methods only: importing
    this sink does not import numpy.)"""
    if not len(values) or not bool(abs(values).max() < _WHOLE_LIMIT):  # (a NaN is not whole either)
        return None
    whole = values.astype("int64")
    # a -0.0 is the one zero whose bits are not all 0
    if not bool((whole == values).all()) or bool(values[values == 0].view("int64").any()):
        return None
    return whole


def _float_text(whole: Any) -> bytes:
    """The JSON text orjson writes for the int64 array ``whole`` (a contiguous slice) as
    float64 (``[1.0,40.0]``): float formatting was most of what the sink cost a datapoint of
    many values, such as a ``$bytes`` metric's. In C (``_speedups.whole_floats``, 8 times
    faster than orjson's floats), else from orjson's int64 text (4 times)."""
    if _speedups is not None and _literals.backend() == "c":
        return _speedups.whole_floats(whole)
    text = orjson.dumps(whole, option=orjson.OPT_SERIALIZE_NUMPY)  # b"[1,40]"
    return text[:-1].replace(b",", b".0,") + b".0]"


class JsonLinesSink(FileSink):
    """JSON Lines file: one PutMetricData ``MetricDatum`` plus ``Namespace`` per line.

    A datapoint with more than 150 distinct values gives several lines (same metric,
    dimensions and timestamp; CloudWatch adds them up). See the module docstring for
    the line shape and the ``aws cloudwatch put-metric-data`` command.
    """

    def _encode(self, datapoints: list[Datapoint]) -> Iterator[bytes]:
        return jsonl_lines(datapoints)


KIND = SinkKind("jsonl", lambda spec, position, context: JsonLinesSink(spec.path, position), needs_path=True)
