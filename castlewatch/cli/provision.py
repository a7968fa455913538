"""``castlewatch provision``: create in AWS what a configuration describes (:mod:`castlewatch.provision`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from castlewatch.cli.aws_options import aws_flags, aws_options
from castlewatch.cli.engine_commands import (
    EXIT_AWS_DENIED,
    EXIT_AWS_UNAVAILABLE,
    EXIT_NO_INPUT,
    EXIT_RUN_FAILED,
    ConfigError,
    RunFailed,
    with_flags,
)
from castlewatch.cli.summary import print_summary
from castlewatch.engine.config import load_config, talks_to_aws
from castlewatch.engine.runner import run_async
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.provision import Plan, ProvisionError, provision

PROVISION_EXIT_STATUSES = f"""\b
Exit status:
  0   done: every resource is as the config describes (--dry-run: the plan is printed)
  1   stopped by a castlewatch bug (one line on stderr names it)
  2   invalid options or configuration, or a metric filter castlewatch refuses (with
      those the log group already has: the per-log-group quotas)
  {EXIT_NO_INPUT}  a log group went missing while provisioning
  {EXIT_AWS_UNAVAILABLE}  CloudWatch Logs or CloudWatch kept failing (throttling, 5xx, no connection)
      or refused a call, or a log group is not of the STANDARD log class
  {EXIT_AWS_DENIED}  AWS denied a call (AccessDenied, no or invalid credentials)
A failure says how many changes were made before it; provision again once fixed:
it makes only what is still missing or different.
"""

_EXIT_BY_KIND = {"not_found": EXIT_NO_INPUT, "denied": EXIT_AWS_DENIED, "config": ConfigError.exit_code}
_DONE = {"create": "created", "update": "updated", "unchanged": "unchanged"}


@click.command("provision", epilog=PROVISION_EXIT_STATUSES)
@click.option("--config", "config", required=True, metavar="FILE",
              help="YAML config: its cloudwatch_logs sources' log groups, its metric filters and its "
                   "cloudwatch_dashboard sinks' dashboards are provisioned.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (create / update / unchanged per resource), change nothing.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: one row per resource; json: {dryRun, changes: [{resourceType, name, where, action, "
                   "detail}], counts}.")
@aws_options
def provision_command(config: str, dry_run: bool, output: str, region: str | None, profile: str | None,
                      endpoint_url: str | None) -> None:
    """Create what the config describes in AWS (or LocalStack, moto), idempotently.

    Log groups of the cloudwatch_logs sources (CreateLogGroup), the config's metric
    filters, validated as PutMetricFilter validates them (PutMetricFilter), and the
    dashboards of the cloudwatch_dashboard sinks, with the body castlewatch generates,
    validated as PutDashboard validates it (PutDashboard). What exists and is the same
    is left alone, so a second run changes nothing; metric filters and log groups the
    config does not name are never touched or deleted.

    The plan (what is created, updated or unchanged) is printed on stdout; notes and
    the summary line on stderr.
    """
    try:
        loaded = load_config(Path(config))
    except (OSError, InvalidParameterError, ValueError) as err:
        raise ConfigError(str(err)) from None
    loaded = with_flags(loaded, aws_flags(region, profile, endpoint_url))
    if not talks_to_aws(loaded) or not (
        any(s.type == "cloudwatch_logs" for s in loaded.sources)
        or any(s.type == "cloudwatch_dashboard" for s in loaded.sinks)
    ):
        raise ConfigError(f"{config}: nothing to provision: the config has no cloudwatch_logs source and no "
                          "cloudwatch_dashboard sink")
    try:
        plan = run_async(provision(loaded, dry_run=dry_run))
    except ProvisionError as err:
        total = "" if not err.done else f"; {err.done} change(s) were made before it"
        raise RunFailed(f"{err}{total}; provision again once fixed: it makes only what is still missing or different",
                        _EXIT_BY_KIND.get(err.kind, EXIT_AWS_UNAVAILABLE)) from None
    except Exception as err:
        why = f"{type(err).__name__}: {err}"
        raise RunFailed(f"provision stopped on a castlewatch bug: {why}", EXIT_RUN_FAILED) from None
    for note in plan.notes:
        click.echo(f"Note: {note}", err=True)
    counts = {action: plan.count(action) for action in ("create", "update", "unchanged")}
    if output == "json":
        changes = [c.to_json() for c in plan.changes]
        if not dry_run:
            for c in changes:
                c["action"] = _DONE[c["action"]]
        click.echo(json.dumps({"dryRun": dry_run, "changes": changes, "counts": counts}, indent=4))
    else:
        print_summary(plan_table(plan), Console())
    if dry_run:
        said = f"{counts['create']} to create, {counts['update']} to update, {counts['unchanged']} unchanged"
        click.echo(f"Dry run: {said}; nothing was changed.", err=True)
    else:
        said = f"{counts['create']} created, {counts['update']} updated, {counts['unchanged']} unchanged"
        click.echo(f"Provisioned: {said}.", err=True)


def plan_table(plan: Plan) -> Table:
    """The plan as a table: action, resource type, name, where, detail."""
    title = "castlewatch provision (dry run: nothing changed)" if plan.dry_run else "castlewatch provision"
    table = Table(title=title, title_justify="left")
    for column in ("Action", "Resource type", "Name", "Where"):
        table.add_column(column)
    detail = any(c.detail for c in plan.changes)
    if detail:
        table.add_column("Detail")
    for c in plan.changes:
        action = c.action if plan.dry_run else _DONE[c.action]
        row = [action, c.resource_type, c.name, c.where] + ([c.detail] if detail else [])
        table.add_row(*row, style=None if c.action == "unchanged" else "bold")
    return table
