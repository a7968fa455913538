"""PutMetricFilter and PutSubscriptionFilter: validated as the service validates them, then
forwarded to the upstream unchanged.

LocalStack and moto accept patterns and filters AWS refuses. castlewatch checks the request
with the engine's validation (:func:`~castlewatch.metric_filters.validate_metric_filter`,
spec §8.1-§8.2; :func:`~castlewatch.metric_filters.validate_subscription_filter`) and the
per-log-group quotas against the filters the upstream already holds for the log group
(DescribeMetricFilters, DescribeSubscriptionFilters): 100 metric filters, 2 subscription
filters, 5 filters with a regular expression, metric and subscription filters counted
together (§1); a filter replacing one of the same name does not count twice. A refusal is
the service's error (``InvalidParameterException`` or ``LimitExceededException``, §11);
nothing reaches the upstream. A log group the upstream does not have is its
``ResourceNotFoundException`` as it answers it (moto would create a metric filter on a
missing log group); when it cannot list the filters otherwise, the quotas are left to it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from castlewatch.endpoint.errors import (
    INVALID_PARAMETER,
    LIMIT_EXCEEDED,
    RESOURCE_NOT_FOUND,
    SERIALIZATION,
    ApiError,
    from_castlewatch,
)
from castlewatch.endpoint.forward import UpstreamAnswer
from castlewatch.endpoint.limits import MAX_SUBSCRIPTION_FILTERS
from castlewatch.endpoint.shapes import Call, member, string_list
from castlewatch.grammar import compile_pattern
from castlewatch.grammar.errors import FilterPatternError, InvalidParameterError, validation_errors
from castlewatch.grammar.parser import regex_values
from castlewatch.metric_filters import validate_metric_filter, validate_subscription_filter
from castlewatch.metric_filters.errors import RESOURCE_LIMIT_EXCEEDED
from castlewatch.metric_filters.validate import MAX_FILTERS_PER_LOG_GROUP, MAX_REGEX_FILTERS_PER_LOG_GROUP
from castlewatch.model import MetricFilter, MetricTransformation

#: Pages of DescribeMetricFilters / DescribeSubscriptionFilters read at most (50 filters a
#: page covers the 100-filter quota several times over).
_MAX_DESCRIBE_PAGES = 20


def _transformation(value: Any, number: int) -> MetricTransformation:
    """One ``metricTransformations`` item, read against botocore's MetricTransformation shape."""
    where = f"metricTransformations.{number}.member"
    if not isinstance(value, dict):
        raise ApiError(SERIALIZATION, f"'{where}' must be an object")
    for name in ("metricName", "metricNamespace", "metricValue"):
        if value.get(name) is None:
            raise ApiError(INVALID_PARAMETER, validation_errors((f"{where}.{name}", "Member must not be null")))
        member(value, name, str)
    default = value.get("defaultValue")
    if default is not None and (isinstance(default, bool) or not isinstance(default, (int, float))):
        raise ApiError(SERIALIZATION, f"'{where}.defaultValue' must be a number")
    dimensions = member(value, "dimensions", dict)
    if dimensions is not None and not all(isinstance(v, str) for v in dimensions.values()):
        raise ApiError(SERIALIZATION, f"'{where}.dimensions' values must be strings")
    return MetricTransformation(
        metric_name=value["metricName"],
        metric_namespace=value["metricNamespace"],
        metric_value=value["metricValue"],
        default_value=None if default is None else float(default),
        dimensions=dimensions,
        unit=member(value, "unit", str),
    )


def _named_filter(payload: dict[str, Any]) -> tuple[str, str, str]:
    """(logGroupName, filterName, filterPattern) of a Put*Filter call, each required.

    Raises:
        ApiError: a member is missing or not a string (the service's validation error).
    """
    return (
        member(payload, "logGroupName", str, required=True),
        member(payload, "filterName", str, required=True),
        member(payload, "filterPattern", str, required=True),
    )


async def put_metric_filter(call: Call) -> web.Response:
    """Validate a PutMetricFilter call (§8.1-§8.2, the quotas of §1), then forward it.

    Raises:
        ApiError: the service's refusal; an unreachable upstream (503).
    """
    p = call.payload
    group, name, pattern_text = _named_filter(p)
    transformations = member(p, "metricTransformations", list, required=True)
    metric_filter = MetricFilter(
        filter_name=name,
        filter_pattern=pattern_text,
        metric_transformations=[_transformation(t, i) for i, t in enumerate(transformations, 1)],
        log_group_name=group,
        emit_system_field_dimensions=string_list(p, "emitSystemFieldDimensions"),
        field_selection_criteria=member(p, "fieldSelectionCriteria", str),
        apply_on_transformed_logs=bool(member(p, "applyOnTransformedLogs", bool)),
    )
    try:
        validate_metric_filter(metric_filter)
    except InvalidParameterError as error:
        raise from_castlewatch(error, call.operation) from None
    refused = await _check_quotas(call, group, name, pattern_text, "metric")
    assert call.upstream is not None
    return refused or await call.upstream.forward(call.request, call.body)


async def put_subscription_filter(call: Call) -> web.Response:
    """Validate a PutSubscriptionFilter call (names, pattern, destination, the quotas of §1),
    then forward it.

    Raises:
        ApiError: the service's refusal; an unreachable upstream (503).
    """
    p = call.payload
    group, name, pattern_text = _named_filter(p)
    destination = member(p, "destinationArn", str, required=True)
    try:
        validate_subscription_filter(
            log_group_name=group,
            filter_name=name,
            filter_pattern=pattern_text,
            destination_arn=destination,
            role_arn=member(p, "roleArn", str),
            distribution=member(p, "distribution", str),
            field_selection_criteria=member(p, "fieldSelectionCriteria", str),
            emit_system_fields=string_list(p, "emitSystemFields"),
        )
    except InvalidParameterError as error:
        raise from_castlewatch(error, call.operation) from None
    refused = await _check_quotas(call, group, name, pattern_text, "subscription")
    assert call.upstream is not None
    return refused or await call.upstream.forward(call.request, call.body)


async def _filters(call: Call, operation: str, key: str, group: str) -> list[dict[str, Any]] | UpstreamAnswer:
    """The log group's filters as the upstream lists them (all pages), or its refusal."""
    assert call.upstream is not None
    filters: list[dict[str, Any]] = []
    token = None
    for _ in range(_MAX_DESCRIBE_PAGES):
        request: dict[str, Any] = {"logGroupName": group}
        if token:
            request["nextToken"] = token
        answer = await call.upstream.call(call.request, operation, request)
        if not answer.ok:
            return answer
        data = answer.json()
        filters += [f for f in data.get(key) or [] if isinstance(f, dict) and f.get("logGroupName", group) == group]
        token = data.get("nextToken")
        if not token:
            break
    return filters


def _has_regex(pattern_text: Any) -> bool:
    try:
        return bool(regex_values(compile_pattern(pattern_text).tree)) if isinstance(pattern_text, str) else False
    except FilterPatternError:  # put into the emulator past castlewatch: not counted
        return False


async def _check_quotas(call: Call, group: str, name: str, pattern_text: str, kind: str) -> web.Response | None:
    """The per-log-group quotas (§1) with the filters the upstream holds for ``group``.

    Returns:
        the upstream's ``ResourceNotFoundException`` when it has no such log group (the
        service's answer to a Put on a missing log group, §8.1: moto would create the
        metric filter anyway), to pass back as it came; else None.

    Raises:
        ApiError: ``LimitExceededException`` "Resource limit exceeded.".
    """
    metric = await _filters(call, "DescribeMetricFilters", "metricFilters", group)
    subscription = await _filters(call, "DescribeSubscriptionFilters", "subscriptionFilters", group)
    for listed in (metric, subscription):
        if isinstance(listed, UpstreamAnswer):
            return listed.response() if listed.error_code() == RESOURCE_NOT_FOUND else None
    assert isinstance(metric, list) and isinstance(subscription, list)
    if kind == "metric":
        metric = [f for f in metric if f.get("filterName") != name]
        if len(metric) >= MAX_FILTERS_PER_LOG_GROUP:
            raise ApiError(LIMIT_EXCEEDED, RESOURCE_LIMIT_EXCEEDED)
    else:
        subscription = [f for f in subscription if f.get("filterName") != name]
        if len(subscription) >= MAX_SUBSCRIPTION_FILTERS:
            raise ApiError(LIMIT_EXCEEDED, RESOURCE_LIMIT_EXCEEDED)
    if _has_regex(pattern_text):
        with_regex = sum(_has_regex(f.get("filterPattern")) for f in metric + subscription)
        if with_regex >= MAX_REGEX_FILTERS_PER_LOG_GROUP:
            raise ApiError(LIMIT_EXCEEDED, RESOURCE_LIMIT_EXCEEDED)
    return None
