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

import orjson

from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkKind
from castlewatch.sinks.files import FileSink


def jsonl_lines(datapoints: list[Datapoint]) -> Iterator[bytes]:
    """One JSON Lines line (newline included) per MetricDatum of ``datapoints``: the
    datum of :meth:`~castlewatch.model.Datapoint.iter_metric_data` with ``Namespace`` first."""
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY  # numpy float64 written as floats are
    for dp in datapoints:
        if dp.sample_count <= 0:
            continue
        head = dp.datum_head(Namespace=dp.namespace)
        unit = dp.unit
        for values, counts in dp.value_chunks(arrays=True):
            yield dumps({**head, "Values": values, "Counts": counts, "Unit": unit, "StorageResolution": 60},
                        option=option)


class JsonLinesSink(FileSink):
    """JSON Lines file: one PutMetricData ``MetricDatum`` plus ``Namespace`` per line.

    A datapoint with more than 150 distinct values gives several lines (same metric,
    dimensions and timestamp; CloudWatch adds them up). See the module docstring for
    the line shape and the ``aws cloudwatch put-metric-data`` command.
    """

    def _encode(self, datapoints: list[Datapoint]) -> Iterator[bytes]:
        return jsonl_lines(datapoints)


KIND = SinkKind("jsonl", lambda spec, position, context: JsonLinesSink(spec.path, position), needs_path=True)
