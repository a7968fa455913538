"""``castlewatch replay`` and ``castlewatch run``: the metric job, batch and daemon."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from importlib import resources
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from castlewatch.engine.config import EngineConfig, check_checkpoint_path, load_config, with_sinks_in
from castlewatch.engine.evaluate import DIMENSION_SETS_LIMIT
from castlewatch.engine.runner import Engine, OutputError, install_signal_handlers, run_async
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.model import Stats


class ConfigError(click.ClickException):
    """An invalid configuration or checkpoint: ``Error: ...`` on stderr, exit 2."""

    exit_code = 2


#: Exit status of ``replay`` and ``run`` when a sink or the checkpoint cannot be written
#: (disk full, quota, file size limit, I/O error): sysexits.h's EX_IOERR.
EXIT_OUTPUT_FAILED = 74
#: Exit status of ``replay`` and ``run`` stopped by a castlewatch bug.
EXIT_RUN_FAILED = 1

EXIT_STATUSES = f"""\b
Exit status:
  0   done (run: stopped by SIGTERM or SIGINT)
  1   stopped by a castlewatch bug (one line on stderr names it)
  2   invalid configuration or checkpoint
  {EXIT_OUTPUT_FAILED}  a sink or the checkpoint cannot be written (disk full, quota,
      file size limit, I/O error), named in one line: free space and run
      again; run resumes from its last checkpoint, and its output is then
      exactly that of an uninterrupted run
"""


class RunFailed(click.ClickException):
    """``replay`` or ``run`` stopped by a failure: ``Error: ...`` (one line) on stderr."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _run_or_fail(main, checkpoint: str | None = None):
    """``run_async(main)``, a failure turned into :class:`RunFailed`: one line saying
    why, exit :data:`EXIT_OUTPUT_FAILED` when the output cannot be written, else
    :data:`EXIT_RUN_FAILED`. ``checkpoint``: the run's checkpoint (what a restart resumes from)."""
    try:
        return run_async(main)
    except click.ClickException:  # a configuration error found on the way (already one line)
        raise
    except OutputError as err:
        if checkpoint is None:
            then = "run the replay again once the file can be written"
        else:
            then = f"once it can be written, run again: it resumes from the checkpoint {checkpoint}, exactly"
        raise RunFailed(f"{err}; the run stopped; {then}", EXIT_OUTPUT_FAILED) from None
    except Exception as err:
        notes = [n.removeprefix("castlewatch: ") for n in getattr(err, "__notes__", ())]
        why = f"{type(err).__name__}: {err}" + "".join(f" ({n})" for n in notes)
        kept = "" if checkpoint is None else f"; the checkpoint {checkpoint} holds the last good state"
        raise RunFailed(f"the run stopped on a castlewatch bug: {why}{kept}", EXIT_RUN_FAILED) from None


def demo_config_path() -> Path:
    """The bundled demo job: the CIS, console sign-in and VPC Flow Logs filters over the
    bundled CloudTrail and VPC Flow Logs samples."""
    return Path(str(resources.files("castlewatch") / "data" / "demo" / "castlewatch.yaml"))


def _load(config: str | None, out: str | None) -> EngineConfig:
    path = Path(config) if config else demo_config_path()
    if config is None and out is None:
        out = "castlewatch-out"
    try:
        loaded = load_config(path)
        if out is not None:  # put the sinks' files under --out, names kept (refused if two collide)
            loaded = with_sinks_in(loaded, out)
    except (OSError, InvalidParameterError, ValueError) as err:
        raise ConfigError(str(err)) from None
    return loaded


def _shared_filter_names(config: EngineConfig) -> dict[str, list[str]]:
    """Filter names used in more than one log group -> those log groups, in file order.

    AWS allows it (a filter name is unique within its log group only), so
    describe-metric-filters output and templates may have it; castlewatch's match
    counters (``Stats.matched``) are keyed by filter name, so such filters share one.
    """
    groups: dict[str, list[str]] = {}
    for f in config.metric_filters:
        groups.setdefault(f.filter_name, []).append(f.log_group_name)
    return {name: found for name, found in groups.items() if len(found) > 1}


def _engine(config: EngineConfig, checkpoint: Path | None, on_progress=None) -> Engine:
    try:
        engine = Engine(config, checkpoint=checkpoint, on_progress=on_progress)
    except (InvalidParameterError, ValueError, OSError) as err:
        raise ConfigError(str(err)) from None
    for warning in engine.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for name, groups in _shared_filter_names(config).items():
        click.echo(
            f"Warning: metric filter name {name!r} is used in log groups {', '.join(map(repr, groups))}: "
            "its matches are counted together (one total in the summary and the run log); "
            "the datapoints are not affected",
            err=True,
        )
    return engine


def summary_table(stats: Stats, config: EngineConfig, elapsed_s: float) -> Table:
    """The end-of-run summary: events, matches per filter, datapoints, drops.

    Matches are counted per filter name (``Stats.matched``): a name used in several log
    groups has one row, ``matched: NAME (log groups G1 + G2, one total)``, with the
    total of all its filters, never one row per filter repeating that total.
    """
    table = Table(title=f"castlewatch: {stats.events_read} events in {elapsed_s:.2f} s", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("events read", str(stats.events_read))
    shared = _shared_filter_names(config)
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
    table.add_row("late contributions (published separately)", str(stats.late_events), style="yellow" if stats.late_events else "")
    for name in sorted(stats.disabled_filters):
        table.add_row(f"disabled: {name}", f"{DIMENSION_SETS_LIMIT:,} dimension sets", style="red")
    for reason, count in sorted(stats.malformed.items()):
        table.add_row(f"malformed, skipped: {reason}", str(count), style="yellow")
    for name, count in sorted(stats.not_json.items()):
        table.add_row(f"not JSON for: {name}", str(count), style="dim")
    for name, count in sorted(stats.out_of_range.items()):
        table.add_row(f"value beyond ±2^360, not published: {name}", str(count), style="yellow")
    for sink in config.sinks:
        table.add_row(f"sink {sink.type}", sink.path or "stdout", style="cyan")
    return table


_config_option = click.option(
    "--config",
    "config",
    metavar="FILE",
    help="YAML config (metric_filters, sources, sinks, allowed_lateness_s). "
    "Default: the bundled demo over the bundled CloudTrail and VPC Flow Logs samples.",
)
_out_option = click.option(
    "--out",
    metavar="DIR",
    help="Write the sinks' files into DIR (file names kept). Default with the demo: ./castlewatch-out.",
)


@click.command("replay", epilog=EXIT_STATUSES)
@_config_option
@_out_option
def replay_command(config: str | None, out: str | None) -> None:
    """Process every source to its end, flush every minute, print a summary."""
    loaded = _load(config, out)
    console = Console(stderr=True)
    started = time.perf_counter()
    if console.is_terminal:
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
        task = progress.add_task("reading")

        def show(stats: Stats) -> None:
            progress.update(task, description=f"{stats.events_read} events, {stats.datapoints_written} datapoints")

        with progress:
            stats = _run_or_fail(_engine(loaded, None, show).replay())
    else:
        stats = _run_or_fail(_engine(loaded, None).replay())
    Console().print(summary_table(stats, loaded, time.perf_counter() - started))


@click.command("run", epilog=EXIT_STATUSES)
@_config_option
@_out_option
@click.option(
    "--checkpoint",
    metavar="FILE",
    help="Checkpoint file (source offsets, open minutes, sink sizes), written atomically; "
    "a restart resumes from it. Default: <config file>.checkpoint.json beside the config.",
)
@click.option(
    "--checkpoint-interval",
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to flush the sinks and write the checkpoint.",
)
def run_command(config: str | None, out: str | None, checkpoint: str | None, checkpoint_interval: float) -> None:
    """Run as a daemon: follow the sources (like tail -F) until SIGTERM or SIGINT."""
    loaded = _load(config, out)
    if checkpoint is None:
        base = Path(config) if config else Path(out or "castlewatch-out") / "castlewatch.yaml"
        checkpoint = str(base.with_name(base.name + ".checkpoint.json"))
    try:
        check_checkpoint_path(loaded, checkpoint)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    try:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the checkpoint's directory {Path(checkpoint).parent}: {err.strerror or err}") from None
    console = Console(stderr=True)
    started = time.perf_counter()

    async def main() -> Stats:
        stop = asyncio.Event()
        remove = install_signal_handlers(stop)
        try:
            if console.is_terminal:
                with Live(console=console, refresh_per_second=2, transient=True) as live:
                    engine = _engine(loaded, Path(checkpoint), lambda s: live.update(_status(s)))
                    return await engine.run(stop, checkpoint_interval_s=checkpoint_interval)
            last = [0.0]

            def report(stats: Stats) -> None:
                now = time.monotonic()
                if now - last[0] >= 10:
                    last[0] = now
                    _log_event("progress", **_counters(stats))

            engine = _engine(loaded, Path(checkpoint), report)
            _log_event("start", config=config or "demo", checkpoint=checkpoint)
            stats = await engine.run(stop, checkpoint_interval_s=checkpoint_interval)
            _log_event("stop", **_counters(stats))
            return stats
        finally:
            remove()

    stats = _run_or_fail(main(), checkpoint)
    if console.is_terminal:
        Console().print(summary_table(stats, loaded, time.perf_counter() - started))


def _status(stats: Stats) -> str:
    dropped = sum(stats.malformed.values())
    return (
        f"castlewatch: {stats.events_read} events, {sum(stats.matched.values())} matches, "
        f"{stats.datapoints_written} datapoints, {stats.late_events} late contributions, {dropped} malformed"
    )


def _counters(stats: Stats) -> dict:
    return {
        "events_read": stats.events_read,
        "matched": stats.matched,
        "datapoints_written": stats.datapoints_written,
        "late_events": stats.late_events,
        "malformed": stats.malformed,
        "disabled_filters": sorted(stats.disabled_filters),
        "out_of_range": stats.out_of_range,
    }


def _log_event(event: str, **fields) -> None:
    """One structured log line (JSON) on stderr."""
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()
