"""The end-of-run summary of ``castlewatch replay`` and ``castlewatch run``, on stderr.

Datapoints go to the sinks (a ``stdout`` sink writes JSON Lines on stdout), so
everything else, this summary included, goes to stderr: ``castlewatch replay | jq``
reads datapoints only.
"""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, TextIO

from castlewatch.engine.config import EngineConfig
from castlewatch.engine.evaluate import DIMENSION_SETS_LIMIT
from castlewatch.model import Stats

#: The widest a summary is laid out off a terminal (a cell wider than this is folded).
MAX_WIDTH = 100_000


@dataclass
class Summary:
    """An end-of-run summary: ``title`` and ``rows`` of (what, count, style), ``style`` a
    rich style name used on a terminal only (``""``: none)."""

    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add_row(self, what: str, count: str, style: str = "") -> None:
        self.rows.append((what, count, style))


def shared_filter_names(config: EngineConfig) -> dict[str, list[str]]:
    """Filter names used in more than one log group -> those log groups, in file order.

    AWS allows it (a filter name is unique within its log group only), so
    describe-metric-filters output and templates may have it; castlewatch's match
    counters (``Stats.matched``) are keyed by filter name, so such filters share one.
    """
    groups: dict[str, list[str]] = {}
    for f in config.metric_filters:
        groups.setdefault(f.filter_name, []).append(f.log_group_name)
    return {name: found for name, found in groups.items() if len(found) > 1}


def summary(stats: Stats, config: EngineConfig, elapsed_s: float) -> Summary:
    """The end-of-run summary: events, matches per filter, datapoints and datums, drops.

    Matches are counted per filter name (``Stats.matched``): a name used in several log
    groups has one row, ``matched: NAME (log groups G1 + G2, one total)``, with the
    total of all its filters, never one row per filter repeating that total.
    ``datapoints written`` counts datapoints (a CSV row or an Avro record each),
    ``datums written`` the PutMetricData datums they make (a JSON Lines or stdout line
    each; more than one for a minute with over 150 distinct values, spec §9).
    """
    table = Summary(f"castlewatch: {stats.events_read} events in {elapsed_s:.2f} s")
    table.add_row("events read", str(stats.events_read))
    shared = shared_filter_names(config)
    shown: set[str] = set()
    for f in config.metric_filters:
        name = f.filter_name
        if name in shown:
            continue
        shown.add(name)
        label = f"matched: {name}"
        if name in shared:
            label += f" (log groups {' + '.join(shared[name])}, one total)"
        table.add_row(label, str(stats.matched.get(name, 0)))
    table.add_row("datapoints written", str(stats.datapoints_written))
    table.add_row("datums written (JSON Lines lines)", str(stats.datums_written))
    table.add_row("late contributions (published separately)", str(stats.late_events), style="yellow" if stats.late_events else "")
    for name in sorted(stats.disabled_filters):
        table.add_row(f"disabled: {name}", f"{DIMENSION_SETS_LIMIT:,} dimension sets", style="red")
    for reason, count in sorted(stats.malformed.items()):
        table.add_row(f"malformed, skipped: {reason}", str(count), style="yellow")
    for name, count in sorted(stats.not_json.items()):
        table.add_row(f"not JSON for: {name}", str(count), style="dim")
    for name, count in sorted(stats.out_of_range.items()):
        table.add_row(f"value beyond ±2^360, not published: {name}", str(count), style="yellow")
    for name, count in sorted(stats.bad_dimension_values.items()):
        table.add_row(f"dimension value CloudWatch refuses, not published: {name}", str(count), style="yellow")
    if any(sink.type == "cloudwatch" for sink in config.sinks):
        table.add_row("datums published to CloudWatch", str(stats.published))
        for reason, count in sorted(stats.refused.items()):
            table.add_row(f"datums refused, not published: {reason}", str(count), style="yellow")
        if stats.unknown_outcomes:
            table.add_row("requests of unknown outcome, sent again (may count twice)", str(stats.unknown_outcomes),
                          style="yellow")
        if stats.unpublished:
            table.add_row("datums not yet published (kept in the spool)", str(stats.unpublished), style="yellow")
    for sink in config.sinks:
        table.add_row(f"sink {sink.type}", sink.where, style="cyan")
    return table


def summary_table(stats: Stats, config: EngineConfig, elapsed_s: float) -> Any:
    """:func:`summary` as a ``rich.table.Table`` (cells fold rather than end in "…", so a
    path is never cut)."""
    return rich_table(summary(stats, config, elapsed_s))


def rich_table(s: Summary) -> Any:
    """``s`` as a ``rich.table.Table`` with the columns ``what`` and ``count``."""
    from rich.table import Table

    table = Table(title=s.title, title_justify="left")
    table.add_column("what", overflow="fold")
    table.add_column("count", justify="right", overflow="fold")
    for what, count, style in s.rows:
        table.add_row(what, count, style=style)
    return table


def print_summary(table: Any, console: Any = None) -> None:
    """Print ``table`` (a ``rich.table.Table``) on stderr (or on ``console``): on a
    terminal at the terminal's width (cells fold), elsewhere (a file, a pipe, a log
    collector) at the table's own width, so no row is cut at 80 columns."""
    from rich.console import Console
    from rich.measure import Measurement

    console = console or Console(stderr=True)
    if not console.is_terminal:
        wide = Console(width=MAX_WIDTH, file=console.file, no_color=True)
        width = Measurement.get(wide, wide.options, table).maximum
        title = wide.render_str(str(table.title or "")).cell_len
        console = Console(width=max(width, title, 20), file=console.file, stderr=console.stderr)
    console.print(table)


def show_summary(s: Summary, console: Any = None) -> None:
    """Print ``s`` on stderr: through rich on ``console`` (a terminal's), else as
    :func:`plain_text` (the same table, without importing rich: about 50 ms of a run's
    start-up, issue 11)."""
    if console is not None:
        print_summary(rich_table(s), console)
        return
    stream = sys.stderr
    stream.write(plain_text(s))
    stream.flush()


def stderr_is_terminal(stream: TextIO | None = None) -> bool:
    """Whether stderr (or ``stream``) is a terminal, as rich's ``Console.is_terminal``
    decides it: ``TTY_COMPATIBLE`` 0 or 1 says so, a set ``FORCE_COLOR`` (not empty) makes
    it one, else ``isatty()``."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _width(text: str) -> int:
    """Terminal cells of ``text`` as rich counts them (its ``cell_len``, imported only for
    text that is not ASCII: one cell a character otherwise)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def plain_text(s: Summary) -> str:
    """``s`` laid out as rich lays its table out off a terminal (:func:`print_summary`): the
    title wrapped at the table's width, then a box with a heavy head, the ``what`` column
    left-aligned and ``count`` right-aligned, every cell on one line; text ending in a
    newline."""
    header = ("what", "count")
    wide = [max([_width(header[i])] + [_width(row[i]) for row in s.rows]) for i in range(2)]
    width = wide[0] + wide[1] + 7

    def line(left: str, right: str, sep: str, edge: str) -> str:
        return f"{edge} {left}{' ' * (wide[0] - _width(left))} {sep} {' ' * (wide[1] - _width(right))}{right} {edge}"

    title = textwrap.wrap(s.title, width, break_on_hyphens=False) if _width(s.title) > width else [s.title]
    out = [t + " " * (width - _width(t)) for t in title if t]
    out += [f"┏━{'━' * wide[0]}━┳━{'━' * wide[1]}━┓", line(*header, "┃", "┃"),
            f"┡━{'━' * wide[0]}━╇━{'━' * wide[1]}━┩"]
    out += [line(what, count, "│", "│") for what, count, _ in s.rows]
    out.append(f"└─{'─' * wide[0]}─┴─{'─' * wide[1]}─┘")
    return "\n".join(out) + "\n"
