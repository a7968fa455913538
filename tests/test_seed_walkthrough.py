"""The README's walkthrough against a real moto server, end to end and without mocks:
``castlewatch provision`` of ``examples/moto.yaml`` (pointed at the test's moto with
``--endpoint-url``), the bundled samples put by ``scripts/put_sample_events.py``, then
``castlewatch replay`` or a bounded ``castlewatch run`` (a process, stopped by SIGTERM once
the events are in). What GetMetricStatistics reads back equals a local replay of the same
events (a JSON Lines sink), datapoint for datapoint (Sum, SampleCount, Minimum, Maximum per
minute per dimension set); GetDashboard returns the generated body; a second ``provision``
changes nothing. Also: every example config loads, and the docker-compose files name what
exists."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import botocore.session
import pytest
import yaml
from click.testing import CliRunner
from cloudwatch_checks import cloudwatch_stats, jsonl_stats

from castlewatch.cli import main
from castlewatch.dashboard import check_dashboard, dashboard_body
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.engine.config import load_config
from castlewatch.engine.sources import cloudwatch_logs
from castlewatch.provision import drawn_dimension_values
from castlewatch.samples import read_sample_lines

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "moto.yaml"
# the example configs' metric_filters, as a replay from files takes them
PACKS = ("[{pack: cis, log_group: CloudTrail/DefaultLogGroup}, {pack: vpc-flow-logs, log_group: vpc-flow-logs}, "
         "{pack: seed-dashboard, log_group: {cloudtrail: CloudTrail/DefaultLogGroup, vpc_flow_logs: vpc-flow-logs}}]")
#: Resources the seed's setup makes: 2 log groups, 20 metric filters (cis 15, vpc-flow-logs 4,
#: seed-dashboard's console sign-ins per user; its other two are those of cis and vpc-flow-logs), 1 dashboard.
RESOURCES = 23
PREFIX = "castlewatch/"
WAIT_S = 30.0


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch):
    """moto has no call quota: the CloudWatch Logs rate limit (5 calls a second, AWS's) is
    raised in this process so that provisioning 23 resources does not take 5 s."""
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_TPS", 500.0)
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_BURST", 50)


def put_sample_events():
    """scripts/put_sample_events.py as a module (its file name is a script's)."""
    spec = importlib.util.spec_from_file_location("put_sample_events", ROOT / "scripts" / "put_sample_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def provision(url: str, *args: str) -> dict:
    result = CliRunner().invoke(main, ["provision", "--config", str(EXAMPLE), "--endpoint-url", url,
                                       "--output", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def put_events(url: str, saved: Path) -> None:
    """The script, as a user runs it (its main), saving what it put."""
    assert put_sample_events().main(["--endpoint-url", url, "--save-events", str(saved)]) == 0


def local_replay(tmp: Path, saved: Path) -> dict:
    """Statistics of ``castlewatch replay`` of the saved events from files, namespaces prefixed."""
    config = tmp / "local.yaml"
    config.write_text(
        f"metric_filters: {PACKS}\nsources:\n"
        f"  - {{type: file, path: {saved}/CloudTrail_DefaultLogGroup.jsonl, log_group: CloudTrail/DefaultLogGroup, "
        "format: cloudwatch_events}\n"
        f"  - {{type: file, path: {saved}/vpc-flow-logs.jsonl, log_group: vpc-flow-logs, format: cloudwatch_events}}\n"
        f"sinks: [{{type: jsonl, path: {tmp}/local/datapoints.jsonl}}]\nallowed_lateness_s: 300\n")
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return jsonl_stats(tmp / "local" / "datapoints.jsonl", prefix=PREFIX)


def check_dashboard_body(url: str, datapoints: Path) -> None:
    """GetDashboard gives the body castlewatch generates for the config and the dimension
    values the run wrote, every one drawn."""
    cw = botocore.session.get_session().create_client("cloudwatch", region_name="us-east-1", endpoint_url=url)
    body = json.loads(cw.get_dashboard(DashboardName="castlewatch-seed")["DashboardBody"])
    cw.close()
    drawn = drawn_dimension_values(body, PREFIX)
    written = {}
    for line in datapoints.read_text().splitlines():
        d = json.loads(line)
        if d.get("Dimensions"):
            written.setdefault((d["Namespace"], d["MetricName"]), set()).add(
                tuple((x["Name"], x["Value"]) for x in d["Dimensions"]))
    assert {k: set(v) for k, v in drawn.items()} == written
    assert ("castlewatch/CloudTrail", "ConsoleSignIns") in written
    config = load_config(EXAMPLE)
    assert body == dashboard_body(config, region="us-east-1", seen=drawn, namespace_prefix=PREFIX)
    check_dashboard("castlewatch-seed", body)


def test_provision_put_events_replay_equals_a_local_replay(moto, tmp_path):
    plan = provision(moto, "--dry-run")
    assert {c["action"] for c in plan["changes"]} == {"create"} and len(plan["changes"]) == RESOURCES
    assert provision(moto)["counts"] == {"create": RESOURCES, "update": 0, "unchanged": 0}
    saved = tmp_path / "saved"
    put_events(moto, saved)
    want = local_replay(tmp_path, saved)
    assert len(want) > 40
    result = CliRunner().invoke(main, ["replay", "--config", str(EXAMPLE), "--endpoint-url", moto,
                                       "--out", str(tmp_path / "replay")])
    assert result.exit_code == 0, result.output
    assert jsonl_stats(tmp_path / "replay" / "datapoints.jsonl", prefix=PREFIX) == want
    assert cloudwatch_stats(moto, want) == want
    check_dashboard_body(moto, tmp_path / "replay" / "datapoints.jsonl")
    for dry in (["--dry-run"], []):  # the dashboard the replay drew included: nothing to change
        assert provision(moto, *dry)["counts"] == {"create": 0, "update": 0, "unchanged": RESOURCES}


def test_the_sidecar_flow_provision_run_then_put_events_publishes_exact_datapoints(moto, tmp_path):
    from aws_emulator import FAKE_ENV

    provision(moto)
    env = {**os.environ, **FAKE_ENV, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    checkpoint = tmp_path / "castlewatch.ck"
    err = tmp_path / "run.stderr"
    with open(err, "wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "castlewatch", "run", "--config", str(EXAMPLE), "--endpoint-url", moto,
             "--out", str(tmp_path / "run"), "--checkpoint", str(checkpoint), "--checkpoint-interval", "0.2"],
            stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + WAIT_S
        while not checkpoint.exists():  # started: its first checkpoint
            assert daemon.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        saved = tmp_path / "saved"
        put_events(moto, saved)
        events = sum(len(p.read_text().splitlines()) for p in saved.iterdir())
        while read_checkpoint(checkpoint)["stats"].get("events_read", 0) < events:
            assert daemon.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(WAIT_S) == 0, err.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    stop = next(json.loads(line) for line in err.read_text().splitlines() if '"event": "stop"' in line)
    assert stop["events_read"] == events and stop["unpublished"] == 0 and stop["refused"] == {}
    want = local_replay(tmp_path, saved)
    assert jsonl_stats(tmp_path / "run" / "datapoints.jsonl", prefix=PREFIX) == want
    assert cloudwatch_stats(moto, want) == want
    check_dashboard_body(moto, tmp_path / "run" / "datapoints.jsonl")
    assert provision(moto, "--dry-run")["counts"] == {"create": 0, "update": 0, "unchanged": RESOURCES}


def test_put_sample_events_keeps_order_and_fits_cloudwatch_logs_time_limits():
    module = put_sample_events()
    now = 1_800_000_000_000
    by_group = module.sample_events(now)
    assert list(by_group) == ["CloudTrail/DefaultLogGroup", "vpc-flow-logs"]
    for group, events in by_group.items():
        times = [t for t, _ in events]
        assert times == sorted(times) and now - 14 * 86_400_000 < times[0] and times[-1] <= now - 60_000
    trail = by_group["CloudTrail/DefaultLogGroup"]
    assert len(trail) == 40 and trail[-1][0] - trail[0][0] == 39 * 60_000  # the spacing kept
    for t, message in trail:  # eventTime is the timestamp
        assert json.loads(message)["eventTime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t // 1000))
    vpc = by_group["vpc-flow-logs"]
    original = [line.split(" ") for line in read_sample_lines("vpc-flow") if line.strip()]
    assert len(vpc) == len(original) == 55
    durations = []
    for t, message in vpc:  # start is the timestamp, the rest of the record as it was
        fields = message.split(" ")
        assert int(fields[10]) * 1000 == t
        durations.append(int(fields[11]) - int(fields[10]))
    assert sorted(durations) == sorted(int(f[11]) - int(f[10]) for f in original)
    assert sorted(m.split(" ")[:10] + m.split(" ")[12:] for _, m in vpc) == sorted(f[:10] + f[12:] for f in original)
    assert module.batches([(i, "x" * 100_000) for i in range(25)]) and [
        len(b) for b in module.batches([(i, "x" * 100_000) for i in range(25)])] == [10, 10, 5]


@pytest.mark.parametrize("name", ["moto.yaml", "localstack.yaml", "aws.yaml"])
def test_every_example_config_loads_with_the_seed_s_setup(name):
    config = load_config(ROOT / "examples" / name)
    assert len(config.metric_filters) == RESOURCES - 3  # the packs' filters, each once
    assert {f.log_group_name for f in config.metric_filters} == {"CloudTrail/DefaultLogGroup", "vpc-flow-logs"}
    (source,) = config.sources
    assert source.type == "cloudwatch_logs" and source.log_group_names == ("CloudTrail/DefaultLogGroup",
                                                                            "vpc-flow-logs")
    sinks = {s.type: s for s in config.sinks}
    assert sinks["cloudwatch"].namespace_prefix == PREFIX  # never into the namespaces AWS or LocalStack publish
    assert sinks["cloudwatch_dashboard"].dashboard_name == "castlewatch-seed"
    urls = {source.endpoint_url, sinks["cloudwatch"].endpoint_url, sinks["cloudwatch_dashboard"].endpoint_url}
    assert urls == {None if name == "aws.yaml" else f"http://127.0.0.1:{5000 if name == 'moto.yaml' else 4566}"}


def test_docker_compose_runs_localstack_and_the_sidecar_on_the_example_config():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    localstack, sidecar = compose["services"]["localstack"], compose["services"]["castlewatch"]
    assert "logs" in localstack["environment"]["SERVICES"] and "cloudwatch" in localstack["environment"]["SERVICES"]
    assert sidecar["build"]["context"] == "." and (ROOT / sidecar["build"]["dockerfile"]).is_file()
    assert sidecar["depends_on"]["localstack"]["condition"] == "service_healthy"
    command = " ".join(sidecar["command"]) if isinstance(sidecar["command"], list) else sidecar["command"]
    assert "castlewatch provision --config examples/localstack.yaml" in command
    assert "castlewatch run --config examples/localstack.yaml" in command
    assert "--endpoint-url http://localstack:4566" in command
    dockerfile = (ROOT / "Dockerfile").read_text()
    for copied in ("castlewatch", "examples", "scripts"):
        assert f"COPY {copied} " in dockerfile and (ROOT / copied).is_dir()
