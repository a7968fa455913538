"""Metric filters in the ``describe-metric-filters`` shape (spec §8.5), decoded with msgspec.

A filter pasted from ``aws logs describe-metric-filters`` decodes into
:class:`~castlewatch.model.MetricFilter`; wrong types, missing and unknown keys are
:class:`~castlewatch.metric_filters.errors.MetricFilterLoadError` naming the path
(``metricFilters[2].metricTransformations[0].metricValue``), with a "did you mean".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from castlewatch.metric_filters.errors import MetricFilterLoadError
from castlewatch.model import MetricFilter, MetricTransformation

_FILTER_KEYS = tuple(field.encode_name for field in msgspec.structs.fields(MetricFilter))
_TRANSFORMATION_KEYS = tuple(field.encode_name for field in msgspec.structs.fields(MetricTransformation))
_MSGSPEC_AT = re.compile(r"(?s)(.*?)(?: - at `\$(.*)`)?")


def type_name(value: Any) -> str:
    name = {dict: "object", list: "array", str: "str", int: "int", float: "float", bool: "bool"}.get(type(value))
    if name is None:  # cfn_tools reads a template's mappings as ODict
        name = "object" if isinstance(value, Mapping) else "array" if isinstance(value, list) else None
    return name or ("null" if value is None else type(value).__name__)


def check_keys(data: Mapping, allowed: tuple[str, ...], where: str, source) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            raise MetricFilterLoadError(
                f"unknown key {key!r}{guess} (allowed: {', '.join(allowed)})", source=source, location=where
            )


def _decode_error(error: msgspec.ValidationError, where: str, source) -> MetricFilterLoadError:
    match = _MSGSPEC_AT.fullmatch(str(error))
    assert match is not None
    message, sub = match.group(1), match.group(2) or ""
    location = where + sub
    missing = re.fullmatch(r"Object missing required field `(.+)`", message)
    if missing:
        location += "." + missing.group(1)
        message = "required key missing"
    else:
        message = (message[:1].lower() + message[1:]).replace("`", "")
        if location.endswith(".metricValue") and "expected str" in message:
            message += ' (write it as a string, e.g. "1")'
    return MetricFilterLoadError(message, source=source, location=location)


def decode_transformation(data: Any, where: str, source) -> MetricTransformation:
    if not isinstance(data, Mapping):
        raise MetricFilterLoadError(f"expected an object, got {type_name(data)}", source=source, location=where)
    check_keys(data, _TRANSFORMATION_KEYS, where, source)
    try:
        return msgspec.convert(dict(data), MetricTransformation)
    except msgspec.ValidationError as error:
        raise _decode_error(error, where, source) from None


def decode_filter(data: Any, where: str, source) -> MetricFilter:
    if isinstance(data, MetricFilter):
        return data
    if not isinstance(data, Mapping):
        raise MetricFilterLoadError(f"expected an object, got {type_name(data)}", source=source, location=where)
    check_keys(data, _FILTER_KEYS, where, source)
    transformations = data.get("metricTransformations")
    if isinstance(transformations, list):
        for i, t in enumerate(transformations):
            if isinstance(t, Mapping):
                check_keys(t, _TRANSFORMATION_KEYS, f"{where}.metricTransformations[{i}]", source)
    try:
        return msgspec.convert(dict(data), MetricFilter)
    except msgspec.ValidationError as error:
        raise _decode_error(error, where, source) from None
