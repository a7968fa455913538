"""PutMetricFilter validation (spec §8.1, §8.2, in that order) and the per-log-group
quotas (§1), with the service's messages (§11); PutSubscriptionFilter's, which shares
the names, the pattern language and the field selection criteria.

- :func:`validate_metric_filter` checks one :class:`~castlewatch.model.MetricFilter`
  the way PutMetricFilter does.
- :func:`validate_subscription_filter` checks a subscription filter the way
  PutSubscriptionFilter does.
- :func:`check_group_limits` applies the per-log-group quotas (100 filters, 5 filters
  with a regex) and refuses two filters of one name in one log group.

Every rule castlewatch adopts where no source settles it is marked ``[adopted]``.
Spec: ``docs/filter-patterns.md``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from castlewatch.grammar import FilterPattern, compile_pattern
from castlewatch.grammar.errors import FilterPatternError
from castlewatch.grammar.parser import regex_values
from castlewatch.metric_filters.describe import decode_transformation
from castlewatch.metric_filters.errors import (
    DEFAULT_WITH_DIMENSIONS,
    DIMENSIONS_NOT_SUPPORTED,
    INVALID_DEFAULT_VALUE,
    INVALID_DIMENSION_NAME,
    INVALID_DIMENSION_VALUE,
    INVALID_METRIC_VALUE,
    INVALID_SELECTION_CRITERIA,
    INVALID_SYSTEM_FIELDS,
    TOO_MANY_DIMENSIONS,
    DuplicateFilterError,
    LimitExceededError,
    MetricFilterError,
    MetricFilterPatternError,
    max_length,
    min_length,
    pattern_mismatch,
    validation_error,
)
from castlewatch.metric_filters.references import (
    MAX_NUMBER,
    parse_metric_value,
    parse_reference,
)
from castlewatch.metric_filters.selection import is_valid_selection_criteria
from castlewatch.model import MetricFilter, MetricTransformation

# ---- limits (§1, §8.1, §8.2) -------------------------------------------------------------------

MAX_FILTERS_PER_LOG_GROUP = 100  # §1 [doc QUOTAS]
MAX_REGEX_FILTERS_PER_LOG_GROUP = 5  # §1 [rec R-M]: filters containing a regex, not regexes
MAX_DIMENSIONS = 3  # §8.2 step 6, system fields included
MAX_NAME_LENGTH = 512  # logGroupName, filterName (§8.1)
MAX_METRIC_NAME_LENGTH = 255  # metricName, metricNamespace (§8.1)
MAX_METRIC_VALUE_LENGTH = 100  # §8.1
MAX_SELECTION_CRITERIA_LENGTH = 2000  # §8.1

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
        _check_names(fail, f.log_group_name, f.filter_name, "metric filter")
    count = len(f.metric_transformations)
    if count != 1:
        message = (
            max_length("metricTransformations", 1) if count > 1 else min_length("metricTransformations")
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
            raise fail(min_length(member + key), rule)
        if len(value) > MAX_METRIC_NAME_LENGTH:
            raise fail(max_length(member + key, MAX_METRIC_NAME_LENGTH), rule)
        if any(ch in _METRIC_NAME_FORBIDDEN for ch in value):
            raise fail(pattern_mismatch(member + key, "[^:*$]*"), rule, f"':', '*' and '$' are not allowed in {key}")

    # 3. The metric value: a number or a reference.
    if len(t.metric_value) > MAX_METRIC_VALUE_LENGTH:
        raise fail(max_length(member + "metricValue", MAX_METRIC_VALUE_LENGTH), "metric_value")
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
    _check_selection_criteria(fail, f.field_selection_criteria)
    return pattern


def _check_names(fail, group: str, name: str, what: str) -> None:
    """§8.1: ``logGroupName`` and ``filterName`` (PutMetricFilter and PutSubscriptionFilter)."""
    if len(group) < 1:
        raise fail(min_length("logGroupName"), "log_group_name", f"every {what} needs its logGroupName")
    if len(group) > MAX_NAME_LENGTH:
        raise fail(max_length("logGroupName", MAX_NAME_LENGTH), "log_group_name")
    if not LOG_GROUP_NAME_RE.fullmatch(group):
        raise fail(
            pattern_mismatch("logGroupName", LOG_GROUP_NAME_RE.pattern),
            "log_group_name",
            "a log group name is made of letters, digits and . - _ / #",
        )
    if len(name) < 1:
        raise fail(min_length("filterName"), "filter_name")
    if len(name) > MAX_NAME_LENGTH:
        raise fail(max_length("filterName", MAX_NAME_LENGTH), "filter_name")
    if any(ch in _FILTER_NAME_FORBIDDEN for ch in name):
        raise fail(
            pattern_mismatch("filterName", "[^:*]*"), "filter_name", "':' and '*' are not allowed in a filter name"
        )


def _check_selection_criteria(fail, criteria: str | None) -> None:
    """§8.2 step 10: ``fieldSelectionCriteria`` (PutMetricFilter and PutSubscriptionFilter)."""
    if criteria:  # [adopted] "" selects every event, like no criteria
        if len(criteria) > MAX_SELECTION_CRITERIA_LENGTH:
            raise fail(max_length("fieldSelectionCriteria", MAX_SELECTION_CRITERIA_LENGTH), "field_selection_criteria")
        if not is_valid_selection_criteria(criteria):
            raise fail(
                INVALID_SELECTION_CRITERIA,
                "field_selection_criteria",
                'e.g. @aws.region = "us-east-1" AND @aws.account IN ["123456789012"]',
            )


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
        transformation = decode_transformation(transformation, "transformation", None)
    f = MetricFilter(filter_name=filter_name, filter_pattern=filter_pattern, metric_transformations=[transformation])
    _check(f, filter_name=filter_name, log_group_name="", request_members=False)


DISTRIBUTIONS: tuple[str, ...] = ("Random", "ByLogStream")
"""Values of PutSubscriptionFilter's ``distribution`` (botocore's ``Distribution`` enum)."""

#: Destinations that need a ``roleArn`` (the service names the vendor) [rec: kinesis;
#: firehose adopted, the same rule per the API reference's roleArn text].
_ROLE_VENDORS = ("kinesis", "firehose")


def validate_subscription_filter(
    *,
    log_group_name: str,
    filter_name: str,
    filter_pattern: str,
    destination_arn: str,
    role_arn: str | None = None,
    distribution: str | None = None,
    field_selection_criteria: str | None = None,
    emit_system_fields: list[str] | None = None,
) -> FilterPattern:
    """Validate a subscription filter as PutSubscriptionFilter does; return its compiled
    pattern.

    The pattern language is the one of metric filters (§1, [doc FPS]); names follow §8.1;
    ``destinationArn`` and ``roleArn`` have at least one character, ``distribution`` is
    ``Random`` or ``ByLogStream``, ``emitSystemFields`` take the §8.2 step 5 values and
    ``fieldSelectionCriteria`` the step 10 syntax (botocore's PutSubscriptionFilterRequest
    shape). A Kinesis or Firehose destination without ``roleArn`` gets "destinationArn for
    vendor kinesis cannot be used without roleArn" [rec]. Whether the destination exists
    or accepts the test message is for the service (or the emulator) to say.

    Raises:
        MetricFilterPatternError: the pattern does not compile (the service's message;
            ``filter_name`` and ``log_group_name`` set).
        MetricFilterError: any other rule; ``message`` is the service's text (§11).
    """

    def fail(message: str, rule: str, hint: str = "") -> MetricFilterError:
        return MetricFilterError(
            message, filter_name=filter_name, log_group_name=log_group_name, rule=rule, hint=hint
        )

    _check_names(fail, log_group_name, filter_name, "subscription filter")
    if len(destination_arn) < 1:
        raise fail(min_length("destinationArn"), "destination_arn")
    if role_arn is not None and len(role_arn) < 1:
        raise fail(min_length("roleArn"), "role_arn")
    if distribution is not None and distribution not in DISTRIBUTIONS:
        raise fail(
            validation_error("distribution", f"Member must satisfy enum value set: [{', '.join(DISTRIBUTIONS)}]"),
            "distribution",
        )
    try:
        pattern = compile_pattern(filter_pattern)
    except FilterPatternError as error:
        raise MetricFilterPatternError.wrap(error, filter_name, log_group_name) from None
    if any(field not in SYSTEM_FIELDS for field in emit_system_fields or ()):
        raise fail(INVALID_SYSTEM_FIELDS, "system_fields")
    _check_selection_criteria(fail, field_selection_criteria)
    vendor = destination_arn.split(":")[2] if destination_arn.count(":") >= 5 else ""
    if vendor in _ROLE_VENDORS and not role_arn:
        raise fail(f"destinationArn for vendor {vendor} cannot be used without roleArn", "role_arn")
    return pattern


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
