"""``castlewatch replay`` and ``run`` with a ``cloudwatch`` sink against a real moto server:
what GetMetricStatistics reads back equals the JSON Lines sink of the same run, datapoint
for datapoint (Sum, SampleCount, Minimum, Maximum per minute), over each wire protocol;
an outage loses nothing (``run`` buffers, spills and catches up; ``replay`` fails in one
line naming the file of what it could not publish); ``kill -9`` while a request is in
flight, then a restart, gives the same totals in CloudWatch as an uninterrupted run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import botocore.session
import pytest
from aws_emulator import Fault, FaultProxy
from click.testing import CliRunner
from cloudwatch_checks import cloudwatch_stats, jsonl_stats, recent_events, requests_stats, some_series, write_config

from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.engine.config import load_config
from castlewatch.engine.runner import Engine
from castlewatch.sinks import SinkError

WAIT_S = 30.0


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def setup(tmp_path: Path, url: str, lines: list[str], **kw) -> Path:
    log = tmp_path / "app.log"
    log.write_text("".join(line + "\n" for line in lines))
    return write_config(tmp_path, log, url, **kw)


@pytest.mark.parametrize("protocol", ["json", "query", "smithy-rpc-v2-cbor"])
def test_replay_publishes_what_the_jsonl_sink_holds(moto, tmp_path, protocol, caplog):
    config = setup(tmp_path, moto, recent_events(1500, seed=1), extra=f"protocol: {protocol}")
    with caplog.at_level(logging.WARNING, logger="castlewatch.sinks.cloudwatch"):
        result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "takes datapoints of the last two weeks only" in caplog.text and "add a file sink" in caplog.text
    want = jsonl_stats(tmp_path / "out" / "datapoints.jsonl", prefix="cw/")
    assert len(want) > 50
    assert cloudwatch_stats(moto, want) == want
    published = count_lines(tmp_path / "out" / "datapoints.jsonl")
    row = next(line for line in result.stderr.splitlines() if "datums published to CloudWatch" in line)
    assert row.replace("│", " ").split()[-1] == str(published)
    assert not (tmp_path / ".castlewatch-spool").exists()  # nothing left behind


def test_replay_that_cannot_publish_fails_in_one_line_naming_the_file(moto, tmp_path):
    config = setup(tmp_path, "http://proxy", recent_events(600, seed=2), extra="timeout_s: 1, replay_timeout_s: 1")
    with FaultProxy(moto) as proxy:
        config.write_text(config.read_text().replace("http://proxy", proxy.url))
        proxy.inject("PutMetricData", *[Fault("error", status=503)] * 10_000)
        result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 69, result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1
    want = jsonl_stats(tmp_path / "out" / "datapoints.jsonl", prefix="cw/")
    datums = count_lines(tmp_path / "out" / "datapoints.jsonl")
    assert "did not accept them (503" in error[0]
    assert f"{datums} datums) were not published; they are in " in error[0]
    kept = Path(error[0].split("they are in ")[1].split(",")[0])
    assert kept.parent == tmp_path / ".castlewatch-spool"
    assert "datums not yet published" in result.stderr  # the summary is printed too
    requests = [json.loads(line) for line in kept.read_text().splitlines()]
    assert requests_stats(requests) == want
    # the file is what it says: PutMetricData requests, one per line
    cw = botocore.session.get_session().create_client("cloudwatch", region_name="us-east-1", endpoint_url=moto)
    for request in requests:
        cw.put_metric_data(**request)
    cw.close()
    assert cloudwatch_stats(moto, want) == want


def test_run_through_a_long_outage_buffers_spills_and_loses_nothing(moto, tmp_path, caplog, monkeypatch):
    """CloudWatch is down while the run goes on: the datums wait in memory (1,000 at most
    here), then in the spool, and the outage is reported while it lasts; once CloudWatch is
    back every one is published, once."""
    import castlewatch.sinks.cloudwatch as cloudwatch_mod

    monkeypatch.setattr(cloudwatch_mod, "REPORT_EVERY_S", 0.2)
    lines = recent_events(4000, seed=4, users=900)  # under the 1,000 dimension sets an hour (§8.4)
    extra = "timeout_s: 1, buffer_datums: 1000, shutdown_timeout_s: 20"
    config_path = setup(tmp_path, "http://proxy", lines, extra=extra)

    async def main(url: str, proxy: FaultProxy) -> Engine:
        config = load_config(config_path)
        sink = config.sinks[1]
        config = dataclasses.replace(config, sinks=(config.sinks[0], dataclasses.replace(sink, endpoint_url=url)))
        engine = Engine(config, checkpoint=tmp_path / "ck")
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=0.1))
        deadline = time.monotonic() + WAIT_S
        while engine.stats.events_read < len(lines) or "has not accepted a request for" not in caplog.text:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        proxy.clear()  # CloudWatch is back
        stop.set()
        await task
        return engine

    with caplog.at_level("WARNING"), FaultProxy(moto) as proxy:
        proxy.inject("PutMetricData", *[Fault("error", status=503)] * 100_000)
        engine = asyncio.run(main(proxy.url, proxy))
    assert "the next ones wait in the spool" in caplog.text
    report = next(r.getMessage() for r in caplog.records if "has not accepted a request for" in r.getMessage())
    assert "(503: Service Unavailable" in report and "datums waiting (" in report and "retrying" in report
    assert "CloudWatch accepts requests again after" in caplog.text
    want = jsonl_stats(tmp_path / "out" / "datapoints.jsonl", prefix="cw/")
    assert engine.stats.published == count_lines(tmp_path / "out" / "datapoints.jsonl") > 1000
    assert engine.stats.unpublished == 0 and engine.stats.unknown_outcomes == 0
    sample = some_series(want, 20)
    assert cloudwatch_stats(moto, sample) == sample
    assert sum(c for _, c, _, _ in requests_stats(json.loads(b) for b in proxy.bodies["PutMetricData"]
                                                if b).values()) >= sum(c for _, c, _, _ in want.values())


def test_engine_refuses_a_sink_that_would_double_aws_metrics(tmp_path):
    config = load_config(setup(tmp_path, "http://127.0.0.1:9", recent_events(10, seed=5)))
    sink = dataclasses.replace(config.sinks[1], endpoint_url=None, namespace_prefix="")
    real = dataclasses.replace(config, sinks=(config.sinks[0], sink), discovered_log_groups={"app": None})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "datapoints.jsonl").write_text("kept\n")
    with pytest.raises(SinkError, match=r"sinks\[1\]\.namespace_prefix: the cloudwatch sink would double-count"):
        Engine(real)
    assert (tmp_path / "out" / "datapoints.jsonl").read_text() == "kept\n"  # refused before any sink opened
    prefixed = dataclasses.replace(real, sinks=(config.sinks[0], dataclasses.replace(sink, namespace_prefix="cw/")))
    for opened in Engine(prefixed).sinks:  # opens
        opened.sink.close()


# ---- kill -9 ------------------------------------------------------------------------------------------


class Daemon:
    """One ``castlewatch run`` process (fake credentials, no AWS config read)."""

    def __init__(self, tmp: Path, config: Path, name: str) -> None:
        from aws_emulator import FAKE_ENV

        env = {**os.environ, **FAKE_ENV, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        self.checkpoint = tmp / "castlewatch.ck"
        self.err = tmp / f"{name}.stderr"
        with open(self.err, "wb") as err:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "castlewatch", "run", "--config", str(config), "--checkpoint",
                 str(self.checkpoint), "--checkpoint-interval", "0.2"],
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, cwd=tmp, env=env,
            )

    def wait(self, what: str, predicate, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached\n{self.err.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def stats(self) -> dict:
        try:
            return read_checkpoint(self.checkpoint)["stats"]
        except FileNotFoundError:
            return {}


def test_kill_9_while_a_request_is_in_flight_then_restart_gives_the_same_totals(moto, tmp_path):
    """The second PutMetricData request is held by the proxy (moto never gets it) when the
    daemon is killed: the restart finds it in the ledger without an outcome, counts it as
    an unknown outcome and sends it again; what was accepted before is not sent again. So
    CloudWatch holds exactly what an uninterrupted run publishes (the JSON Lines sink)."""
    lines = recent_events(3000, seed=6, users=600)
    config = setup(tmp_path, "http://proxy", lines, extra="timeout_s: 60, shutdown_timeout_s: 20")
    daemons = []
    try:
        with FaultProxy(moto) as proxy:
            config.write_text(config.read_text().replace("http://proxy", proxy.url))
            proxy.inject("PutMetricData", Fault("delay", seconds=0), Fault("delay", seconds=30))
            first = Daemon(tmp_path, config, "first")
            daemons.append(first)
            first.wait("the second request held", lambda: proxy.delayed["PutMetricData"] >= 2)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(10)
            assert proxy.forwarded["PutMetricData"] == 1
            proxy.clear()
            second = Daemon(tmp_path, config, "second")
            daemons.append(second)
            # its first checkpoint: it counted the request in flight (the first one read every event already)
            second.wait("a checkpoint of the restart", lambda: second.stats().get("unknown_outcomes") == 1)
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(WAIT_S) == 0, second.err.read_text()
            sent = [json.loads(b) for b in proxy.bodies["PutMetricData"]]
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
    stop = next(json.loads(line) for line in second.err.read_text().splitlines() if '"event": "stop"' in line)
    stats = {k: stop[k] for k in ("published", "unknown_outcomes", "unpublished", "refused")}
    assert stats["unknown_outcomes"] == 1 and stats["unpublished"] == 0 and stats["refused"] == {}
    assert "request(s) were in flight when the previous run stopped" in second.err.read_text()
    want = jsonl_stats(tmp_path / "out" / "datapoints.jsonl", prefix="cw/")
    assert stats["published"] == count_lines(tmp_path / "out" / "datapoints.jsonl")
    # the held request was sent again, the others once: what moto applied is the wanted total
    applied = [sent[0]] + sent[2:]
    assert requests_stats(applied) == want
    assert sent[1] in sent[2:]
    sample = some_series(want, 10)
    assert cloudwatch_stats(moto, sample) == sample


def test_replay_of_logs_older_than_two_weeks_publishes_the_recent_minutes_and_counts_the_rest(moto, tmp_path):
    old = recent_events(200, seed=7, start=int(time.time()) - 20 * 86400)
    new = recent_events(200, seed=8)
    config = setup(tmp_path, moto, old + new)
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 0, result.output
    everything = jsonl_stats(tmp_path / "out" / "datapoints.jsonl", prefix="cw/")
    cutoff = int(time.time()) - 14 * 86400
    recent = {k: v for k, v in everything.items() if k[4] >= cutoff}
    assert cloudwatch_stats(moto, everything) == recent
    rows = {cells[1]: cells[2] for line in result.stderr.splitlines()
            if len(cells := [c.strip() for c in line.split("│")]) == 4}
    assert rows["datums refused, not published: too_old"] == str(len(everything) - len(recent))
    assert rows["datums published to CloudWatch"] == str(len(recent))
