"""Requests as the operations receive them: a :class:`Call`, and the members of its JSON body
read against botocore's shapes for CloudWatch Logs.

A body that is not a JSON object, or a member of the wrong JSON type (a number where a
string is expected, a string where a list is), cannot be deserialised:
``SerializationException`` [report: AWS JSON services]. A required member that is absent or
``null`` breaks a constraint: ``InvalidParameterException`` "1 validation error detected:
Value at 'filterPattern' failed to satisfy constraint: Member must not be null" [adopted:
the service's validation wording, spec §11, for "not null"]. Unknown members are ignored, as
the service ignores them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from castlewatch.endpoint.errors import INVALID_PARAMETER, REQUEST_TOO_LARGE, SERIALIZATION, ApiError
from castlewatch.grammar.errors import validation_errors

if TYPE_CHECKING:
    from aiohttp import web

    from castlewatch.endpoint.forward import Upstream
    from castlewatch.endpoint.limits import ServeLimits

_JSON_TYPES = {str: "a string", list: "a list", dict: "an object", bool: "a boolean", int: "a number"}


@dataclass(slots=True)
class Call:
    """One request to an operation castlewatch answers.

    Attributes:
        operation: e.g. ``TestMetricFilter``.
        request: the aiohttp request (headers are forwarded, never logged).
        body: the body as received (bytes; gzip-encoded if the client sent it so).
        payload: the decoded JSON object.
        upstream: where other operations go, or None.
        limits: the server's bounds.
    """

    operation: str
    request: "web.Request"
    body: bytes
    payload: dict[str, Any]
    upstream: "Upstream | None"
    limits: "ServeLimits"


def decode_body(body: bytes, content_encoding: str, max_bytes: int) -> dict[str, Any]:
    """The JSON object of a request body (``gzip`` or ``deflate`` bodies decompressed, to at
    most ``max_bytes``).

    Raises:
        ApiError: ``SerializationException`` for a body that is not a JSON object (an
            empty body is ``{}``, as botocore sends an operation without members);
            ``RequestEntityTooLargeException`` (413) for one that decompresses past
            ``max_bytes``.
    """
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _decompress(body, encoding, max_bytes)
    elif encoding not in ("", "identity"):
        raise ApiError(SERIALIZATION, f"castlewatch serve: unsupported Content-Encoding {content_encoding!r}")
    if not body.strip():
        return {}
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(SERIALIZATION, f"The request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ApiError(SERIALIZATION, f"The request body must be a JSON object, not {_type_name(payload)}")
    return payload


def _decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as error:
        why = f"castlewatch serve: the {encoding} body cannot be decompressed: {error}"
        raise ApiError(SERIALIZATION, why) from None
    if len(data) > max_bytes or decompressor.unconsumed_tail:
        raise ApiError(
            REQUEST_TOO_LARGE, f"castlewatch serve: the request body decompresses to over {max_bytes:,} bytes", 413
        )
    return data


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def member(payload: dict[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    """The member ``name`` of ``payload`` if it is of JSON type ``kind`` (``str``, ``int``,
    ``bool``, ``list``, ``dict``); None when absent or null and not ``required``.

    Raises:
        ApiError: ``SerializationException`` for a wrong type; ``InvalidParameterException``
            "Member must not be null" for a required member absent or null.
    """
    value = payload.get(name)
    if value is None:
        if required:
            raise ApiError(INVALID_PARAMETER, validation_errors((name, "Member must not be null")))
        return None
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ApiError(SERIALIZATION, f"'{name}' must be {_JSON_TYPES[kind]}, not {_type_name(value)}")
    return value


def string_list(payload: dict[str, Any], name: str, *, required: bool = False) -> list[str] | None:
    """The member ``name``, a list of strings (``null`` items are refused as the wrong type).

    Raises:
        ApiError: as :func:`member`; an item that is not a string is ``SerializationException``.
    """
    values = member(payload, name, list, required=required)
    if values is not None:
        for index, value in enumerate(values, 1):
            if not isinstance(value, str):
                raise ApiError(SERIALIZATION, f"'{name}' item {index} must be a string, not {_type_name(value)}")
    return values
