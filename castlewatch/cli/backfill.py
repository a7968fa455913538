"""``castlewatch backfill``: the configuration's metric filters over archived CloudTrail and
VPC Flow Logs, on Dask distributed (:mod:`castlewatch.backfill`)."""

from __future__ import annotations

import datetime as _dt
import time

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from castlewatch.cli.engine_commands import (
    EXIT_AWS_DENIED,
    EXIT_AWS_UNAVAILABLE,
    EXIT_NO_INPUT,
    EXIT_OUTPUT_FAILED,
    ConfigError,
    RunFailed,
    load_job,
    _out_option,
)
from castlewatch.cli.summary import print_summary, summary_table

#: Some objects within the dates could not be read (named on stderr; the datapoints of the
#: others were written): sysexits' EX_TEMPFAIL, a failure worth running again once fixed.
EXIT_OBJECTS_UNREAD = 75
#: Datapoints withheld: a filter's dimension value sets came near AWS's limit, where only
#: a pass in event order can tell whether AWS disabled it (sysexits' EX_DATAERR).
EXIT_WITHHELD = 65

EXIT_STATUSES = f"""\b
Exit status:
  0   done
  1   stopped by a castlewatch bug (one line on stderr names it)
  2   invalid options or configuration, or a Dask cluster castlewatch cannot use
  {EXIT_WITHHELD}  the datapoints of a metric filter were withheld: its dimensions took
      1,000 distinct value sets within an hour, and whether AWS disables it depends
      on the order of the events (replay it); the others were written
  {EXIT_NO_INPUT}  a source has no object within the dates, or its folder or bucket
      does not exist; nothing was written
  {EXIT_AWS_UNAVAILABLE}  S3 or CloudWatch could not be reached, or failed
  {EXIT_OUTPUT_FAILED}  a sink cannot be written (disk full, ...)
  {EXIT_OBJECTS_UNREAD}  objects within the dates could not be read (named on stderr, each
      with its error, after its retries); the datapoints of the others were written
  {EXIT_AWS_DENIED}  AWS denied a call (AccessDenied, no or invalid credentials)
"""


class Day(click.ParamType):
    """A UTC date, ``YYYY-MM-DD``."""

    name = "date"

    def convert(self, value, param, ctx) -> _dt.date:
        if isinstance(value, _dt.date):
            return value
        try:
            return _dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date such as 2025-01-31 (YYYY-MM-DD, UTC)", param, ctx)


@click.command("backfill", epilog=EXIT_STATUSES)
@click.option("--config", "config", required=True, metavar="FILE",
              help="YAML config: metric_filters, sources (file sources of format cloudtrail_archive or "
                   "flow_log_file whose path is a folder, a glob or s3://bucket/prefix), sinks.")
@click.option("--from", "start", type=Day(), required=True, metavar="YYYY-MM-DD",
              help="First day (UTC) of the objects to read, by the date in their key.")
@click.option("--to", "end", type=Day(), required=True, metavar="YYYY-MM-DD",
              help="Last day (UTC, inclusive) of the objects to read, by the date in their key.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Start a local Dask cluster of N worker processes (default: the machine's cores).")
@click.option("--scheduler", metavar="tcp://HOST:8786",
              help="Run on an existing Dask cluster (castlewatch installed on its workers) instead.")
@click.option("--objects-per-task", type=click.IntRange(min=1), default=None,
              help="Objects in one task (default: about 8 tasks per worker thread, at most 64 objects "
                   "and 256 MB of objects each, then smaller ones towards the end of the run).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Further attempts of an object that cannot be read, before it is reported.")
@_out_option
def backfill_command(config: str, start: _dt.date, end: _dt.date, workers: int | None, scheduler: str | None,
                     objects_per_task: int | None, retries: int, out: str | None) -> None:
    """Run the configuration's metric filters over archived CloudTrail and VPC Flow Logs.

    Reads the objects AWS wrote to S3 (s3://bucket/prefix) or a local folder with the
    same layout (AWSLogs/ACCOUNT/CloudTrail|vpcflowlogs/REGION/YYYY/MM/DD/...), chosen by
    the date in their key from --from to --to (UTC, inclusive), on Dask distributed, and
    writes the datapoints a replay of the same events writes to the configuration's
    sinks. The sources are file sources of format cloudtrail_archive or flow_log_file.
    """
    if end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}", param_hint="--to")
    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    from castlewatch.backfill.output import cloudwatch_caveat
    from castlewatch.backfill.run import BackfillConfigError, jobs_for

    loaded = load_job(config, out)
    try:
        jobs_for(loaded)
    except BackfillConfigError as err:
        raise ConfigError(str(err)) from None
    caveat = cloudwatch_caveat(loaded, start, _dt.datetime.now(_dt.timezone.utc).date())
    if caveat:
        click.echo(f"Warning: {caveat}", err=True)
    console = Console(stderr=True)
    started = time.perf_counter()
    report = _run(loaded, start, end, workers, scheduler, objects_per_task, retries, console)
    table = summary_table(report.stats, loaded, time.perf_counter() - started)
    table.title = (f"castlewatch backfill {start} .. {end}: {report.result.objects_read} objects, "
                   f"{report.stats.events_read} events in {time.perf_counter() - started:.2f} s")
    skipped = sum(sum(listing.other.values()) for listing in report.plan.listings)
    if skipped:
        table.add_row("objects listed that are not the sources' logs (other services, outside AWSLogs/)", str(skipped),
                      style="dim")
    print_summary(table, console)
    undated = [(job.location.name(key), reason) for job, listing in zip(report.plan.jobs, report.plan.listings)
               for key, reason in listing.undated]
    if undated:
        shown = ", ".join(name for name, _ in undated[:3]) + (f" and {len(undated) - 3} more" if len(undated) > 3 else "")
        click.echo(f"Warning: {len(undated)} objects in the services' folders are not in their YYYY/MM/DD folders, "
                   f"so they have no date and were not read: {shown}", err=True)
    for line in report.result.errors:
        click.echo(f"castlewatch: {line}", err=True)
    problems = []
    if report.withheld:
        for name, sets in sorted(report.withheld.items()):
            click.echo(f"Error: metric filter {name!r}: its dimensions took {sets:,} distinct value sets within an "
                       "hour of event time; AWS disables such a filter at 1,000, at a moment only a pass over the "
                       "events in their order can tell: its datapoints were not written (castlewatch replay "
                       "decides it)", err=True)
        problems.append(EXIT_WITHHELD)
    unread = report.unread
    if unread:
        for name, reason in unread:
            click.echo(f"Error: could not read {name}: {reason}", err=True)
        problems.append(EXIT_OBJECTS_UNREAD)
    if problems:
        raise RunFailed(f"{len(unread)} objects not read, {len(report.withheld)} metric filters withheld; "
                        "see above", problems[-1])


def _run(loaded, start, end, workers, scheduler, objects_per_task, retries, console):
    """List, run and write, with a progress bar over objects on stderr; failures as
    :class:`RunFailed` / :class:`ConfigError` with their exit status."""
    from castlewatch.backfill.executor import dask_client, worker_threads
    from castlewatch.backfill.run import list_sources, run_backfill
    from castlewatch.engine.runner import OutputError
    from castlewatch.sinks import PublishError, SinkError

    try:
        with dask_client(scheduler, workers) as client:
            try:
                the_plan = list_sources(loaded, start, end, worker_threads(client), objects_per_task)
            except FileNotFoundError as err:
                raise RunFailed(f"cannot list the archive: {_os_error(err)}; nothing was written", EXIT_NO_INPUT) from None
            except PermissionError as err:
                raise RunFailed(f"cannot list the archive: {_os_error(err)}", EXIT_AWS_DENIED) from None
            except OSError as err:
                raise RunFailed(f"cannot list the archive: {_os_error(err)}", EXIT_AWS_UNAVAILABLE) from None
            empty = [job for job, listing in zip(the_plan.jobs, the_plan.listings) if not listing.logs]
            if empty:
                names = ", ".join(f"sources[{job.index}] ({job.location.url})" for job in empty)
                raise RunFailed(f"no {_kinds(empty)} object dated {start} .. {end} in {names}; nothing was written",
                                EXIT_NO_INPUT)
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("objects"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=console, transient=True)
            task = progress.add_task("backfill", total=the_plan.objects)
            failed = 0

            def done(objects: int, lost: int) -> None:
                nonlocal failed
                failed += lost
                progress.update(task, advance=objects,
                                description=f"backfill ({failed} failed)" if failed else "backfill")

            with progress:
                return run_backfill(loaded, the_plan, client, retries, done)
    except (RunFailed, click.ClickException):
        raise
    except OutputError as err:
        raise RunFailed(f"{err}; run the backfill again once it can be written", EXIT_OUTPUT_FAILED) from None
    except PublishError as err:
        raise RunFailed(str(err), EXIT_AWS_DENIED if err.denied else EXIT_AWS_UNAVAILABLE) from None
    except SinkError as err:
        raise ConfigError(str(err)) from None
    except (ValueError, TimeoutError) as err:  # a cluster castlewatch cannot use
        raise ConfigError(f"Dask: {err}") from None
    except OSError as err:  # the scheduler cannot be reached
        raise ConfigError(f"Dask: cannot reach the scheduler {scheduler}: {err}") from None


def _kinds(jobs) -> str:
    return " or ".join(sorted({"CloudTrail" if job.spec.format == "cloudtrail_archive" else "VPC Flow Logs"
                               for job in jobs}))


def _os_error(err: OSError) -> str:
    where = f"{err.filename}: " if getattr(err, "filename", None) else ""
    return f"{where}{err.strerror or err}"
