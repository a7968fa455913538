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


def encoded(array: np.ndarray) -> memoryview:
    """Little-endian bytes of a float64 or int64 array (the checkpoint's encoding), without
    a copy on a little-endian machine (a view: the array must not change while in use)."""
    return memoryview(np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))).cast("B")


def values_of(data: bytes) -> Values:
    """The float64 array :func:`encoded` gave.

    Raises:
        ValueError: ``data`` is not a whole number of 8-byte values.
    """
    return _of(data, "<f8").astype(np.float64, copy=False)


def counts_of(data: bytes) -> Counts:
    """The int64 array :func:`encoded` gave.

    Raises:
        ValueError: ``data`` is not a whole number of 8-byte counts.
    """
    return _of(data, "<i8").astype(np.int64, copy=False)


def _of(data: bytes, dtype: str) -> np.ndarray:
    if len(data) % 8:
        raise ValueError(f"{len(data)} bytes are not a whole number of 8-byte numbers")
    return np.frombuffer(data, dtype=dtype)
