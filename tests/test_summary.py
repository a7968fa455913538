"""The end-of-run summary off a terminal (:func:`castlewatch.cli.summary.plain_text`): the
very text rich prints for the same table (so scripts that read it see no change), written
without importing rich (start-up, issue 11); on a terminal, rich draws it."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from castlewatch.cli.summary import Summary, plain_text, print_summary, rich_table, stderr_is_terminal

cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp", "Mn", "Me", "Cf", "Co", "Cn"]),
                min_size=1, max_size=40).filter(lambda t: t.strip() == t)


def _rich(s: Summary) -> str:
    out = io.StringIO()
    print_summary(rich_table(s), Console(file=out, force_terminal=False, stderr=True))
    return out.getvalue()


@pytest.mark.parametrize("title, rows", [
    ("castlewatch: 1000 events in 0.09 s", [("events read", "1000", ""), ("sink jsonl", "/tmp/out.jsonl", "cyan")]),
    ("castlewatch backfill 2025-01-02 .. 2025-01-03: 384 objects, 499200 events in 12.34 s and more words",
     [("events read", "1", "")]),
    ("castlewatch: 0 events in 0.00 s", []),
    ("t", [("matched: café ☃ 日本", "3", "yellow"), ("x" * 150, "1" * 30, "")]),
])
def test_the_text_is_what_rich_prints(title, rows):
    s = Summary(title, list(rows))
    assert plain_text(s) == _rich(s)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cells, st.integers(0, 10**12).map(str)), max_size=6), st.integers(0, 10**7))
def test_any_rows_are_what_rich_prints(rows, events):
    s = Summary(f"castlewatch: {events} events in 1.25 s", [(what, count, "") for what, count in rows])
    assert plain_text(s) == _rich(s)


@pytest.mark.parametrize("env, tty, expected", [
    ({}, False, False), ({}, True, True), ({"TTY_COMPATIBLE": "1"}, False, True), ({"TTY_COMPATIBLE": "0"}, True, False),
    ({"FORCE_COLOR": "1"}, False, True), ({"FORCE_COLOR": ""}, True, False),
])
def test_a_terminal_as_rich_decides_it(monkeypatch, env, tty, expected):
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert stderr_is_terminal(Stream()) is expected
    assert stderr_is_terminal(Stream()) is Console(file=Stream(), stderr=True).is_terminal


def test_a_replay_off_a_terminal_imports_no_rich(tmp_path):
    code = ("import sys; from castlewatch.cli.program import run\n"
            "sys.argv = ['castlewatch', 'replay']\n"
            "import atexit; atexit.register(lambda: print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich')))\n"
            "run()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "│ events read" in done.stderr
