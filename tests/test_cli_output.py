"""What a new user meets at the command line (issue 8 §4): data on stdout and everything
else on stderr, the summary printed whole, replay's exit statuses, clear errors for bad
options, datapoints and datums counted apart, one rule for inputs without events.

Run through the real command line: click's CliRunner, or a process where a terminal
(``TTY_COMPATIBLE=1``), the environment or signals matter.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from castlewatch.cli import main
from castlewatch.engine.checkpoint import read_checkpoint

WAIT_S = 20.0
T = 1_709_629_200  # 2024-03-05T09:00:00Z

FILTERS = """\
metric_filters:
  - filterName: values
    logGroupName: app
    filterPattern: '{ $.v = * }'
    metricTransformations: [{metricName: V, metricNamespace: Test, metricValue: $.v, dimensions: {Path: $.p}}]
"""


def config(tmp_path: Path, sources: str, sinks: str, filters: str = FILTERS, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"{filters}sources: {sources}\nsinks: {sinks}\n", encoding="utf-8")
    return path


def source(path: str, field: str = "$.t", group: str = "app") -> str:
    return f"{{type: file, path: '{path}', log_group: {group}, timestamp: {{field: {field}, format: epoch_s}}}}"


def write_events(path: Path, n: int, start: int = T, path_dimension: str = "/a") -> None:
    """``n`` events in one minute, values 1..n (distinct), one dimension value."""
    path.write_text(
        "".join(json.dumps({"t": start + i % 60, "v": i + 1, "p": path_dimension}) + "\n" for i in range(n)),
        encoding="utf-8",
    )


def invoke(*args: str, env: dict | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def process(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run(
        [sys.executable, "-m", "castlewatch", *args],
        capture_output=True,
        cwd=cwd,
        env={**environment, **(env or {})},
        timeout=timeout,
    )


def table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def json_lines(data: bytes) -> list[dict]:
    """Every line of ``data`` parsed as JSON (fails on any other line, as ``jq`` would)."""
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def screen(output: bytes) -> list[str]:
    """What a terminal shows after ``output``: enough of a VT100 for rich's live display
    (``\\r``, ``\\n``, erase line ``ESC[2K``, cursor up ``ESC[nA``; colours and cursor
    visibility ignored)."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", output.decode("utf-8")):
        if token == "\n":
            row, col = row + 1, 0
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            command, argument = token[-1], token[2:-1]
            if command == "K":
                lines[row] = ""
            elif command == "A":
                row -= int(argument or 1)
            elif command not in "mhl":
                raise AssertionError(f"unexpected control sequence {token!r}")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token) :]
            col += len(token)
        while len(lines) <= row:
            lines.append("")
    return [line.rstrip() for line in lines]


# ---- data on stdout, everything else on stderr ---------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal-stderr"])
def test_replay_to_a_stdout_sink_pipes_into_jq(tmp_path, terminal):
    """stdout holds the datapoint lines only (the summary, warnings and, on a terminal,
    the progress display are on stderr), whether or not stderr is a terminal."""
    write_events(tmp_path / "app.log", 3000)
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: stdout}]")
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "100"} if terminal else {}
    proc = process("replay", "--config", str(cfg), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = json_lines(proc.stdout)
    assert [len(line["Values"]) for line in lines] == [150] * 20  # 3000 distinct values, 20 datums
    assert {line["MetricName"] for line in lines} == {"V"}
    shown = "\n".join(screen(proc.stderr)) if terminal else proc.stderr.decode()
    assert table_rows(shown)["events read"] == "3000"


def test_replay_summary_is_on_stderr(tmp_path):
    write_events(tmp_path / "app.log", 10)
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert table_rows(result.stderr)["events read"] == "10"


def test_run_to_a_stdout_sink_keeps_stdout_for_data(tmp_path):
    """The daemon writes its records (start, progress, stop) and, on a terminal, its live
    status and summary on stderr; stdout gets the datapoint lines only."""
    write_events(tmp_path / "app.log", 400)
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: stdout}]")
    checkpoint = tmp_path / "ck.json"
    for terminal in (False, True):
        checkpoint.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TTY_COMPATIBLE")}
        if terminal:
            env.update(TTY_COMPATIBLE="1", COLUMNS="100")
        proc = subprocess.Popen(
            [sys.executable, "-m", "castlewatch", "run", "--config", str(cfg), "--checkpoint", str(checkpoint),
             "--checkpoint-interval", "0.2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=tmp_path, env=env,
        )
        try:
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    if read_checkpoint(checkpoint)["stats"]["events_read"] == 400:
                        break
                except (FileNotFoundError, ValueError, KeyError):
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "the daemon did not read the file"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=WAIT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err.decode()
        lines = json_lines(out)
        assert sum(len(line["Values"]) for line in lines) == 400, terminal
        if terminal:
            assert table_rows("\n".join(screen(err)))["events read"] == "400"
        else:
            records = [json.loads(line) for line in err.decode().splitlines()]
            assert [r["event"] for r in records][0] == "start" and records[-1]["event"] == "stop"
            assert records[-1]["datums_written"] == len(lines)


def test_table_output_and_samples_are_data_on_stdout():
    table = invoke("test-metric-filter", "--filter-pattern", "ERROR", "--output", "table",
                   "--log-event-messages", "ERROR a", "INFO b")
    assert table.exit_code == 0 and table.stderr == ""
    assert table.stdout.rstrip().endswith("1 of 2 events matched")
    samples = invoke("samples")
    assert samples.exit_code == 0 and samples.stderr == "" and "lambda" in samples.stdout


# ---- the summary, whole --------------------------------------------------------------------------


def test_summary_off_a_terminal_is_printed_whole(tmp_path):
    """No COLUMNS, no terminal: rich would lay the table out at 80 columns and end the
    long path in "…"; the whole path is there, on one row."""
    write_events(tmp_path / "app.log", 5)
    deep = "a directory whose name alone is longer than the eighty columns of a default console/"
    cfg = config(tmp_path, f"[{source('app.log')}]", f"[{{type: csv, path: '{deep}dp.csv'}}]")
    proc = process("replay", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "…" not in err
    assert table_rows(err)["sink csv"] == str(tmp_path / deep / "dp.csv")
    assert max(len(line) for line in err.splitlines()) > 120


def test_no_stale_progress_line_above_the_summary_on_a_terminal(tmp_path):
    """The progress display is transient: once the replay ends the terminal shows the
    summary and nothing of the progress line."""
    write_events(tmp_path / "app.log", 20000)
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    proc = process("replay", "--config", str(cfg), cwd=tmp_path, env={"TTY_COMPATIBLE": "1", "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"\x1b[" in proc.stderr  # a terminal was assumed: the progress display ran
    shown = [line for line in screen(proc.stderr) if line]
    assert shown[0].startswith("castlewatch: 20000 events in "), shown
    assert not any(re.search(r"\d+ events, \d+ datapoints", line) for line in shown), shown
    assert table_rows("\n".join(shown))["events read"] == "20000"


# ---- replay's exit statuses ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["missing.log", "logs/*.log"], ids=["file", "glob"])
def test_replay_of_a_source_without_files_exits_66_and_writes_nothing(tmp_path, path):
    write_events(tmp_path / "app.log", 5)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dp.jsonl").write_text("an earlier run's output\n")
    sources = f"[{source('app.log')}, {source(path, group='app')}]"
    cfg = config(tmp_path, sources, "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 66, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    reason = "no such file" if path == "missing.log" else "no file matches the glob"
    assert line.startswith(f"Error: source file:{tmp_path / path}: {reason}; nothing was replayed"), line
    assert (tmp_path / "out" / "dp.jsonl").read_text() == "an earlier run's output\n"  # not opened


def test_replay_of_a_glob_matching_only_a_fifo_names_it(tmp_path):
    os.mkfifo(tmp_path / "app.pipe")
    cfg = config(tmp_path, f"[{source('app.*')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 66, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"Error: source file:{tmp_path / 'app.*'}: no file matches the glob but {tmp_path / 'app.pipe'}, which it "
        "skips: not regular files (named pipes, sockets, devices); nothing was replayed"
    ), line


def test_run_waits_for_a_missing_file_with_a_warning(tmp_path):
    """In run the file may appear later: a warning, and the daemon reads it once it does."""
    cfg = config(tmp_path, f"[{source('later.log')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    checkpoint = tmp_path / "ck.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "castlewatch", "run", "--config", str(cfg), "--checkpoint", str(checkpoint),
         "--checkpoint-interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not checkpoint.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        write_events(tmp_path / "later.log", 7)
        while _events_read(checkpoint) != 7:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"Warning: source file:{tmp_path / 'later.log'}: no such file" in err.decode()
    assert out == b""


def test_replay_whose_timestamp_resolves_in_no_event_exits_65(tmp_path):
    """Every event that was to publish had no usable time: the summary (on stderr), then
    one error naming the source and its timestamp setting, exit 65; a source beside it
    that worked still has its datapoints written."""
    write_events(tmp_path / "good.log", 4)
    write_events(tmp_path / "bad.log", 6)
    sources = f"[{source('good.log')}, {source('bad.log', field='$.time')}]"
    cfg = config(tmp_path, sources, "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 65, result.output
    assert result.stdout == ""
    rows = table_rows(result.stderr)
    assert rows["malformed, skipped: bad_timestamp"] == "6"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: source file:{tmp_path / 'bad.log'}: its timestamp {{field: $.time, format: epoch_s}} gave no "
        "usable time in any of the 6 events that were to publish (each counted as bad_timestamp, nothing "
        "published); check the field and the format"
    ]
    assert sum(len(json.loads(line)["Values"]) for line in (tmp_path / "out" / "dp.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    "lines",
    [
        ['{"t": %d, "v": 1, "p": "/a"}' % T, '{"v": 2, "p": "/a"}'],  # some bad timestamps, not all
        ['{"t": %d, "w": 1}' % T, '{"w": 2}'],  # nothing matches: no event was to publish
        [],  # an empty file
    ],
    ids=["some-bad", "no-match", "empty"],
)
def test_replay_that_did_what_it_was_asked_exits_0(tmp_path, lines):
    (tmp_path / "app.log").write_text("".join(line + "\n" for line in lines))
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 0, result.output
    assert "Error" not in result.stderr


# ---- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["replay", "run"])
def test_out_naming_a_file_is_a_usage_error(tmp_path, command):
    (tmp_path / "taken").write_text("")
    result = invoke(command, "--out", str(tmp_path / "taken"))
    assert result.exit_code == 2
    assert f"Error: Invalid value for '--out': Directory '{tmp_path / 'taken'}' is a file." in result.stderr
    assert "Errno" not in result.stderr


def test_sink_directory_in_the_way_of_a_file_is_one_clear_line(tmp_path):
    write_events(tmp_path / "app.log", 3)
    (tmp_path / "out").write_text("a file where the sink's directory should be")
    cfg = config(tmp_path, f"[{source('app.log')}]", "[{type: jsonl, path: out/dp.jsonl}]")
    result = invoke("replay", "--config", str(cfg))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: cannot create the directory {tmp_path / 'out'}: a file of that name is in the way\n"
    )


@pytest.mark.parametrize("value", ["0", "-1", "0.0", "nan", "inf", "soon"])
def test_checkpoint_interval_must_be_a_positive_number_of_seconds(tmp_path, value):
    result = invoke("run", "--out", str(tmp_path / "out"), "--checkpoint-interval", value)
    assert result.exit_code == 2
    assert f"Error: Invalid value for '--checkpoint-interval': {value!r} is not " in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "hint"),
    [("lamda", " (did you mean 'lambda'?)"), ("vpc", " (did you mean 'vpc-flow' or 'vpc-flow-custom'?)"),
     ("cloudtrail.jsonl", " (did you mean 'cloudtrail'?)"), ("zzz", "")],
)
def test_unknown_sample_suggests_a_name(name, hint):
    result = invoke("test-metric-filter", "--filter-pattern", "ERROR", "--sample", name)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: unknown sample {name!r}{hint}; choose one of: apigw-access, ")


# ---- datapoints and datums -----------------------------------------------------------------------


def test_summary_counts_datapoints_and_datums(tmp_path):
    """One minute with 400 distinct values is one datapoint (one CSV row) and three
    PutMetricData datums (three JSON Lines lines, at most 150 values each)."""
    write_events(tmp_path / "app.log", 400)
    sinks = "[{type: jsonl, path: out/dp.jsonl}, {type: csv, path: out/dp.csv}]"
    cfg = config(tmp_path, f"[{source('app.log')}]", sinks)
    result = invoke("replay", "--config", str(cfg), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stderr)
    assert rows["datapoints written"] == "1"
    assert rows["datums written (JSON Lines lines)"] == "3"
    assert len((tmp_path / "out" / "dp.jsonl").read_text().splitlines()) == 3
    assert len((tmp_path / "out" / "dp.csv").read_text().splitlines()) == 1 + 1  # header + one row


# ---- inputs without events: one rule -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n\n", b"\r\n\r\n", b'{"events": []}\n', b"\xef\xbb\xbf"],
    ids=["empty", "newlines", "crlf", "no-cli-events", "bom-only"],
)
def test_input_without_events_is_no_matches(tmp_path, content):
    """Empty lines are not events (as in replay); an input with none is no matches, exit 0,
    with a note on stderr, from a file and from stdin alike."""
    path = tmp_path / "events.log"
    path.write_bytes(content)
    from_file = invoke("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    from_stdin = CliRunner().invoke(
        main, ["test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", "-"], input=content
    )
    for result, name in ((from_file, str(path)), (from_stdin, "stdin")):
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"matches": []}
        assert result.stderr == f"Note: {name} holds no log events: no matches.\n"


def test_lines_of_spaces_are_events(tmp_path):
    """A line of spaces is a log event (the API takes a message of one space): tested,
    not skipped."""
    path = tmp_path / "events.log"
    path.write_text("  \n\t\n")
    result = invoke("test-metric-filter", "--filter-pattern", "", "--log-events-file", str(path))
    assert result.exit_code == 0, result.output
    assert [m["eventMessage"] for m in json.loads(result.stdout)["matches"]] == ["  ", "\t"]
    assert result.stderr == ""


def test_input_without_events_still_validates_the_pattern(tmp_path):
    path = tmp_path / "events.log"
    path.write_bytes(b"")
    result = invoke("test-metric-filter", "--filter-pattern", "ERR*", "--log-events-file", str(path))
    assert result.exit_code == 2
    assert "Invalid character(s) in term '*'" in result.stderr
    assert result.stdout == ""


def _events_read(checkpoint: Path) -> int | None:
    """Events read as of the checkpoint at ``checkpoint``, None before its first save."""
    try:
        return read_checkpoint(checkpoint)["stats"]["events_read"]
    except (FileNotFoundError, ValueError):
        return None


def test_progress_records_come_while_idle_and_only_when_something_changed(capsys):
    from castlewatch.cli.engine_commands import ProgressRecords
    from castlewatch.model import Stats

    now = [0.0]
    records = ProgressRecords(every_s=10, clock=lambda: now[0])
    stats = Stats()
    stats.events_read = 5
    records(stats)  # the first: written
    now[0] = 5
    stats.events_read = 9
    records(stats)  # too soon
    now[0] = 12
    records(stats)  # idle, but a counter changed since the last record: written
    now[0] = 30
    records(stats)  # idle and nothing changed: nothing
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["event"], r["events_read"]) for r in lines] == [("progress", 5), ("progress", 9)]
    assert "not_json" in lines[0]
