"""Conformance-style cases for the [field] rules of issue 8 (``tests/field_cases.jsonl``).

Same line format as ``tests/conformance/cases.jsonl`` (see its README); each case's
``source`` names the [field] evidence of ``docs/filter-patterns.md`` (§3.1 dotted bare
terms, §6.1 parentheses in space-delimited slot conditions).

Every case runs on both matcher backends and through every evaluation path, which must
agree: TestMetricFilter (:func:`castlewatch.test_metric_filter`), ``FilterPattern.matches``
/ ``extract``, the engine's split-once path (``split_fields`` + ``match_fields``), the
pattern's own literal prefilter, and :class:`LogGroupEvaluator` with the filter alone and
among other filters with literals, so that the shared ``LiteralScanner`` decides which
filters an event visits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import castlewatch
from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.grammar import ast, split_fields
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import LogEvent, Stats

pytestmark = pytest.mark.usefixtures("literal_backend")

CASES_FILE = Path(__file__).parent / "field_cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line]
VALID = [c for c in CASES if not c.get("invalid")]
INVALID = [c for c in CASES if c.get("invalid")]
FAMILIES: dict[str, list[dict]] = defaultdict(list)
for _case in sorted(VALID, key=lambda c: c["event_number"]):
    FAMILIES[_case["id"].rsplit("-", 1)[0]].append(_case)

T0 = 1_709_629_230_000  # epoch ms
# Companions with literals: with two or more such filters in a log group the evaluator
# scans all their literals in one pass and visits only the filters whose literals occur.
COMPANIONS = ['[x = "*zz-companion-zz*"]', '{ $.companion = "zz-companion-zz" }']


def _filter(name: str, pattern: str, dims: dict[str, str] | None = None) -> dict:
    t: dict = {"metricName": name, "metricNamespace": "field", "metricValue": "1"}
    if dims:
        t["dimensions"] = dims
    return {"filterName": name, "filterPattern": pattern, "logGroupName": "g", "metricTransformations": [t]}


def _dimensions(case: dict) -> dict[str, str]:
    """Up to 3 dimensions (§8.2 step 6) on the case's named slots, to see the engine's values."""
    tree = castlewatch.compile_pattern(case["pattern"]).tree
    if not isinstance(tree, ast.SpaceDelimitedPattern):
        return {}
    names = [s.name for s in tree.slots if s.kind == "named"]
    return {name: f"${name}" for name in names[:3]}


def _engine(case: dict, with_companions: bool) -> tuple[LogGroupEvaluator, Stats, list]:
    filters = [_filter("case", case["pattern"], _dimensions(case))]
    if with_companions:
        filters += [_filter(f"companion-{i}", p) for i, p in enumerate(COMPANIONS)]
    stats = Stats()
    evaluator = LogGroupEvaluator(load_metric_filters(filters), stats)
    out: list = []
    evaluator.evaluate(LogEvent(T0, case["event"], "g"), lambda key, ts, value: out.append((key, value)))
    return evaluator, stats, out


def test_case_ids_are_unique_and_sources_name_the_field_evidence() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert all("[field]" in c["source"] or c.get("invalid") for c in CASES)


@pytest.mark.parametrize("case", INVALID, ids=[c["id"] for c in INVALID])
def test_invalid_field_case_is_rejected(case: dict) -> None:
    """The pattern is refused by compile and by PutMetricFilter validation alike."""
    with pytest.raises(castlewatch.FilterPatternError):
        castlewatch.compile_pattern(case["pattern"])
    with pytest.raises(InvalidParameterError):
        load_metric_filters([_filter("case", case["pattern"])])


@pytest.mark.parametrize("case", VALID, ids=[c["id"] for c in VALID])
def test_field_case_agrees_on_every_path(case: dict) -> None:
    pattern, event, expected = case["pattern"], case["event"], case["match"]
    compiled = castlewatch.compile_pattern(pattern)

    # TestMetricFilter, the case alone and its family in event_number order
    alone = castlewatch.test_metric_filter(pattern, [event])["matches"]
    assert bool(alone) is expected
    family = [c["event"] for c in FAMILIES[case["id"].rsplit("-", 1)[0]]]
    numbered = castlewatch.test_metric_filter(pattern, family)["matches"]
    assert (case["event_number"] in [m["eventNumber"] for m in numbered]) is expected
    if expected and case["extracted"] is not None:
        assert alone[0]["extractedValues"] == case["extracted"]

    # the compiled pattern: matches, extract, the prefilter as a necessary condition
    assert compiled.matches(event) is expected
    assert (compiled.extract(event) is not None) is expected
    if expected and compiled.prefilter is not None:
        assert compiled.prefilter(event)

    # the engine's split-once path
    if compiled.kind == "space_delimited":
        values = compiled.match_fields(split_fields(event), event)
        assert (values is not None) is expected

    # the engine, alone and with the shared literal scanner
    for with_companions in (False, True):
        evaluator, stats, out = _engine(case, with_companions)
        if with_companions and compiled.kind != "terms" and compiled.requirement is not None:
            assert evaluator.filters[0].check is not None  # decided by the shared LiteralScanner
        assert stats.matched["case"] == int(expected)
        assert all(stats.matched[f"companion-{i}"] == 0 for i in range(len(COMPANIONS)) if with_companions)
        mine = [(key, value) for key, value in out if key[1] == "case"]
        assert len(mine) == int(expected)
        if mine and case["extracted"]:
            dims = dict(mine[0][0][2])
            assert dims == {name: case["extracted"][f"${name}"] for name in _dimensions(case)}
