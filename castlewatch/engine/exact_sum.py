"""A datapoint's Sum as the exact sum of its contributions, rounded once (docs/decisions.md D1;
spec §8.4 says which statistics a datapoint keeps, not how its Sum is added up).

A float sum depends on the order of its terms: ``(a + b) + c`` and ``a + (b + c)`` may
differ in the last bit. A datapoint keeps every distinct value with its count
(``Values``/``Counts``), so its Sum can be computed from that multiset alone: the exact
sum of ``value * count`` over it, rounded to the nearest double (ties to even), as
``math.fsum`` rounds. It is then the same whatever order the events came in, however a
backfill split them into partitions and merged them back (:mod:`castlewatch.engine.partial`),
and after a checkpoint restore: replay, run and backfill all publish this Sum [adopted].

A zero sum is ``0.0`` (never ``-0.0``), as adding contributions to ``0.0`` one by one gives.
A sum beyond the largest double is ``±inf``.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

_INT_EXACT = 2.0**53  # integers below this are exact doubles; int64 sums stay below 2**62
_INT64_SAFE = 2.0**62
_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's splitter (a double = 26-bit high + 27-bit low part)
_SPLIT_SAFE = 2.0**900  # below this the split cannot overflow
_FSUM_BLOCK = 1 << 16  # terms turned into Python floats at a time
_CHUNK = 21  # count bits per chunk: a part (<= 27 bits) times a chunk (21 bits) is exact


def exact_sum_items(items: list[tuple[float, int]]) -> float:
    """The exact sum of ``value * count`` over ``items`` ((value, count) pairs of finite
    floats and non-negative ints), rounded once to the nearest double; ``0.0`` for none.

    Integers: summed as Python ints. Others: each product split into two exact ones
    (Veltkamp) and added by ``math.fsum``; counts of 2**21 or more, values near the
    double range, or an intermediate overflow: :class:`fractions.Fraction`."""
    total = 0
    integral = True
    for value, count in items:
        if value.is_integer() and -_INT_EXACT <= value <= _INT_EXACT:
            total += int(value) * count
        else:
            integral = False
            break
    if integral:
        return _overflow(total)
    parts = []
    for value, count in items:
        if count >> _CHUNK or not -_SPLIT_SAFE < value < _SPLIT_SAFE:
            break
        scaled = value * _SPLIT
        high = scaled - (scaled - value)
        parts.append(high * count)
        parts.append((value - high) * count)
    else:
        try:
            return math.fsum(parts) + 0.0
        except OverflowError:
            pass
    exact = sum((Fraction(value) * count for value, count in items), Fraction(0))
    return _to_float(exact)


def exact_sum_arrays(values: Any, counts: Any) -> float:
    """As :func:`exact_sum_items` over numpy arrays (``values`` float64 finite, ``counts``
    int64 >= 0): integers summed as int64 when they cannot overflow, else each product
    split into parts whose products are exact (Veltkamp split of the value, 21-bit chunks
    of the count) and added by ``math.fsum`` (correctly rounded)."""
    import numpy as np

    if values.size == 0:
        return 0.0
    magnitude = np.abs(values)
    top = float(magnitude.max())
    if top < _INT_EXACT and bool((np.trunc(values) == values).all()):
        bound = float(np.dot(magnitude, counts.astype(np.float64)))
        if bound < _INT64_SAFE:
            return float(int(np.dot(values.astype(np.int64), counts)))
    if top >= _SPLIT_SAFE:
        return exact_sum_items(list(zip(values.tolist(), counts.tolist())))
    scaled = values * _SPLIT
    high = scaled - (scaled - values)
    low = values - high
    mask = (1 << _CHUNK) - 1
    parts = []
    for shift in range(0, 63, _CHUNK):
        chunk = (counts >> shift) & mask
        if not chunk.any():
            continue
        weight = chunk.astype(np.float64) * float(1 << shift)
        parts.append(high * weight)
        parts.append(low * weight)
    # fsum reads its terms one by one: hand them over a block at a time, so that a datapoint
    # of a million distinct values costs a block of Python floats, not two million at once.
    blocks = (part[i : i + _FSUM_BLOCK].tolist() for part in parts for i in range(0, part.size, _FSUM_BLOCK))
    try:
        return math.fsum(itertools.chain.from_iterable(blocks)) + 0.0
    except OverflowError:
        return exact_sum_items(list(zip(values.tolist(), counts.tolist())))


def _to_float(exact: Fraction) -> float:
    try:
        return float(exact) + 0.0
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def _overflow(total: int) -> float:
    try:
        return float(total) + 0.0
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def point_sum(point: Any) -> float:
    """The exact Sum of a :class:`~castlewatch.model.Datapoint`'s contributions (module
    docstring), from its values and counts."""
    items, arrays = point.multiset()
    if items is not None:
        return exact_sum_items(items)
    return exact_sum_arrays(*arrays)
