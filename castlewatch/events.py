"""Log event messages read from text: plain lines, or the JSON the AWS CLI prints.

Three input shapes are recognised, in this order:

1. the JSON printed by ``aws logs filter-log-events`` or ``aws logs get-log-events``:
   one object with an ``events`` array of event objects;
2. JSON Lines, one event object per line;
3. anything else: plain text, one event per line.

An *event object* is what those commands print for one event: an object with a string
``message`` and an integer ``timestamp``, and no keys besides ``logStreamName``,
``timestamp``, ``message``, ``ingestionTime`` and ``eventId``. Structured application
logs (which may well have a ``message`` field of their own) are therefore read as plain
lines.
"""

from __future__ import annotations

import orjson

_EVENT_KEYS = frozenset({"logStreamName", "timestamp", "message", "ingestionTime", "eventId"})


def split_lines(text: str) -> list[str]:
    """The event messages of a plain-text log: one per non-empty line.

    Lines end at ``\\n`` only (a form feed, vertical tab or U+2028 inside a message
    stays in it). One ``\\r`` before the ``\\n`` is removed, so CRLF files read the
    same as LF files. Empty lines are not events; a line of spaces is.
    """
    messages = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if line:
            messages.append(line)
    return messages


def parse_events(text: str) -> list[str]:
    """The event messages in ``text``, in order, whichever of the three shapes it has.

    Messages from JSON input are returned verbatim (they may be empty or contain
    newlines); see :func:`split_lines` for plain text.
    """
    messages = _cli_output_messages(text)
    if messages is None:
        messages = _json_lines_messages(text)
    if messages is None:
        messages = split_lines(text)
    return messages


def _cli_output_messages(text: str) -> list[str] | None:
    """Messages of a ``{"events": [...]}`` document, or None if ``text`` is not one."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    events = document.get("events")
    if not isinstance(events, list) or not all(_is_event(event) for event in events):
        return None
    return [event["message"] for event in events]


def _json_lines_messages(text: str) -> list[str] | None:
    """Messages of JSON Lines made only of event objects, or None otherwise."""
    messages = []
    for line in split_lines(text):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not _is_event(event):
            return None
        messages.append(event["message"])
    return messages or None


def _is_event(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("message"), str)
        and type(value.get("timestamp")) is int
        and value.keys() <= _EVENT_KEYS
    )
