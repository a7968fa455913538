"""``castlewatch conformance``: the differential check of :mod:`castlewatch.conformance_check`."""

from __future__ import annotations

import json

import click
from botocore.exceptions import NoRegionError, ProfileNotFound
from rich.console import Console
from rich.table import Table
from rich.text import Text

from castlewatch.cli.aws_options import aws_flags, aws_options
from castlewatch.cli.engine_commands import EXIT_AWS_DENIED, EXIT_AWS_UNAVAILABLE
from castlewatch.conformance_check import OUTCOMES, CasesError, Report, load_cases, record, run_check
from castlewatch.engine.runner import run_async

#: Some case disagrees with castlewatch.
EXIT_DISAGREE = 3
#: Disagreements listed in the table (all are in --output json).
SHOWN = 20

CONFORMANCE_EXIT_STATUSES = f"""\b
Exit status:
  0   every case checked agrees with castlewatch (skipped cases aside)
  2   invalid options, or a cases file that cannot be read
  {EXIT_DISAGREE}   some case disagrees
  {EXIT_AWS_UNAVAILABLE}  the endpoint does not answer TestMetricFilter (moto, LocalStack), cannot be
      reached, or failed on some case
  {EXIT_AWS_DENIED}  AWS denied the call (AccessDenied, no or invalid credentials)
"""


class CasesFileError(click.ClickException):
    """A cases file or an AWS setting that cannot be used: ``Error: ...``, exit 2."""

    exit_code = 2


@click.command("conformance", epilog=CONFORMANCE_EXIT_STATUSES)
@click.option("--cases", "cases_path", metavar="FILE",
              help="JSON Lines cases in the format of tests/conformance/cases.jsonl (default: the bundled cases).")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: agreements per pattern kind and the disagreements; json: every case as a JSON line in "
                   "the cases' format, with the endpoint's answer and a 'conformance' record.")
@aws_options
def conformance_command(cases_path: str | None, output: str, region: str | None, profile: str | None,
                        endpoint_url: str | None) -> None:
    """Run castlewatch's conformance cases through TestMetricFilter on an endpoint and
    compare every answer with castlewatch's.

    The endpoint is --endpoint-url (castlewatch serve, an emulator) or, without it, AWS
    itself in --region with your credentials (TestMetricFilter reads and stores nothing).
    The table counts agreements, disagreements, errors and skipped cases per pattern kind;
    --output json prints each case in the cases' own format with the endpoint's answer
    (match, extracted, event_number, invalid), so that a run against AWS records the
    service's answers on new cases (--cases FILE).
    """
    target = aws_flags(region, profile, endpoint_url)
    try:
        cases = load_cases(cases_path)
        report = run_async(run_check(target, cases))
    except CasesError as error:
        raise CasesFileError(str(error)) from None
    except (NoRegionError, ProfileNotFound) as error:
        raise CasesFileError(f"{error} (give --region, or set AWS_REGION)") from None
    if output == "json":
        for result in report.results:
            click.echo(json.dumps(record(result, report.where), ensure_ascii=False))
    else:
        _print_table(Console(), report)
    counts = report.counts()["total"]
    summary = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
    click.echo(f"castlewatch conformance: {len(report.results)} cases on {report.where}: {summary or 'none'}", err=True)
    if report.unavailable:
        click.echo(
            f"Error: {report.where} does not answer TestMetricFilter: {report.unavailable} (moto and LocalStack do "
            "not implement it; castlewatch serve does)", err=True,
        )
        raise SystemExit(EXIT_AWS_DENIED if report.denied else EXIT_AWS_UNAVAILABLE)
    if counts["disagree"]:
        raise SystemExit(EXIT_DISAGREE)
    if counts["error"]:
        raise SystemExit(EXIT_AWS_UNAVAILABLE)


def _print_table(console: Console, report: Report) -> None:
    table = Table(title=f"TestMetricFilter on {report.where} against castlewatch")
    table.add_column("pattern kind")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    for kind, counts in report.counts().items():
        style = "bold" if kind == "total" else ""
        table.add_row(Text(kind, style=style), *(Text(str(counts[o]), style=style) for o in OUTCOMES))
    console.print(table)
    differing = [r for r in report.results if r.outcome == "disagree"]
    if differing:
        listing = Table(title="Disagreements")
        listing.add_column("case")
        listing.add_column("pattern", overflow="fold")
        listing.add_column("event", overflow="fold")
        listing.add_column("endpoint", overflow="fold")
        for result in differing[:SHOWN]:
            listing.add_row(result.case["id"], Text(result.case["pattern"]), Text(result.case["event"]),
                            Text(result.detail))
        console.print(listing)
        if len(differing) > SHOWN:
            console.print(f"{len(differing) - SHOWN} more disagreements: --output json lists every case.")
    errors = [r for r in report.results if r.outcome == "error"]
    if errors and not report.unavailable:
        console.print(Text(f"{len(errors)} cases failed on the endpoint; the first: {errors[0].detail}"))
