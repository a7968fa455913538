"""The built-in packs (``castlewatch/data/packs``): their texts against the documented CIS
patterns (``castlewatch/data/cis-patterns.json``, a copy of ``../shared/cis-patterns.json``),
their metadata, each pack on the bundled samples with counts worked out by hand, and each
documented variant's difference on small handmade events.

The sample counts below were read off the sample files line by line (the comments say which
lines count and why); castlewatch's own evaluator (``LogGroupEvaluator``, spec §8.3) must
give the same.
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec
import pytest

from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.grammar import compile_pattern
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import MetricFilter, Stats
from castlewatch.packs import PackError, UnknownPackError, get_pack, pack_names
from castlewatch.samples import read_sample_lines

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "cis-patterns.json"
DOCUMENTED: list[dict[str, Any]] = json.loads(
    (files("castlewatch") / "data" / "cis-patterns.json").read_text(encoding="utf-8"))
SECURITY_HUB_SOURCE = "AWS Security Hub user guide, \"Security Hub controls for Amazon CloudWatch\""
T0 = 1_709_629_230_000  # 2024-03-05T09:00:30Z, epoch ms: every handmade event's time


def norm(text: str) -> str:
    """A pattern up to whitespace: "character for character up to whitespace"."""
    return "".join(text.split())


def documented(control: str) -> dict[str, Any]:
    """The cis-patterns.json entry whose id names ``control`` (``CIS 1.4-5.0 4.1``)."""
    (entry,) = [e for e in DOCUMENTED if control in e["id"].split(" / ")]
    return entry


def control(f) -> str:
    """A CIS pack filter's control id in the CIS v1.4 to v5.0 numbering (``4.1``)."""
    (c,) = [c["control"] for c in f.metadata["cis"] if c["versions"] == "1.4-5.0"]
    return c


def documented_texts(entry: dict[str, Any]) -> dict[str, list[str]]:
    """Normalised text -> the sources that print it, for one entry."""
    texts: dict[str, list[str]] = defaultdict(list)
    for v in entry["variants"]:
        texts[norm(v["filter_pattern"])].append(v["source"])
    if not entry["variants"]:
        texts[norm(entry["filter_pattern"])].append(entry["source"])
    return texts


def evaluate(filters: list[MetricFilter], lines: list[str]) -> tuple[dict[str, int], dict[tuple, list[float]]]:
    """Run ``filters`` on ``lines`` as the engine does (spec §8.3): matches per filter name, and
    per (metric name, dimensions) the [SampleCount, Sum] of what was published."""
    stats = Stats()
    evaluator = LogGroupEvaluator(load_metric_filters(filters), stats)
    published: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    def emit(key, ts, value):
        _namespace, metric, dims, _unit = key
        published[(metric, dims)][0] += 1
        published[(metric, dims)][1] += value
    for line in lines:
        evaluator.evaluate_message(line, T0, emit)
    assert not stats.malformed
    return stats.matched, dict(published)


def matching(pattern: str, events: dict[str, dict]) -> set[str]:
    """Names of the handmade ``events`` (JSON documents) that ``pattern`` matches."""
    compiled = compile_pattern(pattern)
    return {name for name, doc in events.items() if compiled.matches(json.dumps(doc))}


# --- the documented texts ------------------------------------------------------------------


def test_the_packaged_pattern_list_is_the_shared_one():
    if not SHARED.exists():
        pytest.skip("../shared is not beside this checkout")
    assert json.loads(SHARED.read_text(encoding="utf-8")) == DOCUMENTED


def test_the_bundled_packs():
    assert pack_names() == ["cis", "console-activity", "seed-dashboard", "vpc-flow-logs"]
    for name in pack_names():
        pack = get_pack(name)
        assert pack.name == name and pack.title and pack.description
        load_metric_filters(pack.metric_filters({k: "G" for k in pack.log_group_kinds}))  # PutMetricFilter's checks
        for f in pack.filters:
            assert f.metadata["title"] and f.metadata["rationale"]
            assert all(v.source for v in f.variants.values())
            for v in f.variants.values():
                compile_pattern(v.filter_pattern)
    with pytest.raises(UnknownPackError, match="unknown pack 'vpc'; did you mean 'vpc-flow-logs'"):
        get_pack("vpc")


def test_cis_is_the_15_monitoring_controls_with_their_ids_in_every_version():
    cis = get_pack("cis")
    assert list(cis.log_group_kinds) == ["cloudtrail"]
    controls = [[c["control"] for c in f.metadata["cis"] if c["versions"] == "1.4-5.0"] for f in cis.filters]
    assert controls == [[f"4.{n}"] for n in range(1, 16)]
    assert [[c["control"] for c in f.metadata["cis"] if c["versions"] == "6.0-7.0"] for f in cis.filters] == [
        [f"5.{n}"] for n in range(1, 16)]
    # Security Hub's numbering: 4.3 (root) is CloudWatch.1, 4.1 and 4.2 are .2 and .3; 4.15 has none
    assert [f.metadata["securityHub"] for f in cis.filters] == [
        "CloudWatch.2", "CloudWatch.3", "CloudWatch.1", *(f"CloudWatch.{n}" for n in range(4, 15)), None]
    for f in cis.filters:
        entry = documented(f"CIS 1.4-5.0 {control(f)}")
        ids = entry["id"].split(" / ")
        assert [f"CIS {c['versions']} {c['control']}" for c in f.metadata["cis"]] == [
            i for i in ids if i.startswith("CIS")]
        assert ([f.metadata["securityHub"]] if f.metadata["securityHub"] else []) == [
            i for i in ids if i.startswith("CloudWatch.")]
        assert f.metadata["title"] == entry["name"]
    organizations = cis.filter("organizations-changes")
    assert organizations.metadata["title"] == "AWS Organizations changes"


def test_every_cis_text_is_a_documented_variant_character_for_character_up_to_whitespace():
    for f in get_pack("cis").filters:
        entry = documented(f"CIS 1.4-5.0 {control(f)}")
        texts = documented_texts(entry)
        for variant in f.variants.values():
            assert norm(variant.filter_pattern) in texts, (f.key, variant.name)
            # its sources are the ones that print that text
            assert sorted(variant.source) == sorted(texts[norm(variant.filter_pattern)]), (f.key, variant.name)
        # the documented texts not offered are transcriptions of an offered one with the quotes
        # stripped (CIS v3.0/v5.0 audit text as prowler transcribes it; 4.6's does not even parse)
        offered = {norm(v.filter_pattern).replace('"', "") for v in f.variants.values()}
        for text in texts:
            assert text in {norm(v.filter_pattern) for v in f.variants.values()} or text.replace('"', "") in offered


def test_the_canonical_cis_text_is_the_exact_text_security_hub_checks():
    """Security Hub's CloudWatch.1 to .14 fail a pattern that differs from their text: the
    canonical text is that text, character for character (4.15, which no control covers: the
    CIS v1.4 remediation text)."""
    for f in get_pack("cis").filters:
        entry = documented(f"CIS 1.4-5.0 {control(f)}")
        if f.metadata["securityHub"]:
            (hub,) = [v for v in entry["variants"] if v["source"].startswith(SECURITY_HUB_SOURCE)]
            assert f.canonical == "security-hub"
        else:
            (hub,) = [v for v in entry["variants"] if v["source"].startswith(
                "CIS Amazon Web Services Foundations Benchmark v1.4 remediation")]
            assert f.canonical == "cis-v1.4"
        assert f.metric_filter.filter_pattern == hub["filter_pattern"] == entry["filter_pattern"]
        assert f.variants[f.canonical].source[0] == hub["source"]
        assert f.metric_filter.metric_transformations[0].metric_name == entry["metric_name"]
        assert f.metric_filter.metric_transformations[0].metric_namespace == "CISBenchmark"


def test_the_vpc_texts_are_the_documented_ones():
    vpc = get_pack("vpc-flow-logs")
    ssh = documented("VPC-FLOW-REJECT-SSH (not a CIS control)")
    everything = documented("VPC-FLOW-REJECT-ALL (not a CIS control; derived)")
    assert vpc.filter("rejected-ssh").metric_filter.filter_pattern == ssh["filter_pattern"]
    assert vpc.filter("rejected-requests").metric_filter.filter_pattern == everything["filter_pattern"]
    assert vpc.filter("rejected-bytes").metric_filter.filter_pattern == everything["filter_pattern"]
    assert vpc.filter("rejected-requests").metric_filter.metric_transformations[0].metric_name == everything[
        "metric_name"]
    # RDP: the SSH text with destport 3389 for 22, nothing else changed
    assert vpc.filter("rejected-rdp").metric_filter.filter_pattern == ssh["filter_pattern"].replace(
        'destport="22"', 'destport="3389"')


def test_seed_dashboard_is_three_filters_of_the_other_packs():
    seed = get_pack("seed-dashboard")
    assert [(f.metadata["includedFrom"], f.key, f.metadata["widget"]) for f in seed.filters] == [
        ("vpc-flow-logs", "rejected-requests", "Rejected VPC requests"),
        ("console-activity", "sign-ins", "Console activity per user"),
        ("cis", "security-group-changes", "Security group changes"),
    ]
    for f in seed.filters:
        original = get_pack(f.metadata["includedFrom"]).filter(f.key)
        assert f.metric_filter == original.metric_filter and f.variants == original.variants
    assert list(seed.log_group_kinds) == ["cloudtrail", "vpc_flow_logs"]


def test_pack_usage_errors():
    cis, seed = get_pack("cis"), get_pack("seed-dashboard")
    with pytest.raises(PackError, match=r"has no variant 'cis-v5'; did you mean 'cis-v5.0'\? \(its variants: "
                                        r"security-hub \(canonical\), cis-v1.4, cis-v5.0, nozaq\)") as info:
        cis.metric_filters("G", {"unauthorized-api-calls": "cis-v5"})
    assert info.value.location == "variants.unauthorized-api-calls"
    with pytest.raises(PackError, match="has no filter 'root'"):
        cis.metric_filters("G", {"root": "x"})
    with pytest.raises(PackError, match=r"give log_group as \{cloudtrail: NAME, vpc_flow_logs: NAME\}"):
        seed.metric_filters("G")
    with pytest.raises(PackError, match="needs a log group for vpc_flow_logs too"):
        seed.metric_filters({"cloudtrail": "G"})
    with pytest.raises(PackError, match="has no filter for a vpc_flow_logs log group"):
        cis.metric_filters({"cloudtrail": "G", "vpc_flow_logs": "V"})


# --- the packs on the bundled samples --------------------------------------------------------

CLOUDTRAIL = read_sample_lines("cloudtrail")  # 40 records, record N's eventID ends in N
VPC = read_sample_lines("vpc-flow")  # 55 records, default version 2 format
VPC_CUSTOM = read_sample_lines("vpc-flow-custom")  # 22 records, the 21-field format of the samples' README


def test_cis_on_the_cloudtrail_sample():
    matched, published = evaluate(get_pack("cis").metric_filters("CloudTrail/DefaultLogGroup"), CLOUDTRAIL)
    assert matched == {
        # errorCode ending in UnauthorizedOperation or starting with AccessDenied: 21 (AccessDenied,
        # GetObject), 22 (AccessDenied, HeadBucket), 23 (Client.UnauthorizedOperation), 38
        # (AccessDeniedException), 39 (AccessDenied from delivery.logs); 37's RequestLimitExceeded is not
        "CIS-UnauthorizedAPICalls": 5,
        # ConsoleLogin, MFAUsed not Yes, an IAMUser, Success: 1 (alice) only; 3 and 4 failed, 5 and 6
        # are root, 7 a federated role, 2 used MFA
        "CIS-NoMFAConsoleSignin": 1,
        # type Root without invokedBy, not an AwsServiceEvent: 5, 6 (root sign-ins), 8 (root
        # DescribeInstances); 9 is invokedBy support.amazonaws.com, 10 an AwsServiceEvent
        "CIS-RootUsage": 3,
        # 32 PutRolePolicy, 33 AttachRolePolicy, 34 CreatePolicyVersion (40's CreateLoginProfile is not one)
        "CIS-IAMChanges": 3,
        "CIS-CloudTrailCfgChanges": 2,  # 25 StopLogging, 26 UpdateTrail (27's LookupEvents is not one)
        "CIS-ConsoleSigninFailures": 1,  # 3 "Failed authentication"; 4's message is "No username found ..."
        # 28 DisableKey, 29 ScheduleKeyDeletion (30 Decrypt and 38 GenerateDataKey are not)
        "CIS-DisableOrDeleteCMK": 2,
        "CIS-S3BucketPolicyChanges": 2,  # 19 PutBucketPolicy, 20 DeleteBucketPolicy
        "CIS-AWSConfigChanges": 1,  # 31 StopConfigurationRecorder
        # 11 AuthorizeSecurityGroupIngress, 12 RevokeSecurityGroupEgress, 13 CreateSecurityGroup (14's Describe is not)
        "CIS-SecurityGroupChanges": 3,
        "CIS-NACLChanges": 1,  # 15 CreateNetworkAclEntry
        "CIS-NetworkGWChanges": 1,  # 17 AttachInternetGateway
        "CIS-RouteTableChanges": 1,  # 16 CreateRoute
        "CIS-VPCChanges": 1,  # 18 CreateVpc
        "CIS-OrganizationsChanges": 1,  # 36 CreateAccount from organizations.amazonaws.com
    }
    # every filter publishes 1 per match, no dimension
    assert {metric: v for (metric, dims), v in published.items()} == {
        "UnauthorizedAPICalls": [5, 5.0], "NoMFAConsoleSignin": [1, 1.0], "RootUsage": [3, 3.0],
        "IAMChanges": [3, 3.0], "CloudTrailCfgChanges": [2, 2.0], "ConsoleSigninFailures": [1, 1.0],
        "DisableOrDeleteCMK": [2, 2.0], "S3BucketPolicyChanges": [2, 2.0], "AWSConfigChanges": [1, 1.0],
        "SecurityGroupChanges": [3, 3.0], "NACLChanges": [1, 1.0], "NetworkGWChanges": [1, 1.0],
        "RouteTableChanges": [1, 1.0], "VPCChanges": [1, 1.0], "OrganizationsChanges": [1, 1.0],
    }


def test_cis_variants_on_the_cloudtrail_sample():
    cis = get_pack("cis")
    def count(key: str, variant: str) -> int:
        (f,) = [f for f in cis.metric_filters("G", {key: variant}) if f.filter_name == cis.filter(key)
                .metric_filter.filter_name]
        return evaluate([f], CLOUDTRAIL)[0][f.filter_name]
    # CIS v1.4: "|| eventName != HeadBucket" holds for the 39 records that are not a HeadBucket,
    # and 22 (the HeadBucket) has an AccessDenied: all 40
    assert count("unauthorized-api-calls", "cis-v1.4") == 40
    # CIS v5.0 (*UnauthorizedOperation || (AccessDenied* && not delivery.logs && not HeadBucket)):
    # 23, and 21 and 38 (22 is a HeadBucket, 39 from delivery.logs.amazonaws.com)
    assert count("unauthorized-api-calls", "cis-v5.0") == 3
    # nozaq (both codes, then the exclusions): 21, 23, 38 too; the handmade events below tell them apart
    assert count("unauthorized-api-calls", "nozaq") == 3
    # basic: every ConsoleLogin without MFAUsed = Yes: 1, 3, 4, 6, 7 (2 and 5 used MFA)
    assert count("no-mfa-console-signin", "basic") == 5
    assert count("security-group-changes", "cis-v5.0") == 3  # no ModifySecurityGroupRules in the sample
    assert count("route-table-changes", "cis-v5.0") == 1  # 16, an ec2 CreateRoute
    assert count("route-table-changes", "prowler") == 1
    assert count("organizations-changes", "prowler") == 1  # 36; no CreateOrganization in the sample


def test_console_activity_on_the_cloudtrail_sample():
    matched, published = evaluate(get_pack("console-activity").metric_filters("CloudTrail/DefaultLogGroup"),
                                  CLOUDTRAIL)
    # sign-ins: the 7 ConsoleLogin records 1-7 match; 4 (unknown user name) has no userIdentity.arn,
    # so it publishes nothing (a dimension needs a value, §8.3)
    # API calls: AwsApiCall records of an IAMUser: alice 11 12 15 16 17 18 25 26 28 29 31 32 33 34 36
    # 40, bob 13 14 19 20 24 27 35 37, carol 21 22 23 (30 and 38 are a role, 39 a service, 8-10 root;
    # 1-4 are AwsConsoleSignIn records)
    assert matched == {"ConsoleSignInsPerUser": 7, "APICallsPerIAMUser": 27}
    arn = "arn:aws:iam::111122223333:"
    assert published == {
        ("ConsoleSignIns", (("UserArn", arn + "user/alice"),)): [2, 2.0],  # 1, 3
        ("ConsoleSignIns", (("UserArn", arn + "user/bob"),)): [1, 1.0],  # 2
        ("ConsoleSignIns", (("UserArn", arn + "root"),)): [2, 2.0],  # 5, 6
        ("ConsoleSignIns", (("UserArn", "arn:aws:sts::111122223333:assumed-role/ExampleAdminRole/carol@example.com"),)):
            [1, 1.0],  # 7
        ("IAMUserAPICalls", (("UserName", "alice"),)): [16, 16.0],
        ("IAMUserAPICalls", (("UserName", "bob"),)): [8, 8.0],
        ("IAMUserAPICalls", (("UserName", "carol"),)): [3, 3.0],
    }


def test_vpc_flow_logs_on_the_vpc_sample():
    matched, published = evaluate(get_pack("vpc-flow-logs").metric_filters("vpc-flow-logs"), VPC)
    # REJECT (13th field): 2 6 10 11 13 14 15 18 24 25 27 29 32 34 36 40 41 42 43 49 50 52 53; the NODATA
    # and SKIPDATA records (3 4 12 17 35 38 45 54) have '-' there
    # SSH (destport 22, protocol 6) among them: 11 14 15 24 25 27 29 32 34 36 41 42 43 49 50 (1 7 23 28 accepted)
    # RDP (destport 3389, protocol 6): 2 18 53
    assert matched == {"VPCRejectedRequests": 23, "VPCRejectedBytes": 23, "VPCRejectedSSH": 15, "VPCRejectedRDP": 3}
    assert published == {
        ("VPCFlowLogsRejectCount", ()): [23, 23.0],
        # the bytes (10th field) of those 23: 4249 + 336 + 1680 + 60 + 336 + 60 + 180 + 44 + 60 + 60 + 180 + 180
        # + 60 + 120 + 120 + 336 + 180 + 120 + 180 + 60 + 180 + 336 + 44
        ("VPCFlowLogsRejectedBytes", ()): [23, 9161.0],
        ("VPCFlowLogsRejectedSSH", ()): [15, 15.0],
        ("VPCFlowLogsRejectedRDP", ()): [3, 3.0],
    }


#: The vpc-flow-logs patterns adapted to the custom format of ``vpc-flow-custom`` (README, Packs):
#: one name per field of the format, in its order, the conditions on action, dstport and protocol.
CUSTOM_FIELDS = ("version, vpc_id, subnet_id, instance_id, interface_id, account_id, type, srcaddr, dstaddr, srcport, "
                 "dstport{dstport}, pkt_srcaddr, pkt_dstaddr, protocol{protocol}, bytes, packets, start, end, "
                 'action="REJECT", tcp_flags, log_status')
CUSTOM_PATTERNS = {
    "VPCRejectedRequests": "[" + CUSTOM_FIELDS.format(dstport="", protocol="") + "]",
    "VPCRejectedBytes": "[" + CUSTOM_FIELDS.format(dstport="", protocol="") + "]",
    "VPCRejectedSSH": "[" + CUSTOM_FIELDS.format(dstport='="22"', protocol='="6"') + "]",
    "VPCRejectedRDP": "[" + CUSTOM_FIELDS.format(dstport='="3389"', protocol='="6"') + "]",
}


def test_vpc_flow_logs_on_a_custom_format_needs_its_patterns_adapted():
    pack = get_pack("vpc-flow-logs").metric_filters("vpc-flow-logs")
    # as shipped (default format), the 13th field of these 21-field records is pkt-dstaddr, never REJECT
    matched, published = evaluate(pack, VPC_CUSTOM)
    assert matched == dict.fromkeys(CUSTOM_PATTERNS, 0) and published == {}
    adapted = [msgspec.structs.replace(f, filter_pattern=CUSTOM_PATTERNS[f.filter_name]) for f in pack]
    matched, published = evaluate(adapted, VPC_CUSTOM)
    # REJECT (19th field): 9 12 15 21, all SSH (dstport 22, protocol 6); 13 and 18 are NODATA ('-')
    assert matched == {"VPCRejectedRequests": 4, "VPCRejectedBytes": 4, "VPCRejectedSSH": 4, "VPCRejectedRDP": 0}
    # bytes is the 15th field in this format (before packets): 64 + 1344 + 448 + 128
    assert published[("VPCFlowLogsRejectedBytes", ())] == [4, 1984.0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert CUSTOM_PATTERNS["VPCRejectedSSH"] in readme


def test_seed_dashboard_on_both_samples():
    filters = get_pack("seed-dashboard").metric_filters(
        {"cloudtrail": "CloudTrail/DefaultLogGroup", "vpc_flow_logs": "vpc-flow-logs"})
    by_group = defaultdict(list)
    for f in filters:
        by_group[f.log_group_name].append(f)
    vpc_matched, vpc_published = evaluate(by_group["vpc-flow-logs"], VPC)
    trail_matched, trail_published = evaluate(by_group["CloudTrail/DefaultLogGroup"], CLOUDTRAIL)
    # the same lines as in the tests of the packs they come from: 23 rejects; 7 sign-ins (6 with
    # a user ARN); security-group changes 11, 12, 13
    assert vpc_matched == {"VPCRejectedRequests": 23}
    assert trail_matched == {"ConsoleSignInsPerUser": 7, "CIS-SecurityGroupChanges": 3}
    assert vpc_published == {("VPCFlowLogsRejectCount", ()): [23, 23.0]}
    assert sum(n for (metric, _), (n, _) in trail_published.items() if metric == "ConsoleSignIns") == 6
    assert trail_published[("SecurityGroupChanges", ())] == [3, 3.0]


# --- what each documented variant counts, on handmade events ---------------------------------


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {"eventName": name, "eventTime": "2024-03-05T09:00:30Z", **fields}


def test_unauthorized_api_calls_variants():
    f = get_pack("cis").filter("unauthorized-api-calls")
    internet, delivery = "198.51.100.40", "delivery.logs.amazonaws.com"
    denied, unauthorized = "AccessDenied", "Client.UnauthorizedOperation"
    events = {
        "denied": event("GetObject", errorCode=denied, sourceIPAddress=internet),
        "unauthorized": event("RunInstances", errorCode=unauthorized, sourceIPAddress=internet),
        "denied-headbucket": event("HeadBucket", errorCode=denied, sourceIPAddress=internet),
        "denied-log-delivery": event("GetBucketAcl", errorCode=denied, sourceIPAddress=delivery),
        "unauthorized-headbucket": event("HeadBucket", errorCode=unauthorized, sourceIPAddress=internet),
        "unauthorized-log-delivery": event("RunInstances", errorCode=unauthorized, sourceIPAddress=delivery),
        "denied-no-ip": event("GetObject", errorCode=denied),  # != never holds on a missing field (§5.4)
        "ok": event("ListBuckets", sourceIPAddress=internet),
        "ok-headbucket": event("HeadBucket", sourceIPAddress=internet),
        "ok-log-delivery-headbucket": event("HeadBucket", sourceIPAddress=delivery),
    }
    errors = {"denied", "unauthorized", "denied-headbucket", "denied-log-delivery", "unauthorized-headbucket",
              "unauthorized-log-delivery", "denied-no-ip"}
    # Security Hub's text: every error of the two kinds, whatever it came from
    assert matching(f.variants["security-hub"].filter_pattern, events) == errors
    # CIS v1.4 to v3.0, "||" exclusions: any event that is not from the log delivery service, or
    # not a HeadBucket; only a HeadBucket from delivery.logs without an error escapes
    assert matching(f.variants["cis-v1.4"].filter_pattern, events) == set(events) - {"ok-log-delivery-headbucket"}
    # CIS v5.0, "&&" exclusions without parentheses: && binds tighter (§5.1), so they apply to
    # AccessDenied* only; every *UnauthorizedOperation counts
    assert matching(f.variants["cis-v5.0"].filter_pattern, events) == {
        "denied", "unauthorized", "unauthorized-headbucket", "unauthorized-log-delivery"}
    # nozaq: the exclusions over both codes
    assert matching(f.variants["nozaq"].filter_pattern, events) == {"denied", "unauthorized"}


def test_no_mfa_console_signin_variants():
    f = get_pack("cis").filter("no-mfa-console-signin")
    def signin(kind: str, mfa: str | None, result: str) -> dict:
        return event("ConsoleLogin", userIdentity={"type": kind}, responseElements={"ConsoleLogin": result},
                     **({"additionalEventData": {"MFAUsed": mfa}} if mfa else {}))
    events = {
        "user-no-mfa": signin("IAMUser", "No", "Success"),
        "user-mfa": signin("IAMUser", "Yes", "Success"),
        "user-no-mfa-failed": signin("IAMUser", "No", "Failure"),
        "root-no-mfa": signin("Root", "No", "Success"),
        "sso-federated": signin("AssumedRole", "No", "Success"),  # MFA happens at the identity provider
        "user-mfa-not-recorded": signin("IAMUser", None, "Success"),  # != never holds on a missing field (§5.4)
    }
    assert matching(f.variants["security-hub"].filter_pattern, events) == {"user-no-mfa"}
    assert matching(f.variants["basic"].filter_pattern, events) == {
        "user-no-mfa", "user-no-mfa-failed", "root-no-mfa", "sso-federated"}


def test_security_group_changes_variants():
    f = get_pack("cis").filter("security-group-changes")
    events = {"authorize": event("AuthorizeSecurityGroupIngress"), "modify": event("ModifySecurityGroupRules"),
              "describe": event("DescribeSecurityGroups")}
    assert matching(f.variants["security-hub"].filter_pattern, events) == {"authorize"}
    assert matching(f.variants["cis-v5.0"].filter_pattern, events) == {"authorize", "modify"}


def test_route_table_changes_variants():
    f = get_pack("cis").filter("route-table-changes")
    events = {
        "ec2-create": event("CreateRoute", eventSource="ec2.amazonaws.com"),
        "ec2-delete": event("DeleteRoute", eventSource="ec2.amazonaws.com"),
        "apigateway-create": event("CreateRoute", eventSource="apigateway.amazonaws.com"),
        "apigateway-delete": event("DeleteRoute", eventSource="apigateway.amazonaws.com"),
    }
    assert matching(f.variants["security-hub"].filter_pattern, events) == set(events)
    # CIS v3.0/v5.0 audit text: "ec2 && CreateRoute || ... || DeleteRoute ..." restricts CreateRoute only
    assert matching(f.variants["cis-v5.0"].filter_pattern, events) == {"ec2-create", "ec2-delete", "apigateway-delete"}
    assert matching(f.variants["prowler"].filter_pattern, events) == {"ec2-create", "ec2-delete"}


def test_organizations_changes_variants():
    f = get_pack("cis").filter("organizations-changes")
    org = "organizations.amazonaws.com"
    events = {
        "create-account": event("CreateAccount", eventSource=org),
        "create-organization": event("CreateOrganization", eventSource=org),
        "cancel-handshake": event("CancelHandshake", eventSource=org),
        "enable-all-features": event("EnableAllFeatures", eventSource=org),
        "iam-create-policy": event("CreatePolicy", eventSource="iam.amazonaws.com"),  # an IAM policy, not an SCP
    }
    assert matching(f.variants["cis-v1.4"].filter_pattern, events) == {"create-account"}
    assert matching(f.variants["prowler"].filter_pattern, events) == {
        "create-account", "create-organization", "cancel-handshake", "enable-all-features"}
