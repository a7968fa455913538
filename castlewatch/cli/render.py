"""How ``castlewatch test-metric-filter`` prints a TestMetricFilter response."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text


def format_json(response: dict) -> str:
    """``response`` as the AWS CLI prints JSON: indented by 4, non-ASCII kept, newline-terminated."""
    return json.dumps(response, indent=4, ensure_ascii=False) + "\n"


def print_table(console: Console, response: dict, messages: list[str]) -> None:
    """Print every event of ``messages`` in a table, then ``N of M events matched``.

    ``response`` is the TestMetricFilter response for ``messages`` (``eventNumber`` is
    the 1-based index into ``messages``). Matched events are shown in full with their
    ``extractedValues`` (``{}`` when the pattern extracts nothing) and highlighted;
    the other events are dimmed and cut to one line. Messages are shown as plain
    text, never as rich markup.
    """
    matches = {match["eventNumber"]: match["extractedValues"] for match in response["matches"]}
    table = Table()
    table.add_column("eventNumber", justify="right")
    table.add_column("eventMessage")
    table.add_column("extractedValues")
    for number, message in enumerate(messages, start=1):
        if number in matches:
            table.add_row(
                Text(str(number), style="bold green"),
                Text(message, style="bold", overflow="fold"),
                _extracted_values(matches[number]),
            )
        else:
            table.add_row(
                Text(str(number), style="dim"),
                Text(message, style="dim", no_wrap=True, overflow="ellipsis"),
                Text(""),
            )
    console.print(table)
    console.print(Text(f"{len(matches)} of {len(messages)} events matched"))


def _extracted_values(values: dict[str, str]) -> Text:
    if not values:
        return Text("{}", style="dim")
    text = Text(overflow="fold")
    for index, (name, value) in enumerate(values.items()):
        if index:
            text.append("\n")
        text.append(name, style="bold cyan")
        text.append(" = ")
        text.append(value, style="yellow")
    return text
