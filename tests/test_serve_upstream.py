"""``castlewatch serve --upstream`` in front of a real moto server, used through real botocore
clients: log groups and events created through castlewatch; FilterLogEvents with JSON,
space-delimited, term and regex patterns returning exactly what castlewatch's matcher
selects, across castlewatch's pages and the upstream's; PutMetricFilter and
PutSubscriptionFilter refused as AWS refuses them; every other call as moto alone answers it."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from serve_helpers import ServeThread, logs_client

import castlewatch
from castlewatch.endpoint.limits import FILTER_PAGE_BYTES

GROUP = "app/events"
BASE_MS = (int(time.time()) - 3600) * 1000  # moto, as AWS, refuses events older than 14 days


def _messages() -> list[tuple[str, str]]:
    """(stream, message) of the events put: JSON, space-delimited and plain text, mixed."""
    out = []
    for i in range(40):
        stream = "web-1" if i % 3 else "web-2"
        if i % 4 == 0:
            level = "ERROR" if i % 8 == 0 else "INFO"
            out.append((stream, json.dumps({"level": level, "latency": i * 10, "user": {"id": f"u{i % 5}"}})))
        elif i % 4 == 1:
            out.append((stream, f"10.0.0.{i} user{i % 3} {500 + i % 4 if i % 2 else 200} {i * 100}"))
        elif i % 4 == 2:
            out.append((stream, f"ERROR request {i} failed" + (" with timeout" if i % 5 == 0 else "")))
        else:
            out.append((stream, f"WARN ERR{i} slow request {i}"))
    return out


PATTERNS = [
    '{ $.level = "ERROR" && $.latency > 100 }',
    "{ $.user.id = u1 || $.user.id = u3 }",
    "[ip, user, status=5*, bytes]",
    "[ip, user=user1, status, bytes > 1000]",
    "ERROR -timeout",
    '?"slow request" ?timeout',
    "%ERR[0-9]+%",
    "",
]


@pytest.fixture
def serving(moto):
    """castlewatch serve in front of the (emptied) moto server, with small upstream pages
    (7 events) and at most 3 upstream pages per call, so that castlewatch's pages and the
    upstream's fall differently."""
    with ServeThread(upstream=moto, upstream_page_size=7, upstream_pages_per_call=3) as server:
        yield server


@pytest.fixture
def logs(serving):
    return logs_client(serving.url)


@pytest.fixture
def moto_logs(moto):
    """A client of moto itself (what moto alone answers)."""
    return logs_client(moto)


@pytest.fixture
def events(logs):
    """The events, put through castlewatch serve (forwarded to moto)."""
    logs.create_log_group(logGroupName=GROUP)
    for stream in ("web-1", "web-2"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    messages = _messages()
    for stream in ("web-1", "web-2"):
        batch = [{"timestamp": BASE_MS + i * 1000, "message": m} for i, (s, m) in enumerate(messages) if s == stream]
        logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=batch)
    return messages


def _all_pages(client, **kwargs) -> tuple[list[dict], list[dict]]:
    """Every event of a FilterLogEvents query, following nextToken; and every page."""
    pages, events, token = [], [], None
    for _ in range(200):
        page = client.filter_log_events(**kwargs, **({"nextToken": token} if token else {}))
        pages.append(page)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events, pages
    raise AssertionError("FilterLogEvents never ended")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_filter_log_events_selects_exactly_what_castlewatch_matches(logs, moto_logs, events, pattern):
    """The events of moto's unfiltered answer that castlewatch's matcher selects, in the
    upstream's order, whatever the pages (castlewatch's, with and without a limit, over the
    upstream's pages of 7 events); searchedLogStreams is [] as the service has it."""
    everything, _ = _all_pages(moto_logs, logGroupName=GROUP)
    assert len(everything) == len(events)
    matcher = castlewatch.compile_pattern(pattern)
    expected = [e["eventId"] for e in everything if matcher.matches(e["message"])]
    assert expected, "every pattern selects some events"
    for limit in (None, 3, 1):
        got, pages = _all_pages(logs, logGroupName=GROUP, filterPattern=pattern, **({"limit": limit} if limit else {}))
        assert [e["eventId"] for e in got] == expected, limit
        assert got == [e for e in everything if e["eventId"] in set(expected)]  # the upstream's events, unchanged
        assert all(p["searchedLogStreams"] == [] for p in pages)
        if limit:
            assert all(len(p["events"]) <= limit for p in pages)
            assert len(pages) >= len(expected) / limit


def test_moto_alone_returns_every_event_for_a_json_pattern(moto_logs, events):
    """Why castlewatch stands in front: moto ignores JSON and space-delimited patterns."""
    alone, _ = _all_pages(moto_logs, logGroupName=GROUP, filterPattern=PATTERNS[0])
    exact = [m for _, m in events if castlewatch.compile_pattern(PATTERNS[0]).matches(m)]
    assert len(alone) == len(events) > len(exact)


def test_time_range_and_streams_are_the_upstreams(logs, moto_logs, events):
    """The request's other members reach the upstream unchanged."""
    query = dict(logGroupName=GROUP, logStreamNames=["web-1"], startTime=BASE_MS + 5000, endTime=BASE_MS + 30_000)
    base, _ = _all_pages(moto_logs, **query)
    got, _ = _all_pages(logs, filterPattern="ERROR", **query)
    assert [e["eventId"] for e in got] == [e["eventId"] for e in base if "ERROR" in e["message"]]
    assert {e["logStreamName"] for e in got} == {"web-1"}


def test_without_a_pattern_filter_log_events_is_moto_alone(logs, moto_logs, events):
    assert _strip(logs.filter_log_events(logGroupName=GROUP, limit=5)) == _strip(
        moto_logs.filter_log_events(logGroupName=GROUP, limit=5))


def test_a_page_holds_at_most_one_megabyte(moto):
    """API_FilterLogEvents: up to 1 MB of log events a page; the next page has the rest."""
    with ServeThread(upstream=moto) as server:
        logs = logs_client(server.url)
        logs.create_log_group(logGroupName="big")
        logs.create_log_stream(logGroupName="big", logStreamName="s")
        for start in (0, 6):
            logs.put_log_events(logGroupName="big", logStreamName="s", logEvents=[
                {"timestamp": BASE_MS + i, "message": f"event {i} " + "x" * 100_000} for i in range(start, start + 6)])
        bodies: list[bytes] = []
        logs.meta.events.register("after-call.logs.FilterLogEvents",
                                  lambda http_response, **_: bodies.append(http_response.content))
        first = logs.filter_log_events(logGroupName="big", filterPattern="event")
        assert len(bodies[0]) <= FILTER_PAGE_BYTES
        assert len(first["events"]) == 10 and first["nextToken"]
        rest = logs.filter_log_events(logGroupName="big", filterPattern="event", nextToken=first["nextToken"])
        assert [e["message"][:8] for e in rest["events"]] == ["event 10", "event 11"]
        assert "nextToken" not in rest


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{ $.v == 1 }", "Invalid filter pattern"),
        ("{ $.v IS NOT NULL }", "Invalid character(s) in term 'NOT'"),
        ("{ $.items[*].* = 1 }", "Your filter pattern has a JSON path selector that exceeds the maximum of 1 "
                                 "wildcard allowed per json selector."),
    ],
)
def test_invalid_patterns_have_filter_log_events_wording(logs, events, pattern, message):
    """[rec R-F]: FilterLogEvents says "Invalid filter pattern" where TestMetricFilter says
    "Invalid metric filter pattern"; the other messages are the same."""
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
    assert (info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]) == (
        "InvalidParameterException", message)


def test_limits_and_tokens_are_checked(serving, logs, events):
    raw = logs_client(serving.url, validate=False)
    for limit, constraint in ((0, "greater than or equal to 1"), (10_001, "less than or equal to 10000")):
        with pytest.raises(ClientError) as info:
            raw.filter_log_events(logGroupName=GROUP, filterPattern="ERROR", limit=limit)
        assert info.value.response["Error"]["Message"] == ("1 validation error detected: Value at 'limit' failed to "
                                                           f"satisfy constraint: Member must have value {constraint}")
    first = logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR", limit=2)
    for token, pattern in (("not-a-token", "ERROR"), (first["nextToken"], "WARN"), (first["nextToken"][:-3], "ERROR")):
        with pytest.raises(ClientError) as info:
            logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern, nextToken=token)
        assert info.value.response["Error"]["Message"] == "The specified nextToken is invalid."
    # a token stays good with another limit
    assert logs.filter_log_events(logGroupName=GROUP, filterPattern="ERROR", nextToken=first["nextToken"], limit=1)


def test_upstream_errors_come_back_as_moto_gives_them(logs, moto_logs):
    for client in (logs, moto_logs):
        with pytest.raises(ClientError) as info:
            client.filter_log_events(logGroupName="no/such/group", filterPattern="{ $.a = 1 }")
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_other_calls_behave_as_moto_alone(serving, logs, moto_logs, events):
    """Forwarded unchanged: the same answers, the same errors, the same raw status and body."""
    for call, kwargs in [
        ("describe_log_groups", {}),
        ("describe_log_streams", {"logGroupName": GROUP}),
        ("get_log_events", {"logGroupName": GROUP, "logStreamName": "web-1", "limit": 4}),
    ]:
        assert _strip(getattr(logs, call)(**kwargs)) == _strip(getattr(moto_logs, call)(**kwargs)), call
    errors = []
    for client in (logs, moto_logs):
        with pytest.raises(ClientError) as info:
            client.create_log_group(logGroupName=GROUP)
        errors.append((info.value.response["Error"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert errors[0] == errors[1] and errors[0][0]["Code"] == "ResourceAlreadyExistsException"
    answers = []
    for url in (serving.url, moto_logs.meta.endpoint_url):
        request = urllib.request.Request(url + "/", data=b"{}", headers={
            "X-Amz-Target": "Logs_20140328.NoSuchOperation", "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answers.append((answer.status, answer.read()))
        except urllib.error.HTTPError as error:
            answers.append((error.code, error.read()))
    assert answers[0] == answers[1]
    assert any("NoSuchOperation -> upstream" in line for line in serving.lines)


# ---- PutMetricFilter, PutSubscriptionFilter ----------------------------------------------------

TRANSFORM = {"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}


def _put_error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("pattern", "transformation", "message"),
    [
        ("{ $.level = }", TRANSFORM, "Invalid metric filter pattern"),
        ("ERROR", {**TRANSFORM, "dimensions": {"User": "$.user"}},
         "The specified filter pattern does not support dimensions"),
        ("{ $.level = ERROR }", {**TRANSFORM, "metricValue": "$.items[*].v"},
         "Invalid metric transformation: metric value $.items[*].v must be a valid number"),
        ("{ $.level = ERROR }", {**TRANSFORM, "defaultValue": 0, "dimensions": {"User": "$.user"}},
         "Invalid metric transformation: dimensions and default value are mutually exclusive properties"),
    ],
    ids=["pattern", "dimensions-on-terms", "metric-value", "default-with-dimensions"],
)
def test_put_metric_filter_refuses_what_aws_refuses(logs, moto_logs, events, pattern, transformation, message):
    """§8.2: refused with the service's error; nothing reaches moto (which would accept it)."""
    assert _put_error(logs.put_metric_filter, logGroupName=GROUP, filterName="f", filterPattern=pattern,
                      metricTransformations=[transformation]) == ("InvalidParameterException", message)
    assert moto_logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"] == []
    moto_logs.put_metric_filter(logGroupName=GROUP, filterName="f", filterPattern=pattern,
                                metricTransformations=[transformation])  # moto alone takes it


INVALID_TRANSFORM_CASES = [
    case
    for case in map(json.loads, filter(None, (Path(__file__).parent / "conformance" / "cases.jsonl").read_text(
        encoding="utf-8").split("\n")))
    if case.get("invalid") and "transform" in case
]


@pytest.mark.parametrize("case", INVALID_TRANSFORM_CASES, ids=[c["id"] for c in INVALID_TRANSFORM_CASES])
def test_conformance_cases_with_an_invalid_transformation_through_put_metric_filter(logs, events, case):
    """The conformance cases TestMetricFilter cannot check (it takes no transformation)."""
    code, _ = _put_error(logs.put_metric_filter, logGroupName=GROUP, filterName="case", filterPattern=case["pattern"],
                         metricTransformations=[case["transform"]])
    assert code == "InvalidParameterException"


def test_valid_metric_filters_reach_moto(logs, moto_logs, events):
    logs.put_metric_filter(logGroupName=GROUP, filterName="errors", filterPattern='{ $.level = "ERROR" }',
                           metricTransformations=[{**TRANSFORM, "dimensions": {"User": "$.user.id"}}])
    filters = moto_logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in filters] == [("errors", '{ $.level = "ERROR" }')]


def test_regex_quota_counts_the_upstreams_metric_and_subscription_filters(logs, events):
    """§1: at most 5 filters with a regex per log group, subscription filters counted too;
    the sixth is LimitExceededException; replacing one at the limit is allowed."""
    logs.create_log_group(logGroupName="dest")
    destination = "arn:aws:logs:us-east-1:123456789012:log-group:dest:*"
    logs.put_subscription_filter(logGroupName=GROUP, filterName="sub", filterPattern="%ERR[0-9]+%",
                                 destinationArn=destination)
    for i in range(4):
        logs.put_metric_filter(logGroupName=GROUP, filterName=f"rx{i}", filterPattern=f"%ERR{i}%",
                               metricTransformations=[TRANSFORM])
    assert _put_error(logs.put_metric_filter, logGroupName=GROUP, filterName="rx4", filterPattern="%ERR4%",
                      metricTransformations=[TRANSFORM]) == ("LimitExceededException", "Resource limit exceeded.")
    logs.put_metric_filter(logGroupName=GROUP, filterName="rx3", filterPattern="%ERR33%",
                           metricTransformations=[TRANSFORM])  # a replacement
    logs.put_metric_filter(logGroupName=GROUP, filterName="plain", filterPattern="ERROR",
                           metricTransformations=[TRANSFORM])  # no regex: not counted


def test_subscription_filters_are_validated_and_counted(logs, moto_logs, events):
    logs.create_log_group(logGroupName="dest")
    destination = "arn:aws:logs:us-east-1:123456789012:log-group:dest:*"
    assert _put_error(logs.put_subscription_filter, logGroupName=GROUP, filterName="s", filterPattern="[a, b=",
                      destinationArn=destination) == ("InvalidParameterException", "Invalid metric filter pattern")
    assert _put_error(logs.put_subscription_filter, logGroupName=GROUP, filterName="s", filterPattern="",
                      destinationArn="arn:aws:kinesis:us-east-1:123456789012:stream/s") == (
        "InvalidParameterException", "destinationArn for vendor kinesis cannot be used without roleArn")
    assert moto_logs.describe_subscription_filters(logGroupName=GROUP)["subscriptionFilters"] == []
    for name in ("one", "two"):
        logs.put_subscription_filter(logGroupName=GROUP, filterName=name, filterPattern="{ $.level = ERROR }",
                                     destinationArn=destination)
    assert _put_error(logs.put_subscription_filter, logGroupName=GROUP, filterName="three", filterPattern="",
                      destinationArn=destination) == ("LimitExceededException", "Resource limit exceeded.")


def test_a_missing_log_group_is_the_upstreams_answer(logs):
    assert _put_error(logs.put_metric_filter, logGroupName="missing", filterName="f", filterPattern="ERROR",
                      metricTransformations=[TRANSFORM])[0] == "ResourceNotFoundException"


def test_an_upstream_that_does_not_answer_is_service_unavailable():
    """503 ServiceUnavailableException naming the upstream; the server goes on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        with ServeThread(upstream=dead, upstream_timeout_s=5) as server:
            logs = logs_client(server.url)
            with pytest.raises(ClientError) as info:
                logs.describe_log_groups()
            error = info.value.response
            assert error["Error"]["Code"] == "ServiceUnavailableException"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert dead in error["Error"]["Message"]
            assert logs.test_metric_filter(filterPattern="a", logEventMessages=["a"])["matches"]
