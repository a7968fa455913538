"""The ``castlewatch`` command line."""

from __future__ import annotations

import json
import os

import click

import castlewatch
from castlewatch.cli.aws_options import group_aws_options
from castlewatch.cli.lazy import LazyGroup
from castlewatch.cli.options import MultiValueCommand, MultiValueOption
from castlewatch.events import parse_events
from castlewatch.grammar import literals
from castlewatch.samples import DESCRIPTIONS, UnknownSampleError, read_sample_lines, sample_names

#: The subcommands of their own modules, imported when used (start-up, issue 11).
SUBCOMMANDS = {
    "replay": "castlewatch.cli.engine_commands:replay_command",
    "run": "castlewatch.cli.engine_commands:run_command",
    "provision": "castlewatch.cli.provision:provision_command",
    "dashboard": "castlewatch.cli.dashboard_command:dashboard_command",
    "backfill": "castlewatch.cli.backfill:backfill_command",
    "bench": "castlewatch.cli.bench_command:bench_command",
    "packs": "castlewatch.cli.packs:packs_command",
    "serve": "castlewatch.cli.serve:serve_command",
    "conformance": "castlewatch.cli.conformance:conformance_command",
}

# TestMetricFilter takes 1 to 50 messages per call (spec §7).
API_BATCH_SIZE = 50


class InputError(click.ClickException):
    """Invalid input (pattern, file, sample, request limits): printed as ``Error: ...``, exit 2."""

    exit_code = 2


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    castlewatch.__version__,
    prog_name="castlewatch",
    message=f"%(prog)s %(version)s (matcher backend: {literals.backend()})",
)
@group_aws_options
def main() -> None:
    """Evaluate CloudWatch Logs filter patterns locally, exactly as AWS does.

    --region, --profile and --endpoint-url may come before the command, as with the
    AWS CLI, or after it (there they win): replay, run and provision take them.
    """


@main.command("test-metric-filter", cls=MultiValueCommand)
@click.option(
    "--filter-pattern",
    required=True,
    metavar="PATTERN",
    help="The filter pattern to test (0 to 1024 characters; '' matches every event).",
)
@click.option(
    "--log-event-messages",
    cls=MultiValueOption,
    metavar="MESSAGE ...",
    help=(
        "1 to 50 log event messages, as with the AWS CLI: --log-event-messages 'm1' 'm2', or one JSON "
        "list --log-event-messages '[\"m1\", \"m2\"]', or file://FILE holding such a list. "
        "Write a message that starts with '-' as --log-event-messages=-m."
    ),
)
@click.option(
    "--log-events-file",
    metavar="FILE",
    help=(
        "Read the events from FILE ('-' for stdin): one event per non-empty line, or the "
        "JSON printed by 'aws logs filter-log-events' / 'aws logs get-log-events', or "
        "JSON Lines of such event objects."
    ),
)
@click.option(
    "--sample",
    metavar="NAME",
    help=f"Read the events from a bundled sample: {', '.join(sorted(DESCRIPTIONS))}.",
)
@click.option(
    "--output",
    type=click.Choice(["json", "table"]),
    default="json",
    show_default=True,
    help="json: the API response as the AWS CLI prints it; table: every event, matches highlighted.",
)
def test_metric_filter_command(
    filter_pattern: str,
    log_event_messages: tuple[str, ...],
    log_events_file: str | None,
    sample: str | None,
    output: str,
) -> None:
    """Test a filter pattern on log event messages, like 'aws logs test-metric-filter'.

    Prints the TestMetricFilter response: the matching events, each with its 1-based
    eventNumber and its extractedValues.

    Give the events with exactly one of --log-event-messages, --log-events-file or
    --sample. The API takes 1 to 50 messages, and so does --log-event-messages. A file
    or a sample may hold any number of events: they are tested in batches of 50 and
    eventNumber stays the 1-based position of the event among all events of the file.
    Empty lines are not events (a line of spaces is one); a file without events gives
    no matches (exit 0), as replay reads it.
    """
    sources = [bool(log_event_messages), log_events_file is not None, sample is not None]
    if sum(sources) != 1:
        raise click.UsageError(
            "Give the events with exactly one of --log-event-messages, --log-events-file, --sample."
        )
    try:
        if log_event_messages:
            messages = messages_from_flag(log_event_messages)
            response = castlewatch.test_metric_filter(filter_pattern, messages)
        else:
            messages = _read_sample(sample) if sample is not None else _read_file(log_events_file)
            name = f"sample {sample}" if sample is not None else "stdin" if log_events_file == "-" else log_events_file
            response = _test_in_batches(filter_pattern, messages, name)
    except castlewatch.FilterPatternError as error:
        raise InputError(str(error)) from None
    except castlewatch.InvalidParameterError as error:
        raise InputError(f"{error.code}: {error}") from None
    if output == "json":
        from castlewatch.cli.render import format_json

        click.echo(format_json(response), nl=False)
    else:
        from rich.console import Console

        from castlewatch.cli.render import print_table

        print_table(Console(), response, messages)


@main.command("samples")
def samples_command() -> None:
    """List the bundled sample logs (use one with 'test-metric-filter --sample NAME')."""
    names = sample_names()
    width = max(len(name) for name in names)
    for name in names:
        lines = len(read_sample_lines(name))
        click.echo(f"{name:<{width}}  {lines:>3} lines  {DESCRIPTIONS.get(name, '')}".rstrip())


def _test_in_batches(filter_pattern: str, messages: list[str], name: str) -> dict:
    """TestMetricFilter over ``messages`` of any length, numbering events across batches.

    An input without events (an empty file, only line ends, ``{"events": []}``) is no
    matches, as ``replay`` reads such a file as 0 events: ``{"matches": []}`` with a
    note on stderr naming ``name``; the pattern is still validated.
    """
    if not messages:
        castlewatch.compile_pattern(filter_pattern)  # an invalid pattern is still an error
        click.echo(f"Note: {name} holds no log events: no matches.", err=True)
        return {"matches": []}
    if "" in messages:
        # The API would name the position inside the batch; name it in the whole input.
        position = messages.index("") + 1
        raise InputError(f"Event {position} is empty; log event messages need at least 1 character.")
    matches = []
    for start in range(0, len(messages), API_BATCH_SIZE):
        batch = castlewatch.test_metric_filter(filter_pattern, messages[start : start + API_BATCH_SIZE])
        matches += [{**match, "eventNumber": match["eventNumber"] + start} for match in batch["matches"]]
    return {"matches": matches}


def messages_from_flag(values: tuple[str, ...]) -> list[str]:
    """The messages of ``--log-event-messages``, read as the AWS CLI reads a list-of-strings
    parameter (awscli ``argprocess``, ``paramfile``): several values are the messages as
    they are; a single value is read from the file if it is ``file://PATH`` (``~`` and
    ``$VARS`` expanded), then, if it starts with ``[``, decoded as a JSON list of strings.

    castlewatch keeps one form working that the AWS CLI refuses: a single message that
    starts with ``[`` and is not JSON (``"[ERROR] 400 BAD REQUEST"``) is that message, with
    a note on stderr.

    Raises:
        InputError: a file that cannot be read or does not hold a JSON list, invalid JSON
            in a file, a JSON list with something other than strings.
    """
    if len(values) != 1:
        return list(values)
    value = values[0]
    where = "--log-event-messages"
    if value.startswith("file://"):
        path = os.path.expandvars(os.path.expanduser(value[len("file://"):]))
        where = f"--log-event-messages {value}"
        try:
            with open(path, encoding="utf-8") as file:
                value = file.read()
        except OSError as error:
            raise InputError(f"{where}: cannot read {path}: {error.strerror or error}.") from None
        except UnicodeDecodeError as error:
            raise InputError(f"{where}: not UTF-8 text (byte {error.start}).") from None
        if not value.strip().startswith("["):
            raise InputError(f'{where}: the file must hold a JSON list of strings, such as ["m1", "m2"].')
    elif not value.strip().startswith("["):
        return [value]
    try:
        decoded = json.loads(value)
    except ValueError as error:
        if where != "--log-event-messages":
            raise InputError(f"{where}: invalid JSON: {error}.") from None
        click.echo(
            "Note: --log-event-messages was given one message that starts with '[' and is not JSON: tested as one "
            "message (the AWS CLI reads a single value starting with '[' as a JSON list, and would refuse it).",
            err=True,
        )
        return [value]
    if not isinstance(decoded, list):
        raise InputError(f'{where}: expected a JSON list of strings, such as ["m1", "m2"].')
    for i, item in enumerate(decoded):
        if not isinstance(item, str):
            raise InputError(f"{where}: item {i + 1} of the JSON list is {json.dumps(item)}, not a string.")
    return decoded


def _read_sample(name: str) -> list[str]:
    try:
        return read_sample_lines(name)
    except UnknownSampleError as error:
        raise InputError(str(error)) from None


def _read_file(path: str) -> list[str]:
    """The events of ``path`` (``-``: stdin), decoded as UTF-8 (a leading BOM is dropped)."""
    name = "stdin" if path == "-" else path
    try:
        with click.open_file(path, "rb") as file:
            text = file.read().decode("utf-8-sig")
    except OSError as error:
        raise InputError(f"Cannot read {name}: {error.strerror or error}.") from None
    except UnicodeDecodeError as error:
        raise InputError(f"Cannot read {name}: not UTF-8 text (byte {error.start}).") from None
    return parse_events(text)
