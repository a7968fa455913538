"""The engine under faults (issue 8 §2-§3): an event whose evaluation raises costs that
event only, in ``replay`` and in ``run`` and across a restart; a failure while the
daemon is behind (its source queue full) stops it at once instead of deadlocking; a
full disk (sink or checkpoint) is one line naming the file and exit status 74, and
the output after a restart is exactly that of an uninterrupted run.

Faults are real where the system gives them: ``/dev/full`` (ENOSPC) as a sink,
``RLIMIT_FSIZE`` in the daemon's process (EFBIG). A castlewatch bug on one event is
injected (``poison``): a metric filter's compiled matcher raises on a marked event.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.engine.runner import Engine, OutputError
from castlewatch.grammar.compiler import FilterPattern

from test_daemon import (  # noqa: I001 - the daemon tests' helpers (tests/ is on sys.path)
    BASE,
    WAIT_S,
    append,
    avro_totals,
    csv_totals,
    events,
    jsonl_keys,
    jsonl_totals,
    replay_totals,
    write_config,
)
from castlewatch.engine.config import load_config

LATENCY = "{ $.latency >= 0 }"  # the 'latency' filter of test_daemon.CONFIG
POISON = '"note": "POISON"'


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the matcher of metric filter 'latency' raises on an event holding
    ``POISON``, as any castlewatch bug met on one event would (today's example: int() of
    an integer over 4,300 digits). 'errors', evaluated before it, matches that event."""
    real = FilterPattern.match_document

    def match_document(self, doc, message):
        if self.filter_pattern == LATENCY and "POISON" in message:
            raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")
        return real(self, doc, message)

    monkeypatch.setattr(FilterPattern, "match_document", match_document)


def poisoned(line: str) -> str:
    """``line`` (a JSON object) marked to raise; it matches 'errors' and 'latency'."""
    doc = json.loads(line)
    doc.update(level="ERROR", latency=7)
    return json.dumps(doc)[:-1] + ", " + POISON + "}"


def offset_of(path: Path, line: str) -> int:
    return path.read_bytes().index(line.encode())


def evaluation_errors(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "evaluation_error" in r.getMessage()]


# ---- one event's evaluation error -----------------------------------------------------------------


def test_replay_skips_an_event_whose_evaluation_raises(tmp_path, poison, caplog):
    """The event is counted (malformed: evaluation_error), reported with the filter and its
    byte offset, and contributes nothing, not even the 'errors' match found before the
    failure; everything else equals a replay without it."""
    lines = events(BASE, 80, seed=60)
    bad = poisoned(lines[40])
    log = tmp_path / "app.log"
    append(log, lines[:40] + [bad] + lines[40:])
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")
    with caplog.at_level(logging.ERROR, logger="castlewatch.engine"):
        result = CliRunner().invoke(main, ["replay", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "malformed, skipped: evaluation_error" in result.output
    assert evaluation_errors(caplog.records) == [
        f"castlewatch: skipped the event at {log} byte {offset_of(log, bad)}, counted as malformed: "
        "evaluation_error (a castlewatch bug): metric filter 'latency' raised ValueError: Exceeds the limit "
        "(4300 digits) for integer string conversion"
    ]
    reference, _ = replay_totals(tmp_path, lines)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference
    # the same matches as without the event (the 'errors' match it made first is taken back)
    stats = asyncio.run(Engine(load_config(config)).replay())
    clean = asyncio.run(Engine(load_config(tmp_path / "replay" / "castlewatch.yaml")).replay())
    assert stats.matched == clean.matched and stats.not_json == clean.not_json
    assert (stats.events_read, stats.malformed) == (clean.events_read + 1, {"evaluation_error": 1})


def test_evaluation_errors_are_reported_up_to_a_limit(tmp_path, poison, caplog):
    from castlewatch.engine.runner import REPORTED_EVALUATION_ERRORS

    lines = events(BASE, 40, seed=61)
    log = tmp_path / "app.log"
    append(log, [poisoned(line) for line in lines[:25]] + lines[25:])
    engine = Engine(load_config(write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out")))
    with caplog.at_level(logging.ERROR, logger="castlewatch.engine"):
        stats = asyncio.run(engine.replay())
    assert stats.malformed == {"evaluation_error": 25} and stats.events_read == 40
    reports = evaluation_errors(caplog.records)
    assert len(reports) == REPORTED_EVALUATION_ERRORS
    assert "(a castlewatch bug; later ones are counted, not reported)" in reports[-1]
    assert "later ones" not in reports[-2]
    assert [r.split(" byte ")[1].split(",")[0] for r in reports] == [
        str(offset_of(log, poisoned(line))) for line in lines[:REPORTED_EVALUATION_ERRORS]
    ]


@pytest.mark.parametrize("fmt", ["cloudwatch_events", "cloudtrail_archive"])
def test_evaluation_error_in_a_json_source_is_located(tmp_path, fmt, caplog):
    """JSON formats: the report points where reading resumes to give the event first."""
    records = [{"eventTime": "2024-03-05T09:00:%02dZ" % i, "eventName": "Poison" if i == 3 else "x"} for i in range(5)]
    if fmt == "cloudwatch_events":
        doc = {"events": [{"timestamp": 1709629200000 + i, "message": json.dumps(r)} for i, r in enumerate(records)]}
    else:
        doc = {"Records": records}
    log = tmp_path / "in.json"
    log.write_text("\n" + json.dumps(doc, indent=1) + "\n")
    (tmp_path / "c.yaml").write_text(
        "metric_filters:\n"
        "  - {filterName: names, logGroupName: g, filterPattern: '{ $.eventName = * }',"
        " metricTransformations: [{metricName: N, metricNamespace: T, metricValue: '1'}]}\n"
        f"sources: [{{type: file, path: {log}, log_group: g, format: {fmt}}}]\n"
        "sinks: [{type: jsonl, path: out.jsonl}]\n"
    )
    engine = Engine(load_config(tmp_path / "c.yaml"))
    pattern = engine.evaluators[f"file:{log}"].filters[0].pattern
    real = pattern._doc_match  # fault injection, this filter only

    def raising(doc, message):
        if "Poison" in message:
            raise RecursionError("maximum recursion depth exceeded")
        return real(doc, message)

    pattern._doc_match = raising
    with caplog.at_level(logging.ERROR, logger="castlewatch.engine"):
        stats = asyncio.run(engine.replay())
    assert stats.malformed == {"evaluation_error": 1} and stats.matched == {"names": 4}
    assert evaluation_errors(caplog.records)[0].split(", counted as")[0] == (
        f"castlewatch: skipped the event at {log} byte 1 (after 3 items of the JSON value there)"
    )


def test_run_skips_an_event_whose_evaluation_raises_and_a_restart_goes_past_it(tmp_path, poison):
    """Not a poison pill: the daemon goes on after the event, checkpoints past it, and a
    restart never evaluates it again; the output equals a replay without it."""
    lines = events(BASE, 120, seed=62)
    bad = poisoned(lines[50])
    log = tmp_path / "app.log"
    append(log, lines[:50] + [bad] + lines[50:80])
    config = load_config(write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out"))
    checkpoint = tmp_path / "ck.json"

    async def follow(until: int, more: list[str]) -> dict:
        engine = Engine(config, checkpoint=checkpoint)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=0.05))
        append(log, more)
        deadline = time.monotonic() + WAIT_S
        while engine.stats.events_read < until:
            assert time.monotonic() < deadline and not task.done(), engine.stats
            await asyncio.sleep(0.01)
        stop.set()
        stats = await asyncio.wait_for(task, WAIT_S)
        return {"malformed": dict(stats.malformed), "events_read": stats.events_read}

    assert asyncio.run(follow(81, [])) == {"malformed": {"evaluation_error": 1}, "events_read": 81}
    assert read_checkpoint(checkpoint)["stats"]["malformed"] == {"evaluation_error": 1}
    assert asyncio.run(follow(121, lines[80:])) == {"malformed": {"evaluation_error": 1}, "events_read": 121}
    reference, _ = replay_totals(tmp_path, lines)
    assert jsonl_totals(tmp_path / "out" / "datapoints.jsonl") == reference


# ---- the daemon behind, and a failure -------------------------------------------------------------


def backlog(path: Path, n: int) -> None:
    """``n`` JSON lines of one length, one second apart, 51 users: many batches, and
    minutes closing (datapoints written) from the first batches on."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write('{"t": %d, "level": "ERROR", "user": "u%02d", "latency": %03d}\n' % (BASE + i, i % 51, i % 997))


def test_a_sink_failing_while_the_queue_is_full_stops_the_run(tmp_path, monkeypatch):
    """The deadlock of issue 8: the sink (here /dev/full: ENOSPC) fails while the source
    task waits on a full queue. The run must raise at once, its sources stopped. (Batches
    of 4,096 events: with 16,384 the first batch's datapoints alone fill the sink's buffer,
    and it fails before the queue is full.)"""
    import castlewatch.engine.runner as runner

    monkeypatch.setattr(runner, "BATCH_EVENTS", 4096)
    log = tmp_path / "app.log"
    backlog(log, 60_000)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    text = config.read_text().replace(str(tmp_path / "out" / "datapoints.jsonl"), "/dev/full")
    config.write_text(text)
    loaded = load_config(config)
    queue_size = 2
    line_bytes = len(log.read_bytes().split(b"\n", 1)[0]) + 1

    async def main() -> tuple[Engine, OutputError]:
        engine = Engine(loaded, checkpoint=tmp_path / "ck.json")
        stop = asyncio.Event()
        with pytest.raises(OutputError) as raised:
            await asyncio.wait_for(engine.run(stop, checkpoint_interval_s=60, queue_size=queue_size), WAIT_S)
        assert stop.is_set()
        return engine, raised.value

    started = time.monotonic()
    engine, err = asyncio.run(main())
    assert time.monotonic() - started < WAIT_S
    assert (err.what, err.filename, err.no_space) == ("sink", "/dev/full", True)
    assert str(err) == "cannot write the sink /dev/full: No space left on device (ENOSPC)"
    # it was behind: the source had read a full queue of batches (and one more) past the last evaluated
    read = engine.sources[0].positions()["files"]
    evaluated = engine.positions.get(engine.sources[0].name, {"files": {}})["files"]
    (key,) = read
    ahead = read[key]["offset"] - evaluated.get(key, {"offset": 0})["offset"]
    assert ahead >= (queue_size + 1) * 1000 * line_bytes
    assert not (tmp_path / "ck.json").exists()  # no checkpoint of a half-applied state


def test_the_daemon_with_a_full_sink_disk_exits_74_in_one_line(tmp_path):
    """As a process: behind on a backlog, its sink on a full disk: exit status 74 within
    seconds, one line naming the file, no traceback."""
    log = tmp_path / "app.log"
    backlog(log, 60_000)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    config.write_text(config.read_text().replace(str(tmp_path / "out" / "datapoints.csv"), "/dev/full"))
    proc = subprocess.run(
        [sys.executable, "-m", "castlewatch", "run", "--config", str(config), "--checkpoint", str(tmp_path / "ck.json")],
        capture_output=True, timeout=WAIT_S * 3, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 74, err
    lines = [line for line in err.splitlines() if not line.startswith("{")]  # (the JSON run log)
    assert lines == [
        "Error: cannot write the sink /dev/full: No space left on device (ENOSPC); the run stopped; once it can "
        f"be written, run again: it resumes from the checkpoint {tmp_path / 'ck.json'}, exactly"
    ]


def test_replay_onto_a_full_disk_exits_74(tmp_path):
    log = tmp_path / "app.log"
    backlog(log, 2_000)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    config.write_text(config.read_text().replace(str(tmp_path / "out" / "datapoints.avro"), "/dev/full"))
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 74, result.output
    assert result.stderr == (
        "Error: cannot write the sink /dev/full: No space left on device (ENOSPC); the run stopped; "
        "run the replay again once the file can be written\n"
    )


def test_sigterm_while_behind_stops_promptly_and_a_restart_is_exact(tmp_path):
    """SIGTERM while a backlog fills the queue: a graceful stop within seconds (the queued
    batches evaluated, a checkpoint), then a restart finishes with the exact output."""
    log = tmp_path / "app.log"
    # a backlog of many batches of 16,384 events (the engine's), far more than a checkpoint interval reads
    lines = [json.dumps({"t": BASE + i // 20, "level": "ERROR", "user": f"u{i % 7}", "latency": i % 500})
             for i in range(300_000)]
    append(log, lines)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    checkpoint = tmp_path / "ck.json"
    proc = _run_daemon(tmp_path, config, checkpoint, "behind")
    try:
        deadline = time.monotonic() + WAIT_S
        while not checkpoint.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "behind.stderr").read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert _wait_exit(proc, WAIT_S) == 0, (tmp_path / "behind.stderr").read_text()
        assert time.monotonic() - started < WAIT_S / 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert read_checkpoint(checkpoint)["stats"]["events_read"] < len(lines)  # it was behind
    _finish_with_a_restart(tmp_path, config, checkpoint, lines, once=False)


def _limit_file_size(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return preexec


def _run_daemon(tmp_path: Path, config: Path, checkpoint: Path, name: str, preexec=None) -> subprocess.Popen:
    with open(tmp_path / f"{name}.stdout", "wb") as out, open(tmp_path / f"{name}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "castlewatch", "run", "--config", str(config), "--checkpoint", str(checkpoint),
             "--checkpoint-interval", "0.1"],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp_path, preexec_fn=preexec,
        )


def _wait_exit(proc: subprocess.Popen, timeout: float = WAIT_S * 3) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _finish_with_a_restart(tmp_path: Path, config: Path, checkpoint: Path, lines: list[str], once: bool = True) -> None:
    """A restart (without any limit) reads on to the end; SIGTERM; its output is exactly
    the uninterrupted replay's: the same totals, and (``once``) every datapoint once, in
    all three sinks. (A SIGTERM before the restart wrote the minutes open then: their
    rest comes in datapoints of their own, which CloudWatch adds up.)"""
    proc = _run_daemon(tmp_path, config, checkpoint, "restart")
    try:
        deadline = time.monotonic() + WAIT_S * 3
        while True:
            try:
                if read_checkpoint(checkpoint)["stats"]["events_read"] == len(lines):
                    break
            except (FileNotFoundError, ValueError, KeyError):
                pass
            assert proc.poll() is None, (tmp_path / "restart.stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert _wait_exit(proc) == 0, (tmp_path / "restart.stderr").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reference, _ = replay_totals(tmp_path, lines)
    out = tmp_path / "out"
    assert jsonl_totals(out / "datapoints.jsonl") == reference
    if not once:
        return
    keys = jsonl_keys(out / "datapoints.jsonl")
    assert len(keys) == len(set(keys))
    assert csv_totals(out / "datapoints.csv") == reference
    assert avro_totals(out / "datapoints.avro") == reference


def test_sinks_over_the_file_size_limit_then_a_restart_is_exact(tmp_path):
    """The sinks reach RLIMIT_FSIZE (EFBIG) mid-run: exit 74 naming the sink's file; a
    restart once the limit is gone gives exactly the output of an uninterrupted run."""
    log = tmp_path / "app.log"
    lines = events(BASE, 3000, seed=63)
    append(log, lines)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=0)
    checkpoint = tmp_path / "ck.json"
    assert log.stat().st_size < 400_000
    proc = _run_daemon(tmp_path, config, checkpoint, "limited", _limit_file_size(24_000))
    assert _wait_exit(proc) == 74, (tmp_path / "limited.stderr").read_text()
    err = [line for line in (tmp_path / "limited.stderr").read_text().splitlines() if not line.startswith("{")]
    assert len(err) == 1 and err[0].startswith(f"Error: cannot write the sink {tmp_path / 'out'}/datapoints."), err
    assert ": File too large (EFBIG); the run stopped;" in err[0]
    _finish_with_a_restart(tmp_path, config, checkpoint, lines)


def test_a_checkpoint_over_the_file_size_limit_then_a_restart_is_exact(tmp_path):
    """The checkpoint cannot be written (EFBIG; it holds 900 open minutes of long dimension
    values, the sinks nothing yet): exit 74 naming the checkpoint, the previous
    checkpoint left whole; a restart without the limit gives the exact output."""
    import random

    rng = random.Random(64)
    users = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(48)) for _ in range(900)]
    lines = [json.dumps({"t": BASE + i // 10, "level": "INFO", "user": users[i % 900]}) for i in range(2700)]
    log = tmp_path / "app.log"
    append(log, lines)
    config = write_config(tmp_path / "castlewatch.yaml", log, tmp_path / "out", lateness=3600)
    checkpoint = tmp_path / "ck.json"
    proc = _run_daemon(tmp_path, config, checkpoint, "limited", _limit_file_size(30_000))
    assert _wait_exit(proc) == 74, (tmp_path / "limited.stderr").read_text()
    err = [line for line in (tmp_path / "limited.stderr").read_text().splitlines() if not line.startswith("{")]
    assert err == [
        f"Error: cannot write the checkpoint {checkpoint}: File too large (EFBIG); the run stopped; once it can be "
        f"written, run again: it resumes from the checkpoint {checkpoint}, exactly"
    ]
    assert not os.path.exists(f"{checkpoint}.tmp")
    _finish_with_a_restart(tmp_path, config, checkpoint, lines)
