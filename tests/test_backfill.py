"""``castlewatch backfill`` (:mod:`castlewatch.backfill`): archives in the layout AWS writes to
S3, from a local folder and from moto's S3 (server mode), on a 2-worker Dask cluster.

The archives are seeded (:mod:`bench.archives`): four days of gzip CloudTrail objects
(``{"Records": [...]}``, events of the hours before their delivery, so a day's first
object holds events of the day before), VPC Flow Logs objects with their header line, and
CloudTrail digest objects. A backfill of the middle two days writes exactly what
``castlewatch replay`` writes over the same objects (a glob of those days' folders), with
every minute held open to the end as a backfill holds it: datapoint for datapoint, and the
same counters.
"""

from __future__ import annotations

import asyncio
import calendar
import gzip
import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from castlewatch.backfill.executor import LOCAL_CLUSTER_CONFIG, dask_client
from castlewatch.backfill.output import cloudwatch_caveat
from castlewatch.backfill.run import list_sources, run_backfill
from castlewatch.backfill.task import compiled_jobs
from castlewatch.cli import main
from castlewatch.engine.config import load_config_text
from castlewatch.engine.partial import merge_datapoints
from castlewatch.engine.runner import Engine
from castlewatch.model import Datapoint
from castlewatch.sinks import JsonLinesSink

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "bench" / "archives.py").is_file():  # pragma: no cover - an sdist without bench/
    pytest.skip("bench/ is not in this checkout", allow_module_level=True)
import sys  # noqa: E402

sys.path.insert(0, str(ROOT))
from bench.archives import archive_objects, put_s3, write_folder  # noqa: E402

FIRST, START, END = dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 3)
DAYS_GLOB = "2025/01/0[23]"

FILTERS = """
metric_filters:
  - filterName: console-logins
    logGroupName: CloudTrail/Default
    filterPattern: '{ $.eventName = "ConsoleLogin" }'
    metricTransformations: [{metricName: ConsoleLogins, metricNamespace: CIS, metricValue: "1", defaultValue: 0}]
  - filterName: unauthorized
    logGroupName: CloudTrail/Default
    filterPattern: '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }'
    metricTransformations: [{metricName: Unauthorized, metricNamespace: CIS, metricValue: "1"}]
  - filterName: calls-by-source
    logGroupName: CloudTrail/Default
    filterPattern: '{ $.eventSource = * }'
    metricTransformations: [{metricName: Calls, metricNamespace: CT, metricValue: "1", dimensions: {Source: $.eventSource}}]
  - filterName: rejected-bytes
    logGroupName: vpc-flow-logs
    filterPattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, start, end, action = "REJECT", status]'
    metricTransformations: [{metricName: RejectedBytes, metricNamespace: Flow, metricValue: $bytes, unit: Bytes}]
"""


def _config(tmp: Path, trail: str, flow: str, out: str, extra: str = "") -> str:
    return (FILTERS + "sources:\n"
            f"  - {{type: file, path: '{trail}', log_group: CloudTrail/Default, format: cloudtrail_archive{extra}}}\n"
            f"  - {{type: file, path: '{flow}', log_group: vpc-flow-logs, format: flow_log_file{extra}}}\n"
            f"sinks:\n  - {{type: jsonl, path: {out}.jsonl}}\n  - {{type: csv, path: {out}.csv}}\n")


@pytest.fixture(scope="module")
def objects() -> dict[str, bytes]:
    return archive_objects(FIRST, 4, seed=7, every_minutes=360, events_per_object=30, flow_records_per_object=40)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, objects) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    write_folder(root, objects)
    # objects outside the dates that cannot be read: a backfill of the middle days must not touch them
    for day in ("2025/01/01", "2025/01/04"):
        trap = root / f"AWSLogs/111122223333/CloudTrail/us-east-1/{day}/111122223333_CloudTrail_us-east-1_trap.json.gz"
        os.symlink(root / "nowhere", trap)
    return root


@pytest.fixture(scope="module")
def scheduler() -> str:
    """A 2-worker LocalCluster (processes, one thread each) for the module, its workers
    with the emulators' fake credentials in their environment (the standard chain)."""
    from aws_emulator import emulator_env

    with emulator_env(), dask_client(workers=2) as client:
        yield client.scheduler.address


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, folder) -> tuple[str, str, object]:
    """``castlewatch replay`` over the middle days' objects, every minute held open to the end."""
    tmp = tmp_path_factory.mktemp("replay")
    text = _config(tmp, f"{folder}/AWSLogs/*/CloudTrail/*/{DAYS_GLOB}/*.json.gz",
                   f"{folder}/AWSLogs/*/vpcflowlogs/*/{DAYS_GLOB}/*.log.gz", "replay") + "allowed_lateness_s: 1.0e+12\n"
    stats = asyncio.run(Engine(load_config_text(text, tmp)).replay())
    assert stats.late_events == 0 and stats.events_read > 1000
    return (tmp / "replay.jsonl").read_text(), (tmp / "replay.csv").read_text(), stats


def _backfill(text: str, tmp: Path, scheduler: str, **options):
    config = load_config_text(text, tmp)
    from distributed import Client

    with Client(scheduler) as client:
        the_plan = list_sources(config, START, END, 2, options.pop("objects_per_task", None))
        report = run_backfill(config, the_plan, client, **options)
        compiled = client.run(compiled_jobs)
    return report, compiled


def _lines(text: str) -> list[str]:
    return sorted(text.splitlines())


def test_backfill_of_a_folder_equals_a_replay_datapoint_for_datapoint(tmp_path, folder, scheduler, replayed):
    report, compiled = _backfill(_config(tmp_path, str(folder), str(folder), "backfill"), tmp_path, scheduler,
                                 objects_per_task=3)
    jsonl, csv, stats = replayed
    assert _lines((tmp_path / "backfill.jsonl").read_text()) == _lines(jsonl)
    assert _lines((tmp_path / "backfill.csv").read_text()) == _lines(csv)
    assert report.stats == stats  # every counter: events, matches, not JSON, malformed, datapoints
    assert not report.unread and not report.withheld
    # only the middle days were read (the traps on the first and last day were never opened)
    read = [key for listing in report.plan.listings for key, _ in listing.logs]
    assert read and all("/2025/01/02/" in key or "/2025/01/03/" in key for key in read)
    assert not any("CloudTrail-Digest" in key for key in read)
    # more tasks than workers, each source's filters compiled once per worker (one thread each)
    digests = {job.digest for job in report.plan.jobs}
    counts = [n for per_worker in compiled.values() for digest, n in per_worker.items() if digest in digests]
    assert counts and set(counts) == {1} and len(counts) <= 2 * len(digests) < len(report.plan.partitions)


def test_a_default_replay_publishes_late_minutes_apart_and_merges_to_the_backfill(tmp_path, folder, replayed):
    text = _config(tmp_path, f"{folder}/AWSLogs/*/CloudTrail/*/{DAYS_GLOB}/*.json.gz",
                   f"{folder}/AWSLogs/*/vpcflowlogs/*/{DAYS_GLOB}/*.log.gz", "default")
    stats = asyncio.run(Engine(load_config_text(text, tmp_path)).replay())
    assert stats.late_events > 0  # the objects' events are not in time order: late minutes published apart
    published = []
    for serial, line in enumerate((tmp_path / "default.jsonl").read_text().splitlines()):
        datum = json.loads(line)
        values = dict(zip(datum["Values"], map(int, datum["Counts"])))
        point = Datapoint(datum["Namespace"], datum["MetricName"],
                          tuple((d["Name"], d["Value"]) for d in datum.get("Dimensions", ())), datum["Unit"],
                          calendar.timegm(time.strptime(datum["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")), values,
                          sample_count=sum(values.values()), minimum=min(values), maximum=max(values))
        point.serial = serial
        published.append(point)
    assert len(published) > len(replayed[0].splitlines())
    sink = JsonLinesSink(tmp_path / "merged.jsonl")
    sink.write(merge_datapoints(published))  # as CloudWatch adds them up
    sink.close()
    assert _lines((tmp_path / "merged.jsonl").read_text()) == _lines(replayed[0])


def test_backfill_from_moto_s3_equals_the_folder(tmp_path, moto, objects, scheduler, replayed):
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=moto, use_listings_cache=False)
    put_s3(fs, "trail-bucket", objects, prefix="org/")
    put_s3(fs, "trail-bucket", {"org/README.txt": b"not a log"})
    url = "s3://trail-bucket/org"
    text = _config(tmp_path, url, url, "s3", extra=f", endpoint_url: '{moto}', region: us-east-1")
    report, _ = _backfill(text, tmp_path, scheduler)
    assert _lines((tmp_path / "s3.jsonl").read_text()) == _lines(replayed[0])
    assert report.stats == replayed[2]
    read = [key for listing in report.plan.listings for key, _ in listing.logs]
    assert read and all("/2025/01/02/" in key or "/2025/01/03/" in key for key in read)
    assert all(key.startswith("trail-bucket/org/AWSLogs/") for key in read)


def test_an_object_that_fails_is_retried_then_reported_by_key(tmp_path, folder, scheduler):
    bad_root = tmp_path / "bucket"
    bad_root.mkdir()
    for path in folder.rglob("*"):  # a copy of the archive (links to its files) ...
        if path.is_file():
            target = bad_root / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    day = bad_root / "AWSLogs/444455556666/CloudTrail/eu-west-1/2025/01/03"
    bad = day / "444455556666_CloudTrail_eu-west-1_20250103T1205Z_gone.json.gz"
    os.symlink(tmp_path / "gone", bad)  # ... with an object that cannot be read within the dates
    text = _config(tmp_path, str(bad_root), str(bad_root), "partial")
    report, _ = _backfill(text, tmp_path, scheduler, retries=2, objects_per_task=5)
    assert report.result.failed == [(str(bad), f"FileNotFoundError: [Errno 2] No such file or directory: '{bad}'")]
    assert report.result.attempts[str(bad)] == 3  # the first attempt and two retries
    assert report.unread == report.result.failed
    assert report.result.objects_read == report.plan.objects - 1  # every other object of its partition was read

    result = CliRunner().invoke(main, ["backfill", "--config", str(_write(tmp_path, "partial.yaml", text)),
                                       "--from", str(START), "--to", str(END), "--scheduler", scheduler,
                                       "--retries", "1"])
    assert result.exit_code == 75, result.output
    assert f"Error: could not read {bad}: FileNotFoundError" in result.stderr


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def test_cli_on_a_local_cluster_of_two_workers(tmp_path, folder, replayed):
    config = _write(tmp_path, "bf.yaml", _config(tmp_path, str(folder), str(folder), "cli"))
    result = CliRunner().invoke(main, ["backfill", "--config", str(config), "--from", "2025-01-02",
                                       "--to", "2025-01-03", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert _lines((tmp_path / "cli.jsonl").read_text()) == _lines(replayed[0])
    assert "castlewatch backfill 2025-01-02 .. 2025-01-03" in result.stderr


def test_unreadable_kinds_of_object_within_the_dates_are_named(tmp_path, scheduler, objects):
    root = tmp_path / "bucket"
    write_folder(root, {k: v for k, v in objects.items() if "/2025/01/02/" in k})
    parquet = root / "AWSLogs/111122223333/vpcflowlogs/us-east-1/2025/01/02/111122223333_vpcflowlogs_x.log.parquet"
    parquet.write_bytes(b"PAR1")
    (root / "AWSLogs/111122223333/CloudTrail/us-east-1/manifest.json").write_text("{}")
    config = _write(tmp_path, "bf.yaml", _config(tmp_path, str(root), str(root), "out"))
    result = CliRunner().invoke(main, ["backfill", "--config", str(config), "--from", "2025-01-02", "--to",
                                       "2025-01-02", "--scheduler", scheduler])
    assert result.exit_code == 75, result.output
    assert f"Error: could not read {parquet}: flow logs in Parquet are not read" in result.stderr
    assert ("Warning: 1 objects in the services' folders are not in their YYYY/MM/DD folders, so they have no date "
            f"and were not read: {root}/AWSLogs/111122223333/CloudTrail/us-east-1/manifest.json") in result.stderr


@pytest.mark.parametrize(("source", "message"), [
    ("{type: stdin, log_group: vpc-flow-logs, format: flow_log_file}", "backfill reads archives"),
    ("{type: file, path: x.log, log_group: vpc-flow-logs, timestamp: {field: $11, format: epoch_s}}",
     "not format lines"),
])
def test_sources_that_are_not_archives_are_refused(tmp_path, source, message):
    text = FILTERS.replace("CloudTrail/Default", "vpc-flow-logs") + f"sources:\n  - {source}\nsinks:\n  - {{type: stdout}}\n"
    config = _write(tmp_path, "bf.yaml", text)
    result = CliRunner().invoke(main, ["backfill", "--config", str(config), "--from", "2025-01-02", "--to", "2025-01-03"])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_dates_and_sources_without_objects(tmp_path, folder, scheduler):
    config = _write(tmp_path, "bf.yaml", _config(tmp_path, str(folder), str(folder), "none"))
    runner = CliRunner()
    result = runner.invoke(main, ["backfill", "--config", str(config), "--from", "2025-01-03", "--to", "2025-01-02"])
    assert result.exit_code == 2 and "--to 2025-01-02 is before --from 2025-01-03" in result.stderr
    result = runner.invoke(main, ["backfill", "--config", str(config), "--from", "2024-06-01", "--to", "2024-06-30",
                                  "--scheduler", scheduler])
    assert result.exit_code == 66 and "no CloudTrail or VPC Flow Logs object dated 2024-06-01 .. 2024-06-30" in result.stderr
    assert not (tmp_path / "none.jsonl").exists()


def test_s3_paths_are_for_backfill_only(tmp_path):
    text = _config(tmp_path, "s3://bucket/x", "s3://bucket/x", "out")
    config = _write(tmp_path, "rp.yaml", text)
    result = CliRunner().invoke(main, ["replay", "--config", str(config)])
    assert result.exit_code == 2 and "castlewatch backfill reads S3 archives" in result.stderr, result.output


def test_the_two_week_caveat_of_a_cloudwatch_sink(tmp_path):
    text = _config(tmp_path, "s3://b/p", "s3://b/p", "out").replace(
        "sinks:\n", "sinks:\n  - {type: cloudwatch, region: us-east-1}\n")
    config = load_config_text(text, tmp_path)
    today = dt.date(2025, 3, 1)
    assert "before 2025-02-15 will be refused" in cloudwatch_caveat(config, dt.date(2025, 1, 1), today)
    assert cloudwatch_caveat(config, dt.date(2025, 2, 20), today) is None
    assert cloudwatch_caveat(load_config_text(_config(tmp_path, "s3://b/p", "s3://b/p", "out"), tmp_path),
                             dt.date(2025, 1, 1), today) is None


def test_a_filter_near_the_dimension_limit_is_withheld_not_guessed(tmp_path, scheduler):
    day = tmp_path / "bucket/AWSLogs/111122223333/vpcflowlogs/us-east-1/2025/01/02"
    day.mkdir(parents=True)
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    for part in range(2):  # 1,000 distinct sources within a minute, over two objects (two partitions)
        records = [f"2 111122223333 eni-1 10.{part}.{i // 250}.{i % 250} 10.9.9.9 443 22 6 1 40 1735786800 "
                   f"1735786860 REJECT OK" for i in range(500)]
        (day / f"111122223333_vpcflowlogs_us-east-1_fl-1_20250102T000{part}Z_h.log.gz").write_bytes(
            gzip.compress(("\n".join([header, *records]) + "\n").encode()))
    text = FILTERS.replace("logGroupName: CloudTrail/Default", "logGroupName: vpc-flow-logs") + """\
  - filterName: rejects-by-source
    logGroupName: vpc-flow-logs
    filterPattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, start, end, action = "REJECT", status]'
    metricTransformations: [{metricName: RejectsBySource, metricNamespace: Flow, metricValue: "1", dimensions: {Source: $source}}]
"""
    text += f"sources:\n  - {{type: file, path: '{tmp_path / 'bucket'}', log_group: vpc-flow-logs, format: flow_log_file}}\n"
    text += "sinks:\n  - {type: jsonl, path: out.jsonl}\n"
    config = _write(tmp_path, "bf.yaml", text)
    result = CliRunner().invoke(main, ["backfill", "--config", str(config), "--from", "2025-01-02", "--to", "2025-01-02",
                                       "--scheduler", scheduler, "--objects-per-task", "1"])
    assert result.exit_code == 65, result.output
    assert "metric filter 'rejects-by-source': its dimensions took 1,000 distinct value sets" in result.stderr
    written = (tmp_path / "out.jsonl").read_text()
    assert '"MetricName":"RejectedBytes"' in written and "RejectsBySource" not in written


def _worker_settings() -> tuple:
    import dask

    return tuple(dask.config.get(name) for name in LOCAL_CLUSTER_CONFIG)


def test_the_local_cluster_workers_run_without_the_profiler(scheduler):
    """The LocalCluster that backfill starts hands LOCAL_CLUSTER_CONFIG (no per-task
    profiler, slower tick and system monitor) to its worker processes."""
    from distributed import Client

    with Client(scheduler, timeout="10s") as client:
        got = client.run(_worker_settings)
    assert len(got) == 2
    assert set(got.values()) == {tuple(LOCAL_CLUSTER_CONFIG.values())}
    assert LOCAL_CLUSTER_CONFIG["distributed.worker.profile.enabled"] is False
