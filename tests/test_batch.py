"""The batch path (castlewatch.engine.batch, issue 11) against the general evaluator.

Every test runs the same batches through both: ``BatchPath.process`` and the general
evaluator event by event (``LogGroupEvaluator.evaluate_message`` into
``MinuteAggregator.add``, as the engine does without the batch path), on both matcher
backends, and compares every datapoint closed after each batch and at the end (Sum
bit for bit, SampleCount, Minimum, Maximum, Values/Counts, serials), every counter
(matched per filter, malformed per reason, not JSON, late, out of range, bad dimension
values) and the state a checkpoint would hold (watermarks, late clocks, open
datapoints, dimension value sets).
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import castlewatch
from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.batch import batch_path
from castlewatch.engine.batch import fold as batch_fold
from castlewatch.engine.evaluate import EventEvaluationError, LogGroupEvaluator, TimestampSpec
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import READ_FROM_MESSAGE, Stats

pytestmark = pytest.mark.usefixtures("literal_backend")

GROUP = "g"
JSON_TIME = TimestampSpec("json", selector="$.eventTime", format="iso8601")
FIELD_TIME = TimestampSpec("position", position=11, format="epoch_s")
T0 = 1_709_629_200  # 2024-03-05T09:00:00Z, seconds
CASES = [json.loads(line) for line in
         (Path(__file__).parent / "conformance" / "cases.jsonl").read_text(encoding="utf-8").splitlines() if line]


def mf(name: str, pattern: str, value: str = "1", default: float | None = None, dims: dict | None = None) -> dict:
    t: dict[str, Any] = {"metricName": name, "metricNamespace": "ns", "metricValue": value}
    if default is not None:
        t["defaultValue"] = default
    if dims:
        t["dimensions"] = dims
    return {"filterName": name, "filterPattern": pattern, "logGroupName": GROUP, "metricTransformations": [t]}


def _point(p) -> tuple:
    return (p.serial, p.namespace, p.metric_name, p.dimensions, p.unit, p.timestamp, p.sample_count,
            struct_bits(p.sum), struct_bits(p.minimum), struct_bits(p.maximum), p.items())


def struct_bits(x: float) -> tuple:
    return (math.copysign(1.0, x), x.hex()) if not math.isinf(x) else (x,)


def _state(evaluator: LogGroupEvaluator, agg: MinuteAggregator) -> tuple:
    return (
        asdict(agg.stats),
        list(agg.watermarks.items()), list(agg.late_clocks.items()), agg.next_serial,
        [(m, [(k, _point(p)) for k, p in w.items()]) for m, w in agg.windows.items()],
        [(m, [(k, _point(p)) for k, p in late.items()]) for m, late in agg.late.items()],
        [_point(p) for p in agg.sealed],
        evaluator.snapshot(),
    )


def run_both(filters: list[dict], timestamp: TimestampSpec, batches: list[list[str]], lateness_ms: int = 60_000,
             require_plan: str | None = None) -> tuple:
    """Run ``batches`` through the batch path and the general evaluator; assert every
    datapoint, counter and state agree after each batch; return (stats, datapoints)."""
    loaded = load_metric_filters(filters)
    sides = []
    for _ in range(2):
        stats = Stats()
        evaluator = LogGroupEvaluator(loaded, stats, timestamp)
        sides.append((evaluator, MinuteAggregator(stats, lateness_ms)))
    (ev_a, agg_a), (ev_b, agg_b) = sides
    path = batch_path(ev_a, agg_a)
    if require_plan is not None:
        assert path is not None and type(path.plan).__name__ == require_plan
    skipped_a: list[int] = []
    skipped_b: list[int] = []
    written = []
    for batch in batches:
        if path is not None:
            path.process(batch, lambda i, err: skipped_a.append(i))
        else:
            for i, m in enumerate(batch):
                try:
                    ev_a.evaluate_message(m, READ_FROM_MESSAGE, agg_a.add)
                except EventEvaluationError:
                    skipped_a.append(i)
        for i, m in enumerate(batch):
            try:
                ev_b.evaluate_message(m, READ_FROM_MESSAGE, agg_b.add)
            except EventEvaluationError:
                skipped_b.append(i)
        assert _state(ev_a, agg_a) == _state(ev_b, agg_b)
        a, b = agg_a.close_ready(), agg_b.close_ready()
        assert [_point(p) for p in a] == [_point(p) for p in b]
        written += a
    assert skipped_a == skipped_b
    a, b = agg_a.close_all(), agg_b.close_all()
    assert [_point(p) for p in a] == [_point(p) for p in b]
    return agg_a.stats, written + a


# ---- the aggregation alone ------------------------------------------------------------------


def test_bincount_sums_in_event_order():
    """The premise of fold's Sum: np.bincount adds each bin's weights in order, from 0.0."""
    rng = random.Random(5)
    values = [rng.choice([0.1, 0.2, 0.3, 1e16, -1e16, 1.0, 3.3333]) for _ in range(5000)]
    got = np.bincount(np.zeros(len(values), np.int64), weights=np.array(values))[0]
    total = 0.0
    for v in values:
        total += v
    assert got.hex() == total.hex()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fold_equals_add_one_by_one(data):
    keys = [("ns", f"m{i % 3}", (("d", str(i)),) if i % 2 else (), "None") for i in range(5)]
    lateness = data.draw(st.sampled_from([0, 60_000, 3_600_000]))
    a, b = MinuteAggregator(Stats(), lateness), MinuteAggregator(Stats(), lateness)
    clock = T0 * 1000
    for _ in range(data.draw(st.integers(1, 4))):
        n = data.draw(st.integers(1, 120))
        late_share = data.draw(st.sampled_from([0.0, 0.5, 0.9]))
        rows = data.draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30_000_000), st.booleans(),
                                            st.sampled_from([0.0, 1.0, 0.1, 0.2, -2.5, 1e300, 7.0, 2.0**-1074])),
                                  min_size=n, max_size=n))
        kid, ts, vals = [], [], []
        for k, back, late, v in rows:
            clock += 700
            kid.append(k)
            ts.append(clock - back if late and back / 30_000_000 < late_share + 0.1 else clock)
            vals.append(v)
        batch_fold.fold(a, keys, np.array(kid), np.array(ts, np.int64), np.array(vals))
        for k, t, v in zip(kid, ts, vals):
            b.add(keys[k], t, v)
        state = lambda g: ([(m, [(k, _point(p)) for k, p in w.items()]) for m, w in g.windows.items()],  # noqa: E731
                           [(m, [(k, _point(p)) for k, p in w.items()]) for m, w in g.late.items()],
                           [_point(p) for p in g.sealed], list(g.watermarks.items()), list(g.late_clocks.items()),
                           g.next_serial, g.stats.late_events)
        assert state(a) == state(b)


def test_fold_keeps_the_first_zero_and_negative_zero_goes_one_by_one():
    keys = [("ns", "m", (), "None")]
    for values in ([0.0] * 30 + [-0.0] * 30, [-0.0] * 30 + [0.0] * 30, [0.0] * 60):
        a, b = MinuteAggregator(Stats()), MinuteAggregator(Stats())
        ts = np.full(len(values), T0 * 1000, np.int64)
        batch_fold.fold(a, keys, np.zeros(len(values), np.int64), ts, np.array(values))
        for v in values:
            b.add(keys[0], T0 * 1000, v)
        (pa,), (pb,) = a.close_all(), b.close_all()
        assert _point(pa) == _point(pb)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.builds("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format, st.integers(0, 9999), st.integers(0, 13),
              st.integers(0, 32), st.integers(0, 24), st.integers(0, 60), st.integers(0, 60)),
    st.sampled_from(["2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "1900-02-29T12:00:00Z", "2000-02-29T12:00:00Z",
                     "2024-03-05 09:00:00Z", "2024-03-05T09:00:00z", "2024-03-05T09:00:0\u0661Z", "", "Z" * 20]),
    st.text(max_size=22)), max_size=40))
def test_iso_times_read_with_numpy_are_those_of_iso8601_ms(texts):
    from castlewatch.engine.batch.plan import iso_seconds_z
    from castlewatch.model import iso8601_ms

    ms, ok = iso_seconds_z(texts)
    for text, t, good in zip(texts, ms.tolist(), ok.tolist()):
        if good:
            assert t == iso8601_ms(text)
        elif re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text, re.ASCII):  # left out: not a valid time
            assert iso8601_ms(text) is None


# ---- the literals plan (CloudTrail) -------------------------------------------------------


def _cis_filters() -> list[dict]:
    text = (Path(castlewatch.__file__).parent / "data" / "cis-patterns.json").read_text(encoding="utf-8")
    cis = [e for e in json.loads(text) if e["id"].startswith("CIS")]
    out = [mf(e["metric_name"], e["filter_pattern"]) for e in cis]
    out.append(mf("SignIns", '{ $.eventName = "ConsoleLogin" }', default=0))
    return out


_NAMES = ["ConsoleLogin", "DescribeInstances", "CreateTrail", "DeleteVpc", "PutBucketPolicy", "GetObject",
          "StopLogging", "DisableKey", "AttachRolePolicy"]
_TIMES = ["2024-03-05T09:00:00Z", "2024-03-05T09:00:59Z", "2024-03-05T09:01:00Z", "2024-03-05T07:00:00Z",
          "2024-03-05T09:03:30.5+00:00", "2024-03-05 09:02:00", "not a time", "0000-01-01T00:00:00Z",
          "9999-12-31T23:59:59Z", ""]


@st.composite
def cloudtrail_line(draw) -> str:
    kind = draw(st.sampled_from(["record"] * 6 + ["hostile"]))
    if kind == "hostile":
        return draw(st.sampled_from([
            "plain text event", "   ", "{", "{}", "[1, 2]", '"string"', "{\"eventTime\": 5}", "{\"eventTime\": null}",
            '{"eventTime":"2024-03-05T09:00:00Z"} {"x":1}', '{"eventTime":"2024-03-05T09:00:00Z",}',
            '{"eventName":"Console\\u004cogin","eventTime":"2024-03-05T09:00:00Z"}',
            '{"eventTime":"2024-03-05T09:00:00Z","eventTime":"2024-03-05T11:00:00Z"}',
            '{"eventTime":"2024-03-05T09:00:00Z","eventTime":7}', '\t{"eventTime":"2024-03-05T09:05:00Z"}  ',
            '\x0b{"eventTime":"2024-03-05T09:05:00Z"}', '{"eventTime":"2024-03-05T09:00:00Z","n":1e999}',
            '{"eventTime":"2024-03-05T09:00:00Z","n":123456789012345678901234567890}',
            '{"a":' + "[" * 600 + "]" * 600 + ',"eventTime":"2024-03-05T09:00:00Z"}',
            '{"eventTime":"2024-03-05T09:00:00Z","s":"caf\u00e9 \u2603"}',
            '{"eventTime":"2024-03-05T09:00:00Z","s":"\\ud800"}',
            '{"eventTime":"2024-03-05T09:00:00Z","eventName":"ConsoleLogin"}',
            # nested deeper than every decoder goes: not JSON for the general path, never a crash
            '{"a":' + "[" * 1100 + "]" * 1100 + ',"eventTime":"2024-03-05T09:00:00Z"}',
            '{"eventTime":"2024-03-05T09:00:00Z","s":"a\x01b"}', '{"eventTime":"2024-03-05T09:00:00Z","s":"a\x7fb"}',
            '{"eventTime":"2024-03-05T09:00:00\\/Z"}', '{"eventTime":"2024-03-05T09:00:00Z","k\\/":1,"n":-0}',
            '{"event\\/Time":"2024-03-05T09:00:00Z"}', '{"eventTime":"2024-03-05T09:00:00Z","n":01}',
            '{"eventTime":"2024-03-05T09:00:00Z","n":1.}', '{"eventTime":"2024-03-05T09:00:00Z","n":.5}',
            '{"eventTime":"2024-03-05T09:00:00Z","n":-}', '{"eventTime":"2024-03-05T09:00:00Z","n":1.5E+3}',
            '{"eventTime":"2024-03-05T09:00:00Z","b":tru}', '{"eventTime":"2024-03-05T09:00:00Z","b":NaN}',
            '{"x":{"eventTime":"2024-03-05T11:00:00Z"},"eventTime":"2024-03-05T09:00:00Z"}',
            '{"x":{"eventTime":7}}', '{"eventTime":"2024-03-05T09:00:00Z"}x', '{"eventTime":"2024-02-30T09:00:00Z"}',
            '{"eventTime":"2024-03-05T24:00:00Z"}', '{"eventTime":"2024-03-05t09:00:00Z"}',
            '{"eventTime":"2024-03-05T09:00:00Z","a":[1,,2]}', '{"eventTime":"2024-03-05T09:00:00Z","a":[1,2,]}',
            '{"eventTime" : "2024-03-05T09:00:00Z" , "a" : [ 1 , { } ] }', '{"eventTime":"2024-03-05T09:00:00Z"',
        ]))
    record: dict[str, Any] = {"eventVersion": "1.08", "eventTime": draw(st.sampled_from(_TIMES)),
                              "eventName": draw(st.sampled_from(_NAMES))}
    if draw(st.booleans()):
        record["eventSource"] = draw(st.sampled_from(["kms.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com"]))
    if draw(st.booleans()):
        record["errorCode"] = draw(st.sampled_from(["AccessDenied", "Client.UnauthorizedOperation", "Throttling"]))
    if draw(st.booleans()):
        record["userIdentity"] = {"type": draw(st.sampled_from(["Root", "IAMUser"])), "arn": "arn:aws:iam::1:user/x"}
    if draw(st.booleans()):
        record["responseElements"] = {"ConsoleLogin": draw(st.sampled_from(["Success", "Failure"]))}
        record["additionalEventData"] = {"MFAUsed": draw(st.sampled_from(["Yes", "No"]))}
    text = json.dumps(record, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(cloudtrail_line(), min_size=1, max_size=60), min_size=1, max_size=4),
       st.sampled_from([0, 60_000, 3_600_000]))
def test_cloudtrail_batches_agree(batches, lateness):
    run_both(_cis_filters(), JSON_TIME, batches, lateness, require_plan="LiteralPlan")


def test_cloudtrail_sample_agrees_and_takes_the_batch_path():
    lines = (Path(castlewatch.__file__).parent / "data" / "samples" / "cloudtrail.jsonl").read_text().splitlines()
    stats, points = run_both(_cis_filters(), JSON_TIME, [lines[i:i + 7] for i in range(0, len(lines), 7)],
                             require_plan="LiteralPlan")
    assert stats.matched["SignIns"] > 0 and points


@st.composite
def found_line(draw) -> str:
    """A JSON line holding some of the literals below, maybe escaped, maybe with characters
    beyond U+00FF, maybe not JSON."""
    parts = draw(st.lists(st.sampled_from(
        ['"ab"', '"ConsoleLogin"', '"Зоя"', '"b\\u0061"', '"Ab"', '"x"', '"ab x"', '"ConsoleLoginX"', '"é"', '"café"']),
        max_size=4))
    keys = draw(st.lists(st.sampled_from(["a", "b", "who", "eventName", "c"]), min_size=len(parts),
                         max_size=len(parts)))
    body = ",".join(f'"{k}":{v}' for k, v in zip(keys, parts))
    line = '{"eventTime":"2024-03-05T09:%02d:00Z"%s}' % (draw(st.integers(0, 59)), "," + body if body else "")
    return draw(st.sampled_from([line, line, line, line[:-1], " " + line]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(found_line(), min_size=1, max_size=40), min_size=1, max_size=3))
def test_the_block_scans_findings_given_to_the_general_evaluator_agree(batches):
    """The literals plan hands each candidate line's scan findings to the general evaluator
    (no second scan): literals too short for the block scan (``"ab"``, taken as found),
    beyond Latin-1 (``"Зоя"``), behind a ``\\u`` escape, or absent give what the
    evaluator's own scan gives."""
    filters = [mf("Short", '{ $.a = "ab" }'), mf("Long", '{ $.eventName = "ConsoleLogin" }'),
               mf("Cyrillic", '{ $.who = "Зоя" }'), mf("Either", '{ $.b = "ab" || $.c = "ConsoleLogin" }'),
               mf("Latin1", '{ $.c = "café" }'), mf("E", '{ $.c = "é" }'), mf("Default", '{ $.eventName = "ConsoleLogin" }', default=0)]
    run_both(filters, JSON_TIME, batches, require_plan="LiteralPlan")


# ---- the fields plan (VPC Flow Logs) ------------------------------------------------------

V = ("[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, "
     "windowstart, windowend, action, flowlogstatus]")
R = V.replace("action,", 'action="REJECT",')


def _vpc_filters(default: bool = False) -> list[dict]:
    return [
        mf("RejectCount", R, default=0 if default else None),
        mf("SSHRejects", R.replace("destport,", 'destport="22",').replace("protocol,", 'protocol="6",')),
        mf("NotAccept", V.replace("action,", 'action!="ACCEPT",')),
        mf("Bytes", V, "$bytes"),
        mf("BytesByAction", V, "$bytes", dims={"Action": "$action", "Port": "$7"}),
    ]


@st.composite
def flow_line(draw, clock: list) -> str:
    clock[0] += draw(st.integers(0, 3))
    start = clock[0] - (draw(st.integers(3600, 20000)) if draw(st.integers(0, 9)) < 3 else 0)
    kind = draw(st.sampled_from(["flow"] * 8 + ["nodata", "hostile"]))
    if kind == "nodata":
        return f"2 123 eni-1 - - - - - - - {start} {start + 60} - NODATA"
    if kind == "hostile":
        return draw(st.sampled_from([
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 \"10\" {start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 {start} {start} REJECT OK extra",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 {start} {start} REJECT",
            f"2  123\teni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 {start}  {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1e400 {start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 -0 {start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 9007199254740993 {start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 0.5 {start}.5 {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 x{start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 99999999999999999 {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 {'p' * 1100} 6 1 10 {start} {start} REJECT OK",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 10 {start} {start} R\u00c9JECT OK",
            f"2 123 eni-1 [1.2.3.4 5.6.7.8] 1 22 6 1 10 {start} {start} REJECT OK x",
            f"2 123 eni-1 1.2.3.4 5.6.7.8 1 22\x1c6 1 10 {start} {start} REJECT OK",
            "   ",
        ]))
    action = draw(st.sampled_from(["ACCEPT", "REJECT", "REJECT"]))
    port = draw(st.sampled_from(["22", "443", "022", "3389", "12345678"]))  # 8 bytes: a key the split cannot pack
    size = draw(st.sampled_from(["0", "1", "40", "1500", "000123", "123456789012345"]))
    eni = draw(st.integers(0, 3))
    return f"2 123 eni-{eni} 10.0.0.1 10.0.0.2 40000 {port} 6 3 {size} {start} {start + 5} {action} OK"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([0, 60_000, 3_600_000]), st.booleans())
def test_vpc_batches_agree(data, lateness, default):
    clock = [T0]
    batches = [data.draw(st.lists(flow_line(clock), min_size=1, max_size=80))
               for _ in range(data.draw(st.integers(1, 4)))]
    run_both(_vpc_filters(default), FIELD_TIME, batches, lateness, require_plan="FieldPlan")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([0, 3_600_000]))
def test_vpc_batches_mixing_both_paths_agree(data, lateness):
    """Without a dimension filter, lines the split cannot take go down the general path one
    by one, between the others."""
    clock = [T0]
    batches = [data.draw(st.lists(flow_line(clock), min_size=1, max_size=80))
               for _ in range(data.draw(st.integers(1, 4)))]
    run_both(_vpc_filters()[:4], FIELD_TIME, batches, lateness, require_plan="FieldPlan")


def test_vpc_sample_agrees_and_takes_the_batch_path():
    lines = (Path(castlewatch.__file__).parent / "data" / "samples" / "vpc-flow.log").read_text().splitlines()
    stats, points = run_both(_vpc_filters(), FIELD_TIME, [lines[i:i + 50] for i in range(0, len(lines), 50)],
                             require_plan="FieldPlan")
    assert stats.matched["Bytes"] > 0 and points


def test_a_dimension_filter_reaching_its_limit_in_a_block_is_disabled_as_the_general_path_does():
    lines = [f"2 123 eni-1 1.2.3.4 5.6.7.8 {i} 22 6 1 10 {T0 + i} {T0 + i} REJECT OK" for i in range(2500)]
    stats, _ = run_both([mf("BySrc", V, "$bytes", dims={"Src": "$srcport"})], FIELD_TIME,
                        [lines[i:i + 300] for i in range(0, len(lines), 300)], require_plan="FieldPlan")
    assert "BySrc" in stats.disabled_filters and stats.matched["BySrc"] == 1000


# ---- every conformance case ---------------------------------------------------------------


def _compiles(pattern: str) -> bool:
    try:
        castlewatch.compile_pattern(pattern)
    except castlewatch.FilterPatternError:
        return False
    return True


CASE_PATTERNS = [c for c in CASES if not c.get("invalid") and _compiles(c["pattern"])]


@pytest.mark.parametrize("case", CASE_PATTERNS, ids=[c["id"] for c in CASE_PATTERNS])
def test_conformance_case_agrees(case):
    """The case's pattern with a defaultValue filter beside it, over its event, the event in
    a JSON record with a time, and both again in a second batch; a space-delimited pattern
    also with its event timed by its first field."""
    event = case["event"]
    record = json.dumps({"eventTime": "2024-03-05T09:00:00Z", "message": event, "eventName": "ConsoleLogin"})
    filters = [mf("case", case["pattern"]), mf("other", '{ $.eventName = "ConsoleLogin" }', default=0)]
    batches = [[event, record, event], [record, event]]
    run_both(filters, JSON_TIME, batches)
    if castlewatch.compile_pattern(case["pattern"]).kind == "space_delimited":
        timed = f"{T0} {event}"
        run_both([mf("case", case["pattern"], default=0)], TimestampSpec("position", position=1, format="epoch_s"),
                 [[event, timed], [timed, event, "1 2 3"]])


def test_the_conformance_cases_exercise_both_plans():
    plans = {"LiteralPlan": 0, "FieldPlan": 0}
    for case in CASE_PATTERNS:
        for filters, spec in (
            ([mf("case", case["pattern"]), mf("other", '{ $.eventName = "ConsoleLogin" }', default=0)], JSON_TIME),
            ([mf("case", case["pattern"], default=0)], TimestampSpec("position", position=1, format="epoch_s")),
        ):
            stats = Stats()
            path = batch_path(LogGroupEvaluator(load_metric_filters(filters), stats, spec), MinuteAggregator(stats))
            if path is not None:
                plans[type(path.plan).__name__] += 1
    assert plans["LiteralPlan"] >= 50 and plans["FieldPlan"] >= 10, plans


# ---- the lines source's plain case --------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["a b c", "x" * 30, "", "\r", "line\r", "caf\u00e9", "\u2603 ok", "{}", " "]
                                + ["plain line"] * 6), max_size=60),
       st.integers(1, 7), st.lists(st.integers(1, 50), min_size=1, max_size=8), st.booleans(),
       st.sampled_from([None, 9, 12, 30]))
def test_plain_lines_cut_the_same_batches_as_the_loop(lines, batch_size, chunks, final_newline, max_bytes):
    """``StreamParser._plain_chunk`` (ASCII lines without ``\\r`` or an empty line, read in a
    few calls; with the C extension split by ``ascii_lines``, the chunk behind a pending
    line read in place) gives the events, batches, positions and counters the line-by-line
    loop gives, lines over the size limit (here made small) included."""
    from unittest import mock

    from castlewatch.engine import formats
    from castlewatch.engine.formats import StreamParser
    from castlewatch.engine.sources.base import SourceSpec

    class LineByLine(StreamParser):
        def _plain_chunk(self, *args) -> bool:
            return False

    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    results = []
    with mock.patch.object(formats, "MAX_EVENT_BYTES", max_bytes or formats.MAX_EVENT_BYTES):
        for kind in (StreamParser, LineByLine):
            parser = kind(SourceSpec("file", GROUP, "x"), batch_size)
            at, k = 0, 0
            while at < len(data):
                size = chunks[k % len(chunks)]
                parser.feed(data[at:at + size])
                at += size
                k += 1
            parser.end(final=True)
            parser.cut()
            results.append((parser.ready, parser.offset, parser.stats.malformed))
    assert results[0] == results[1]


# ---- the two scans, C and Python ----------------------------------------------------------


_ALPHABET = st.sampled_from(list("ab \t\x0b\x0c\r\x1c\x1f\"[]{}\\u") + ["\u00e9", "\u2603", "ab", "REJECT", '"key"',
                                                                              "7", "0123", "9" * 15, "1" * 16])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_ALPHABET, max_size=30).map("".join), min_size=1, max_size=20), st.integers(1, 6),
       st.lists(st.sampled_from(["REJECT", '"key"', "abab", "b \tab", "\u00e9abc", "\u2603abc", "[]{}"]),
                unique=True, max_size=5))
def test_the_c_scans_equal_the_python_ones(messages, k, literals):
    from castlewatch.engine.batch import blocks
    from castlewatch.grammar import literals as backends

    if "c" not in backends.AVAILABLE:
        pytest.skip("castlewatch.grammar._speedups is not built")
    before = backends.backend()
    got = {}
    try:
        for name in ("c", "python"):
            backends.use_backend(name)
            masks, flags = blocks.scan(messages, tuple(literals))
            pairs = tuple((j, lit.encode("utf-8")) for j in range(k) for lit in literals)[:16]
            split = blocks.split(blocks.block_of(messages), k, len(messages), tuple(range(k)), pairs, tuple(range(k)))
            bounds, exact, numbers, equal = split.bounds, split.exact, split.numbers, split.equal
            got[name] = (masks.tolist(), flags.tolist(), exact.tolist(), bounds[exact].tolist(), numbers.tolist(),
                         equal.tolist(), split.keys.tolist())
            for line, good, row in zip(messages, exact.tolist(), split.keys.tolist()):
                fields = line.split()
                assert row == [(len(f) << 56 | int.from_bytes(f.encode(), "little")) if good and len(f) <= 7
                               else 2**64 - 1 for f in (fields if good else [""] * k)]
            for line, good, row in zip(messages, exact.tolist(), equal.tolist()):
                fields = line.split()
                assert row == [good and fields[j] == lit.decode() for j, lit in pairs]
    finally:
        backends.use_backend(before)
    assert got["c"] == got["python"]
    for message, (m, f) in zip(messages, zip(got["c"][0], got["c"][1])):
        if max(message, default="a") <= "\xff":
            assert [bool(m[j >> 6] >> (j & 63) & 1) for j in range(len(literals))] == [x in message for x in literals]
            assert bool(f & 1) == ("\\u" in message)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="0123456789+-.e/x\u00e9", min_size=1, max_size=18), min_size=1, max_size=4)
                .map(" ".join), min_size=1, max_size=40), st.integers(1, 4))
def test_split_reads_plain_digit_fields_as_python_int_does(lines: list[str], k: int) -> None:
    """``blocks.split``'s numbers, on both backends: a field's value exactly when the line is
    exact and the field is 1 to MAX_DIGITS ASCII digits (int(text) there), else -1."""
    from castlewatch.engine.batch import blocks
    from castlewatch.grammar import literals as backends

    before = backends.backend()
    try:
        for name in backends.AVAILABLE:
            backends.use_backend(name)
            found = blocks.split(blocks.block_of(lines), k, len(lines), tuple(range(k)))
            exact, numbers = found.exact, found.numbers
            for line, good, row in zip(lines, exact.tolist(), numbers.tolist()):
                fields = line.split()
                assert good == (len(fields) == k and line.isascii()), (name, line)
                for j, n in enumerate(row):
                    plain = good and 1 <= len(fields[j]) <= blocks.MAX_DIGITS and fields[j].isascii() and fields[j].isdigit()
                    assert n == (int(fields[j]) if plain else -1), (name, line, j)
    finally:
        backends.use_backend(before)


_FIELD_TEXT = st.one_of(st.sampled_from(["REJECT", "22"]),
                        st.text(alphabet=st.sampled_from(list("ab09-\u00e9\"[\x1c")), min_size=1, max_size=40))
_SEPARATOR = st.text(alphabet=" \t\x0b\x0c\r", min_size=1, max_size=70)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet=" \t", max_size=70), st.lists(st.tuples(_FIELD_TEXT, _SEPARATOR), max_size=20),
                          st.booleans()), min_size=1, max_size=12),
       st.integers(1, 20))
def test_the_c_split_of_long_lines_equals_the_python_one(shapes, k):
    """Lines of up to about 2 KB, whose fields and separator runs straddle the C split's
    64-byte windows (and lines of exactly 64 or 128 bytes): C and Python find the same
    fields, flags and columns; an exact line's fields are ``str.split``'s."""
    from castlewatch.engine.batch import blocks
    from castlewatch.grammar import literals as backends

    if "c" not in backends.AVAILABLE:
        pytest.skip("castlewatch.grammar._speedups is not built")
    lines = []
    for lead, fields, trail in shapes:
        line = lead + "".join(text + sep for text, sep in fields)
        line = line if trail else line.rstrip(" \t\x0b\x0c\r")
        lines.append(line)
    lines += ["a" * 64, "a" * 63 + " ", " " * 63 + "b", "ab " * 42 + "ab"]  # 64, 64, 64 and 128 bytes
    before = backends.backend()
    got = {}
    try:
        for name in ("c", "python"):
            backends.use_backend(name)
            block = blocks.block_of(lines)
            split = blocks.split(block, k, len(lines), tuple(range(min(k, 16))), ((0, b"REJECT"),), tuple(range(min(k, 16))))
            got[name] = (split.exact.tolist(), split.bounds[split.exact].tolist(), split.numbers.tolist(),
                         split.equal.tolist(), split.keys.tolist())
            if name == "c":
                for line, good, row in zip(lines, split.exact.tolist(), split.bounds.tolist()):
                    if good:
                        assert [block[a:z].decode() for a, z in row] == line.split()
    finally:
        backends.use_backend(before)
    assert got["c"] == got["python"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab \n\t\x00\x7f") + ["\u00e9", "\u2603", "\ud800"]), max_size=12),
                max_size=12))
def test_block_of_is_the_joined_utf8_of_the_messages(messages: list[str]) -> None:
    """``blocks.block_of`` (the C copy for ASCII messages) gives the bytes of the definition."""
    from castlewatch.engine.batch import blocks

    expected = ("\n".join(messages) + "\n").encode("utf-8", "surrogatepass") if messages else b""
    assert blocks.block_of(messages) == expected
    assert blocks.block_of(tuple(messages)) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, 2.0, -3.0]), max_size=40),
       st.lists(st.one_of(st.integers(0, 300).map(float), st.just(0.0)), min_size=1, max_size=400))
def test_add_block_equals_add_one_by_one_across_the_small_values_limit(before, block):
    """A datapoint holding a few values (a ``-0.0`` among them, perhaps) takes a block of up to
    400 values, often more distinct ones than its dict keeps, as an array or (up to
    LIST_BLOCK) a list: the same values, counts and zero as adding them one by one."""
    from castlewatch.model import LIST_BLOCK, Datapoint

    b = Datapoint("ns", "m", (), "None", T0)
    for v in before:
        b.add(v)
    total = b.sum
    for v in block:
        b.add(v)
        total += v
    raw = np.array(block)
    for form in ([raw, list(block)] if len(block) <= LIST_BLOCK else [raw]):  # add_block's two forms
        a = Datapoint("ns", "m", (), "None", T0)
        for v in before:
            a.add(v)
        a.add_block(total, len(block), min(a.minimum, raw.min()), max(a.maximum, raw.max()), form)
        assert a.items() == b.items() and a.sample_count == b.sample_count
        assert [math.copysign(1, v) for v, _ in a.items() if v == 0] == [math.copysign(1, v) for v, _ in b.items() if v == 0]
        assert list(a.items()) == list(b.items())  # the dict's order too (first arrival)


def test_more_comparisons_than_the_split_takes_leave_the_fields_plan():
    """Seventeen different (field, value) comparisons are more than the C split makes in one
    pass: no fields plan (the literal plan or the general path), the same answers."""
    fields = ", ".join(f"f{i}" for i in range(1, 15))
    filters = [mf(f"M{i}", f"[{fields.replace(f'f{1 + i % 13}', f'f{1 + i % 13}=v{i}', 1)}]") for i in range(17)]
    lines = [" ".join(f"v{(r + c) % 17}" for c in range(10)) + f" {T0 + r} {T0 + r} ACCEPT OK" for r in range(300)]
    loaded = load_metric_filters(filters)
    path = batch_path(LogGroupEvaluator(loaded, Stats(), FIELD_TIME), MinuteAggregator(Stats(), 60_000))
    assert path is None or type(path.plan).__name__ != "FieldPlan"
    stats, _ = run_both(filters, FIELD_TIME, [lines[i:i + 100] for i in range(0, 300, 100)])
    assert sum(stats.matched.values()) > 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=60), st.booleans())
def test_first_and_inverse_is_np_unique(codes, ordered):
    """fold's grouping of contributions: np.unique's first indexes and inverse, sorted input or not."""
    from castlewatch.engine.batch.plan import unique_first_inverse

    a = np.array(sorted(codes) if ordered else codes, np.int64)
    _, first, inverse = unique_first_inverse(a, limit=0)
    _, f, i = np.unique(a, return_index=True, return_inverse=True)
    assert first.tolist() == f.tolist() and inverse.tolist() == i.reshape(-1).tolist()


@pytest.mark.parametrize("late_pairs", [10, 45, 49, 50, 51, 200])
def test_fold_near_the_open_late_datapoints_limit_equals_add_one_by_one(monkeypatch, late_pairs):
    """A block whose late contributions open about MAX_OPEN_LATE_DATAPOINTS datapoints (here 50):
    the fold (or the sequential path it falls back to) does what add() does one by one."""
    from castlewatch.engine import aggregate

    monkeypatch.setattr(aggregate, "MAX_OPEN_LATE_DATAPOINTS", 50)
    monkeypatch.setattr(batch_fold, "MAX_OPEN_LATE_DATAPOINTS", 50)
    keys = [("ns", f"m{i % 2}", (("d", str(i)),), "None") for i in range(4)]
    a, b = MinuteAggregator(Stats(), 0), MinuteAggregator(Stats(), 0)
    now = T0 * 1000 + 10_000 * 60_000
    kid = [0] + [i % 4 for i in range(late_pairs * 3)]
    ts = [now] + [now - (5 + (i % late_pairs)) * 60_000 for i in range(late_pairs * 3)]
    vals = [float(i % 7) for i in range(len(kid))]
    batch_fold.fold(a, keys, np.array(kid), np.array(ts, np.int64), np.array(vals))
    for k, t, v in zip(kid, ts, vals):
        b.add(keys[k], t, v)
    assert [_point(p) for p in a.close_all()] == [_point(p) for p in b.close_all()]
    assert a.stats.late_events == b.stats.late_events


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=0, max_size=80), st.sampled_from([np.int64, np.uint64]), st.integers(1, 9))
def test_unique_first_inverse_is_np_unique(values, dtype, limit):
    """The plans' distinct values (peeled when few, else np.unique): np.unique's three results."""
    from castlewatch.engine.batch.plan import unique_first_inverse

    a = np.array(values, dtype)
    got = unique_first_inverse(a, limit)
    want = np.unique(a, return_index=True, return_inverse=True)
    assert [x.tolist() for x in got] == [want[0].tolist(), want[1].tolist(), want[2].reshape(-1).tolist()]


_REQUIREMENT = st.recursive(
    st.integers(0, 69),
    lambda inner: st.tuples(st.sampled_from(["all", "any"]), st.lists(inner, min_size=1, max_size=4)),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), _REQUIREMENT), min_size=1, max_size=6),
       st.lists(st.integers(0, 2**70 - 1), min_size=1, max_size=30))
def test_the_requirements_as_mask_tests_are_the_requirements(requirements, rows):
    """The literal plan's tests of the scan masks (one for all requirements met by any one
    literal, one per ``all``, the nested ones as before) find the same candidates as each
    requirement evaluated on its own, with 70 literals (two mask words)."""
    from castlewatch.engine.batch.literal_plan import LiteralPlan, _bit_tests

    masks = np.array([[r & (2**64 - 1), r >> 64] for r in rows], np.uint64)
    found = np.unpackbits(masks.view(np.uint8), axis=1, bitorder="little").view(bool)
    plan = LiteralPlan.__new__(LiteralPlan)
    expected = np.zeros(len(rows), bool)
    for req in requirements:
        expected |= True if req is None else plan._met(req, found)
    plan._tests = _bit_tests(requirements, 70)
    assert plan._required(masks).tolist() == expected.tolist()
