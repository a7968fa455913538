"""Which batch plan fits a log group's metric filters, and what the plans share: numbers
and event times read from bytes columns with numpy, exactly as the general evaluator
reads them (:func:`~castlewatch.engine.evaluate.parse_time`, ``_numeric``), the rest in
Python per value."""

from __future__ import annotations

from typing import Any

import numpy as np

from castlewatch.engine.evaluate import MAX_EVENT_MS, MIN_EVENT_MS, LogGroupEvaluator, parse_time

#: Digits read as an integer with numpy (below 2^53, so ``float(text)`` is that integer).
MAX_DIGITS = 15
NO_TIME = np.iinfo(np.int64).min  # an event time that did not resolve


def make_plan(evaluator: LogGroupEvaluator) -> Any:
    """The plan for the evaluator's filters (``fields`` first, then ``literals``), or None."""
    from castlewatch.engine.batch.field_plan import FieldPlan
    from castlewatch.engine.batch.literal_plan import LiteralPlan

    active = [f for f in evaluator.filters if not f.silent]
    if not active:
        return None
    return FieldPlan.make(evaluator, active) or LiteralPlan.make(evaluator, active)


def digits(buf: Any, starts: Any, ends: Any) -> tuple[Any, Any]:
    """``(number, ok)`` for byte ranges of ``buf``: ``ok`` where the range is 1 to
    :data:`MAX_DIGITS` ASCII digits, ``number`` their integer value there (int64)."""
    length = ends - starts
    ok = (length >= 1) & (length <= MAX_DIGITS)
    number = np.zeros(len(starts), np.int64)
    if not ok.any():
        return number, ok
    top = int(length[ok].max())
    last = len(buf) - 1
    for t in range(top):
        inside = t < length
        d = buf[np.minimum(starts + t, last)].astype(np.int64) - 48
        ok &= ~inside | ((d >= 0) & (d <= 9))
        number = np.where(inside, number * 10 + d, number)
    return number, ok


def epoch_times(buf: Any, starts: Any, ends: Any, fmt: str, text_of: Any) -> Any:
    """Event times (ms, :data:`NO_TIME` where none) of ``epoch_s``/``epoch_ms`` fields as
    :func:`~castlewatch.engine.evaluate.parse_time` reads them: plain digits with numpy,
    anything else through ``parse_time(text_of(i), fmt)``; outside years 1-9999, none."""
    number, ok = digits(buf, starts, ends)
    if fmt == "epoch_s":
        ok &= (ends - starts) <= 12  # n * 1000 below 2^53: float(text) * 1000 is exact
        ms = number * 1000
    else:
        ms = number
    times = np.where(ok, ms, NO_TIME)
    for i in np.flatnonzero(~ok).tolist():
        t = parse_time(text_of(i), fmt)
        if t is not None and MIN_EVENT_MS <= t <= MAX_EVENT_MS:
            times[i] = t
    times[(times < MIN_EVENT_MS) | (times > MAX_EVENT_MS)] = NO_TIME
    return times
