"""``castlewatch replay`` and ``castlewatch run``: the metric job, batch and daemon."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import sys
import time
from pathlib import Path

import click

from castlewatch.aws import AwsTarget
from castlewatch.cli.aws_options import aws_flags, aws_options
from castlewatch.cli.program import may_end_at_once, setting_up
from castlewatch.engine.config import EngineConfig, check_checkpoint_path, load_config, resolve_config, with_sinks_in
from castlewatch.engine.config import talks_to_aws, with_aws_flags
from castlewatch.engine.runner import Engine, OutputError, install_signal_handlers, run_async
from castlewatch.engine.sources import open_source
from castlewatch.engine.sources.cloudwatch_logs import CloudWatchLogsError
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.model import Stats
from castlewatch.sinks import PublishError
from castlewatch.cli.summary import print_summary, shared_filter_names, show_summary, stderr_is_terminal, summary
from castlewatch.cli.summary import summary_table

#: ``replay``: a source matches no file (sysexits' EX_NOINPUT); nothing was replayed.
EXIT_NO_INPUT = 66
#: ``replay``: a source's timestamp gave no usable time in any event that was to publish
#: (sysexits' EX_DATAERR); the datapoints of the other sources were written.
EXIT_NO_TIMESTAMP = 65
#: ``replay`` and ``run``: a sink or the checkpoint cannot be written (disk full, quota,
#: file size limit, I/O error): sysexits' EX_IOERR.
EXIT_OUTPUT_FAILED = 74
#: ``replay`` and ``run`` stopped by a castlewatch bug.
EXIT_RUN_FAILED = 1
#: ``replay`` and ``run``: an AWS service kept failing (throttling, 5xx, no connection) after
#: a replay's retries, or refused a call for another reason: CloudWatch Logs reading, or
#: CloudWatch not accepting every datapoint (those not published are kept in a file named in
#: the error): sysexits' EX_UNAVAILABLE.
EXIT_AWS_UNAVAILABLE = 69
#: ``replay`` and ``run``: AWS denied a call (AccessDenied, no or invalid credentials):
#: sysexits' EX_NOPERM.
EXIT_AWS_DENIED = 77

EXIT_STATUSES = f"""\b
Exit status:
  0   done (run: stopped by SIGTERM or SIGINT)
  1   stopped by a castlewatch bug (one line on stderr names it)
  2   invalid options, configuration or checkpoint
  {EXIT_NO_TIMESTAMP}  replay: a lines source's timestamp gave no usable time in any
      event that was to publish (the field or the format is wrong)
  {EXIT_NO_INPUT}  replay: a file source matches no file; nothing was replayed;
      replay and run: a cloudwatch_logs log group does not exist (or no log
      group name starts with its prefix)
  {EXIT_AWS_UNAVAILABLE}  CloudWatch Logs or CloudWatch kept failing (replay: after its
      retries) or refused a call, named in one line; datapoints CloudWatch did not
      accept are kept in a file the line names (run again once fixed: run resumes)
  {EXIT_AWS_DENIED}  AWS denied a call (AccessDenied, no or invalid credentials); run:
      its checkpoint holds the last good state
  {EXIT_OUTPUT_FAILED}  a sink or the checkpoint cannot be written (disk full, quota,
      file size limit, I/O error), named in one line: free space and run
      again; run resumes from its last checkpoint, and its output is then
      exactly that of an uninterrupted run
"""


class ConfigError(click.ClickException):
    """An invalid configuration or checkpoint: ``Error: ...`` on stderr, exit 2."""

    exit_code = 2


class RunFailed(click.ClickException):
    """``replay`` or ``run`` could not do what it was asked: ``Error: ...`` on stderr, exit
    ``exit_code`` (one of the ``EXIT_*`` statuses of this module)."""

    #: a sink could not publish every datapoint (the summary is worth printing first)
    unpublished = False

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
    except CloudWatchLogsError as err:
        if checkpoint is None:
            then = "the replay stopped"
        else:
            then = f"the run stopped; once fixed, run again: it resumes from the checkpoint {checkpoint}, exactly"
        raise RunFailed(f"{err}; {then}", _aws_exit_status(err)) from None
    except PublishError as err:
        then = "" if checkpoint is None else f"; once fixed, run again: it resumes from the checkpoint {checkpoint}"
        failed = RunFailed(f"{err}{then}", EXIT_AWS_DENIED if err.denied else EXIT_AWS_UNAVAILABLE)
        failed.unpublished = True
        raise failed from None
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


def _aws_exit_status(error: CloudWatchLogsError) -> int:
    """The exit status for a CloudWatch Logs failure, by its kind."""
    return {"not_found": EXIT_NO_INPUT, "denied": EXIT_AWS_DENIED, "config": ConfigError.exit_code}.get(
        error.kind, EXIT_AWS_UNAVAILABLE
    )


def _resolve(config: EngineConfig) -> EngineConfig:
    """``config`` with its cloudwatch_logs log groups (and ``{discover: true}`` filters)
    read from CloudWatch Logs (:func:`~castlewatch.engine.config.resolve_config`), before
    any sink is opened; its warnings on stderr. A config without them: as it is.

    Raises:
        RunFailed: CloudWatch Logs failed (exit by :func:`_aws_exit_status`).
        ConfigError: a log group without metric filters, a discovered filter refused.
    """
    if not any(spec.type == "cloudwatch_logs" for spec in config.sources):
        return config
    try:
        resolved, warnings = run_async(resolve_config(config))
    except CloudWatchLogsError as err:
        raise RunFailed(str(err), _aws_exit_status(err)) from None
    except (InvalidParameterError, ValueError) as err:
        raise ConfigError(str(err)) from None
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    return resolved


class Seconds(click.ParamType):
    """A positive, finite number of seconds (``0``, negatives, ``nan`` and ``inf`` are refused)."""

    name = "seconds"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            seconds = value
        else:
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(seconds) and seconds > 0):
            self.fail(f"{value!r} is not a positive number of seconds (such as 5 or 0.5)", param, ctx)
        return seconds


def demo_config_path() -> Path:
    """The bundled demo job: the CIS, console sign-in and VPC Flow Logs filters over the
    bundled CloudTrail and VPC Flow Logs samples."""
    from importlib import resources  # only for the demo (start-up)

    return Path(str(resources.files("castlewatch") / "data" / "demo" / "castlewatch.yaml"))


def load_job(config: str | None, out: str | None, flags: AwsTarget | None = None) -> EngineConfig:
    """The configuration (the bundled demo without ``config``), its sinks under ``out``
    and ``flags`` (``--region``, ``--profile``, ``--endpoint-url``) over its AWS targets.

    Raises:
        ConfigError: the configuration is invalid.
    """
    path = Path(config) if config else demo_config_path()
    if config is None and out is None:
        out = "castlewatch-out"
    try:
        loaded = load_config(path)
        if out is not None:  # put the sinks' files under --out, names kept (refused if two collide)
            loaded = with_sinks_in(loaded, out)
    except (OSError, InvalidParameterError, ValueError) as err:
        raise ConfigError(str(err)) from None
    return with_flags(loaded, flags)


def with_flags(config: EngineConfig, flags: AwsTarget | None) -> EngineConfig:
    """``config`` with ``flags`` over its AWS targets; a warning when nothing in it talks to AWS."""
    if flags is None or not (flags.region or flags.profile or flags.endpoint_url):
        return config
    if not talks_to_aws(config):
        given = ", ".join(f"--{name.replace('_', '-')}" for name in ("region", "profile", "endpoint_url")
                          if getattr(flags, name))
        click.echo(f"Warning: {given}: nothing in this configuration talks to AWS (no cloudwatch_logs source, "
                   "no cloudwatch or cloudwatch_dashboard sink)", err=True)
        return config
    return with_aws_flags(config, flags)


def _engine(config: EngineConfig, checkpoint: Path | None, on_progress=None) -> Engine:
    try:
        with setting_up():  # imports the batch path (numpy), compiles the filter patterns
            engine = Engine(config, checkpoint=checkpoint, on_progress=on_progress)
    except (InvalidParameterError, ValueError) as err:
        raise ConfigError(str(err)) from None
    except OSError as err:  # a sink's file or directory
        raise ConfigError(_os_error(err)) from None
    for warning in engine.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for name, groups in shared_filter_names(config).items():
        click.echo(
            f"Warning: metric filter name {name!r} is used in log groups {', '.join(map(repr, groups))}: "
            "its matches are counted together (one total in the summary and the run log); "
            "the datapoints are not affected",
            err=True,
        )
    return engine


def _os_error(err: OSError) -> str:
    """One line for an OSError raised opening an output: the path and the reason, no errno."""
    if err.filename is None:
        return f"cannot open the output: {err.strerror or err}"
    where = str(err.filename)
    if isinstance(err, FileExistsError):
        return f"cannot create the directory {where}: a file of that name is in the way"
    return f"cannot write {where}: {err.strerror or err}"


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
    type=click.Path(file_okay=False),
    help="Write the sinks' files into DIR (file names kept; created if missing). "
    "Default with the demo: ./castlewatch-out.",
)


@click.command("replay", epilog=EXIT_STATUSES)
@_config_option
@_out_option
@aws_options
def replay_command(
    config: str | None, out: str | None, region: str | None, profile: str | None, endpoint_url: str | None
) -> None:
    """Process every source to its end, flush every minute, print a summary on stderr.

    Exit status: 0 when done; 2 for an invalid configuration; 66 when a source matches
    no file or a log group does not exist (nothing is replayed, no output is touched);
    65 when a source's timestamp gave no usable time in any of its events that were to
    publish (the summary and the other sources' datapoints are written first); 69 when
    CloudWatch Logs kept failing or CloudWatch did not accept every datapoint (those not
    published are kept in a file it names); 77 when AWS denied a call.
    """
    loaded = load_job(config, out, aws_flags(region, profile, endpoint_url))
    _check_sources_exist(loaded)
    loaded = _resolve(loaded)
    console = None
    if stderr_is_terminal():  # rich only on a terminal: off one, its import is 50 ms of start-up
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            console = None
    started = time.perf_counter()
    if console is not None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # only on a terminal

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # gone before the summary is printed
            redirect_stdout=_stdout_is_terminal(),  # a stdout sink's lines stay on stdout
        )
        task = progress.add_task("reading")

        def show(stats: Stats) -> None:
            progress.update(task, description=f"{stats.events_read} events, {stats.datapoints_written} datapoints")

        with progress:
            engine = _engine(loaded, None, show)
            failed = _replay_or_fail(engine)
    else:
        engine = _engine(loaded, None)
        failed = _replay_or_fail(engine)
    show_summary(summary(engine.stats, loaded, time.perf_counter() - started), console)
    may_end_at_once()  # the replay closed its sinks: no teardown needed
    if failed is not None:
        raise failed
    problems = _sources_without_time(engine)
    if problems:
        raise RunFailed("\n  ".join(problems), EXIT_NO_TIMESTAMP)


def _replay_or_fail(engine: Engine) -> RunFailed | None:
    """Run the replay; a sink that could not publish everything (``RunFailed.unpublished``)
    is returned, so that the summary is printed before it."""
    try:
        _run_or_fail(engine.replay())
    except RunFailed as failed:
        if not failed.unpublished:
            raise
        return failed
    return None


def _stdout_is_terminal() -> bool:
    """Whether stdout is a terminal: only then may the progress display (on stderr) route
    a stdout sink's lines above itself; otherwise they must reach stdout untouched."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _check_sources_exist(config: EngineConfig) -> None:
    """RunFailed (:data:`EXIT_NO_INPUT`) naming every file source that matches no file
    now (``Source.warning()``), before any sink is opened; ConfigError for a source the
    engine refuses (a directory, a FIFO)."""
    missing = []
    for spec in config.sources:
        if spec.type != "file":
            continue
        try:
            source = open_source(spec, None)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        warning = source.warning()
        if warning:
            missing.append(warning.rsplit(" (", 1)[0])  # what is missing, without the advice at its end
    if missing:
        missing[-1] += "; nothing was replayed (run waits for files to appear, replay reads what is there)"
        raise RunFailed("\n  ".join(missing), EXIT_NO_INPUT)


def _sources_without_time(engine: Engine) -> list[str]:
    """One line per ``lines`` source whose timestamp resolved in no event: some events
    were to publish (counted ``bad_timestamp``) and none did (its aggregator never took
    a contribution, so no metric has a watermark)."""
    problems = []
    for source in engine.sources:
        bad = engine.bad_timestamps.get(source.name, 0)
        ts = getattr(source.spec, "timestamp", None)
        if not bad or ts is None or ts.kind == "ingestion" or engine.aggregators[source.name].watermarks:
            continue
        field = ts.selector if ts.kind == "json" else f"${ts.position}"
        problems.append(
            f"source {source.name}: its timestamp {{field: {field}, format: {ts.format}}} gave no usable time "
            f"in any of the {bad} events that were to publish (each counted as bad_timestamp, nothing published); "
            "check the field and the format"
        )
    return problems


@click.command("run", epilog=EXIT_STATUSES)
@_config_option
@_out_option
@click.option(
    "--checkpoint",
    metavar="FILE",
    help="Checkpoint file (source offsets, open minutes, sink sizes), written atomically; "
    "a restart resumes from it. Default: <config file>.checkpoint beside the config "
    "(<config file>.checkpoint.json if a checkpoint of an earlier castlewatch is there).",
)
@click.option(
    "--checkpoint-interval",
    type=Seconds(),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to flush the sinks and write the checkpoint (a positive number of seconds).",
)
@click.option(
    "--serve",
    "serve_at",
    metavar="[HOST:]PORT",
    help="Also serve the live dashboard (/) and Prometheus metrics (/metrics) over HTTP on HOST:PORT "
    "(HOST 127.0.0.1 unless given; PORT 0: a free port). The URL is printed on stderr.",
)
@aws_options
def run_command(
    config: str | None,
    out: str | None,
    checkpoint: str | None,
    checkpoint_interval: float,
    serve_at: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
) -> None:
    """Run as a daemon: follow the sources (like tail -F) until SIGTERM or SIGINT."""
    address = None
    if serve_at is not None:
        from castlewatch.live import parse_address

        try:
            address = parse_address(serve_at)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="'--serve'") from None
    loaded = load_job(config, out, aws_flags(region, profile, endpoint_url))
    if checkpoint is None:
        checkpoint = default_checkpoint_path(config, out)
    try:
        check_checkpoint_path(loaded, checkpoint)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    try:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the checkpoint's directory {Path(checkpoint).parent}: {err.strerror or err}") from None
    loaded = _resolve(loaded)
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    started = time.perf_counter()

    resumed = Path(checkpoint).exists()

    async def main() -> Stats:
        stop = asyncio.Event()
        remove = install_signal_handlers(stop)
        try:
            async with _served(loaded, address, serve_at, console.is_terminal) as dashboard:
                if console.is_terminal:
                    with Live(
                        console=console, refresh_per_second=2, transient=True, redirect_stdout=_stdout_is_terminal()
                    ) as live:
                        engine = _engine(loaded, Path(checkpoint), lambda s: live.update(_status(s)))
                        await _follow(dashboard, engine, resumed)
                        return await engine.run(stop, checkpoint_interval_s=checkpoint_interval)
                engine = _engine(loaded, Path(checkpoint), ProgressRecords())
                await _follow(dashboard, engine, resumed)
                _log_event("start", config=config or "demo", checkpoint=checkpoint)
                stats = await engine.run(stop, checkpoint_interval_s=checkpoint_interval)
                _log_event("stop", **_counters(stats))
                return stats
        finally:
            remove()

    stats = _run_or_fail(main(), checkpoint)
    if console.is_terminal:  # off a terminal the "stop" log record has the counts
        print_summary(summary_table(stats, loaded, time.perf_counter() - started), console)


@contextlib.asynccontextmanager
async def _served(config: EngineConfig, address: tuple[str, int] | None, given: str | None, terminal: bool):
    """``run --serve``: the live dashboard's server, listening before the engine opens any
    sink (so an address in use changes no output), for the duration of the block; yields
    the :class:`~castlewatch.live.LiveDashboard`, or None without ``--serve``.

    Raises:
        ConfigError: the address cannot be listened on.
    """
    if address is None:
        yield None
        return
    from castlewatch.live import LiveDashboard, start_server

    dashboard = LiveDashboard(config)
    try:
        server = await start_server(dashboard, *address)
    except OSError as err:
        raise ConfigError(f"--serve {given}: cannot listen on it: {err.strerror or err}") from None
    if terminal:
        click.echo(f"Serving the live dashboard at {server.url} and Prometheus metrics at {server.url}metrics",
                   err=True)
    else:
        _log_event("serving", dashboard=server.url, metrics=server.url + "metrics")
    try:
        yield dashboard
    finally:
        await server.close()


async def _follow(dashboard, engine: Engine, resumed: bool) -> None:
    """The live dashboard (if any) follows ``engine``, from the file sink's minutes when resumed."""
    if dashboard is not None:
        dashboard.attach(engine)
        await dashboard.seed(resumed)


def _status(stats: Stats) -> str:
    dropped = sum(stats.malformed.values())
    return (
        f"castlewatch: {stats.events_read} events, {sum(stats.matched.values())} matches, "
        f"{stats.datapoints_written} datapoints ({stats.datums_written} datums), "
        f"{stats.late_events} late contributions, {dropped} malformed"
    )


def default_checkpoint_path(config: str | None, out: str | None) -> str:
    """``run``'s checkpoint when ``--checkpoint`` is not given: ``<config>.checkpoint``
    beside the config (the demo's under ``--out``, default ``castlewatch-out``). Earlier
    castlewatch versions named it ``<config>.checkpoint.json``: such a file, when it is
    there and the new name is not, is the checkpoint, so an upgraded daemon resumes."""
    base = Path(config) if config else Path(out or "castlewatch-out") / "castlewatch.yaml"
    current = base.with_name(base.name + ".checkpoint")
    earlier = base.with_name(base.name + ".checkpoint.json")
    return str(earlier if earlier.exists() and not current.exists() else current)


class ProgressRecords:
    """``run``'s ``progress`` records off a terminal: called with the :class:`Stats` after
    each batch and about once a second while idle (``Engine.on_progress``), it logs a
    record at most every ``every_s`` seconds, and only when a counter changed since the
    last one, so the counts of a backlog just finished need not wait for the stop record."""

    def __init__(self, every_s: float = 10.0, clock=time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._last_at = -float("inf")
        self._last: dict | None = None

    def __call__(self, stats: Stats) -> None:
        now = self.clock()
        if now - self._last_at < self.every_s:
            return
        counters = _counters(stats)
        if counters != self._last:
            self._last_at, self._last = now, copy.deepcopy(counters)
            _log_event("progress", **counters)


def _counters(stats: Stats) -> dict:
    return {
        "events_read": stats.events_read,
        "matched": stats.matched,
        "datapoints_written": stats.datapoints_written,
        "datums_written": stats.datums_written,
        "late_events": stats.late_events,
        "malformed": stats.malformed,
        "not_json": stats.not_json,
        "out_of_range": stats.out_of_range,
        "bad_dimension_values": stats.bad_dimension_values,
        "published": stats.published,
        "refused": stats.refused,
        "unknown_outcomes": stats.unknown_outcomes,
        "unpublished": stats.unpublished,
        "disabled_filters": sorted(stats.disabled_filters),
    }


def _log_event(event: str, **fields) -> None:
    """One structured log line (JSON) on stderr."""
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()
