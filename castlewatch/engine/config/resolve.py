"""Before ``replay`` or ``run``: what a configuration's cloudwatch_logs sources need from AWS.

:func:`resolve_config` is called after :func:`~castlewatch.engine.config.load_config` and
before the :class:`~castlewatch.engine.runner.Engine` is built. It asks CloudWatch Logs
(through the shared client and rate limiter of
:mod:`castlewatch.engine.sources.cloudwatch_logs`):

- the log groups of each source: a ``log_group_name_prefix`` becomes the log groups whose
  name starts with it now (DescribeLogGroups, paged; resolved once: a log group created
  later is not read until castlewatch is restarted, see the README), and each of
  ``log_group_names`` must exist;
- with ``{discover: true}`` in ``metric_filters``, the metric filters provisioned on each
  of those log groups (DescribeMetricFilters, paged), decoded and validated like any
  filter of the config (§8.1, §8.2, the per-log-group limits of §1, together with the
  config's own filters, so that a filter given twice is refused), and refused with a
  clear error naming it and its log group if castlewatch cannot evaluate it exactly
  (``fieldSelectionCriteria``, ``emitSystemFieldDimensions``). Where each log group's
  filters were discovered is kept in ``EngineConfig.discovered_log_groups``.

A log group named in ``log_group_names`` without any metric filter (inline, from a file or
discovered) is an error, as for a file source; one that only a prefix matches is left out,
with a warning. A log group read by two sources is an error.
"""

from __future__ import annotations

import dataclasses

from castlewatch.aws import hold_clients
from castlewatch.engine.config.model import ConfigError, EngineConfig
from castlewatch.engine.evaluate import UnsupportedMetricFilterError, check_supported
from castlewatch.engine.sources.cloudwatch_logs import (
    CloudWatchLogsError,
    CloudWatchLogsSpec,
    describe_metric_filters,
    logs_account,
    resolve_log_groups,
)
from castlewatch.metric_filters import DuplicateFilterError, validate_metric_filters
from castlewatch.metric_filters.describe import decode_filter
from castlewatch.model import MetricFilter

__all__ = ["resolve_config"]


async def resolve_config(config: EngineConfig) -> tuple[EngineConfig, list[str]]:
    """``config`` with its cloudwatch_logs sources' log groups resolved and, if asked, the
    metric filters provisioned on them added; and the warnings to show.

    Returns:
        (config, warnings): every cloudwatch_logs source names its log groups
        (``log_group_name_prefix`` None), ``metric_filters`` holds the discovered filters
        after the config's own, ``discovered_log_groups`` maps each log group whose
        filters were discovered to the endpoint they came from (given or configured, see
        ``AwsTarget.endpoint``; None: AWS), and
        ``discover_metric_filters`` is False. A config without cloudwatch_logs sources
        is returned as it is.

    Raises:
        CloudWatchLogsError: a log group that does not exist, a prefix that matches no
            log group, a call AWS denied or that kept failing.
        ConfigError: a named log group without any metric filter, a log group read by two
            sources, every log group of a prefix without one.
        MetricFilterLoadError, MetricFilterError, LimitExceededError, DuplicateFilterError,
        UnsupportedMetricFilterError: a discovered filter castlewatch refuses, or the
            discovered and configured filters together break a per-log-group rule; the
            message names the log group it was discovered on.
    """
    specs = [(i, s) for i, s in enumerate(config.sources) if isinstance(s, CloudWatchLogsSpec)]
    if not specs:
        return config, []
    async with hold_clients():  # one client per AWS target for every lookup
        return await _resolve(config, specs)


async def _resolve(config: EngineConfig, specs: list[tuple[int, CloudWatchLogsSpec]]) -> tuple[EngineConfig, list[str]]:
    groups_of: dict[int, list[str]] = {}
    read_by: dict[str, int] = {}
    for i, spec in specs:
        names = await resolve_log_groups(spec)
        if spec.log_group_name_prefix is not None and not names:
            where = logs_account(spec.target).where()
            raise CloudWatchLogsError(
                f"sources[{i}]: no log group name starts with {spec.log_group_name_prefix!r} ({where})", "not_found"
            )
        for name in names:
            if name in read_by:
                raise ConfigError(
                    f"log group {name!r} is read by sources[{read_by[name]}] too: each of its events would be counted "
                    "twice; narrow the prefix or remove the name",
                    source=config.path,
                    location=f"sources[{i}]",
                )
            read_by[name] = i
        groups_of[i] = names
    filters = list(config.metric_filters)
    discovered: dict[str, str | None] = {}
    if config.discover_metric_filters:
        for i, spec in specs:
            for name in groups_of[i]:
                filters += await _discover(spec, name)
                discovered[name] = spec.target.endpoint("logs")
        try:
            validate_metric_filters(filters)
        except DuplicateFilterError as error:
            raise DuplicateFilterError(
                f"{error.reason} (with {{discover: true}}, the filters provisioned on the log groups are read from "
                "CloudWatch Logs: remove the configured copy)",
                source=error.source,
                location=error.location,
            ) from None
    with_filters = {f.log_group_name for f in filters}
    warnings = []
    sources = list(config.sources)
    for i, spec in specs:
        names = groups_of[i]
        without = [name for name in names if name not in with_filters]
        if without and spec.log_group_name_prefix is None:
            raise ConfigError(
                f"no metric filter is defined for log group {without[0]!r} (none in the config"
                + (" nor provisioned on it" if config.discover_metric_filters else "")
                + "), so nothing would be published",
                source=config.path,
                location=f"sources[{i}]",
            )
        if without and len(without) == len(names):
            raise ConfigError(
                f"none of the {len(names)} log groups whose name starts with {spec.log_group_name_prefix!r} has a "
                "metric filter, so nothing would be published",
                source=config.path,
                location=f"sources[{i}]",
            )
        if without:
            shown = ", ".join(map(repr, without[:5])) + (f" and {len(without) - 5} more" if len(without) > 5 else "")
            warnings.append(
                f"sources[{i}]: {len(without)} log groups whose name starts with {spec.log_group_name_prefix!r} have "
                f"no metric filter and are not read: {shown}"
            )
        sources[i] = dataclasses.replace(
            spec, log_group_names=tuple(n for n in names if n in with_filters), log_group_name_prefix=None
        )
    return (
        dataclasses.replace(
            config,
            metric_filters=tuple(filters),
            sources=tuple(sources),
            discover_metric_filters=False,
            discovered_log_groups=discovered,
        ),
        warnings,
    )


async def _discover(spec: CloudWatchLogsSpec, log_group: str) -> list[MetricFilter]:
    """The metric filters provisioned on ``log_group``, decoded and each checked alone."""
    origin = f"DescribeMetricFilters on log group {log_group!r} ({logs_account(spec.target).where()})"
    out = []
    for k, item in enumerate(await describe_metric_filters(spec, log_group)):
        f = decode_filter(item, f"metricFilters[{k}]", origin)
        if f.log_group_name != log_group:
            f.log_group_name = log_group
        try:
            check_supported(f)
        except UnsupportedMetricFilterError as error:
            raise UnsupportedMetricFilterError(
                f"{error} (discovered on log group {log_group!r} with DescribeMetricFilters: castlewatch cannot "
                "evaluate it exactly; remove {discover: true} and configure the log group's other filters)"
            ) from None
        out.append(f)
    return out
