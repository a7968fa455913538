"""The cloudwatch_logs source against a real moto server (``moto`` fixture), and through the
fault proxy: ``replay`` and ``run`` of log groups give the datapoints of a file replay of
the same events, datapoint for datapoint, whatever the pages, the faults, late ingestion,
the re-reads of the lookback, and a kill -9 of the daemon.

The reference is always ``castlewatch replay`` of the same events from files in the
``cloudwatch_events`` format. Waits are bounded polls, never fixed long sleeps; every
process started is killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from aws_emulator import Fault, FaultProxy
from click.testing import CliRunner

from castlewatch.aws import AwsTarget, RetryPolicy, client
from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.engine.config import ConfigError, load_config_text, resolve_config
from castlewatch.engine.evaluate import UnsupportedMetricFilterError
from castlewatch.engine.sources import cloudwatch_logs, open_source, split_source
from castlewatch.engine.sources.cloudwatch_logs import CloudWatchLogsSpec
from castlewatch.metric_filters import DuplicateFilterError

WAIT_S = 30.0
ONE, TWO = "app/one", "app/two"

FILTERS = """\
metric_filters:
  - filterName: errors
    logGroupName: app/one
    filterPattern: '{ $.level = "ERROR" }'
    metricTransformations: [{metricName: Errors, metricNamespace: CW, metricValue: "1", unit: Count}]
  - filterName: latency
    logGroupName: app/one
    filterPattern: '{ $.latency >= 0 }'
    metricTransformations: [{metricName: Latency, metricNamespace: CW, metricValue: $.latency, unit: Milliseconds}]
  - filterName: per-user
    logGroupName: app/two
    filterPattern: '{ $.level = * }'
    metricTransformations: [{metricName: Requests, metricNamespace: CW, metricValue: "1", dimensions: {User: $.user}}]
  - filterName: warnings
    logGroupName: app/two
    filterPattern: WARN
    metricTransformations: [{metricName: Warnings, metricNamespace: CW, metricValue: "1", defaultValue: 0}]
"""


def base_ms() -> int:
    """A minute start 50 minutes ago (moto keeps events of the last 14 days only)."""
    return (int(time.time()) // 60 - 50) * 60_000


def make_events(start_ms: int, n: int, seed: int, spread_ms: int = 30 * 60_000) -> list[tuple[int, str]]:
    """``n`` JSON log events in time order over ``spread_ms`` from ``start_ms``, several
    sharing a millisecond."""
    rng = random.Random(seed)
    times = sorted(start_ms + rng.randrange(spread_ms // 50) * 50 for _ in range(n))
    out = []
    for i, ts in enumerate(times):
        level = rng.choice(["ERROR", "INFO", "INFO", "WARN", "DEBUG"])
        out.append((ts, json.dumps({"level": level, "latency": rng.randint(0, 900), "user": f"u{rng.randint(0, 3)}",
                                    "seq": f"{seed}-{i}"})))
    return out


def put(url: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """PutLogEvents into moto (the log group and stream made if missing)."""
    put_many(url, [(group, stream, events)])


def put_many(url: str, batches: list[tuple[str, str, list[tuple[int, str]]]]) -> None:
    """Several :func:`put` s with one client."""

    async def main_() -> None:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=url)) as logs:
            for group, stream, events in batches:
                for make in (lambda: logs.create_log_group(logGroupName=group),
                             lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream)):
                    try:
                        await make()
                    except logs.exceptions.ResourceAlreadyExistsException:
                        pass
                ordered = sorted(events)
                for i in range(0, len(ordered), 1000):
                    chunk = [{"timestamp": ts, "message": m} for ts, m in ordered[i : i + 1000]]
                    await logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=chunk)

    asyncio.run(main_())


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def cw_config(tmp: Path, url: str, *, start: str, groups: tuple[str, ...] = (ONE, TWO), end: str | None = None,
              lookback: float = 2, poll: float = 0.1, filters: str = FILTERS, name: str = "cw",
              source: str | None = None, lateness: float = 3600) -> Path:
    out = tmp / name
    out.mkdir(parents=True, exist_ok=True)
    source = source or f"log_group_names: [{', '.join(groups)}]"
    text = (
        filters
        + "sources:\n  - type: cloudwatch_logs\n"
        + f"    {source}\n    region: us-east-1\n    endpoint_url: {url}\n    start_time: '{start}'\n"
        + (f"    end_time: '{end}'\n" if end else "")
        + f"    poll_interval_s: {poll}\n    lookback_s: {lookback}\n"
        + f"sinks: [{{type: jsonl, path: {out}/datapoints.jsonl}}]\nallowed_lateness_s: {lateness}\n"
    )
    path = out / "castlewatch.yaml"
    path.write_text(text)
    return path


def file_replay(tmp: Path, by_group: dict[str, list[tuple[int, str, str]]], filters: str = FILTERS) -> list[dict]:
    """The datapoints of ``castlewatch replay`` of the same events from files
    (``cloudwatch_events``: timestamp, message, logStreamName)."""
    out = tmp / "files"
    out.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, (group, events) in enumerate(by_group.items()):
        path = out / f"group{i}.jsonl"
        path.write_text("".join(json.dumps({"timestamp": t, "message": m, "logStreamName": s}) + "\n"
                                for t, m, s in sorted(events)))
        sources.append(f"  - {{type: file, path: {path}, log_group: {group}, format: cloudwatch_events}}\n")
    config = out / "castlewatch.yaml"
    config.write_text(filters + "sources:\n" + "".join(sources)
                      + f"sinks: [{{type: jsonl, path: {out}/datapoints.jsonl}}]\nallowed_lateness_s: 3600\n")
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return datapoints(out / "datapoints.jsonl")


def datapoints(path: Path) -> list[dict]:
    lines = (json.loads(line) for line in path.read_text().splitlines())
    return sorted(lines, key=lambda d: json.dumps(d, sort_keys=True))


def setup_groups(url: str, n: int = 120, seed: int = 0) -> dict[str, list[tuple[int, str, str]]]:
    """Two log groups of two log streams each, events interleaved in time across streams."""
    start = base_ms()
    by_group: dict[str, list[tuple[int, str, str]]] = {ONE: [], TWO: []}
    batches = []
    for g, group in enumerate((ONE, TWO)):
        for s, stream in enumerate(("a", "b")):
            events = make_events(start, n, seed=seed * 100 + g * 10 + s)
            batches.append((group, stream, events))
            by_group[group] += [(t, m, stream) for t, m in events]
    put_many(url, batches)
    return by_group


def replay(config: Path):
    return CliRunner().invoke(main, ["replay", "--config", str(config)])


# ---- replay ---------------------------------------------------------------------------------------


def test_replay_of_log_groups_equals_a_file_replay(moto, tmp_path):
    by_group = setup_groups(moto)
    config = cw_config(tmp_path, moto, start="2h")
    result = replay(config)
    assert result.exit_code == 0, result.output
    got = datapoints(config.parent / "datapoints.jsonl")
    assert got and got == file_replay(tmp_path, by_group)


def test_replay_stops_at_end_time_and_starts_at_start_time(moto, tmp_path):
    by_group = setup_groups(moto)
    events = [e for group in by_group.values() for e in group]
    times = sorted(t for t, _, _ in events)
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    config = cw_config(tmp_path, moto, start=iso(start), end=iso(end))
    assert replay(config).exit_code == 0
    inside = {g: [e for e in evs if start <= e[0] < end] for g, evs in by_group.items()}
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, inside)


def test_pages_batches_and_catch_up_windows_read_every_event_once(moto, monkeypatch):
    """Small pages (nextToken followed), small batches, many catch-up windows with their
    overlaps: every event exactly once, with its log stream; the positions inside a
    window keep its start."""
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_TPS", 500.0)  # a fast test, not a slow moto
    events = make_events(base_ms(), 300, seed=7)
    put(moto, ONE, "a", events[::2])
    put(moto, ONE, "b", events[1::2])
    spec = CloudWatchLogsSpec(log_group_names=(ONE,), region="us-east-1", endpoint_url=moto,
                              start_ms=base_ms() - 60_000, lookback_s=30)
    source = open_source(spec, None, batch_size=7)
    source.page_limit = 11
    source.window_span_s = 120

    async def read() -> list:
        return [b async for b in source.batches(follow=False, stop=asyncio.Event())]

    batches = asyncio.run(read())
    got = sorted((e.timestamp, e.message, e.log_stream) for b in batches for e in b.events)
    assert got == sorted([(t, m, "a") for t, m in events[::2]] + [(t, m, "b") for t, m in events[1::2]])
    assert max(len(b.events) for b in batches) == 7
    cursors = [b.position["cursor"] for b in batches]
    assert cursors == sorted(cursors) and len(set(cursors)) > 5  # windows moved on, never back


def test_a_restart_from_any_batch_position_reads_exactly_the_rest(moto):
    """The exactly-once rule at the source: resuming from the position of any batch
    (inside a window or at its end) yields exactly the events not yielded before it."""
    events = make_events(base_ms(), 120, seed=8)
    put(moto, ONE, "a", events)
    spec = CloudWatchLogsSpec(log_group_names=(ONE,), region="us-east-1", endpoint_url=moto,
                              start_ms=base_ms() - 60_000, lookback_s=60)

    def read(positions=None) -> list:
        source = open_source(spec, None, positions, batch_size=9)
        source.page_limit = 25

        async def go() -> list:
            return [b async for b in source.batches(follow=False, stop=asyncio.Event())]

        return asyncio.run(go())

    batches = read()
    everything = [e.message for b in batches for e in b.events]
    assert sorted(everything) == sorted(m for _, m in events)
    for k in (0, 3, 7, len(batches) - 2):
        before = [e.message for b in batches[: k + 1] for e in b.events]
        rest = [e.message for b in read(batches[k].position) for e in b.events]
        assert sorted(before + rest) == sorted(everything), k


# ---- run -----------------------------------------------------------------------------------------


class Daemon:
    """One ``castlewatch run`` process."""

    def __init__(self, tmp: Path, config: Path, checkpoint: Path, name: str) -> None:
        self.checkpoint_path = checkpoint
        self.stderr_path = tmp / f"{name}.stderr"
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "castlewatch", "run", "--config", str(config), "--checkpoint", str(checkpoint),
             "--checkpoint-interval", "0.1"],
            stdout=subprocess.DEVNULL, stderr=self._err, stdin=subprocess.DEVNULL, cwd=tmp,
        )

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, what: str, predicate: Callable[[dict], bool], timeout: float = WAIT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = read_checkpoint(self.checkpoint_path)
            except FileNotFoundError:
                state = None
            if state is not None and predicate(state):
                return state
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.05)

    def wait_events(self, n: int) -> dict:
        return self.wait_for(f"{n} events read", lambda s: s["stats"]["events_read"] >= n)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=WAIT_S)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT_S)
        self._err.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*args: Any) -> Daemon:
        started.append(Daemon(*args))
        return started[-1]

    try:
        yield start
    finally:
        for d in started:
            d.close()


def test_a_bounded_run_equals_a_file_replay_with_late_ingestion_and_re_reads(moto, tmp_path, daemons):
    """``run`` follows the log groups: events there at the start, events put while it
    runs, and events put late with old timestamps (within the lookback of the latest
    event time seen) are each counted once, although every poll reads the lookback again."""
    by_group = setup_groups(moto, n=60)
    config = cw_config(tmp_path, moto, start="2h", lookback=900)
    daemon = daemons(tmp_path, config, tmp_path / "ck", "run")
    expected = 240
    daemon.wait_events(expected)
    start = base_ms() + 40 * 60_000
    for seed, group in enumerate((ONE, TWO)):  # new events, then late ones stamped 10 minutes before them
        new = make_events(start, 20, seed=50 + seed, spread_ms=60_000)
        late = make_events(start - 10 * 60_000, 15, seed=60 + seed, spread_ms=60_000)
        put(moto, group, "c", new)
        expected += len(new)
        daemon.wait_events(expected)
        put(moto, group, "late", late)
        expected += len(late)
        daemon.wait_events(expected)
        by_group[group] += [(t, m, "c") for t, m in new] + [(t, m, "late") for t, m in late]
    time.sleep(0.5)  # several more polls, each reading the lookback again
    assert daemon.stop() == 0, daemon.logs()
    assert read_checkpoint(tmp_path / "ck")["stats"]["events_read"] == expected == 310
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, by_group)


def test_kill_9_mid_tail_then_restart_gives_the_datapoints_of_an_uninterrupted_run(moto, tmp_path, daemons):
    """Killed while a window is half read (the proxy pages FilterLogEvents by 500 events,
    so a window of a log group is six pages) and restarted, three times: the datapoints
    and the count of events are those of an uninterrupted run."""
    by_group = setup_groups(moto, n=1500, seed=3)
    checkpoint = tmp_path / "ck"
    total = 6000
    with FaultProxy(moto) as proxy:
        proxy.paginate("FilterLogEvents", "events", 500)
        config = cw_config(tmp_path, proxy.url, start="2h", lookback=120)
        positions = []
        for round_, at in enumerate((700, 2500, 4200)):
            daemon = daemons(tmp_path, config, checkpoint, f"run{round_}")
            state = daemon.wait_for(f"{at} events", lambda s, at=at: s["stats"]["events_read"] >= at)
            daemon.stop(signal.SIGKILL)
            positions.append(state["sources"])
        # a position inside a window: a chunk of ids added to those kept at its start
        assert any(len(p["seen"]) > 1 or (p["read_to"] is None and p["seen"]) for s in positions for p in s.values())
        extra = make_events(base_ms() + 45 * 60_000, 40, seed=99, spread_ms=60_000)
        put(moto, ONE, "c", extra)
        by_group[ONE] += [(t, m, "c") for t, m in extra]
        daemon = daemons(tmp_path, config, checkpoint, "final")
        daemon.wait_events(total + 40)
        time.sleep(0.3)
        assert daemon.stop() == 0, daemon.logs()
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == total + 40
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, by_group)


# ---- faults --------------------------------------------------------------------------------------


def test_throttling_5xx_dropped_and_slow_answers_lose_and_double_nothing(moto, tmp_path, caplog):
    by_group = setup_groups(moto)
    with FaultProxy(moto) as proxy:
        proxy.inject(
            "FilterLogEvents",
            Fault("delay"), Fault("throttle"), Fault("delay"),  # (the first calls check that the log groups exist)
            Fault("throttle"), Fault("error", status=500), Fault("drop"), Fault("drop_after"),
            Fault("delay", seconds=0.5), Fault("error", status=503), Fault("throttle"), Fault("drop_after"),
        )
        proxy.inject("DescribeLogGroups", Fault("throttle"), Fault("drop"))
        config = cw_config(tmp_path, proxy.url, start="2h")
        result = replay(config)
        assert result.exit_code == 0, result.output
        assert proxy.seen["FilterLogEvents"] > proxy.forwarded["FilterLogEvents"]
    assert any("retrying with backoff and jitter" in r.getMessage() for r in caplog.records)
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, by_group)


def test_a_run_through_faults_equals_a_file_replay(moto, tmp_path, daemons):
    by_group = setup_groups(moto, n=50)
    with FaultProxy(moto) as proxy:
        config = cw_config(tmp_path, proxy.url, start="2h", lookback=600)
        daemon = daemons(tmp_path, config, tmp_path / "ck", "run")
        daemon.wait_events(100)
        for _ in range(3):
            proxy.inject("FilterLogEvents", Fault("throttle"), Fault("drop"), Fault("error", status=502),
                         Fault("drop_after"), Fault("delay", seconds=0.3))
            extra = make_events(base_ms() + 45 * 60_000, 10, seed=len(by_group[ONE]), spread_ms=30_000)
            put(moto, ONE, "c", extra)
            by_group[ONE] += [(t, m, "c") for t, m in extra]
            daemon.wait_events(sum(map(len, by_group.values())))
        time.sleep(0.3)
        assert daemon.stop() == 0, daemon.logs()
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, by_group)


def test_the_logs_read_calls_of_a_target_share_one_rate_limit(moto, monkeypatch):
    """Every source (log group) of one AWS target takes its calls from one token bucket."""
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_TPS", 20.0)
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_BURST", 1)
    now = int(time.time() * 1000)
    put_many(moto, [(group, "a", make_events(now - 300_000, 5, seed=1, spread_ms=60_000))
                    for group in (ONE, TWO, "app/three")])
    with FaultProxy(moto) as proxy:
        spec = CloudWatchLogsSpec(log_group_names=(ONE, TWO, "app/three"), region="us-east-1", endpoint_url=proxy.url,
                                  start_ms=now - 600_000, lookback_s=0)
        sources = [open_source(s, None) for s in split_source(spec)]
        for s in sources:
            s.window_span_s = 60  # about ten windows each

        async def read_all() -> int:
            async def read(source) -> int:
                return sum([len(b) async for b in source.batches(follow=False, stop=asyncio.Event())])

            return sum(await asyncio.gather(*(read(s) for s in sources)))

        assert asyncio.run(read_all()) == 15
        times = proxy.times["FilterLogEvents"]
    assert len(times) >= 30
    # 20 per second from one bucket for all three log groups (not 20 each)
    assert times[-1] - times[0] >= (len(times) - 2) / 20 * 0.9


# ---- errors: one line, an exit status ------------------------------------------------------------


def test_a_missing_log_group_is_one_line_and_exit_66(moto, tmp_path):
    setup_groups(moto, n=5)
    config = cw_config(tmp_path, moto, start="1h", groups=(ONE, "app/nope"),
                       filters=FILTERS.replace("logGroupName: app/two", "logGroupName: app/nope"))
    result = replay(config)
    assert result.exit_code == 66
    assert result.stderr.splitlines() == [
        f"Error: log group 'app/nope' does not exist (endpoint {moto}; FilterLogEvents)"
    ]
    assert not (config.parent / "datapoints.jsonl").exists()  # nothing replayed, no output touched


def test_a_log_group_deleted_under_a_run_stops_it_with_exit_66(moto, tmp_path, daemons):
    setup_groups(moto, n=5)
    config = cw_config(tmp_path, moto, start="1h")
    daemon = daemons(tmp_path, config, tmp_path / "ck", "run")
    daemon.wait_events(20)

    async def delete() -> None:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=moto)) as logs:
            await logs.delete_log_group(logGroupName=TWO)

    asyncio.run(delete())
    assert daemon.proc.wait(timeout=WAIT_S) == 66
    daemon.close()
    line = daemon.logs().splitlines()[-1]
    assert line == (f"Error: log group 'app/two' does not exist (endpoint {moto}; FilterLogEvents); the run stopped; "
                    f"once fixed, run again: it resumes from the checkpoint {tmp_path / 'ck'}, exactly")


@pytest.mark.parametrize("allowed", [0, 2])  # denied when checked before the run, or when read
def test_access_denied_is_one_line_and_exit_77_not_a_retry_loop(moto, tmp_path, allowed):
    setup_groups(moto, n=5)
    with FaultProxy(moto) as proxy:
        config = cw_config(tmp_path, proxy.url, start="1h")
        proxy.inject("FilterLogEvents", *[Fault("delay")] * allowed, Fault("deny"))
        result = replay(config)
        assert proxy.seen["FilterLogEvents"] == allowed + 1  # not retried
    assert result.exit_code == 77
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"Error: CloudWatch Logs denied FilterLogEvents on log group 'app/one' (endpoint {proxy.url}): "
        "AccessDeniedException: User: arn:aws:iam::123456789012:user/tester is not authorized"
    )
    assert "logs:FilterLogEvents" in line and "testing" not in line  # the fake credentials never shown


def test_access_denied_listing_log_groups_and_no_credentials(moto, tmp_path, monkeypatch):
    setup_groups(moto, n=5)
    with FaultProxy(moto) as proxy:
        config = cw_config(tmp_path, proxy.url, start="1h", source="log_group_name_prefix: app/")
        proxy.inject("DescribeLogGroups", Fault("deny"))
        result = replay(config)
    assert result.exit_code == 77 and len(result.stderr.splitlines()) == 1
    assert f"Error: CloudWatch Logs denied DescribeLogGroups (endpoint {proxy.url}): AccessDeniedException" in (
        result.stderr
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = replay(cw_config(tmp_path, moto, start="1h", name="nocreds"))
    assert result.exit_code == 77
    assert "no AWS credentials found in the standard chain" in result.stderr


def test_a_replay_whose_calls_keep_failing_exits_69(moto, tmp_path, monkeypatch):
    setup_groups(moto, n=5)
    monkeypatch.setattr(cloudwatch_logs, "REPLAY_RETRY_POLICY", RetryPolicy(3, 0.001, 0.01))
    with FaultProxy(moto) as proxy:
        config = cw_config(tmp_path, proxy.url, start="1h")
        proxy.inject("FilterLogEvents", Fault("delay"), Fault("delay"), *[Fault("error", status=503)] * 3)
        result = replay(config)
    assert result.exit_code == 69, result.output
    assert result.stderr.splitlines() == [
        f"Error: CloudWatch Logs FilterLogEvents on log group 'app/one' kept failing (endpoint {proxy.url}): "
        "503: Service Unavailable; the replay stopped"
    ]


# ---- log_group_name_prefix and {discover: true} --------------------------------------------------


def metric_filter(group: str, name: str, pattern: str = "ERROR", value: str = "1") -> dict:
    return {"filterName": name, "filterPattern": pattern, "logGroupName": group,
            "metricTransformations": [{"metricName": name, "metricNamespace": "Found", "metricValue": value}]}


def put_filters(url: str, filters: list[dict]) -> None:
    async def go() -> None:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=url)) as logs:
            for f in filters:
                await logs.put_metric_filter(**f)

    asyncio.run(go())


def test_a_prefix_reads_the_log_groups_it_matches_over_pages(moto, tmp_path):
    put_many(moto, [(f"/aws/lambda/f{i:02d}", "a", make_events(base_ms(), 3, seed=i)) for i in range(55)]
             + [("/other/x", "a", make_events(base_ms(), 3, seed=100))])  # 55: two pages of DescribeLogGroups
    filters = "metric_filters:\n" + "".join(
        f"  - {json.dumps(metric_filter(f'/aws/lambda/f{i:02d}', f'all-{i}', ''))}\n" for i in (0, 7, 54)
    ) + f"  - {json.dumps(metric_filter('/other/x', 'other', ''))}\n"
    config = cw_config(tmp_path, moto, start="2h", source="log_group_name_prefix: /aws/lambda/", filters=filters)
    result = replay(config)
    assert result.exit_code == 0, result.output
    assert (
        "Warning: sources[0]: 52 log groups whose name starts with '/aws/lambda/' have no metric filter and are "
        "not read: '/aws/lambda/f01', '/aws/lambda/f02'"
    ) in result.stderr
    counts: dict[str, float] = {}
    for d in datapoints(config.parent / "datapoints.jsonl"):
        counts[d["MetricName"]] = counts.get(d["MetricName"], 0) + sum(d["Counts"])
    assert counts == {"all-0": 3, "all-7": 3, "all-54": 3}


def test_a_prefix_that_matches_nothing_is_exit_66(moto, tmp_path):
    result = replay(cw_config(tmp_path, moto, start="1h", source="log_group_name_prefix: /nothing/"))
    assert result.exit_code == 66
    assert result.stderr.splitlines() == [
        f"Error: sources[0]: no log group name starts with '/nothing/' (endpoint {moto})"
    ]


def test_discover_reads_the_provisioned_filters_over_pages(moto, tmp_path):
    by_group = setup_groups(moto, n=40)
    provisioned = [metric_filter(ONE, f"f{i:02d}", '{ $.latency > %d }' % (i * 60), "$.latency") for i in range(12)]
    provisioned.append(metric_filter(TWO, "warn", "WARN"))
    put_filters(moto, provisioned)
    discovered = "metric_filters:\n  - {discover: true}\n"
    with FaultProxy(moto) as proxy:
        proxy.paginate("DescribeMetricFilters", "metricFilters", 5)
        config = cw_config(tmp_path, proxy.url, start="2h", filters=discovered)
        result = replay(config)
        assert result.exit_code == 0, result.output
        assert proxy.seen["DescribeMetricFilters"] == 3 + 1  # 12 filters in pages of 5; 1 on app/two
        loaded = load_config_text(config.read_text(), tmp_path)
        assert loaded.discover_metric_filters
        resolved, _ = asyncio.run(resolve_config(loaded))
    assert resolved.discovered_log_groups == {ONE: proxy.url, TWO: proxy.url}
    assert not resolved.discover_metric_filters
    assert [f.filter_name for f in resolved.metric_filters] == [f"f{i:02d}" for i in range(12)] + ["warn"]
    as_config = "metric_filters:\n" + "".join(f"  - {json.dumps(f)}\n" for f in provisioned)
    assert datapoints(config.parent / "datapoints.jsonl") == file_replay(tmp_path, by_group, as_config)


def test_discover_mixes_with_inline_and_file_filters_and_refuses_a_copy(moto, tmp_path):
    setup_groups(moto, n=10)
    put_filters(moto, [metric_filter(ONE, "found")])
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"metricFilters": [metric_filter(TWO, "from-file")]}))
    inline = json.dumps(metric_filter(ONE, "inline", "INFO"))
    filters = f"metric_filters:\n  - {inline}\n  - {{file: {extra}}}\n  - {{discover: true}}\n"
    loaded = load_config_text(cw_config(tmp_path, moto, start="1h", filters=filters).read_text(), tmp_path)
    resolved, _ = asyncio.run(resolve_config(loaded))
    assert [f.filter_name for f in resolved.metric_filters] == ["inline", "from-file", "found"]
    copy = json.dumps(metric_filter(ONE, "found"))
    loaded = load_config_text(
        cw_config(tmp_path, moto, start="1h", filters=f"metric_filters:\n  - {copy}\n  - {{discover: true}}\n",
                  name="copy").read_text(), tmp_path)
    with pytest.raises(DuplicateFilterError, match="'found' is defined twice in log group 'app/one'.*discover"):
        asyncio.run(resolve_config(loaded))


def test_a_discovered_filter_castlewatch_refuses_is_named(moto, tmp_path):
    setup_groups(moto, n=5)
    refused = dict(metric_filter(ONE, "with-system-fields"), emitSystemFieldDimensions=["@aws.region"])
    with FaultProxy(moto) as proxy:
        proxy.inject("DescribeMetricFilters", Fault("answer", body=json.dumps({"metricFilters": [refused]}).encode()))
        config = cw_config(tmp_path, proxy.url, start="1h", groups=(ONE,),
                           filters="metric_filters:\n  - {discover: true}\n")
        with pytest.raises(UnsupportedMetricFilterError) as info:
            asyncio.run(resolve_config(load_config_text(config.read_text(), tmp_path)))
        assert "metric filter 'with-system-fields': emitSystemFieldDimensions" in str(info.value)
        assert "discovered on log group 'app/one'" in str(info.value)
        proxy.inject("DescribeMetricFilters", Fault("answer", body=json.dumps({"metricFilters": [
            dict(metric_filter(ONE, "selective"), fieldSelectionCriteria='@aws.region = "x"')]}).encode()))
        result = replay(config)
    assert result.exit_code == 2
    assert "metric filter 'selective': fieldSelectionCriteria is not supported" in result.stderr
    assert "discovered on log group 'app/one'" in result.stderr


def test_a_named_log_group_without_any_filter_is_refused(moto, tmp_path):
    setup_groups(moto, n=5)
    put_filters(moto, [metric_filter(ONE, "found")])
    config = cw_config(tmp_path, moto, start="1h", filters="metric_filters:\n  - {discover: true}\n")
    with pytest.raises(ConfigError, match="no metric filter is defined for log group 'app/two'"):
        asyncio.run(resolve_config(load_config_text(config.read_text(), tmp_path)))


# ---- config --------------------------------------------------------------------------------------


def config_error(source: str, filters: str = FILTERS) -> ConfigError:
    text = filters + f"sources:\n  - {source}\nsinks: [{{type: stdout}}]\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, ".")
    return info.value


@pytest.mark.parametrize(
    ("source", "location", "reason"),
    [
        ("{type: cloudwatch_logs}", "sources[0]",
         "a cloudwatch_logs source needs log_group_names (a list of log groups) or log_group_name_prefix"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], log_group_name_prefix: app/}", "sources[0]",
         "a cloudwatch_logs source takes log_group_names or log_group_name_prefix, not both"),
        ("{type: cloudwatch_logs, log_group_names: [app/one, app/one]}", "sources[0].log_group_names[1]",
         "log group 'app/one' is named twice; remove one"),
        ("{type: cloudwatch_logs, log_group_names: [app/three]}", "sources[0].log_group_names[0]",
         "no metric filter is defined for log group 'app/three', so nothing would be published (log groups with "
         "filters: app/one, app/two; or add {discover: true} to metric_filters)"),
        ("{type: cloudwatch_logs, log_group_names: ['bad group']}", "sources[0].log_group_names[0]",
         "expected a log group name (1-512 of letters, digits and . - _ / #), got 'bad group'"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], start_time: yesterday}", "sources[0].start_time",
         "expected an ISO 8601 time such as 2026-12-06T12:00:00Z, or a time before now such as 5m, 2h, 3d, "
         "got 'yesterday'"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], start_time: 1700000000}", "sources[0].start_time",
         "expected an ISO 8601 time such as 2026-12-06T12:00:00Z, or a time before now such as 5m, 2h, 3d, "
         "got 1700000000"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], start_time: 2026-01-02T00:00:00Z, "
         "end_time: 2026-01-01}", "sources[0].end_time",
         "end_time 2026-01-01T00:00:00.000Z is not after start_time 2026-01-02T00:00:00.000Z"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], poll_interval_s: 0}", "sources[0].poll_interval_s",
         "expected a number of seconds > 0 (at most a day), got 0"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], endpoint_url: localhost:4566}",
         "sources[0].endpoint_url",
         "expected an http:// or https:// URL such as http://127.0.0.1:4566, got 'localhost:4566'"),
        ("{type: cloudwatch_logs, log_group_names: [app/one], aws_access_key_id: x}", "sources[0].aws_access_key_id",
         "unknown key; allowed here: type, log_group_names, log_group_name_prefix, region, endpoint_url, "
         "start_time, end_time, poll_interval_s, lookback_s"),
    ],
)
def test_config_errors(source: str, location: str, reason: str) -> None:
    error = config_error(source)
    assert (error.location, error.reason) == (location, reason)
    assert error.line is not None


def test_config_times_and_defaults() -> None:
    text = FILTERS + (
        "sources:\n"
        "  - {type: cloudwatch_logs, log_group_names: [app/one], start_time: 2h, end_time: 2100-01-01T00:00:00Z}\n"
        "  - {type: cloudwatch_logs, log_group_name_prefix: app/t, start_time: '2026-12-06T13:00:00+01:00'}\n"
        "sinks: [{type: stdout}]\n"
    )
    before = time.time_ns() // 1_000_000
    config = load_config_text(text, ".")
    after = time.time_ns() // 1_000_000
    one, two = config.sources
    assert before - 7_200_000 <= one.start_ms <= after - 7_200_000
    assert one.end_ms == 4_102_444_800_000 and one.log_group == ONE and one.region is None
    assert (one.poll_interval_s, one.lookback_s) == (5.0, 300.0)
    assert two.start_ms == 1_796_558_400_000 and two.end_ms is None and two.log_group_name_prefix == "app/t"
    assert config.discovered_log_groups == {}
    with pytest.raises(ValueError, match="must be resolved"):
        split_source(two)


def test_discover_needs_a_cloudwatch_logs_source_and_true() -> None:
    text = FILTERS + "  - {discover: true}\n" + (
        "sources: [{type: stdin, log_group: app/one, timestamp: ingestion}]\nsinks: [{type: stdout}]\n")
    with pytest.raises(ConfigError) as info:
        load_config_text(text, ".")
    assert (info.value.location, info.value.line) == ("metric_filters[4]", 18)
    assert "there is none" in info.value.reason
    text = FILTERS + "  - {discover: false}\n" + (
        "sources: [{type: cloudwatch_logs, log_group_names: [app/one]}]\nsinks: [{type: stdout}]\n")
    with pytest.raises(ConfigError, match="discover: false discovers nothing"):
        load_config_text(text, ".")


def test_two_sources_of_one_log_group_are_refused() -> None:
    source = "{type: cloudwatch_logs, log_group_names: [app/one]}"
    text = FILTERS + f"sources:\n  - {source}\n  - {source}\nsinks: [{{type: stdout}}]\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, ".")
    assert info.value.location == "sources[1].log_group_names[0]"
    assert "already read by sources[0]" in info.value.reason


def test_positions_of_another_shape_are_refused() -> None:
    spec = CloudWatchLogsSpec(log_group_names=(ONE,), start_ms=0)
    for bad in ({"v": 2}, {"v": 1, "cursor": "x", "seen": []}, {"v": 1, "cursor": 5, "seen": [[1]]}):
        with pytest.raises(ValueError, match="^positions"):
            open_source(spec, None, bad)
