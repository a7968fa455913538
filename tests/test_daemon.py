"""``castlewatch run``, the daemon, as a real process: it follows a file while lines are
appended and the file is rotated, shuts down on SIGTERM flushing its open minutes, and
after a SIGKILL resumes from its checkpoint without losing or double-counting events.
The reference is always ``castlewatch replay`` of the same events.

Waits are bounded polls (at most ``WAIT_S`` each), never fixed long sleeps; every
process started is killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import fastavro
import pytest
from click.testing import CliRunner

from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.sinks import parse_dimensions

WAIT_S = 20.0
BASE = 1_709_629_200  # 2024-03-05T09:00:00Z, a minute start (epoch s)

CONFIG = """\
metric_filters:
  - filterName: errors
    logGroupName: app
    filterPattern: '{{ $.level = "ERROR" }}'
    metricTransformations: [{{metricName: Errors, metricNamespace: Daemon, metricValue: "1", unit: Count}}]
  - filterName: latency
    logGroupName: app
    filterPattern: '{{ $.latency >= 0 }}'
    metricTransformations: [{{metricName: Latency, metricNamespace: Daemon, metricValue: $.latency, unit: Milliseconds}}]
  - filterName: per-user
    logGroupName: app
    filterPattern: '{{ $.level = * }}'
    metricTransformations: [{{metricName: Requests, metricNamespace: Daemon, metricValue: "1", dimensions: {{User: $.user}}}}]
  - filterName: warnings
    logGroupName: app
    filterPattern: '{{ $.level = "WARN" }}'
    metricTransformations: [{{metricName: Warnings, metricNamespace: Daemon, metricValue: "1", defaultValue: 0}}]
sources:
  - type: file
    path: {log}
    log_group: app
    timestamp: {{field: $.t, format: epoch_s}}
sinks:
  - {{type: jsonl, path: {out}/datapoints.jsonl}}
  - {{type: csv, path: {out}/datapoints.csv}}
  - {{type: avro, path: {out}/datapoints.avro}}
allowed_lateness_s: {lateness}
"""


def write_config(path: Path, log: Path, out: Path, lateness: float = 30) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(log=log, out=out, lateness=lateness))
    return path


def events(start_s: int, n: int, seed: int, step: tuple[int, int] = (1, 9)) -> list[str]:
    """``n`` JSON lines in time order from ``start_s``, spread over several minutes."""
    rng = random.Random(seed)
    t, out = start_s, []
    for i in range(n):
        t += rng.randint(*step)
        level = rng.choice(["ERROR", "INFO", "INFO", "WARN", "DEBUG"])
        line = {"t": t, "level": level, "user": f"u{rng.randint(0, 3)}", "seq": f"{seed}-{i}"}
        if rng.random() < 0.8:
            line["latency"] = rng.randint(0, 500)
        out.append(json.dumps(line))
    return out


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


# ---- reading the results ----------------------------------------------------------------------


Totals = dict[tuple, tuple[float, int]]


def jsonl_totals(path: Path) -> Totals:
    """(namespace, metric, dimensions, unit, minute) -> (Sum, SampleCount) from a JSON Lines sink."""
    out: dict[tuple, list] = defaultdict(lambda: [0.0, 0])
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        dims = tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))
        key = (d["Namespace"], d["MetricName"], dims, d["Unit"], d["Timestamp"])
        out[key][0] += sum(v * c for v, c in zip(d["Values"], d["Counts"]))
        out[key][1] += int(sum(d["Counts"]))
    return {k: (s, c) for k, (s, c) in out.items()}


def jsonl_keys(path: Path) -> list[tuple]:
    keys = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        keys.append((d["Namespace"], d["MetricName"], json.dumps(d.get("Dimensions")), d["Timestamp"]))
    return keys


def csv_totals(path: Path) -> Totals:
    out: Totals = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            dims = tuple(sorted(parse_dimensions(row["Dimensions"]).items()))
            key = (row["Namespace"], row["MetricName"], dims, row["Unit"], row["Timestamp"])
            assert key not in out, f"datapoint written twice: {key}"
            out[key] = (float(row["Sum"]), int(row["SampleCount"]))
    return out


def avro_totals(path: Path) -> Totals:
    out: Totals = {}
    with open(path, "rb") as fh:
        for r in fastavro.reader(fh):
            stamp = r["Timestamp"]
            if not isinstance(stamp, dt.datetime):
                stamp = dt.datetime.fromtimestamp(stamp / 1000, dt.timezone.utc)
            key = (r["Namespace"], r["MetricName"], tuple(sorted(r["Dimensions"].items())), r["Unit"], stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
            assert key not in out, f"datapoint written twice: {key}"
            out[key] = (r["Sum"], r["SampleCount"])
    return out


def replay_totals(tmp: Path, lines: list[str], lateness: float = 30) -> tuple[Totals, dict]:
    """``castlewatch replay`` of ``lines`` (one file, in order): totals and its stats table."""
    d = tmp / "replay"
    d.mkdir()
    log = d / "all.log"
    append(log, lines)
    config = write_config(d / "castlewatch.yaml", log, d / "out", lateness)
    result = CliRunner().invoke(main, ["replay", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    totals = jsonl_totals(d / "out" / "datapoints.jsonl")
    assert csv_totals(d / "out" / "datapoints.csv") == totals
    assert avro_totals(d / "out" / "datapoints.avro") == totals
    return totals, {"output": result.stderr}


# ---- the daemon process ---------------------------------------------------------------------------


class Daemon:
    """One ``castlewatch run`` process."""

    def __init__(self, tmp: Path, config: Path, checkpoint: Path, name: str, interval: float = 0.2) -> None:
        self.checkpoint_path = checkpoint
        self.stderr_path = tmp / f"{name}.stderr"
        self.stdout_path = tmp / f"{name}.stdout"
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "castlewatch", "run",
                "--config", str(config),
                "--checkpoint", str(checkpoint),
                "--checkpoint-interval", str(interval),
            ],
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            cwd=tmp,
        )

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace") + self.stdout_path.read_text(errors="replace")

    def checkpoint(self) -> dict | None:
        try:
            return read_checkpoint(self.checkpoint_path)
        except FileNotFoundError:
            return None

    def wait_for(self, what: str, predicate: Callable[[dict], bool], timeout: float = WAIT_S) -> dict:
        """Poll the checkpoint until ``predicate(checkpoint)``; fail with the logs otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.checkpoint()
            if state is not None and predicate(state):
                return state
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; checkpoint {state}:\n{self.logs()}")
            time.sleep(0.05)

    def wait_started(self, timeout: float = WAIT_S) -> None:
        """Wait for the daemon's ``start`` record (its signal handlers are installed by then)."""
        deadline = time.monotonic() + timeout
        while b'"event": "start"' not in self.stderr_path.read_bytes():
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) before it started:\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for the daemon to start:\n{self.logs()}")
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
        self._out.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*args: Any, **kwargs: Any) -> Daemon:
        d = Daemon(*args, **kwargs)
        started.append(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            d.close()


def open_windows(state: dict) -> dict[tuple, tuple[float, int]]:
    """Open windows of a checkpoint: (namespace, metric, dims, unit, minute ISO) -> (Sum, SampleCount)."""
    out = {}
    for agg in state["aggregators"].values():
        for w in agg["windows"]:
            ns, metric, dims, unit = w["key"]
            minute = dt.datetime.fromtimestamp(w["minute"] // 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            out[(ns, metric, tuple(sorted(tuple(d) for d in dims)), unit, minute)] = (w["stats"][0], w["stats"][1])
    return out


# ---- follow, append, rotate, SIGTERM -------------------------------------------------------------


def test_follow_append_rotate_sigterm(tmp_path, daemons):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    # chunks far apart in event time, each over several minutes
    chunk1 = events(BASE, 40, seed=1)
    chunk2 = events(BASE + 1_800, 40, seed=2)
    chunk3a = events(BASE + 3_600, 30, seed=3)  # still in app.log when it is renamed
    chunk3b = events(BASE + 5_400, 30, seed=4)  # in the new app.log
    everything = chunk1 + chunk2 + chunk3a + chunk3b
    append(log, chunk1)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    daemon = daemons(tmp_path, config, tmp_path / "ck.json", "run")

    daemon.wait_events(len(chunk1))
    # appended while running, the last line in two writes (a partial line waits for its newline)
    append(log, chunk2[:-1])
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(chunk2[-1][:10])
    daemon.wait_events(len(chunk1) + len(chunk2) - 1)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(chunk2[-1][10:] + "\n")
    daemon.wait_events(len(chunk1) + len(chunk2))
    # rotation: lines not read yet stay in the renamed file; a new file takes the name
    append(log, chunk3a)
    os.rename(log, logs / "app.log.1")
    append(log, chunk3b)
    state = daemon.wait_events(len(everything))
    # give the last checkpoint a moment to include the final windows, then stop
    state = daemon.wait_for("the last minute open", lambda s: s["stats"]["events_read"] == len(everything) and open_windows(s))
    still_open = open_windows(state)

    assert daemon.stop(signal.SIGTERM) == 0, daemon.logs()
    assert "Traceback" not in daemon.logs()

    got = jsonl_totals(tmp_path / "out" / "datapoints.jsonl")
    reference, _ = replay_totals(tmp_path, everything)
    assert got == reference
    assert csv_totals(tmp_path / "out" / "datapoints.csv") == reference
    assert avro_totals(tmp_path / "out" / "datapoints.avro") == reference
    # the minutes still open at SIGTERM were flushed, with their contents
    assert still_open and all(got[k] == v for k, v in still_open.items())
    final = read_checkpoint(tmp_path / "ck.json")
    assert final["stats"]["events_read"] == len(everything)
    assert final["stats"]["late_events"] == 0 and final["stats"]["malformed"] == {}
    assert open_windows(final) == {}
    # structured logs (not a terminal): start and stop records
    records = [json.loads(line) for line in daemon.stderr_path.read_text().splitlines() if line.startswith("{")]
    assert [r["event"] for r in records][:1] == ["start"] and records[-1]["event"] == "stop"


def test_glob_picks_up_new_files_and_sigint(tmp_path, daemons):
    """A glob source: files created after the start are followed too; SIGINT is a
    graceful shutdown like SIGTERM."""
    logs = tmp_path / "logs"
    logs.mkdir()
    a = events(BASE, 30, seed=30)
    b = events(BASE + 1_800, 30, seed=31)
    config = write_config(tmp_path / "castlewatch.yaml", logs / "*.log", tmp_path / "out")
    d = daemons(tmp_path, config, tmp_path / "ck.json", "run")
    d.wait_for("the daemon to start", lambda s: True)
    append(logs / "a.log", a)
    d.wait_events(len(a))
    append(logs / "b.log", b)
    append(logs / "ignored.txt", events(BASE, 5, seed=99))
    d.wait_for("all events", lambda s: s["stats"]["events_read"] == len(a) + len(b))
    assert d.stop(signal.SIGINT) == 0, d.logs()
    reference, _ = replay_totals(tmp_path, a + b)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference


def test_copytruncate_rotation(tmp_path, daemons):
    """Rotation by copy and truncate (logrotate copytruncate): after the truncation the file
    is read again from its start."""
    log = tmp_path / "app.log"
    first = events(BASE, 40, seed=40)
    second = events(BASE + 1_800, 15, seed=41)  # shorter than what was there: a real truncation
    append(log, first)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    d = daemons(tmp_path, config, tmp_path / "ck.json", "run")
    d.wait_events(len(first))
    (tmp_path / "app.log.1").write_bytes(log.read_bytes())
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, second)
    d.wait_for("all events", lambda s: s["stats"]["events_read"] == len(first) + len(second))
    assert d.stop(signal.SIGTERM) == 0, d.logs()
    reference, _ = replay_totals(tmp_path, first + second)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference


# ---- the last line without a newline, and a writer that keeps its file across a rotation ----------


def test_final_line_without_newline_counts_as_in_replay(tmp_path, daemons):
    """A file whose last line has no newline: read once the file is quiet (here it has been
    for ten minutes), and at SIGTERM when it is not; a restart never reads it again, also
    when its newline comes later. The counts always equal a replay of the same file."""
    log = tmp_path / "app.log"
    lines = events(BASE, 30, seed=70)
    log.write_text("".join(line + "\n" for line in lines[:-1]) + lines[-1])
    os.utime(log, (time.time() - 600, time.time() - 600))
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    checkpoint = tmp_path / "ck.json"
    d = daemons(tmp_path, config, checkpoint, "quiet")
    d.wait_events(len(lines))  # quiet already: no need for a SIGTERM
    assert d.stop(signal.SIGTERM) == 0, d.logs()

    more = events(BASE + 600, 20, seed=71)
    with open(log, "a", encoding="utf-8") as fh:  # its newline comes, then lines and a partial one
        fh.write("\n" + "".join(line + "\n" for line in more[:-1]) + more[-1])
    d = daemons(tmp_path, config, checkpoint, "sigterm")
    d.wait_events(len(lines) + len(more) - 1)
    assert d.stop(signal.SIGTERM) == 0, d.logs()  # the last line, not quiet yet, is read at SIGTERM
    final = read_checkpoint(checkpoint)
    assert final["stats"]["events_read"] == len(lines) + len(more)
    reference, _ = replay_totals(tmp_path, lines + more)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference

    d = daemons(tmp_path, config, checkpoint, "again")  # nothing new: nothing read twice
    d.wait_started()  # the checkpoint is there already: wait for the daemon itself
    time.sleep(0.5)
    assert d.stop(signal.SIGTERM) == 0, d.logs()
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == len(lines) + len(more)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference


WRITER = """
import sys
path = sys.argv[1]
fh = open(path, "a", encoding="utf-8")
for command in sys.stdin:
    if command == "REOPEN\\n":  # what a logging library does on SIGHUP after logrotate
        fh.close()
        fh = open(path, "a", encoding="utf-8")
    else:
        fh.write(command)
        fh.flush()
    print("ok", flush=True)
"""


class Writer:
    """A process appending lines to one log file through a handle it keeps open until told
    to reopen the path, as applications do across logrotate's ``create`` rotation."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def write(self, lines: list[str]) -> None:
        for line in lines:
            self.send(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()


def test_rotation_with_a_plain_path_loses_no_line(tmp_path, daemons):
    """``path: app.log`` and ``mv app.log app.log.1; : > app.log`` while the writer keeps
    appending to the renamed file until it reopens: every line is counted, also with a
    SIGKILL and a restart while the writer is still on the renamed file."""
    log = tmp_path / "app.log"
    log.write_text("")
    parts = [events(BASE + 600 * i, 25, seed=80 + i) for i in range(5)]
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    checkpoint = tmp_path / "ck.json"
    writer = Writer(log)
    try:
        first = daemons(tmp_path, config, checkpoint, "first")
        writer.write(parts[0])
        first.wait_events(25)
        os.rename(log, tmp_path / "app.log.1")
        log.write_text("")  # ': > app.log'
        writer.write(parts[1])  # into the renamed file
        first.wait_events(50)
        first.stop(signal.SIGKILL)
        writer.write(parts[2])  # into the renamed file, while the daemon is down
        second = daemons(tmp_path, config, checkpoint, "second")
        second.wait_events(75)
        writer.write(parts[3])  # into the renamed file, after the restart
        second.wait_events(100)
        writer.send("REOPEN")
        writer.write(parts[4])  # into the new app.log
        second.wait_for("every line", lambda s: s["stats"]["events_read"] == 125)
        assert second.stop(signal.SIGTERM) == 0, second.logs()
    finally:
        writer.close()
    everything = [line for part in parts for line in part]
    reference, _ = replay_totals(tmp_path, everything)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference
    assert csv_totals(tmp_path / "out" / "datapoints.csv") == reference
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == 125


# ---- crash and restart ------------------------------------------------------------------------------


@pytest.mark.parametrize("in_flight", [False, True], ids=["settled", "in-flight"])
def test_sigkill_and_restart_neither_loses_nor_double_counts(tmp_path, daemons, in_flight):
    """Run, append half, wait until the checkpoint shows it, SIGKILL (``in-flight``: with
    more lines appended just before the kill, read or not), restart from the same
    checkpoint, append the rest, SIGTERM: totals equal an uninterrupted replay."""
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    log.write_text("")
    first_half = events(BASE, 60, seed=10)
    in_between = events(BASE + 600, 40, seed=11)
    second_half = events(BASE + 1_800, 60, seed=12)
    everything = first_half + in_between + second_half
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    checkpoint = tmp_path / "ck.json"

    first = daemons(tmp_path, config, checkpoint, "first")
    first.wait_for("the daemon to start", lambda s: True)
    append(log, first_half)
    first.wait_events(len(first_half))
    if in_flight:
        append(log, in_between)
        time.sleep(0.3)  # let it read some of them; the kill may land anywhere
    first.stop(signal.SIGKILL)
    assert first.proc.returncode == -signal.SIGKILL

    if not in_flight:
        append(log, in_between)  # written while the daemon is down
    second = daemons(tmp_path, config, checkpoint, "second")
    append(log, second_half)
    second.wait_events(len(everything))
    state = second.wait_for("the final checkpoint", lambda s: s["stats"]["events_read"] == len(everything))
    assert second.stop(signal.SIGTERM) == 0, second.logs()
    assert "Traceback" not in second.logs()

    reference, _ = replay_totals(tmp_path, everything)
    out = tmp_path / "out"
    got = jsonl_totals(out / "datapoints.jsonl")
    assert got == reference
    assert len(jsonl_keys(out / "datapoints.jsonl")) == len(set(jsonl_keys(out / "datapoints.jsonl")))
    assert csv_totals(out / "datapoints.csv") == reference
    assert avro_totals(out / "datapoints.avro") == reference
    final = read_checkpoint(checkpoint)
    assert final["stats"]["events_read"] == len(everything)  # no event evaluated twice
    assert final["stats"]["late_events"] == 0
    assert state["stats"]["events_read"] == len(everything)


def test_sigkill_twice_then_sigterm(tmp_path, daemons):
    """Two crashes in a row, each right after new lines: still exactly the replay totals."""
    log = tmp_path / "app.log"
    log.write_text("")
    parts = [events(BASE + 900 * i, 35, seed=20 + i) for i in range(4)]
    everything = [line for part in parts for line in part]
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    checkpoint = tmp_path / "ck.json"
    done = 0
    for i, part in enumerate(parts):
        d = daemons(tmp_path, config, checkpoint, f"run{i}")
        append(log, part)
        done += len(part)
        d.wait_events(done)
        if i < len(parts) - 1:
            d.stop(signal.SIGKILL)
        else:
            d.wait_for("the final checkpoint", lambda s: s["stats"]["events_read"] == len(everything))
            assert d.stop(signal.SIGTERM) == 0, d.logs()
    reference, _ = replay_totals(tmp_path, everything)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference
    assert csv_totals(tmp_path / "out" / "datapoints.csv") == reference
    assert avro_totals(tmp_path / "out" / "datapoints.avro") == reference
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == len(everything)


def test_sigkill_during_saves_of_a_large_state(tmp_path, daemons):
    """An hour of allowed lateness and a value metric with a distinct value per event: sixty
    minutes stay open with hundreds of values each, and a save every 20 ms always has
    something to write, so kills land during saves too. Killed three times at random
    moments while reading, then stopped: exactly replay's datapoints, line for line
    (Values, Counts and Sum to the last bit)."""
    rng = random.Random(60)
    lines = []
    t = BASE
    for i in range(30_000):
        t += rng.randint(0, 1)
        lines.append(json.dumps({"t": t, "level": rng.choice(["ERROR", "INFO"]), "user": f"u{i % 3}",
                                 "latency": rng.random() * 1000}))
    log = tmp_path / "app.log"
    append(log, lines)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=3600)
    checkpoint = tmp_path / "ck.json"
    for i in range(3):
        d = daemons(tmp_path, config, checkpoint, f"run{i}", interval=0.02)
        d.wait_for("the first checkpoint", lambda s: True)
        time.sleep(rng.uniform(0.05, 0.4))
        d.stop(signal.SIGKILL)
    d = daemons(tmp_path, config, checkpoint, "last", interval=0.02)
    d.wait_started()  # a killed run may have read every event already: its checkpoint says so
    d.wait_for("every event", lambda s: s["stats"]["events_read"] == len(lines))
    assert d.stop(signal.SIGTERM) == 0, d.logs()
    assert "Traceback" not in d.logs()
    replay = write_config(tmp_path / "replay.yaml", log, tmp_path / "replay", lateness=3600)
    result = CliRunner().invoke(main, ["replay", "--config", str(replay)])
    assert result.exit_code == 0, result.output
    got = sorted((tmp_path / "out" / "datapoints.jsonl").read_text().splitlines())
    assert got == sorted((tmp_path / "replay" / "datapoints.jsonl").read_text().splitlines())
    assert (tmp_path / "out" / "datapoints.avro").stat().st_size > 0
    assert max(len(json.loads(line)["Values"]) for line in got) == 150  # large datapoints: several datums
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == len(lines)


# ---- idle daemon: the watermark follows the wall clock, not faster ------------------------------


def test_idle_watermark_does_not_run_ahead_of_the_clock(tmp_path, daemons):
    """Events stamped with the time they are written: A late in a minute, then, a few
    seconds later, B in the same minute. While idle, the daemon moves its watermark with
    the wall clock so that minutes close; it must not move faster than the clock, or B
    (on time) would count as late where a replay of the same two events counts both."""
    log = tmp_path / "app.log"
    log.write_text("")
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    d = daemons(tmp_path, config, tmp_path / "ck.json", "run")
    d.wait_for("the daemon to start", lambda s: True)
    t_a = BASE + 50
    line_a = json.dumps({"t": t_a, "level": "ERROR", "user": "u1", "latency": 5})
    append(log, [line_a])
    written_a = time.monotonic()
    d.wait_events(1)
    # stay idle for 5 s of wall time (B then still belongs to A's minute: t_a + 5 < BASE + 60),
    # watching the watermark the daemon checkpoints
    ahead = []
    while (elapsed := time.monotonic() - written_a) < 5.0:
        state = d.checkpoint()
        if state is not None:
            for agg in state["aggregators"].values():
                # the watermark may not pass A's time plus the wall time since A (+1 s slack)
                if agg["watermark"] > (t_a + elapsed + 1.0) * 1000:
                    ahead.append((round(elapsed, 2), agg["watermark"] / 1000 - t_a))
        time.sleep(0.1)
    t_b = t_a + int(time.monotonic() - written_a)
    assert t_b < BASE + 60
    line_b = json.dumps({"t": t_b, "level": "ERROR", "user": "u1", "latency": 7})
    append(log, [line_b])
    state = d.wait_events(2)
    d.wait_for("the final checkpoint", lambda s: s["stats"]["events_read"] == 2)
    assert d.stop(signal.SIGTERM) == 0, d.logs()

    final = read_checkpoint(tmp_path / "ck.json")
    reference, _ = replay_totals(tmp_path, [line_a, line_b], lateness=0)
    got = jsonl_totals(tmp_path / "out" / "datapoints.jsonl")
    assert (got, final["stats"]["late_events"]) == (reference, 0), (
        f"watermark ahead of the clock (elapsed s, watermark - t_a s): {ahead}"
    )
    assert ahead == [], f"watermark ahead of the clock (elapsed s, watermark - t_a s): {ahead}"


class FastClock:
    """The runner's ``time`` with a monotonic clock running ``speed`` times faster than the
    real one (from the moment it is made): its idle watermarks move a minute in a second."""

    def __init__(self, speed: float) -> None:
        self.speed, self.start = speed, time.monotonic()

    def monotonic(self) -> float:
        return self.start + (time.monotonic() - self.start) * self.speed

    def time(self) -> float:
        return time.time()


def test_a_late_datapoint_of_an_idle_source_is_published_while_idle(tmp_path, monkeypatch):
    """Every minute closed, then a late event, then quiet: its late datapoints are published
    once the idle source's watermark, moving with the wall clock, enters a new minute (they
    waited for the next event or the stop). The runner's clock runs 60 times faster so that
    a minute of quiet takes a second."""
    from castlewatch.engine import runner
    from castlewatch.engine.runner import Engine

    log = tmp_path / "app.log"
    on_time = [json.dumps({"t": BASE + 10, "level": "ERROR", "user": "u1"}),
               json.dumps({"t": BASE + 58, "level": "ERROR", "user": "u1"})]
    append(log, on_time)
    late = json.dumps({"t": BASE + 20, "level": "ERROR", "user": "u2"})
    config = _load(write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=1))
    monkeypatch.setattr(runner, "time", FastClock(60.0))

    async def main() -> tuple[int, int]:
        engine = Engine(config, checkpoint=tmp_path / "ck.json")
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=0.1))
        deadline = time.monotonic() + WAIT_S
        (aggregator,) = engine.aggregators.values()
        while engine.stats.events_read < 2 or aggregator.windows:  # the minute closes while idle
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        written = engine.stats.datapoints_written
        append(log, [late])
        while engine.stats.datapoints_written == written:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        published = engine.stats.datapoints_written - written
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
        return published, engine.stats.late_events

    published, late_events = asyncio.run(main())
    # Errors, Requests{User=u2} and Warnings (its default value 0): late, each a datapoint of its own
    assert (published, late_events) == (3, 3)
    reference, _ = replay_totals(tmp_path, [on_time[0], late, on_time[1]], lateness=1)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference


# ---- robustness: a source that raises, malformed counts across a crash, stdin, checkpoints --------


def _load(config: Path):
    from castlewatch.engine.config import load_config

    return load_config(config)


def _break_source_at(monkeypatch: pytest.MonkeyPatch, marker: str) -> None:
    """Make the lines parser raise (a bug) when it meets a line containing ``marker``."""
    from castlewatch.engine import formats

    real = formats.StreamParser._lines

    def lines(self, lines, base, end):
        if any(marker.encode() in line for line in lines):
            raise RuntimeError("bug in a source")
        return real(self, lines, base, end)

    monkeypatch.setattr(formats.StreamParser, "_lines", lines)
    monkeypatch.setattr(formats.StreamParser, "_plain_chunk", lambda self, buf, base: False)  # every line via _lines


def test_a_source_that_raises_stops_the_run_and_the_error_propagates(tmp_path, monkeypatch):
    """Not a clean end: the run stops as on SIGTERM (open minutes written, a last
    checkpoint) and raises the source's exception."""
    import asyncio

    from castlewatch.engine.runner import Engine

    log = tmp_path / "app.log"
    before = events(BASE, 30, seed=50)
    append(log, before)
    config = _load(write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out"))
    _break_source_at(monkeypatch, "BOOM")
    checkpoint = tmp_path / "ck.json"

    async def main() -> None:
        engine = Engine(config, checkpoint=checkpoint)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=0.1))
        deadline = time.monotonic() + WAIT_S
        while engine.stats.events_read < len(before):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        append(log, ["BOOM"])
        await asyncio.wait_for(task, WAIT_S)

    with pytest.raises(RuntimeError, match="bug in a source") as raised:
        asyncio.run(main())
    assert any("source file:" in note and "stopped" in note for note in raised.value.__notes__)
    reference, _ = replay_totals(tmp_path, before)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference  # every minute written
    state = read_checkpoint(checkpoint)
    assert state["stats"]["events_read"] == len(before) and open_windows(state) == {}


def test_a_source_that_raises_fails_replay_and_run_commands(tmp_path, monkeypatch):
    """Exit 1 with one line naming the exception and the source, no traceback; ``run``
    names the checkpoint that holds the last good state."""
    log = tmp_path / "app.log"
    append(log, events(BASE, 5, seed=51) + ["BOOM"])
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    _break_source_at(monkeypatch, "BOOM")
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"Error: the run stopped on a castlewatch bug: RuntimeError: bug in a source "
        f"(raised while replaying source file:{log})"
    ]
    checkpoint = tmp_path / "ck.json"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 1, result.output
    line = result.stderr.splitlines()[-1]
    assert line.startswith("Error: the run stopped on a castlewatch bug: RuntimeError: bug in a source"), result.stderr
    assert f"source file:{log}; the run was stopped" in line and line.endswith(
        f"the checkpoint {checkpoint} holds the last good state"
    )
    assert "Traceback" not in result.stderr
    # written at the (graceful) stop; the lines before BOOM were in the chunk that raised
    assert read_checkpoint(checkpoint)["stats"]["events_read"] == 0


def test_malformed_counts_after_a_crash_equal_a_replay(tmp_path):
    """A checkpoint's malformed counts are those of the input before its positions: after a
    crash right after a checkpoint, the restarted run counts the rest once."""
    import asyncio

    from castlewatch.engine.runner import BATCH_EVENTS, Engine

    log = tmp_path / "app.log"
    lines = events(BASE, BATCH_EVENTS * 5 // 2, seed=52)
    with open(log, "wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line.encode() + b"\n")
            if i % 250 == 100:
                fh.write(b"\xff not UTF-8\n")
    config = _load(write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out"))
    checkpoint = tmp_path / "ck.json"

    async def crash_after_the_first_batch() -> dict:
        engine = Engine(config, checkpoint=checkpoint)
        try:
            async for batch in engine.sources[0].batches(follow=True, stop=asyncio.Event()):
                engine.process(batch)
                await engine.save_checkpoint()
                return dict(engine.stats.malformed)  # "kill -9": no other checkpoint
            raise AssertionError("no batch")
        finally:
            for sink in engine.sinks:  # (the files a killed process leaves; the restart truncates them)
                sink.close()

    async def restart() -> dict:
        engine = Engine(config, checkpoint=checkpoint)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=0.1))
        deadline = time.monotonic() + WAIT_S
        while engine.stats.events_read < len(lines):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        stop.set()
        stats = await asyncio.wait_for(task, WAIT_S)
        return dict(stats.malformed)

    first = asyncio.run(crash_after_the_first_batch())
    # those within the first batch's events only (one after event i when i % 250 == 100)
    assert first == {"invalid_utf8": sum(i % 250 == 100 for i in range(BATCH_EVENTS - 1))}
    assert read_checkpoint(checkpoint)["stats"]["malformed"] == first
    assert asyncio.run(restart()) == {"invalid_utf8": sum(i % 250 == 100 for i in range(len(lines)))}


STDIN_CONFIG = """\
metric_filters:
  - {filterName: all, logGroupName: g, filterPattern: "", metricTransformations: [{metricName: All, metricNamespace: T, metricValue: "1"}]}
sources: [{type: stdin, log_group: g, timestamp: {field: $1, format: epoch_s}}]
sinks: [{type: jsonl, path: out/dp.jsonl}]
"""


def test_sigterm_with_an_idle_stdin_pipe(tmp_path):
    """The stdin reader blocked on an idle pipe must not kill the interpreter at exit
    (it used to: "Fatal Python error: _enter_buffered_busy", exit 134)."""
    (tmp_path / "c.yaml").write_text(STDIN_CONFIG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "castlewatch", "run", "--config", "c.yaml", "--checkpoint", "ck.json",
         "--checkpoint-interval", "0.1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    try:
        proc.stdin.write(b"1700000000 a\n")
        proc.stdin.flush()
        deadline = time.monotonic() + WAIT_S
        while True:  # the line was read (the checkpoint says so); the pipe stays open, idle
            try:
                if read_checkpoint(tmp_path / "ck.json")["stats"]["events_read"] == 1:
                    break
            except (FileNotFoundError, ValueError):
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
    assert proc.returncode == 0, err.decode()
    assert b"Fatal Python error" not in err and b"Traceback" not in err
    assert len((tmp_path / "out" / "dp.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("command", ["run", "replay"])
def test_closed_stdin_is_a_clear_error(tmp_path, command):
    (tmp_path / "c.yaml").write_text(STDIN_CONFIG)
    args = [sys.executable, "-m", "castlewatch", command, "--config", "c.yaml"]
    proc = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" <&-', "sh", *args], capture_output=True, timeout=60, cwd=tmp_path
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.startswith("Error: a stdin source needs a standard input") and "Traceback" not in err


@pytest.mark.parametrize(
    "checkpoint, fragment",
    [
        ("[]", "not a castlewatch checkpoint"),
        ('{"version": 1, "sinks": [null, null, null]}', "it has no 'stats'"),
        ('{"version": 1, "sinks": [null, null, null], "stats": {"events_read": -1}}', "stats['events_read'] is not a count"),
        ('{"version": 1, "sinks": [null, null, null], "stats": {}, "aggregators": [] }', "'aggregators' is not a JSON object"),
        ('{"version": 1, "sinks": [null, null, null], "stats": {}, "aggregators": {"SOURCE": {"windows": []}}}',
         "KeyError: 'watermarks'"),
        ('{"version": 1, "sinks": [null, null, null], "stats": {}, "sources": {"SOURCE": {"v": 1, "files": 3}}}',
         "positions must have a 'files' mapping"),
        ('{"version": 1, "sinks": [{"size": "x"}, null, null], "stats": {}}', "sinks[0]"),
    ],
    ids=["list", "no-stats", "negative-count", "aggregators-list", "no-watermarks", "bad-positions", "bad-sink"],
)
def test_checkpoint_of_the_wrong_shape_is_a_clear_error(tmp_path, checkpoint, fragment):
    log = tmp_path / "app.log"
    append(log, events(BASE, 3, seed=53))
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    path = tmp_path / "ck.json"
    path.write_text(checkpoint.replace("SOURCE", f"file:{log}"))
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--checkpoint", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: checkpoint {path}") and fragment in result.output, result.output
    assert not isinstance(result.exception, (KeyError, AttributeError, TypeError))


def test_unwritable_checkpoint_location_fails_at_startup(tmp_path):
    from castlewatch.engine.runner import CheckpointError, Engine

    log = tmp_path / "app.log"
    append(log, events(BASE, 3, seed=54))
    config_path = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    config = _load(config_path)
    with pytest.raises(CheckpointError, match="cannot write the checkpoint .*does not exist"):
        Engine(config, checkpoint=tmp_path / "no-such-dir" / "ck.json")
    with pytest.raises(CheckpointError, match="cannot write the checkpoint"):
        Engine(config, checkpoint=Path("/proc/castlewatch-ck.json"))  # a filesystem that takes no files
    result = CliRunner().invoke(
        main, ["run", "--config", str(config_path), "--checkpoint", "/proc/castlewatch-ck.json"]
    )
    assert result.exit_code == 2 and result.output.startswith("Error: cannot write the checkpoint"), result.output


def test_sources_that_read_nothing_are_named(tmp_path):
    """A glob that matches no file: replay exits 66 naming it, before writing anything; a
    directory given as the path: a configuration error, not a silent empty run."""
    config = write_config(tmp_path / "castlewatch.yaml", tmp_path / "logs" / "*.log", tmp_path / "out")
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 66, result.output
    assert f"Error: source file:{tmp_path / 'logs' / '*.log'}: no file matches the glob" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []  # no sink was opened
    (tmp_path / "logs").mkdir()
    config = write_config(tmp_path / "castlewatch.yaml", tmp_path / "logs", tmp_path / "out")
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 2 and "is a directory, not a file" in result.stderr, result.output
