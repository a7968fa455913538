"""Metric filters: PutMetricFilter validation, per-log-group limits, loading.

Spec: ``shared/spec/filter-patterns.md`` §1 (limits per log group), §8.1 (fields),
§8.2 (validation, in that order), §11 (messages).

- :func:`validate_metric_filter` checks one :class:`~castlewatch.engine.model.MetricFilter`
  the way PutMetricFilter does, in the spec's order, with the service's messages.
- :func:`check_group_limits` applies the per-log-group quotas (100 filters, 5 filters
  with a regex) and refuses two filters of one name in one log group.
- :func:`load_metric_filters` reads filters from Python data, from the JSON printed by
  ``aws logs describe-metric-filters`` (pasted as is), or from the
  ``AWS::Logs::MetricFilter`` resources of a CloudFormation template, and validates
  them all; it raises the **first** problem found, in file order, so that nothing
  starts with an invalid configuration.

Every rule castlewatch adopts where no source settles it is marked ``[adopted]``.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from castlewatch.engine.model import MetricFilter, MetricTransformation
from castlewatch.grammar import FilterPattern, compile_pattern
from castlewatch.grammar import ast
from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError
from castlewatch.grammar.parser import parse_selector, regex_values

__all__ = [
    "LimitExceededError",
    "MetricFilterError",
    "MetricFilterLoadError",
    "MetricFilterPatternError",
    "DuplicateFilterError",
    "Reference",
    "SYSTEM_FIELDS",
    "UNITS",
    "check_group_limits",
    "is_cloudformation_template",
    "is_valid_selection_criteria",
    "load_metric_filters",
    "metric_filters_from_document",
    "parse_metric_value",
    "parse_number_literal",
    "parse_reference",
    "read_document",
    "validate_metric_filter",
    "validate_metric_filters",
    "validate_transformation",
]

# ---- limits and messages (§1, §8.1, §8.2, §11) -------------------------------------------

MAX_FILTERS_PER_LOG_GROUP = 100  # §1 [doc QUOTAS]
MAX_REGEX_FILTERS_PER_LOG_GROUP = 5  # §1 [rec R-M]: filters containing a regex, not regexes
MAX_DIMENSIONS = 3  # §8.2 step 6, system fields included
MAX_NAME_LENGTH = 512  # logGroupName, filterName (§8.1)
MAX_METRIC_NAME_LENGTH = 255  # metricName, metricNamespace (§8.1)
MAX_METRIC_VALUE_LENGTH = 100  # §8.1
MAX_SELECTION_CRITERIA_LENGTH = 2000  # §8.1
MAX_NUMBER = 2.0**360  # number literals, as PutMetricData accepts them (§8.2 step 3, §9)

UNITS: tuple[str, ...] = (
    "Seconds", "Microseconds", "Milliseconds",
    "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
    "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
)  # fmt: skip
"""The 27 CloudWatch standard units, in the API reference's (StandardUnit) order."""

# The service lists the enum in this (hash-set) order in its message [rec R-M, invalid-unit].
_UNIT_MESSAGE_ORDER = (
    "Gigabits/Second, Gigabits, Percent, Terabits, Bits, Kilobits, Megabytes/Second, Kilobytes, "
    "Megabits/Second, Terabytes, Bytes, Count, Gigabytes, Milliseconds, Count/Second, "
    "Gigabytes/Second, None, Terabytes/Second, Bytes/Second, Megabits, Kilobytes/Second, Megabytes, "
    "Microseconds, Kilobits/Second, Terabits/Second, Bits/Second, Seconds"
)
assert sorted(_UNIT_MESSAGE_ORDER.split(", ")) == sorted(UNITS)

SYSTEM_FIELDS: tuple[str, ...] = ("@aws.region", "@aws.account", "@source.log")
"""Values ``emitSystemFieldDimensions`` accepts (§8.2 step 5)."""

LOG_GROUP_NAME_RE = re.compile(r"[\.\-_/#A-Za-z0-9]+")
_FILTER_NAME_FORBIDDEN = frozenset(":*")
_METRIC_NAME_FORBIDDEN = frozenset(":*$")

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
    return f"1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"


def _max_length(member: str, limit: int) -> str:
    return validation_error(member, f"Member must have length less than or equal to {limit}")


def _min_length(member: str, limit: int = 1) -> str:
    return validation_error(member, f"Member must have length greater than or equal to {limit}")


def _pattern(member: str, regex: str) -> str:
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
    """

    def __init__(self, reason: str, *, source: str | os.PathLike | None = None, location: str = "") -> None:
        self.reason = reason
        self.source = None if source is None else str(source)
        self.location = location
        parts = [p for p in (self.source, location) if p]
        super().__init__(": ".join(parts + [reason]))


class DuplicateFilterError(MetricFilterLoadError):
    """Two metric filters with one name in one log group.

    PutMetricFilter would silently replace the first with the second; in a
    configuration that is almost always a mistake, so castlewatch refuses it.
    """


# ---- references and numbers (§8.2 step 3) ---------------------------------------------------

_FIELD_REFERENCE_RE = re.compile(r"\$([A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``metricValue`` or dimension reference (§8.2 step 3, §8.3).

    Attributes:
        kind: ``"json"`` (``$.path``), ``"field"`` (``$name``, a named slot of a
            space-delimited pattern) or ``"position"`` (``$7``: the 7th field).
        text: the reference as written.
        segments: for ``json``, the selector's :class:`~castlewatch.grammar.ast.Key` /
            :class:`~castlewatch.grammar.ast.Index` segments (never a wildcard).
        name: for ``field``, the slot name (without ``$``).
        position: for ``position``, the 1-based field number.
    """

    kind: Literal["json", "field", "position"]
    text: str
    segments: tuple[ast.Key | ast.Index, ...] = ()
    name: str = ""
    position: int = 0


def parse_reference(text: str) -> Reference | None:
    """``text`` as a reference, or None if it is not one (§8.2 step 3).

    A reference is ``$`` plus a §5.2 selector without wildcards (``$.a.b[0]``,
    ``$.['k.d']``), or ``$name`` with ``name`` in ``[A-Za-z0-9_-]+``; all digits
    (``$7``) is a 1-based field position.  References are not checked against any
    pattern: ``$missing`` is a reference [rec].
    """
    if not isinstance(text, str) or not text.startswith("$"):
        return None
    if text.startswith(("$.", "$[")):
        selector = parse_selector(text)
        if selector is None or selector.wildcards:
            return None
        return Reference("json", text, segments=selector.segments)  # type: ignore[arg-type]
    match = _FIELD_REFERENCE_RE.fullmatch(text)
    if match is None:
        return None
    name = match.group(1)
    if name.isdigit():
        return Reference("position", text, position=int(name))
    return Reference("field", text, name=name)


def parse_number_literal(text: str) -> float | None:
    """A number literal (§5.3 form, finite, within ±2^360) as a float, else None."""
    if not isinstance(text, str) or not ast.NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        return None
    return value


def parse_metric_value(text: str) -> float | Reference | None:
    """A ``metricValue``: a number (float), a :class:`Reference`, or None if neither (§8.2 step 3)."""
    number = parse_number_literal(text)
    return number if number is not None else parse_reference(text)


# ---- fieldSelectionCriteria (§8.2 step 10) ------------------------------------------------

# [adopted] The selection language is documented by example only:
#   @aws.region = "us-east-1" AND @aws.account IN ["123456789012", "210987654321"]
# castlewatch accepts: comparisons `@field = "v"` / `!= "v"`, `@field IN [...]`,
# `@field NOT IN [...]`, joined by AND / OR (AND first), with parentheses.
_SELECTION_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<field>@[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)
      | (?P<string>"(?:\\.|[^"\\])*")
      | (?P<op>!=|=)
      | (?P<word>AND|OR|NOT|IN)(?![A-Za-z0-9_])
      | (?P<punct>[\[\](),])
    )""",
    re.VERBOSE,
)


def is_valid_selection_criteria(text: str) -> bool:
    """Whether ``fieldSelectionCriteria`` parses under castlewatch's adopted grammar."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _SELECTION_TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            return False
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    state = {"i": 0}

    def peek() -> tuple[str, str]:
        return tokens[state["i"]] if state["i"] < len(tokens) else ("end", "")

    def take(kind: str, value: str | None = None) -> bool:
        tok = peek()
        if tok[0] == kind and (value is None or tok[1] == value):
            state["i"] += 1
            return True
        return False

    def primary() -> bool:
        if take("punct", "("):
            return disjunction() and take("punct", ")")
        if not take("field"):
            return False
        if take("op"):
            return take("string")
        take("word", "NOT")
        if not (take("word", "IN") and take("punct", "[") and take("string")):
            return False
        while take("punct", ","):
            if not take("string"):
                return False
        return take("punct", "]")

    def conjunction() -> bool:
        if not primary():
            return False
        while take("word", "AND"):
            if not primary():
                return False
        return True

    def disjunction() -> bool:
        if not conjunction():
            return False
        while take("word", "OR"):
            if not conjunction():
                return False
        return True

    return bool(tokens) and disjunction() and peek()[0] == "end"


# ---- validation (§8.1, §8.2) -----------------------------------------------------------------


def _pattern_kind_name(kind: str) -> str:
    return {"all": "empty (match-all)", "terms": "term", "regex": "regex"}.get(kind, kind)


def _check(
    f: MetricFilter,
    *,
    filter_name: str,
    log_group_name: str,
    request_members: bool,
) -> FilterPattern:
    """The checks of PutMetricFilter, in order; returns the compiled pattern."""

    def fail(message: str, rule: str, hint: str = "") -> MetricFilterError:
        return MetricFilterError(
            message, filter_name=filter_name, log_group_name=log_group_name, rule=rule, hint=hint
        )

    # §8.1 request members.  [adopted] Checked before §8.2 step 1: the order among
    # request-shape checks and the pattern is not recorded.
    if request_members:
        group = f.log_group_name
        if len(group) < 1:
            raise fail(_min_length("logGroupName"), "log_group_name", "every metric filter needs its logGroupName")
        if len(group) > MAX_NAME_LENGTH:
            raise fail(_max_length("logGroupName", MAX_NAME_LENGTH), "log_group_name")
        if not LOG_GROUP_NAME_RE.fullmatch(group):
            raise fail(
                _pattern("logGroupName", LOG_GROUP_NAME_RE.pattern),
                "log_group_name",
                "a log group name is made of letters, digits and . - _ / #",
            )
        name = f.filter_name
        if len(name) < 1:
            raise fail(_min_length("filterName"), "filter_name")
        if len(name) > MAX_NAME_LENGTH:
            raise fail(_max_length("filterName", MAX_NAME_LENGTH), "filter_name")
        if any(ch in _FILTER_NAME_FORBIDDEN for ch in name):
            raise fail(_pattern("filterName", "[^:*]*"), "filter_name", "':' and '*' are not allowed in a filter name")
    count = len(f.metric_transformations)
    if count != 1:
        message = (
            _max_length("metricTransformations", 1) if count > 1 else _min_length("metricTransformations")
        )  # > 1 [rec R-M]; 0 [adopted], the CLI refuses it before sending
        raise fail(message, "metric_transformations", f"a metric filter has exactly one transformation, not {count}")

    # 1. The pattern compiles.
    try:
        pattern = compile_pattern(f.filter_pattern)
    except FilterPatternError as error:
        raise MetricFilterPatternError.wrap(error, filter_name, log_group_name) from None

    t = f.metric_transformations[0]
    member = "metricTransformations.1.member."

    # 2. Name and namespace.
    for key, rule, value in (
        ("metricName", "metric_name", t.metric_name),
        ("metricNamespace", "metric_namespace", t.metric_namespace),
    ):
        if len(value) < 1:
            raise fail(_min_length(member + key), rule)
        if len(value) > MAX_METRIC_NAME_LENGTH:
            raise fail(_max_length(member + key, MAX_METRIC_NAME_LENGTH), rule)
        if any(ch in _METRIC_NAME_FORBIDDEN for ch in value):
            raise fail(_pattern(member + key, "[^:*$]*"), rule, f"':', '*' and '$' are not allowed in {key}")

    # 3. The metric value: a number or a reference.
    if len(t.metric_value) > MAX_METRIC_VALUE_LENGTH:
        raise fail(_max_length(member + "metricValue", MAX_METRIC_VALUE_LENGTH), "metric_value")
    if parse_metric_value(t.metric_value) is None:
        raise fail(
            INVALID_METRIC_VALUE.format(value=t.metric_value),
            "metric_value",
            "a number such as 1, or a reference without wildcards: $.path (JSON pattern), "
            "$name or $N (space-delimited pattern)",
        )
    # [adopted] NaN and ±Infinity (possible from YAML) cannot be published (§9).
    if t.default_value is not None and (not math.isfinite(t.default_value) or abs(t.default_value) > MAX_NUMBER):
        raise fail(INVALID_DEFAULT_VALUE.format(value=t.default_value), "default_value")

    # 4. defaultValue and dimensions.  [adopted] an empty dimensions map is no dimensions.
    dimensions = t.dimensions or {}
    if t.default_value is not None and dimensions:
        raise fail(DEFAULT_WITH_DIMENSIONS, "default_with_dimensions", "remove defaultValue or the dimensions")

    # 5. System fields; duplicates are accepted [rec].
    system = f.emit_system_field_dimensions or []
    if any(field not in SYSTEM_FIELDS for field in system):
        raise fail(INVALID_SYSTEM_FIELDS, "system_fields")

    # 6. At most 3 dimensions, system fields included.  [adopted] a repeated system
    # field counts once.
    total = len(dimensions) + len(set(system))
    if total > MAX_DIMENSIONS:
        raise fail(
            TOO_MANY_DIMENSIONS,
            "dimension_count",
            f"{total} dimensions; at most {MAX_DIMENSIONS}, emitSystemFieldDimensions included",
        )

    # 7. Dimension values are wildcard-free references; names ASCII 1-255 [doc CFN].
    for key, value in dimensions.items():
        if parse_reference(value) is None:
            raise fail(
                INVALID_DIMENSION_VALUE,
                "dimension_value",
                f"dimension {key!r}: {value!r} is not a reference such as $.path or $name (no wildcards)",
            )
        if not (1 <= len(key) <= MAX_METRIC_NAME_LENGTH and key.isascii() and key.strip() and key[0] != ":"):
            raise fail(INVALID_DIMENSION_NAME, "dimension_name", f"dimension name {key!r}")

    # 8. Dimensions need a JSON or space-delimited pattern.
    if dimensions and pattern.kind not in ("json", "space_delimited"):
        raise fail(
            DIMENSIONS_NOT_SUPPORTED,
            "dimensions_unsupported",
            f"this is a {_pattern_kind_name(pattern.kind)} pattern; dimensions need a JSON "
            "({ ... }) or space-delimited ([ ... ]) pattern",
        )

    # 9. The unit.
    if t.unit is not None and t.unit not in UNITS:
        close = difflib.get_close_matches(t.unit, UNITS, n=1)
        raise fail(
            validation_error(member + "unit", f"Member must satisfy enum value set: [{_UNIT_MESSAGE_ORDER}]"),
            "unit",
            f"did you mean {close[0]!r}?" if close else "units are case-sensitive, e.g. Count, Bytes, Milliseconds",
        )

    # 10. fieldSelectionCriteria.
    criteria = f.field_selection_criteria
    if criteria:  # [adopted] "" selects every event, like no criteria
        if len(criteria) > MAX_SELECTION_CRITERIA_LENGTH:
            raise fail(_max_length("fieldSelectionCriteria", MAX_SELECTION_CRITERIA_LENGTH), "field_selection_criteria")
        if not is_valid_selection_criteria(criteria):
            raise fail(
                INVALID_SELECTION_CRITERIA,
                "field_selection_criteria",
                'e.g. @aws.region = "us-east-1" AND @aws.account IN ["123456789012"]',
            )
    return pattern


def validate_metric_filter(f: MetricFilter) -> FilterPattern:
    """Validate a metric filter as PutMetricFilter does; return its compiled pattern.

    Order (spec §8.2, after the §8.1 request members ``logGroupName``, ``filterName``
    and the single ``metricTransformations`` entry): 1 the pattern compiles, 2 metric
    name and namespace, 3 ``metricValue``, 4 ``defaultValue`` with dimensions, 5 system
    fields, 6 at most 3 dimensions, 7 dimension values and names, 8 dimensions only on
    JSON and space-delimited patterns, 9 the unit, 10 ``fieldSelectionCriteria``.

    Raises:
        MetricFilterPatternError: the pattern does not compile (also a
            ``FilterPatternError``, with ``column`` and the caret context).
        MetricFilterError: any other rule; ``message`` is the service's text (§11).
    """
    return _check(f, filter_name=f.filter_name, log_group_name=f.log_group_name, request_members=True)


def validate_transformation(
    filter_pattern: str, transformation: Mapping[str, Any] | MetricTransformation, *, filter_name: str = ""
) -> None:
    """Validate a pattern and one metric transformation as PutMetricFilter does (§8.2).

    ``transformation`` is a :class:`MetricTransformation` or a dict in the API's casing
    (``metricName``, ``metricNamespace``, ``metricValue``, ``defaultValue``,
    ``dimensions``, ``unit``), e.g. a conformance case's ``transform``.  Log group and
    filter names are not checked.

    Raises:
        MetricFilterPatternError, MetricFilterError: as :func:`validate_metric_filter`.
        MetricFilterLoadError: ``transformation`` is not of that shape.
    """
    if not isinstance(transformation, MetricTransformation):
        transformation = _decode_transformation(transformation, "transformation", None)
    f = MetricFilter(filter_name=filter_name, filter_pattern=filter_pattern, metric_transformations=[transformation])
    _check(f, filter_name=filter_name, log_group_name="", request_members=False)


# ---- per-log-group limits (§1) ----------------------------------------------------------------


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _GroupLimits:
    """Running per-log-group counts, as successive PutMetricFilter calls see them."""

    def __init__(self) -> None:
        self.names: dict[str, dict[str, int]] = {}
        self.regex: dict[str, int] = {}

    def add(self, index: int, f: MetricFilter, pattern: FilterPattern) -> None:
        group = f.log_group_name
        names = self.names.setdefault(group, {})
        if f.filter_name in names:
            raise DuplicateFilterError(
                f"metric filter {f.filter_name!r} is defined twice in log group {group!r} "
                f"(filters #{names[f.filter_name] + 1} and #{index + 1}); PutMetricFilter would replace "
                "the first with the second: remove or rename one"
            )
        if len(names) >= MAX_FILTERS_PER_LOG_GROUP:
            raise LimitExceededError(
                "filters_per_log_group",
                log_group_name=group,
                filter_name=f.filter_name,
                detail=f"at most {MAX_FILTERS_PER_LOG_GROUP} metric filters per log group; this is the "
                f"{_ordinal(len(names) + 1)}",
            )
        if regex_values(pattern.tree):
            count = self.regex.get(group, 0)
            if count >= MAX_REGEX_FILTERS_PER_LOG_GROUP:
                raise LimitExceededError(
                    "regex_filters_per_log_group",
                    log_group_name=group,
                    filter_name=f.filter_name,
                    detail=f"at most {MAX_REGEX_FILTERS_PER_LOG_GROUP} metric filters with a regular expression "
                    f"per log group; this is the {_ordinal(count + 1)}",
                )
            self.regex[group] = count + 1
        names[f.filter_name] = index


def check_group_limits(filters: Iterable[MetricFilter]) -> None:
    """Apply the per-log-group limits to filters already valid on their own (§1).

    At most 100 filters per log group, at most 5 of them containing a regular
    expression (a filter with two regexes counts once [rec R-M]), and filter names
    unique per log group.  Filters are taken in order, as successive PutMetricFilter
    calls; the first filter over a limit is reported.

    Raises:
        LimitExceededError: a quota is exceeded (``LimitExceededException``).
        DuplicateFilterError: two filters share a name in one log group.
        FilterPatternError: a pattern does not compile (validate the filters first).
    """
    limits = _GroupLimits()
    for index, f in enumerate(filters):
        limits.add(index, f, compile_pattern(f.filter_pattern))


def validate_metric_filters(filters: Iterable[MetricFilter]) -> list[FilterPattern]:
    """Validate filters one by one and against the per-group limits, as successive
    PutMetricFilter calls would; return their compiled patterns, in order.

    Raises:
        the first of :class:`MetricFilterError`, :class:`LimitExceededError`,
        :class:`DuplicateFilterError` met in order.
    """
    limits = _GroupLimits()
    patterns = []
    for index, f in enumerate(filters):
        pattern = validate_metric_filter(f)
        limits.add(index, f, pattern)
        patterns.append(pattern)
    return patterns


# ---- decoding the describe-metric-filters shape ------------------------------------------------

_FILTER_KEYS = tuple(field.encode_name for field in msgspec.structs.fields(MetricFilter))
_TRANSFORMATION_KEYS = tuple(field.encode_name for field in msgspec.structs.fields(MetricTransformation))
_MSGSPEC_AT = re.compile(r"(?s)(.*?)(?: - at `\$(.*)`)?")


def _type_name(value: Any) -> str:
    name = {dict: "object", list: "array", str: "str", int: "int", float: "float", bool: "bool"}.get(type(value))
    if name is None:  # cfn_tools reads a template's mappings as ODict
        name = "object" if isinstance(value, Mapping) else "array" if isinstance(value, list) else None
    return name or ("null" if value is None else type(value).__name__)


def _check_keys(data: Mapping, allowed: tuple[str, ...], where: str, source) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            raise MetricFilterLoadError(
                f"unknown key {key!r}{guess} (allowed: {', '.join(allowed)})", source=source, location=where
            )


def _decode_error(error: msgspec.ValidationError, where: str, source) -> MetricFilterLoadError:
    match = _MSGSPEC_AT.fullmatch(str(error))
    assert match is not None
    message, sub = match.group(1), match.group(2) or ""
    location = where + sub
    missing = re.fullmatch(r"Object missing required field `(.+)`", message)
    if missing:
        location += "." + missing.group(1)
        message = "required key missing"
    else:
        message = (message[:1].lower() + message[1:]).replace("`", "")
        if location.endswith(".metricValue") and "expected str" in message:
            message += ' (write it as a string, e.g. "1")'
    return MetricFilterLoadError(message, source=source, location=location)


def _decode_transformation(data: Any, where: str, source) -> MetricTransformation:
    if not isinstance(data, Mapping):
        raise MetricFilterLoadError(f"expected an object, got {_type_name(data)}", source=source, location=where)
    _check_keys(data, _TRANSFORMATION_KEYS, where, source)
    try:
        return msgspec.convert(dict(data), MetricTransformation)
    except msgspec.ValidationError as error:
        raise _decode_error(error, where, source) from None


def _decode_filter(data: Any, where: str, source) -> MetricFilter:
    if isinstance(data, MetricFilter):
        return data
    if not isinstance(data, Mapping):
        raise MetricFilterLoadError(f"expected an object, got {_type_name(data)}", source=source, location=where)
    _check_keys(data, _FILTER_KEYS, where, source)
    transformations = data.get("metricTransformations")
    if isinstance(transformations, list):
        for i, t in enumerate(transformations):
            if isinstance(t, Mapping):
                _check_keys(t, _TRANSFORMATION_KEYS, f"{where}.metricTransformations[{i}]", source)
    try:
        return msgspec.convert(dict(data), MetricFilter)
    except msgspec.ValidationError as error:
        raise _decode_error(error, where, source) from None


# ---- CloudFormation templates ----------------------------------------------------------------

_NO_VALUE = object()  # AWS::NoValue: the property is removed
_CFN_FILTER_PROPERTIES = (
    "FilterName",
    "FilterPattern",
    "LogGroupName",
    "MetricTransformations",
    "ApplyOnTransformedLogs",
    "EmitSystemFieldDimensions",
    "FieldSelectionCriteria",
)
_CFN_TRANSFORMATION_PROPERTIES = ("MetricName", "MetricNamespace", "MetricValue", "DefaultValue", "Dimensions", "Unit")
_UNKNOWABLE_FUNCTIONS = {
    "Fn::GetAtt": "an attribute of a deployed resource",
    "Fn::ImportValue": "an export of another deployed stack",
    "Fn::GetAZs": "the availability zones of the deploying account",
}


class _Unresolvable(Exception):
    """A value castlewatch cannot know from the template.

    ``where``: the property holding the intrinsic function; ``node``: the innermost
    intrinsic function that failed.
    """

    where: str | None = None
    node: Any = None


class _Circular(_Unresolvable):
    """Log groups whose ``LogGroupName`` refers (through ``Ref`` or ``Fn::Sub``) back to itself."""


class _CfnResolver:
    """Resolves intrinsic functions whose result the template alone determines.

    Supported: ``Ref`` to a parameter (its ``Default``, or a value given in
    ``parameters``) or to an ``AWS::Logs::LogGroup`` (its ``LogGroupName``, or its
    logical id when it has none), ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``,
    ``Fn::FindInMap``, ``Fn::If`` with template ``Conditions`` (``Fn::Equals``,
    ``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Condition``), ``AWS::NoValue``.  Pseudo
    parameters (``AWS::Region``, ``AWS::AccountId``, ...) only when given in
    ``parameters``: castlewatch does not invent them.  A log group whose
    ``LogGroupName`` refers back to itself (directly or through other log groups) and
    a condition that refers to itself are :class:`_Unresolvable` (circular), not a
    ``RecursionError``.  The template's sections are checked first
    (:func:`_check_template_sections`).
    """

    def __init__(self, template: Mapping, overrides: Mapping[str, Any] | None) -> None:
        self.parameters = template.get("Parameters") or {}
        self.mappings = template.get("Mappings") or {}
        self.conditions = template.get("Conditions") or {}
        self.resources = template.get("Resources") or {}
        self.overrides = dict(overrides or {})
        self._condition_values: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._log_groups: list[str] = []  # log groups whose LogGroupName is being resolved

    # -- values --

    def resolve(self, node: Any, where: str | None = None) -> Any:
        """``node`` with every intrinsic function replaced by its value.

        ``where`` is the node's location in the template (None inside a function's
        arguments); an :class:`_Unresolvable` leaves with the location of the property
        holding the failing function.
        """
        if isinstance(node, Mapping):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                    try:
                        return self.ref(arg) if key == "Ref" else self.function(key, arg)
                    except _Unresolvable as error:
                        if error.node is None:
                            error.node = node
                        if error.where is None and where is not None:
                            error.where = where
                        raise
            out = {}
            for key, value in node.items():
                value = self.resolve(value, None if where is None else f"{where}.{key}")
                if value is not _NO_VALUE:
                    out[key] = value
            return out
        if isinstance(node, list):
            items = (self.resolve(item, None if where is None else f"{where}[{i}]") for i, item in enumerate(node))
            return [v for v in items if v is not _NO_VALUE]
        if isinstance(node, (_dt.date, _dt.datetime)):  # YAML reads 2010-09-09 as a date
            return node.isoformat()
        return node

    def text(self, node: Any, what: str) -> str:
        value = self.resolve(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise _Unresolvable(f"{what} must be a string, got {_type_name(value)}")

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise _Unresolvable(f"Ref takes a name, got {_type_name(name)}")
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.overrides:
            return self._parameter_value(name, self.overrides[name])
        if name.startswith("AWS::"):
            raise _Unresolvable(
                f"the pseudo parameter {name} is only known in a deployed stack; "
                f"give its value in parameters ({name}: ...) or write the value in the template"
            )
        if name in self.parameters:
            spec = self.parameters[name] or {}
            if "Default" not in spec:
                raise _Unresolvable(f"parameter {name} has no Default; give its value in parameters ({name}: ...)")
            return self._parameter_value(name, spec["Default"])
        resource = self.resources.get(name)
        if isinstance(resource, Mapping):
            kind = resource.get("Type")
            if kind == "AWS::Logs::LogGroup":
                props = resource.get("Properties") or {}
                if not isinstance(props, Mapping):
                    raise _Unresolvable(f"Ref {name}: Resources.{name}.Properties is not a mapping")
                if "LogGroupName" in props:
                    if name in self._log_groups:
                        cycle = self._log_groups[self._log_groups.index(name) :]
                        if len(cycle) == 1:
                            raise _Circular(f"circular reference: the LogGroupName of {name} refers to {name} itself")
                        raise _Circular(
                            f"circular reference: {' -> '.join(cycle + [name])} "
                            "(the LogGroupName of each refers to the next)"
                        )
                    self._log_groups.append(name)
                    try:
                        return self.text(props["LogGroupName"], "LogGroupName")
                    except _Circular:
                        raise
                    except _Unresolvable as error:
                        raise _Unresolvable(f"Ref {name}: Resources.{name}.Properties.LogGroupName: {error}") from None
                    finally:
                        self._log_groups.pop()
                return name  # CloudFormation generates the name; castlewatch uses the logical id
            raise _Unresolvable(f"Ref to {name} (a {kind} resource) is only known in a deployed stack")
        raise _Unresolvable(f"Ref to {name!r}: no such parameter or resource in the template")

    def _parameter_value(self, name: str, value: Any) -> Any:
        problem = _parameter_value_problem(value)  # checked when loading; kept for direct use
        if problem:
            raise _Unresolvable(f"parameter {name}: {problem}")
        spec = self.parameters.get(name) or {}
        kind = str(spec.get("Type", "String"))
        if isinstance(value, list):
            return [_scalar_text(v) for v in value]
        value = _scalar_text(value)
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [part.strip() for part in value.split(",")]
        return value

    def function(self, name: str, arg: Any) -> Any:
        if name == "Fn::Sub":
            return self._sub(arg)
        if name == "Fn::Join":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise _Unresolvable("Fn::Join takes [delimiter, [values...]]")
            delimiter = self.text(arg[0], "the Fn::Join delimiter")
            items = self.resolve(arg[1])
            if not isinstance(items, list):
                raise _Unresolvable("Fn::Join needs a list of values")
            return delimiter.join(self.text(item, "an Fn::Join value") for item in items)
        if name == "Fn::Select":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise _Unresolvable("Fn::Select takes [index, [values...]]")
            index = self.text(arg[0], "the Fn::Select index")
            items = self.resolve(arg[1])
            if not index.isdigit() or not isinstance(items, list) or int(index) >= len(items):
                raise _Unresolvable(f"Fn::Select index {index} is not within the list")
            return items[int(index)]
        if name == "Fn::FindInMap":
            if not (isinstance(arg, list) and len(arg) == 3):
                raise _Unresolvable("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
            keys = [self.text(k, "an Fn::FindInMap key") for k in arg]
            try:
                return self.resolve(self.mappings[keys[0]][keys[1]][keys[2]])
            except (KeyError, TypeError):
                raise _Unresolvable(f"Fn::FindInMap: no Mappings entry {'.'.join(keys)}") from None
        if name == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
                raise _Unresolvable("Fn::If takes [ConditionName, value_if_true, value_if_false]")
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if name in _UNKNOWABLE_FUNCTIONS:
            raise _Unresolvable(f"{name} gives {_UNKNOWABLE_FUNCTIONS[name]}, only known in a deployed stack")
        raise _Unresolvable(f"{name} is not supported by castlewatch; write the value in the template")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], Mapping):
            template, variables = arg[0], arg[1]
        else:
            template, variables = arg, {}
        if not isinstance(template, str):
            raise _Unresolvable("Fn::Sub takes a string or [string, {variables}]")

        def replace(match: re.Match) -> str:
            body = match.group(1)
            if body.startswith("!"):  # ${!Literal} is the text ${Literal}
                return "${" + body[1:] + "}"
            body = body.strip()
            if body in variables:
                return self.text(variables[body], f"Fn::Sub variable {body}")
            if "." in body:
                raise _Unresolvable(f"${{{body}}} is an attribute of a deployed resource (Fn::GetAtt)")
            value = self.ref(body)
            if value is _NO_VALUE or not isinstance(value, str):
                raise _Unresolvable(f"${{{body}}} is not a string value")
            return value

        return re.sub(r"\$\{([^}]*)\}", replace, template)

    # -- conditions --

    def condition(self, name: str) -> bool:
        if not isinstance(name, str):
            raise _Unresolvable(f"a condition is named by a string, got {_show(name)}")
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            raise _Unresolvable(f"no condition {name!r} in the template's Conditions")
        if name in self._evaluating:
            raise _Unresolvable(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            value = self._condition_expr(self.conditions[name])
        except _Unresolvable as error:
            raise _Unresolvable(f"condition {name}: {error}") from None
        finally:
            self._evaluating.discard(name)
        self._condition_values[name] = value
        return value

    def _condition_expr(self, node: Any) -> bool:
        if not (isinstance(node, Mapping) and len(node) == 1):
            raise _Unresolvable("a condition is one of Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition")
        ((key, arg),) = node.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = (self.resolve(v) for v in arg)
            return _plain(left) == _plain(right)
        if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._condition_expr(item) for item in arg]
            return all(values) if key == "Fn::And" else any(values)
        if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            return not self._condition_expr(arg[0])
        raise _Unresolvable(f"{key} is not a condition function castlewatch evaluates")


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def is_cloudformation_template(data: Any) -> bool:
    """A mapping with ``Resources`` or ``AWSTemplateFormatVersion``."""
    return isinstance(data, Mapping) and ("Resources" in data or "AWSTemplateFormatVersion" in data)


def _filters_from_template(
    template: Mapping, source, parameters: Mapping[str, Any] | None
) -> list[MetricFilter]:
    _check_template_sections(template, source)
    resources = template["Resources"]
    declared = template.get("Parameters") or {}
    for name, value in (parameters or {}).items():
        if name not in declared and not str(name).startswith("AWS::"):
            raise MetricFilterLoadError(
                f"parameter {name!r} is not declared in the template "
                f"(its parameters: {', '.join(map(str, declared)) or 'none'})",
                source=source,
                location="parameters",
            )
        problem = _parameter_value_problem(value)
        if problem:
            raise MetricFilterLoadError(problem, source=source, location=f"parameters.{name}")
    resolver = _CfnResolver(template, parameters)
    filters = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Logs::MetricFilter":
            continue
        where = f"Resources.{logical_id}"
        if "Condition" in resource:
            try:
                if not resolver.condition(resource["Condition"]):
                    continue  # not created with these parameter values
            except _Unresolvable as error:
                raise MetricFilterLoadError(str(error), source=source, location=where + ".Condition") from None
        props = resource.get("Properties")
        if not isinstance(props, Mapping):
            raise MetricFilterLoadError("needs Properties", source=source, location=where)
        filters.append(_filter_from_cfn(props, str(logical_id), where + ".Properties", resolver, source))
    return filters


def _check_template_sections(template: Mapping, source) -> None:
    """Refuse template sections of the wrong shape, naming the section (and entry).

    ``Resources`` is a mapping of logical ids to mappings (``Properties``, when given, a
    mapping); ``Parameters`` a mapping of names to declarations (mappings; an empty one
    is a ``String`` without default) whose ``Default`` is a string, number or boolean
    (or, for a list type, a list of those): never null, a mapping or an intrinsic
    function, which CloudFormation does not evaluate there; ``Mappings`` a mapping of
    mappings of mappings; ``Conditions`` a mapping.  Empty sections are absent ones.
    """

    def fail(location: str, reason: str) -> MetricFilterLoadError:
        return MetricFilterLoadError(reason, source=source, location=location)

    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        raise fail("Resources", f"a CloudFormation template needs a Resources mapping, got {_type_name(resources)}")
    for logical_id, resource in resources.items():
        where = f"Resources.{logical_id}"
        if not isinstance(resource, Mapping):
            raise fail(where, f"expected a resource mapping (Type, Properties), got {_type_name(resource)}")
        if "Properties" in resource and resource["Properties"] is not None:
            props = resource["Properties"]
            if not isinstance(props, Mapping):
                raise fail(f"{where}.Properties", f"expected a mapping of properties, got {_type_name(props)}")
    for section in ("Parameters", "Mappings", "Conditions"):
        value = template.get(section)
        if value is not None and not isinstance(value, Mapping):
            raise fail(section, f"expected a mapping of names to definitions, got {_type_name(value)}")
    for name, spec in (template.get("Parameters") or {}).items():
        where = f"Parameters.{name}"
        if spec is None:
            continue
        if not isinstance(spec, Mapping):
            shape = "{Type: String, Default: ...}"
            raise fail(where, f"expected a parameter declaration such as {shape}, got {_show(spec)}")
        if "Default" in spec:
            problem = _parameter_value_problem(spec["Default"])
            if problem:
                raise fail(f"{where}.Default", problem)
    for name, entries in (template.get("Mappings") or {}).items():
        if not isinstance(entries, Mapping):
            raise fail(f"Mappings.{name}", f"expected a mapping of top-level keys, got {_type_name(entries)}")
        for key, values in entries.items():
            if not isinstance(values, Mapping):
                raise fail(
                    f"Mappings.{name}.{key}", f"expected a mapping of second-level keys, got {_type_name(values)}"
                )


def _scalar_text(value: Any) -> str:
    """A parameter's scalar value as CloudFormation passes it: text (``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _parameter_value_problem(value: Any) -> str:
    """Why ``value`` cannot be a parameter's value or ``Default``, or ``""``.

    CloudFormation parameter values are strings (numbers and booleans are written as
    their text); a list is accepted for list types.  Null, a mapping and an intrinsic
    function are not values.
    """
    scalar = (str, int, float, bool, _dt.date)
    if value is None:
        return "a parameter value cannot be null; give a string (e.g. '' for an empty value)"
    if isinstance(value, list):
        if all(isinstance(item, scalar) for item in value):
            return ""
        return f"expected a list of strings, got {_show(value)}"
    if isinstance(value, scalar):
        return ""
    if isinstance(value, Mapping) and len(value) == 1 and ("Ref" in value or str(next(iter(value))).startswith("Fn::")):
        return f"expected a string, got the intrinsic function {_show(value)}, which is not evaluated here"
    return f"expected a string, got {'a mapping' if isinstance(value, Mapping) else _type_name(value)} {_show(value)}"


def _filter_from_cfn(props: Mapping, logical_id: str, where: str, resolver: _CfnResolver, source) -> MetricFilter:
    def err(location: str, reason: str) -> MetricFilterLoadError:
        return MetricFilterLoadError(reason, source=source, location=location)

    def text(v: Any, location: str, *, numbers: bool = False) -> str:
        if isinstance(v, str):
            return v
        if numbers and isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)  # CloudFormation turns scalars of String properties into strings
        raise err(location, f"expected a string, got {_type_name(v)}")

    try:
        props = resolver.resolve(props, where)
    except _Unresolvable as error:
        raise err(error.where or where, f"cannot resolve {_show(error.node)}: {error}") from None
    _check_cfn_keys(props, _CFN_FILTER_PROPERTIES, where, source, "AWS::Logs::MetricFilter")
    for required in ("FilterPattern", "LogGroupName", "MetricTransformations"):
        if required not in props:
            raise err(f"{where}.{required}", "required property missing")
    data: dict[str, Any] = {
        "filterName": text(props["FilterName"], f"{where}.FilterName") if "FilterName" in props else logical_id,
        "filterPattern": text(props["FilterPattern"], f"{where}.FilterPattern", numbers=True),
        "logGroupName": text(props["LogGroupName"], f"{where}.LogGroupName"),
    }
    transformations = props["MetricTransformations"]
    if not isinstance(transformations, list):
        raise err(f"{where}.MetricTransformations", f"expected a list, got {_type_name(transformations)}")
    data["metricTransformations"] = []
    for i, t in enumerate(transformations):
        at = f"{where}.MetricTransformations[{i}]"
        if not isinstance(t, Mapping):
            raise err(at, f"expected a mapping, got {_type_name(t)}")
        _check_cfn_keys(t, _CFN_TRANSFORMATION_PROPERTIES, at, source, "MetricTransformation")
        for required in ("MetricName", "MetricNamespace", "MetricValue"):
            if required not in t:
                raise err(f"{at}.{required}", "required property missing")
        out: dict[str, Any] = {
            "metricName": text(t["MetricName"], f"{at}.MetricName"),
            "metricNamespace": text(t["MetricNamespace"], f"{at}.MetricNamespace"),
            "metricValue": text(t["MetricValue"], f"{at}.MetricValue", numbers=True),
        }
        if "DefaultValue" in t:
            default = t["DefaultValue"]
            try:
                if isinstance(default, bool):
                    raise ValueError
                out["defaultValue"] = float(default)
            except (TypeError, ValueError):
                raise err(f"{at}.DefaultValue", f"expected a number, got {_show(default)}") from None
        if "Unit" in t:
            out["unit"] = text(t["Unit"], f"{at}.Unit")
        if "Dimensions" in t:
            dims = t["Dimensions"]
            if not isinstance(dims, list):
                raise err(f"{at}.Dimensions", f"expected a list of {{Key, Value}}, got {_type_name(dims)}")
            out["dimensions"] = {}
            for j, dim in enumerate(dims):
                dat = f"{at}.Dimensions[{j}]"
                if not isinstance(dim, Mapping) or set(dim) != {"Key", "Value"}:
                    raise err(dat, "expected a mapping with exactly Key and Value")
                key = text(dim["Key"], f"{dat}.Key")
                if key in out["dimensions"]:
                    raise err(f"{dat}.Key", f"dimension {key!r} is given twice")
                out["dimensions"][key] = text(dim["Value"], f"{dat}.Value")
        data["metricTransformations"].append(out)
    if "ApplyOnTransformedLogs" in props:
        flag = props["ApplyOnTransformedLogs"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise err(f"{where}.ApplyOnTransformedLogs", f"expected true or false, got {_show(flag)}")
        data["applyOnTransformedLogs"] = flag
    if "EmitSystemFieldDimensions" in props:
        fields = props["EmitSystemFieldDimensions"]
        if not (isinstance(fields, list) and all(isinstance(x, str) for x in fields)):
            raise err(f"{where}.EmitSystemFieldDimensions", "expected a list of strings")
        data["emitSystemFieldDimensions"] = fields
    if "FieldSelectionCriteria" in props:
        data["fieldSelectionCriteria"] = text(props["FieldSelectionCriteria"], f"{where}.FieldSelectionCriteria")
    return msgspec.convert(data, MetricFilter)


def _check_cfn_keys(data: Mapping, allowed: tuple[str, ...], where: str, source, kind: str) -> None:
    for key in data:
        if key not in allowed:
            raise MetricFilterLoadError(
                f"unknown property {key!r} ({kind} allows: {', '.join(allowed)})",
                source=source,
                location=where,
            )


def _show(node: Any) -> str:
    try:
        return json.dumps(node, default=str)
    except (TypeError, ValueError):
        return repr(node)


# ---- loading ---------------------------------------------------------------------------------


def read_document(path: str | os.PathLike) -> Any:
    """Read a JSON or YAML file (CloudFormation tags such as ``!Ref`` understood).

    ``.json`` files are read as JSON; other files as JSON when they parse as such, else
    as YAML.
    Uses ``cfn_tools`` (package ``cfn-flip``) so that ``!Ref``/``!Sub``/``!GetAtt``
    become their ``Ref``/``Fn::*`` mappings.

    Raises:
        MetricFilterLoadError: the file cannot be read or parsed (with line and column).
    """
    import cfn_tools
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetricFilterLoadError("no such file", source=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise MetricFilterLoadError(f"cannot read: {error}", source=path) from None
    try:
        if path.suffix.lower() == ".json":
            return cfn_tools.load_json(text)
        if text.lstrip().startswith("{"):  # JSON under another name (.template): tabs are not YAML
            try:
                return cfn_tools.load_json(text)
            except json.JSONDecodeError:
                pass
        return cfn_tools.load_yaml(text)
    except json.JSONDecodeError as error:
        raise MetricFilterLoadError(
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}", source=path
        ) from None
    except yaml.YAMLError as error:
        raise MetricFilterLoadError(yaml_error_text(error), source=path) from None


def yaml_error_text(error: Exception) -> str:
    """A PyYAML error as one line: ``invalid YAML at line L, column C: problem``."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"invalid YAML{where}: {problem}"


def metric_filters_from_document(
    data: Any,
    *,
    source: str | os.PathLike | None = None,
    where: str = "metricFilters",
    parameters: Mapping[str, Any] | None = None,
) -> list[MetricFilter]:
    """Decode (without validating) filters from a list, a describe output or a template.

    Args:
        data: a list of filters in the describe shape (dicts or :class:`MetricFilter`),
            ``{"metricFilters": [...], ...}`` (other keys such as ``nextToken`` are
            ignored), or a CloudFormation template.
        source: the file it came from, for messages.
        where: the name of the list in messages (``metricFilters[2].filterName``).
        parameters: CloudFormation parameter values (and pseudo parameters such as
            ``AWS::Region``) overriding the template's defaults.

    Raises:
        MetricFilterLoadError: wrong shape, type or key; unresolvable template value.
    """
    if is_cloudformation_template(data):
        return _filters_from_template(data, source, parameters)
    if parameters:
        raise MetricFilterLoadError("parameters only apply to a CloudFormation template", source=source)
    if isinstance(data, Mapping):
        if "metricFilters" not in data:
            raise MetricFilterLoadError(
                "expected a list of metric filters, the JSON printed by 'aws logs describe-metric-filters' "
                '({"metricFilters": [...]}) or a CloudFormation template (Resources); got a mapping with keys: '
                + ", ".join(map(str, data)),
                source=source,
            )
        data, where = data["metricFilters"], "metricFilters"
    if not isinstance(data, list):
        raise MetricFilterLoadError(
            f"expected a list of metric filters, got {_type_name(data)}", source=source, location=where
        )
    return [_decode_filter(item, f"{where}[{i}]", source) for i, item in enumerate(data)]


def load_metric_filters(
    source: str | os.PathLike | Mapping | list,
    *,
    parameters: Mapping[str, Any] | None = None,
    where: str = "metricFilters",
) -> list[MetricFilter]:
    """Load metric filters and validate them all as PutMetricFilter would.

    Args:
        source: one of
            - a list of filters in the ``describe-metric-filters`` shape (camelCase
              dicts, or :class:`MetricFilter`);
            - a dict ``{"metricFilters": [...]}``: the output of ``aws logs
              describe-metric-filters`` pasted as is (``nextToken`` etc. ignored);
            - a path (``str`` or ``PathLike``) to a JSON or YAML file holding either;
            - a path to a CloudFormation template (YAML or JSON, detected by
              ``Resources`` / ``AWSTemplateFormatVersion``): every
              ``AWS::Logs::MetricFilter`` resource becomes a filter; ``FilterName``
              defaults to the logical id; intrinsic functions are resolved where the
              template alone determines them (see :class:`_CfnResolver`), and a
              ``Ref`` to an ``AWS::Logs::LogGroup`` without ``LogGroupName`` gives the
              group's logical id.  A resource whose ``Condition`` is false is skipped.
        parameters: CloudFormation parameter values overriding defaults; pseudo
            parameters (``AWS::Region``...) are only known when given here.
        where: the list's name in error messages.

    Returns:
        the filters, in document order, each valid (§8.1, §8.2) and within the
        per-log-group limits (§1).

    Raises:
        MetricFilterLoadError: unreadable file, wrong shape or type (naming the path),
            a template section of the wrong shape (naming the section and entry, e.g.
            ``Parameters.P``), a null or non-scalar parameter value or ``Default``,
            unresolvable template value (naming resource and property), log groups
            whose ``LogGroupName`` refers back to themselves.
        MetricFilterError / MetricFilterPatternError: the first filter PutMetricFilter
            would reject.
        LimitExceededError: a per-log-group quota exceeded.
        DuplicateFilterError: a filter name repeated within a log group.

    Only the first problem is raised, in document order, as successive PutMetricFilter
    calls would meet them.
    """
    origin = None
    if isinstance(source, (str, os.PathLike)):
        origin = source
        source = read_document(source)
    filters = metric_filters_from_document(source, source=origin, where=where, parameters=parameters)
    validate_metric_filters(filters)
    return filters
