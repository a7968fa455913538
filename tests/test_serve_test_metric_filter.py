"""``castlewatch serve`` answering TestMetricFilter to a real botocore client (spec §7): every
conformance case of ``tests/conformance/cases.jsonl``, the response shape, the request
limits and the errors, over HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from serve_helpers import ServeThread, logs_client

import castlewatch

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "conformance" / "cases.jsonl").read_text(encoding="utf-8").split("\n")
    if line
]
PATTERN_CASES = [c for c in CASES if not (c.get("invalid") and "transform" in c)]
FAMILIES: dict[str, list[dict]] = defaultdict(list)
for _case in sorted((c for c in CASES if "event_number" in c), key=lambda c: c["event_number"]):
    FAMILIES[_case["id"].rsplit("-", 1)[0]].append(_case)


@pytest.fixture(scope="module")
def server():
    with ServeThread() as serving:
        yield serving


@pytest.fixture(scope="module")
def logs(server):
    return logs_client(server.url)


@pytest.fixture(scope="module")
def raw_logs(server):
    """A client that does not check its parameters: invalid requests reach the server."""
    return logs_client(server.url, validate=False)


def _error(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("case", PATTERN_CASES, ids=[c["id"] for c in PATTERN_CASES])
def test_every_conformance_case_through_the_sdk(logs, case):
    """The case's expectation, as the README of the cases states it, from the wire."""
    if case.get("invalid"):
        code, message, status = _error(logs.test_metric_filter, filterPattern=case["pattern"],
                                       logEventMessages=[case["event"]])
        with pytest.raises(castlewatch.FilterPatternError) as local:
            castlewatch.compile_pattern(case["pattern"])
        assert (code, message, status) == ("InvalidParameterException", local.value.message, 400)
        return
    if "event_number" in case:
        family = FAMILIES[case["id"].rsplit("-", 1)[0]]
        response = logs.test_metric_filter(filterPattern=case["pattern"], logEventMessages=[c["event"] for c in family])
        found = [m for m in response["matches"] if m["eventNumber"] == case["event_number"]]
    else:
        response = logs.test_metric_filter(filterPattern=case["pattern"], logEventMessages=[case["event"]])
        found = response["matches"]
    assert bool(found) == case["match"], (case["id"], response["matches"])
    if found:
        assert found[0]["eventMessage"] == case["event"]
        if case["extracted"] is not None:
            assert found[0]["extractedValues"] == case["extracted"]


def test_the_answer_is_castlewatchs_own_to_the_byte(server):
    """The body is castlewatch.test_metric_filter's answer, in the API's shape, with the
    AWS JSON 1.1 content type and a request id."""
    messages = ["127.0.0.1 - frank 404 1534", "127.0.0.1 - jane 200 0", "no fields"]
    pattern = "[ip, id, user, status=4*, size]"
    request = urllib.request.Request(
        server.url + "/",
        data=json.dumps({"filterPattern": pattern, "logEventMessages": messages}).encode(),
        headers={"X-Amz-Target": "Logs_20140328.TestMetricFilter", "Content-Type": "application/x-amz-json-1.1"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = json.loads(answer.read())
        assert answer.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert answer.headers["x-amzn-RequestId"]
    assert body == castlewatch.test_metric_filter(pattern, messages)
    assert body == {"matches": [{"eventNumber": 1, "eventMessage": messages[0], "extractedValues": {
        "$ip": "127.0.0.1", "$id": "-", "$user": "frank", "$status": "404", "$size": "1534"}}]}


def test_fifty_messages_are_numbered_from_one(logs):
    response = logs.test_metric_filter(filterPattern="x", logEventMessages=["x"] * 50)
    assert [m["eventNumber"] for m in response["matches"]] == list(range(1, 51))


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (["x"] * 51, "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: "
                     "Member must have length less than or equal to 50"),
        ([], "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: "
             "Member must have length greater than or equal to 1"),
        (["a", ""], "1 validation error detected: Value at 'logEventMessages.2.member' failed to satisfy "
                    "constraint: Member must have length greater than or equal to 1"),
    ],
    ids=["fifty-one", "none", "empty-message"],
)
def test_request_limits_answer_the_services_error(raw_logs, messages, expected):
    assert _error(raw_logs.test_metric_filter, filterPattern="x", logEventMessages=messages) == (
        "InvalidParameterException", expected, 400)


def test_a_pattern_over_1024_characters_is_the_services_validation_error(raw_logs):
    assert _error(raw_logs.test_metric_filter, filterPattern="a" * 1025, logEventMessages=["a"]) == (
        "InvalidParameterException",
        "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024",
        400,
    )
    assert logs_ok(raw_logs, "a" * 1024)


def logs_ok(client, pattern: str) -> bool:
    return client.test_metric_filter(filterPattern=pattern, logEventMessages=["b"])["matches"] == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{ $.v IS NOT NULL }", "Invalid character(s) in term 'NOT'"),
        ("{ $.v == 1 }", "Invalid metric filter pattern"),
        ("{ $.items[*].* = 1 }", "Your filter pattern has a JSON path selector that exceeds the maximum of 1 "
                                 "wildcard allowed per json selector."),
    ],
)
def test_invalid_patterns_answer_the_recorded_messages(logs, pattern, message):
    """§11, [rec R-F]: TestMetricFilter's own wording of each refusal."""
    assert _error(logs.test_metric_filter, filterPattern=pattern, logEventMessages=["{}"]) == (
        "InvalidParameterException", message, 400)


def test_missing_and_mistyped_members(server):
    """A required member absent: the service's "must not be null"; a member of the wrong
    JSON type cannot be deserialised (SerializationException)."""
    def post(body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            server.url + "/", data=json.dumps(body).encode(),
            headers={"X-Amz-Target": "Logs_20140328.TestMetricFilter", "Content-Type": "application/x-amz-json-1.1"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    assert post({"logEventMessages": ["a"]}) == (400, {
        "__type": "InvalidParameterException",
        "message": "1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: "
                   "Member must not be null"})
    status, body = post({"filterPattern": "x", "logEventMessages": "a"})
    assert (status, body["__type"]) == (400, "com.amazon.coral.service#SerializationException")
    assert "'logEventMessages' must be a list, not a string" in body["message"]
    status, body = post({"filterPattern": 7, "logEventMessages": ["a"]})
    assert (status, body["__type"]) == (400, "com.amazon.coral.service#SerializationException")
    status, body = post({"filterPattern": "x", "logEventMessages": ["a", None]})
    assert (status, body["__type"]) == (400, "com.amazon.coral.service#SerializationException")
    assert post({"filterPattern": "x", "logEventMessages": ["x"], "unknownMember": 1}) == (200, {"matches": [
        {"eventNumber": 1, "eventMessage": "x", "extractedValues": {}}]})


def test_other_operations_without_an_upstream_are_unknown(logs):
    """Without --upstream, castlewatch answers TestMetricFilter only; the others are the
    service's unknown operation, saying why."""
    code, message, status = _error(logs.describe_log_groups)
    assert (code, status) == ("UnknownOperationException", 400)
    assert "Logs_20140328.DescribeLogGroups" in message and "TestMetricFilter" in message
    code, message, _ = _error(logs.filter_log_events, logGroupName="g", filterPattern="x")
    assert code == "UnknownOperationException" and "--upstream" in message
