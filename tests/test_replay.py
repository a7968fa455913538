"""``castlewatch replay`` of the bundled demo (CloudTrail and VPC Flow Logs samples through
the packs cis, vpc-flow-logs and seed-dashboard), checked against expectations computed here
by plain Python over the sample lines, without castlewatch's matcher; the three file
sinks agree; the summary table; configuration errors through the command line.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import fastavro
import pytest
from click.testing import CliRunner

from castlewatch.cli import main
from castlewatch.cli.engine_commands import demo_config_path
from castlewatch.engine.checkpoint import read_checkpoint
from castlewatch.engine.config import load_config
from castlewatch.engine.runner import Engine
from castlewatch.sinks import CSV_HEADER, parse_dimensions

DEMO = demo_config_path()
SAMPLES = DEMO.parent.parent / "samples"
CLOUDTRAIL = SAMPLES / "cloudtrail.jsonl"
VPC = SAMPLES / "vpc-flow.log"
CIS = "CISBenchmark"

# ---------------------------------------------------------------------------------------------
# Independent expectations: plain Python predicates equivalent to the demo's patterns.


def _ui(r: dict) -> dict:
    ui = r.get("userIdentity")
    return ui if isinstance(ui, dict) else {}


def _name_in(*names: str) -> Callable[[dict], bool]:
    return lambda r: r.get("eventName") in names


def _source_and_name(source: str, *names: str) -> Callable[[dict], bool]:
    return lambda r: r.get("eventSource") == source and r.get("eventName") in names


def _unauthorized(r: dict) -> bool:
    code = r.get("errorCode")
    return isinstance(code, str) and (code.endswith("UnauthorizedOperation") or code.startswith("AccessDenied"))


def _no_mfa_console_signin(r: dict) -> bool:
    mfa = (r.get("additionalEventData") or {}).get("MFAUsed")
    return (
        r.get("eventName") == "ConsoleLogin"
        and isinstance(mfa, str)  # `!=` holds only on a present string or number
        and mfa != "Yes"
        and _ui(r).get("type") == "IAMUser"
        and (r.get("responseElements") or {}).get("ConsoleLogin") == "Success"
    )


def _root_usage(r: dict) -> bool:
    ui = _ui(r)
    kind = r.get("eventType")
    return ui.get("type") == "Root" and "invokedBy" not in ui and isinstance(kind, str) and kind != "AwsServiceEvent"


def _console_failure(r: dict) -> bool:
    return r.get("eventName") == "ConsoleLogin" and r.get("errorMessage") == "Failed authentication"


# filter name -> (namespace, metric name, unit, predicate)
CLOUDTRAIL_FILTERS: dict[str, tuple[str, str, str, Callable[[dict], bool]]] = {
    "CIS-UnauthorizedAPICalls": (CIS, "UnauthorizedAPICalls", "Count", _unauthorized),
    "CIS-NoMFAConsoleSignin": (CIS, "NoMFAConsoleSignin", "Count", _no_mfa_console_signin),
    "CIS-RootUsage": (CIS, "RootUsage", "Count", _root_usage),
    "CIS-IAMChanges": (
        CIS,
        "IAMChanges",
        "Count",
        _name_in(
            "DeleteGroupPolicy", "DeleteRolePolicy", "DeleteUserPolicy", "PutGroupPolicy", "PutRolePolicy",
            "PutUserPolicy", "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion",
            "AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy",
            "DetachGroupPolicy",
        ),
    ),
    "CIS-CloudTrailCfgChanges": (
        CIS,
        "CloudTrailCfgChanges",
        "Count",
        _name_in("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging"),
    ),
    "CIS-ConsoleSigninFailures": (CIS, "ConsoleSigninFailures", "Count", _console_failure),
    "CIS-DisableOrDeleteCMK": (
        CIS, "DisableOrDeleteCMK", "Count", _source_and_name("kms.amazonaws.com", "DisableKey", "ScheduleKeyDeletion")
    ),
    "CIS-S3BucketPolicyChanges": (
        CIS,
        "S3BucketPolicyChanges",
        "Count",
        _source_and_name(
            "s3.amazonaws.com", "PutBucketAcl", "PutBucketPolicy", "PutBucketCors", "PutBucketLifecycle",
            "PutBucketReplication", "DeleteBucketPolicy", "DeleteBucketCors", "DeleteBucketLifecycle",
            "DeleteBucketReplication",
        ),
    ),
    "CIS-AWSConfigChanges": (
        CIS,
        "AWSConfigChanges",
        "Count",
        _source_and_name(
            "config.amazonaws.com", "StopConfigurationRecorder", "DeleteDeliveryChannel", "PutDeliveryChannel",
            "PutConfigurationRecorder",
        ),
    ),
    "CIS-SecurityGroupChanges": (
        CIS,
        "SecurityGroupChanges",
        "Count",
        _name_in(
            "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
            "RevokeSecurityGroupEgress", "CreateSecurityGroup", "DeleteSecurityGroup",
        ),
    ),
    "CIS-NACLChanges": (
        CIS,
        "NACLChanges",
        "Count",
        _name_in(
            "CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
            "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation",
        ),
    ),
    "CIS-NetworkGWChanges": (
        CIS,
        "NetworkGWChanges",
        "Count",
        _name_in(
            "CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
            "DeleteInternetGateway", "DetachInternetGateway",
        ),
    ),
    "CIS-RouteTableChanges": (
        CIS,
        "RouteTableChanges",
        "Count",
        _name_in(
            "CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation", "DeleteRouteTable",
            "DeleteRoute", "DisassociateRouteTable",
        ),
    ),
    "CIS-VPCChanges": (
        CIS,
        "VPCChanges",
        "Count",
        _name_in(
            "CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection", "CreateVpcPeeringConnection",
            "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection", "AttachClassicLinkVpc", "DetachClassicLinkVpc",
            "DisableVpcClassicLink", "EnableVpcClassicLink",
        ),
    ),
    "CIS-OrganizationsChanges": (
        CIS,
        "OrganizationsChanges",
        "Count",
        _source_and_name(
            "organizations.amazonaws.com", "AcceptHandshake", "AttachPolicy", "CreateAccount",
            "CreateOrganizationalUnit", "CreatePolicy", "DeclineHandshake", "DeleteOrganization",
            "DeleteOrganizationalUnit", "DeletePolicy", "DetachPolicy", "DisablePolicyType", "EnablePolicyType",
            "InviteAccountToOrganization", "LeaveOrganization", "MoveAccount", "RemoveAccountFromOrganization",
            "UpdatePolicy", "UpdateOrganizationalUnit",
        ),
    ),
}

#: The demo's other filters: console-activity's sign-ins per user (through seed-dashboard), vpc-flow-logs'.
OTHER_FILTERS = ("ConsoleSignInsPerUser", "VPCRejectedRequests", "VPCRejectedSSH", "VPCRejectedBytes", "VPCRejectedRDP")

Key = tuple[str, str, tuple[tuple[str, str], ...], str, str]  # ns, metric, sorted dims, unit, minute ISO


def _minute_iso(epoch_s: float) -> str:
    minute = int(epoch_s // 60 * 60)
    return dt.datetime.fromtimestamp(minute, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Expected:
    events: int = 0
    matched: Counter = dataclasses.field(default_factory=Counter)
    values: dict[Key, Counter] = dataclasses.field(default_factory=lambda: defaultdict(Counter))


def expected() -> Expected:
    exp = Expected()
    for line in CLOUDTRAIL.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        exp.events += 1
        record = json.loads(line)
        when = dt.datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp()
        minute = _minute_iso(when)
        for name, (ns, metric, unit, predicate) in CLOUDTRAIL_FILTERS.items():
            if predicate(record):
                exp.matched[name] += 1
                exp.values[(ns, metric, (), unit, minute)][1.0] += 1
        # ConsoleSignInsPerUser: per userIdentity.arn; no usable ARN, nothing published
        if record.get("eventName") == "ConsoleLogin":
            exp.matched["ConsoleSignInsPerUser"] += 1
            arn = _ui(record).get("arn")
            if isinstance(arn, str) and arn:
                key = ("castlewatch/CloudTrail", "ConsoleSignIns", (("UserArn", arn),), "Count", minute)
                exp.values[key][1.0] += 1
    for line in VPC.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        exp.events += 1
        fields = line.split()
        # version account eni src dst srcport dstport protocol packets bytes start end action status
        if len(fields) != 14 or fields[12] != "REJECT":
            continue
        minute = _minute_iso(int(fields[10]))
        exp.matched["VPCRejectedRequests"] += 1
        exp.values[("castlewatch/VPCFlowLogs", "VPCFlowLogsRejectCount", (), "Count", minute)][1.0] += 1
        exp.matched["VPCRejectedBytes"] += 1
        exp.values[("castlewatch/VPCFlowLogs", "VPCFlowLogsRejectedBytes", (), "Bytes", minute)][float(fields[9])] += 1
        if fields[6] == "22" and fields[7] == "6":
            exp.matched["VPCRejectedSSH"] += 1
            exp.values[("castlewatch/VPCFlowLogs", "VPCFlowLogsRejectedSSH", (), "Count", minute)][1.0] += 1
        if fields[6] == "3389" and fields[7] == "6":
            exp.matched["VPCRejectedRDP"] += 1
            exp.values[("castlewatch/VPCFlowLogs", "VPCFlowLogsRejectedRDP", (), "Count", minute)][1.0] += 1
    return exp


EXPECTED = expected()


# ---------------------------------------------------------------------------------------------
# Reading the sinks back into {key: Counter(value -> count)}


def read_jsonl(path: Path) -> dict[Key, Counter]:
    out: dict[Key, Counter] = defaultdict(Counter)
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        assert list(d)[:2] == ["Namespace", "MetricName"]
        assert d["StorageResolution"] == 60 and len(d["Values"]) == len(d["Counts"]) <= 150
        dims = tuple(sorted((x["Name"], x["Value"]) for x in d.get("Dimensions", [])))
        key = (d["Namespace"], d["MetricName"], dims, d["Unit"], d["Timestamp"])
        for v, c in zip(d["Values"], d["Counts"]):
            out[key][float(v)] += int(c)
    return dict(out)


def _check_stats(key, values: Counter, sample_count, total, minimum, maximum) -> None:
    assert sample_count == sum(values.values()), key
    assert total == pytest.approx(sum(v * c for v, c in values.items())), key
    assert (minimum, maximum) == (min(values), max(values)), key


Statistics = tuple[int, float, float, float]  # SampleCount, Sum, Minimum, Maximum


def statistics(values: dict[Key, Counter]) -> dict[Key, Statistics]:
    """The CSV's statistics of each datapoint, from its values and counts."""
    return {
        key: (sum(vals.values()), float(sum(v * c for v, c in vals.items())), min(vals), max(vals))
        for key, vals in values.items()
    }


def read_csv(path: Path) -> dict[Key, Statistics]:
    """The CSV sink read back with the csv module: one row per datapoint, one scalar per cell."""
    out: dict[Key, Statistics] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_HEADER
        for row in reader:
            assert None not in row and all(cell[:1] not in "[{" or cell == "" for cell in row.values()), row
            dims = tuple(sorted(parse_dimensions(row["Dimensions"]).items()))
            key = (row["Namespace"], row["MetricName"], dims, row["Unit"], row["Timestamp"])
            assert key not in out
            out[key] = (int(row["SampleCount"]), float(row["Sum"]), float(row["Minimum"]), float(row["Maximum"]))
    return out


def read_avro(path: Path) -> dict[Key, Counter]:
    out: dict[Key, Counter] = {}
    with open(path, "rb") as fh:
        for r in fastavro.reader(fh):
            stamp = r["Timestamp"]
            iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(stamp, dt.datetime) else _minute_iso(stamp / 1000)
            key = (r["Namespace"], r["MetricName"], tuple(sorted(r["Dimensions"].items())), r["Unit"], iso)
            assert key not in out
            values = Counter(dict(zip(r["Values"], r["Counts"])))
            _check_stats(key, values, r["SampleCount"], r["Sum"], r["Minimum"], r["Maximum"])
            out[key] = values
    return out


# ---------------------------------------------------------------------------------------------
# Runs


def _demo_config(out: Path):
    config = load_config(DEMO)
    sinks = [dataclasses.replace(s, path=str(out / Path(s.path).name)) for s in config.sinks]
    return dataclasses.replace(config, sinks=sinks)


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    config = _demo_config(out)
    stats = asyncio.run(Engine(config).replay())
    return out, stats, config


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    result = CliRunner().invoke(main, ["replay", "--out", str(out)], env={"COLUMNS": "200"})
    return out, result


def test_expectations_cover_every_demo_filter():
    """The demo is the packs cis, vpc-flow-logs and seed-dashboard: the 19 filters it had as a
    file (castlewatch/data/demo/metric-filters.json, now gone), plus the pack's VPCRejectedRDP;
    seed-dashboard's rejected-requests and security-group filters are those of the other two,
    kept once."""
    names = [f.filter_name for f in load_config(DEMO).metric_filters]
    assert sorted(names) == sorted([*CLOUDTRAIL_FILTERS, *OTHER_FILTERS])
    # sanity of the hand computation itself (numbers read off the sample files)
    assert EXPECTED.events == 95
    assert EXPECTED.matched["VPCRejectedRDP"] == 3  # vpc-flow.log lines 2, 18, 53
    assert EXPECTED.matched["ConsoleSignInsPerUser"] == 7
    assert EXPECTED.matched["CIS-SecurityGroupChanges"] == 3
    assert EXPECTED.matched["CIS-RootUsage"] == 3


def test_replay_datapoints_equal_independent_expectation(api_run):
    out, stats, _ = api_run
    got = read_jsonl(out / "datapoints.jsonl")
    assert got == EXPECTED.values
    assert stats.datapoints_written == len(EXPECTED.values)
    assert stats.late_events == 0
    assert stats.malformed == {}


def test_replay_counts(api_run):
    _, stats, _ = api_run
    assert stats.events_read == EXPECTED.events
    assert stats.matched == {name: EXPECTED.matched[name] for name in stats.matched}
    assert set(stats.matched) == set(EXPECTED.matched) | {n for n in CLOUDTRAIL_FILTERS}


def test_console_sign_ins_per_user(api_run):
    """Per userIdentity.arn, per minute of eventTime; a sign-in without an ARN publishes nothing."""
    got = read_jsonl(api_run[0] / "datapoints.jsonl")
    per_user = Counter()
    for (ns, metric, dims, unit, minute), values in got.items():
        if metric == "ConsoleSignIns":
            assert (ns, unit) == ("castlewatch/CloudTrail", "Count") and dims[0][0] == "UserArn"
            per_user[dims[0][1]] += sum(values.values())
    assert per_user == Counter(
        {
            "arn:aws:iam::111122223333:user/alice": 2,
            "arn:aws:iam::111122223333:user/bob": 1,
            "arn:aws:iam::111122223333:root": 2,
            "arn:aws:sts::111122223333:assumed-role/ExampleAdminRole/carol@example.com": 1,
        }
    )


def test_security_group_changes_and_root_usage(api_run):
    got = read_jsonl(api_run[0] / "datapoints.jsonl")
    sg = {k[4]: dict(v) for k, v in got.items() if k[1] == "SecurityGroupChanges"}
    assert sg == {"2024-03-05T09:11:00Z": {1.0: 1}, "2024-03-05T09:12:00Z": {1.0: 1}, "2024-03-05T09:13:00Z": {1.0: 1}}
    root = {k[4]: dict(v) for k, v in got.items() if k[1] == "RootUsage"}
    assert root == {"2024-03-05T09:05:00Z": {1.0: 1}, "2024-03-05T09:06:00Z": {1.0: 1}, "2024-03-05T09:08:00Z": {1.0: 1}}


def test_vpc_rejected_bytes(api_run):
    got = read_jsonl(api_run[0] / "datapoints.jsonl")
    total = sum(v * c for k, vals in got.items() if k[1] == "VPCFlowLogsRejectedBytes" for v, c in vals.items())
    by_hand = sum(
        int(f[9]) for f in (line.split() for line in VPC.read_text().splitlines()) if len(f) == 14 and f[12] == "REJECT"
    )
    assert total == by_hand
    rejects = sum(sum(vals.values()) for k, vals in got.items() if k[1] == "VPCFlowLogsRejectCount")
    assert rejects == sum(1 for line in VPC.read_text().splitlines() if " REJECT " in line)


def test_sinks_agree(api_run):
    out = api_run[0]
    jsonl = read_jsonl(out / "datapoints.jsonl")
    assert read_csv(out / "datapoints.csv") == statistics(jsonl)
    assert read_avro(out / "datapoints.avro") == jsonl


def test_cli_replay_writes_the_same_datapoints(cli_run, api_run):
    out, result = cli_run
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for name in ("datapoints.jsonl", "datapoints.csv", "datapoints.avro"):
        assert (out / name).exists()
    assert read_jsonl(out / "datapoints.jsonl") == EXPECTED.values
    assert read_csv(out / "datapoints.csv") == statistics(EXPECTED.values)
    assert read_avro(out / "datapoints.avro") == EXPECTED.values


def _table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line)]
        cells = [c for c in cells if c != ""]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_cli_summary_table(cli_run):
    """The summary is on stderr (stdout is for data: nothing here, the sinks are files)."""
    out, result = cli_run
    assert result.stdout == ""
    rows = _table_rows(result.stderr)
    assert rows["events read"] == str(EXPECTED.events)
    for name in [*CLOUDTRAIL_FILTERS, *OTHER_FILTERS]:
        assert rows[f"matched: {name}"] == str(EXPECTED.matched[name]), name
    assert rows["datapoints written"] == str(len(EXPECTED.values))
    assert rows["datums written (JSON Lines lines)"] == str(len((out / "datapoints.jsonl").read_text().splitlines()))
    late = [v for k, v in rows.items() if k.startswith("late contributions")]
    assert late == ["0"]
    assert not [k for k in rows if k.startswith("malformed")]


def test_replay_as_a_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "castlewatch", "replay", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert read_jsonl(tmp_path / "datapoints.jsonl") == EXPECTED.values
    assert proc.stdout == ""
    assert _table_rows(proc.stderr)["events read"] == str(EXPECTED.events)


def test_replay_is_repeatable(tmp_path):
    """A second replay into the same folder replaces the files, it does not append."""
    for _ in range(2):
        assert CliRunner().invoke(main, ["replay", "--out", str(tmp_path)]).exit_code == 0
    assert read_jsonl(tmp_path / "datapoints.jsonl") == EXPECTED.values
    assert read_csv(tmp_path / "datapoints.csv") == statistics(EXPECTED.values)
    assert read_avro(tmp_path / "datapoints.avro") == EXPECTED.values


# ---------------------------------------------------------------------------------------------
# Configuration errors through the command line: exit 2, one clear line, no traceback.

_SOURCE = "sources: [{type: file, path: in.log, log_group: g, timestamp: {field: $.t, format: epoch_s}}]\n"
_SINKS = "sinks: [{type: jsonl, path: out.jsonl}]\n"


def _filters(transformation: str, pattern: str = "'{ $.a = 1 }'", extra: str = "", name: str = "my-filter") -> str:
    return (
        "metric_filters:\n"
        f"  - filterName: {name}\n"
        "    logGroupName: g\n"
        f"    filterPattern: {pattern}\n"
        f"    metricTransformations: [{transformation}]\n"
        f"{extra}"
    )


_T = "{metricName: m, metricNamespace: ns, metricValue: '1'"

CONFIG_ERRORS = [
    ("yaml", "metric_filters: [\n  - {a: 1\n", ["invalid YAML", "line 2"]),
    ("unknown-key", _filters(_T + "}") + _SOURCE + _SINKS + "source: x\n", ["source", "unknown key"]),
    ("missing-sinks", _filters(_T + "}") + _SOURCE, ["sinks", "required key missing"]),
    (
        "default-with-dimensions",
        _filters(_T + ", defaultValue: 0, dimensions: {D: $.a}}") + _SOURCE + _SINKS,
        ["my-filter", "dimensions and default value are mutually exclusive properties"],
    ),
    (
        "metric-value",
        _filters("{metricName: m, metricNamespace: ns, metricValue: abc}") + _SOURCE + _SINKS,
        ["my-filter", "metric value abc must be a valid number"],
    ),
    (
        "dimensions-on-terms",
        _filters(_T + ", dimensions: {D: $.a}}", pattern="ERROR") + _SOURCE + _SINKS,
        ["my-filter", "The specified filter pattern does not support dimensions"],
    ),
    (
        "too-many-dimensions",
        _filters(_T + ", dimensions: {A: $.a, B: $.b, C: $.c, D: $.d}}") + _SOURCE + _SINKS,
        ["my-filter", "Number of dimensions exceeds the maximum"],
    ),
    (
        "unit",
        _filters(_T + ", unit: Parsecs}") + _SOURCE + _SINKS,
        ["my-filter", "Member must satisfy enum value set"],
    ),
    ("pattern", _filters(_T + "}", pattern="'{ $.a = }'") + _SOURCE + _SINKS, ["my-filter", "Invalid metric filter pattern"]),
    (
        "namespace",
        _filters("{metricName: m, metricNamespace: 'a:b', metricValue: '1'}") + _SOURCE + _SINKS,
        ["my-filter", "metricNamespace"],
    ),
    (
        "no-timestamp",
        _filters(_T + "}") + "sources: [{type: file, path: in.log, log_group: g}]\n" + _SINKS,
        ["sources[0].timestamp", "needs a timestamp"],
    ),
    (
        "log-group-without-filters",
        _filters(_T + "}") + "sources: [{type: file, path: in.log, log_group: other, timestamp: ingestion}]\n" + _SINKS,
        ["sources[0].log_group", "no metric filter"],
    ),
    (
        "field-selection-criteria",
        _filters(_T + "}", extra="    fieldSelectionCriteria: '@aws.region = \"us-east-1\"'\n") + _SOURCE + _SINKS,
        ["my-filter", "fieldSelectionCriteria"],
    ),
    (
        "emit-system-field-dimensions",
        _filters(_T + "}", extra="    emitSystemFieldDimensions: ['@aws.account']\n") + _SOURCE + _SINKS,
        ["my-filter", "emitSystemFieldDimensions"],
    ),
]


def _error_lines(stderr: str) -> list[str]:
    """stderr without the daemon's structured log records (JSON lines)."""
    lines = []
    for line in stderr.strip().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and "event" in record):
            lines.append(line)
    return lines


def _check_config_error(result, fragments: list[str]) -> None:
    """Exit 2, no traceback, and one clear line ``Error: ...`` naming what is wrong; it may
    be followed only by indented continuation lines (a hint, the pattern with a caret)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = _error_lines(result.stderr)
    assert lines and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, result.stderr)
    for line in lines[1:]:
        assert line.startswith("  ") and line.strip(), f"not a one-line message:\n{result.stderr}"
    assert result.stdout == ""


@pytest.mark.parametrize(("case", "text", "fragments"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
@pytest.mark.parametrize("command", ["replay", "run"])
def test_config_errors_through_the_cli(tmp_path, case, text, fragments, command):
    (tmp_path / "in.log").write_text("")
    config = tmp_path / "castlewatch.yaml"
    config.write_text(text)
    args = [command, "--config", str(config)]
    if command == "run":
        args += ["--checkpoint", str(tmp_path / "ck.json")]
    _check_config_error(CliRunner().invoke(main, args), fragments)
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").stat().st_size == 0


@pytest.mark.parametrize("command", ["replay", "run"])
def test_missing_config_file(tmp_path, command):
    result = CliRunner().invoke(main, [command, "--config", str(tmp_path / "nope.yaml")])
    _check_config_error(result, ["nope.yaml", "no such file"])


def test_config_error_as_a_process(tmp_path):
    config = tmp_path / "castlewatch.yaml"
    config.write_text(_filters(_T + ", defaultValue: 0, dimensions: {D: $.a}}") + _SOURCE + _SINKS)
    proc = subprocess.run(
        [sys.executable, "-m", "castlewatch", "replay", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and "'my-filter'" in lines[0] and "mutually exclusive" in lines[0], proc.stderr
    assert all(line.startswith("  ") for line in lines[1:]), proc.stderr


def test_replay_reports_a_filter_disabled_for_too_many_dimension_sets(tmp_path):
    """§8.4: at 1,000 distinct dimension value sets within an hour the filter is disabled,
    with an error on stderr and a row in the summary; the run goes on and exits 0."""
    events = "".join('{"t": %d, "user": "u%d"}\n' % (1709596800000 + i * 1000, i) for i in range(1200))
    (tmp_path / "in.log").write_text(events)
    (tmp_path / "c.yaml").write_text(
        """
metric_filters:
  - filterName: PerUser
    logGroupName: app
    filterPattern: '{ $.user = * }'
    metricTransformations: [{metricName: m, metricNamespace: ns, metricValue: "1", dimensions: {user: $.user}}]
sources:
  - {type: file, path: in.log, log_group: app, timestamp: {field: $.t, format: epoch_ms}}
sinks:
  - {type: jsonl, path: out.jsonl}
"""
    )
    proc = subprocess.run(
        [sys.executable, "-m", "castlewatch", "replay", "--config", str(tmp_path / "c.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "metric filter 'PerUser' disabled: its dimensions took 1000 distinct value sets" in proc.stderr
    rows = _table_rows(proc.stderr)
    assert rows["matched: PerUser"] == "1000"
    assert rows["disabled: PerUser"] == "1,000 dimension sets"
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 1000  # one datapoint per user and minute


def test_replay_counts_values_putmetricdata_refuses(tmp_path):
    """§9: a metric value beyond ±2^360 (``1e400``) publishes nothing and is counted per
    filter, in the summary and in a run's checkpoint."""
    events = '{"t": 1709596800000, "bytes": 10}\n{"t": 1709596801000, "bytes": 1e400}\n{"t": 1709596802000, "bytes": -1e109}\n'
    (tmp_path / "in.log").write_text(events)
    (tmp_path / "c.yaml").write_text(
        """
metric_filters:
  - filterName: Bytes
    logGroupName: app
    filterPattern: '{ $.bytes = * }'
    metricTransformations: [{metricName: b, metricNamespace: ns, metricValue: $.bytes}]
sources:
  - {type: file, path: in.log, log_group: app, timestamp: {field: $.t, format: epoch_ms}}
sinks:
  - {type: jsonl, path: out.jsonl}
"""
    )
    result = CliRunner().invoke(main, ["replay", "--config", str(tmp_path / "c.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = _table_rows(result.output)
    assert rows["matched: Bytes"] == "3"
    assert rows["value beyond ±2^360, not published: Bytes"] == "2"
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["Values"] for line in lines] == [[10.0]]

    async def run() -> None:
        engine = Engine(load_config(tmp_path / "c.yaml"), checkpoint=tmp_path / "ck.json")
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        for _ in range(2000):
            if engine.stats.events_read == 3 or task.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 20)

    asyncio.run(run())
    assert read_checkpoint(tmp_path / "ck.json")["stats"]["out_of_range"] == {"Bytes": 2}
    resumed = Engine(load_config(tmp_path / "c.yaml"), checkpoint=tmp_path / "ck.json")
    for sink in resumed.sinks:
        sink.close()
    assert resumed.stats.out_of_range == {"Bytes": 2}
