"""``castlewatch conformance --endpoint-url URL``: castlewatch's conformance cases through
TestMetricFilter on a real endpoint, compared with castlewatch's answers: castlewatch serve
agrees on every case, moto does not answer TestMetricFilter at all, and an endpoint that
answers differently is reported case by case, in the cases' own format with --output json."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from aws_emulator import Fault, FaultProxy
from click.testing import CliRunner
from serve_helpers import ServeThread

import castlewatch
from castlewatch.cli import main

TESTS_CASES = Path(__file__).parent / "conformance" / "cases.jsonl"
BUNDLED = Path(__file__).parent.parent / "castlewatch" / "data" / "conformance" / "cases.jsonl"
CASES = [json.loads(line) for line in TESTS_CASES.read_text(encoding="utf-8").split("\n") if line]
#: The first two TestMetricFilter answers of a proxy: no matches, whatever was asked.
NOTHING_MATCHES = (Fault("answer", body=b'{"matches": []}'), Fault("answer", body=b'{"matches": []}'))


@pytest.fixture(scope="module")
def serving():
    with ServeThread() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch):
    from aws_emulator import FAKE_ENV

    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


def conformance(*args: str):
    result = CliRunner().invoke(main, ["conformance", *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_the_bundled_cases_are_the_suites():
    """The package ships tests/conformance/cases.jsonl as it is (castlewatch/data/conformance)."""
    assert BUNDLED.read_bytes() == TESTS_CASES.read_bytes()


def test_castlewatch_serve_agrees_on_every_case(serving, aws_env):
    result = conformance("--endpoint-url", serving.url)
    assert result.exit_code == 0, result.output
    summary = f"castlewatch conformance: {len(CASES)} cases on endpoint {serving.url}: 217 agree, 2 skipped"
    assert summary in result.stderr
    for kind in ("terms", "regex", "json", "space_delimited", "total"):
        assert kind in result.stdout


def test_json_output_is_the_cases_format_with_the_endpoints_answers(serving, aws_env):
    result = conformance("--endpoint-url", serving.url, "--output", "json")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == [c["id"] for c in CASES]
    for record, case in zip(records, CASES):
        for key in ("pattern", "event", "source", "note"):
            assert record[key] == case[key]
        outcome = record["conformance"]["outcome"]
        if case.get("invalid") and "transform" in case:
            assert outcome == "skipped" and record["transform"] == case["transform"]
            continue
        assert outcome == "agree", record
        assert record["match"] == case["match"] and bool(record.get("invalid")) == bool(case.get("invalid"))
        if case["match"] and case["extracted"] is not None:
            assert record["extracted"] == case["extracted"]
        if "event_number" in case:
            assert record["event_number"] == case["event_number"]


def test_moto_does_not_answer_test_metric_filter(moto, aws_env):
    result = conformance("--endpoint-url", moto)
    assert result.exit_code == 69
    assert (f"Error: endpoint {moto} does not answer TestMetricFilter: HTTP 500 Internal Server Error, not an AWS "
            "error answer") in result.stderr
    assert "217 error, 2 skipped" in result.stderr


def test_an_endpoint_that_answers_otherwise_is_reported_case_by_case(serving, aws_env, tmp_path):
    """An endpoint (castlewatch serve behind a proxy that answers its two calls with no
    matches) that accepts a pattern castlewatch rejects and misses a match: two
    disagreements, one agreement (the same call), exit 3; --output json records what the
    endpoint said."""
    cases = tmp_path / "cases.jsonl"
    mine = [
        {"id": "mine-1", "pattern": "%something!%", "event": "x", "match": False, "extracted": None, "invalid": True},
        {"id": "mine-2", "pattern": "ERROR", "event": "ERROR here", "match": True, "extracted": {}},
        {"id": "mine-3", "pattern": "ERROR", "event": "all is well", "match": False, "extracted": None},
    ]
    cases.write_text("\n".join(json.dumps(c) for c in mine) + "\n")
    with FaultProxy(serving.url) as proxy:
        proxy.inject("TestMetricFilter", *NOTHING_MATCHES)
        result = conformance("--endpoint-url", proxy.url, "--cases", str(cases), "--output", "json")
    assert result.exit_code == 3
    records = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["mine-1"]["conformance"]["outcome"] == "disagree"
    with pytest.raises(castlewatch.FilterPatternError) as rejected:
        castlewatch.compile_pattern("%something!%")
    assert records["mine-1"]["conformance"]["detail"] == (
        f"the endpoint accepts a pattern castlewatch rejects ({rejected.value.message!r})")
    assert (records["mine-1"]["match"], records["mine-1"]["extracted"], "invalid" in records["mine-1"]) == (
        False, None, False)
    assert records["mine-2"]["match"] is False
    assert records["mine-2"]["conformance"]["detail"] == "the endpoint does not match it"
    assert records["mine-2"]["conformance"]["castlewatch"] == {"match": True, "extracted": {}}
    assert records["mine-3"]["conformance"]["outcome"] == "agree"
    assert "2 disagree, 1 agree" not in result.stderr and "1 agree, 2 disagree" in result.stderr

    with FaultProxy(serving.url) as proxy:
        proxy.inject("TestMetricFilter", *NOTHING_MATCHES)
        table = conformance("--endpoint-url", proxy.url, "--cases", str(cases))
    assert table.exit_code == 3
    for shown in ("Disagreements", "mine-1", "mine-2", "the endpoint does not match it"):
        assert shown in table.stdout


def test_unreachable_endpoint_and_bad_cases_files(aws_env, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = conformance("--endpoint-url", url)
    assert result.exit_code == 69
    assert f"Error: endpoint {url} does not answer TestMetricFilter: EndpointConnectionError" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "pattern": "x", "event": "y"}\n{"id": "b", "pattern": 3}\n')
    result = conformance("--endpoint-url", url, "--cases", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:2: a case is an object with string id, pattern and event" in result.stderr
