"""PutMetricData requests: the limits (spec §9), what CloudWatch refuses, and request sizes.

- Limits: at most :data:`MAX_DATUMS` datums per request and :data:`MAX_REQUEST_BYTES`
  bytes of request body, at most 150 values per datum (``Datapoint.iter_metric_data``
  already splits a datapoint), at most :data:`MAX_DIMENSIONS` dimensions, all of one
  namespace. The body limit is taken on the body as botocore serialises it, before the
  gzip compression botocore applies to PutMetricData bodies of 10 KB and more: AWS's
  "1 MB for HTTP POST, gzip accepted" holds whichever size AWS counts.
- :func:`refusal_reason`: a datum CloudWatch would refuse (older than two weeks, more
  than two hours ahead, a dimension value not ASCII / whitespace only / over 1,024
  characters, more than 30 dimensions) is never sent to fail the request it is in.
- :class:`RequestSize`: the exact size of a request body, datum by datum, for each wire
  protocol botocore can speak to CloudWatch: ``json`` (AWS JSON 1.0, botocore's choice
  since 1.42.7: ``json.dumps`` with its default separators, timestamps as epoch
  seconds), ``query`` (``x-www-form-urlencoded``: ``MetricData.member.N.Values.member.M=``
  keys, ``repr`` of floats, ISO 8601 timestamps) and ``smithy-rpc-v2-cbor`` (CBOR maps,
  floats as 9-byte doubles, timestamps as tag 1 and integer seconds). The tests check it
  against botocore's own serialiser; the sink also measures every request botocore
  actually builds (:func:`body_size`) and splits one that would still be over.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from typing import Any
from urllib.parse import quote_plus, urlencode

#: Datums per PutMetricData request (spec §9).
MAX_DATUMS = 1000
#: Bytes of serialised request body per request: under 1 MB whether AWS counts 10^6 or 2^20 bytes (§9).
MAX_REQUEST_BYTES = 1_000_000
#: Dimensions per datum (§9).
MAX_DIMENSIONS = 30
#: How old a timestamp CloudWatch takes, in seconds: two weeks (§9).
MAX_AGE_S = 14 * 86400
#: How far ahead a timestamp CloudWatch takes, in seconds: two hours (§9).
MAX_AHEAD_S = 2 * 3600

#: The wire protocols botocore can speak to CloudWatch (its service model's ``protocols``).
PROTOCOLS = ("json", "query", "smithy-rpc-v2-cbor")

#: Refusal reasons (``Stats.refused`` keys) decided before sending.
TOO_OLD, TOO_FAR_AHEAD, BAD_DIMENSION_VALUE, TOO_MANY_DIMENSIONS = (
    "too_old", "too_far_ahead", "bad_dimension_value", "too_many_dimensions",
)


def epoch_seconds(iso: str) -> int:
    """``2024-01-01T00:01:00Z`` (a datum's ``Timestamp``) as epoch seconds."""
    return calendar.timegm(dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").timetuple())


def refusal_reason(datum: dict[str, Any], now: float) -> str | None:
    """Why CloudWatch would refuse ``datum`` at time ``now`` (epoch seconds), or None.

    ``too_old``: its timestamp is more than two weeks before ``now``; ``too_far_ahead``:
    more than two hours after it; ``bad_dimension_value``: a dimension value not ASCII,
    whitespace only or over 1,024 characters (spec §9; the evaluator already drops those,
    §8.3); ``too_many_dimensions``: over 30.
    """
    from castlewatch.model import dimension_value_problem

    ts = epoch_seconds(datum["Timestamp"])
    if ts < now - MAX_AGE_S:
        return TOO_OLD
    if ts > now + MAX_AHEAD_S:
        return TOO_FAR_AHEAD
    dimensions = datum.get("Dimensions") or ()
    if len(dimensions) > MAX_DIMENSIONS:
        return TOO_MANY_DIMENSIONS
    for d in dimensions:
        if not d["Value"] or dimension_value_problem(d["Value"]):
            return BAD_DIMENSION_VALUE
    return None


def body_size(body: Any) -> int:
    """The size in bytes of a request body as botocore sends it (before compression): a
    ``bytes`` body (JSON, CBOR) as is, a ``dict`` (query) once url-encoded as
    ``botocore.awsrequest`` encodes it."""
    if isinstance(body, dict):
        return len(urlencode([(k.encode(), v.encode() if isinstance(v, str) else v) for k, v in body.items()],
                             doseq=True))
    return len(body or b"")


# ---- exact sizes, per protocol ---------------------------------------------------------------


def _cbor_head(n: int) -> int:
    """Bytes of a CBOR head with argument ``n`` (RFC 8949 §3)."""
    return 1 if n < 24 else 2 if n < 256 else 3 if n < 65536 else 5 if n < 2**32 else 9


def _cbor_text(text: str) -> int:
    size = len(text.encode())
    return _cbor_head(size) + size


def _q(text: str) -> int:
    """Length of ``text`` url-encoded as a form value (``quote_plus``)."""
    return len(text) if text.isascii() and text.isalnum() else len(quote_plus(text))


class RequestSize:
    """Exact body sizes of PutMetricData requests for one wire protocol.

    A request's size is ``base(namespace, count) + sum(datum(d, i))`` over its datums,
    ``i`` the datum's 1-based place in the request (the query protocol writes it in
    every key of the datum).

    Raises:
        ValueError: an unknown protocol (see :data:`PROTOCOLS`).
    """

    def __init__(self, protocol: str) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown CloudWatch protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol

    def base(self, namespace: str, count: int) -> int:
        """Bytes of a request of ``count`` datums around the datums themselves."""
        if self.protocol == "json":
            # {"Namespace": "ns", "MetricData": [d1, d2]}: ", " between datums
            return len(json.dumps({"Namespace": namespace, "MetricData": []})) + 2 * max(count - 1, 0)
        if self.protocol == "query":
            return len("Action=PutMetricData&Version=2010-08-01&Namespace=") + _q(namespace)
        return 1 + _cbor_text("Namespace") + _cbor_text(namespace) + _cbor_text("MetricData") + _cbor_head(count)

    def datum(self, datum: dict[str, Any], index: int) -> int:
        """Bytes of ``datum`` (a ``Datapoint.iter_metric_data`` dict) at 1-based place ``index``."""
        if self.protocol == "json":
            return len(json.dumps(_json_datum(datum)))
        if self.protocol == "query":
            fixed, keys = _query_datum(datum)
            return fixed + keys * len(str(index))
        return _cbor_datum(datum)

    def request(self, namespace: str, datums: list[dict[str, Any]]) -> int:
        """Bytes of the whole request body."""
        return self.base(namespace, len(datums)) + sum(self.datum(d, i) for i, d in enumerate(datums, 1))


def _json_datum(datum: dict[str, Any]) -> dict[str, Any]:
    out = dict(datum)
    out["Timestamp"] = epoch_seconds(datum["Timestamp"])
    return out


def _query_datum(datum: dict[str, Any]) -> tuple[int, int]:
    """(bytes of the datum's ``&key=value`` pairs with the index written as no digits,
    number of pairs): each pair is ``&MetricData.member.<i>.<suffix>=<value>``."""
    pairs: list[tuple[str, str]] = [("MetricName", datum["MetricName"])]
    for j, d in enumerate(datum.get("Dimensions") or (), 1):
        pairs.append((f"Dimensions.member.{j}.Name", d["Name"]))
        pairs.append((f"Dimensions.member.{j}.Value", d["Value"]))
    pairs.append(("Timestamp", datum["Timestamp"]))
    size = 0
    for j, v in enumerate(datum["Values"], 1):
        size += len(f"&MetricData.member..Values.member.{j}=") + _q(repr(v))
    for j, c in enumerate(datum["Counts"], 1):
        size += len(f"&MetricData.member..Counts.member.{j}=") + _q(repr(c))
    pairs.append(("Unit", datum["Unit"]))
    pairs.append(("StorageResolution", str(datum["StorageResolution"])))
    for suffix, value in pairs:
        size += len("&MetricData.member..=") + len(suffix) + _q(value)
    return size, len(pairs) + len(datum["Values"]) + len(datum["Counts"])


def _cbor_datum(datum: dict[str, Any]) -> int:
    size = _cbor_head(len(datum))
    for key, value in datum.items():
        size += _cbor_text(key)
        if key == "Timestamp":
            size += 1 + _cbor_head(epoch_seconds(value))  # tag 1, unsigned integer seconds
        elif key in ("Values", "Counts"):
            size += _cbor_head(len(value)) + 9 * len(value)  # doubles
        elif key == "Dimensions":
            size += _cbor_head(len(value))
            for d in value:
                size += 1 + _cbor_text("Name") + _cbor_text(d["Name"]) + _cbor_text("Value") + _cbor_text(d["Value"])
        elif key == "StorageResolution":
            size += _cbor_head(value)
        else:
            size += _cbor_text(value)
    return size
