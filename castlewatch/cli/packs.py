"""``castlewatch packs list`` and ``castlewatch packs show NAME``: the built-in packs
(:mod:`castlewatch.packs`)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from castlewatch.cli.render import format_json
from castlewatch.metric_filters import MetricFilterLoadError, validate_metric_filters
from castlewatch.metric_filters.errors import MetricFilterError
from castlewatch.packs import LOG_GROUP_KINDS, Pack, PackError, get_pack, pack_names

_OUTPUT = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: for reading; json: for programs (show: the describe-metric-filters shape).",
)


class PackUsageError(click.ClickException):
    """An unknown pack, filter key, variant or log group kind: ``Error: ...``, exit 2."""

    exit_code = 2


@click.group("packs")
def packs_command() -> None:
    """Built-in monitoring packs: ready-made metric filters with their metadata.

    Use one in a config as an entry of metric_filters:
    {pack: cis, log_group: CloudTrail/DefaultLogGroup, variants: {unauthorized-api-calls: cis-v5.0}}.
    """


@packs_command.command("list")
@_OUTPUT
def list_command(output: str) -> None:
    """List the built-in packs: name, filters, the log groups they read, title."""
    packs = [get_pack(name) for name in pack_names()]
    if output == "json":
        click.echo(format_json({"packs": [{
            "name": p.name,
            "title": p.title,
            "filters": len(p.filters),
            "logGroupKinds": list(p.log_group_kinds),
        } for p in packs]}), nl=False)
        return
    table = Table()
    for column in ("pack", "filters", "log groups", "title"):
        table.add_column(column, justify="right" if column == "filters" else "left")
    for p in packs:
        table.add_row(p.name, str(len(p.filters)), ", ".join(p.log_group_kinds), Text(p.title))
    Console().print(table)


@packs_command.command("show")
@click.argument("name")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    metavar="KEY=VARIANT",
    help="Use a documented variant of a filter's pattern, e.g. --variant unauthorized-api-calls=cis-v5.0 "
    "(repeatable).",
)
@click.option(
    "--log-group",
    "log_groups",
    multiple=True,
    metavar="NAME|KIND=NAME",
    help="Put the filters on this log group (logGroupName), and validate them as PutMetricFilter does; "
    f"KIND=NAME for a pack reading several kinds ({', '.join(LOG_GROUP_KINDS)}).",
)
@_OUTPUT
def show_command(name: str, variants: tuple[str, ...], log_groups: tuple[str, ...], output: str) -> None:
    """Show a pack's metric filters and their metadata.

    --output json prints {"metricFilters": [...]} as 'aws logs describe-metric-filters'
    prints it (logGroupName only with --log-group; no creationTime), with beside it
    "metadata", the same filters' metadata in the same order (key, title, CIS control
    ids, Security Hub control, rationale, the variant in use and its source, every
    variant offered), and "pack". With --log-group it is a metric filters file a config
    can name ({file: PATH}).
    """
    try:
        pack = get_pack(name)
        chosen = dict(_pair(v, "--variant", "KEY=VARIANT") for v in variants)
        group = _log_group(log_groups)
        described = pack.describe(group, chosen)
        if group is not None:
            validate_metric_filters(pack.metric_filters(group, chosen))
    except PackError as error:
        hint = " (--log-group KIND=NAME, once for each kind)" if error.location.startswith("log_group") else ""
        raise PackUsageError(f"{error}{hint}") from None
    except (MetricFilterError, MetricFilterLoadError) as error:
        raise PackUsageError(str(error)) from None
    if output == "json":
        click.echo(format_json(described), nl=False)
    else:
        _print_pack(Console(), pack, described)


def _pair(value: str, option: str, shape: str) -> tuple[str, str]:
    key, sep, rest = value.partition("=")
    if not sep or not key or not rest:
        raise PackError(f"{option} takes {shape}, got {value!r}")
    return key, rest


def _log_group(values: tuple[str, ...]) -> str | dict[str, str] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    return dict(_pair(v, "--log-group", "KIND=NAME when given more than once") for v in values)


def _print_pack(console: Console, pack: Pack, described: dict) -> None:
    console.print(Text(f"{pack.name}: {pack.title}", style="bold"))
    console.print(Text(pack.description))
    table = Table(show_lines=True)
    for column in ("key", "controls", "metric", "variant", "filterPattern"):
        table.add_column(column, overflow="fold")
    for f, meta in zip(described["metricFilters"], described["metadata"]):
        t = f["metricTransformations"][0]
        controls = [f"CIS {c['versions']}: {c['control']}" for c in meta["cis"]]
        if meta["securityHub"]:
            controls.append(f"Security Hub {meta['securityHub']}")
        metric = f"{t['metricName']}\nnamespace {t['metricNamespace']}\nvalue {t['metricValue']}"
        if t.get("dimensions"):
            metric += "\nper " + ", ".join(f"{k}={v}" for k, v in t["dimensions"].items())
        if f.get("logGroupName"):
            metric += f"\non {f['logGroupName']}"
        others = [v["name"] for v in meta["variants"] if v["name"] != meta["variant"]]
        variant = meta["variant"] + (f"\n(also: {', '.join(others)})" if others else "")
        table.add_row(
            Text(f"{meta['key']}\n{f['filterName']}"),
            Text("\n".join(controls) or "-"),
            Text(metric),
            Text(variant),
            Text(f["filterPattern"]),
        )
    console.print(table)
    console.print(Text("Choose a variant with --variant KEY=VARIANT (in a config: variants: {KEY: VARIANT}); "
                       "--output json shows each variant's text, source and difference.", style="dim"))
