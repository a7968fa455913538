"""The peers: other Python implementations of CloudWatch Logs filter patterns.

Each is called the way its own project calls it:

- ``aws-json-term-matcher`` (PyPI, a JSON filter-pattern matcher):
  ``aws_json_term_matcher.matcher.match(obj, filter)`` on each decoded event. It builds
  its Lark parser and parses the filter on every call, so it is timed on a small slice
  of the stream. Its grammar only takes quoted string values, so it is given each
  pattern with bare string values quoted (the same pattern for CloudWatch, §5.3); a
  pattern it still cannot parse is reported as rejected. A ``MatchingError`` raised
  for an event counts as no match and is reported.
- moto's CloudWatch Logs term matcher (the installed ``moto`` package's own code):
  ``moto.logs.utils.EventMessageFilter(pattern).matches(message)``, built per event as
  ``moto/logs/models.py`` ``LogStream.filter_log_events`` does.

A peer that is not installed is reported as such (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from castlewatch.grammar import ast
from castlewatch.grammar.parser import parse

AWS_JSON = "aws-json-term-matcher"
MOTO = "moto"


@dataclass
class PeerPattern:
    """A pattern as one peer runs it.

    Attributes:
        text: the pattern text given to the peer.
        rejected: the peer's error when it cannot parse the pattern at all, else None.
        errors: events on which the peer raised (counted as no match).
        first_error: the first such error message.
        last_error: the latest one.
    """

    text: str
    rejected: str | None = None
    errors: int = 0
    first_error: str | None = None
    last_error: str | None = None


def version(dist: str) -> str | None:
    """The installed version of a distribution, or None if it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def quote_bare_values(pattern: str) -> str:
    """``pattern`` with every bare JSON string value quoted (``$.a=B`` -> ``$.a="B"``).

    The same pattern for CloudWatch (a bare and a quoted string literal are equal, §5.3);
    aws-json-term-matcher's grammar only accepts the quoted form.
    """
    tree = parse(pattern)
    if not isinstance(tree, ast.JsonPattern):
        return pattern
    spans = []

    def walk(expr: ast.JsonExpr) -> None:
        if isinstance(expr, (ast.And, ast.Or)):
            for item in expr.items:
                walk(item)
        elif isinstance(expr, ast.Comparison) and isinstance(expr.value, ast.StringValue):
            v = expr.value
            if not v.raw.startswith('"') and pattern[v.pos : v.pos + len(v.raw)] == v.raw:
                spans.append((v.pos, v.pos + len(v.raw)))

    walk(tree.expr)
    for start, end in sorted(spans, reverse=True):
        pattern = pattern[:start] + '"' + pattern[start:end] + '"' + pattern[end:]
    return pattern


class AwsJsonTermMatcher:
    """aws-json-term-matcher's ``match(obj, filter)``, one call per event and pattern."""

    name = AWS_JSON
    called_as = "aws_json_term_matcher.matcher.match(orjson.loads(event), filter) per event"

    def __init__(self, patterns: list[str]) -> None:
        from aws_json_term_matcher.exceptions import MatchingError, ParsingError
        from aws_json_term_matcher.matcher import match, parse_filter

        self._match, self._errors = match, (MatchingError,)
        self.patterns = [PeerPattern(quote_bare_values(p)) for p in patterns]
        for p in self.patterns:
            try:
                parse_filter(p.text)
            except ParsingError as err:
                p.rejected = str(err).splitlines()[0]

    def evaluate(self, message: str) -> list[bool | None]:
        """One event: per pattern True/False, None when the pattern is rejected."""
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            doc = None
        out: list[bool | None] = []
        for p in self.patterns:
            if p.rejected is not None:
                out.append(None)
            elif type(doc) is not dict:
                out.append(False)
            else:
                try:
                    out.append(bool(self._match(doc, p.text)))
                except self._errors as err:
                    p.errors += 1
                    p.last_error = " ".join(str(err).split())
                    if p.first_error is None:
                        p.first_error = p.last_error
                    out.append(False)
        return out


class AwsJsonTermMatcherParsedOnce(AwsJsonTermMatcher):
    """The same peer with each filter parsed once (its ``parse_filter`` + ``FilterEvaluator``).

    Not how its project calls it: shown for scale, since the per-call parse dominates
    the peer's figure. Same results as ``match`` (which is exactly these two steps).
    """

    name = AWS_JSON + " (parsed once)"
    called_as = "parse_filter(filter) once; FilterEvaluator(obj).transform(tree) per event"

    def __init__(self, patterns: list[str]) -> None:
        super().__init__(patterns)
        from aws_json_term_matcher.exceptions import MatchingError
        from aws_json_term_matcher.matcher import FilterEvaluator, parse_filter

        self._errors = (MatchingError, Exception)
        trees = {p.text: parse_filter(p.text) for p in self.patterns if p.rejected is None}

        def match(doc: dict, text: str) -> bool:
            try:
                return FilterEvaluator(doc).transform(trees[text])
            except Exception as err:  # match() wraps every evaluation error so
                raise MatchingError(str(err)) from None

        self._match = match


class MotoTermMatcher:
    """moto's ``EventMessageFilter(pattern).matches(message)``, built per event as moto does."""

    name = MOTO
    called_as = "moto.logs.utils.EventMessageFilter(pattern).matches(message) per event"

    def __init__(self, patterns: list[str]) -> None:
        from moto.logs.utils import EventMessageFilter

        self._filter = EventMessageFilter
        self.patterns = [PeerPattern(p) for p in patterns]

    def evaluate(self, message: str) -> list[bool | None]:
        make = self._filter
        return [make(p.text).matches(message) for p in self.patterns]

    def predicate(self) -> Callable[[str], bool]:
        """``message -> bool`` for a single pattern, the per-event construction included."""
        make, text = self._filter, self.patterns[0].text
        return lambda message: make(text).matches(message)


PEERS = {
    AWS_JSON: (AwsJsonTermMatcher, "aws-json-term-matcher"),
    AWS_JSON + " (parsed once)": (AwsJsonTermMatcherParsedOnce, "aws-json-term-matcher"),
    MOTO: (MotoTermMatcher, "moto"),
}


def make_peer(name: str, patterns: list[str]):
    """The peer ``name`` for ``patterns``, or a string saying why it is unavailable."""
    cls, dist = PEERS[name]
    if version(dist) is None:
        return f"{dist} is not installed (pip install -e '.[bench]')"
    try:
        return cls(patterns)
    except ImportError as err:
        return f"{dist} cannot be imported: {err}"
