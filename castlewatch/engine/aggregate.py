"""Per-minute aggregation of metric contributions into datapoints (spec §8.4).

Each contribution belongs to the minute of its event's own timestamp (floor to
60 s).  A minute's window closes once the event-time watermark (the latest time of
an event that contributed: events that publish nothing do not move it, and their
time is never read) has passed the end of the minute by the allowed lateness; a contribution
for a closed minute is *late*: counted in ``Stats.late_events`` and reported, never
folded in silently.  Both decisions depend only on the sequence of events, not on
how they were batched, so a run resumed from a checkpoint decides exactly as an
uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from castlewatch.engine.evaluate import MetricKey
from castlewatch.engine.model import Datapoint, Stats

MINUTE_MS = 60_000


class MinuteAggregator:
    """Folds ``(key, timestamp_ms, value)`` contributions into per-minute datapoints.

    Args:
        stats: counters (``late_events``).
        allowed_lateness_ms: how long after a minute ends, in event time
            (milliseconds), contributions for it are still accepted.
    """

    def __init__(self, stats: Stats, allowed_lateness_ms: int = 60_000) -> None:
        self.stats = stats
        self.allowed_lateness_ms = allowed_lateness_ms
        self.watermark = -(2**62)  # latest event time seen, ms
        self.windows: dict[int, dict[MetricKey, Datapoint]] = {}  # minute start (ms) -> key -> datapoint

    def add(self, key: MetricKey, timestamp_ms: int, value: float) -> None:
        """Fold one contribution in (or count it late)."""
        minute = timestamp_ms - timestamp_ms % MINUTE_MS
        if timestamp_ms > self.watermark:
            self.watermark = timestamp_ms
        elif minute + MINUTE_MS + self.allowed_lateness_ms <= self.watermark:
            self.stats.late_events += 1
            return
        window = self.windows.get(minute)
        if window is None:
            window = self.windows[minute] = {}
        point = window.get(key)
        if point is None:
            namespace, name, dimensions, unit = key
            point = window[key] = Datapoint(namespace, name, dimensions, unit, minute // 1000)
        point.add(value)

    def close_ready(self) -> list[Datapoint]:
        """Remove and return the datapoints of every minute the watermark has closed."""
        limit = self.watermark - self.allowed_lateness_ms - MINUTE_MS
        ready = sorted(m for m in self.windows if m <= limit)
        return [p for m in ready for p in self.windows.pop(m).values()]

    def close_all(self) -> list[Datapoint]:
        """Remove and return every open datapoint (end of a replay, shutdown)."""
        out = [p for m in sorted(self.windows) for p in self.windows[m].values()]
        self.windows.clear()
        return out

    def advance(self, watermark_ms: int) -> None:
        """Move the watermark forward without an event (idle daemon, wall clock)."""
        if watermark_ms > self.watermark:
            self.watermark = watermark_ms

    # -- checkpoints --

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: watermark and open windows (values kept exactly)."""
        return {
            "watermark": self.watermark,
            "windows": [
                {
                    "minute": minute,
                    "key": [p.namespace, p.metric_name, [list(d) for d in p.dimensions], p.unit],
                    "values": [[v, c] for v, c in p.values.items()],
                    "stats": [p.sum, p.sample_count, p.minimum, p.maximum],
                }
                for minute, window in self.windows.items()
                for p in window.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`."""
        self.watermark = state["watermark"]
        self.windows = {}
        for item in state["windows"]:
            namespace, name, dims, unit = item["key"]
            key: MetricKey = (namespace, name, tuple((n, v) for n, v in dims), unit)
            window = self.windows.setdefault(item["minute"], {})
            point = window[key] = Datapoint(namespace, name, key[2], unit, item["minute"] // 1000)
            point.values = {value: count for value, count in item["values"]}
            point.sum, point.sample_count, point.minimum, point.maximum = item["stats"]
