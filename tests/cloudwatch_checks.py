"""What the CloudWatch sink tests compare: the statistics CloudWatch (moto) holds, read back
with GetMetricStatistics, against those of a JSON Lines sink of the same run."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

#: (namespace, metric name, dimensions sorted, unit, minute start epoch s)
Key = tuple[str, str, tuple[tuple[str, str], ...], str, int]
#: [Sum, SampleCount, Minimum, Maximum]
Stat = list[float]

CONFIG = """\
metric_filters:
  - filterName: errors
    logGroupName: app
    filterPattern: '{{ $.level = "ERROR" }}'
    metricTransformations: [{{metricName: Errors, metricNamespace: App, metricValue: "1", unit: Count}}]
  - filterName: latency
    logGroupName: app
    filterPattern: '{{ $.latency >= 0 }}'
    metricTransformations: [{{metricName: Latency, metricNamespace: App, metricValue: $.latency, unit: Milliseconds}}]
  - filterName: per-user
    logGroupName: app
    filterPattern: '{{ $.level = * }}'
    metricTransformations: [{{metricName: Requests, metricNamespace: App, metricValue: "1", dimensions: {{User: $.user}}}}]
sources:
  - type: file
    path: {log}
    log_group: app
    timestamp: {{field: $.t, format: epoch_s}}
sinks:
  - {{type: jsonl, path: {out}/datapoints.jsonl}}
  - {{type: cloudwatch, region: us-east-1, endpoint_url: "{url}", namespace_prefix: "{prefix}", {extra}}}
allowed_lateness_s: {lateness}
"""


def write_config(directory: Path, log: Path, url: str, *, prefix: str = "cw/", extra: str = "timeout_s: 5",
                 lateness: float = 30) -> Path:
    """A configuration of the three filters over ``log`` with a JSON Lines and a cloudwatch sink."""
    path = directory / "castlewatch.yaml"
    path.write_text(CONFIG.format(log=log, out=directory / "out", url=url, prefix=prefix, extra=extra,
                                  lateness=lateness))
    return path


def recent_events(n: int, seed: int, start: int | None = None, users: int = 4) -> list[str]:
    """``n`` JSON lines in time order over the last half hour (CloudWatch takes two weeks)."""
    rng = random.Random(seed)
    t = start if start is not None else int(time.time()) - 1800
    out = []
    for i in range(n):
        t += rng.randint(0, 1)
        line = {"t": t, "level": rng.choice(["ERROR", "INFO", "WARN"]), "user": f"u{rng.randint(0, users - 1)}",
                "seq": f"{seed}-{i}"}
        if rng.random() < 0.8:
            line["latency"] = rng.randint(0, 500)
        out.append(json.dumps(line))
    return out


def epoch(stamp: str | int) -> int:
    """A datum's Timestamp (ISO 8601 in the spool, epoch seconds on the JSON wire) in epoch seconds."""
    if isinstance(stamp, (int, float)):
        return int(stamp)
    return calendar.timegm(dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").timetuple())


def request_datums(lines: Iterable[dict]) -> dict[Key, Stat]:
    """Statistics per key of PutMetricData datums given as ``{"Namespace", **datum}`` dicts."""
    out: dict[Key, Stat] = defaultdict(lambda: [0.0, 0, float("inf"), float("-inf")])
    for d in lines:
        dims = tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))
        stat = out[(d["Namespace"], d["MetricName"], dims, d["Unit"], epoch(d["Timestamp"]))]
        for v, c in zip(d["Values"], d["Counts"]):
            stat[0] += v * c
            stat[1] += int(c)
            stat[2] = min(stat[2], v)
            stat[3] = max(stat[3], v)
    return dict(out)


def jsonl_stats(path: Path, prefix: str = "") -> dict[Key, Stat]:
    """Statistics per key of a JSON Lines sink, namespaces with ``prefix``."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for d in lines:
        d["Namespace"] = prefix + d["Namespace"]
    return request_datums(lines)


def requests_stats(bodies: Iterable[dict]) -> dict[Key, Stat]:
    """Statistics per key of PutMetricData request bodies ``{"Namespace", "MetricData"}``."""
    return request_datums({"Namespace": b["Namespace"], **d} for b in bodies for d in b["MetricData"])


def cloudwatch_stats(url: str, keys: Iterable[Key]) -> dict[Key, Stat]:
    """GetMetricStatistics (Sum, SampleCount, Minimum, Maximum per minute) of every series of
    ``keys`` from the CloudWatch at ``url``: the minutes it returns, whichever they are."""
    import botocore.session

    cw = botocore.session.get_session().create_client("cloudwatch", region_name="us-east-1", endpoint_url=url)
    series: dict[tuple, list[int]] = defaultdict(list)
    for ns, name, dims, unit, minute in keys:
        series[(ns, name, dims, unit)].append(minute)
    out: dict[Key, Stat] = {}
    for (ns, name, dims, unit), minutes in series.items():
        answer = cw.get_metric_statistics(
            Namespace=ns, MetricName=name, Dimensions=[{"Name": n, "Value": v} for n, v in dims],
            StartTime=min(minutes) - 3600, EndTime=max(minutes) + 3600, Period=60, Unit=unit,
            Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
        )
        for p in answer["Datapoints"]:
            minute = int(p["Timestamp"].timestamp())
            out[(ns, name, dims, unit, minute)] = [p["Sum"], int(p["SampleCount"]), p["Minimum"], p["Maximum"]]
    cw.close()
    return out


def some_series(stats: dict[Key, Stat], every: int) -> dict[Key, Stat]:
    """Every minute of one series in ``every`` (moto is slow to read thousands of series back)."""
    chosen = sorted({k[:4] for k in stats})[::every]
    return {k: v for k, v in stats.items() if k[:4] in chosen}


def bodies_of(proxy, operation: str = "PutMetricData") -> list[dict]:
    """The JSON bodies of the requests the fault proxy saw (JSON protocol)."""
    return [json.loads(b) for b in proxy.bodies[operation]]


def doubled(expected: dict[Key, Stat], extra: dict[Key, Stat]) -> dict[Key, Stat]:
    """``expected`` with the datums of ``extra`` added once more (a request applied twice)."""
    out = {k: list(v) for k, v in expected.items()}
    for k, (s, c, lo, hi) in extra.items():
        total = out.setdefault(k, [0.0, 0, lo, hi])
        total[0] += s
        total[1] += c
        total[2], total[3] = min(total[2], lo), max(total[3], hi)
    return out
