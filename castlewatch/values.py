"""Exact multisets of metric values, as numpy arrays: a datapoint's ``Values``/``Counts``.

A datapoint publishes every distinct value of its minute with its count (PutMetricData
``Values`` + ``Counts``, spec ``docs/filter-patterns.md`` §9), so a value metric such as
``metricValue: $bytes`` can hold a million distinct values in one minute. Kept in a Python
dict they cost about 100 bytes each; here they are two sorted arrays (``float64`` values,
``int64`` counts), 16 bytes a value, and the functions below fold new values into them in
batches. Values are kept exactly (never rounded or binned).

``0.0`` and ``-0.0`` are one value (they compare equal, as dict keys do); like a dict,
which keeps the first key it was given, a fold keeps the zero that came first.
"""

from __future__ import annotations

import numpy as np

Values = np.ndarray  # float64, ascending, distinct
Counts = np.ndarray  # int64, Counts[i] contributions equal to Values[i]

EMPTY_VALUES: Values = np.empty(0, dtype=np.float64)
EMPTY_COUNTS: Counts = np.empty(0, dtype=np.int64)


def fold(values: np.ndarray, counts: np.ndarray | None = None) -> tuple[Values, Counts]:
    """The distinct values of ``values`` ascending, with their summed counts.

    Args:
        values: float64 values in arrival order.
        counts: int64 count of each entry of ``values``; None means 1 each.

    Returns:
        (distinct values, counts); a zero is the first zero of ``values`` (``0.0`` or
        ``-0.0``), as a dict keeps its first key.
    """
    if values.size == 0:
        return EMPTY_VALUES, EMPTY_COUNTS
    if counts is None:
        distinct, summed = np.unique(values, return_counts=True)
        summed = summed.astype(np.int64, copy=False)
    else:
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        distinct = ordered[starts]
        summed = np.add.reduceat(counts[order].astype(np.int64, copy=False), starts)
    zeros = np.flatnonzero(values == 0.0)
    if zeros.size:
        distinct[np.searchsorted(distinct, 0.0)] = values[zeros[0]]
    return distinct, summed


def merge(values: Values, counts: Counts, new_values: Values, new_counts: Counts) -> tuple[Values, Counts]:
    """Fold the distinct ``new_values`` (from :func:`fold`) into ``values``; new arrays are
    returned and the arguments are left as they were (a checkpoint being written may hold
    them). A value already present keeps its representation (the earlier zero wins)."""
    if new_values.size == 0:
        return values, counts
    if values.size == 0:
        return new_values, new_counts
    at = np.searchsorted(values, new_values)
    found = at < values.size
    found[found] = values[at[found]] == new_values[found]
    if found.any():
        counts = counts.copy()
        counts[at[found]] += new_counts[found]
        if found.all():
            return values, counts
    fresh = ~found
    add_values, add_counts, at = new_values[fresh], new_counts[fresh], at[fresh]
    size = values.size + add_values.size
    at += np.arange(add_values.size)  # where each new value goes in the result
    keep = np.ones(size, dtype=bool)
    keep[at] = False
    out_values = np.empty(size, dtype=np.float64)
    out_values[at] = add_values
    out_values[keep] = values
    out_counts = np.empty(size, dtype=np.int64)
    out_counts[at] = add_counts
    out_counts[keep] = counts
    return out_values, out_counts


#: How a checkpoint may store values and counts (numpy type codes, little-endian): each
#: array in the narrowest of them that holds every element exactly.
VALUE_TYPES = ("<i4", "<f4", "<f8")
COUNT_TYPES = ("<u1", "<u2", "<u4", "<i8")
_INT32 = 2**31 - 1


def pack_values(values: Values) -> tuple[str, memoryview]:
    """``values`` (float64) as (type code, little-endian bytes) in the narrowest of
    :data:`VALUE_TYPES` that keeps every value exactly: 4 bytes a value for whole numbers
    such as byte counts (not ``-0.0``: its sign would be lost), or floats that are exact
    in single precision; else 8. The bytes may view ``values`` (no copy)."""
    if values.size:
        if (np.abs(values).max() <= _INT32 and np.array_equal(np.trunc(values), values)
                and not (np.signbit(values) & (values == 0)).any()):
            return "<i4", _bytes(values.astype("<i4"))
        with np.errstate(over="ignore"):
            narrow = values.astype("<f4")
        if np.array_equal(narrow.astype(np.float64), values):
            return "<f4", _bytes(narrow)
    return "<f8", _bytes(values.astype("<f8", copy=False))


def pack_counts(counts: Counts) -> tuple[str, memoryview]:
    """``counts`` (int64, positive) as (type code, little-endian bytes) in the narrowest of
    :data:`COUNT_TYPES` that holds the largest."""
    if counts.size and counts.min() >= 0:
        top = int(counts.max())
        for code, limit in (("<u1", 2**8), ("<u2", 2**16), ("<u4", 2**32)):
            if top < limit:
                return code, _bytes(counts.astype(code))
    return "<i8", _bytes(counts.astype("<i8", copy=False))


def unpack(code: str, data: bytes, kind: str) -> np.ndarray:
    """The array :func:`pack_values` (``kind`` ``"values"``: float64) or :func:`pack_counts`
    (``"counts"``: int64) packed.

    Raises:
        ValueError: an unknown type code, or bytes that are not a whole number of elements.
    """
    allowed = VALUE_TYPES if kind == "values" else COUNT_TYPES
    if code not in allowed:
        raise ValueError(f"{kind} stored as {code!r}, not one of {', '.join(allowed)}")
    dtype = np.dtype(code)
    if len(data) % dtype.itemsize:
        raise ValueError(f"{len(data)} bytes are not a whole number of {dtype.itemsize}-byte {kind}")
    array = np.frombuffer(data, dtype=dtype)
    return array.astype(np.float64 if kind == "values" else np.int64)


def _bytes(array: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(array)).cast("B")
