"""The ``cloudwatch`` and ``cloudwatch_dashboard`` entries of a configuration's ``sinks``:
their settings, unknown keys refused, errors with the key's line and column, and the
checks a schema cannot make (namespaces PutMetricData refuses, double counting)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from castlewatch.engine.config import ConfigError, load_config, load_config_text
from castlewatch.engine.config.load import sink_problem
from castlewatch.sinks.cloudwatch import CloudWatchSinkSpec
from castlewatch.sinks.cloudwatch_dashboard import CloudWatchDashboardSinkSpec

HEAD = """\
metric_filters:
  - filterName: errors
    logGroupName: app
    filterPattern: ERROR
    metricTransformations: [{metricName: Errors, metricNamespace: App, metricValue: '1'}]
sources:
  - {type: stdin, log_group: app, timestamp: ingestion}
sinks:
"""


def load(sinks: str, base: Path = Path("/etc/castlewatch")):
    return load_config_text(HEAD + sinks, base)


def error(sinks: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(sinks)
    return info.value


def test_a_cloudwatch_sink_with_every_setting():
    config = load("""\
  - type: cloudwatch
    region: eu-west-1
    endpoint_url: http://127.0.0.1:4566
    namespace_prefix: castlewatch/
    protocol: query
    spool_dir: spool
    buffer_datums: 5000
    max_requests_per_s: 20
    timeout_s: 10
    retry_max_delay_s: 5
    replay_timeout_s: 60
    shutdown_timeout_s: 3
  - {type: cloudwatch_dashboard, dashboard_name: castlewatch-app, region: eu-west-1, update_interval_s: 120}
""")
    assert config.sinks == (
        CloudWatchSinkSpec(region="eu-west-1", endpoint_url="http://127.0.0.1:4566", namespace_prefix="castlewatch/",
                           protocol="query", spool_dir="/etc/castlewatch/spool", buffer_datums=5000,
                           max_requests_per_s=20.0, timeout_s=10.0, retry_max_delay_s=5.0, replay_timeout_s=60.0,
                           shutdown_timeout_s=3.0),
        CloudWatchDashboardSinkSpec(dashboard_name="castlewatch-app", region="eu-west-1", update_interval_s=120.0),
    )
    assert config.sinks[0].where == "CloudWatch http://127.0.0.1:4566"


def test_the_defaults():
    config = load("  - {type: cloudwatch}\n")
    assert config.sinks == (CloudWatchSinkSpec(),)
    assert (config.sinks[0].region, config.sinks[0].namespace_prefix, config.sinks[0].protocol) == (None, "", None)


@pytest.mark.parametrize(
    ("sinks", "location", "reason"),
    [
        ("  - {type: cloudwatch, path: x}\n", "sinks[0].path",
         "unknown key; allowed here: type, region, endpoint_url, namespace_prefix, protocol, spool_dir, "
         "buffer_datums, max_requests_per_s, timeout_s, retry_max_delay_s, replay_timeout_s, shutdown_timeout_s"),
        ("  - {type: cloudwatch, regoin: us-east-1}\n", "sinks[0].regoin", "did you mean 'region'?"),
        ("  - {type: cloudwatch, region: Ireland}\n", "sinks[0].region",
         "expected an AWS region such as us-east-1, got 'Ireland'"),
        ("  - {type: cloudwatch, endpoint_url: localhost:4566}\n", "sinks[0].endpoint_url",
         "expected an http:// or https:// URL such as http://127.0.0.1:4566, got 'localhost:4566'"),
        ("  - {type: cloudwatch, protocol: cbor}\n", "sinks[0].protocol",
         "expected one of json, query, smithy-rpc-v2-cbor, got 'cbor'"),
        ("  - {type: cloudwatch, namespace_prefix: ':x'}\n", "sinks[0].namespace_prefix",
         "expected text put before every metric namespace"),
        ("  - {type: cloudwatch, namespace_prefix: AWS/}\n", "sinks[0].namespace_prefix",
         "the namespace of metric filter 'errors' starts with AWS/, which PutMetricData refuses"),
        ("  - {type: cloudwatch, namespace_prefix: " + "x" * 201 + "}\n", "sinks[0].namespace_prefix",
         "(at most 200 characters"),
        ("  - {type: cloudwatch, buffer_datums: 10}\n", "sinks[0].buffer_datums",
         "expected a number of datums >= 1000"),
        ("  - {type: cloudwatch, timeout_s: 0}\n", "sinks[0].timeout_s", "expected a positive number of seconds"),
        ("  - {type: cloudwatch_dashboard}\n", "sinks[0].dashboard_name", "required key missing"),
        ("  - {type: cloudwatch_dashboard, dashboard_name: 'my dashboard'}\n", "sinks[0].dashboard_name",
         "expected 1-255 of letters, digits, _ and -, got 'my dashboard'"),
        ("  - {type: cloudwatch_dashboard, dashboard_name: d, path: x}\n", "sinks[0].path",
         "unknown key; allowed here: type, dashboard_name, region, endpoint_url, namespace_prefix, "
         "update_interval_s, timeout_s"),
        ("  - {type: cloudwatch_metrics}\n", "sinks[0].type", "did you mean 'cloudwatch'?"),
    ],
)
def test_errors_name_the_key(sinks, location, reason):
    err = error(sinks)
    assert err.location == location, str(err)
    assert reason in err.reason, err.reason


def test_errors_give_the_line_and_column(tmp_path):
    path = tmp_path / "castlewatch.yaml"
    path.write_text(HEAD + "  - type: cloudwatch\n    region: us-east-1\n    protocol: xml\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.location, info.value.line, info.value.column) == ("sinks[0].protocol", 11, 5)
    assert str(info.value).startswith(f"{path}:11:5: sinks[0].protocol: expected one of json, query")


def test_double_counting_aws_metrics_is_a_configuration_problem():
    config = load("  - {type: cloudwatch, region: us-east-1}\n")
    discovered = dataclasses.replace(config, discovered_log_groups={"app": None})
    location, reason = sink_problem(discovered)
    assert location == "sinks[0].namespace_prefix"
    assert reason.startswith("the cloudwatch sink would double-count: the metric filters of app were discovered in AWS")
    assert sink_problem(dataclasses.replace(discovered, discovered_log_groups={"app": "http://127.0.0.1:4566"})) is None
    assert sink_problem(config) is None


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH"])
def test_an_endpoint_configured_in_the_environment_is_not_aws(monkeypatch, variable):
    """The sink publishes where botocore sends it: an endpoint named only by the AWS
    configuration (no endpoint_url in the config) is an emulator, not AWS."""
    config = load("  - {type: cloudwatch, region: us-east-1}\n")
    discovered = dataclasses.replace(config, discovered_log_groups={"app": None})
    monkeypatch.setenv(variable, "http://127.0.0.1:4566")
    assert sink_problem(discovered) is None
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert sink_problem(discovered)[0] == "sinks[0].namespace_prefix"


def test_a_prefix_making_a_namespace_longer_than_putmetricdata_takes():
    text = (HEAD + "  - {type: cloudwatch, namespace_prefix: " + "x" * 200 + "}\n").replace(
        "metricNamespace: App", "metricNamespace: " + "N" * 60)
    with pytest.raises(ConfigError) as info:
        load_config_text(text, Path("/etc"))
    assert info.value.location == "sinks[0].namespace_prefix"
    assert info.value.reason == (
        "with it, the namespace of metric filter 'errors' is 260 characters long; PutMetricData takes at most 255")
