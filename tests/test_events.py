"""Reading log event messages from text (castlewatch.events)."""

from __future__ import annotations

import json

import pytest

from castlewatch.events import parse_events, split_lines


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("a\nb\n", ["a", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\r\r\n", ["a\r"]),
        ("\n\na\n\n\nb", ["a", "b"]),
        ("\r\n", []),
        ("  \n", ["  "]),
        ("a\x0cb\u2028c\td\t\n", ["a\x0cb\u2028c\td\t"]),
        ("", []),
    ],
    ids=["lf", "crlf", "one-cr-only", "empty-lines", "empty-crlf-line", "spaces", "other-separators", "empty"],
)
def test_split_lines(text: str, messages: list[str]) -> None:
    assert split_lines(text) == messages


def test_aws_cli_events_document() -> None:
    document = {
        "events": [
            {"logStreamName": "s", "timestamp": 1, "message": "first\nline", "ingestionTime": 2, "eventId": "e1"},
            {"timestamp": 3, "message": "", "ingestionTime": 4},
        ],
        "nextForwardToken": "f/1",
        "nextBackwardToken": "b/1",
    }
    assert parse_events(json.dumps(document, indent=4)) == ["first\nline", ""]
    assert parse_events(json.dumps(document)) == ["first\nline", ""]


def test_json_lines_of_events() -> None:
    text = '{"timestamp": 1, "message": "a"}\r\n\n{"timestamp": 2, "message": "b", "eventId": "x"}\n'
    assert parse_events(text) == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    [
        '{"level": "INFO", "message": "hello"}\n',
        '{"timestamp": "2024-03-05", "message": "hello"}\n',
        '{"timestamp": 1, "message": "a"}\nplain text\n',
        '{"events": [{"name": "not an event"}]}\n',
        '{"events": "none"}\n',
        "[1, 2]\n",
        "{ $.level = ERROR }\n",
    ],
    ids=["app-log", "string-timestamp", "mixed", "events-not-events", "events-not-a-list", "array", "not-json"],
)
def test_anything_else_is_plain_lines(text: str) -> None:
    assert parse_events(text) == split_lines(text)
