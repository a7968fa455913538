"""``castlewatch dashboard``: the CloudWatch dashboard of a configuration as a local HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from castlewatch.cli.engine_commands import EXIT_NO_INPUT, EXIT_NO_TIMESTAMP, EXIT_OUTPUT_FAILED, ConfigError, RunFailed
from castlewatch.cli.engine_commands import load_job
from castlewatch.dashboard_data import DatapointFileError, MinuteSums, datapoint_file, read_datapoints
from castlewatch.sinks.html_dashboard import DEFAULT_MAX_MINUTES, write_atomically

EXIT_STATUSES = f"""\b
Exit status:
  0   the page was written
  2   invalid options or configuration, or one without a jsonl, avro or csv sink
  {EXIT_NO_TIMESTAMP}  the datapoints file holds a line or record that is not a datapoint (named)
  {EXIT_NO_INPUT}  the datapoints file does not exist (run replay or run first)
  {EXIT_OUTPUT_FAILED}  the page cannot be written
"""


@click.command("dashboard", epilog=EXIT_STATUSES)
@click.option(
    "--config",
    "config",
    metavar="FILE",
    help="YAML config whose datapoints to draw. Default: the bundled demo (datapoints in ./castlewatch-out).",
)
@click.option(
    "--sinks-dir",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="The directory replay or run wrote the sinks' files to with --out DIR (default: the config's paths; "
    "./castlewatch-out for the demo).",
)
@click.option(
    "--out",
    metavar="FILE",
    help="The HTML file to write ('-': stdout). Default: the config's html_dashboard sink's path, else "
    "dashboard.html beside the datapoints file.",
)
@click.option(
    "--max-minutes",
    type=click.IntRange(1, 44_640),
    default=DEFAULT_MAX_MINUTES,
    show_default=True,
    help="Minutes drawn, counted back from the newest datapoint (older ones are counted, not drawn).",
)
def dashboard_command(config: str | None, sinks_dir: str | None, out: str | None, max_minutes: int) -> None:
    """Write the CloudWatch dashboard of a configuration as one HTML page that opens offline.

    The same widgets as the cloudwatch_dashboard sink puts (generated from the metric
    filters, one plot per metric, one line per dimension value set), filled with the
    datapoints the configuration's file sink wrote: its first jsonl sink, else avro, else
    csv. Every datapoint of a minute adds up (late ones included). The page's path is
    printed on stderr.
    """
    loaded = load_job(config, sinks_dir)
    found = datapoint_file(loaded)
    if found is None:
        raise ConfigError(
            f"{loaded.path}: no jsonl, avro or csv sink: the dashboard is drawn from the datapoints such a sink "
            "writes (add one, e.g. {type: jsonl, path: datapoints.jsonl}, and replay)"
        )
    kind, path = found
    target = _out_path(loaded, out, path)
    store = MinuteSums(max_minutes)
    try:
        notes = read_datapoints(kind, path, store)
    except FileNotFoundError:
        then = f"castlewatch replay --config {config}" if config else "castlewatch replay"
        raise RunFailed(f"no datapoints file {path}: run `{then}` first (or run) to write it", EXIT_NO_INPUT) from None
    except DatapointFileError as err:
        raise RunFailed(str(err), EXIT_NO_TIMESTAMP) from None
    except OSError as err:
        raise RunFailed(f"cannot read {path}: {err.strerror or err}", EXIT_NO_INPUT) from None
    for note in notes:
        click.echo(f"Note: {note}", err=True)

    from castlewatch.dashboard_page import page_model, render_page

    page = page_model(loaded, store, source=str(path), notes=notes)
    html = render_page(page)
    if target is None:
        sys.stdout.write(html)
        sys.stdout.flush()
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, html)
        except OSError as err:
            raise RunFailed(f"cannot write the page {target}: {err.strerror or err}", EXIT_OUTPUT_FAILED) from None
    graphs = sum(len(s["graphs"]) for s in page.sections)
    span = f"{page.range['first']} to {page.range['last']} UTC" if page.range else "no datapoint"
    where = "stdout" if target is None else str(target)
    click.echo(f"Wrote the dashboard to {where}: {graphs} widgets, {page.datapoints} datapoints ({span}) "
               f"from {path}", err=True)
    if page.outside:
        click.echo(f"Note: {page.outside} datapoints older than the last {max_minutes} minutes are not drawn "
                   "(--max-minutes)", err=True)


def _out_path(config, out: str | None, datapoints: Path) -> Path | None:
    """Where the page goes (None: stdout); refused when it is a source's or another sink's file."""
    if out == "-":
        return None
    if out is None:
        page_sink = next((s for s in config.sinks if s.type == "html_dashboard"), None)
        return Path(page_sink.path) if page_sink is not None else datapoints.with_name("dashboard.html")
    target = Path(out)
    resolved = target.resolve()
    for i, sink in enumerate(config.sinks):
        if sink.path and sink.type != "html_dashboard" and Path(sink.path).resolve() == resolved:
            raise ConfigError(f"--out {out}: that is the file of sinks[{i}] ({sink.type}); write the page elsewhere")
    for i, source in enumerate(config.sources):
        if getattr(source, "path", None) and Path(source.path).resolve() == resolved:
            raise ConfigError(f"--out {out}: that is the file sources[{i}] reads; write the page elsewhere")
    return target
