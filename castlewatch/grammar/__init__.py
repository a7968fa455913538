"""The CloudWatch Logs filter-pattern language: parse, compile, match (spec §2-§7).

Stages, one module each: ``filter_pattern.lark`` (grammar), :mod:`.parser` (text ->
AST), :mod:`.ast`, :mod:`.numbers` (exact number comparisons), :mod:`.regex` (the AWS
regex subset on RE2), :mod:`.compiler` (AST -> matcher), :mod:`.errors`.
"""

from __future__ import annotations

import functools

from castlewatch.grammar.compiler import FilterPattern, decode_json_event, split_fields
from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError
from castlewatch.grammar.parser import parse

__all__ = [
    "FilterPattern",
    "FilterPatternError",
    "InvalidParameterError",
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


def test_metric_filter(filter_pattern: str, log_event_messages: list[str]) -> dict:
    """Offline equivalent of the CloudWatch Logs TestMetricFilter API (spec §7).

    Args:
        filter_pattern: the pattern, 0-1024 code points.
        log_event_messages: 1 to 50 messages, each at least one character.

    Returns:
        ``{"matches": [{"eventNumber": int, "eventMessage": str, "extractedValues":
        {str: str}}]}`` with only the matching events, in input order, ``eventNumber``
        being the 1-based position in ``log_event_messages`` (as the service numbers them).

    Raises:
        FilterPatternError: invalid pattern (``InvalidParameterException``).
        InvalidParameterError: the request breaks the API's limits.
    """
    messages = list(log_event_messages) if not isinstance(log_event_messages, str) else None
    if messages is None or not 1 <= len(messages) <= MAX_TEST_MESSAGES:
        count = "a string" if messages is None else len(messages)
        raise InvalidParameterError(
            "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: "
            f"Member must have length between 1 and {MAX_TEST_MESSAGES} (got {count})"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, str) or not message:
            raise InvalidParameterError(
                f"1 validation error detected: Value at 'logEventMessages.{i + 1}.member' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1"
            )
    pattern = compile_pattern(filter_pattern)
    matches = []
    for number, message in enumerate(messages, 1):
        extracted = pattern.extract(message)
        if extracted is not None:
            matches.append({"eventNumber": number, "eventMessage": message, "extractedValues": extracted})
    return {"matches": matches}


test_metric_filter.__test__ = False  # not a pytest test, though its name starts with test_
