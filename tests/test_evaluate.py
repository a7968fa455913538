"""What one event contributes to a metric (spec filter-patterns.md §8.3), through
:class:`castlewatch.engine.evaluate.LogGroupEvaluator`.

Each test states the §8.3 rule it checks.  Contributions are collected as
``(key, timestamp_ms, value)`` with ``key = (namespace, metric, dimensions, unit)``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

import castlewatch.engine.evaluate as evaluate_mod
from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.config import parse_timestamp
from castlewatch.engine.evaluate import LogGroupEvaluator, UnsupportedMetricFilterError
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import READ_FROM_MESSAGE, LogEvent, MetricFilter, MetricTransformation, Stats
from castlewatch.packs import get_pack

GROUP = "app"
T0 = 1_709_629_230_000  # 2024-03-05T09:00:30Z, epoch ms
CASES = Path(__file__).parent / "conformance" / "cases.jsonl"
APACHE = '127.0.0.1 - - [24/Sep/2013:11:49:52 -0700] "GET /index.html HTTP/1.1" 404 287'
APACHE_PATTERN = "[ip, id, user, timestamp, request, status_code, size]"


def mf(
    pattern: str,
    value: str = "1",
    *,
    name: str = "f",
    default: float | None = None,
    dims: dict[str, str] | None = None,
    unit: str | None = None,
    namespace: str = "ns",
    metric: str = "m",
    **extra: Any,
) -> dict[str, Any]:
    """A metric filter in the describe-metric-filters shape."""
    t: dict[str, Any] = {"metricName": metric, "metricNamespace": namespace, "metricValue": value}
    if default is not None:
        t["defaultValue"] = default
    if dims is not None:
        t["dimensions"] = dims
    if unit is not None:
        t["unit"] = unit
    return {"filterName": name, "filterPattern": pattern, "logGroupName": GROUP, "metricTransformations": [t], **extra}


def evaluator(*filters: dict[str, Any], timestamp: str | dict | None = None) -> tuple[LogGroupEvaluator, Stats]:
    """Validated filters (as PutMetricFilter would accept them) in one evaluator."""
    stats = Stats()
    spec = parse_timestamp(timestamp) if timestamp is not None else None
    return LogGroupEvaluator(load_metric_filters(list(filters)), stats, spec), stats


def run(ev: LogGroupEvaluator, *messages: str, ts: int = T0) -> list[tuple[Any, int, float]]:
    out: list[tuple[Any, int, float]] = []
    for message in messages:
        ev.evaluate(LogEvent(ts, message, GROUP), lambda key, t, v: out.append((key, t, v)))
    return out


def values(contributions) -> list[float]:
    return [v for _, _, v in contributions]


# ---- literal metricValue ---------------------------------------------------------------


def test_literal_metric_value_on_match():
    """Match, literal metricValue: that number."""
    ev, stats = evaluator(mf('{ $.level = "ERROR" }', "2.5"))
    out = run(ev, '{"level": "ERROR"}', '{"level": "INFO"}', '{"level": "ERROR"}')
    assert out == [(("ns", "m", (), "None"), T0, 2.5)] * 2
    assert stats.matched == {"f": 2}


def test_literal_metric_value_term_pattern():
    ev, _ = evaluator(mf("ERROR", "1"))
    assert values(run(ev, "[ERROR] 400 BAD REQUEST", "[INFO] 200 OK")) == [1.0]


# ---- metricValue from a reference ----------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"latency": 13}', 13.0),
        ('{"latency": 17.5}', 17.5),
        ('{"latency": -2e3}', -2000.0),
        ('{"latency": "11.5"}', 11.5),  # numeric string converted [rec]
        ('{"latency": "17"}', 17.0),
    ],
)
def test_json_value_number_and_numeric_string(message, expected):
    """Match, reference: a JSON number gives its value; a numeric string is converted."""
    ev, _ = evaluator(mf('{ $.op = "get" || $.latency = * || $.latency > 0 || $.latency < 0 }', "$.latency"))
    out = run(ev, message)
    assert values(out) == [expected]
    assert type(out[0][2]) is float


def test_json_value_first_node_of_nested_selector():
    ev, _ = evaluator(mf('{ $.op = "get" }', "$.timing.total"))
    assert values(run(ev, '{"op": "get", "timing": {"total": 42}}')) == [42.0]
    ev, _ = evaluator(mf('{ $.op = "get" }', "$.items[1]"))
    assert values(run(ev, '{"op": "get", "items": [1, "2.25", 3]}')) == [2.25]


@pytest.mark.parametrize(
    "message",
    [
        '{"op": "get", "latency": "fast"}',  # non-numeric string
        '{"op": "get"}',  # missing
        '{"op": "get", "latency": null}',
        '{"op": "get", "latency": true}',
        '{"op": "get", "latency": false}',
        '{"op": "get", "latency": [1, 2]}',
        '{"op": "get", "latency": {"v": 1}}',
        '{"op": "get", "latency": ""}',
        '{"op": "get", "latency": "1,5"}',
    ],
)
def test_unusable_value_publishes_nothing_not_even_the_default(message):
    """Anything else publishes nothing although the event matched, and no default either."""
    ev, stats = evaluator(mf('{ $.op = "get" }', "$.latency", default=0))
    assert run(ev, message) == []
    assert stats.matched == {"f": 1}


def test_default_still_published_for_non_matching_event_with_value_reference():
    ev, _ = evaluator(mf('{ $.op = "get" }', "$.latency", default=0))
    assert values(run(ev, '{"op": "put", "latency": 5}', '{"op": "get", "latency": 5}')) == [0.0, 5.0]


# ---- defaultValue -----------------------------------------------------------------------------


def test_default_once_per_non_matching_event():
    """No match: the defaultValue, once per non-matching event, if one is set."""
    ev, stats = evaluator(mf('{ $.level = "ERROR" }', "1", default=0))
    out = run(ev, '{"level": "INFO"}', '{"level": "ERROR"}', '{"level": "WARN"}', '{"level": "DEBUG"}')
    assert values(out) == [0.0, 1.0, 0.0, 0.0]
    assert stats.matched == {"f": 1}


def test_default_other_than_zero_and_terms():
    ev, _ = evaluator(mf("ERROR", "1", default=0.5))
    assert values(run(ev, "all good", "ERROR here")) == [0.5, 1.0]


def test_no_default_no_contribution():
    """No match and no defaultValue: nothing."""
    ev, _ = evaluator(mf('{ $.level = "ERROR" }', "1"), mf("ERROR", "1", name="t"), mf("[a, b=x]", "1", name="s"))
    assert run(ev, '{"level": "INFO"}', "all good", "a y") == []


@pytest.mark.parametrize(
    "message",
    [
        "ERROR: plain text, not JSON",  # contains the pattern's literal
        "hello world",  # contains none of the pattern's literals
        '{"level": "ERROR"',  # truncated JSON
        '["level", "ERROR"]',  # top-level array
        'prefix {"level": "ERROR"}',  # text before the JSON
    ],
)
def test_non_json_event_is_non_matching_for_a_json_filter(message):
    """An event that is not JSON is a non-matching event for a JSON pattern: the default is
    published, and the event is counted in ``stats.not_json`` (Stats: "events a JSON metric
    filter met that are not JSON objects")."""
    ev, stats = evaluator(mf('{ $.level = "ERROR" }', "1", default=0))
    assert values(run(ev, message)) == [0.0]
    assert stats.matched == {"f": 0}
    assert stats.not_json == {"f": 1}


def test_non_json_event_without_default_publishes_nothing():
    ev, stats = evaluator(mf('{ $.level = "ERROR" }', "1"))
    assert run(ev, "ERROR: plain text") == []
    assert stats.not_json == {"f": 1}
    assert stats.malformed == {}


@pytest.mark.parametrize("message", ["hello world", "ERROR plain text", '["ERROR"]'])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_non_json_event_counted_for_every_json_filter(message, n):
    """Every JSON filter of the log group meets every event: a non-JSON event is counted in
    ``stats.not_json`` for each of them, however many filters the group has and whether
    or not they have a default (the count must not depend on the shared literal scan)."""
    filters = [mf('{ $.level = "ERROR%d" }' % i, "1", name=f"j{i}") for i in range(n)]
    ev, stats = evaluator(*filters, mf("ERROR", "1", name="term"))
    run(ev, message)
    assert stats.not_json == {f"j{i}": 1 for i in range(n)}


# ---- space-delimited values -----------------------------------------------------------------


def test_space_delimited_named_value_apache_example():
    """Space-delimited reference: ``$name`` from the extracted values (AWS ExtractBytesExample)."""
    ev, _ = evaluator(mf(APACHE_PATTERN, "$size", unit="Bytes"))
    assert run(ev, APACHE) == [(("ns", "m", (), "Bytes"), T0, 287.0)]


def test_space_delimited_position_value():
    """Space-delimited reference: ``$N`` is the N-th field."""
    ev, _ = evaluator(mf(APACHE_PATTERN, "$7", name="a"), mf("[..., status=404, size]", "$7", name="b"))
    assert values(run(ev, APACHE)) == [287.0, 287.0]


@pytest.mark.parametrize("ref", ["$0", "$00"])
def test_position_zero_names_no_field(ref):
    """``$N`` is the N-th field, counted from 1 (§8.3): ``$0`` resolves to nothing, so a
    match publishes nothing (not the last field), and the filter gets a warning."""
    ev, _ = evaluator(mf("[a, b]", ref, name="v"), mf("[a, b]", "1", name="d", dims={"d": ref}))
    assert run(ev, "5 7", "5 7 9") == []
    assert ev.warnings == [
        f"metric filter 'v': metricValue {ref} names no field (fields are numbered from $1): it publishes "
        "nothing when it matches",
        f"metric filter 'd': dimension d {ref} names no field (fields are numbered from $1): it publishes "
        "nothing when it matches",
    ]


def test_space_delimited_quoted_numeric_value():
    """``"17.5"`` in a quoted field is converted too."""
    ev, _ = evaluator(mf("[name, duration]", "$duration"))
    assert values(run(ev, 'req "17.5"')) == [17.5]


def test_space_delimited_non_numeric_value_publishes_nothing():
    ev, stats = evaluator(mf(APACHE_PATTERN, "$user"), mf(APACHE_PATTERN, "$missing", name="g"))
    assert run(ev, APACHE) == []
    assert stats.matched == {"f": 1, "g": 1}


# ---- dimensions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ('"alice"', "alice"),  # a string is used as is
        ('"a b/c:d"', "a b/c:d"),
        ("42", "42"),  # a number as its source text
        ("0", "0"),
        ("-7", "-7"),
        ("1.50", "1.50"),
        ("2.0", "2.0"),
        ("1e3", "1e3"),
        ("true", "true"),  # a boolean as true/false [adopted]
        ("false", "false"),
    ],
)
def test_json_dimension_values(raw, text):
    """Dimensions: a string is used as is, a number as its source text, a boolean as true/false."""
    ev, _ = evaluator(mf('{ $.op = "get" }', "1", dims={"D": "$.d"}))
    assert run(ev, '{"op": "get", "d": %s}' % raw) == [(("ns", "m", (("D", text),), "None"), T0, 1.0)]


def test_several_json_dimensions_in_transformation_order():
    ev, _ = evaluator(mf('{ $.op = "get" }', "1", dims={"User": "$.user.name", "Code": "$.code", "Ok": "$.ok"}))
    out = run(ev, '{"op": "get", "user": {"name": "bob"}, "code": 503, "ok": false}')
    assert out == [(("ns", "m", (("User", "bob"), ("Code", "503"), ("Ok", "false")), "None"), T0, 1.0)]


def test_dimension_from_space_delimited_fields():
    """Dimensions resolve like values: ``$name`` and ``$N`` on a space-delimited pattern."""
    ev, _ = evaluator(mf(APACHE_PATTERN, "$size", dims={"Status": "$status_code", "Ip": "$1"}))
    assert run(ev, APACHE) == [(("ns", "m", (("Status", "404"), ("Ip", "127.0.0.1")), "None"), T0, 287.0)]


@pytest.mark.parametrize(
    "d",
    [None, '""', "null", '{"x": 1}', "[1, 2]", "[]"],
    ids=["missing", "empty", "null", "object", "array", "empty-array"],
)
def test_unusable_json_dimension_publishes_nothing(d):
    """If any dimension resolves to nothing, null, an array, an object or an empty string,
    the event publishes nothing."""
    ev, stats = evaluator(mf('{ $.op = "get" }', "1", dims={"User": "$.user", "D": "$.d"}))
    message = '{"op": "get", "user": "alice"}' if d is None else '{"op": "get", "user": "alice", "d": %s}' % d
    assert run(ev, message) == []
    assert stats.matched == {"f": 1}


def test_unusable_space_delimited_dimension_publishes_nothing():
    ev, _ = evaluator(
        mf("[a, b, ...]", "1", dims={"C": "$c"}, name="named-missing"),
        mf("[a, b, ...]", "1", dims={"C": "$9"}, name="position-missing"),
    )
    assert run(ev, "x y z") == []


def test_json_reference_on_space_delimited_pattern_resolves_to_nothing():
    """A JSON reference on a space-delimited pattern, or the reverse, resolves to nothing."""
    ev, stats = evaluator(
        mf("[a, b]", "$.b", name="sd-value-json-ref"),
        mf("[a, b]", "1", dims={"D": "$.a"}, name="sd-dim-json-ref"),
    )
    assert run(ev, "x 5") == []
    assert stats.matched == {"sd-value-json-ref": 1, "sd-dim-json-ref": 1}


def test_field_reference_on_json_pattern_resolves_to_nothing():
    ev, stats = evaluator(
        mf('{ $.a = "1" }', "$a", name="json-value-field-ref"),
        mf('{ $.a = "1" }', "$1", name="json-value-position-ref"),
        mf('{ $.a = "1" }', "1", dims={"D": "$a"}, name="json-dim-field-ref"),
    )
    assert run(ev, '{"a": "1", "b": 2}') == []
    assert set(stats.matched.values()) == {1}


# ---- unit --------------------------------------------------------------------------------------


def test_unit_passed_through_and_defaults_to_none():
    ev, _ = evaluator(
        mf("ERROR", "1", name="a", unit="Milliseconds", metric="a"),
        mf("ERROR", "1", name="b", metric="b"),
        mf("ERROR", "1", name="c", unit="Count/Second", metric="c"),
    )
    assert [k[3] for k, _, _ in run(ev, "ERROR")] == ["Milliseconds", "None", "Count/Second"]


# ---- shared work: one decode, one split per event ---------------------------------------------


@pytest.fixture
def count_calls(monkeypatch):
    """Wrap ``castlewatch.engine.evaluate.<name>`` with a call counter."""

    def wrap(name: str) -> list[str]:
        calls: list[str] = []
        original = getattr(evaluate_mod, name)

        def counting(message, *args, **kwargs):
            calls.append(message)
            return original(message, *args, **kwargs)

        monkeypatch.setattr(evaluate_mod, name, counting)
        return calls

    return wrap


def _json_filters(n: int) -> list[dict[str, Any]]:
    return [
        mf('{ $.service = "api" && $.code = %d }' % (500 + i), "$.latency", name=f"j{i}", default=0) for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 6, 30])
def test_one_json_decode_per_event_for_all_json_filters(count_calls, n):
    """All filters of a log group on one event: a JSON event is decoded at most once."""
    decodes = count_calls("decode_json_event")
    ev, stats = evaluator(*_json_filters(n), mf("api", "1", name="term"))
    messages = ['{"service": "api", "code": %d, "latency": %d}' % (500 + i, i) for i in range(4)]
    out = run(ev, *messages)
    assert decodes == messages  # one decode per event, whatever the number of JSON filters
    assert len(out) == 4 * (n + 1)  # every JSON filter: its value or its default; the term filter: 1
    assert sum(stats.matched.values()) == min(n, 4) + 4


@pytest.mark.parametrize("n", [1, 3, 30])
def test_one_json_decode_when_the_timestamp_comes_from_the_json(count_calls, n):
    decodes = count_calls("decode_json_event")
    ev, _ = evaluator(*_json_filters(n), timestamp={"field": "$.time", "format": "epoch_ms"})
    messages = ['{"service": "api", "code": 500, "latency": 3, "time": %d}' % (T0 + i) for i in range(5)]
    out = run(ev, *messages, ts=READ_FROM_MESSAGE)
    assert len(decodes) == 5
    assert [t for _, t, _ in out] == [T0 + i for i in range(5) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 5, 30])
def test_no_decode_when_no_prefilter_passes(count_calls, n):
    """A JSON event is decoded only if some JSON filter's literal prefilter passes."""
    decodes = count_calls("decode_json_event")
    ev, stats = evaluator(*_json_filters(n))
    out = run(ev, '{"service": "web", "code": 200, "latency": 1}', '{"other": true}', "plain text")
    assert decodes == []
    assert values(out) == [0.0] * 3 * n  # still non-matching: the default for each filter and event
    assert stats.matched == {f"j{i}": 0 for i in range(n)}


def test_shared_evaluation_equals_each_filter_alone():
    """Evaluating all filters together (shared decode, split and literal scan) gives, per
    event, exactly the contributions of evaluating each filter on its own."""
    demo = Path(evaluate_mod.__file__).parents[1] / "data"
    filters = [f.to_aws() for name in ("cis", "console-activity") for f in get_pack(name).metric_filters(GROUP)]
    filters += [
        mf('{ $.eventName = "ConsoleLogin" }', "1", name="console-default", default=0, metric="c"),
        mf('{ $.errorCode = * }', "1", name="errors", dims={"Code": "$.errorCode"}, metric="e"),
        mf("ConsoleLogin", "1", name="term", metric="t"),
        mf("%Security[A-Z]%", "1", name="regex", metric="r"),
        mf("[a, b, ...]", "1", name="sd", default=0, metric="s"),
    ]
    messages = (demo / "samples" / "cloudtrail.jsonl").read_text().splitlines()
    messages += [
        '{"eventName": "Console\\u004cogin", "userIdentity": {"type": "Root"}}',  # literal hidden by an escape
        '{"eventName": "\\u0043onsoleLogin", "errorMessage": "Failed authentication"}',
        "ConsoleLogin in plain text",
        '  {"eventName": "CreateVpc"}  ',
        "",
    ]
    together, _ = evaluator(*filters)
    alone = [evaluator(f)[0] for f in filters]
    for message in messages:
        expected = [c for ev in alone for c in run(ev, message)]
        assert sorted(run(together, message), key=repr) == sorted(expected, key=repr), message


def test_one_split_per_event_for_all_space_delimited_filters(count_calls):
    """A space-delimited event is split once for all space-delimited filters."""
    splits = count_calls("split_fields")
    ev, _ = evaluator(
        mf(APACHE_PATTERN, "$size", name="bytes"),
        mf('[ip, id, user, timestamp, request, status_code=404, size]', "1", name="404"),
        mf('[ip, id, user, timestamp, request = "*index*", ...]', "1", name="index", dims={"Ip": "$ip"}),
        mf("[..., size > 100]", "$size", name="big"),
    )
    messages = [APACHE, APACHE.replace("404 287", "200 3"), APACHE.replace("index", "home")]
    out = run(ev, *messages)
    assert splits == messages
    assert len(out) == 3 + 2 + 2 + 2  # bytes: all; 404: 1st, 3rd; index: 1st, 2nd; big: 1st, 3rd


def test_one_split_when_the_timestamp_is_a_field_position(count_calls):
    splits = count_calls("split_fields")
    ev, _ = evaluator(mf("[a, b, t]", "$b", name="x"), mf("[a=GET, b, t]", "1", name="y"), timestamp={"field": "$3", "format": "epoch_s"})
    out = run(ev, "GET 5 1709629230", "PUT 7 1709629290", ts=READ_FROM_MESSAGE)
    assert len(splits) == 2
    assert out == [
        (("ns", "m", (), "None"), T0, 5.0),
        (("ns", "m", (), "None"), T0, 1.0),
        (("ns", "m", (), "None"), T0 + 60_000, 7.0),
    ]


# ---- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_text", "expected"),
    [
        ('"2024-03-05T09:00:30Z"', T0),
        ('"2024-03-05T09:00:30.250Z"', T0 + 250),
        ('"2024-03-05T10:00:30+01:00"', T0),
        ('"2024-03-05T09:00:30"', T0),  # naive: UTC
    ],
)
def test_timestamp_from_json_iso8601(time_text, expected):
    ev, _ = evaluator(mf('{ $.eventName = "ConsoleLogin" }', "1"), timestamp={"field": "$.eventTime", "format": "iso8601"})
    out = run(ev, '{"eventName": "ConsoleLogin", "eventTime": %s}' % time_text, ts=READ_FROM_MESSAGE)
    assert [t for _, t, _ in out] == [expected]


def test_timestamp_from_field_position_epoch_s():
    """VPC Flow Logs: start (field 11) in epoch seconds."""
    line = "2 111122223333 eni-0a1b 198.51.100.7 10.0.2.41 49398 22 6 1 60 1709629230 1709629290 REJECT OK"
    ev, _ = evaluator(mf('[v, a, e, s, d, sp, dp, p, pk, bytes, start, end, action="REJECT", st]', "$bytes"), timestamp={"field": "$11", "format": "epoch_s"})
    assert run(ev, line, ts=READ_FROM_MESSAGE) == [(("ns", "m", (), "None"), T0, 60.0)]


def test_timestamp_epoch_ms_and_fractional_epoch_s():
    ev, _ = evaluator(mf('{ $.x = 1 }', "1"), timestamp={"field": "$.t", "format": "epoch_ms"})
    assert [t for _, t, _ in run(ev, '{"x": 1, "t": %d}' % (T0 + 7), '{"x": 1, "t": "%d"}' % T0, ts=READ_FROM_MESSAGE)] == [T0 + 7, T0]
    ev, _ = evaluator(mf('{ $.x = 1 }', "1"), timestamp={"field": "$.t", "format": "epoch_s"})
    assert [t for _, t, _ in run(ev, '{"x": 1, "t": 1709629230.5}', ts=READ_FROM_MESSAGE)] == [T0 + 500]


def test_timestamp_ingestion():
    ev, _ = evaluator(mf("ERROR", "1"), timestamp="ingestion")
    before = int(time.time() * 1000)
    out = run(ev, "ERROR", ts=READ_FROM_MESSAGE)
    after = int(time.time() * 1000)
    assert len(out) == 1 and before <= out[0][1] <= after


def test_event_timestamp_wins_over_nothing():
    """Events that carry their own time (cloudwatch_events, cloudtrail_archive) keep it."""
    ev, _ = evaluator(mf("ERROR", "1"))
    assert run(ev, "ERROR", ts=T0 + 123) == [(("ns", "m", (), "None"), T0 + 123, 1.0)]


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        ({"field": "$.eventTime", "format": "iso8601"}, '{"eventName": "x", "eventTime": "yesterday"}'),
        ({"field": "$.eventTime", "format": "iso8601"}, '{"eventName": "x"}'),
        ({"field": "$.eventTime", "format": "iso8601"}, '{"eventName": "x", "eventTime": 1709629230}'),
        ({"field": "$.eventTime", "format": "iso8601"}, "ERROR not json"),
        ({"field": "$.t", "format": "epoch_s"}, '{"t": "soon", "eventName": "x"}'),
        ({"field": "$.t", "format": "epoch_ms"}, '{"t": true, "eventName": "x"}'),
        ({"field": "$3", "format": "epoch_s"}, "ERROR x"),
        ({"field": "$2", "format": "epoch_s"}, "ERROR x"),
        ({"field": "$2", "format": "epoch_s"}, "ERROR 253402300800"),  # year 10000
        ({"field": "$2", "format": "epoch_s"}, "ERROR 1e306"),  # overflows in milliseconds
        ({"field": "$2", "format": "epoch_ms"}, "ERROR -62135596800001"),  # before year 1
        ({"field": "$.t", "format": "iso8601"}, '{"t": "9999-12-31T23:59:59-01:00", "eventName": "x"}'),
    ],
)
def test_bad_timestamp_is_counted_malformed(timestamp, message):
    """An event whose time cannot be determined contributes nothing (not even a default)
    and is counted as malformed, ``bad_timestamp``."""
    ev, stats = evaluator(mf("ERROR", "1", name="t", default=0), mf('{ $.eventName = "x" }', "1", name="j", default=0), timestamp=timestamp)
    emitted: list = []
    assert ev.evaluate(LogEvent(READ_FROM_MESSAGE, message, GROUP), lambda *a: emitted.append(a)) is False
    assert emitted == []
    assert stats.malformed == {"bad_timestamp": 1}
    assert stats.matched == {"t": 0, "j": 0}  # a malformed event is no filter's match


@pytest.mark.parametrize("ts", [253_402_300_800_000, -62_135_596_800_001])
def test_event_time_outside_years_1_to_9999_is_a_bad_timestamp(ts):
    ev, stats = evaluator(mf("ERROR"))
    assert run(ev, "ERROR", ts=ts) == []
    assert stats.malformed == {"bad_timestamp": 1} and stats.matched == {"f": 0}
    assert [t for _, t, _ in run(ev, "ERROR", ts=253_402_300_799_999)] == [253_402_300_799_999]


@pytest.mark.parametrize(
    "value",
    ['"\\ud800"', '"caf\\u00e9"', '"caf\u00e9"', '" "', '"\\t \\n"', '"' + "x" * 1025 + '"'],
    ids=["lone-surrogate", "escaped-non-ascii", "non-ascii", "space", "whitespace", "1025-chars"],
)
def test_a_dimension_value_putmetricdata_refuses_publishes_nothing_and_is_counted(value):
    """§8.3 with §9: a dimension value that is not ASCII (a lone surrogate from a ``\\ud800``
    escape included), whitespace only or over 1,024 characters publishes nothing, and the
    event is counted in ``Stats.bad_dimension_values``; the filter's match still counts."""
    ev, stats = evaluator(mf("{ $.k = * }", dims={"K": "$.k"}))
    assert run(ev, '{"k": %s}' % value) == []
    assert stats.matched == {"f": 1}
    assert stats.bad_dimension_values == {"f": 1}


def test_dimension_values_putmetricdata_takes_are_published():
    ev, stats = evaluator(mf("{ $.k = * }", dims={"K": "$.k"}))
    for value in ["x" * 1024, " a ", "\\u0001", "caf"]:
        assert [key[2] for key, _, _ in run(ev, '{"k": "%s"}' % value)] == [(("K", json.loads(f'"{value}"')),)]
    assert run(ev, '{"k": ""}') == []  # an empty value publishes nothing and is not counted (§8.3)
    assert stats.bad_dimension_values == {}


# ---- refused and silent settings -----------------------------------------------------------------


def _filter(**kw: Any) -> MetricFilter:
    return MetricFilter(
        filter_name="f",
        filter_pattern='{ $.a = 1 }',
        metric_transformations=[MetricTransformation("m", "ns", "1")],
        log_group_name=GROUP,
        **kw,
    )


@pytest.mark.parametrize(
    ("setting", "word"),
    [
        ({"field_selection_criteria": '@aws.region = "us-east-1"'}, "fieldSelectionCriteria"),
        ({"emit_system_field_dimensions": ["@aws.account"]}, "emitSystemFieldDimensions"),
        ({"emit_system_field_dimensions": ["@aws.region", "@aws.account"]}, "emitSystemFieldDimensions"),
    ],
)
def test_refused_settings(setting, word):
    with pytest.raises(UnsupportedMetricFilterError) as info:
        LogGroupEvaluator([_filter(**setting)], Stats())
    assert word in str(info.value) and "'f'" in str(info.value)


def test_apply_on_transformed_logs_publishes_nothing():
    """applyOnTransformedLogs: true without a transformer publishes nothing, not even the default."""
    ev, _ = evaluator(
        mf('{ $.a = 1 }', "1", name="silent", default=0, applyOnTransformedLogs=True),
        mf('{ $.a = 1 }', "5", name="loud", applyOnTransformedLogs=False),
    )
    assert values(run(ev, '{"a": 1}', '{"a": 2}')) == [5.0]


# ---- conformance cases with a published value --------------------------------------------------


def _published_cases() -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [c for c in cases if "published" in c]


@pytest.mark.parametrize("case", _published_cases(), ids=lambda c: c["id"])
def test_conformance_published(case):
    """Each documented example with a published value: exactly one datapoint, Sum == value,
    with the given dimensions, in the event's minute."""
    t = case["transform"]
    f = {"filterName": case["id"], "filterPattern": case["pattern"], "logGroupName": GROUP, "metricTransformations": [t]}
    stats = Stats()
    ev = LogGroupEvaluator(load_metric_filters([f]), stats)
    agg = MinuteAggregator(stats)
    assert ev.evaluate(LogEvent(T0, case["event"], GROUP), agg.add) is True
    points = agg.close_all()
    assert len(points) == 1
    p = points[0]
    want = case["published"]
    assert p.sum == want["value"] and p.sample_count == 1
    assert dict(p.dimensions) == want.get("dimensions", {})
    assert list(dict(p.dimensions)) == list(t.get("dimensions", {}))
    assert (p.namespace, p.metric_name, p.unit) == (t["metricNamespace"], t["metricName"], t.get("unit", "None"))
    assert p.timestamp == T0 // 60_000 * 60
    assert p.iso_timestamp == dt.datetime(2024, 3, 5, 9, 0, tzinfo=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_there_are_published_conformance_cases():
    assert len(_published_cases()) >= 9


# ---- dimension cardinality (§8.4 [adopted]) ------------------------------------------------------


def _users(ev: LogGroupEvaluator, users, ts0: int = T0, step_ms: int = 1000) -> list:
    out: list = []
    for i, user in enumerate(users):
        message = '{"user": "%s"}' % user
        ev.evaluate(LogEvent(ts0 + i * step_ms, message, GROUP), lambda key, t, v: out.append(key[2]))
    return out


def test_filter_disabled_at_1000_distinct_dimension_sets_within_an_hour(caplog):
    """§8.4: castlewatch counts distinct dimension value sets per filter over a rolling
    hour and disables the filter, with an error log, at 1,000."""
    ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}, name="per-user"), mf("{ $.user = * }", name="all"))
    with caplog.at_level("ERROR", logger="castlewatch.engine"):
        published = _users(ev, [f"u{i}" for i in range(1500)])  # 1,500 users in 25 minutes
    per_user = [d for d in published if d]
    assert len(per_user) == 1000 and len(set(per_user)) == 1000  # the 1,000th still published
    assert len([d for d in published if not d]) == 1500  # the other filter goes on
    assert list(stats.disabled_filters) == ["per-user"]
    assert "1000 distinct value sets within an hour" in stats.disabled_filters["per-user"]
    assert [r.getMessage() for r in caplog.records] == [stats.disabled_filters["per-user"]]
    assert stats.matched["per-user"] == 1000  # a disabled filter evaluates nothing more


def test_repeated_dimension_sets_count_once():
    ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    published = _users(ev, [f"u{i % 999}" for i in range(5000)])
    assert len(published) == 5000 and not stats.disabled_filters


def test_dimension_sets_older_than_an_hour_do_not_count():
    """The hour rolls with event time: 999 sets, then 999 new ones more than an hour later."""
    ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    _users(ev, [f"a{i}" for i in range(999)], step_ms=1)
    published = _users(ev, [f"b{i}" for i in range(999)], ts0=T0 + 3_600_000 + 1000, step_ms=1)
    assert len(published) == 999 and not stats.disabled_filters
    ev2, stats2 = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    _users(ev2, [f"a{i}" for i in range(999)], step_ms=1)
    _users(ev2, ["b"], ts0=T0 + 3_500_000)  # within the hour: the 1,000th set
    assert list(stats2.disabled_filters) == ["f"]


def test_dimension_counts_survive_a_checkpoint():
    ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    _users(ev, [f"u{i}" for i in range(600)])
    state = json.loads(json.dumps(ev.snapshot()))
    resumed, stats2 = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    resumed.restore(state)
    published = _users(resumed, [f"v{i}" for i in range(600)], ts0=T0 + 600_000)
    assert len(published) == 400 and list(stats2.disabled_filters) == ["f"]
    assert resumed.snapshot()["f"]["disabled"] is True


def test_negative_event_times_are_event_times():
    """An event before 1970 (a ``cloudwatch_events`` timestamp of -1000) keeps its own time;
    only READ_FROM_MESSAGE asks for the time in the message."""
    ev, _ = evaluator(mf("ERROR"))
    assert [t for _, t, _ in run(ev, "ERROR", ts=-1000)] == [-1000]


# ---- one event's failure costs that event only (issue 8 §2) ------------------------------------


def _raise_in(monkeypatch: pytest.MonkeyPatch, ev: LogGroupEvaluator, name: str, marker: str) -> None:
    """Fault injection: filter ``name``'s compiled matcher raises on events holding ``marker``
    (stands for any castlewatch bug met on one event, such as an int() over 4,300 digits)."""
    f = next(f for f in ev.filters if f.name == name)
    pattern = f.pattern
    kind = pattern.kind

    class Raising:
        def __getattr__(self, attr):
            return getattr(pattern, attr)

        def _check(self, message):
            if marker in message:
                raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

        def match_document(self, doc, message):
            self._check(message)
            return pattern.match_document(doc, message)

        def match_fields(self, fields, message):
            self._check(message)
            return pattern.match_fields(fields, message)

        def matches(self, message):
            self._check(message)
            return pattern.matches(message)

    monkeypatch.setattr(f, "pattern", Raising())
    assert f.kind == kind


@pytest.mark.parametrize("timestamp", [None, {"field": "$.t", "format": "epoch_ms"}], ids=["given", "from-message"])
def test_an_event_whose_evaluation_raises_has_no_effect(monkeypatch, timestamp):
    """All or nothing per event: the filters evaluated before the one that raises matched
    and would contribute; none of it is emitted or counted, and the error names the filter."""
    ev, stats = evaluator(
        mf('{ $.level = "ERROR" }', name="errors", dims={"user": "$.user"}),
        mf("{ $.latency >= 0 }", "$.latency", name="latency"),
        mf('{ $.level = "WARN" }', name="warnings", default=0),
        mf("ERROR", name="terms"),
        timestamp=timestamp,
    )
    _raise_in(monkeypatch, ev, "latency", "POISON")
    ts = T0 if timestamp is None else READ_FROM_MESSAGE
    good = '{"t": %d, "level": "ERROR", "user": "u1", "latency": 5}' % T0
    emitted: list = []
    assert ev.evaluate_message(good, ts, lambda *a: emitted.append(a)) is True
    before = (json.loads(json.dumps(stats.matched)), dict(stats.malformed), ev.snapshot())
    with pytest.raises(evaluate_mod.EventEvaluationError) as raised:
        ev.evaluate_message(good[:-1] + ', "note": "POISON"}', ts, lambda *a: emitted.append(a))
    assert raised.value.filter_name == "latency" and isinstance(raised.value.cause, ValueError)
    assert str(raised.value) == (
        "metric filter 'latency' raised ValueError: Exceeds the limit (4300 digits) for integer string conversion"
    )
    assert len(emitted) == 4  # the good event's only
    assert (stats.matched, stats.malformed, ev.snapshot()) == before
    assert ev.evaluate_message(good, ts, lambda *a: emitted.append(a)) is True  # and it goes on
    assert len(emitted) == 8 and stats.matched == {"errors": 2, "latency": 2, "warnings": 0, "terms": 2}


def test_a_failed_event_takes_back_its_not_json_counts(monkeypatch):
    ev, stats = evaluator(mf("{ $.a = 1 }", name="json"), mf("ERROR", name="terms", default=0))
    _raise_in(monkeypatch, ev, "terms", "POISON")
    with pytest.raises(evaluate_mod.EventEvaluationError):
        run(ev, "ERROR POISON")
    assert stats.not_json == {"json": 0} and stats.matched == {"json": 0, "terms": 0}
    run(ev, "ERROR fine")
    assert stats.not_json == {"json": 1} and stats.matched == {"json": 0, "terms": 1}


def test_reading_the_time_raises(monkeypatch):
    """A failure while reading the event's time: no filter is named, nothing is counted."""
    ev, stats = evaluator(mf("ERROR", name="terms"), timestamp={"field": "$2", "format": "epoch_s"})
    monkeypatch.setitem(evaluate_mod._TIME_PARSERS, "epoch_s", lambda value: 1 // 0)  # fault injection
    with pytest.raises(evaluate_mod.EventEvaluationError, match="reading the event's time raised ZeroDivisionError"):
        ev.evaluate(LogEvent(READ_FROM_MESSAGE, "ERROR 1709629230", GROUP), lambda *a: None)
    assert stats.matched == {"terms": 0} and stats.malformed == {}


# ---- metric values PutMetricData refuses (§9: within ±2^360) -------------------------------------


@pytest.mark.parametrize(
    "value, published",
    [
        ("1e400", False),
        ("-1e400", False),
        ("1e109", False),  # 2^360 is about 2.35e108
        ('"2e108"', True),
        ("2348542582773833227889480596789337027375682548908319870707290971532209025114608443463698998384768703031934976", True),  # 2^360
        ("2348542582773833227889480596789337027375682548908319870707290971532209025114608443463698998384768703031934977" + "0", False),
        ('"1e400"', False),
        ("1" + "0" * 5000, False),
    ],
    ids=["1e400", "-1e400", "1e109", "string-2e108", "2^360", "10*2^360", "string-1e400", "5001-digits"],
)
def test_a_value_beyond_putmetricdata_range_publishes_nothing_and_is_counted(value, published):
    ev, stats = evaluator(mf("{ $.v = * }", "$.v", name="v"), mf("{ $.v = * }", "1", name="count"))
    out = run(ev, '{"v": %s}' % value)
    assert [k[1] for k, _, _ in out] == (["m", "m"] if published else ["m"])
    assert stats.matched == {"v": 1, "count": 1}  # it matched all the same
    assert stats.out_of_range == ({} if published else {"v": 1})


def test_an_out_of_range_value_of_an_event_with_a_bad_time_is_not_counted():
    """A malformed event (its time unusable) counts as nothing but bad_timestamp."""
    ev, stats = evaluator(mf("{ $.v = * }", "$.v", name="v"), mf("{ $.v = * }", name="count"), timestamp={"field": "$.t", "format": "epoch_s"})
    assert ev.evaluate(LogEvent(READ_FROM_MESSAGE, '{"v": 1e400, "t": "never"}', GROUP), lambda *a: None) is False
    assert stats.out_of_range == {} and stats.malformed == {"bad_timestamp": 1}


# ---- dimension-set pruning is incremental, with the same decisions --------------------------------


def _reference_count(state: dict, dims: tuple, ts: int, limit: int, window: int) -> bool:
    """The rule of §8.4 [adopted] written plainly (a scan of every set): True if the filter
    is disabled by this contribution. ``state``: {"sets": {dims: time}, "clock": ms}."""
    sets = state["sets"]
    state["clock"] = max(state["clock"], ts)
    last = sets.get(dims)
    if last is not None and last > state["clock"] - window:
        sets[dims] = max(last, ts)
        return False
    sets[dims] = ts
    if len(sets) < limit:
        return False
    for old in [d for d, t in sets.items() if t <= state["clock"] - window]:
        del sets[old]
    return len(sets) >= limit


@pytest.mark.parametrize("seed", range(40))
def test_dimension_set_pruning_decides_as_a_full_scan(monkeypatch, seed):
    """Random event times (late ones, sets seen again after they expired, ties), a small
    limit and window: the sets kept, and when the filter is disabled, are exactly those of
    the plain rule after every contribution."""
    import random

    rng = random.Random(seed)
    limit, window = rng.randint(2, 12), rng.choice([5, 20, 100])
    monkeypatch.setattr(evaluate_mod, "DIMENSION_SETS_LIMIT", limit)
    monkeypatch.setattr(evaluate_mod, "DIMENSION_WINDOW_MS", window)
    ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
    f = ev.filters[0]
    reference = {"sets": {}, "clock": -(2**62)}
    t = 0
    for step in range(400):
        t += rng.choice([0, 1, 1, 2, 5])
        ts = t - rng.choice([0, 0, 0, 1, 3, window, 2 * window])  # some late, some out of the window
        user = f"u{rng.randint(0, 3 * limit)}"
        if rng.random() < 0.02:  # a checkpoint and a restart in between
            state = json.loads(json.dumps(ev.snapshot()))
            ev, stats = evaluator(mf("{ $.user = * }", dims={"user": "$.user"}))
            ev.restore(state)
            f = ev.filters[0]
        disabled = _reference_count(reference, (("user", user),), ts, limit, window)
        out = run(ev, '{"user": "%s"}' % user, ts=ts)
        assert len(out) == 1
        assert (f.dimension_sets, f.clock, f.disabled) == (reference["sets"], reference["clock"], disabled), step
        if disabled:
            break
        assert len(f.expiry) == len(f.dimension_sets)  # one heap entry per set
