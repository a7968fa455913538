"""Errors raised for filter patterns and requests that CloudWatch Logs would reject.

Every class maps to the AWS error code in ``code`` (spec §11, error catalogue), so a
CLI or a service facade can report the same code the service would.
"""

from __future__ import annotations

# Messages of the spec's error catalogue (§11).  Kept here so tests and callers
# compare against one spelling.
INVALID_PATTERN = "Invalid metric filter pattern"
REGEX_COMPILE = "Failed to compile regular expression."
JSON_UNCLOSED = "If a filter pattern starts with '{' it must end with '}'"
TOO_MANY_REGEX = "Your input has exceeded the maximum of 2 regular expressions per filter pattern."
SELECTOR_WILDCARDS = (
    "Your filter pattern has a JSON path selector that exceeds the maximum of 1 wildcard "
    "allowed per json selector."
)
TOO_MANY_WILDCARD_SELECTORS = (
    "Your input has exceeded the maximum of 3 JSON wildcard selectors allowed per filter pattern."
)


def validation_errors(*violations: tuple[str, str]) -> str:
    """The service's request-validation message for one or more ``(member, constraint)``
    violations, in request order (spec §7, §8.1, §11)::

        1 validation error detected: Value at 'logEventMessages' failed to satisfy
        constraint: Member must have length less than or equal to 50

    CloudWatch Logs does not quote the value (``Value at '...'``) [rec R-M]; several
    violations are counted and joined with ``; `` as AWS's request validation writes them
    [adopted: no recording holds two at once].
    """
    count = len(violations)
    parts = "; ".join(
        f"Value at '{member}' failed to satisfy constraint: {constraint}" for member, constraint in violations
    )
    return f"{count} validation error{'s' if count != 1 else ''} detected: {parts}"


def invalid_term(text: str) -> str:
    """The service's message for a character it does not accept (spec §3.1, §4, §5.3)."""
    return f"Invalid character(s) in term '{text}'"


def duplicate_field(name: str) -> str:
    """The service's message for a repeated space-delimited field or ellipsis (spec §6.1)."""
    return f"Duplicate field '{name}'"


class InvalidParameterError(ValueError):
    """A request CloudWatch Logs answers with ``InvalidParameterException``.

    Raised for invalid TestMetricFilter requests (spec §7) and, through subclasses,
    for invalid filter patterns and metric transformations.
    """

    code = "InvalidParameterException"


class FilterPatternError(InvalidParameterError):
    """A filter pattern the service rejects (spec §2-§6, §11).

    Attributes:
        pattern: the filter pattern exactly as given.
        column: 1-based column (Unicode code point) of the offending character,
            always within ``1..max(1, len(pattern))``.
        message: the service's message (spec §11), e.g. ``Invalid metric filter pattern``.
        expected: a short human hint of what would have been valid there, or ``""``.

    ``str(error)`` gives the message, then the pattern with a caret under the column,
    then the hint.
    """

    def __init__(self, message: str, pattern: str, column: int, expected: str = "") -> None:
        self.message = message
        self.pattern = pattern
        self.column = max(1, min(column, len(pattern) or 1))
        self.expected = expected
        super().__init__(message)

    def __str__(self) -> str:
        return self.message + "\n" + self.context()

    def context(self) -> str:
        """The pattern on one line and a caret under ``column``, plus the expectation.

        Long patterns are windowed around the column; whitespace in the pattern is shown
        as a space and other unprintable characters as U+FFFD, so the caret stays aligned.
        """
        # one visible column per character: whitespace as a space, other control
        # characters as U+FFFD, so the caret stays under the right one
        text = "".join(ch if ch.isprintable() else " " if ch.isspace() else "\ufffd" for ch in self.pattern)
        start = 0
        col = self.column - 1
        if len(text) > 100:
            start = max(0, col - 50)
            text = ("…" if start else "") + text[start : start + 100] + ("…" if start + 100 < len(text) else "")
            col = col - start + (1 if start else 0)
        out = f"  {text}\n  {' ' * col}^"
        if self.expected:
            out += f"\n  expected: {self.expected}"
        return out

    def __reduce__(self):  # keep the attributes when pickled (multiprocessing, caches)
        return (type(self), (self.message, self.pattern, self.column, self.expected))
