"""The differential check: castlewatch's conformance cases through TestMetricFilter on any
endpoint (AWS itself, an emulator, ``castlewatch serve``), each answer compared with
castlewatch's own.

Cases are in the format of ``tests/conformance/cases.jsonl`` (its README): the bundled
copy (``castlewatch/data/conformance/cases.jsonl``) or a file of the user's. They are sent
as TestMetricFilter calls castlewatch answers identically: the events of one pattern
together (at most 50 a call: each event is tested on its own, spec §7), a family with
``event_number`` as one call in that order, an invalid pattern alone. Cases whose
``transform`` is what is invalid cannot be checked through TestMetricFilter (it takes no
transformation) and are *skipped*, with that reason.

Per case the outcome is ``agree`` (both rejected the pattern with the same code and
message, or both gave the same match, ``extractedValues`` and ``eventNumber``),
``disagree``, ``error`` (the endpoint failed otherwise: unknown operation, 5xx, no
connection) or ``skipped``. An endpoint whose first answer is such an error does not
answer TestMetricFilter at all (moto answers 500, LocalStack 501): the report says so once
(:attr:`Report.unavailable`) rather than 219 times.

:func:`record` writes a case back in the cases' own format with the *endpoint's* answer
(``match``, ``extracted``, ``event_number``, ``invalid``), so that a run against AWS
records the service's answers on new cases; castlewatch's answer and the outcome are under
its ``conformance`` key.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any

from castlewatch.aws import AwsTarget, RetryPolicy, call, client, describe_error, error_code, is_denied
from castlewatch.grammar import MAX_TEST_MESSAGES, compile_pattern, test_metric_filter
from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError

BUNDLED_CASES = files("castlewatch") / "data" / "conformance" / "cases.jsonl"
#: Kinds of pattern (spec §2), in the order the report lists them.
KINDS = ("all", "terms", "regex", "json", "space_delimited")
OUTCOMES = ("agree", "disagree", "error", "skipped")
SKIP_TRANSFORM = "the transformation is what is invalid: TestMetricFilter takes none (PutMetricFilter checks it)"


class CasesError(ValueError):
    """A cases file that cannot be read, or a line not in the cases' format (``str()``
    names the file and line)."""


def load_cases(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The cases of ``path`` (JSON Lines in the cases' format), or the bundled ones.

    Raises:
        CasesError: unreadable file, invalid JSON, a line without a string ``id``,
            ``pattern`` and ``event``, a repeated ``id``.
    """
    name = "the bundled cases" if path is None else str(path)
    try:
        text = BUNDLED_CASES.read_text(encoding="utf-8") if path is None else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CasesError(f"cannot read {name}: {getattr(error, 'strerror', None) or error}") from None
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError as error:
            raise CasesError(f"{name}:{number}: invalid JSON: {error}") from None
        if not isinstance(case, dict) or not all(isinstance(case.get(k), str) for k in ("id", "pattern", "event")):
            raise CasesError(f"{name}:{number}: a case is an object with string id, pattern and event")
        if case["id"] in seen:
            raise CasesError(f"{name}:{number}: id {case['id']!r} is used twice")
        seen.add(case["id"])
        cases.append(case)
    return cases


def pattern_kind(pattern: str) -> str:
    """The kind of ``pattern`` (spec §2), valid or not: its first character once trimmed."""
    try:
        return compile_pattern(pattern).kind
    except FilterPatternError:
        first = pattern.strip()[:1]
        return {"": "all", "{": "json", "[": "space_delimited", "%": "regex"}.get(first, "terms")


@dataclass
class Batch:
    """One TestMetricFilter call: ``pattern`` and the events of ``cases``, in order."""

    pattern: str
    cases: list[dict[str, Any]]

    @property
    def messages(self) -> list[str]:
        return [case["event"] for case in self.cases]


def plan(cases: list[dict[str, Any]]) -> tuple[list[Batch], list[dict[str, Any]]]:
    """The calls that check ``cases``, and the cases that cannot be checked so.

    Raises:
        CasesError: an ``event_number`` family of more than 50 events or more than one
            pattern (it must be one call).
    """
    batches: list[Batch] = []
    skipped: list[dict[str, Any]] = []
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_pattern: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        if case.get("invalid") and "transform" in case:
            skipped.append(case)
        elif case.get("invalid"):
            batches.append(Batch(case["pattern"], [case]))
        elif "event_number" in case:
            families[case["id"].rsplit("-", 1)[0]].append(case)
        else:
            by_pattern[case["pattern"]].append(case)
    for family, members in families.items():
        members.sort(key=lambda c: c["event_number"])
        if len(members) > MAX_TEST_MESSAGES or len({c["pattern"] for c in members}) != 1:
            raise CasesError(f"family {family!r}: event_number cases must share one pattern and be at most 50")
        batches.append(Batch(members[0]["pattern"], members))
    for pattern, members in by_pattern.items():
        for start in range(0, len(members), MAX_TEST_MESSAGES):
            batches.append(Batch(pattern, members[start : start + MAX_TEST_MESSAGES]))
    return batches, skipped


def castlewatch_answer(batch: Batch) -> dict[str, Any]:
    """castlewatch's TestMetricFilter answer to ``batch``: ``{"matches": [...]}`` or
    ``{"invalid": True, "code", "message"}``."""
    try:
        return test_metric_filter(batch.pattern, batch.messages)
    except FilterPatternError as error:
        return {"invalid": True, "code": error.code, "message": error.message}
    except InvalidParameterError as error:
        return {"invalid": True, "code": error.code, "message": str(error)}


async def endpoint_answer(logs: Any, batch: Batch, policy: RetryPolicy) -> dict[str, Any]:
    """The endpoint's TestMetricFilter answer to ``batch``: as :func:`castlewatch_answer`,
    or ``{"error": "Code: message", "denied": bool}`` for any other failure."""
    try:
        response = await call(
            logs.test_metric_filter, policy=policy, filterPattern=batch.pattern, logEventMessages=batch.messages
        )
    except Exception as error:
        code = error_code(error)
        if code == "InvalidParameterException":
            return {"invalid": True, "code": code, "message": error.response.get("Error", {}).get("Message", "")}
        return {"error": _describe(error), "denied": is_denied(error)}
    return {"matches": response.get("matches") or []}


def _describe(error: BaseException) -> str:
    """``Code: message``; for an answer that is not an AWS error (an HTML error page, an
    empty 404), its HTTP status and reason."""
    code = error_code(error)
    if code.isdigit():
        status = int(code)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "unknown status"
        return f"HTTP {status} {reason}, not an AWS error answer"
    return describe_error(error)


def case_views(batch: Batch, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """One answer per case of ``batch``: ``{"match", "extracted"}`` (the match whose
    ``eventNumber`` is the case's 1-based position in the call, spec §7), or the answer's
    ``invalid`` / ``error``."""
    if "matches" not in answer:
        return [dict(answer) for _ in batch.cases]
    found = {m.get("eventNumber"): m for m in answer["matches"] if isinstance(m, dict)}
    views = []
    for position, case in enumerate(batch.cases, 1):
        match = found.get(position)
        if match is not None and match.get("eventMessage") == case["event"]:
            views.append({"match": True, "extracted": match.get("extractedValues") or {}})
        else:
            views.append({"match": False, "extracted": None})
    return views


def compare(mine: dict[str, Any], theirs: dict[str, Any]) -> tuple[str, str]:
    """``(outcome, detail)`` of the endpoint's view of a case against castlewatch's."""
    if "error" in theirs:
        return "error", theirs["error"]
    if mine.get("invalid") or theirs.get("invalid"):
        if mine.get("invalid") and theirs.get("invalid"):
            if (mine["code"], mine["message"]) == (theirs["code"], theirs["message"]):
                return "agree", ""
            return "disagree", f"both reject it, the endpoint with {theirs['code']}: {theirs['message']!r}"
        if theirs.get("invalid"):
            return "disagree", f"the endpoint rejects the pattern ({theirs['code']}: {theirs['message']!r})"
        return "disagree", f"the endpoint accepts a pattern castlewatch rejects ({mine['message']!r})"
    if mine["match"] != theirs["match"]:
        return "disagree", "the endpoint matches it" if theirs["match"] else "the endpoint does not match it"
    if mine["match"] and mine["extracted"] != theirs["extracted"]:
        return "disagree", f"extractedValues {json.dumps(theirs['extracted'], ensure_ascii=False)}"
    return "agree", ""


@dataclass
class CaseResult:
    """One case's outcome: ``kind`` of its pattern, ``outcome`` (one of :data:`OUTCOMES`),
    the ``endpoint``'s and ``castlewatch``'s views of it, and a ``detail`` in words."""

    case: dict[str, Any]
    kind: str
    outcome: str
    endpoint: dict[str, Any]
    castlewatch: dict[str, Any]
    detail: str = ""


@dataclass
class Report:
    """The check's results. ``where``: the endpoint (``endpoint URL`` / ``region R``);
    ``unavailable``: why the endpoint does not answer TestMetricFilter at all (its first
    answer was an error), else ""; ``denied``: that error was AWS denying the call."""

    where: str
    results: list[CaseResult] = field(default_factory=list)
    unavailable: str = ""
    denied: bool = False

    def counts(self) -> dict[str, Counter]:
        """Outcomes per pattern kind (kinds with cases only), and ``"total"``."""
        table: dict[str, Counter] = {}
        for result in self.results:
            table.setdefault(result.kind, Counter())[result.outcome] += 1
        ordered = {kind: table[kind] for kind in KINDS if kind in table}
        ordered["total"] = sum(ordered.values(), Counter())
        return ordered


async def run_check(
    target: AwsTarget, cases: list[dict[str, Any]], *, concurrency: int = 4, policy: RetryPolicy = RetryPolicy(5)
) -> Report:
    """Check ``cases`` on the endpoint of ``target`` (see the module docstring).

    The first call goes alone and without retries: if it fails other than with
    ``InvalidParameterException``, the endpoint does not answer TestMetricFilter and every
    case is an ``error`` (:attr:`Report.unavailable`). Then up to ``concurrency`` calls at
    once, throttling and 5xx answers retried per ``policy``.

    Raises:
        CasesError: as :func:`plan`.
        botocore.exceptions.NoRegionError, ProfileNotFound: as :func:`castlewatch.aws.client`.
    """
    batches, skipped = plan(cases)
    report = Report(target.where())
    answers: list[dict[str, Any]] = []
    async with client("logs", target) as logs:
        if batches:
            first = await endpoint_answer(logs, batches[0], RetryPolicy(max_attempts=1))
            if "error" in first:
                report.unavailable, report.denied = first["error"], first["denied"]
                answers = [first] * len(batches)
            else:
                gate = asyncio.Semaphore(concurrency)

                async def one(batch: Batch) -> dict[str, Any]:
                    async with gate:
                        return await endpoint_answer(logs, batch, policy)

                answers = [first, *await asyncio.gather(*(one(b) for b in batches[1:]))]
    for batch, answer in zip(batches, answers):
        kind = pattern_kind(batch.pattern)
        views = zip(batch.cases, case_views(batch, castlewatch_answer(batch)), case_views(batch, answer))
        for case, mine, theirs in views:
            outcome, detail = compare(mine, theirs)
            report.results.append(CaseResult(case, kind, outcome, theirs, mine, detail))
    for case in skipped:
        report.results.append(CaseResult(case, pattern_kind(case["pattern"]), "skipped", {}, {}, SKIP_TRANSFORM))
    order = {case["id"]: i for i, case in enumerate(cases)}
    report.results.sort(key=lambda r: order[r.case["id"]])
    return report


def record(result: CaseResult, where: str) -> dict[str, Any]:
    """The case in the cases' own format with the endpoint's answer (``match``,
    ``extracted``, ``event_number``, ``invalid``; the case's own where the endpoint gave
    none), and ``conformance``: ``{endpoint, kind, outcome, castlewatch, detail}``."""
    case = result.case
    out: dict[str, Any] = {"id": case["id"], "pattern": case["pattern"], "event": case["event"]}
    answer = result.endpoint
    if answer.get("invalid"):
        out.update(match=False, extracted=None, invalid=True)
    elif "match" in answer:
        out.update(match=answer["match"], extracted=answer["extracted"])
        if "event_number" in case:  # matched at that position, or not at all (cases_views)
            out["event_number"] = case["event_number"]
    else:
        out.update({k: case[k] for k in ("match", "extracted", "invalid", "event_number") if k in case})
    answered = ("match", "extracted", "invalid", "event_number")
    out.update({k: v for k, v in case.items() if k not in out and k not in answered})
    out["conformance"] = {
        "endpoint": where,
        "kind": result.kind,
        "outcome": result.outcome,
        "castlewatch": result.castlewatch,
        "detail": result.detail,
    }
    return out
