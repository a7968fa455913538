"""The conformance cases of ``tests/conformance/cases.jsonl`` (see the README there).

Every case without a ``transform`` is a test here, parametrized by its id. Cases with a
``transform`` exercise metric transformations, which belong to the metric engine; they
are kept in :data:`TRANSFORM_CASES` for its tests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import castlewatch

# every test here runs on both matcher backends (castlewatch.grammar.literals)
pytestmark = pytest.mark.usefixtures("literal_backend")

CASES_FILE = Path(__file__).parent / "conformance" / "cases.jsonl"
ALL_CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").split("\n") if line]
TRANSFORM_CASES = [case for case in ALL_CASES if "transform" in case]
PATTERN_CASES = [case for case in ALL_CASES if "transform" not in case]


def _family(case: dict) -> str:
    return case["id"].rsplit("-", 1)[0]


FAMILIES: dict[str, list[dict]] = defaultdict(list)
for _case in sorted((c for c in PATTERN_CASES if "event_number" in c), key=lambda c: c["event_number"]):
    FAMILIES[_family(_case)].append(_case)


def _describe(case: dict, expected: object, actual: object) -> str:
    return (
        f"\n  case:     {case['id']} ({case['note']})"
        f"\n  pattern:  {case['pattern']!r}"
        f"\n  event:    {case['event']!r}"
        f"\n  expected: {expected!r}"
        f"\n  actual:   {actual!r}"
    )


def test_case_ids_are_unique() -> None:
    ids = [case["id"] for case in ALL_CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", PATTERN_CASES, ids=[case["id"] for case in PATTERN_CASES])
def test_conformance(case: dict) -> None:
    if case.get("invalid"):
        try:
            compiled = castlewatch.compile_pattern(case["pattern"])
        except castlewatch.FilterPatternError:
            return
        pytest.fail("pattern accepted" + _describe(case, "FilterPatternError", compiled.kind))

    if "event_number" in case:
        messages = [member["event"] for member in FAMILIES[_family(case)]]
        matches = castlewatch.test_metric_filter(case["pattern"], messages)["matches"]
        found = [m for m in matches if m["eventNumber"] == case["event_number"]]
    else:
        found = castlewatch.test_metric_filter(case["pattern"], [case["event"]])["matches"]

    assert bool(found) == case["match"], _describe(case, {"match": case["match"]}, found)
    if found:
        assert found[0]["eventMessage"] == case["event"], _describe(case, case["event"], found[0])
        if case["extracted"] is not None:
            actual = found[0]["extractedValues"]
            assert actual == case["extracted"], _describe(case, case["extracted"], actual)
