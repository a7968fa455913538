"""A block of contributions folded into a :class:`~castlewatch.engine.aggregate.MinuteAggregator`
at once, with exactly the effect of calling ``add`` on each in order (spec §8.4).

Contributions come as arrays in event order: ``kid`` (index into ``keys``, the metric
keys), ``ts`` (event time, ms), ``value``. Per metric, the watermark before each
contribution is a running maximum (``np.maximum.accumulate``); from it, which
contributions are late, the late clock before each, the points where ``add`` would seal
the metric's late datapoints (a seal only empties them, it moves no clock, so where it
happens follows from the clocks and from whether late datapoints are open, itself a
running "last late-or-seal event" fill), and so which datapoint each contribution goes
to: an open minute's, or a late one of the generation between two seals. Datapoints
are then created in the order of their first contribution (their serials, and the order
of the keys in a minute, as ``add`` gives them), seals applied in event order, and the
values folded per datapoint: ``Sum`` with ``np.bincount`` over the contributions in
event order after the datapoint's current sum (the same additions, in the same order,
as ``sum += value``), ``SampleCount``, ``Minimum``/``Maximum`` (numerically; a ``-0.0``
anywhere, whose sign depends on which zero came first, takes the sequential path) and
the distinct values with their counts.

What this does not model takes the sequential path (``add`` per contribution), decided
before anything changes: a metric whose late datapoints could reach
:data:`~castlewatch.engine.aggregate.MAX_OPEN_LATE_DATAPOINTS` in the block, a ``-0.0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from castlewatch.engine.aggregate import MAX_OPEN_LATE_DATAPOINTS, MINUTE_MS, MinuteAggregator
from castlewatch.engine.batch.plan import unique_first_inverse
from castlewatch.model import LIST_BLOCK, Datapoint

_NEVER = -(2**62)
#: Below this many contributions, ``add`` per contribution costs less than the arrays.
SEQUENTIAL_BELOW = 24


def fold(agg: MinuteAggregator, keys: list[tuple], kid: Any, ts: Any, value: Any) -> None:
    """Fold contributions ``(keys[kid[i]], ts[i], value[i])``, in order, into ``agg``.

    Args:
        agg: the aggregator.
        keys: metric keys ``(namespace, metric_name, dimensions, unit)``.
        kid: int array of indexes into ``keys``; ``ts``: int64 ms; ``value``: float64.
    """
    n = len(kid)
    if n == 0:
        return
    if n < SEQUENTIAL_BELOW or not _fold(agg, keys, kid, ts, value):
        add = agg.add
        for k, t, v in zip(kid.tolist(), ts.tolist(), value.tolist()):
            add(keys[k], t, v)


def _stable_order(codes: Any, bound: int) -> Any:
    """``np.argsort(codes, kind="stable")`` for codes in ``range(bound)``: on uint16 codes
    numpy's stable sort is a radix sort, several times faster than on int64."""
    if bound <= 1 << 16:
        codes = codes.astype(np.uint16)
    return np.argsort(codes, kind="stable")


def _negative_zero(values: Any) -> bool:
    return bool(np.any(np.signbit(values) & (values == 0)))


def _fold(agg: MinuteAggregator, keys: list[tuple], kid: Any, ts: Any, value: Any) -> bool:
    """The block at once; False (nothing changed) when it must go contribution by contribution."""
    if _negative_zero(value):
        return False
    metrics: dict[tuple, int] = {}
    metric_of_key = np.array([metrics.setdefault(k[:2], len(metrics)) for k in keys], np.int64)
    mid = metric_of_key[kid]
    order = _stable_order(mid, len(metrics))
    bounds = np.flatnonzero(np.diff(mid[order])) + 1
    lateness = agg.allowed_lateness_ms
    plans = []
    for group in np.split(order, bounds):
        metric = keys[int(kid[group[0]])][:2]
        plan = _plan_metric(agg, metric, group, kid[group], ts[group], lateness)
        if plan is None:
            return False
        plans.append(plan)
    _apply(agg, keys, plans, kid, ts, value)
    return True


def _plan_metric(agg: MinuteAggregator, metric: tuple, where: Any, kid: Any, t: Any, lateness: int) -> dict | None:
    """Where each of one metric's contributions goes (see the module docstring)."""
    w0 = agg.watermarks.get(metric, _NEVER)
    c0 = agg.late_clocks.get(metric, _NEVER)
    open_late = agg.late.get(metric)
    run = np.maximum.accumulate(t)
    before = np.empty_like(t)
    before[0] = w0
    np.maximum(run[:-1], w0, out=before[1:])
    t_minutes = t // MINUTE_MS  # floor division: the minute of each time, negative ones too
    minute = t_minutes * MINUTE_MS
    advance = t > before
    late = ~advance & (minute + MINUTE_MS + lateness <= before)
    trigger = advance & (t_minutes != before // MINUTE_MS)
    n_late = int(np.count_nonzero(late))
    if n_late:
        late_at = np.flatnonzero(late)
        tl = t[late_at]
        clock = np.empty_like(tl)
        clock[0] = c0
        np.maximum(np.maximum.accumulate(tl)[:-1], c0, out=clock[1:])
        trigger[late_at] = (tl > clock) & (t_minutes[late_at] != clock // MINUTE_MS)
        held = len(open_late) if open_late else 0
        if held + n_late >= MAX_OPEN_LATE_DATAPOINTS:  # else fewer distinct (key, minute) pairs than that, surely
            lk, lm = kid[late_at], t_minutes[late_at]
            first_minute = int(lm.min())
            span = int(lm.max()) - first_minute + 1
            # at most (keys) x (minutes) pairs: counted only when that bound could reach the limit
            if held + span * (int(lk.max()) - int(lk.min()) + 1) >= MAX_OPEN_LATE_DATAPOINTS:
                distinct = len(np.unique((lk.astype(np.int64) - int(lk.min())) * span + (lm - first_minute)))
                if held + distinct >= MAX_OPEN_LATE_DATAPOINTS:
                    return None
    # open late datapoints before each contribution: the last late contribution or
    # trigger before it decides (a late one leaves them open, a trigger seals them)
    events = late | trigger
    seal = np.zeros(len(t), bool)
    open_before = np.full(len(t), open_late is not None)
    if open_late is not None or n_late:
        at = np.where(events, np.arange(len(t)), -1)
        last = np.maximum.accumulate(at)
        prev = np.empty_like(last)
        prev[0] = -1
        prev[1:] = last[:-1]
        open_before = np.where(prev >= 0, late[np.maximum(prev, 0)], open_late is not None)
        seal = trigger & open_before
        if events.any():
            is_open_after = bool(late[last[-1]]) if last[-1] >= 0 else open_late is not None
        else:
            is_open_after = open_late is not None
    else:
        is_open_after = False
    generation = np.cumsum(seal)
    # the last late contribution that found no open late datapoints (add() then (re)opens them)
    reopened = None
    if n_late:
        opens = late & (seal | ~open_before) if (open_late is not None or n_late) else late
        at_open = np.flatnonzero(opens)
        if at_open.size:
            reopened = int(where[at_open[-1]])
        elif bool(seal.any()):
            reopened = -1  # sealed, and not reopened after: it leaves the open ones
    elif bool(seal.any()):
        reopened = -1
    return {
        "metric": metric, "where": where, "minute": minute, "late": late, "seal": seal, "generation": generation,
        "open_after": is_open_after, "n_late": n_late, "watermark": int(run[-1]), "w0": w0,
        "late_clock": int(t[late].max()) if n_late else None, "c0": c0,
        "first_late": int(where[np.argmax(late)]) if n_late else -1, "reopened": reopened,
    }


def _apply(agg: MinuteAggregator, keys: list[tuple], plans: list[dict], kid: Any, ts: Any, value: Any) -> None:
    """Create the datapoints, apply the seals, fold the values: ``add``'s effects, in order."""
    n = len(kid)
    point_of = np.empty(n, np.int64)  # the datapoint of each contribution (index into points)
    points: list[Datapoint] = []
    pending: list[tuple[int, Any]] = []  # (first contribution, how to make the datapoint)
    seals: list[tuple[int, tuple, int]] = []  # (contribution index, metric, generation sealed)
    generations: dict[tuple, dict[int, dict]] = {}
    for plan in plans:
        metric, where = plan["metric"], plan["where"]
        late, minute, generation = plan["late"], plan["minute"], plan["generation"]
        gens = generations[metric] = {0: agg.late[metric]} if metric in agg.late else {0: {}}
        for i in np.flatnonzero(plan["seal"]).tolist():
            seals.append((int(where[i]), metric, int(generation[i]) - 1))
        kk = kid[where].astype(np.int64)
        gg = np.where(late, generation, -1)
        mi = minute // MINUTE_MS
        combined = ((mi - mi.min()) * len(keys) + kk) * (int(generation[-1]) + 2) + (gg + 1)
        _, first, inverse = unique_first_inverse(combined, limit=0)  # many codes: no peeling
        point_of[where] = len(points) + inverse
        for at, k, m, g in zip(where[first].tolist(), kk[first].tolist(), minute[first].tolist(), gg[first].tolist()):
            key = keys[k]
            existing = None
            if g < 0:
                window = agg.windows.get(m)
                existing = window.get(key) if window is not None else None
            elif g == 0:
                existing = gens[0].get((key, m))
            if existing is not None:
                points.append(existing)
            else:
                pending.append((at, (len(points), key, m, g, metric)))
                points.append(None)  # type: ignore[arg-type]
    # creations and seals in event order (a seal at a contribution comes before its creation)
    steps = [(first, 1, spec) for first, spec in pending] + [(at, 0, (metric, g)) for at, metric, g in seals]
    steps.sort(key=lambda s: (s[0], s[1]))
    for _, kind, spec in steps:
        if kind == 1:
            index, key, m, g, metric = spec
            point = Datapoint(key[0], key[1], key[2], key[3], m // 1000)
            point.serial = agg.next_serial
            agg.next_serial += 1
            points[index] = point
            if g < 0:
                window = agg.windows.get(m)
                if window is None:
                    window = agg.windows[m] = {}
                window[key] = point
            else:
                generations[metric].setdefault(g, {})[(key, m)] = point
        else:
            metric, g = spec
            gone = generations[metric].pop(g, {})
            agg.sealed.extend(sorted(gone.values(), key=lambda p: p.timestamp))
    for plan in sorted(plans, key=lambda p: int(p["where"][0])):
        if plan["watermark"] > plan["w0"]:
            agg.watermarks[plan["metric"]] = plan["watermark"]
    for plan in sorted(plans, key=lambda p: p["first_late"]):
        if plan["n_late"]:
            agg.stats.late_events += plan["n_late"]
            if plan["late_clock"] > plan["c0"]:
                agg.late_clocks[plan["metric"]] = plan["late_clock"]
    # the open late datapoints per metric, in the order add() leaves them: a metric keeps
    # its place unless it was sealed; one (re)opened in the block comes after, in the
    # order of the late contribution that (re)opened it
    touched = {plan["metric"]: plan for plan in plans}
    late = {m: points_ for m, points_ in agg.late.items() if m not in touched or touched[m]["reopened"] is None}
    for plan in sorted((p for p in plans if p["reopened"] is not None), key=lambda p: p["reopened"]):
        if plan["open_after"]:
            late[plan["metric"]] = generations[plan["metric"]].get(int(plan["generation"][-1]), {})
    agg.late = late
    _fold_values(points, point_of, value)


def _fold_values(points: list[Datapoint], point_of: Any, value: Any) -> None:
    """Every datapoint's statistics and values from its contributions, in event order."""
    k = len(points)
    start = np.array([p.sum for p in points], np.float64)
    ids = np.concatenate((np.arange(k), point_of))
    sums = np.bincount(ids, weights=np.concatenate((start, value)), minlength=k)
    counts = np.bincount(point_of, minlength=k)
    per_point = _stable_order(point_of, k)
    ordered = value[per_point]
    ends = np.cumsum(counts)
    held = counts > 0
    starts = (ends - counts)[held]
    lo = np.array([p.minimum for p in points], np.float64)
    hi = np.array([p.maximum for p in points], np.float64)
    lo_zero, hi_zero = np.signbit(lo) & (lo == 0), np.signbit(hi) & (hi == 0)
    lo[held] = np.minimum(lo[held], np.minimum.reduceat(ordered, starts))
    hi[held] = np.maximum(hi[held], np.maximum.reduceat(ordered, starts))
    # add() keeps the first of equal extremes: a -0.0 held stays when the block adds 0.0
    lo[lo_zero & (lo == 0)] = -0.0
    hi[hi_zero & (hi == 0)] = -0.0
    negative_zero = (np.signbit(start) & (start == 0)).tolist()
    few = bool(((counts > 0) & (counts <= LIST_BLOCK)).any())  # some datapoint takes a list
    values = ordered.tolist() if few and len(ordered) <= LIST_BLOCK * k else None
    for point, n, end, total, low, high, from_negative_zero in zip(
        points, counts.tolist(), ends.tolist(), sums.tolist(), lo.tolist(), hi.tolist(), negative_zero
    ):
        if n:
            # a few values as a list (a slice of the block's list, or of the array made one:
            # a dict counts them for a fraction of what numpy's sort costs), many as an array view
            if n > LIST_BLOCK:
                raw = ordered[end - n : end]
            else:
                raw = values[end - n : end] if values is not None else ordered[end - n : end].tolist()
            if from_negative_zero:  # 0.0 + -0.0 is 0.0: add from the -0.0 itself
                total = point.sum
                for v in (raw if type(raw) is list else raw.tolist()):
                    total += v
            point.add_block(total, n, low, high, raw)
