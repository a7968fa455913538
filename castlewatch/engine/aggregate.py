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
behind one far-future event is still published minute by minute).  So one metric's
lateness never depends on another filter's
events (a ``defaultValue`` filter contributes on every event), and events that
publish nothing move no watermark (their time is never read).  Both decisions depend
only on the sequence of events, not on how they were batched, so a run resumed from
a checkpoint decides exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from castlewatch.engine.evaluate import MetricKey
from castlewatch.model import Datapoint, Stats

MINUTE_MS = 60_000
_NEVER = -(2**62)

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
                point = late[key, minute] = Datapoint(key[0], key[1], key[2], key[3], minute // 1000)
            point.add(value)
            return
        window = self.windows.get(minute)
        if window is None:
            window = self.windows[minute] = {}
        point = window.get(key)
        if point is None:
            namespace, name, dimensions, unit = key
            point = window[key] = Datapoint(namespace, name, dimensions, unit, minute // 1000)
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
        return out

    def close_all(self) -> list[Datapoint]:
        """Remove and return every open datapoint (end of a replay, shutdown), late ones too."""
        for metric in list(self.late):
            self._seal(metric)
        out, self.sealed = self.sealed, []
        out += [p for m in sorted(self.windows) for p in self.windows[m].values()]
        self.windows.clear()
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

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: watermarks, open windows, late datapoints (values kept exactly)."""
        return {
            "watermark": self.watermark,
            "watermarks": [[ns, name, wm] for (ns, name), wm in self.watermarks.items()],
            "windows": [_point_state(p) for window in self.windows.values() for p in window.values()],
            "late": [_point_state(p) for late in self.late.values() for p in late.values()],
            "sealed": [_point_state(p) for p in self.sealed],
            "late_clocks": [[ns, name, t] for (ns, name), t in self.late_clocks.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`."""
        self.watermarks = {(ns, name): wm for ns, name, wm in state["watermarks"]}
        self.windows = {}
        for item in state["windows"]:
            key, point = _point_of(item)
            self.windows.setdefault(item["minute"], {})[key] = point
        self.late = {}
        for item in state.get("late", []):  # absent from checkpoints of older versions
            key, point = _point_of(item)
            self.late.setdefault(key[:2], {})[key, item["minute"]] = point
        self.sealed = [_point_of(item)[1] for item in state.get("sealed", [])]
        self.late_clocks = {(ns, name): t for ns, name, t in state.get("late_clocks", [])}


def _point_state(p: Datapoint) -> dict[str, Any]:
    return {
        "minute": p.timestamp * 1000,
        "key": [p.namespace, p.metric_name, [list(d) for d in p.dimensions], p.unit],
        "values": [[v, c] for v, c in p.values.items()],
        "stats": [p.sum, p.sample_count, p.minimum, p.maximum],
    }


def _point_of(item: dict[str, Any]) -> tuple[MetricKey, Datapoint]:
    namespace, name, dims, unit = item["key"]
    key: MetricKey = (namespace, name, tuple((n, v) for n, v in dims), unit)
    point = Datapoint(namespace, name, key[2], unit, item["minute"] // 1000)
    point.values = {value: count for value, count in item["values"]}
    point.sum, point.sample_count, point.minimum, point.maximum = item["stats"]
    return key, point
