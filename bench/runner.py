"""Run the suite: generate the streams, time every implementation, check agreement.

Method (the honesty rules of issue 4):

- Every implementation reads the same generated file, line by line in text mode, in
  this process (``grep`` excepted), and gets each event without its newline.
- Each figure is the median of ``runs`` timed runs, with min and max. Runs are
  interleaved (round 1: floor, grep, castlewatch, naive, peers; round 2: ...), so
  a slow phase of the machine hits every column alike and the ratios survive it.
- The floors are measured on the same file in the same rounds: iterating over the
  lines in Python doing nothing, and ``grep -cF`` (a subprocess).
- The slow peer (aws-json-term-matcher) is timed on the first events of the stream;
  castlewatch's count on that slice is taken for its correctness check.
- Every implementation must find the same matches as castlewatch (per filter for a
  pack, and the same metric value sum for value extraction); a disagreement is
  recorded with the first event on which the two differ, and never stops the run.
- Nothing in castlewatch knows about this data: it is evaluated through its public
  API and engine exactly as a user's data would be.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import castlewatch
from castlewatch import compile_pattern
from castlewatch.engine.config import load_config_text
from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.model import LogEvent, MetricFilter, Stats
from castlewatch.engine.runner import Engine, run_async
from castlewatch.grammar import FilterPattern, literals
from castlewatch.grammar.parser import parse

from bench import generate
from bench.checkpoint import checkpoint_cost
from bench.naive import NaivePack, NaivePattern, metric_value
from bench.peers import AWS_JSON, MOTO, make_peer, version
from bench.workloads import WORKLOADS, Workload, cis_patterns, e2e_filters, select_filters, vpc_four_filters

SCHEMA_VERSION = 1
MATCH = "match"  # the count key of a single-pattern workload

#: Sizes and repetitions per mode; ``scale`` multiplies the event counts.
MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "events": {"cloudtrail": 20_000, "vpc": 100_000, "app": 100_000, "vpc-e2e": 100_000, "vpc-late": 100_000,
                   "vpc-late-sorted": 100_000},
        "peer_slice": {AWS_JSON: {"match": 60, "pack": 6}, AWS_JSON + " (parsed once)": {"match": 2_000, "pack": 300}},
        "rss_events": 300_000,
        "runs": 3,
        "compile_repeats": 30,
    },
    "full": {
        "events": {"cloudtrail": 200_000, "vpc": 2_000_000, "app": 2_000_000, "vpc-e2e": 500_000,
                   "vpc-late": 500_000, "vpc-late-sorted": 500_000},
        "peer_slice": {AWS_JSON: {"match": 300, "pack": 30},
                       AWS_JSON + " (parsed once)": {"match": 20_000, "pack": 3_000}},
        "rss_events": 10_000_000,
        "runs": 5,
        "compile_repeats": 200,
    },
}
RSS_TARGET_MB = 200.0
RSS_TARGET_EVENTS = 10_000_000
COMPILE_TARGET_MS = 1.0
EXAMPLE_CHARS = 2_000


# ---- outcomes and implementations ----------------------------------------------------------


@dataclass
class Outcome:
    """What one run of an implementation found.

    ``counts``: matches per filter name (:data:`MATCH` for a single pattern), None for a
    filter the implementation cannot run; ``value_sum``: sum of the metric values
    (``extract``); ``extra``: anything else worth reporting; ``seconds``: the time of the
    run itself when the implementation measures it (a process whose output the bench reads
    afterwards: that reading is not the implementation's time), else None (the runner times
    the whole ``run``).
    """

    counts: dict[str, int | None]
    value_sum: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None


class Impl:
    """One implementation of a workload: ``run(path)`` is timed, ``evaluate(message)``
    gives per-event results (per filter) to locate a disagreement."""

    key = ""
    label = ""
    called_as = ""
    slice_events: int | None = None  # timed on the first N events only

    def run(self, path: Path) -> Outcome:
        raise NotImplementedError

    def evaluate(self, message: str) -> list[bool | None]:
        raise NotImplementedError

    def notes(self) -> list[str]:
        return []


def _count_matches(path: Path, predicate: Callable[[str], bool]) -> int:
    """The loop every single-pattern implementation is timed in (the same for all)."""
    n = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if predicate(line.rstrip("\n")):
                n += 1
    return n


def _count_pack(path: Path, evaluate: Callable[[str], list], k: int) -> list[int]:
    counts = [0] * k
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            for i, hit in enumerate(evaluate(line.rstrip("\n"))):
                if hit:
                    counts[i] += 1
    return counts


class FloorPython(Impl):
    key, label = "floor", "floor: Python line read"
    called_as = "for line in open(path, encoding='utf-8'): pass"

    def run(self, path: Path) -> Outcome:
        with open(path, encoding="utf-8") as fh:
            for _ in fh:
                pass
        return Outcome({})


class FloorGrep(Impl):
    key, label = "grep", "floor: grep -cF"

    def __init__(self, literals: tuple[str, ...]) -> None:
        self.command = ["grep", "-cF"] + [arg for lit in literals for arg in ("-e", lit)]
        self.called_as = " ".join(self.command[:2] + [repr(a) if a != "-e" else a for a in self.command[2:]]) + " FILE"

    def run(self, path: Path) -> Outcome:
        done = subprocess.run(self.command + [str(path)], capture_output=True, text=True, check=False)
        return Outcome({MATCH: int(done.stdout.strip() or 0)})


class CastlewatchPattern(Impl):
    key, label = "castlewatch", "castlewatch"
    called_as = "castlewatch.compile_pattern(p).matches(message)"

    def __init__(self, pattern: str) -> None:
        self.pattern = compile_pattern(pattern)

    def run(self, path: Path) -> Outcome:
        return Outcome({MATCH: _count_matches(path, self.pattern.matches)})

    def evaluate(self, message: str) -> list[bool | None]:
        return [self.pattern.matches(message)]


class NaiveSingle(Impl):
    key, label = "naive", "naive"
    called_as = "bench.naive.NaivePattern(p).matches(message): orjson.loads + AST walk"

    def __init__(self, pattern: str) -> None:
        self.pattern = NaivePattern(pattern)

    def run(self, path: Path) -> Outcome:
        return Outcome({MATCH: _count_matches(path, self.pattern.matches)})

    def evaluate(self, message: str) -> list[bool | None]:
        return [self.pattern.matches(message)]


def _noop(key, timestamp, value) -> None:
    pass


class CastlewatchEvaluator(Impl):
    """The engine's LogGroupEvaluator over every event (a pack, or value extraction)."""

    key, label = "castlewatch", "castlewatch"
    called_as = "LogGroupEvaluator(filters).evaluate(LogEvent(...), emit)"

    def __init__(self, filters: list[MetricFilter], group: str, collect_values: bool) -> None:
        self.filters, self.group, self.collect_values = filters, group, collect_values

    def run(self, path: Path) -> Outcome:
        stats = Stats()
        evaluate = LogGroupEvaluator(self.filters, stats).evaluate
        group = self.group
        total = [0.0]
        if self.collect_values:

            def emit(key, timestamp, value) -> None:
                total[0] += value

        else:
            emit = _noop
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                evaluate(LogEvent(0, line.rstrip("\n"), group), emit)
        return Outcome(dict(stats.matched), total[0] if self.collect_values else None)

    def evaluate(self, message: str) -> list[bool | None]:
        stats = Stats()
        LogGroupEvaluator(self.filters, stats).evaluate(LogEvent(0, message, self.group), _noop)
        return [stats.matched[f.filter_name] > 0 for f in self.filters]


class CastlewatchLoop(Impl):
    """Each filter's ``FilterPattern.matches`` on each event: no shared work."""

    key, label = "castlewatch_loop", "castlewatch: per-pattern matches() loop"
    called_as = "[compile_pattern(p).matches(message) for p in pack]"

    def __init__(self, filters: list[MetricFilter]) -> None:
        self.names = [f.filter_name for f in filters]
        self.matchers = [compile_pattern(f.filter_pattern).matches for f in filters]

    def evaluate(self, message: str) -> list[bool | None]:
        return [m(message) for m in self.matchers]

    def run(self, path: Path) -> Outcome:
        matchers = self.matchers
        counts = [0] * len(matchers)
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                message = line.rstrip("\n")
                for i, m in enumerate(matchers):
                    if m(message):
                        counts[i] += 1
        return Outcome(dict(zip(self.names, counts)))


class NaiveFilters(Impl):
    """The naive interpreter on a pack (one decode per event) or with value extraction."""

    key, label = "naive", "naive"
    called_as = "bench.naive: orjson.loads once per event, walk each pattern's AST"

    def __init__(self, filters: list[MetricFilter], collect_values: bool) -> None:
        self.names = [f.filter_name for f in filters]
        self.pack = NaivePack([f.filter_pattern for f in filters])
        self.collect_values = collect_values
        self.value_refs = [f.metric_transformations[0].metric_value for f in filters]

    def evaluate(self, message: str) -> list[bool | None]:
        return self.pack.evaluate(message)

    def run(self, path: Path) -> Outcome:
        if not self.collect_values:
            return Outcome(dict(zip(self.names, _count_pack(path, self.pack.evaluate, len(self.names)))))
        (pattern,), (ref,) = self.pack.patterns, self.value_refs
        name = ref[1:]  # "$bytes" -> "bytes" (a named field of a space-delimited pattern)
        n, total = 0, 0.0
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                values = pattern.extract(line.rstrip("\n"))
                if values is not None:
                    n += 1
                    value = metric_value(values.get("$" + name))
                    if value is not None:
                        total += value
        return Outcome({self.names[0]: n}, total)


class Peer(Impl):
    """A peer (:mod:`bench.peers`) on a single pattern or a pack."""

    def __init__(self, peer, names: list[str], slice_events: int | None) -> None:
        self.peer, self.names, self.slice_events = peer, names, slice_events
        self.key = self.label = peer.name
        self.called_as = peer.called_as

    def evaluate(self, message: str) -> list[bool | None]:
        return self.peer.evaluate(message)

    def run(self, path: Path) -> Outcome:
        counts = _count_pack(path, self.peer.evaluate, len(self.names))
        return Outcome(
            {n: (None if p.rejected else c) for n, p, c in zip(self.names, self.peer.patterns, counts)}
        )

    def notes(self) -> list[str]:
        out = []
        for name, p in zip(self.names, self.peer.patterns):
            where = "" if name == MATCH else f"{name}: "
            if p.rejected:
                out.append(f"{where}pattern rejected: {p.rejected}")
            elif p.errors:
                out.append(f"{where}raised on {p.errors} event evaluations, counted as no match: {p.first_error}")
        return out


class MotoPeer(Peer):
    def run(self, path: Path) -> Outcome:
        return Outcome({MATCH: _count_matches(path, self.peer.predicate())})


class Replay(Impl):
    """``Engine(config).replay()``: file source -> evaluation -> aggregation -> JSONL sink."""

    key, label = "castlewatch", "castlewatch replay"
    called_as = "Engine(load_config_text(config)).replay(), lines source, jsonl sink"

    def __init__(self, workload: Workload, filters: list[MetricFilter], work: Path) -> None:
        self.workload, self.filters, self.work = workload, filters, work
        self.runs = 0

    def config_text(self, path: Path, out: Path) -> str:
        config = {
            "metric_filters": [f.to_aws() | {"logGroupName": self.workload.log_group} for f in self.filters],
            "sources": [{"type": "file", "path": str(path), "log_group": self.workload.log_group,
                         "timestamp": self.workload.timestamp}],
            "sinks": [{"type": "jsonl", "path": str(out / "datapoints.jsonl")}],
            "allowed_lateness_s": 3600,
        }
        return json.dumps(config)

    def run(self, path: Path) -> Outcome:
        self.runs += 1
        out = self.work / f"{self.workload.name}-run{self.runs}"
        out.mkdir(parents=True, exist_ok=True)
        engine = Engine(load_config_text(self.config_text(path, out), self.work))
        stats = run_async(engine.replay())
        return Outcome(
            dict(stats.matched),
            extra={"sink": str(out / "datapoints.jsonl"), "datapoints": stats.datapoints_written,
                   "malformed": dict(stats.malformed), "late_events": stats.late_events},
        )


class FloorOrjson(Impl):
    key, label = "orjson", "orjson.loads on every line"
    called_as = "for line in open(path, encoding='utf-8'): orjson.loads(line)"

    def run(self, path: Path) -> Outcome:
        import orjson

        loads = orjson.loads
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                loads(line)
        return Outcome({})


def e2e_config(w: Workload, path: Path, out: Path, filters: list[MetricFilter]) -> str:
    """The config of an ``e2e`` workload: one file source, the JSON Lines sink ``out``."""
    return json.dumps({
        "metric_filters": [f.to_aws() | {"logGroupName": w.log_group} for f in filters],
        "sources": [{"type": "file", "path": str(path), "log_group": w.log_group, "timestamp": w.timestamp}],
        "sinks": [{"type": "jsonl", "path": str(out)}],
    })


class EndToEnd(Impl):
    """``castlewatch replay --config FILE`` in a fresh process: start-up, reading, evaluation,
    aggregation and the JSON Lines sink, all timed (issue 11)."""

    key, label = "castlewatch", "castlewatch replay (new process)"
    called_as = "python -m castlewatch replay --config FILE (file source, jsonl sink), start-up included"
    same_events = False

    def __init__(self, workload: Workload, work: Path, key: str = "castlewatch", path: Path | None = None) -> None:
        self.workload, self.work, self.path = workload, work, path
        compile_package()
        self.filters = e2e_filters(workload)
        self.runs = 0
        if key != "castlewatch":
            self.key, self.label = key, "castlewatch replay, the same events in time order"
            self.same_events = True

    def run(self, path: Path) -> Outcome:
        self.runs += 1
        out = self.work / f"{self.workload.name}-{self.key}-run{self.runs}.jsonl"
        config = self.work / f"{self.workload.name}-{self.key}.json"
        config.write_text(e2e_config(self.workload, path, out, self.filters), encoding="utf-8")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "castlewatch", "replay", "--config", str(config)],
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start  # the process alone: reading its sink below is the bench's work
        if done.returncode != 0:
            raise RuntimeError(f"castlewatch replay exited {done.returncode}: {done.stderr[-2000:]}")
        totals = sink_totals(str(out))
        return Outcome({name: int(t["sample_count"]) for name, t in totals.items()},
                       extra={"sink": str(out), "sink_totals": totals}, seconds=seconds)


def compile_package() -> None:
    """Write castlewatch's bytecode, as installing it does: a process started with
    ``PYTHONDONTWRITEBYTECODE`` (or from a read-only checkout) would otherwise compile every
    module again, which is not what start-up costs an installed castlewatch."""
    import compileall

    compileall.compile_dir(str(Path(castlewatch.__file__).parent), quiet=2)


def reference_replay(w: Workload, path: Path, out: Path) -> Stats:
    """The same job in this process through the general evaluator (the reference), writing
    the JSON Lines sink ``out``."""
    engine = Engine(load_config_text(e2e_config(w, path, out, e2e_filters(w)), out.parent))
    for fast in engine.batches.values():
        if fast is not None:  # a log group without a batch plan is on the general path already
            fast.enabled = False
    return run_async(engine.replay())


def sink_totals(path: str) -> dict[str, dict[str, float]]:
    """Per metric name, the SampleCount and Sum written to a JSON Lines sink."""
    totals: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            datum = json.loads(line)
            t = totals.setdefault(datum["MetricName"], {"sample_count": 0, "sum": 0.0})
            t["sample_count"] += sum(datum["Counts"])
            t["sum"] += sum(v * c for v, c in zip(datum["Values"], datum["Counts"]))
    return totals


# ---- timing ------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _slice(path: Path, n: int, work: Path) -> Path:
    """A file with the first ``n`` lines of ``path`` (kept for reuse)."""
    target = work / f"{path.stem}.first{n}{path.suffix}"
    if not target.exists():
        with open(path, encoding="utf-8") as src, open(target, "w", encoding="utf-8", newline="\n") as dst:
            for i, line in enumerate(src):
                if i == n:
                    break
                dst.write(line)
    return target


def _first_difference(path: Path, ours: Impl, theirs: Impl, index: int) -> dict | None:
    """The first event of ``path`` on which filter ``index`` differs between two implementations."""
    peer = getattr(theirs, "peer", None)
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            message = line.rstrip("\n")
            errors = [p.errors for p in peer.patterns] if peer is not None else None
            a, b = ours.evaluate(message)[index], theirs.evaluate(message)[index]
            if a != b:
                example = {
                    "event_number": number,
                    "event": message[:EXAMPLE_CHARS] + ("…" if len(message) > EXAMPLE_CHARS else ""),
                    "castlewatch": a,
                    theirs.key: b,
                }
                if peer is not None:
                    p = peer.patterns[index]
                    example["pattern_given"] = p.text
                    if p.errors > errors[index]:
                        example["raised"] = p.last_error
                return example
    return None


# ---- the suite ---------------------------------------------------------------------------------


class Suite:
    """One run of the suite (see :func:`run_suite` for the arguments)."""

    def __init__(self, mode: str, scale: float, runs: int, work: Path, seed: int,
                 progress: Callable[[str], None], only: tuple[str, ...] | None) -> None:
        self.mode, self.scale, self.runs, self.work, self.seed = mode, scale, runs, work, seed
        self.params = MODES[mode]
        self.progress = progress
        self.only = only
        self.streams: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.grep_available = shutil.which("grep") is not None

    def events(self, stream: str) -> int:
        return max(20, round(self.params["events"][stream] * self.scale))

    def stream(self, name: str) -> Path:
        if name not in self.streams:
            n = self.events(name)
            path = self.work / f"{name}.log"
            self.progress(f"generating {n:,} {name} events")
            size = generate.write_stream(path, name, n, self.seed)
            self.streams[name] = {"events": n, "bytes": size, "avg_event_bytes": round(size / n, 1), "path": path}
        return self.streams[name]["path"]

    # -- one workload --

    def implementations(self, w: Workload) -> tuple[list[Impl], list[str]]:
        impls: list[Impl] = [FloorPython()]
        skipped = []
        if self.grep_available:
            impls.append(FloorGrep(w.grep))
        else:
            skipped.append("grep: not found on PATH")
        if w.kind == "match":
            impls += [CastlewatchPattern(w.pattern), NaiveSingle(w.pattern)]
            names = [MATCH]
            patterns = [w.pattern]
        elif w.kind in ("pack", "extract"):
            filters = select_filters(w.filters)
            names = [f.filter_name for f in filters]
            patterns = [f.filter_pattern for f in filters]
            impls.append(CastlewatchEvaluator(filters, w.log_group, collect_values=w.kind == "extract"))
            if w.kind == "pack":
                impls.append(CastlewatchLoop(filters))
            impls.append(NaiveFilters(filters, collect_values=w.kind == "extract"))
        elif w.kind == "e2e":
            impls.append(EndToEnd(w, self.work))
            if w.compare == "orjson":
                impls.append(FloorOrjson())
            elif w.compare == "in_order":
                impls.append(EndToEnd(w, self.work, "in_order", self.stream(w.in_order_stream)))
            return impls, skipped
        else:
            impls.append(Replay(w, select_filters(w.filters), self.work))
            return impls, skipped
        for name in w.peers:
            peer = make_peer(name, patterns)
            if isinstance(peer, str):
                skipped.append(f"{name}: {peer}")
                continue
            if name == MOTO:
                impls.append(MotoPeer(peer, names, None))
            else:
                n = max(2, round(self.params["peer_slice"][name][w.kind] * min(1.0, self.scale * 10)))
                impls.append(Peer(peer, names, min(n, self.events(w.stream))))
        return impls, skipped

    def run_workload(self, w: Workload) -> dict[str, Any]:
        path = self.stream(w.stream)
        info = self.streams[w.stream]
        impls, skipped = self.implementations(w)
        paths = {impl.key: _slice(path, impl.slice_events, self.work) if impl.slice_events
                 else getattr(impl, "path", None) or path for impl in impls}
        times: dict[str, list[float]] = {impl.key: [] for impl in impls}
        outcomes: dict[str, Outcome] = {}
        for r in range(self.runs):
            self.progress(f"{w.name}: round {r + 1} of {self.runs}")
            for impl in impls:
                start = time.perf_counter()
                outcome = impl.run(paths[impl.key])
                elapsed = time.perf_counter() - start
                times[impl.key].append(elapsed if outcome.seconds is None else outcome.seconds)
                outcomes[impl.key] = outcome
        results: dict[str, Any] = {}
        for impl in impls:
            p = paths[impl.key]
            events = info["events"] if p == path or getattr(impl, "same_events", False) else impl.slice_events
            size = info["bytes"] if p == path else p.stat().st_size
            o = outcomes[impl.key]
            entry: dict[str, Any] = {
                "label": impl.label,
                "called_as": impl.called_as,
                "events": events,
                "bytes": size,
                "runs": len(times[impl.key]),
                "seconds": spread(times[impl.key]),
                "ev_s": spread([events / t for t in times[impl.key]]),
                "mb_s": spread([size / 1e6 / t for t in times[impl.key]]),
            }
            if impl.key != "floor":
                entry["counts"] = o.counts
                entry["matches"] = sum(c for c in o.counts.values() if c is not None)
            if o.value_sum is not None:
                entry["value_sum"] = o.value_sum
            if o.extra:
                entry["extra"] = {k: v for k, v in o.extra.items() if k != "sink"}
            if impl.notes():
                entry["notes"] = impl.notes()
            results[impl.key] = entry
        record: dict[str, Any] = {
            "name": w.name,
            "title": w.title,
            "stream": w.stream,
            "kind": w.kind,
            "events": info["events"],
            "bytes": info["bytes"],
            "results": results,
            "skipped": skipped,
        }
        if w.kind == "match":
            record["pattern"] = w.pattern
        elif w.kind == "e2e":
            record["filters"] = {f.filter_name: f.filter_pattern for f in e2e_filters(w)}
        else:
            record["filters"] = {f.filter_name: f.filter_pattern for f in select_filters(w.filters)}
        record["disagreements"] = self.agreement(w, impls, outcomes, paths, path, results)
        for impl in impls:
            if impl.key not in ("floor", "grep") or (impl.key == "grep" and w.grep_exact):
                results[impl.key]["agrees"] = not any(d["implementation"] == impl.key for d in record["disagreements"])
        return record

    # -- correctness guard --

    def agreement(self, w: Workload, impls: list[Impl], outcomes: dict[str, Outcome], paths: dict[str, Path],
                  path: Path, results: dict) -> list[dict]:
        ours = next(i for i in impls if i.key == "castlewatch")
        mine = outcomes["castlewatch"]
        found: list[dict] = []
        if w.kind == "replay":
            return self.replay_agreement(w, mine, results)
        if w.kind == "e2e":
            return self.e2e_agreement(w, outcomes, path, results)
        for impl in impls:
            if impl.key in ("castlewatch", "floor") or (impl.key == "grep" and not w.grep_exact):
                continue
            theirs = outcomes[impl.key]
            p = paths[impl.key]
            if p != path:  # a slice: castlewatch's own counts on it
                reference = ours.run(p)
                results[impl.key]["castlewatch_counts_on_slice"] = reference.counts
            else:
                reference = mine
            for name, count in theirs.counts.items():
                expected = reference.counts.get(name)
                if count is None:
                    found.append({"implementation": impl.key, "filter": name, "kind": "rejected",
                                  "castlewatch": expected, impl.key: None,
                                  "detail": next((n for n in impl.notes() if n.startswith(f"{name}:")), "")})
                    continue
                if count == expected:
                    continue
                d = {"implementation": impl.key, "filter": name, "kind": "count", "castlewatch": expected,
                     impl.key: count, "events": results[impl.key]["events"]}
                if impl.key != "grep":
                    index = list(theirs.counts).index(name)
                    d["example"] = _first_difference(p, ours, impl, index)
                found.append(d)
            if w.kind == "extract" and theirs.value_sum is not None and not math.isclose(
                theirs.value_sum, reference.value_sum or 0.0, rel_tol=1e-12
            ):
                found.append({"implementation": impl.key, "kind": "value_sum", "castlewatch": reference.value_sum,
                              impl.key: theirs.value_sum})
        return found

    def replay_agreement(self, w: Workload, mine: Outcome, results: dict) -> list[dict]:
        """Replay finds what the matcher-only workload found, and the sink holds it."""
        found = []
        base = self.results.get(w.baseline)
        if base is not None:
            expected = base["results"]["castlewatch"]["counts"]
            for name, count in mine.counts.items():
                if count != expected.get(name):
                    found.append({"implementation": "castlewatch", "filter": name, "kind": "replay_vs_matcher",
                                  "castlewatch": expected.get(name), "replay": count})
        totals = sink_totals(mine.extra["sink"])
        results["castlewatch"]["sink_totals"] = totals
        for f in select_filters(w.filters):
            metric = f.metric_transformations[0].metric_name
            written = totals.get(metric, {"sample_count": 0, "sum": 0.0})
            if written["sample_count"] != mine.counts.get(f.filter_name):
                found.append({"implementation": "castlewatch", "filter": f.filter_name, "kind": "sink_vs_matches",
                              "castlewatch": mine.counts.get(f.filter_name), "sink": written["sample_count"]})
            if base is not None and "value_sum" in base["results"]["castlewatch"]:
                if not math.isclose(written["sum"], base["results"]["castlewatch"]["value_sum"], rel_tol=1e-12):
                    found.append({"implementation": "castlewatch", "filter": f.filter_name, "kind": "sink_sum",
                                  "castlewatch": base["results"]["castlewatch"]["value_sum"], "sink": written["sum"]})
        return found

    def e2e_agreement(self, w: Workload, outcomes: dict[str, Outcome], path: Path, results: dict) -> list[dict]:
        """The datapoints written equal, line for line, those of the general evaluator (the
        reference, in this process, batch path off); the in-order run publishes the same
        SampleCount per metric."""
        self.progress(f"{w.name}: the reference (general evaluator)")
        out = self.work / f"{w.name}-reference.jsonl"
        stats = reference_replay(w, path, out)
        mine = outcomes["castlewatch"]
        found = []
        with open(mine.extra["sink"], encoding="utf-8") as a, open(out, encoding="utf-8") as b:
            ours, reference = a.read().splitlines(), b.read().splitlines()
        results["castlewatch"]["reference"] = {"datums": len(reference), "events_read": stats.events_read,
                                               "matched": dict(stats.matched), "late_events": stats.late_events}
        if ours != reference:
            first = next((i for i, (x, y) in enumerate(zip(ours, reference)) if x != y), min(len(ours), len(reference)))
            found.append({"implementation": "castlewatch", "kind": "datapoints_vs_reference",
                          "castlewatch": len(ours), "reference": len(reference), "first_difference": first,
                          "example": {"castlewatch": ours[first] if first < len(ours) else None,
                                      "reference": reference[first] if first < len(reference) else None}})
        if "in_order" in outcomes and outcomes["in_order"].counts != mine.counts:
            found.append({"implementation": "in_order", "kind": "sample_counts", "castlewatch": mine.counts,
                          "in_order": outcomes["in_order"].counts})
        return found

    # -- ratios and targets --

    def ratios(self, record: dict) -> dict[str, float]:
        res = record["results"]
        cw = res["castlewatch"]["ev_s"]["median"]
        out: dict[str, float] = {}
        for key, entry in res.items():
            if key == "castlewatch":
                continue
            if key == "floor":
                out["floor"] = cw / entry["ev_s"]["median"]
            elif key in ("grep", "naive", "castlewatch_loop", "orjson", "in_order"):
                out[key] = cw / entry["ev_s"]["median"]
            else:
                out["peer:" + key] = cw / entry["ev_s"]["median"]
        if record["kind"] == "replay" and record.get("baseline") in self.results:
            base = self.results[record["baseline"]]["results"]["castlewatch"]["ev_s"]["median"]
            out["matcher"] = cw / base
        return out

    def targets(self, w: Workload, record: dict) -> list[dict]:
        out = []
        for t in w.targets:
            value = record["ratios"].get(t.ratio)
            status = "not measured" if value is None else "met" if value >= t.threshold else "missed"
            out.append({"workload": w.name, "target": t.text, "ratio": t.ratio, "threshold": t.threshold,
                        "value": value, "status": status})
        return out

    # -- compile time and memory --

    def compile_times(self) -> dict[str, Any]:
        self.progress("compile time over the CIS pack")
        repeats = self.params["compile_repeats"]

        def raw_compile(pattern: str) -> FilterPattern:  # bypass the compiled-pattern and tree caches
            return FilterPattern(pattern, parse(pattern, cached=False))

        per_pattern = {}
        for pattern in cis_patterns():
            raw_compile(pattern)  # warm: the grammar and parser tables are built once per process
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                raw_compile(pattern)
                samples.append((time.perf_counter() - start) * 1000)
            per_pattern[pattern] = statistics.median(samples)
        values = list(per_pattern.values())
        median = statistics.median(values)
        return {
            "patterns": len(values),
            "repeats": repeats,
            "median_ms": median,
            "min_ms": min(values),
            "max_ms": max(values),
            "per_pattern_ms": per_pattern,
            "target": {"target": f"< {COMPILE_TARGET_MS:g} ms per pattern (median over the CIS pack)",
                       "value": median, "threshold": COMPILE_TARGET_MS,
                       "status": "met" if median < COMPILE_TARGET_MS else "missed"},
        }

    def rss(self) -> dict[str, Any]:
        n = max(1_000, round(self.params["rss_events"] * self.scale))
        self.progress(f"peak RSS: generating {n:,} VPC flow events and replaying them in a child process")
        path = self.work / "rss-vpc.log"
        size = generate.write_stream(path, "vpc", n, self.seed)
        out = self.work / "rss-out"
        out.mkdir(exist_ok=True)
        w = next(x for x in WORKLOADS if x.name == "e2e-vpc")
        config = self.work / "rss-config.json"
        config.write_text(e2e_config(w, path, out / "datapoints.jsonl", vpc_four_filters()), encoding="utf-8")
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        done = subprocess.run([sys.executable, "-m", "bench.runner", "rss-child", str(config)],
                              capture_output=True, text=True, env=env, cwd=root, check=False)
        path.unlink(missing_ok=True)
        if done.returncode != 0:
            return {"events": n, "error": done.stderr.strip()[-2000:], "status": "not measured"}
        child = json.loads(done.stdout.strip().splitlines()[-1])
        full = n >= RSS_TARGET_EVENTS
        peak = child["peak_mb"]
        status = ("met" if peak < RSS_TARGET_MB else "missed") if full else "not checked"
        return {
            "events": child["events"],
            "bytes": size,
            "peak_mb": peak,
            "after_import_mb": child["after_import_mb"],
            "seconds": child["seconds"],
            "full_size": full,
            "target": {"target": f"peak RSS < {RSS_TARGET_MB:g} MB replaying {RSS_TARGET_EVENTS:,} events",
                       "value": peak, "threshold": RSS_TARGET_MB, "status": status,
                       "note": "" if full else f"quick mode replayed {child['events']:,} events, not "
                                                f"{RSS_TARGET_EVENTS:,}: run the full mode to check the target"},
        }

    # -- everything --

    def run(self) -> dict[str, Any]:
        started = time.time()
        workloads = [w for w in WORKLOADS if self.only is None or w.name in self.only]
        for w in workloads:
            record = self.run_workload(w)
            if w.baseline:
                record["baseline"] = w.baseline
            record["ratios"] = self.ratios(record)
            record["targets"] = self.targets(w, record)
            self.results[w.name] = record
        compile_ = self.compile_times()
        rss = self.rss() if self.only is None or "rss" in self.only else None
        checkpoint = None
        if self.only is None or "checkpoint" in self.only:
            checkpoint = checkpoint_cost(self.work, self.mode, self.scale, self.seed, self.progress)
        targets = [t for r in self.results.values() for t in r["targets"]]
        targets.append({"workload": "compile", **compile_["target"]})
        if rss is not None and "target" in rss:
            targets.append({"workload": "rss", **rss["target"]})
        if checkpoint is not None:
            targets.append({"workload": "checkpoint", **checkpoint["target"]})
        disagreements = [dict(d, workload=r["name"]) for r in self.results.values() for d in r["disagreements"]]
        return {
            "schema": SCHEMA_VERSION,
            "mode": self.mode,
            "scale": self.scale,
            "runs": self.runs,
            "seed": self.seed,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(),
            "versions": versions(),
            "matcher_backend": literals.backend(),
            "streams": {k: {x: v for x, v in s.items() if x != "path"} for k, s in self.streams.items()},
            "workloads": list(self.results.values()),
            "compile": compile_,
            "rss": rss,
            "checkpoint": checkpoint,
            "process_peak_rss_mb": peak_rss_mb(),
            "targets": targets,
            "agreement": {"ok": not disagreements, "disagreements": disagreements},
            "seconds": time.time() - started,
        }


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpus": cpus, "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "implementation": platform.python_implementation()}


def versions() -> dict[str, str | None]:
    return {
        "castlewatch": castlewatch.__version__,
        "orjson": version("orjson"),
        "lark": version("lark"),
        AWS_JSON: version("aws-json-term-matcher"),
        "moto": version("moto"),
    }


def run_suite(
    quick: bool = False,
    scale: float = 1.0,
    runs: int | None = None,
    workdir: str | os.PathLike | None = None,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
    only: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Run the benchmark suite and return its results (the ``--json`` document).

    Args:
        quick: the quick mode (smaller streams, 3 runs, a smaller RSS replay);
            otherwise the full mode (release notes).
        scale: multiplies every stream size (and the RSS replay), e.g. 0.01 for a smoke run.
        runs: timed runs per figure (default 3 quick, 5 full).
        workdir: where the streams are generated (default: a temporary directory,
            removed afterwards).
        seed: the generators' seed.
        progress: called with a short status line as the suite advances.
        only: run only these workloads (names; ``"rss"`` for the RSS check, ``"checkpoint"``
            for the checkpoint cost, :mod:`bench.checkpoint`).
    """
    mode = "quick" if quick else "full"
    runs = runs or MODES[mode]["runs"]
    if runs < 1 or scale <= 0:
        raise ValueError("runs must be >= 1 and scale > 0")
    say = progress or (lambda message: None)
    if workdir is not None:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        return Suite(mode, scale, runs, work, seed, say, only).run()
    with tempfile.TemporaryDirectory(prefix="castlewatch-bench-") as tmp:
        return Suite(mode, scale, runs, Path(tmp), seed, say, only).run()


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    ``VmHWM`` from ``/proc/self/status`` where there is one: unlike ``ru_maxrss``, which
    Linux carries across ``exec``, it is this process's own (a child started by a big
    parent would otherwise report the parent's size); ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_child(config_path: str) -> None:
    """Replay ``config_path`` and print peak RSS as JSON (run in a fresh process)."""
    after_import = peak_rss_mb()
    config = load_config_text(Path(config_path).read_text(encoding="utf-8"), Path(config_path).parent)
    start = time.perf_counter()
    stats = run_async(Engine(config).replay())
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"events": stats.events_read, "peak_mb": peak, "after_import_mb": after_import,
                      "seconds": seconds}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "rss-child":
        _rss_child(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.runner rss-child CONFIG")
