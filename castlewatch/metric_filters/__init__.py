"""Metric filters: PutMetricFilter validation, per-log-group limits, loading.

Spec: ``docs/filter-patterns.md`` §1 (limits per log group), §8.1 (fields), §8.2
(validation, in that order), §11 (messages).  One module per concern:

- :mod:`.validate`: :func:`validate_metric_filter` (one filter, as PutMetricFilter),
  :func:`validate_subscription_filter` (as PutSubscriptionFilter),
  :func:`check_group_limits` (per-log-group quotas);
- :mod:`.references`: ``metricValue`` / dimension references and number literals;
- :mod:`.selection`: ``fieldSelectionCriteria`` syntax;
- :mod:`.errors`: the errors and the service's messages;
- loaders: :mod:`.describe` (the ``describe-metric-filters`` shape),
  :mod:`.cloudformation` (templates), :mod:`.load` (files and data, validated).
"""

from castlewatch.metric_filters.cloudformation import is_cloudformation_template
from castlewatch.metric_filters.errors import (
    DuplicateFilterError,
    LimitExceededError,
    MetricFilterError,
    MetricFilterLoadError,
    MetricFilterPatternError,
)
from castlewatch.metric_filters.load import (
    load_metric_filters,
    metric_filters_from_document,
    read_document,
    yaml_error_text,
)
from castlewatch.metric_filters.references import (
    Reference,
    parse_metric_value,
    parse_number_literal,
    parse_reference,
)
from castlewatch.metric_filters.selection import is_valid_selection_criteria
from castlewatch.metric_filters.validate import (
    LOG_GROUP_NAME_RE,
    SYSTEM_FIELDS,
    UNITS,
    check_group_limits,
    validate_metric_filter,
    validate_metric_filters,
    validate_subscription_filter,
    validate_transformation,
)

__all__ = [
    "LimitExceededError",
    "MetricFilterError",
    "MetricFilterLoadError",
    "MetricFilterPatternError",
    "DuplicateFilterError",
    "Reference",
    "LOG_GROUP_NAME_RE",
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
    "yaml_error_text",
    "validate_metric_filter",
    "validate_metric_filters",
    "validate_subscription_filter",
    "validate_transformation",
]
