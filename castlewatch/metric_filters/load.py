"""Loading metric filters from data or files, validated as PutMetricFilter would (spec §8).

:func:`load_metric_filters` reads filters from Python data, from the JSON printed by
``aws logs describe-metric-filters`` (pasted as is), or from the
``AWS::Logs::MetricFilter`` resources of a CloudFormation template, and validates
them all; it raises the **first** problem found, in file order, so that nothing
starts with an invalid configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from castlewatch.metric_filters.cloudformation import (
    filters_from_template,
    is_cloudformation_template,
)
from castlewatch.metric_filters.describe import decode_filter, type_name
from castlewatch.metric_filters.errors import MetricFilterLoadError
from castlewatch.metric_filters.validate import validate_metric_filters
from castlewatch.model import MetricFilter


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
        return filters_from_template(data, source, parameters)
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
            f"expected a list of metric filters, got {type_name(data)}", source=source, location=where
        )
    return [decode_filter(item, f"{where}[{i}]", source) for i, item in enumerate(data)]


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
