"""``castlewatch serve`` as a process: the readiness line, SIGTERM, its options' errors, and
the AWS CLI (``aws logs test-metric-filter``, ``aws logs filter-log-events``) pointed at it
with --endpoint-url, as the README shows."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from aws_emulator import FAKE_ENV
from serve_helpers import logs_client

import castlewatch

BIN = Path(sys.executable).parent
AWS_ENV = {**os.environ, **FAKE_ENV, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_PAGER": ""}


class ServeProcess:
    """``castlewatch serve ARGS --port 0`` as a subprocess; ``url`` from its readiness line,
    ``lines`` its stderr (drained by a thread, so that its log never fills the pipe)."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "castlewatch"), "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=AWS_ENV,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.url = ""
        self.stdout = ""
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self.ready.wait(20):
            self.stop(signal.SIGKILL)
            raise AssertionError(f"no readiness line: {self.lines}")

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("castlewatch serve: listening on "):
                self.url = line.split(" listening on ", 1)[1].split(",", 1)[0]
                self.ready.set()
        self.ready.set()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``; the exit status, once stdout and stderr are read to their end."""
        self.process.send_signal(sig)
        status = self.process.wait(10)
        self._drainer.join(5)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = self.process.stdout.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return status


@pytest.fixture(scope="module")
def server(moto_server_url):
    serving = ServeProcess("--upstream", moto_server_url)
    yield serving
    assert serving.stop() == 0


def test_readiness_line_then_sigterm_stops_cleanly():
    """Loopback by default; the URL is printed once connections are accepted; SIGTERM: exit
    0 after 'stopped'."""
    serving = ServeProcess()
    assert serving.url.startswith("http://127.0.0.1:")
    assert serving.lines[0] == f"castlewatch serve: listening on {serving.url}, TestMetricFilter only (no --upstream)"
    assert logs_client(serving.url).test_metric_filter(filterPattern="a", logEventMessages=["a"])["matches"]
    started = time.monotonic()
    assert serving.stop() == 0
    assert time.monotonic() - started < 5
    assert serving.lines[-1] == "castlewatch serve: stopped"
    assert serving.stdout == ""  # messages on stderr only


def test_listening_beyond_loopback_says_so():
    serving = ServeProcess("--host", "0.0.0.0", "--quiet")
    assert serving.stop() == 0
    assert serving.lines[0] == ("Note: castlewatch serve on 0.0.0.0: whoever reaches it may call it (it checks no "
                                "credentials).")


def test_a_port_in_use_and_bad_options_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(BIN / "castlewatch"), "serve", "--port", str(port)], capture_output=True,
                                text=True, timeout=20)
    assert result.returncode == 2
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([str(BIN / "castlewatch"), "serve", "--upstream", "localhost:4566"], capture_output=True,
                            text=True, timeout=20)
    assert result.returncode == 2 and "is not an http:// or https:// URL" in result.stderr


def aws(*args: str) -> subprocess.CompletedProcess:
    """The AWS CLI of the test environment (awscli, in the test extra)."""
    executable = BIN / "aws"
    assert executable.exists(), "the AWS CLI (awscli) is in the test extra: pip install -e '.[test]'"
    return subprocess.run([str(executable), *args], capture_output=True, text=True, env=AWS_ENV, timeout=60)


def test_aws_cli_test_metric_filter_gets_castlewatchs_answers(server):
    messages = ['{"level": "ERROR", "latency": 1200}', '{"level": "INFO", "latency": 5}', "not JSON"]
    pattern = '{ $.level = "ERROR" && $.latency > 1000 }'
    result = aws("logs", "test-metric-filter", "--endpoint-url", server.url, "--filter-pattern", pattern,
                 "--log-event-messages", *messages)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == castlewatch.test_metric_filter(pattern, messages)
    assert json.loads(result.stdout)["matches"][0]["eventNumber"] == 1
    result = aws("logs", "test-metric-filter", "--endpoint-url", server.url, "--filter-pattern", "{ $.level = }",
                 "--log-event-messages", "x")
    assert result.returncode != 0
    assert ("An error occurred (InvalidParameterException) when calling the TestMetricFilter operation: "
            "Invalid metric filter pattern") in result.stderr


def test_aws_cli_filter_log_events_is_exact_through_moto(server, moto):
    logs = logs_client(server.url)
    logs.create_log_group(logGroupName="cli")
    logs.create_log_stream(logGroupName="cli", logStreamName="s")
    now = int(time.time() * 1000)
    messages = ['{"status": 500}', '{"status": 200}', "plain 500", '{"status": 503}']
    logs.put_log_events(logGroupName="cli", logStreamName="s",
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])
    result = aws("logs", "filter-log-events", "--endpoint-url", server.url, "--log-group-name", "cli",
                 "--filter-pattern", "{ $.status >= 500 }", "--page-size", "1")
    assert result.returncode == 0, result.stderr
    assert [e["message"] for e in json.loads(result.stdout)["events"]] == ['{"status": 500}', '{"status": 503}']
    assert any("FilterLogEvents -> 200" in line for line in server.lines)


def test_the_compose_service_runs_serve_in_front_of_localstack(moto):
    """docker-compose.yml's optional castlewatch-serve (profile serve): its command is valid
    castlewatch serve options (run here with a free port and moto for LocalStack), and its
    health check passes against the running server."""
    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text())
    service = compose["services"]["castlewatch-serve"]
    assert service["profiles"] == ["serve"] and service["ports"] == ["127.0.0.1:4599:4599"]
    assert service["depends_on"]["localstack"]["condition"] == "service_healthy"
    args = list(service["command"])
    assert args[0] == "serve" and args[args.index("--upstream") + 1] == "http://localstack:4566"
    args[args.index("--port") + 1] = "0"
    args[args.index("--upstream") + 1] = moto
    serving = ServeProcess(*args[1:])
    try:
        port = serving.url.rsplit(":", 1)[1]
        check = [part.replace("127.0.0.1:4599", f"127.0.0.1:{port}") for part in service["healthcheck"]["test"][1:]]
        assert check[0] == "python"
        assert subprocess.run([sys.executable, *check[1:]], timeout=20).returncode == 0
    finally:
        assert serving.stop() == 0
    assert f"castlewatch serve: listening on {serving.url}, in front of {moto}" in serving.lines
