"""Errors and messages of metric-filter validation and loading (spec §8.2, §11).

The messages are the service's own texts, exactly; rules castlewatch adopts where no
recording settles the text are marked ``[adopted]``.  Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import os

from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError, validation_errors

# ---- the service's messages (§8.2, §11) ----------------------------------------------------

INVALID_METRIC_VALUE = "Invalid metric transformation: metric value {value} must be a valid number"
DEFAULT_WITH_DIMENSIONS = (
    "Invalid metric transformation: dimensions and default value are mutually exclusive properties"
)
INVALID_SYSTEM_FIELDS = (
    "The provided system fields are invalid. The supported system fields are - "
    "[@aws.region, @aws.account, @source.log]"
)
TOO_MANY_DIMENSIONS = "Number of dimensions exceeds the maximum number of dimensions supported per metric filter"
INVALID_DIMENSION_VALUE = "Invalid metric transformation: dimension value must be valid selector"
DIMENSIONS_NOT_SUPPORTED = "The specified filter pattern does not support dimensions"
INVALID_SELECTION_CRITERIA = "The provided field selection criteria is invalid"
RESOURCE_LIMIT_EXCEEDED = "Resource limit exceeded."
# [adopted] no recorded text for these two
INVALID_DEFAULT_VALUE = "Invalid metric transformation: default value {value} must be a valid number"
INVALID_DIMENSION_NAME = (
    "Invalid metric transformation: dimension name must be 1 to 255 ASCII characters, "
    "not blank and not starting with ':'"
)


def validation_error(member: str, constraint: str) -> str:
    """The service's request-validation message, e.g. for ``member`` ``'logGroupName'``.

    CloudWatch Logs does not quote the value (``Value at '...'``) [rec R-M].
    """
    return validation_errors((member, constraint))


def max_length(member: str, limit: int) -> str:
    return validation_error(member, f"Member must have length less than or equal to {limit}")


def min_length(member: str, limit: int = 1) -> str:
    return validation_error(member, f"Member must have length greater than or equal to {limit}")


def pattern_mismatch(member: str, regex: str) -> str:
    return validation_error(member, f"Member must satisfy regular expression pattern: {regex}")


# ---- errors --------------------------------------------------------------------------------


class MetricFilterError(InvalidParameterError):
    """A metric filter PutMetricFilter would reject (``InvalidParameterException``, §8.2, §11).

    Attributes:
        message: the service's message, exactly (e.g. ``Invalid metric transformation:
            dimensions and default value are mutually exclusive properties``).
        filter_name: the filter's ``filterName`` (``""`` when validating a bare
            transformation).
        log_group_name: its ``logGroupName`` (may be ``""``).
        rule: a short stable id of the rule broken: ``log_group_name``,
            ``filter_name``, ``metric_transformations``, ``filter_pattern``,
            ``metric_name``, ``metric_namespace``, ``metric_value``, ``default_value``,
            ``default_with_dimensions``, ``system_fields``, ``dimension_count``,
            ``dimension_value``, ``dimension_name``, ``dimensions_unsupported``, ``unit``,
            ``field_selection_criteria``.
        hint: castlewatch's own advice, or ``""``.

    ``str(error)`` is ``metric filter 'X' (log group 'g'): <message>`` and, on a second
    line, the hint.
    """

    def __init__(
        self, message: str, *, filter_name: str = "", log_group_name: str = "", rule: str = "", hint: str = ""
    ) -> None:
        self.message = message
        self.filter_name = filter_name
        self.log_group_name = log_group_name
        self.rule = rule
        self.hint = hint
        super().__init__(message)

    def subject(self) -> str:
        """``metric filter 'X' (log group 'g')``: what the error is about."""
        if not self.filter_name and not self.log_group_name:
            return "metric transformation"
        text = f"metric filter {self.filter_name!r}"
        if self.log_group_name:
            text += f" (log group {self.log_group_name!r})"
        return text

    def __str__(self) -> str:
        text = f"{self.subject()}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __reduce__(self):
        return (
            _rebuild_filter_error,
            (type(self), self.message, self.filter_name, self.log_group_name, self.rule, self.hint),
        )


def _rebuild_filter_error(cls, message, filter_name, log_group_name, rule, hint):
    return cls(message, filter_name=filter_name, log_group_name=log_group_name, rule=rule, hint=hint)


class MetricFilterPatternError(FilterPatternError, MetricFilterError):
    """The filter pattern of a metric filter does not compile (§8.2 step 1).

    Both a :class:`~castlewatch.grammar.errors.FilterPatternError` (``pattern``,
    ``column``, ``expected``, ``context()``) and a :class:`MetricFilterError`
    (``filter_name``, ``log_group_name``, ``rule == "filter_pattern"``); ``str()``
    names the filter, gives the service's message, then the caret line.
    """

    def __init__(
        self,
        message: str,
        pattern: str,
        column: int,
        expected: str = "",
        *,
        filter_name: str = "",
        log_group_name: str = "",
    ) -> None:
        FilterPatternError.__init__(self, message, pattern, column, expected)
        self.filter_name = filter_name
        self.log_group_name = log_group_name
        self.rule = "filter_pattern"
        self.hint = ""

    @classmethod
    def wrap(cls, error: FilterPatternError, filter_name: str, log_group_name: str) -> "MetricFilterPatternError":
        return cls(
            error.message,
            error.pattern,
            error.column,
            error.expected,
            filter_name=filter_name,
            log_group_name=log_group_name,
        )

    def __str__(self) -> str:
        return f"{self.subject()}: {self.message}\n{self.context()}"

    def __reduce__(self):
        return (
            _rebuild_pattern_error,
            (self.message, self.pattern, self.column, self.expected, self.filter_name, self.log_group_name),
        )


def _rebuild_pattern_error(message, pattern, column, expected, filter_name, log_group_name):
    return MetricFilterPatternError(
        message, pattern, column, expected, filter_name=filter_name, log_group_name=log_group_name
    )


class LimitExceededError(InvalidParameterError):
    """A per-log-group quota is exceeded (§1): ``LimitExceededException``.

    Attributes:
        message: ``Resource limit exceeded.`` (the service's text).
        limit: ``"filters_per_log_group"`` (100) or ``"regex_filters_per_log_group"`` (5).
        log_group_name: the log group over its quota.
        filter_name: the filter whose addition broke it.
        detail: which limit, in words.
    """

    code = "LimitExceededException"

    def __init__(self, limit: str, *, log_group_name: str, filter_name: str, detail: str) -> None:
        self.message = RESOURCE_LIMIT_EXCEEDED
        self.limit = limit
        self.log_group_name = log_group_name
        self.filter_name = filter_name
        self.detail = detail
        super().__init__(self.message)

    def __str__(self) -> str:
        return (
            f"metric filter {self.filter_name!r} (log group {self.log_group_name!r}): "
            f"{self.message} ({self.detail})"
        )

    def __reduce__(self):
        return (
            _rebuild_limit_error,
            (self.limit, self.log_group_name, self.filter_name, self.detail),
        )


def _rebuild_limit_error(limit, log_group_name, filter_name, detail):
    return LimitExceededError(limit, log_group_name=log_group_name, filter_name=filter_name, detail=detail)


class MetricFilterLoadError(ValueError):
    """Metric filters that cannot be read, before any AWS rule applies.

    Raised for an unreadable or unparsable file, a document of the wrong shape, a
    wrong type or missing key (the message names the path, e.g.
    ``metricFilters[2].metricTransformations[0].metricValue: expected str, got int``),
    an unknown key, and a CloudFormation value castlewatch cannot know from the
    template alone (the message names the resource and the property).

    Attributes:
        source: the file read, or None for in-memory data.
        location: where in the document, e.g. ``Resources.Errors.Properties.LogGroupName``.
        reason: the problem, without source and location.
        line, column: 1-based position of ``location`` in the file when known (filters
            written in a castlewatch config), else None; ``str()`` then starts
            ``FILE:LINE:COLUMN:``.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | os.PathLike | None = None,
        location: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = None if source is None else str(source)
        self.location = location
        self.line = line
        self.column = column
        where = self.source
        if where and line is not None:
            where = f"{where}:{line}:{column}"
        parts = [p for p in (where, location) if p]
        super().__init__(": ".join(parts + [reason]))


class DuplicateFilterError(MetricFilterLoadError):
    """Two metric filters with one name in one log group.

    PutMetricFilter would silently replace the first with the second; in a
    configuration that is almost always a mistake, so castlewatch refuses it.
    """
