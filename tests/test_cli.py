"""The ``castlewatch`` command line, driven through click's CliRunner and once as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from castlewatch.cli import main
from castlewatch.samples import read_sample_lines, sample_names

# Command and output of the AWS CLI documentation example
# (aws-cli, awscli/examples/logs/test-metric-filter.rst).
AWS_EXAMPLE_ARGS = [
    "test-metric-filter",
    "--filter-pattern",
    "ERROR",
    "--log-event-messages",
    "[ERROR] 400 BAD REQUEST",
    "[ERROR] 400 BAD REQUEST",
    "[INFO] 200 OK",
]
AWS_EXAMPLE_OUTPUT = """\
{
    "matches": [
        {
            "eventNumber": 1,
            "eventMessage": "[ERROR] 400 BAD REQUEST",
            "extractedValues": {}
        },
        {
            "eventNumber": 2,
            "eventMessage": "[ERROR] 400 BAD REQUEST",
            "extractedValues": {}
        }
    ]
}
"""

VPC_REJECT = (
    "[version, account, eni, source, destination, srcport, destport, protocol, packets, "
    'bytes, windowstart, windowend, action="REJECT", flowlogstatus]'
)


def run(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=input)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def matches_of(result: Result) -> list[tuple[int, str]]:
    assert result.exit_code == 0, result.output
    return [(m["eventNumber"], m["eventMessage"]) for m in json.loads(result.stdout)["matches"]]


def test_aws_cli_example_prints_what_the_aws_cli_prints() -> None:
    result = run(*AWS_EXAMPLE_ARGS)
    assert result.exit_code == 0, result.output
    assert result.stdout == AWS_EXAMPLE_OUTPUT
    assert result.stderr == ""


def test_messages_that_start_with_a_dash() -> None:
    result = run(
        "test-metric-filter",
        "--filter-pattern",
        "ERROR",
        "--log-event-messages=-ERROR",
        "- ERROR with a space",
        "-5",
        "ERROR last",
    )
    assert matches_of(result) == [(1, "-ERROR"), (2, "- ERROR with a space"), (4, "ERROR last")]


def test_repeated_flag_appends_messages() -> None:
    result = run(
        "test-metric-filter",
        "--log-event-messages",
        "ERROR a",
        "INFO b",
        "--filter-pattern",
        "ERROR",
        "--log-event-messages",
        "ERROR c",
    )
    assert matches_of(result) == [(1, "ERROR a"), (3, "ERROR c")]


def test_flag_without_messages_is_a_usage_error() -> None:
    result = run("test-metric-filter", "--log-event-messages", "--filter-pattern", "ERROR")
    assert result.exit_code == 2
    assert "--log-event-messages=-value" in result.stderr


def test_events_file_of_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_bytes(b"ERROR one\r\n\r\nINFO two\r\n\nERROR three \r\n")
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert matches_of(result) == [(1, "ERROR one"), (3, "ERROR three ")]


def test_events_file_printed_by_filter_log_events(tmp_path: Path) -> None:
    output = {
        "events": [
            {"logStreamName": "s", "timestamp": 1, "message": "ERROR a\n", "ingestionTime": 2, "eventId": "1"},
            {"logStreamName": "s", "timestamp": 3, "message": "INFO b", "ingestionTime": 4, "eventId": "2"},
            {"logStreamName": "s", "timestamp": 5, "message": "ERROR c", "ingestionTime": 6, "eventId": "3"},
        ],
        "searchedLogStreams": [],
    }
    path = tmp_path / "events.json"
    path.write_text(json.dumps(output, indent=4))
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert matches_of(result) == [(1, "ERROR a\n"), (3, "ERROR c")]


def test_events_file_of_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"timestamp": 1, "message": "INFO a"}\n{"timestamp": 2, "message": "ERROR b", "ingestionTime": 3}\n'
    )
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert matches_of(result) == [(2, "ERROR b")]


def test_events_from_stdin() -> None:
    result = run(
        "test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", "-", input="INFO a\nERROR b\n"
    )
    assert matches_of(result) == [(2, "ERROR b")]


def test_large_file_is_tested_in_batches_with_file_wide_numbers(tmp_path: Path) -> None:
    lines = [f"{'ERROR' if number % 7 == 0 else 'INFO'} line {number}" for number in range(1, 121)]
    path = tmp_path / "events.log"
    path.write_text("\n".join(lines) + "\n")
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert matches_of(result) == [(n, f"ERROR line {n}") for n in range(7, 121, 7)]


def test_sample_with_a_term_pattern() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--sample", "lambda")
    expected = [(n, line) for n, line in enumerate(read_sample_lines("lambda"), start=1) if "ERROR" in line]
    assert expected
    assert matches_of(result) == expected


def test_sample_with_the_vpc_reject_pattern() -> None:
    result = run("test-metric-filter", "--filter-pattern", VPC_REJECT, "--sample", "vpc-flow")
    assert result.exit_code == 0, result.output
    matches = json.loads(result.stdout)["matches"]
    lines = read_sample_lines("vpc-flow")
    assert [m["eventNumber"] for m in matches] == [
        n for n, line in enumerate(lines, start=1) if line.split()[12] == "REJECT"
    ]
    assert all(m["extractedValues"]["$action"] == "REJECT" for m in matches)


def test_table_output_shows_matches_and_a_summary() -> None:
    result = run(
        "test-metric-filter",
        "--filter-pattern",
        "ERROR",
        "--output",
        "table",
        "--log-event-messages",
        "[ERROR] 400 BAD REQUEST",
        "[INFO] 200 OK",
    )
    assert result.exit_code == 0, result.output
    assert "[ERROR] 400 BAD REQUEST" in result.stdout  # shown verbatim, not read as markup
    assert "eventNumber" in result.stdout
    assert result.stdout.rstrip().endswith("1 of 2 events matched")


def test_table_output_shows_extracted_values() -> None:
    result = run(
        "test-metric-filter",
        "--filter-pattern",
        "[level, message]",
        "--output",
        "table",
        "--log-event-messages",
        "WARN disk",
    )
    assert result.exit_code == 0, result.output
    assert "$level" in result.stdout and "WARN" in result.stdout
    assert "$message" in result.stdout and "disk" in result.stdout


def test_invalid_pattern_exits_2_with_the_caret_message() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERR*", "--log-event-messages", "ERROR")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Invalid character(s) in term '*'" in result.stderr
    assert "  ERR*\n     ^" in result.stderr


def test_51_messages_exit_2_with_one_line() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages", *["m"] * 51)
    assert result.exit_code == 2
    assert "InvalidParameterException" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "nope"], "unknown sample 'nope'; choose one of: apigw-access,"),
        (["--log-events-file", "/nonexistent/events.log"], "Cannot read /nonexistent/events.log"),
    ],
    ids=["unknown-sample", "missing-file"],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", *args, input="")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_empty_message_in_a_json_file_exits_2_naming_its_position(tmp_path: Path) -> None:
    events = [{"timestamp": n, "message": "" if n == 60 else f"m{n}"} for n in range(1, 71)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in events))
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert result.exit_code == 2
    assert "Event 60 is empty" in result.stderr


def test_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_bytes(b"ERROR \xff\n")
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-events-file", str(path))
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


@pytest.mark.parametrize(
    "sources",
    [[], ["--sample", "lambda", "--log-event-messages", "x"]],
    ids=["none", "two"],
)
def test_exactly_one_event_source(sources: list[str]) -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", *sources)
    assert result.exit_code == 2
    assert "exactly one of --log-event-messages, --log-events-file, --sample" in result.stderr


def test_samples_command_lists_every_sample_with_its_line_count() -> None:
    result = run("samples")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert [row.split()[0] for row in rows] == sample_names()
    for row in rows:
        name, count = row.split()[:2]
        assert int(count) == len(read_sample_lines(name))


def test_python_dash_m_runs_the_cli() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "castlewatch", *AWS_EXAMPLE_ARGS], capture_output=True, text=True, timeout=60
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, AWS_EXAMPLE_OUTPUT, "")
    bad = subprocess.run(
        [sys.executable, "-m", "castlewatch", "test-metric-filter", "--filter-pattern", "ERR*",
         "--log-event-messages", "x"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2
    assert "Invalid character(s) in term '*'" in bad.stderr
    assert "Traceback" not in bad.stderr


# ---- replay and run: configuration errors exit 2 with one "Error: ..." -----------------------------

FILTER = (
    "{{filterName: {name}, logGroupName: {group}, filterPattern: '{pattern}', "
    "metricTransformations: [{{metricName: {metric}, metricNamespace: T, metricValue: '1'}}]}}"
)


def engine_config(
    tmp_path: Path, sources: str, sinks: str, filters: str = "", name: str = "castlewatch.yaml"
) -> Path:
    filters = filters or "[" + FILTER.format(name="all", group="g", pattern="", metric="All") + "]"
    config = tmp_path / name
    config.write_text(f"metric_filters: {filters}\nsources: {sources}\nsinks: {sinks}\n", encoding="utf-8")
    return config


LOG_SOURCE = "{type: file, path: %s, log_group: %s, timestamp: {field: $1, format: epoch_s}}"


def config_error_exit(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ")
    return line


def test_replay_refuses_a_sink_that_is_its_source(tmp_path: Path) -> None:
    """The tester's r06: app.log used to be truncated to 0 bytes."""
    log = tmp_path / "app.log"
    log.write_text("1700000000 a\n", encoding="utf-8")
    config = engine_config(tmp_path, f"[{LOG_SOURCE % ('app.log', 'g')}]", "[{type: jsonl, path: app.log}]")
    line = config_error_exit("replay", "--config", str(config))
    assert f"sinks[0].path: {log} is read by sources[0] ({log}): opening the sink would destroy that input" in line
    assert log.read_text(encoding="utf-8") == "1700000000 a\n"


def test_replay_refuses_overlapping_sources(tmp_path: Path) -> None:
    """The tester's r10: app.log and *.log would count each event twice."""
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    sources = "[{}, {}]".format(LOG_SOURCE % ("app.log", "g"), LOG_SOURCE % ("'*.log'", "g"))
    config = engine_config(tmp_path, sources, "[{type: jsonl, path: out/dp.jsonl}]")
    line = config_error_exit("replay", "--config", str(config))
    assert f"sources[1].path: {tmp_path / 'app.log'} is matched by sources[0]" in line
    assert not (tmp_path / "out").exists()


def test_replay_refuses_a_duplicate_key(tmp_path: Path) -> None:
    """The tester's r21: a second sources: replaced the first."""
    config = engine_config(tmp_path, f"[{LOG_SOURCE % ('app.log', 'g')}]", "[{type: stdout}]")
    config.write_text(config.read_text() + f"sources: [{LOG_SOURCE % ('typo*.log', 'g')}]\n", encoding="utf-8")
    line = config_error_exit("replay", "--config", str(config))
    assert line.endswith(
        "invalid YAML at line 4, column 1: key 'sources' is given twice in one mapping "
        "(first at line 2); YAML would keep only the last value: remove or merge one"
    )


def test_replay_out_refuses_sinks_that_would_share_a_file(tmp_path: Path) -> None:
    """The tester's outcol: a/dp.jsonl and b/dp.jsonl both became DIR/dp.jsonl, every datapoint twice."""
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    sinks = "[{type: jsonl, path: a/dp.jsonl}, {type: jsonl, path: b/dp.jsonl}]"
    config = engine_config(tmp_path, f"[{LOG_SOURCE % ('app.log', 'g')}]", sinks)
    for command in (["replay"], ["run", "--checkpoint", str(tmp_path / "cp.json")]):
        line = config_error_exit(*command, "--config", str(config), "--out", str(tmp_path / "out"))
        moved = f"{tmp_path / 'b/dp.jsonl'} and sinks[0] ({tmp_path / 'a/dp.jsonl'}) would both be "
        assert f"sinks[1].path: {moved}{tmp_path / 'out/dp.jsonl'}: every datapoint" in line
    assert not (tmp_path / "out").exists()


def test_run_refuses_a_checkpoint_that_a_source_reads(tmp_path: Path) -> None:
    """The default checkpoint, castlewatch.yaml.checkpoint, is matched by a *.checkpoint source."""
    source = "{type: file, path: '*.checkpoint', log_group: g, format: cloudwatch_events}"
    config = engine_config(tmp_path, f"[{source}]", "[{type: jsonl, path: out/dp.jsonl}]")
    line = config_error_exit("run", "--config", str(config))
    checkpoint = tmp_path / "castlewatch.yaml.checkpoint"
    assert f"checkpoint: the checkpoint file {checkpoint} is read by sources[0]" in line


@pytest.mark.parametrize(
    ("template", "location"),
    [
        ("Parameters: {P: 5}\n", "Parameters.P"),
        ("Parameters: [P]\n", "Parameters"),
        ("Conditions: 5\n", "Conditions"),
        ("Parameters: {P: {Type: String, Default: {Ref: P}}}\n", "Parameters.P.Default"),
        ("Resources:\n  LG: {Type: AWS::Logs::LogGroup, Properties: 5}\n", "Resources.LG.Properties"),
        ("Resources:\n  LG: {Type: AWS::Logs::LogGroup, Properties: {LogGroupName: !Ref LG}}\n",
         "Resources.F1.Properties.LogGroupName"),
    ],
)
def test_replay_with_a_bad_template_exits_2(tmp_path: Path, template: str, location: str) -> None:
    """TypeError and RecursionError tracebacks before; now the section is named."""
    resource = (
        "  F1: {Type: AWS::Logs::MetricFilter, Properties: {LogGroupName: !Ref LG, FilterPattern: ERROR,"
        " MetricTransformations: [{MetricName: M, MetricNamespace: N, MetricValue: '1'}]}}\n"
    )
    if "Resources:" in template:
        template += resource
    else:
        template += "Resources:\n" + resource.replace("!Ref LG", "g")
    (tmp_path / "cfn.yaml").write_text(template, encoding="utf-8")
    config = engine_config(tmp_path, f"[{LOG_SOURCE % ('app.log', 'g')}]", "[{type: stdout}]", "{file: cfn.yaml}")
    line = config_error_exit("replay", "--config", str(config))
    assert line.startswith(f"Error: {tmp_path / 'cfn.yaml'}: {location}: "), line


def test_replay_summary_with_one_filter_name_in_two_log_groups(tmp_path: Path) -> None:
    """AWS allows a filter name in several log groups (describe-metric-filters lists them all);
    castlewatch counts matches by name, so the summary shows their total once, labelled."""
    (tmp_path / "g.log").write_text("1700000000 a\n", encoding="utf-8")
    (tmp_path / "h.log").write_text("1700000000 ERROR\n1700000001 ERROR\n1700000002 ok\n", encoding="utf-8")
    filters = "[{}, {}, {}]".format(
        FILTER.format(name="f", group="g", pattern="", metric="M"),
        FILTER.format(name="f", group="h", pattern="ERROR", metric="M2"),
        FILTER.format(name="other", group="h", pattern="ok", metric="M3"),
    )
    sources = f"[{LOG_SOURCE % ('g.log', 'g')}, {LOG_SOURCE % ('h.log', 'h')}]"
    config = engine_config(tmp_path, sources, "[{type: jsonl, path: out/dp.jsonl}]", filters)
    result = CliRunner().invoke(main, ["replay", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line.strip("│ ").split("│") for line in result.stderr.splitlines() if "matched:" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["matched: f (log groups g + h, one total)", "3"],
        ["matched: other", "1"],
    ]
    assert result.stdout == ""  # the summary is on stderr, after the warning
    assert result.stderr.splitlines()[0] == (
        "Warning: metric filter name 'f' is used in log groups 'g', 'h': its matches are counted together "
        "(one total in the summary and the run log); the datapoints are not affected"
    )
    assert [line for line in result.stderr.splitlines() if line.startswith("Warning")] == result.stderr.splitlines()[:1]


def test_log_event_messages_as_the_aws_cli_s_json_list() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR",
                 "--log-event-messages", ' ["[ERROR] 400 BAD REQUEST", "[ERROR] 400 BAD REQUEST", "[INFO] 200 OK"]')
    assert result.stdout == AWS_EXAMPLE_OUTPUT and result.stderr == ""


def test_log_event_messages_from_a_file_as_the_aws_cli_reads_file_urls(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "events.json").write_text('["ERROR a", "INFO b", "ERROR c"]\n')
    monkeypatch.setenv("EVENTS_DIR", str(tmp_path))
    result = run("test-metric-filter", "--filter-pattern", "ERROR",
                 "--log-event-messages", "file://$EVENTS_DIR/events.json")
    assert matches_of(result) == [(1, "ERROR a"), (3, "ERROR c")]
    (tmp_path / "plain.txt").write_text("ERROR a\n")
    result = run("test-metric-filter", "--filter-pattern", "ERROR",
                 "--log-event-messages", f"file://{tmp_path}/plain.txt")
    assert result.exit_code == 2 and "the file must hold a JSON list of strings" in result.stderr
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages", f"file://{tmp_path}/none")
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_several_values_are_messages_as_they_are_even_when_one_looks_like_json() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages", '["ERROR"]', "ERROR b")
    assert matches_of(result) == [(1, '["ERROR"]'), (2, "ERROR b")]


def test_one_message_starting_with_a_bracket_that_is_not_json_is_still_one_message() -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages", "[ERROR] 400 BAD REQUEST")
    assert matches_of(result) == [(1, "[ERROR] 400 BAD REQUEST")]
    assert "is not JSON: tested as one message" in result.stderr


@pytest.mark.parametrize("value, message", [('[1, "a"]', "item 1 of the JSON list is 1, not a string"),
                                            ("[]", "")])
def test_a_json_list_that_is_not_strings_exits_2(value: str, message: str) -> None:
    result = run("test-metric-filter", "--filter-pattern", "ERROR", "--log-event-messages", value)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("Error:") == 1


def test_the_default_checkpoint_is_beside_the_config_and_an_earlier_json_name_is_kept(tmp_path: Path) -> None:
    from castlewatch.cli.engine_commands import default_checkpoint_path

    config = str(tmp_path / "job.yaml")
    assert default_checkpoint_path(config, None) == str(tmp_path / "job.yaml.checkpoint")
    (tmp_path / "job.yaml.checkpoint.json").write_bytes(b"an earlier castlewatch's checkpoint")
    assert default_checkpoint_path(config, None) == str(tmp_path / "job.yaml.checkpoint.json")  # resumed from
    (tmp_path / "job.yaml.checkpoint").write_bytes(b"")
    assert default_checkpoint_path(config, None) == str(tmp_path / "job.yaml.checkpoint")
    assert default_checkpoint_path(None, str(tmp_path / "out")) == str(tmp_path / "out" / "castlewatch.yaml.checkpoint")


def test_every_subcommand_is_listed_and_loaded_only_when_used() -> None:
    """The subcommands of their own modules are imported lazily (start-up, issue 11): the
    group's help lists them all, and importing the command line and looking up ``replay``
    imports none of serve's aiohttp, backfill or bench."""
    help_text = CliRunner().invoke(main, ["--help"]).output
    for name in ("backfill", "bench", "conformance", "dashboard", "packs", "provision", "replay", "run",
                 "samples", "serve", "test-metric-filter"):
        assert f"  {name} " in help_text
    code = (
        "import sys, click; from castlewatch.cli import main\n"
        "main.get_command(click.Context(main), 'replay')\n"
        "print(sorted(m for m in ('aiohttp', 'castlewatch.cli.backfill', 'castlewatch.cli.bench_command',"
        " 'castlewatch.cli.serve', 'numpy.ma') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
