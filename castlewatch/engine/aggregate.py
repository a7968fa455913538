"""Per-minute aggregation of metric contributions into datapoints (spec §8.4).

Each contribution belongs to the minute of its event's own timestamp (floor to
60 s).  Every metric (namespace and name) has its own event-time watermark: the
latest time of an event that contributed to it.  A metric's minute closes once its
watermark has passed the end of the minute by the allowed lateness; a contribution
for a closed minute is *late*: counted in ``Stats.late_events`` and reported, and still
published for its own minute (§8.4: an event belongs to the minute of its own
timestamp) in a separate datapoint, as CloudWatch adds up the datapoints of a minute.
A metric's late contributions are gathered per (key, minute) until the metric's
watermark, or the latest time among its late contributions, enters a new minute,
which seals them for the next ``close_ready()`` (so current traffic that is late
behind one far-future event is still published minute by minute), or until they reach
:data:`MAX_OPEN_LATE_DATAPOINTS` (late events spread over many minutes, such as a
shuffled archive, keep memory bounded).  So one metric's
lateness never depends on another filter's
events (a ``defaultValue`` filter contributes on every event), and events that
publish nothing move no watermark (their time is never read).  Both decisions depend
only on the sequence of events, not on how they were batched, so a run resumed from
a checkpoint decides exactly as an uninterrupted one.

A datapoint closed (by ``close_ready`` or ``close_all``) carries the exact Sum of its
contributions, rounded once (:func:`castlewatch.engine.exact_sum.point_sum`): the same
whatever the order of its events, so replay, run and a backfill merged from partitions
(:mod:`castlewatch.engine.partial`) publish the same Sum.

For checkpoints, every datapoint gets a serial (its creation order, which is also its
order in its minute's dict, so a restored aggregator closes datapoints in the same
order), and :meth:`MinuteAggregator.checkpoint_changes` hands over only the datapoints
that changed since the previous checkpoint and the serials of those closed since
(:mod:`castlewatch.engine.checkpoint`).
"""

from __future__ import annotations

from typing import Any

from castlewatch.engine.checkpoint import (
    LATE,
    SEALED,
    WINDOW,
    AggregatorChanges,
    AggregatorState,
    PointChange,
    state_of_version_1,
)
from castlewatch.engine.evaluate import MetricKey
from castlewatch.engine.exact_sum import point_sum
from castlewatch.model import Datapoint, Stats

MINUTE_MS = 60_000
_NEVER = -(2**62)
#: A metric's open late datapoints are sealed (published) when a new one would make more
#: than this many: a bound on memory that depends only on the sequence of events.
MAX_OPEN_LATE_DATAPOINTS = 10_000

Metric = tuple[str, str]  # (namespace, metric name)


class MinuteAggregator:
    """Folds ``(key, timestamp_ms, value)`` contributions into per-minute datapoints.

    Args:
        stats: counters (``late_events``: late contributions).
        allowed_lateness_ms: how long after a minute ends, in the metric's event time
            (milliseconds), contributions for it are still accepted.
    """

    def __init__(self, stats: Stats, allowed_lateness_ms: int = 60_000) -> None:
        self.stats = stats
        self.allowed_lateness_ms = allowed_lateness_ms
        self.watermarks: dict[Metric, int] = {}  # metric -> latest contributing event time, ms
        self.windows: dict[int, dict[MetricKey, Datapoint]] = {}  # minute start (ms) -> key -> datapoint
        self.late: dict[Metric, dict[tuple[MetricKey, int], Datapoint]] = {}  # late contributions, open
        self.sealed: list[Datapoint] = []  # late datapoints ready to publish
        self.late_clocks: dict[Metric, int] = {}  # metric -> latest late contribution time, ms
        self.next_serial = 1  # Datapoint.serial of the next datapoint made (creation order)
        self.closed: list[int] = []  # serials of checkpointed datapoints closed since the last checkpoint

    @property
    def watermark(self) -> int:
        """The latest watermark over all metrics (ms), or a very small number if none."""
        return max(self.watermarks.values(), default=_NEVER)

    def add(self, key: MetricKey, timestamp_ms: int, value: float) -> None:
        """Fold one contribution in (a late one into its metric's late datapoints)."""
        minute = timestamp_ms - timestamp_ms % MINUTE_MS
        metric = key[:2]
        watermark = self.watermarks.get(metric, _NEVER)
        if timestamp_ms > watermark:
            if metric in self.late and timestamp_ms // MINUTE_MS != watermark // MINUTE_MS:
                self._seal(metric)
            self.watermarks[metric] = timestamp_ms
        elif minute + MINUTE_MS + self.allowed_lateness_ms <= watermark:
            self.stats.late_events += 1
            clock = self.late_clocks.get(metric, _NEVER)
            if timestamp_ms > clock:
                if metric in self.late and timestamp_ms // MINUTE_MS != clock // MINUTE_MS:
                    self._seal(metric)
                self.late_clocks[metric] = timestamp_ms
            late = self.late.setdefault(metric, {})
            point = late.get((key, minute))
            if point is None:
                if len(late) >= MAX_OPEN_LATE_DATAPOINTS:
                    self._seal(metric)
                    late = self.late[metric] = {}
                point = late[key, minute] = Datapoint(key[0], key[1], key[2], key[3], minute // 1000)
                point.serial = self.next_serial
                self.next_serial += 1
            point.add(value)
            return
        window = self.windows.get(minute)
        if window is None:
            window = self.windows[minute] = {}
        point = window.get(key)
        if point is None:
            namespace, name, dimensions, unit = key
            point = window[key] = Datapoint(namespace, name, dimensions, unit, minute // 1000)
            point.serial = self.next_serial
            self.next_serial += 1
        point.add(value)

    def _seal(self, metric: Metric) -> None:
        """The metric's late datapoints take no more contributions: publish them next."""
        self.sealed.extend(sorted(self.late.pop(metric).values(), key=lambda p: p.timestamp))

    def close_ready(self) -> list[Datapoint]:
        """Remove and return the datapoints of every minute its metric's watermark has closed."""
        span = MINUTE_MS + self.allowed_lateness_ms
        watermarks = self.watermarks
        out, self.sealed = self.sealed, []
        for minute in sorted(self.windows):
            window = self.windows[minute]
            ready = [key for key in window if minute + span <= watermarks[key[:2]]]
            for key in ready:
                out.append(window.pop(key))
            if not window:
                del self.windows[minute]
        if out:
            self._forget(out)
            _exact_sums(out)
        return out

    def _forget(self, points: list[Datapoint]) -> None:
        """Note the checkpointed ones among ``points`` (closed) for the next checkpoint."""
        self.closed += [p.serial for p in points if p.saved is not None]

    def close_all(self) -> list[Datapoint]:
        """Remove and return every open datapoint (end of a replay, shutdown), late ones too."""
        for metric in list(self.late):
            self._seal(metric)
        out, self.sealed = self.sealed, []
        out += [p for m in sorted(self.windows) for p in self.windows[m].values()]
        self.windows.clear()
        self._forget(out)
        _exact_sums(out)
        return out

    def advance(self, watermark_ms: int, since: dict[Metric, int] | None = None) -> None:
        """Move watermarks forward without an event (idle daemon, wall clock).

        Every metric's watermark becomes at least ``watermark_ms``; with ``since``
        (watermarks saved earlier), at least ``since[metric] + watermark_ms`` instead.
        """
        for metric, current in self.watermarks.items():
            target = watermark_ms if since is None else since.get(metric, current) + watermark_ms
            if target > current:
                if metric in self.late and target // MINUTE_MS != current // MINUTE_MS:
                    self._seal(metric)
                self.watermarks[metric] = target

    # -- checkpoints --

    def checkpoint_changes(self, everything: bool = False) -> AggregatorChanges:
        """What changed since the previous call, for a checkpoint (see
        :mod:`castlewatch.engine.checkpoint`): the datapoints whose count or place changed
        (their new values only), those closed since, watermarks and late clocks.

        ``everything``: every open datapoint with all its values (a new checkpoint file).
        Cost: one look at each open datapoint plus the values that changed; values are
        not copied (``Datapoint.take_changes``).
        """
        changes: list[PointChange] = []
        for where, points in (
            (WINDOW, [p for window in self.windows.values() for p in window.values()]),
            (LATE, [p for late in self.late.values() for p in late.values()]),
            (SEALED, self.sealed),
        ):
            for p in points:
                saved = p.saved
                if everything or saved is None or saved[0] != p.sample_count or saved[1] != where:
                    full, parts = p.take_changes(everything)
                    key = (p.namespace, p.metric_name, p.dimensions, p.unit, p.timestamp)
                    changes.append(PointChange(p.serial, where, full, parts, (p.sum, p.sample_count, p.minimum, p.maximum),
                                               key if everything or saved is None else None))
                    p.saved = (p.sample_count, where)
        closed, self.closed = ([] if everything else self.closed), []
        return AggregatorChanges(
            [(ns, name, wm) for (ns, name), wm in self.watermarks.items()],
            [(ns, name, t) for (ns, name), t in self.late_clocks.items()],
            self.next_serial,
            changes,
            closed,
            [p.serial for p in self.sealed],
        )

    def restore(self, state: AggregatorState | dict[str, Any]) -> None:
        """Load a checkpoint's state of this aggregator (a version 1 snapshot dict too).

        Raises:
            ValueError, KeyError, TypeError: a state that is not of the shape checkpoints hold.
        """
        if isinstance(state, dict):
            state = state_of_version_1(state)
        self.watermarks = {(ns, name): wm for ns, name, wm in state.watermarks}
        self.late_clocks = {(ns, name): t for ns, name, t in state.late_clocks}
        self.windows, self.late, self.closed = {}, {}, []
        sealed: dict[int, Datapoint] = {}
        serial = 0
        for item in state.points:
            if item.serial <= serial or item.serial >= state.next_serial:
                raise ValueError(f"datapoint serial {item.serial} out of order")
            serial = item.serial
            namespace, name, dimensions, unit, minute_s = item.key
            key: MetricKey = (namespace, name, dimensions, unit)
            point = Datapoint.restored(namespace, name, dimensions, unit, minute_s, item.values, item.counts, item.stats)
            point.serial, point.saved = item.serial, (point.sample_count, item.where)
            minute = minute_s * 1000
            if item.where == WINDOW:
                window = self.windows.setdefault(minute, {})
                if key in window:
                    raise ValueError(f"two open datapoints for {key} at {minute}")
                window[key] = point
            elif item.where == LATE:
                late = self.late.setdefault(key[:2], {})
                if (key, minute) in late:
                    raise ValueError(f"two late datapoints for {key} at {minute}")
                late[key, minute] = point
            elif item.where == SEALED:
                sealed[item.serial] = point
            else:
                raise ValueError(f"datapoint {item.serial} is in no known place ({item.where!r})")
        if sorted(state.sealed) != sorted(sealed):
            raise ValueError("the sealed datapoints' order names other datapoints")
        self.sealed = [sealed[s] for s in state.sealed]
        self.next_serial = state.next_serial


def _exact_sums(points: list[Datapoint]) -> None:
    """A closed datapoint publishes the exact Sum of its contributions, whatever their
    order (:mod:`castlewatch.engine.exact_sum`, docs/decisions.md D1): the running sum kept while
    it was open may differ in its last bits."""
    for point in points:
        point.sum = point_sum(point)
