"""The configuration file: structure, paths, timestamps, and its metric filters' errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from castlewatch.engine.config import (
    CONFIG_ERRORS,
    ConfigError,
    EngineConfig,
    SourceConfig,
    TimestampSpec,
    load_config,
    load_config_text,
    parse_timestamp,
)
from castlewatch.engine.sources import SourceSpec
from castlewatch.metric_filters import (
    DuplicateFilterError,
    LimitExceededError,
    MetricFilterError,
    MetricFilterLoadError,
)
from castlewatch.model import MetricFilter, MetricTransformation
from castlewatch.sinks import SinkSpec

DATA = Path(__file__).parent / "data"

FILTERS = """\
metric_filters:
  - filterName: console-sign-in-failures
    logGroupName: cloudtrail
    filterPattern: '{ $.eventName = "ConsoleLogin" && $.errorMessage = "Failed authentication" }'
    metricTransformations:
      - {metricName: ConsoleSignInFailures, metricNamespace: CloudTrailMetrics, metricValue: "1"}
  - filterName: rejected
    logGroupName: vpc-flow-logs
    filterPattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, start, end, action = "REJECT", status]'
    metricTransformations:
      - {metricName: RejectedBytes, metricNamespace: VPC, metricValue: $bytes, unit: Bytes}
"""

SOURCES = """\
sources:
  - type: file
    path: trail/*.json.gz
    log_group: cloudtrail
    format: cloudtrail_archive
  - type: file
    path: /var/log/vpc/flow.log
    log_group: vpc-flow-logs
    timestamp: {field: $11, format: epoch_s}
  - type: stdin
    log_group: cloudtrail
    timestamp: {field: $.eventTime, format: iso8601}
"""

SINKS = """\
sinks:
  - {type: jsonl, path: out/datapoints.jsonl}
  - {type: csv, path: ../shared/datapoints.csv}
  - {type: stdout}
"""


def config_text(*, filters: str = FILTERS, sources: str = SOURCES, sinks: str = SINKS, extra: str = "") -> str:
    return filters + sources + sinks + extra


def load(text: str, base: Path = Path("/etc/castlewatch")) -> EngineConfig:
    return load_config_text(textwrap.dedent(text), base)


def config_error(text: str, location: str) -> ConfigError:
    """The ConfigError ``text`` raises; it names ``location`` and, when that is a key, its line."""
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.location == location, str(info.value)
    assert (info.value.line is not None) == bool(location), str(info.value)
    return info.value


def test_full_config() -> None:
    config = load(config_text(extra="allowed_lateness_s: 120\n"))
    assert [f.filter_name for f in config.metric_filters] == ["console-sign-in-failures", "rejected"]
    assert all(isinstance(f, MetricFilter) for f in config.metric_filters)
    assert config.sources == (
        SourceConfig("file", "cloudtrail", "/etc/castlewatch/trail/*.json.gz", "cloudtrail_archive", None),
        SourceConfig("file", "vpc-flow-logs", "/var/log/vpc/flow.log", "lines", TimestampSpec("position", position=11, format="epoch_s")),
        SourceConfig("stdin", "cloudtrail", None, "lines", TimestampSpec("json", selector="$.eventTime", format="iso8601")),
    )
    assert config.sinks == (
        SinkSpec("jsonl", "/etc/castlewatch/out/datapoints.jsonl"),
        SinkSpec("csv", "/etc/castlewatch/../shared/datapoints.csv"),
        SinkSpec("stdout", None),
    )
    assert config.allowed_lateness_s == 120.0
    assert [f.filter_name for f in config.filters_for("vpc-flow-logs")] == ["rejected"]


def test_defaults() -> None:
    config = load(config_text())
    assert config.allowed_lateness_s == 60.0
    assert config.sources[1].format == "lines"


def test_timestamp_ingestion() -> None:
    sources = "sources:\n  - {type: stdin, log_group: cloudtrail, timestamp: ingestion}\n"
    config = load(config_text(sources=sources))
    assert config.sources[0].timestamp == TimestampSpec("ingestion")
    assert config.sources[0].to_source_spec() == SourceSpec("stdin", "cloudtrail", None, "lines", ingestion_time=True)


def test_source_spec() -> None:
    config = load(config_text())
    assert config.sources[0].to_source_spec() == SourceSpec(
        "file", "cloudtrail", "/etc/castlewatch/trail/*.json.gz", "cloudtrail_archive", ingestion_time=False
    )
    assert not config.sources[1].ingestion_time


def test_load_config_resolves_paths_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "castlewatch.yaml"
    path.write_text(config_text(), encoding="utf-8")
    config = load_config(path)
    assert config.path == path
    assert config.sources[0].path == str(tmp_path / "conf" / "trail" / "*.json.gz")
    assert config.sinks[0].path == str(tmp_path / "conf" / "out" / "datapoints.jsonl")


def test_metric_filters_from_a_describe_output_file(tmp_path: Path) -> None:
    (tmp_path / "aws").mkdir()
    describe = {
        "metricFilters": [
            {
                "filterName": "errors",
                "filterPattern": "ERROR",
                "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}],
                "creationTime": 1700000000000,
                "logGroupName": "cloudtrail",
                "applyOnTransformedLogs": False,
            }
        ],
        "nextToken": "abc",
    }
    (tmp_path / "aws" / "filters.json").write_text(json.dumps(describe), encoding="utf-8")
    path = tmp_path / "castlewatch.yaml"
    path.write_text(
        "metric_filters: {file: aws/filters.json}\n"
        "sources: [{type: stdin, log_group: cloudtrail, timestamp: ingestion}]\n"
        "sinks: [{type: stdout}]\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.metric_filters == (
        MetricFilter("errors", "ERROR", [MetricTransformation("Errors", "App", "1")], "cloudtrail", 1700000000000),
    )


def test_metric_filters_from_a_cloudformation_template() -> None:
    text = f"""\
        metric_filters:
          file: {DATA / "cfn-metric-filters.yaml"}
          parameters: {{Env: dev}}
        sources:
          - {{type: file, path: flow.log, log_group: FlowLogGroup, timestamp: {{field: $11, format: epoch_s}}}}
        sinks: [{{type: stdout}}]
        """
    config = load(text)
    assert [f.filter_name for f in config.metric_filters] == [
        "dev-unauthorized-api-calls",
        "ConsoleSignInFailuresFilter",
        "rejected-bytes",
    ]


def test_metric_filters_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "cfn").mkdir()
    (tmp_path / "cfn" / "t.yaml").write_text((DATA / "cfn-metric-filters.yaml").read_text(), encoding="utf-8")
    text = config_text(
        filters="metric_filters: {file: cfn/t.yaml}\n",
        sources="sources: [{type: stdin, log_group: /aws/cloudtrail/management, timestamp: ingestion}]\n",
    )
    config = load_config_text(text, tmp_path)
    assert len(config.metric_filters) == 4


def test_config_is_frozen() -> None:
    config = load(config_text())
    with pytest.raises(AttributeError):
        config.allowed_lateness_s = 1  # type: ignore[misc]


# ---- errors ----------------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    error = config_error(config_text(extra="lateness: 5\n"), "lateness")
    assert error.reason == (
        "unknown key; allowed here: metric_filters, sources, sinks, allowed_lateness_s; "
        "did you mean 'allowed_lateness_s'?"
    )
    error = config_error(config_text(extra="retention: 5\n"), "retention")
    assert error.reason == "unknown key; allowed here: metric_filters, sources, sinks, allowed_lateness_s"


def test_missing_top_level_key() -> None:
    assert config_error(FILTERS + SOURCES, "sinks").reason == (
        "required key missing; expected a non-empty list of sinks, e.g. [{type: stdout}]"
    )


@pytest.mark.parametrize(
    ("source", "location", "reason"),
    [
        ("{type: stdin, log_group: cloudtrail, format: ndjson, timestamp: ingestion}", "sources[0].format",
         "expected one of lines, cloudwatch_events, cloudtrail_archive, flow_log_file, got 'ndjson'"),
        ("{type: stdin, log_group: cloudtrail, format: line, timestamp: ingestion}", "sources[0].format",
         "expected one of lines, cloudwatch_events, cloudtrail_archive, flow_log_file, got 'line'; did you mean 'lines'?"),
        ("{type: fille, log_group: cloudtrail}", "sources[0].type",
         "expected one of file, stdin, cloudwatch_logs, got 'fille'; did you mean 'file'?"),
        ("{type: kafka, log_group: cloudtrail}", "sources[0].type", "expected one of file, stdin, cloudwatch_logs, got 'kafka'"),
        ("{type: file, log_group: cloudtrail, timestamp: ingestion}", "sources[0].path",
         "a file source needs a path (file or glob), got None"),
        ("{type: stdin, path: x.log, log_group: cloudtrail, timestamp: ingestion}", "sources[0].path",
         "a stdin source takes no path"),
        ("{type: stdin, timestamp: ingestion}", "sources[0].log_group",
         "required key missing; expected the name of the log group whose metric filters apply "
         "(1-512 of letters, digits and . - _ / #)"),
        ("{type: stdin, log_group: 'my group', timestamp: ingestion}", "sources[0].log_group",
         "expected the name of the log group whose metric filters apply (1-512 of letters, digits and . - _ / #), "
         "got 'my group'"),
        ("{type: stdin, log_group: cloudtrail, timestamp: ingestion, follow: true}", "sources[0].follow",
         "unknown key; allowed here: type, path, log_group, format, timestamp, endpoint_url, region"),
        ("{type: file, path: t.json, log_group: cloudtrail, format: cloudtrail_archive, timestamp: ingestion}",
         "sources[0].timestamp", "format 'cloudtrail_archive' carries its own event time; timestamp applies to format 'lines' only"),
    ],
)
def test_source_errors(source: str, location: str, reason: str) -> None:
    error = config_error(config_text(sources=f"sources:\n  - {source}\n"), location)
    assert error.reason == reason


def test_source_whose_log_group_has_no_filter() -> None:
    error = config_error(config_text(sources="sources: [{type: stdin, log_group: lambda, timestamp: ingestion}]\n"), "sources[0].log_group")
    assert error.reason == (
        "no metric filter is defined for log group 'lambda', so nothing would be published "
        "(log groups with filters: cloudtrail, vpc-flow-logs)"
    )


def test_lines_source_needs_a_timestamp() -> None:
    error = config_error(config_text(sources="sources: [{type: stdin, log_group: cloudtrail}]\n"), "sources[0].timestamp")
    assert "'timestamp: ingestion'" in error.reason
    assert "{field: SELECTOR, format: iso8601|epoch_s|epoch_ms}" in error.reason


@pytest.mark.parametrize(
    ("timestamp", "location", "reason"),
    [
        ("{field: '$.records[*].time', format: iso8601}", "sources[0].timestamp.field",
         "expected a JSON selector without wildcards such as $.eventTime, or a 1-based space-delimited field "
         "position such as $11, got '$.records[*].time'"),
        ("{field: $start, format: epoch_s}", "sources[0].timestamp.field",
         "space-delimited fields are given by their 1-based position here, e.g. $11, got '$start'"),
        ("{field: $0, format: epoch_s}", "sources[0].timestamp.field",
         "space-delimited fields are given by their 1-based position here, e.g. $11, got '$0'"),
        ("{field: eventTime, format: iso8601}", "sources[0].timestamp.field",
         "expected a JSON selector without wildcards such as $.eventTime, or a 1-based space-delimited field "
         "position such as $11, got 'eventTime'"),
        ("{field: 11, format: epoch_s}", "sources[0].timestamp.field",
         "expected a JSON selector without wildcards such as $.eventTime, or a 1-based space-delimited field "
         "position such as $11, got 11"),
        ("{field: $.eventTime, format: rfc3339}", "sources[0].timestamp.format",
         "expected one of iso8601, epoch_s, epoch_ms, got 'rfc3339'"),
        ("{field: $.eventTime, format: epoch}", "sources[0].timestamp.format",
         "expected one of iso8601, epoch_s, epoch_ms, got 'epoch'; did you mean 'epoch_s'?"),
        ("{field: $.eventTime}", "sources[0].timestamp.format",
         "required key missing; expected one of iso8601, epoch_s, epoch_ms"),
        ("{field: $.eventTime, format: iso8601, zone: UTC}", "sources[0].timestamp.zone",
         "unknown key; allowed here: field, format"),
        ("now", "sources[0].timestamp",
         "expected 'ingestion' or {field: SELECTOR, format: iso8601|epoch_s|epoch_ms}, got 'now'"),
        ("ingest", "sources[0].timestamp",
         "expected 'ingestion' or {field: SELECTOR, format: iso8601|epoch_s|epoch_ms}, got 'ingest'; "
         "did you mean 'ingestion'?"),
        ("null", "sources[0].timestamp",
         "expected 'ingestion' or {field: SELECTOR, format: iso8601|epoch_s|epoch_ms}, got None"),
    ],
)
def test_timestamp_errors(timestamp: str, location: str, reason: str) -> None:
    sources = f"sources:\n  - {{type: stdin, log_group: cloudtrail, timestamp: {timestamp}}}\n"
    assert config_error(config_text(sources=sources), location).reason == reason


@pytest.mark.parametrize(
    ("sinks", "location", "reason"),
    [
        ("[{type: parquet, path: x}]", "sinks[0].type",
         "expected one of jsonl, csv, avro, stdout, cloudwatch, cloudwatch_dashboard, html_dashboard, got 'parquet'"),
        ("[{type: json, path: x}]", "sinks[0].type",
         "expected one of jsonl, csv, avro, stdout, cloudwatch, cloudwatch_dashboard, html_dashboard, got 'json'; did you mean 'jsonl'?"),
        ("[{type: csv, path: 5}]", "sinks[0].path", "expected a file path, got 5"),
        ("[stdout]", "sinks[0]",
         "expected a sink mapping such as {type: jsonl, path: FILE} or {type: cloudwatch, region: REGION}, got 'stdout'"),
        ("[{type: avro}]", "sinks[0].path", "a avro sink needs a path, got None"),
        ("[{type: stdout, path: x}]", "sinks[0].path", "a stdout sink takes no path"),
        ("[{type: jsonl, path: a.jsonl}, {type: jsonl, path: ./a.jsonl}]", "sinks[1].path",
         "the same file as sinks[0] (/etc/castlewatch/a.jsonl): every datapoint would be written to it twice; "
         "give each sink its own file"),
        ("[{type: csv, path: a.csv, compress: true}]", "sinks[0].compress", "unknown key; allowed here: type, path"),
        ("[]", "sinks", "expected a non-empty list of sinks, e.g. [{type: stdout}], got []"),
    ],
)
def test_sink_errors(sinks: str, location: str, reason: str) -> None:
    assert config_error(config_text(sinks=f"sinks: {sinks}\n"), location).reason == reason


@pytest.mark.parametrize("value", ["-1", "soon", "true", ".inf"])
def test_allowed_lateness(value: str) -> None:
    config_error(config_text(extra=f"allowed_lateness_s: {value}\n"), "allowed_lateness_s")


def test_allowed_lateness_zero() -> None:
    assert load(config_text(extra="allowed_lateness_s: 0\n")).allowed_lateness_s == 0.0


def test_empty_and_malformed_files(tmp_path: Path) -> None:
    assert "the configuration is empty" in config_error("", "").reason
    assert "invalid YAML" in config_error("sources: [\n", "").reason
    assert config_error("- a\n- b\n", "").reason.startswith("expected a mapping")
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_metric_filters_value_shape() -> None:
    assert config_error(config_text(filters="metric_filters: ERROR\n"), "metric_filters").reason == (
        "expected a list of metric filters (describe-metric-filters shape), {file: PATH}, "
        "{pack: NAME, log_group: NAME} and {discover: true} entries, or {file: PATH}, got 'ERROR'"
    )
    assert config_error(config_text(filters="metric_filters: {path: x.json}\n"), "metric_filters.path").reason == (
        "unknown key; allowed here: file, parameters"
    )


def test_metric_filter_file_missing(tmp_path: Path) -> None:
    with pytest.raises(MetricFilterLoadError) as info:
        load_config_text(config_text(filters="metric_filters: {file: nope.json}\n"), tmp_path)
    assert info.value.source == str(tmp_path / "nope.json")


def test_invalid_metric_filter_in_config() -> None:
    filters = FILTERS.replace('metricValue: "1"}', 'metricValue: "1", defaultValue: 0, dimensions: {User: $.userIdentity.arn}}')
    with pytest.raises(MetricFilterError) as info:
        load(config_text(filters=filters))
    error = info.value
    assert error.code == "InvalidParameterException"
    assert str(error).split("\n")[0] == (
        "metric filter 'console-sign-in-failures' (log group 'cloudtrail'): Invalid metric transformation: "
        "dimensions and default value are mutually exclusive properties"
    )
    assert isinstance(error, CONFIG_ERRORS)


def test_metric_filter_decode_error_names_the_config(tmp_path: Path) -> None:
    path = tmp_path / "castlewatch.yaml"
    path.write_text(config_text(filters=FILTERS.replace('metricValue: "1"', "metricValue: 1")), encoding="utf-8")
    with pytest.raises(MetricFilterLoadError) as info:
        load_config(path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "metricValue: 1" in text)
    column = path.read_text().splitlines()[line - 1].index("metricValue") + 1
    assert (info.value.line, info.value.column) == (line, column)
    assert str(info.value) == (
        f"{path}:{line}:{column}: metric_filters[0].metricTransformations[0].metricValue: expected str, got int "
        '(write it as a string, e.g. "1")'
    )


def test_a_misspelt_key_of_an_inline_metric_filter_has_its_line(tmp_path: Path) -> None:
    path = tmp_path / "castlewatch.yaml"
    path.write_text(config_text(filters=FILTERS.replace('metricValue: "1"', 'metricValu: "1"')), encoding="utf-8")
    with pytest.raises(MetricFilterLoadError) as info:
        load_config(path)
    assert info.value.line is not None and "did you mean 'metricValue'?" in str(info.value)
    assert str(info.value).startswith(f"{path}:{info.value.line}:{info.value.column}: metric_filters[0]")


def test_duplicate_filter_in_config() -> None:
    duplicate = FILTERS + FILTERS.split("\n", 1)[1]
    with pytest.raises(DuplicateFilterError, match="'console-sign-in-failures' is defined twice"):
        load(config_text(filters=duplicate))


def test_regex_quota_in_config() -> None:
    entries = "".join(
        f"  - {{filterName: r{i}, logGroupName: cloudtrail, filterPattern: '%x{i}%', "
        "metricTransformations: [{metricName: m, metricNamespace: n, metricValue: '1'}]}\n"
        for i in range(6)
    )
    with pytest.raises(LimitExceededError) as info:
        load(config_text(filters="metric_filters:\n" + entries))
    assert info.value.filter_name == "r5"
    assert info.value.code == "LimitExceededException"


# ---- where an error points: the key's line and column in the file ---------------------------------

BLOCK = """\
metric_filters:
  - filterName: errors
    logGroupName: app
    filterPattern: ERROR
    metricTransformations: [{metricName: Errors, metricNamespace: App, metricValue: '1'}]
sources:
  - type: stdin
    log_group: app
    timestamp: ingestion
sinks:
  - type: jsonl
    path: out/dp.jsonl
"""


@pytest.mark.parametrize(
    ("old", "new", "location", "line", "column"),
    [
        ("    timestamp: ingestion\n", "    timestamp: ingestion\n    follow: true\n", "sources[0].follow", 10, 5),
        ("    log_group: app\n", "    log_group: ap\n", "sources[0].log_group", 8, 5),  # no filter for 'ap'
        ("    log_group: app\n", "", "sources[0].log_group", 7, 5),  # missing: the entry lacking it
        ("  - type: jsonl\n", "  - type: jsonI\n", "sinks[0].type", 11, 5),
        ("    path: out/dp.jsonl\n", "    path: out/dp.jsonl\n  - {type: csv, path: 5}\n", "sinks[1].path", 13, 17),
        ("sinks:\n", "allowed_lateness_s: -1\nsinks:\n", "allowed_lateness_s", 10, 1),
        ("    timestamp: ingestion\n", "    timestamp: {field: $.t, format: epoch}\n",
         "sources[0].timestamp.format", 9, 29),
    ],
)
def test_errors_give_the_line_and_column_of_the_key(
    tmp_path: Path, old: str, new: str, location: str, line: int, column: int
) -> None:
    path = tmp_path / "castlewatch.yaml"
    path.write_text(BLOCK.replace(old, new), encoding="utf-8")
    error = path_error(path, location)
    assert (error.line, error.column) == (line, column)
    assert str(error) == f"{path}:{line}:{column}: {location}: {error.reason}"


def test_error_position_without_a_file() -> None:
    error = config_error(BLOCK.replace("type: stdin", "type: stdout"), "sources[0].type")
    assert str(error) == "line 7, column 5: sources[0].type: expected one of file, stdin, cloudwatch_logs, got 'stdout'"


def test_error_position_in_a_merged_mapping() -> None:
    """A key brought in by a merge points at the anchored mapping; the entry's own key at itself."""
    sources = (
        "sources:\n"
        "  - &vpc {type: file, path: /var/log/vpc/a.log, log_group: vpc-flow-logs, timestamp: ingestion}\n"
        "  - {<<: *vpc, path: /var/log/vpc/b.log, format: lines, log_group: lambda}\n"
    )
    text = config_text(sources=sources)
    error = config_error(text, "sources[1].log_group")
    line = text.splitlines().index(sources.splitlines()[2]) + 1
    assert (error.line, error.column) == (line, sources.splitlines()[2].index("log_group") + 1)


def test_sink_over_a_source_points_at_the_sink(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    config = write_config(tmp_path, ["app.log"], ["app.log"])
    error = path_error(config, "sinks[0].path")
    line = config.read_text(encoding="utf-8").splitlines().index(next(
        s for s in config.read_text(encoding="utf-8").splitlines() if s.startswith("sinks:")
    )) + 1
    assert (error.line, error.column) == (line, len("sinks: [{type: jsonl, ") + 1)


def test_cloudformation_parameter_error_points_at_the_parameter() -> None:
    filters = "metric_filters:\n  file: t.yaml\n  parameters:\n    Env: null\n"
    error = config_error(config_text(filters=filters), "metric_filters.parameters.Env")
    assert (error.line, error.column) == (4, 5)


# ---- the accepted shapes: every spelling accepted before the schema is still accepted, alike ----------


def test_optional_keys_given_as_null_or_left_out() -> None:
    sources = (
        "sources:\n  - {type: stdin, path: null, log_group: cloudtrail, timestamp: ingestion}\n"
        "  - {type: file, path: t.json, log_group: cloudtrail, format: cloudtrail_archive}\n"
    )
    sinks = "sinks: [{type: stdout, path: null}]\n"
    config = load(config_text(sources=sources, sinks=sinks, extra="allowed_lateness_s: 10\n"))
    assert config.sources[0] == SourceConfig("stdin", "cloudtrail", None, "lines", TimestampSpec("ingestion"))
    assert config.sinks == (SinkSpec("stdout", None),)
    assert config.allowed_lateness_s == 10.0 and isinstance(config.allowed_lateness_s, float)


def test_a_timestamp_given_as_null_is_still_a_timestamp() -> None:
    """``timestamp: null`` is refused on every format: on ``lines`` it names no time, elsewhere it is a timestamp."""
    archive = (
        "sources: [{type: file, path: t.json, log_group: cloudtrail, format: cloudtrail_archive, timestamp: null}]\n"
    )
    config_error(config_text(sources=archive), "sources[0].timestamp")


def test_cloudformation_parameter_values_of_every_scalar_type(tmp_path: Path) -> None:
    """Strings, numbers, booleans, dates (YAML reads 2024-01-01 as one) and lists of them."""
    (tmp_path / "t.yaml").write_text(
        "Parameters: {Env: {Type: String}, Day: {Type: String}, Count: {Type: Number}, On: {Type: String},"
        " Zones: {Type: CommaDelimitedList}}\nResources:\n"
        "  F: {Type: AWS::Logs::MetricFilter, Properties: {LogGroupName: g, FilterPattern: ERROR,"
        " MetricTransformations: [{MetricName: !Sub 'Err-${Env}', MetricNamespace: N, MetricValue: '1'}]}}\n",
        encoding="utf-8",
    )
    text = (
        "metric_filters:\n  file: t.yaml\n"
        "  parameters: {Env: dev, Day: 2024-01-01, Count: 0.5, On: true, Zones: [a, 1, 2024-01-02]}\n"
        "sources: [{type: stdin, log_group: g, timestamp: ingestion}]\nsinks: [{type: stdout}]\n"
    )
    (metric_filter,) = load_config_text(text, tmp_path).metric_filters
    assert [t.metric_name for t in metric_filter.metric_transformations] == ["Err-dev"]


def test_parse_timestamp_alone() -> None:
    assert parse_timestamp({"field": "$11", "format": "epoch_ms"}) == TimestampSpec("position", position=11, format="epoch_ms")
    with pytest.raises(ConfigError) as info:
        parse_timestamp({"field": "$.t", "format": "iso"}, "sources[2].timestamp")
    assert (info.value.location, info.value.line) == ("sources[2].timestamp.format", None)
    assert info.value.reason == "expected one of iso8601, epoch_s, epoch_ms, got 'iso'; did you mean 'iso8601'?"


def test_a_key_that_is_not_a_string() -> None:
    assert config_error(config_text(extra="1: x\n"), "1").reason.startswith("unknown key; allowed here: metric_filters")


def test_a_long_value_is_shortened_in_the_message() -> None:
    reason = config_error(config_text(extra=f"allowed_lateness_s: {'x' * 200}\n"), "allowed_lateness_s").reason
    assert reason == f"expected a number of seconds >= 0, got '{'x' * 76}..."


# ---- duplicate keys ------------------------------------------------------------------------------


def test_duplicate_top_level_key_is_an_error() -> None:
    """A second ``sources:`` would silently replace the first."""
    text = config_text() + "sources:\n  - {type: stdin, log_group: cloudtrail, timestamp: ingestion}\n"
    error = config_error(text, "")
    line = text.splitlines().index("sources:", 12) + 1
    assert error.reason == (
        f"invalid YAML at line {line}, column 1: key 'sources' is given twice in one mapping (first at line 12); "
        "YAML would keep only the last value: remove or merge one"
    )


def test_duplicate_nested_key_is_an_error() -> None:
    sinks = "sinks:\n  - {type: jsonl, path: a.jsonl, path: b.jsonl}\n"
    assert "key 'path' is given twice in one mapping" in config_error(config_text(sinks=sinks), "").reason


def test_merge_keys_may_be_overridden() -> None:
    sources = (
        "sources:\n"
        "  - &vpc {type: file, path: /var/log/vpc/a.log, log_group: vpc-flow-logs, timestamp: ingestion}\n"
        "  - {<<: *vpc, path: /var/log/vpc/b.log}\n"
    )
    config = load(config_text(sources=sources))
    assert [s.path for s in config.sources] == ["/var/log/vpc/a.log", "/var/log/vpc/b.log"]


# ---- CloudFormation parameters given in the config -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"), [("null", "got None; CloudFormation has no null"), ("{a: 1}", "got {'a': 1}")]
)
def test_cloudformation_parameter_value_in_config(tmp_path: Path, value: str, reason: str) -> None:
    (tmp_path / "t.yaml").write_text(
        "Parameters: {Env: {Type: String}}\nResources:\n"
        "  F: {Type: AWS::Logs::MetricFilter, Properties: {LogGroupName: g, FilterPattern: ERROR,"
        " MetricTransformations: [{MetricName: !Sub 'Err-${Env}', MetricNamespace: N, MetricValue: '1'}]}}\n",
        encoding="utf-8",
    )
    path = tmp_path / "castlewatch.yaml"
    path.write_text(
        f"metric_filters: {{file: t.yaml, parameters: {{Env: {value}}}}}\n"
        "sources: [{type: stdin, log_group: g, timestamp: ingestion}]\nsinks: [{type: stdout}]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.location == "metric_filters.parameters.Env"
    assert reason in info.value.reason


# ---- inputs and outputs: sinks over sources, sinks sharing a file, overlapping sources ----------------

ONE_FILTER = (
    "metric_filters: [{filterName: all, logGroupName: g, filterPattern: '', "
    "metricTransformations: [{metricName: All, metricNamespace: T, metricValue: '1'}]},"
    " {filterName: all, logGroupName: h, filterPattern: '', "
    "metricTransformations: [{metricName: All, metricNamespace: T, metricValue: '1'}]}]\n"
)


def write_config(tmp_path: Path, sources: list[str], sinks: list[str]) -> Path:
    """A config in tmp_path: sources as ``PATH`` (log group g) or ``PATH@GROUP``, jsonl sinks."""
    entries = []
    for source in sources:
        path, _, group = source.partition("@")
        entries.append(f"{{type: file, path: '{path}', log_group: {group or 'g'}, timestamp: ingestion}}")
    config = tmp_path / "castlewatch.yaml"
    config.write_text(
        ONE_FILTER
        + f"sources: [{', '.join(entries)}]\n"
        + f"sinks: [{', '.join(f'{{type: jsonl, path: {s!r}}}' for s in sinks)}]\n",
        encoding="utf-8",
    )
    return config


def path_error(config: Path, location: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.location == location, str(info.value)
    assert str(info.value).startswith(f"{config}:{info.value.line}:{info.value.column}: {location}: ")
    return info.value


@pytest.mark.parametrize(
    ("source", "sink"),
    [
        ("app.log", "app.log"),  # the tester's case: app.log was truncated to 0 bytes
        ("*.log", "app.log"),  # an existing file the glob matches
        ("logs/*.jsonl", "logs/dp.jsonl"),  # not there yet: the glob would match it (and a follow read it back)
        ("**/*.jsonl", "out/deep/dp.jsonl"),
        ("app.log", "link.log"),  # a symbolic link to the source
    ],
)
def test_sink_that_a_source_reads_is_refused(tmp_path: Path, source: str, sink: str) -> None:
    log = tmp_path / "app.log"
    log.write_text("1700000000 a\n", encoding="utf-8")
    (tmp_path / "link.log").symlink_to(log)
    error = path_error(write_config(tmp_path, [source], [sink]), "sinks[0].path")
    assert f"is read by sources[0] ({tmp_path / source}): opening the sink would destroy that input" in error.reason
    assert log.read_text(encoding="utf-8") == "1700000000 a\n"


@pytest.mark.parametrize(
    ("source", "sink"),
    [("*.log", "out/app.log"), ("*.log", ".hidden.log"), ("logs/*.jsonl", "logs.jsonl"), ("app.log", "app.log.jsonl")],
)
def test_sink_beside_a_source_is_accepted(tmp_path: Path, source: str, sink: str) -> None:
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    config = load_config(write_config(tmp_path, [source], [sink]))
    assert config.sinks[0].path == str(tmp_path / sink)


def test_glob_match_agrees_with_glob(tmp_path: Path) -> None:
    """The not-yet-existing-file check answers as ``glob.glob`` does once the file exists."""
    import glob

    from castlewatch.engine.config.paths import glob_would_match

    files = ["a.log", ".h.log", "d/a.log", "d/e/b.log", "d/.x/c.log", ".d/a.log", "d/e/f/a.jsonl", "ab[1].log"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    patterns = [
        "*.log", "*/*.log", "**/*.log", "d/**/*.log", "d/**", "**", ".*", "d/*/b.log", "d/.*/*.log",
        "**/a.*", "d/e/**/*.jsonl", "?.log", "[a-c].log", "ab[[]1].log", "d/**/.x/*.log",
    ]  # fmt: skip
    for pattern in patterns:
        expected = {p for p in glob.glob(str(tmp_path / pattern), recursive=True) if Path(p).is_file()}
        found = {str(tmp_path / n) for n in files if glob_would_match(str(tmp_path / pattern), str(tmp_path / n))}
        assert found == expected, pattern


def test_two_sinks_of_one_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    error = path_error(write_config(tmp_path, ["app.log"], ["real/dp.jsonl", "alias/dp.jsonl"]), "sinks[1].path")
    assert error.reason.startswith(f"the same file as sinks[0] ({tmp_path / 'alias' / 'dp.jsonl'})")


@pytest.mark.parametrize(
    ("sources", "location", "reason"),
    [
        (["app.log", "*.log"], "sources[1].path", "app.log is matched by sources[0]"),  # the tester's case
        (["*.log", "app.log"], "sources[1].path", "app.log is matched by sources[0]"),
        (["app.log", "hard.log"], "sources[1].path", "hard.log (also {tmp}/app.log) is matched by sources[0]"),
        (["new.log", "./new.log"], "sources[1].path", "the same path as sources[0] in log group 'g'"),
    ],
)
def test_overlapping_sources_of_one_log_group_are_refused(
    tmp_path: Path, sources: list[str], location: str, reason: str
) -> None:
    """Each event of a file read by two sources of one log group would be counted twice."""
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    (tmp_path / "hard.log").hardlink_to(tmp_path / "app.log")
    error = path_error(write_config(tmp_path, sources, ["out/dp.jsonl"]), location)
    assert reason.format(tmp=tmp_path) in error.reason
    if "matched" in reason:
        assert error.reason.endswith(
            "in the same log group 'g': each of its events would be counted twice; narrow one of the paths"
        )


def test_sources_of_different_log_groups_may_share_a_file(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("1700000000 a\n", encoding="utf-8")
    config = load_config(write_config(tmp_path, ["app.log@g", "*.log@h"], ["out/dp.jsonl"]))
    assert [s.log_group for s in config.sources] == ["g", "h"]


def test_two_stdin_sources_are_refused() -> None:
    sources = (
        "sources:\n  - {type: stdin, log_group: cloudtrail, timestamp: ingestion}\n"
        "  - {type: stdin, log_group: vpc-flow-logs, timestamp: ingestion}\n"
    )
    assert config_error(config_text(sources=sources), "sources[1]").reason == (
        "stdin is already read by sources[0]; only one source can read it"
    )


def test_with_sinks_in_refuses_sinks_that_collide(tmp_path: Path) -> None:
    from castlewatch.engine.config import with_sinks_in

    config = load_config(write_config(tmp_path, ["app.log"], ["a/dp.jsonl", "b/dp.jsonl", "c/other.csv"]))
    with pytest.raises(ConfigError) as info:
        with_sinks_in(config, tmp_path / "out")
    assert info.value.location == "sinks[1].path"
    assert info.value.reason == (
        f"{tmp_path / 'b/dp.jsonl'} and sinks[0] ({tmp_path / 'a/dp.jsonl'}) would both be "
        f"{tmp_path / 'out/dp.jsonl'}: every datapoint would be written to it twice; give each sink its own file "
        f"(sinks moved into {tmp_path / 'out'}, file names kept)"
    )


def test_with_sinks_in(tmp_path: Path) -> None:
    from castlewatch.engine.config import with_sinks_in

    config = load_config(write_config(tmp_path, ["logs/*.jsonl"], ["a/dp.jsonl", "b/other.jsonl"]))
    moved = with_sinks_in(config, tmp_path / "out")
    assert [s.path for s in moved.sinks] == [str(tmp_path / "out/dp.jsonl"), str(tmp_path / "out/other.jsonl")]
    assert (moved.sources, moved.path) == (config.sources, config.path)
    with pytest.raises(ConfigError, match=r"sinks\[0\].path: .* is read by sources\[0\]"):
        with_sinks_in(config, tmp_path / "logs")


def test_checkpoint_that_a_source_reads_or_a_sink_writes(tmp_path: Path) -> None:
    from castlewatch.engine.config import check_checkpoint_path

    config = load_config(write_config(tmp_path, ["*.json"], ["out/dp.jsonl"]))
    check_checkpoint_path(config, tmp_path / "state" / "castlewatch.checkpoint.json")
    for checkpoint, reason in (
        ("castlewatch.yaml.checkpoint.json", r"is read by sources\[0\]"),  # the default name, beside the config
        ("out/dp.jsonl", r"is the file of sinks\[0\]"),
    ):
        with pytest.raises(ConfigError, match=reason):
            check_checkpoint_path(config, tmp_path / checkpoint)


# ---- JSON configurations -----------------------------------------------------------------------


def _as_json(text: str) -> str:
    from castlewatch.engine.config.decode import read_yaml

    return json.dumps(read_yaml(text, None)[1], indent=1)


def test_a_json_config_loads_as_its_yaml_twin() -> None:
    """A configuration in JSON (what ``describe-metric-filters`` users paste) gives the config
    its YAML twin gives, read by the JSON decoder (PyYAML not imported for it)."""
    text = config_text(extra="allowed_lateness_s: 120\n")
    assert load(_as_json(text)) == load(text)


def test_a_json_config_reads_numbers_as_json_does() -> None:
    """YAML 1.1 reads ``1.5e2`` as a string; in a JSON configuration it is the number."""
    data = json.loads(_as_json(config_text()))
    data["allowed_lateness_s"] = "PLACEHOLDER"
    assert load(json.dumps(data).replace('"PLACEHOLDER"', "1.5e2")).allowed_lateness_s == 150.0


def test_json_config_errors_keep_their_lines() -> None:
    """An error in a JSON configuration names the line of the key at fault, as in YAML; a key
    given twice and ``NaN`` are read as YAML, which says where."""
    data = json.loads(_as_json(config_text()))
    data["sources"][1]["format"] = "nope"
    text = json.dumps(data, indent=1)
    error = config_error(text, "sources[1].format")
    assert error.line == next(i for i, line in enumerate(text.splitlines(), 1) if '"nope"' in line)
    twice = text.replace('"format": "nope"', '"path": "/x", "format": "lines"')
    assert "key 'path' is given twice in one mapping" in config_error(twice, "").reason
    with pytest.raises(ConfigError):
        load(json.dumps({**json.loads(_as_json(config_text())), "allowed_lateness_s": "N"}).replace('"N"', "NaN"))


def test_a_json_config_does_not_import_pyyaml(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "c.json"
    path.write_text(_as_json(config_text(sinks="sinks: [{type: stdout}]\n")), encoding="utf-8")
    code = f"import sys; from castlewatch.engine.config import load_config; load_config({str(path)!r}); print('yaml' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
