"""``castlewatch run --serve``: the live dashboard and Prometheus's ``/metrics``, from a real
daemon (a process, stopped by SIGTERM), read over HTTP as a browser or Prometheus reads them.

The job is ``dashboard_checks.JOB`` (sums worked out by hand in ``dashboard_checks.WANT``)
with one event whose time cannot be read (a malformed event) and one late event (its
minute closed), then one more event once the daemon is idle: the page follows the minutes
as they close, ``/metrics`` has
castlewatch's counters (events read, matched per filter, malformed per reason, late
contributions, the sources' lag) and the closed datapoints, in the text format
prometheus-client's parser reads. Reading changes nothing; the server listens on loopback
unless told otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from dashboard_checks import LOG, WANT, outside_scripts, page_widgets, write_job
from prometheus_client.parser import text_string_to_metric_families

from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.live import parse_address

WAIT_S = 30.0
BAD_TIME = {"time": "garbage", "event": "login", "user": "x", "bytes": 1}
LATE = {"time": "2024-01-01T10:00:30Z", "event": "login", "user": "alice", "bytes": 5}
NEXT = {"time": "2024-01-01T10:03:59Z", "event": "login", "user": "alice", "bytes": 1}


class Daemon:
    """``castlewatch run --config CONFIG --serve ADDRESS`` in a process; :attr:`url` once listening."""

    def __init__(self, config: Path, tmp: Path, *serve: str) -> None:
        self.err = tmp / "run.stderr"
        self.checkpoint = tmp / "run.checkpoint"
        with open(self.err, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "castlewatch", "run", "--config", str(config), "--checkpoint",
                 str(self.checkpoint), "--checkpoint-interval", "0.2", *serve],
                stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL)
        self.url = self.wait_for(lambda: self.record("serving"))["dashboard"]

    def record(self, event: str) -> dict | None:
        for line in self.err.read_text().splitlines():
            if line.startswith("{") and json.loads(line)["event"] == event:
                return json.loads(line)
        return None

    def wait_for(self, ready):
        deadline = time.monotonic() + WAIT_S
        while True:
            value = ready()
            if value:
                return value
            assert self.process.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, self.err.read_text()
            time.sleep(0.05)

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(WAIT_S) == 0, self.err.read_text()
        return self.record("stop")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def get(url: str, method: str = "GET", accept: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, through prometheus-client's own parser."""
    status, headers, body = get(url + "metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def state(url: str) -> dict:
    return json.loads(get(url + "dashboard.json")[2])


def sums(figures: dict) -> dict[str, dict[str, float]]:
    """Trace name (entities decoded) -> {minute: Sum}."""
    import html

    return {html.unescape(t["name"]): dict(zip(t["x"], t["y"])) for f in figures.values() for t in f["data"]}


def want_by_name(want: dict) -> dict[str, dict[str, float]]:
    return {(f"User={k[3]}" if len(k) == 4 else k[1]): dict(v) for k, v in want.items()}


def with_late() -> dict[str, dict[str, float]]:
    """:data:`WANT` and the late event, published for its own minute."""
    want = want_by_name(WANT)
    want["User=alice"]["2024-01-01 10:00"] += 1
    want["SignInBytes"]["2024-01-01 10:00"] += 5
    return want


@pytest.fixture
def job(tmp_path):
    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n")
    # minutes close 1 s after the event time passed them, or after 1 s of quiet
    config.write_text(config.read_text().replace("allowed_lateness_s: 60", "allowed_lateness_s: 1"))
    with open(tmp_path / "app.log", "a") as fh:
        fh.write(json.dumps(BAD_TIME) + "\n" + json.dumps(LATE) + "\n")
    return config


def test_the_live_page_and_metrics_follow_the_minutes_as_they_close(job, tmp_path):
    daemon = Daemon(job, tmp_path, "--serve", "127.0.0.1:0")
    try:
        assert daemon.url.startswith("http://127.0.0.1:")
        events = 2 * (len(LOG) + 2)  # two log groups read app.log
        # the minutes close 1 s after the last event (idle: the watermark follows the clock)
        daemon.wait_for(lambda: sums(state(daemon.url)["figures"]) == with_late())
        status, headers, body = get(daemon.url)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        page = body.decode()
        assert [w[1] for w in page_widgets(page)] == ["SignIns (SignInsPerUser)", "SignInBytes", "SignOuts"]
        assert "<img" not in outside_scripts(page) and "&lt;img src=x onerror=alert(1)&gt;" in page
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert get(daemon.url + "plotly.min.js")[0] == 200

        metrics = scrape(daemon.url)
        assert metrics[("castlewatch_events_read_total", ())] == events
        assert {k[1][0][1]: v for k, v in metrics.items() if k[0] == "castlewatch_events_matched_total"} == {
            "SignInsPerUser": 6, "SignInBytes": 6, "SignOuts": 1}
        assert metrics[("castlewatch_events_malformed_total", (("reason", "bad_timestamp"),))] == 1
        assert metrics[("castlewatch_late_contributions_total", ())] == 2  # one per filter
        app = f"file:{tmp_path / 'app.log'}"
        watermark = metrics[("castlewatch_source_event_time_seconds", (("source", app),))]
        lag = metrics[("castlewatch_source_lag_seconds", (("source", app),))]
        assert watermark >= 1704103379 and 0 < lag <= time.time() - watermark + 1
        assert metrics[("castlewatch_source_last_read_timestamp_seconds", (("source", app),))] <= time.time()
        # the closed datapoints: each series' newest minute
        bytes_labels = (("dimensions", ""), ("metric_name", "SignInBytes"), ("namespace", "App"), ("unit", "Bytes"))
        assert metrics[("castlewatch_datapoint_sum", bytes_labels)] == 13
        assert metrics[("castlewatch_datapoint_sample_count", bytes_labels)] == 2
        assert metrics[("castlewatch_datapoint_timestamp_seconds", bytes_labels)] == 1704103320
        # the dimensions label as the CSV sink writes the set ('=' and ',' in a value escaped)
        xss = (("dimensions", "User=<img src\\=x onerror\\=alert(1)>"), ("metric_name", "SignIns"),
               ("namespace", "App"), ("unit", "Count"))
        assert metrics[("castlewatch_datapoint_sum", xss)] == 1

        # reading changes nothing: many reads later, the same state and counters
        before = state(daemon.url)
        for path in ("", "dashboard.json", "metrics", "plotly.min.js") * 3:
            assert get(daemon.url + path)[0] == 200
            assert get(daemon.url + path, method="HEAD")[0] == 200
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert get(daemon.url + "metrics", method=method)[0] == 405
            assert get(daemon.url, method=method)[0] == 405
        assert state(daemon.url)["version"] == before["version"]
        assert scrape(daemon.url)[("castlewatch_events_read_total", ())] == events
        assert read_checkpoint(daemon.checkpoint)["stats"]["events_read"] == events

        # one more minute: it closes while the daemon is idle, and the page and /metrics follow
        with open(tmp_path / "app.log", "a") as fh:
            fh.write(json.dumps(NEXT) + "\n")
        want = with_late()
        want["User=alice"]["2024-01-01 10:03"] = 1.0
        want["SignInBytes"]["2024-01-01 10:03"] = 1.0
        daemon.wait_for(lambda: sums(state(daemon.url)["figures"]) == want)
        after = state(daemon.url)
        assert after["version"] != before["version"] and after["structure"] == before["structure"]
        assert "2024-01-01 10:00</strong> to <strong>2024-01-01 10:03" in after["summary_html"]
        metrics = scrape(daemon.url)
        assert metrics[("castlewatch_events_read_total", ())] == events + 2
        assert metrics[("castlewatch_datapoint_timestamp_seconds", bytes_labels)] == 1704103380
        stop = daemon.stop()
    finally:
        daemon.kill()
    assert stop["events_read"] == events + 2 and stop["late_events"] == 2


def test_a_resumed_run_s_page_shows_the_minutes_written_before_it(job, tmp_path):
    daemon = Daemon(job, tmp_path, "--serve", "0")
    try:
        daemon.wait_for(lambda: sums(state(daemon.url)["figures"]) == with_late())
        daemon.stop()
    finally:
        daemon.kill()
    os.rename(daemon.err, tmp_path / "first.stderr")
    daemon = Daemon(job, tmp_path, "--serve", "0")
    try:
        # the minutes written before, read back from the jsonl sink's file (nothing new to read)
        daemon.wait_for(lambda: sums(state(daemon.url)["figures"]) == with_late())
        assert daemon.stop()["events_read"] == 2 * (len(LOG) + 2)
    finally:
        daemon.kill()


def test_an_address_in_use_is_refused_before_any_output(job, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["run", "--config", str(job), "--serve", f"127.0.0.1:{port}",
                                           "--checkpoint", str(tmp_path / "ck")])
    assert result.exit_code == 2, result.output
    assert f"--serve 127.0.0.1:{port}: cannot listen on it" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "ck").exists()


@pytest.mark.parametrize(("given", "address"), [
    ("9108", ("127.0.0.1", 9108)),
    ("0", ("127.0.0.1", 0)),
    ("localhost:9108", ("localhost", 9108)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:9108", ("::1", 9108)),
])
def test_the_address_is_loopback_unless_a_host_is_given(given, address):
    assert parse_address(given) == address


@pytest.mark.parametrize(("given", "reason"), [
    ("127.0.0.1", "is not HOST:PORT, [IPv6]:PORT or PORT"),
    ("::1:9108", "is not HOST:PORT, [IPv6]:PORT or PORT"),
    ("host:70000", "port 70000 is above 65535"),
    ("http://127.0.0.1:9108", "is not HOST:PORT"),
])
def test_a_bad_address_is_a_usage_error(job, given, reason):
    result = CliRunner().invoke(main, ["run", "--config", str(job), "--serve", given])
    assert result.exit_code == 2 and "'--serve'" in result.stderr and reason in result.stderr
