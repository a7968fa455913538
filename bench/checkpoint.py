"""Checkpoint cost (issue 8 §3): a daemon catching up on a backlog against ``replay``.

Two measurements, each in a fresh child process (``python -m bench.checkpoint child
...``), so that every peak RSS is that process's own:

- **backlog**: a dense VPC Flow Logs backlog (:data:`BACKLOG_MINUTES` minutes of event
  time, :func:`bench.generate.vpc_flow_lines`) with three metric filters of the vpc-flow-logs
  pack, the demo's three until it had the RDP one (``VPCRejectedBytes`` publishes ``$bytes``:
  a value per rejected flow) and
  ``allowed_lateness_s: 3600``, the demo's own setting, so every minute of the backlog
  stays open while the backlog is read. ``Engine.replay()`` reads it once;
  ``Engine.run()`` (the daemon, a checkpoint every ``interval_s`` seconds) reads it to
  its end and is then stopped. Reported: both rates and the ratio daemon / replay; per
  checkpoint save, how long the event loop was held (``save_checkpoint`` awaited by the
  run loop) and, where the engine reports it, how long the write took; the checkpoint
  file's largest size; the longest stall of the event loop (a 20 ms ticker's worst
  lateness); the time from stop to exit; each process's peak RSS. The daemon's
  datapoints must be exactly replay's (``agrees``).
- **distinct**: one minute with ``distinct`` distinct metric values, read by the daemon
  with a checkpoint: peak RSS (and after imports), checkpoint size.

Nothing is timed in the tests; ``castlewatch bench`` reports the figures, as ratios where
there is a reference (replay).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: Minutes of event time in the backlog: all of them stay open under a lateness of 3600 s.
BACKLOG_MINUTES = 30
ALLOWED_LATENESS_S = 3600
#: Sizes per mode (``scale`` multiplies them): backlog events, distinct values in one minute.
SIZES = {
    "quick": {"backlog": 300_000, "distinct": 100_000, "interval_s": 0.2},
    "full": {"backlog": 3_000_000, "distinct": 1_000_000, "interval_s": 0.5},
}
VPC_GROUP = "vpc-flow-logs"
#: The target: the daemon's rate over replay's, checked on backlogs of at least this many events.
TARGET_RATIO = 0.8
TARGET_MIN_EVENTS = 300_000
_ROOT = Path(__file__).resolve().parent.parent


def write_backlog(path: Path, events: int, seed: int) -> int:
    """A VPC Flow Logs file of ``events`` lines over :data:`BACKLOG_MINUTES` minutes; its size."""
    from bench import generate

    per_step = max(1, round(events / (BACKLOG_MINUTES * 60)))
    return generate.write_stream(path, "vpc", events, seed, events_per_step=per_step)


def write_distinct(path: Path, distinct: int) -> int:
    """``distinct`` lines ``<epoch s> <value>`` in one minute, every value different (a
    latency in ms with three decimals, so a double is needed to hold it), in no particular
    order; the file's size."""
    from bench.generate import EPOCH_S

    step = 104_729  # a prime: i -> i * step mod n visits every residue once (n not a multiple)
    n = distinct if distinct % step else distinct + 1
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        for start in range(0, distinct, 10_000):
            fh.write("".join(f"{EPOCH_S + i % 60} {(i * step) % n / 1000}\n"
                             for i in range(start, min(start + 10_000, distinct))))
    return path.stat().st_size


def backlog_config(log: Path, out: Path) -> dict[str, Any]:
    from bench.workloads import select_filters

    filters = select_filters(("VPCRejectedRequests", "VPCRejectedSSH", "VPCRejectedBytes"))
    return {
        "metric_filters": [f.to_aws() | {"logGroupName": VPC_GROUP} for f in filters],
        "sources": [{"type": "file", "path": str(log), "log_group": VPC_GROUP,
                     "timestamp": {"field": "$11", "format": "epoch_s"}}],
        "sinks": [{"type": "jsonl", "path": str(out / "datapoints.jsonl")}],
        "allowed_lateness_s": ALLOWED_LATENESS_S,
    }


def distinct_config(log: Path, out: Path) -> dict[str, Any]:
    transformation = {"metricName": "Value", "metricNamespace": "bench", "metricValue": "$value"}
    return {
        "metric_filters": [{"filterName": "value", "logGroupName": "g", "filterPattern": "[t, value]",
                            "metricTransformations": [transformation]}],
        "sources": [{"type": "file", "path": str(log), "log_group": "g",
                     "timestamp": {"field": "$1", "format": "epoch_s"}}],
        "sinks": [{"type": "jsonl", "path": str(out / "datapoints.jsonl")}],
        "allowed_lateness_s": ALLOWED_LATENESS_S,
    }


# ---- the parent: run the children, compare, report ----------------------------------------------


def _child(args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "bench.checkpoint", "child", json.dumps(args)],
                          capture_output=True, text=True, env=env, cwd=_ROOT, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sorted_lines(path: Path) -> list[str]:
    return sorted(path.read_text(encoding="utf-8").splitlines()) if path.exists() else []


def checkpoint_cost(work: Path, mode: str = "quick", scale: float = 1.0, seed: int = 1,
                    progress=lambda message: None) -> dict[str, Any]:
    """Measure the checkpoint's cost (see the module docstring); the ``checkpoint`` part of
    the suite's JSON document.

    Returns ``backlog`` (``events``, ``bytes``, ``minutes``, ``interval_s``, ``replay`` and
    ``daemon`` child results, ``ratio`` daemon / replay events per second, ``agrees``),
    ``distinct`` (``values``, the daemon child's result) and ``ratios``. A child that
    failed gives ``{"error": ...}`` in its place.
    """
    sizes = SIZES[mode]
    work = work / "checkpoint"
    work.mkdir(parents=True, exist_ok=True)
    n = max(200, round(sizes["backlog"] * scale))
    interval = sizes["interval_s"]
    progress(f"checkpoint cost: generating a {BACKLOG_MINUTES}-minute VPC backlog of {n:,} events")
    log = work / "backlog.log"
    size = write_backlog(log, n, seed)
    runs = {}
    for kind in ("replay", "daemon"):
        progress(f"checkpoint cost: {kind} of the backlog in a child process")
        out = work / f"backlog-{kind}"
        out.mkdir(exist_ok=True)
        (out / "datapoints.jsonl").unlink(missing_ok=True)
        ck = work / "backlog.checkpoint"
        ck.unlink(missing_ok=True)
        runs[kind] = _child({"kind": kind, "config": backlog_config(log, out), "events": n, "interval_s": interval,
                             "checkpoint": str(ck), "base": str(work)})
    agrees = _sorted_lines(work / "backlog-daemon" / "datapoints.jsonl") == _sorted_lines(
        work / "backlog-replay" / "datapoints.jsonl")
    log.unlink(missing_ok=True)
    backlog: dict[str, Any] = {"events": n, "bytes": size, "minutes": BACKLOG_MINUTES,
                               "allowed_lateness_s": ALLOWED_LATENESS_S, "interval_s": interval, **runs,
                               "agrees": agrees}
    ratios: dict[str, float] = {}
    if "error" not in runs["replay"] and "error" not in runs["daemon"]:
        ratios["daemon_vs_replay"] = runs["daemon"]["ev_s"] / runs["replay"]["ev_s"]
    m = max(100, round(sizes["distinct"] * scale))
    progress(f"checkpoint cost: one minute with {m:,} distinct values, daemon in a child process")
    dlog = work / "distinct.log"
    write_distinct(dlog, m)
    out = work / "distinct-daemon"
    out.mkdir(exist_ok=True)
    (out / "datapoints.jsonl").unlink(missing_ok=True)
    ck = work / "distinct.checkpoint"
    ck.unlink(missing_ok=True)
    distinct = _child({"kind": "daemon", "config": distinct_config(dlog, out), "events": m, "interval_s": interval,
                       "checkpoint": str(ck), "base": str(work)})
    if "error" not in distinct:
        written = _sorted_lines(out / "datapoints.jsonl")
        distinct["values_written"] = sum(len(json.loads(line)["Values"]) for line in written)
    dlog.unlink(missing_ok=True)
    return {"mode": mode, "backlog": backlog, "distinct": {"values": m, "daemon": distinct}, "ratios": ratios,
            "target": _target(ratios.get("daemon_vs_replay"), n, agrees)}


def _target(ratio: float | None, events: int, agrees: bool) -> dict[str, Any]:
    """The issue's target: a daemon catching up on a backlog runs near replay's rate, with
    the same output. Checked from :data:`TARGET_MIN_EVENTS` events (below, start-up
    dominates both runs)."""
    text = f"daemon catching up >= {TARGET_RATIO:.0%} of replay's events/s, same datapoints"
    if ratio is None:
        return {"target": text, "value": None, "threshold": TARGET_RATIO, "status": "not measured"}
    if events < TARGET_MIN_EVENTS:
        return {"target": text, "value": ratio, "threshold": TARGET_RATIO, "status": "not checked",
                "note": f"a backlog of {events:,} events; the target is checked from {TARGET_MIN_EVENTS:,}"}
    return {"target": text, "value": ratio, "threshold": TARGET_RATIO,
            "status": "met" if ratio >= TARGET_RATIO and agrees else "missed"}


# ---- the children -----------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    from bench.runner import peak_rss_mb

    return peak_rss_mb()


async def _ticker(stalls: list[float], stop: asyncio.Event, period: float = 0.02) -> None:
    """Note how late each tick of a ``period`` timer fires: the event loop's stalls."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(period)
        stalls.append(loop.time() - t - period)


async def _daemon(engine, checkpoint: Path, events: int, interval: float) -> dict[str, Any]:
    saves: list[float] = []
    sizes: list[int] = []
    real = engine.save_checkpoint

    async def timed(*args, **kwargs):
        start = time.perf_counter()
        await real(*args, **kwargs)
        saves.append(time.perf_counter() - start)
        sizes.append(checkpoint.stat().st_size if checkpoint.exists() else 0)

    engine.save_checkpoint = timed
    stop, ticking = asyncio.Event(), asyncio.Event()
    stalls: list[float] = []
    ticker = asyncio.create_task(_ticker(stalls, ticking))
    start = time.perf_counter()
    task = asyncio.create_task(engine.run(stop, checkpoint_interval_s=interval))
    while engine.stats.events_read < events and not task.done():
        await asyncio.sleep(0.005)
    caught_up = time.perf_counter() - start
    reading_peak = _peak_rss_mb()
    stop.set()
    stopped = time.perf_counter()
    await task
    exit_s = time.perf_counter() - stopped
    ticking.set()
    await ticker
    during = saves[:-1]  # the last one is the shutdown's
    out: dict[str, Any] = {
        "seconds": caught_up,
        "ev_s": engine.stats.events_read / caught_up,
        "events_read": engine.stats.events_read,
        "saves": len(during),
        "save_loop_s": {"mean": sum(during) / len(during) if during else 0.0, "max": max(during, default=0.0)},
        "checkpoint_bytes_max": max(sizes, default=0),
        "checkpoint_bytes_final": sizes[-1] if sizes else 0,
        "loop_stall_max_s": max(stalls, default=0.0),
        "exit_s": exit_s,
        "peak_rss_reading_mb": reading_peak,
    }
    writer = getattr(engine, "checkpoints", None)
    if writer is not None:
        out["writer"] = dict(writer.report)
    return out


def _run_child(args: dict[str, Any]) -> dict[str, Any]:
    from castlewatch.engine.config import load_config_text
    from castlewatch.engine.runner import Engine, run_async

    after_import = _peak_rss_mb()
    config = load_config_text(json.dumps(args["config"]), Path(args["base"]))
    if args["kind"] == "replay":
        start = time.perf_counter()
        stats = run_async(Engine(config).replay())
        seconds = time.perf_counter() - start
        result = {"seconds": seconds, "ev_s": stats.events_read / seconds, "events_read": stats.events_read}
    else:
        checkpoint = Path(args["checkpoint"])
        engine = Engine(config, checkpoint=checkpoint)
        result = run_async(_daemon(engine, checkpoint, args["events"], args["interval_s"]))
    result["peak_rss_mb"] = _peak_rss_mb()
    result["after_import_mb"] = after_import
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        print(json.dumps(_run_child(json.loads(sys.argv[2]))))
    else:
        sys.exit("usage: python -m bench.checkpoint child ARGS-JSON")
