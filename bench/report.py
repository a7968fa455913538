"""Present the suite's results: a rich table, the JSON document, a Markdown table, a bar chart."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.peers import AWS_JSON, MOTO

_SHORT = {AWS_JSON: "ajtm", AWS_JSON + " (parsed once)": "ajtm parsed once", MOTO: "moto"}
_COLUMNS = ("workload", "castlewatch ev/s (min-max)", "MB/s", "floor ev/s", "naive ev/s", "peer ev/s", "ratios",
            "matches", "agree", "target")


def rate(x: float | None) -> str:
    """Events per second, compact: ``1.23M``, ``45.6k``, ``12.3``."""
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.2f}"


def ratio(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def share(x: float) -> str:
    """A share as a percentage: one decimal below 10% (``1.8%``), none above (``42%``)."""
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _median(entry: dict | None) -> float | None:
    return None if entry is None else entry["ev_s"]["median"]


def _peers(w: dict) -> list[str]:
    return [k for k in w["results"]
            if k not in ("floor", "grep", "castlewatch", "castlewatch_loop", "naive", "orjson", "in_order")]


def _agree(w: dict) -> str:
    """``yes``, or per disagreeing implementation what it got wrong."""
    if not w["disagreements"]:
        return "yes"
    by_impl: dict[str, list[dict]] = {}
    for d in w["disagreements"]:
        by_impl.setdefault(d["implementation"], []).append(d)
    parts = []
    for impl, found in by_impl.items():
        who = _SHORT.get(impl, impl)
        counts = [d for d in found if d["kind"] == "count"]
        rejected = [d for d in found if d["kind"] == "rejected"]
        other = [d for d in found if d["kind"] not in ("count", "rejected")]
        bits = []
        if len(counts) == 1 and counts[0]["filter"] == "match":
            d = counts[0]
            bits.append(f"{d[impl]:,} matches vs {d['castlewatch']:,}")
        elif counts:
            bits.append(f"{len(counts)} filter's count differs" if len(counts) == 1
                        else f"{len(counts)} filters' counts differ")
        if rejected:
            bits.append(f"rejects {len(rejected)} pattern{'s' if len(rejected) > 1 else ''}")
        bits += [d["kind"] for d in other]
        parts.append(f"{who}: {', '.join(bits)}")
    return "NO: " + "; ".join(parts)


def _target(w: dict) -> str:
    out = []
    for t in w["targets"]:
        value = t["value"]
        shown = "-" if value is None else share(value) if t["threshold"] < 1 else ratio(value)
        out.append(f"{t['status']}: {shown} ({t['target']})")
    return "\n".join(out) or "-"


def rows(results: dict) -> list[list[str]]:
    """The table's rows, as text cells in :data:`_COLUMNS` order."""
    out = []
    for w in results["workloads"]:
        res, r = w["results"], w["ratios"]
        cw = res["castlewatch"]
        peers = _peers(w)
        peer_cells = [f"{_SHORT.get(k, k)} {rate(_median(res[k]))}" + (
            f" ({res[k]['events']:,} ev)" if res[k]["events"] != w["events"] else "") for k in peers]
        floor = f"py {rate(_median(res.get('floor')))}"
        if "grep" in res:
            floor += f"\ngrep {rate(_median(res['grep']))}"
        naive = rate(_median(res.get("naive")))
        ratios = [f"floor {share(r['floor'])}"] if "floor" in r else []
        if "naive" in r:
            ratios.append(f"naive {ratio(r['naive'])}")
        if "castlewatch_loop" in res:
            naive += f"\ncw loop {rate(_median(res['castlewatch_loop']))}"
            ratios.append(f"cw loop {ratio(r['castlewatch_loop'])}")
        if w["kind"] == "replay":
            naive = "-"
            if "matcher" in r:
                peer_cells = [f"matcher-only {rate(cw['ev_s']['median'] / r['matcher'])}"]
                ratios.append(f"matcher {r['matcher']:.0%}")
        if w["kind"] == "e2e":
            naive = "-"
            for key, name in (("orjson", "orjson.loads"), ("in_order", "in-order")):
                if key in res:
                    peer_cells.append(f"{name} {rate(_median(res[key]))}")
                    ratios.append(f"{name} {share(r[key])}")
        ratios += [f"{_SHORT.get(k, k)} {ratio(r.get('peer:' + k))}" for k in peers]
        s = cw["ev_s"]
        out.append([
            w["title"],
            f"{rate(s['median'])} ({rate(s['min'])}-{rate(s['max'])})",
            f"{cw['mb_s']['median']:.0f}",
            floor,
            naive,
            "\n".join(peer_cells) or "-",
            "\n".join(ratios),
            f"{cw['matches']:,}",
            _agree(w),
            _target(w),
        ])
    return out


def summary_lines(results: dict) -> list[str]:
    c = results["compile"]
    lines = [
        f"compile: median {c['median_ms']:.3f} ms per pattern over the {c['patterns']} CIS patterns "
        f"(min {c['min_ms']:.3f}, max {c['max_ms']:.3f}; each the median of {c['repeats']} compiles): "
        f"{c['target']['status']} (target < 1 ms)",
    ]
    rss = results.get("rss")
    if rss:
        if "error" in rss:
            lines.append(f"peak RSS: not measured ({rss['error'][-200:]})")
        else:
            lines.append(
                f"peak RSS replaying {rss['events']:,} VPC flow events (4 filters) in a child process: "
                f"{rss['peak_mb']:.0f} MB "
                f"({rss['after_import_mb']:.0f} MB after imports): {rss['target']['status']}"
                + (f" ({rss['target']['note']})" if rss["target"].get("note") else " (target < 200 MB at 10M events)")
            )
    lines += checkpoint_lines(results.get("checkpoint"))
    lines.append(f"this process's peak RSS: {results['process_peak_rss_mb']:.0f} MB")
    streams = ", ".join(f"{k} {s['events']:,} events ({s['bytes'] / 1e6:.1f} MB, {s['avg_event_bytes']:.0f} B/event)"
                        for k, s in results["streams"].items())
    lines.append(f"streams: {streams}")
    skipped = sorted({s for w in results["workloads"] for s in w.get("skipped", [])})
    if skipped:
        lines.append("not run: " + "; ".join(skipped))
    met = sum(t["status"] == "met" for t in results["targets"])
    missed = [f"{t['workload']} {t['target']}" for t in results["targets"] if t["status"] == "missed"]
    lines.append(f"targets: {met} met, {len(missed)} missed" + (f" ({'; '.join(missed)})" if missed else "")
                 + "".join(f"; {t['workload']}: {t['status']}" for t in results["targets"]
                           if t["status"] not in ("met", "missed")))
    m = results["machine"]
    lines.append(
        f"{results['mode']} mode, scale {results['scale']:g}, medians of {results['runs']} runs (min-max in "
        f"parentheses), {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, matcher backend "
        f"{results.get('matcher_backend', 'python')}, {results['date']}, "
        f"{results['seconds']:.0f} s"
    )
    return lines


def checkpoint_lines(c: dict | None) -> list[str]:
    """The checkpoint cost (:mod:`bench.checkpoint`) in a few lines."""
    if not c:
        return []
    b, d = c["backlog"], c["distinct"]
    replay, daemon = b["replay"], b["daemon"]
    if "error" in replay or "error" in daemon:
        return [f"checkpoint cost: not measured ({(replay.get('error') or daemon.get('error'))[-200:]})"]
    writer = daemon.get("writer") or {}
    t = c["target"]
    lines = [
        f"checkpoint cost: a daemon catching up a {b['minutes']}-minute VPC backlog of {b['events']:,} events "
        f"(allowed lateness {b['allowed_lateness_s']} s, a checkpoint every {b['interval_s']:g} s) read "
        f"{rate(daemon['ev_s'])} ev/s, {c['ratios']['daemon_vs_replay']:.0%} of replay's {rate(replay['ev_s'])} "
        f"(same datapoints: {'yes' if b['agrees'] else 'NO'}): {t['status']} ({t['target']})"
        + (f" ({t['note']})" if t.get("note") else ""),
        f"  {daemon['saves']} saves held the event loop {daemon['save_loop_s']['mean'] * 1e3:.1f} ms on average "
        f"(max {daemon['save_loop_s']['max'] * 1e3:.1f} ms)"
        + (f", their writes took {writer['write_s'] / max(1, writer['writes']) * 1e3:.0f} ms on average in a thread "
           f"(max {writer['write_s_max'] * 1e3:.0f} ms, {writer['compactions']} compactions)" if writer else "")
        + f"; checkpoint file at most {daemon['checkpoint_bytes_max'] / 1e6:.1f} MB; longest event-loop stall "
        f"{daemon['loop_stall_max_s'] * 1e3:.0f} ms; stop to exit {daemon['exit_s']:.2f} s; peak RSS "
        f"{daemon['peak_rss_mb']:.0f} MB (replay {replay['peak_rss_mb']:.0f} MB)",
    ]
    dd = d["daemon"]
    if "error" in dd:
        lines.append(f"  one minute with {d['values']:,} distinct values: not measured ({dd['error'][-200:]})")
    else:
        lines.append(
            f"  one minute with {d['values']:,} distinct values, daemon with checkpoints: peak RSS "
            f"{dd['peak_rss_mb']:.0f} MB ({dd.get('peak_rss_reading_mb', dd['peak_rss_mb']):.0f} MB while reading, "
            f"{dd['after_import_mb']:.0f} MB after imports), checkpoint {dd['checkpoint_bytes_max'] / 1e6:.1f} MB, "
            f"{rate(dd['ev_s'])} ev/s, {dd.get('values_written', 0):,} values written"
        )
    return lines


def print_report(results: dict, console: Console | None = None) -> None:
    """Print the table and the summary lines."""
    console = console or Console()
    table = Table(title="castlewatch bench: events per second per core", show_lines=True)
    for name in _COLUMNS:
        table.add_column(name, overflow="fold")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    for line in summary_lines(results):
        console.print(line, highlight=False, markup=False)


def markdown(results: dict) -> str:
    """The table and summary as Markdown (for the README)."""
    def cell(text: str) -> str:
        return text.replace("\n", "<br>").replace("|", "\\|")

    out = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows(results)]
    out.append("")
    out += [f"- {line}" for line in summary_lines(results)]
    return "\n".join(out) + "\n"


def write_json(results: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_plot(results: dict, path: str | Path) -> None:
    """A grouped bar chart (log scale) of events/s per workload: castlewatch against the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("castlewatch", "castlewatch"), ("floor", "floor: Python line read"), ("grep", "floor: grep -cF"),
              ("naive", "naive"), (MOTO, "moto"), (AWS_JSON, "aws-json-term-matcher"),
              (AWS_JSON + " (parsed once)", "aws-json-term-matcher, parsed once")]
    workloads = results["workloads"]
    present = [(k, label) for k, label in series if any(k in w["results"] for w in workloads)]
    fig, ax = plt.subplots(figsize=(max(10, 1.3 * len(workloads)), 7))
    width = 0.8 / max(1, len(present))
    for i, (key, label) in enumerate(present):
        xs, ys = [], []
        for j, w in enumerate(workloads):
            if key in w["results"]:
                xs.append(j + (i - (len(present) - 1) / 2) * width)
                ys.append(w["results"][key]["ev_s"]["median"])
        ax.bar(xs, ys, width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([w["name"] for w in workloads], rotation=30, ha="right")
    ax.set_ylabel("events / s (one core, median)")
    m = results["machine"]
    ax.set_title(f"castlewatch bench ({results['mode']} mode, {m['cpus']} CPUs, {results['date'][:10]})")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, frameon=False)
    ax.grid(axis="y", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
