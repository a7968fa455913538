"""The CloudWatch Logs filter-pattern language: parse, compile, match (spec §2-§7).

Stages, one module each: ``filter_pattern.lark`` (grammar), :mod:`.parser` (text ->
AST: :mod:`.lalr` runs the grammar, :mod:`.tree_cache` keeps the trees between
processes), :mod:`.ast`, :mod:`.numbers` (exact number comparisons), :mod:`.regex` (the AWS
regex subset on RE2), :mod:`.compiler` (AST -> matcher), :mod:`.errors`.
"""

from __future__ import annotations

import functools

from castlewatch.grammar.compiler import FilterPattern, decode_json_event, split_fields
from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError, validation_errors
from castlewatch.grammar.parser import MAX_PATTERN_LENGTH, parse

__all__ = [
    "FilterPattern",
    "FilterPatternError",
    "InvalidParameterError",
    "check_test_request",
    "compile_pattern",
    "decode_json_event",
    "purge",
    "split_fields",
    "test_metric_filter",
]

CACHE_SIZE = 1024
MAX_TEST_MESSAGES = 50  # TestMetricFilter's logEventMessages, 1..50 (spec §7)


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_pattern(filter_pattern: str) -> FilterPattern:
    """Compile a filter pattern once; later calls with the same text hit a bounded cache.

    Args:
        filter_pattern: the ``filterPattern`` text (0-1024 code points, spec §1).

    Returns:
        a :class:`FilterPattern` with ``matches(message) -> bool``,
        ``extract(message) -> dict[str, str] | None`` and ``kind``.

    Raises:
        FilterPatternError: the service would reject the pattern (§2-§6, §11); the error
            carries ``pattern`` and the 1-based ``column`` of the problem.
    """
    if not isinstance(filter_pattern, str):
        raise TypeError(f"filter pattern must be str, not {type(filter_pattern).__name__}")
    return FilterPattern(filter_pattern, parse(filter_pattern))


def purge() -> None:
    """Empty the compiled-pattern cache."""
    compile_pattern.cache_clear()


def check_test_request(filter_pattern: str, log_event_messages: list[str]) -> None:
    """TestMetricFilter's request constraints (spec §7), checked together as the service's
    request validation checks them, before the pattern is compiled.

    ``filterPattern`` is 0 to 1024 code points; ``logEventMessages`` holds 1 to 50
    messages of at least one character each (API_TestMetricFilter, botocore's
    ``TestEventMessages`` and ``EventMessage`` shapes).

    Raises:
        FilterPatternError: the pattern is too long and nothing else is wrong (with the
            column past the limit).
        InvalidParameterError: a message constraint is broken; the message is the
            service's, e.g. ``1 validation error detected: Value at 'logEventMessages'
            failed to satisfy constraint: Member must have length less than or equal to
            50`` (every violation, in request order, when there are several).
        TypeError: ``log_event_messages`` is not a list of str.
    """
    if isinstance(log_event_messages, str) or not all(isinstance(m, str) for m in log_event_messages):
        raise TypeError("log_event_messages must be a list of str")
    violations: list[tuple[str, str]] = []
    if len(filter_pattern) > MAX_PATTERN_LENGTH:
        violations.append(("filterPattern", f"Member must have length less than or equal to {MAX_PATTERN_LENGTH}"))
    count = len(log_event_messages)
    if count < 1:
        violations.append(("logEventMessages", "Member must have length greater than or equal to 1"))
    elif count > MAX_TEST_MESSAGES:
        violations.append(("logEventMessages", f"Member must have length less than or equal to {MAX_TEST_MESSAGES}"))
    for number, message in enumerate(log_event_messages, 1):
        if not message:
            member = f"logEventMessages.{number}.member"
            violations.append((member, "Member must have length greater than or equal to 1"))
    if len(violations) == 1 and violations[0][0] == "filterPattern":
        compile_pattern(filter_pattern)  # raises the FilterPatternError, with its column
    if violations:
        raise InvalidParameterError(validation_errors(*violations))


def test_metric_filter(filter_pattern: str, log_event_messages: list[str]) -> dict:
    """Offline equivalent of the CloudWatch Logs TestMetricFilter API (spec §7).

    The one implementation of TestMetricFilter: ``castlewatch test-metric-filter`` and
    ``castlewatch serve`` both answer with it.

    Args:
        filter_pattern: the pattern, 0-1024 code points.
        log_event_messages: 1 to 50 messages, each at least one character.

    Returns:
        ``{"matches": [{"eventNumber": int, "eventMessage": str, "extractedValues":
        {str: str}}]}`` with only the matching events, in input order, ``eventNumber``
        being the 1-based position in ``log_event_messages`` (as the service numbers them).

    Raises:
        FilterPatternError: invalid pattern (``InvalidParameterException``).
        InvalidParameterError: the request breaks the API's limits
            (:func:`check_test_request`).
        TypeError: ``log_event_messages`` is not a list of str.
    """
    check_test_request(filter_pattern, log_event_messages)
    pattern = compile_pattern(filter_pattern)
    matches = []
    for number, message in enumerate(log_event_messages, 1):
        extracted = pattern.extract(message)
        if extracted is not None:
            matches.append({"eventNumber": number, "eventMessage": message, "extractedValues": extracted})
    return {"matches": matches}


test_metric_filter.__test__ = False  # not a pytest test, though its name starts with test_
