"""Packs through the command line and the configuration: ``castlewatch packs list|show``,
``{pack: ...}`` entries of ``metric_filters`` (mixed with files, inline filters and
``{discover: true}``; their errors with line and column), and ``castlewatch provision`` of
pack filters against moto."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import botocore.session
import pytest
from click.testing import CliRunner, Result

from castlewatch.cli import main
from castlewatch.engine.config import ConfigError, load_config, load_config_text
from castlewatch.engine.sources import cloudwatch_logs
from castlewatch.metric_filters import DuplicateFilterError
from castlewatch.packs import get_pack

SINKS = "sinks:\n  - {type: stdout}\n"
TRAIL = "CloudTrail/DefaultLogGroup"


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def config(filters: str, sources: str | None = None) -> str:
    sources = sources or f"sources:\n  - {{type: stdin, log_group: {TRAIL}, timestamp: ingestion}}\n"
    return "metric_filters:\n" + textwrap.indent(textwrap.dedent(filters), "  ") + sources + SINKS


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, Path("/etc/castlewatch"))
    return info.value


# --- packs list / show -----------------------------------------------------------------------


def test_packs_list():
    table = run("packs", "list")
    assert table.exit_code == 0
    for name, count in [("cis", "15"), ("console-activity", "2"), ("seed-dashboard", "3"), ("vpc-flow-logs", "4")]:
        (row,) = [line for line in table.stdout.splitlines() if f" {name} " in line]
        assert f" {count} " in row
    listed = json.loads(run("packs", "list", "--output", "json").stdout)
    assert [(p["name"], p["filters"], p["logGroupKinds"]) for p in listed["packs"]] == [
        ("cis", 15, ["cloudtrail"]), ("console-activity", 2, ["cloudtrail"]),
        ("seed-dashboard", 3, ["cloudtrail", "vpc_flow_logs"]), ("vpc-flow-logs", 4, ["vpc_flow_logs"])]


def test_packs_show_json_is_the_describe_metric_filters_shape_with_the_metadata_beside_it():
    result = run("packs", "show", "cis", "--output", "json")
    assert result.exit_code == 0 and result.stderr == ""
    shown = json.loads(result.stdout)
    assert list(shown) == ["metricFilters", "metadata", "pack"]
    cis = get_pack("cis")
    # exactly what describe-metric-filters prints of each filter, less what only AWS knows
    # (creationTime) and the log group, which is given where the pack is used
    assert shown["metricFilters"] == [f.metric_filter.to_aws() for f in cis.filters]
    assert shown["metricFilters"][0] == {
        "filterName": "CIS-UnauthorizedAPICalls",
        "filterPattern": '{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}',
        "metricTransformations": [{"metricName": "UnauthorizedAPICalls", "metricNamespace": "CISBenchmark",
                                   "metricValue": "1", "unit": "Count"}],
    }
    meta = shown["metadata"][0]
    assert meta["filterName"] == "CIS-UnauthorizedAPICalls" and meta["key"] == "unauthorized-api-calls"
    assert meta["cis"] == [{"versions": "1.2", "control": "3.1"}, {"versions": "1.4-5.0", "control": "4.1"},
                           {"versions": "6.0-7.0", "control": "5.1"}]
    assert meta["securityHub"] == "CloudWatch.2" and meta["variant"] == "security-hub"
    assert [v["name"] for v in meta["variants"]] == ["security-hub", "cis-v1.4", "cis-v5.0", "nozaq"]
    assert all(v["source"] and v["difference"] and v["filterPattern"] for v in meta["variants"])
    assert [m["filterName"] for m in shown["metadata"]] == [f["filterName"] for f in shown["metricFilters"]]
    assert shown["pack"]["name"] == "cis" and "Security Hub" in shown["pack"]["description"]


def test_packs_show_with_a_log_group_and_a_variant_is_a_metric_filters_file(tmp_path):
    result = run("packs", "show", "cis", "--log-group", TRAIL, "--variant", "unauthorized-api-calls=cis-v5.0",
                 "--output", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert {f["logGroupName"] for f in shown["metricFilters"]} == {TRAIL}
    assert shown["metricFilters"][0]["filterPattern"] == get_pack("cis").filter(
        "unauthorized-api-calls").variants["cis-v5.0"].filter_pattern
    assert shown["metadata"][0]["variant"] == "cis-v5.0"
    # pasted back as a file: the same filters as the pack entry with the same variant
    (tmp_path / "cis.json").write_text(result.stdout)
    (tmp_path / "a.yaml").write_text(config("- {file: cis.json}\n"))
    (tmp_path / "b.yaml").write_text(config(f"- {{pack: cis, log_group: {TRAIL}, "
                                            "variants: {unauthorized-api-calls: cis-v5.0}}\n"))
    assert load_config(tmp_path / "a.yaml").metric_filters == load_config(tmp_path / "b.yaml").metric_filters


def test_packs_show_table():
    result = run("packs", "show", "vpc-flow-logs")
    assert result.exit_code == 0
    for f in get_pack("vpc-flow-logs").filters:
        assert f.metric_filter.filter_name in result.stdout
    assert "castlewatch/VPCFlowLogs" in result.stdout and "$bytes" in result.stdout
    cis = run("packs", "show", "cis").stdout
    assert "CIS 1.4-5.0: 4.15" in cis and "Security Hub CloudWatch.14" in cis and "cis-v5.0" in cis


@pytest.mark.parametrize(
    "args, message",
    [
        (["cys"], "Error: unknown pack 'cys'; did you mean 'cis'? (packs: cis, console-activity, seed-dashboard, "
                  "vpc-flow-logs)"),
        (["vpc"], "Error: unknown pack 'vpc'; did you mean 'vpc-flow-logs'?"),
        (["cis", "--variant", "root-usage"], "Error: --variant takes KEY=VARIANT, got 'root-usage'"),
        (["cis", "--variant", "no-mfa-console-signin=sso"],
         "Error: filter no-mfa-console-signin of pack cis has no variant 'sso' (its variants: security-hub "
         "(canonical), basic)"),
        (["cis", "--variant", "unauthorised-api-calls=nozaq"],
         "Error: pack cis has no filter 'unauthorised-api-calls'; did you mean 'unauthorized-api-calls'?"),
        (["seed-dashboard", "--log-group", "G"],
         "Error: pack seed-dashboard reads 2 kinds of log group: give log_group as {cloudtrail: NAME, vpc_flow_logs: "
         "NAME} (--log-group KIND=NAME, once for each kind)"),
        (["cis", "--log-group", "bad name"], "Error: metric filter 'CIS-UnauthorizedAPICalls' (log group 'bad name'): "
                                             "1 validation error detected: Value at 'logGroupName'"),
    ],
)
def test_packs_show_errors_exit_2(args, message):
    result = run("packs", "show", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(message), result.stderr


# --- {pack: ...} in a configuration ----------------------------------------------------------


def test_packs_mix_with_files_inline_filters_and_discover(tmp_path):
    (tmp_path / "extra.json").write_text(json.dumps({"metricFilters": [{
        "filterName": "errors", "logGroupName": "app", "filterPattern": "ERROR",
        "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}]}]}))
    (tmp_path / "c.yaml").write_text(config(f"""\
        - {{pack: cis, log_group: {TRAIL}, variants: {{no-mfa-console-signin: basic}}}}
        - {{pack: vpc-flow-logs, log_group: vpc-flow-logs}}
        - pack: seed-dashboard
          log_group: {{cloudtrail: {TRAIL}, vpc_flow_logs: vpc-flow-logs}}
        - {{file: extra.json}}
        - filterName: warnings
          logGroupName: app
          filterPattern: WARN
          metricTransformations: [{{metricName: Warnings, metricNamespace: App, metricValue: "1"}}]
        - {{discover: true}}
        """, sources="sources:\n  - {type: cloudwatch_logs, log_group_names: [app], region: us-east-1}\n"))
    loaded = load_config(tmp_path / "c.yaml")
    names = [(f.log_group_name, f.filter_name) for f in loaded.metric_filters]
    cis = [(TRAIL, f.metric_filter.filter_name) for f in get_pack("cis").filters]
    vpc = [("vpc-flow-logs", f.metric_filter.filter_name) for f in get_pack("vpc-flow-logs").filters]
    # seed-dashboard's rejected requests and security-group changes are those of vpc-flow-logs and
    # cis on the same log groups: kept once, its console sign-ins per user added
    assert names == [*cis, *vpc, (TRAIL, "ConsoleSignInsPerUser"), ("app", "errors"), ("app", "warnings")]
    assert loaded.discover_metric_filters
    (no_mfa,) = [f for f in loaded.metric_filters if f.filter_name == "CIS-NoMFAConsoleSignin"]
    assert no_mfa.filter_pattern == get_pack("cis").filter("no-mfa-console-signin").variants["basic"].filter_pattern


@pytest.mark.parametrize(
    "filters, where",
    [
        ("- {pack: ciss, log_group: G}\n",
         ("2:6", "metric_filters[0].pack", "unknown pack 'ciss'; did you mean 'cis'?")),
        ("- {pack: cis, log_group: G, variants: {vpc-change: cis-v5.0}}\n",
         ("2:42", "metric_filters[0].variants.vpc-change", "pack cis has no filter 'vpc-change'; did you mean "
                                                            "'vpc-changes'?")),
        ("- {pack: cis, log_group: G, variants: {route-table-changes: cis}}\n",
         ("2:42", "metric_filters[0].variants.route-table-changes",
          "filter route-table-changes of pack cis has no variant 'cis'")),
        ("- {pack: cis, log_group: {cloudtrail: G, vpc: V}}\n",
         ("2:44", "metric_filters[0].log_group.vpc", "pack cis has no filter for a vpc log group")),
        ("- {pack: seed-dashboard, log_group: G}\n",
         ("2:28", "metric_filters[0].log_group", "pack seed-dashboard reads 2 kinds of log group")),
        ("- {pack: cis}\n", ("2:5", "metric_filters[0].log_group", "required key missing")),
        ("- {pack: cis, log_group: G, variant: {}}\n",
         ("2:31", "metric_filters[0].variant", "unknown key; allowed here: pack, log_group, variants")),
        ("- {pack: cis, log_group: 'a b'}\n", ("2:17", "metric_filters[0].log_group", "got 'a b'")),
        ("- {pack: cis, log_group: G}\n- {pack: seed-dashboard, log_group: {cloudtrail: G, vpc_flow_logs: V}, "
         "variants: {security-group-changes: cis-v5.0}}\n",
         ("3:5", "metric_filters[1]", "pack seed-dashboard gives metric filter CIS-SecurityGroupChanges on log group "
                                      "G with another pattern than metric_filters[0] does; choose the same variant "
                                      "in both")),
        ("{pack: cis, log_group: G}\n", ("1:1", "metric_filters", "a pack is an entry of a list")),
    ],
)
def test_pack_entry_errors_name_their_line_and_column(filters, where):
    """Each error points at the key at fault (the entry itself when a key is missing or the
    entry as a whole is wrong), as every other config error does."""
    position, location, reason = where
    if filters.startswith("-"):
        head = "metric_filters:\n" + textwrap.indent(filters, "  ")
    else:
        head = "metric_filters: " + filters
    error = config_error(head + "sources:\n  - {type: stdin, log_group: G, timestamp: ingestion}\n" + SINKS)
    assert f"{error.line}:{error.column}" == position, str(error)
    assert error.location == location
    assert reason in error.reason


def test_a_pack_filter_named_like_another_filter_is_a_duplicate():
    with pytest.raises(DuplicateFilterError, match="metric filter 'CIS-RootUsage' is defined twice in log group "
                                                   f"'{TRAIL}'"):
        load_config_text(config(f"""\
        - {{pack: cis, log_group: {TRAIL}}}
        - filterName: CIS-RootUsage
          logGroupName: {TRAIL}
          filterPattern: ROOT
          metricTransformations: [{{metricName: Root, metricNamespace: Mine, metricValue: "1"}}]
        """), Path("/etc/castlewatch"))


# --- provision --------------------------------------------------------------------------------


@pytest.fixture
def fast_emulator(monkeypatch):
    """moto has no call quota: the CloudWatch Logs rate limit is raised in this process."""
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_TPS", 500.0)
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_BURST", 50)


def test_provision_puts_pack_filters_like_any_filter(moto, fast_emulator, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(config(f"""\
        - {{pack: cis, log_group: {TRAIL}, variants: {{unauthorized-api-calls: nozaq}}}}
        - {{pack: console-activity, log_group: {TRAIL}}}
        """, sources=f"sources:\n  - {{type: cloudwatch_logs, log_group_names: [{TRAIL}], region: us-east-1}}\n"))
    result = run("provision", "--config", str(path), "--endpoint-url", moto, "--output", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    # the log group and the packs' filters: 15 of cis, 2 of console-activity
    assert plan["counts"] == {"create": 1 + 15 + 2, "update": 0, "unchanged": 0}
    logs = botocore.session.get_session().create_client("logs", region_name="us-east-1", endpoint_url=moto)
    described = {f["filterName"]: f for f in logs.describe_metric_filters(logGroupName=TRAIL)["metricFilters"]}
    wanted = load_config(path).metric_filters
    assert set(described) == {f.filter_name for f in wanted}
    for f in wanted:
        got = described[f.filter_name]
        assert got["filterPattern"] == f.filter_pattern
        assert got["metricTransformations"][0]["metricName"] == f.metric_transformations[0].metric_name
        assert got["metricTransformations"][0].get("dimensions") == f.metric_transformations[0].dimensions
    assert described["CIS-UnauthorizedAPICalls"]["filterPattern"] == get_pack("cis").filter(
        "unauthorized-api-calls").variants["nozaq"].filter_pattern
    again = json.loads(run("provision", "--config", str(path), "--endpoint-url", moto, "--output", "json").stdout)
    assert {c["action"] for c in again["changes"]} == {"unchanged"}
