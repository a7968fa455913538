"""Which batch plan fits a log group's metric filters, and what the plans share: numbers
and event times read from bytes columns with numpy, exactly as the general evaluator
reads them (:func:`~castlewatch.engine.evaluate.parse_time`, ``_numeric``), the rest in
Python per value."""

from __future__ import annotations

from typing import Any

import numpy as np

from castlewatch.engine.evaluate import MAX_EVENT_MS, MIN_EVENT_MS, LogGroupEvaluator, parse_time

NO_TIME = np.iinfo(np.int64).min  # an event time that did not resolve


def make_plan(evaluator: LogGroupEvaluator) -> Any:
    """The plan for the evaluator's filters (``fields`` first, then ``literals``), or None."""
    from castlewatch.engine.batch.field_plan import FieldPlan
    from castlewatch.engine.batch.literal_plan import LiteralPlan

    active = [f for f in evaluator.filters if not f.silent]
    if not active:
        return None
    return FieldPlan.make(evaluator, active) or LiteralPlan.make(evaluator, active)


def epoch_times(number: Any, ok: Any, fmt: str, text_of: Any, length: Any, lines: Any) -> Any:
    """Event times (ms, :data:`NO_TIME` where none) of ``epoch_s``/``epoch_ms`` fields as
    :func:`~castlewatch.engine.evaluate.parse_time` reads them: ``number`` where ``ok`` (the
    field is 1 to :data:`~castlewatch.engine.batch.blocks.MAX_DIGITS` digits,
    :func:`~castlewatch.engine.batch.blocks.split`), any other field of the ``lines`` rows
    (bool mask: those the split took, whose fields are ASCII) through
    ``parse_time(text_of(i), fmt)``; ``length``: the fields' lengths; outside years 1-9999,
    and on the other rows (they take the general path), none."""
    if fmt == "epoch_s":
        ok = ok & (length <= 12)  # n * 1000 below 2^53: float(text) * 1000 is exact
        ms = number * 1000
    else:
        ms = number
    times = np.where(ok, ms, NO_TIME)
    for i in np.flatnonzero(lines & ~ok).tolist():
        t = parse_time(text_of(i), fmt)
        if t is not None and MIN_EVENT_MS <= t <= MAX_EVENT_MS:
            times[i] = t
    times[(times < MIN_EVENT_MS) | (times > MAX_EVENT_MS)] = NO_TIME
    return times


_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord("T"), 13: ord(":"), 16: ord(":"), 19: ord("Z")}
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def iso_seconds_z(texts: list[str]) -> tuple[Any, Any]:
    """``(ms, ok)`` for ISO 8601 times of exactly the form ``YYYY-MM-DDTHH:MM:SSZ`` (what
    CloudTrail writes), read with numpy: ``ok`` where a text has that form and is a valid
    date and time (as ``datetime.fromisoformat`` requires: month 1-12, the month's days,
    hour 0-23, minute and second 0-59, year from 1), ``ms`` its epoch milliseconds there.
    Other texts are left to :func:`~castlewatch.model.iso8601_ms`."""
    n = len(texts)
    ms = np.zeros(n, np.int64)
    lengths = np.fromiter(map(len, texts), np.int64, n)
    ok = lengths == 20
    if not ok.any():
        return ms, ok
    where = np.flatnonzero(ok)
    data = "".join(texts[i] for i in where.tolist()).encode("ascii", "replace")
    b = np.frombuffer(data, np.uint8).reshape(-1, 20).astype(np.int64)
    d = b[:, _DIGIT_AT] - 48
    good = ((d >= 0) & (d <= 9)).all(axis=1)
    for at, char in _SEPARATORS.items():
        good &= b[:, at] == char
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    hour, minute, second = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    good &= (hour <= 23) & (minute <= 59) & (second <= 59)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    ms[where] = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000
    ok[where] = good
    return ms, ok


def unique_first_inverse(values: Any, limit: int = 8) -> tuple[Any, Any, Any]:
    """``np.unique(values, return_index=True, return_inverse=True)``: the distinct values
    ascending, the first index of each, each value's rank (int64). Without a sort when the
    values never decrease (one metric key in time order, the fold's usual block), or when
    there are at most ``limit`` distinct ones (such as a flow log's ``action``), which are
    peeled off with comparisons."""
    if len(values) > 1 and bool((values[1:] >= values[:-1]).all()):
        change = np.empty(len(values), bool)
        change[0] = True
        np.not_equal(values[1:], values[:-1], out=change[1:])
        first = np.flatnonzero(change)
        return values[first], first, np.cumsum(change) - 1
    n = len(values)
    if n:
        inverse = np.empty(n, np.int64)
        left = np.ones(n, bool)
        found, firsts = [], []
        at = 0
        while len(found) < limit:
            same = values == values[at]
            inverse[same] = len(found)
            found.append(values[at])
            firsts.append(at)
            left &= ~same
            rest = np.flatnonzero(left[at:])
            if not len(rest):
                distinct = np.array(found, values.dtype)
                order = np.argsort(distinct, kind="stable")
                rank = np.empty(len(order), np.int64)
                rank[order] = np.arange(len(order))
                return distinct[order], np.array(firsts, np.int64)[order], rank[inverse]
            at += int(rest[0])
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return distinct, first, inverse.reshape(-1)
