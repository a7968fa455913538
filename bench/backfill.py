"""Backfill throughput on 1 and 2 local Dask workers, and the memory of one large object.

``python -m bench.backfill [--quick] [--json FILE]`` (from the checkout, with the ``bench``
extra installed).

Method:

- The archives are seeded (:mod:`bench.archives`): two days of CloudTrail objects
  (``{"Records": [...]}``) and VPC Flow Logs objects (header + default-format records) for
  two accounts in two regions, written to a temporary folder in the S3 layout.
- The filters are the bundled demo's: the built-in packs ``cis`` (CloudTrail) and
  ``vpc-flow-logs`` (:data:`PACKS`).
- Three ways over the same objects, timed in interleaved rounds (round 1: replay, 1 worker,
  2 workers; round 2: ...), median of the rounds with min and max: a single-process
  ``castlewatch replay`` (a glob of the objects, every minute held open to the end as a
  backfill holds it; in a child process, timed from its engine's start), and
  ``castlewatch backfill`` on a ``LocalCluster`` of 1 and of 2 worker processes (started
  before the rounds, with the settings of ``LOCAL_CLUSTER_CONFIG``: the time is listing,
  reading, evaluating, merging and writing). The ratio is the 1-worker time over the 2-worker time (target
  >= 1.8 on a machine with 2 idle cores: other work on the machine lowers it).
- Agreement: the three write the same datapoints (the JSON Lines sinks, compared sorted).
- Memory: one CloudTrail object of about 50 MB (decompressed) read in a fresh process by
  the file source (how ``replay`` reads it: the document whole) and streamed record by
  record (:mod:`castlewatch.engine.archive`, how a backfill task reads it): peak RSS of
  each, and the same process's RSS after imports.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.archives import archive_objects, write_folder

ROOT = Path(__file__).resolve().parent.parent
#: The ``metric_filters`` entries: the CIS monitoring filters and the VPC Flow Logs rejects.
PACKS = ("{pack: cis, log_group: CloudTrail/DefaultLogGroup}", "{pack: vpc-flow-logs, log_group: vpc-flow-logs}")
FIRST = _dt.date(2024, 3, 5)

#: Per mode: days of archives, minutes between deliveries, events per CloudTrail object,
#: records per flow log object, rounds, decompressed MB of the large object.
MODES = {
    "quick": {"days": 2, "every": 120, "events": 300, "flows": 1200, "rounds": 3, "object_mb": 50},
    "full": {"days": 2, "every": 60, "events": 600, "flows": 2000, "rounds": 5, "object_mb": 50},
    "smoke": {"days": 1, "every": 360, "events": 20, "flows": 40, "rounds": 1, "object_mb": 1},  # tests only
}


def _config(folder: Path, out: Path, name: str, replay: bool) -> str:
    if replay:
        trail = f"{folder}/AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"
        flow = f"{folder}/AWSLogs/*/vpcflowlogs/*/*/*/*/*.log.gz"
    else:
        trail = flow = str(folder)
    return ("metric_filters:\n" + "".join(f"  - {entry}\n" for entry in PACKS) +
            "sources:\n"
            f"  - {{type: file, path: '{trail}', log_group: CloudTrail/DefaultLogGroup, format: cloudtrail_archive}}\n"
            f"  - {{type: file, path: '{flow}', log_group: vpc-flow-logs, format: flow_log_file}}\n"
            f"sinks:\n  - {{type: jsonl, path: '{out / name}.jsonl'}}\n"
            + ("allowed_lateness_s: 1.0e+12\n" if replay else ""))


def _replay(folder: Path, out: Path) -> tuple[float, int]:
    """The single-process replay, timed in a child process (its engine's heap and threads
    then never share this process with the Dask clients and their schedulers)."""
    config = out / "replay-config.yaml"
    config.write_text(_config(folder, out, "replay", True), encoding="utf-8")
    child = subprocess.run([sys.executable, "-m", "bench.backfill", "replay-child", str(config)],
                           capture_output=True, text=True, cwd=ROOT, check=True)
    got = json.loads(child.stdout)
    return got["seconds"], got["events"]


def _replay_child(config_path: str) -> None:
    from castlewatch.engine.config import load_config_text
    from castlewatch.engine.runner import Engine, run_async

    config = load_config_text(Path(config_path).read_text(encoding="utf-8"), Path(config_path).parent)
    start = time.perf_counter()
    stats = run_async(Engine(config).replay())
    print(json.dumps({"seconds": time.perf_counter() - start, "events": stats.events_read}))


def _backfill(client: Any, folder: Path, out: Path, name: str, end: _dt.date) -> tuple[float, int, int, float]:
    from castlewatch.backfill.executor import worker_threads
    from castlewatch.backfill.run import list_sources, run_backfill
    from castlewatch.engine.config import load_config_text

    config = load_config_text(_config(folder, out, name, False), out)
    start = time.perf_counter()
    the_plan = list_sources(config, FIRST, end, worker_threads(client))
    report = run_backfill(config, the_plan, client)
    seconds = time.perf_counter() - start
    assert not report.unread, report.unread
    return seconds, report.stats.events_read, the_plan.objects, report.result.cpu_seconds


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(mode: str = "quick", workdir: str | None = None, progress=lambda message: None) -> dict[str, Any]:
    """Every figure of the module docstring, as a dict (JSON-able)."""
    from castlewatch.backfill.executor import dask_client

    m = MODES[mode]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp)
        folder, out = work / "bucket", work / "out"
        out.mkdir()
        progress("writing the archives")
        objects = archive_objects(FIRST, m["days"], seed=1, every_minutes=m["every"], events_per_object=m["events"],
                                  flow_records_per_object=m["flows"])
        size = write_folder(folder, objects)
        end = FIRST + _dt.timedelta(days=m["days"] - 1)
        times: dict[str, list[float]] = {"replay": [], "backfill_1": [], "backfill_2": []}
        cpu: dict[str, list[float]] = {"backfill_1": [], "backfill_2": []}
        events = objects_read = 0
        with dask_client(workers=1) as one, dask_client(workers=2) as two:
            for round_ in range(m["rounds"]):
                progress(f"round {round_ + 1} of {m['rounds']}")
                seconds, events = _replay(folder, out)
                times["replay"].append(seconds)
                for name, client in (("backfill_1", one), ("backfill_2", two)):
                    seconds, read, objects_read, cpu_seconds = _backfill(client, folder, out, name, end)
                    assert read == events, (name, read, events)
                    times[name].append(seconds)
                    cpu[name].append(cpu_seconds)
        outputs = {name: sorted((out / f"{name}.jsonl").read_text().splitlines()) for name in times}
        agrees = outputs["backfill_1"] == outputs["replay"] == outputs["backfill_2"]
        progress("memory of one large object")
        memory = large_object_memory(work, m["object_mb"])
    medians = {name: _spread(values) for name, values in times.items()}
    ratio = medians["backfill_1"]["median"] / medians["backfill_2"]["median"]
    return {
        "mode": mode,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "archive": {"objects": objects_read, "compressed_bytes": size, "events": events,
                    "datapoints": len(outputs["replay"])},
        "seconds": medians,
        "events_per_s": {name: events / spread["median"] for name, spread in medians.items()},
        "ratio_2_over_1_workers": ratio,
        # CPU seconds the workers' threads spent on the partitions, and the share of a core
        # each worker had while the backfill ran (1.0: an idle machine)
        "worker_cpu_seconds": {name: statistics.median(v) for name, v in cpu.items()},
        "core_share": {name: statistics.median(c / (t * w) for c, t in zip(cpu[name], times[name]))
                       for name, w in (("backfill_1", 1), ("backfill_2", 2))},
        "target_ratio": 1.8,
        "agrees": agrees,
        "large_object": memory,
    }


def large_object_memory(work: Path, megabytes: int) -> dict[str, Any]:
    """Peak RSS of a fresh process reading one CloudTrail object of about ``megabytes`` MB
    (decompressed) by the file source, and streamed (module docstring)."""
    from bench.generate import cloudtrail_events

    path = work / "large" / "object.json.gz"
    path.parent.mkdir()
    records, size = [], 0
    for line in cloudtrail_events(10**9, seed=5):
        records.append(orjson.loads(line))
        size += len(line) + 1
        if size >= megabytes * 1_000_000:
            break
    data = orjson.dumps({"Records": records})
    path.write_bytes(gzip.compress(data, compresslevel=1))
    del records
    out = {"decompressed_mb": len(data) / 1e6, "compressed_mb": path.stat().st_size / 1e6}
    for how in ("file_source", "streamed"):
        child = subprocess.run([sys.executable, "-m", "bench.backfill", "rss-child", how, str(path)],
                               capture_output=True, text=True, cwd=ROOT, check=True)
        out[how] = json.loads(child.stdout)
    return out


def _rss_child(how: str, path: str) -> None:
    """Read the object at ``path`` (``how``: ``file_source`` or ``streamed``); print JSON."""
    from bench.runner import peak_rss_mb

    import asyncio
    import io

    from castlewatch.engine.archive import RESTART, object_batches
    from castlewatch.engine.sources import SourceSpec, open_source

    spec = SourceSpec("file", "ct", path, "cloudtrail_archive")
    baseline = peak_rss_mb()
    start = time.perf_counter()
    events = 0
    if how == "file_source":
        async def main() -> int:
            n = 0
            async for batch in open_source(spec, None).batches(follow=False, stop=asyncio.Event()):
                n += len(batch)
            return n

        events = asyncio.run(main())
    else:
        for item in object_batches(lambda: io.open(path, "rb"), spec):
            assert item is not RESTART
            events += len(item.events)
    print(json.dumps({"events": events, "peak_mb": peak_rss_mb(), "after_import_mb": baseline,
                      "seconds": time.perf_counter() - start}))


def report_lines(r: dict[str, Any]) -> list[str]:
    """The figures as text lines."""
    s, e = r["seconds"], r["events_per_s"]
    lines = [
        f"backfill bench ({r['mode']}): {r['archive']['objects']} objects, {r['archive']['compressed_bytes'] / 1e6:.1f} MB "
        f"gzip, {r['archive']['events']} events, {r['archive']['datapoints']} datums; {r['cpu_count']} cores, "
        f"load average {', '.join(f'{x:.2f}' for x in r['load_average'])}",
    ]
    for name, label in (("replay", "replay, one process"), ("backfill_1", "backfill, 1 worker"),
                        ("backfill_2", "backfill, 2 workers")):
        lines.append(f"  {label:<22} {s[name]['median']:7.2f} s (min {s[name]['min']:.2f}, max {s[name]['max']:.2f})"
                     f"  {e[name]:>10,.0f} events/s")
    ratio = r["ratio_2_over_1_workers"]
    share = r["core_share"]
    lines.append(f"  workers' CPU: {r['worker_cpu_seconds']['backfill_1']:.2f} s on 1 worker, "
                 f"{r['worker_cpu_seconds']['backfill_2']:.2f} s on 2; share of a core each worker had: "
                 f"{share['backfill_1']:.0%} (1 worker), {share['backfill_2']:.0%} (2 workers)")
    lines.append(f"  2 workers over 1: {ratio:.2f}x (target >= {r['target_ratio']}x: "
                 f"{'met' if ratio >= r['target_ratio'] else 'missed'}); outputs agree: {r['agrees']}")
    big = r["large_object"]
    for how in ("file_source", "streamed"):
        lines.append(f"  one {big['decompressed_mb']:.0f} MB CloudTrail object, {how.replace('_', ' ')}: peak RSS "
                     f"{big[how]['peak_mb']:.0f} MB ({big[how]['after_import_mb']:.0f} MB after imports), "
                     f"{big[how]['seconds']:.2f} s")
    return lines


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "rss-child":
        _rss_child(argv[1], argv[2])
        return
    if len(argv) == 2 and argv[0] == "replay-child":
        _replay_child(argv[1])
        return
    mode = "quick" if "--quick" in argv else "full"
    result = run(mode, progress=lambda message: print(f"... {message}", file=sys.stderr))
    print("\n".join(report_lines(result)))
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
