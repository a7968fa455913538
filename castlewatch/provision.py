"""Provisioning: what a configuration describes, created in AWS idempotently (``castlewatch provision``).

:func:`provision` compares what the configuration describes with what AWS holds, then
(unless ``dry_run``) makes the difference, in this order:

- **log groups** (``AWS::Logs::LogGroup``): those named by the ``cloudwatch_logs``
  sources' ``log_group_names``, and those of the configuration's metric filters under a
  source's ``log_group_name_prefix``; looked up with DescribeLogGroups, created with
  CreateLogGroup. An existing log group is left as it is (the configuration describes
  no retention, key or tag); one whose log class is not ``STANDARD`` is refused when
  metric filters are to go on it (Infrequent Access log groups take none).
- **metric filters** (``AWS::Logs::MetricFilter``): the configuration's own (inline and
  from files: ``{discover: true}`` reads filters, it does not make them), validated by
  castlewatch as PutMetricFilter validates them when the configuration was loaded, and
  here against the per-log-group quotas with the filters the log group already has
  (§1); compared with DescribeMetricFilters (what AWS adds, such as ``creationTime``
  and ``logGroupName``, and defaults it leaves out, such as a ``unit`` of ``None``, are
  normalised away) and put with PutMetricFilter when missing or different. Filters of
  the log group that the configuration does not name are left as they are.
- **dashboards** (``AWS::CloudWatch::Dashboard``) of the ``cloudwatch_dashboard``
  sinks: the body :func:`castlewatch.dashboard.dashboard_body` generates (with the
  dimension value sets the dashboard already draws, so that provisioning after a run
  removes no line), validated by :func:`castlewatch.dashboard.check_dashboard`,
  compared with GetDashboard's and put with PutDashboard when missing or different.

A metric filter whose log group no ``cloudwatch_logs`` source reads is not provisioned
(nothing says where it would go), and said so in :attr:`Plan.notes`.

Every CloudWatch Logs call of one AWS target goes through the client and the rate limit
the ``cloudwatch_logs`` source uses (:func:`castlewatch.engine.sources.cloudwatch_logs.logs_account`),
retried on throttling, 5xx and dropped connections; AccessDenied and other refusals raise
:class:`ProvisionError` at once, in one line, with no credentials in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from castlewatch.aws import AwsTarget, SharedClient, call, describe_error, error_code, hold_clients, is_denied
from castlewatch.aws import is_retriable
from castlewatch.dashboard import DashboardValidationError, check_dashboard, dashboard_body, validation_messages
from castlewatch.engine.config.model import EngineConfig
from castlewatch.engine.sources.cloudwatch_logs import (
    CloudWatchLogsError,
    LogsAccount,
    described_metric_filters,
    logs_account,
)
from castlewatch.metric_filters import MetricFilterLoadError, check_group_limits
from castlewatch.metric_filters.describe import decode_filter
from castlewatch.model import MetricFilter

__all__ = [
    "DASHBOARD",
    "LOG_GROUP",
    "METRIC_FILTER",
    "Change",
    "Plan",
    "ProvisionError",
    "drawn_dimension_values",
    "filter_differences",
    "provision",
    "put_metric_filter_request",
]

LOG_GROUP = "AWS::Logs::LogGroup"
METRIC_FILTER = "AWS::Logs::MetricFilter"
DASHBOARD = "AWS::CloudWatch::Dashboard"


class ProvisionError(Exception):
    """A call failed for good, or AWS holds something castlewatch will not change; ``str()``
    is one line.

    Attributes:
        kind: ``denied``, ``not_found``, ``unavailable``, ``refused`` (as
            :class:`~castlewatch.engine.sources.cloudwatch_logs.CloudWatchLogsError`), or
            ``config`` (no region, an unknown profile, a filter or a body castlewatch refuses).
        done: the changes made before it (the plan's first ``done`` changes).
    """

    def __init__(self, message: str, kind: str, done: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.done = done


@dataclass
class Change:
    """One resource of the plan.

    Attributes:
        resource_type: :data:`LOG_GROUP`, :data:`METRIC_FILTER` or :data:`DASHBOARD`.
        name: the log group, ``log group:filter name``, or the dashboard's name.
        where: ``endpoint URL`` or ``region R`` (and the profile).
        action: ``create``, ``update`` or ``unchanged``.
        detail: what differs, for an update.
        apply: the coroutine function making the change (CreateLogGroup, PutMetricFilter,
            PutDashboard); None when unchanged.
    """

    resource_type: str
    name: str
    where: str
    action: str
    detail: str = ""
    apply: Callable[[], Awaitable[None]] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, str]:
        """``{"resourceType", "name", "where", "action", "detail"}``."""
        return {"resourceType": self.resource_type, "name": self.name, "where": self.where, "action": self.action,
                "detail": self.detail}


@dataclass
class Plan:
    """What :func:`provision` found and did.

    Attributes:
        changes: one per resource, in the order they are made.
        notes: what is not provisioned and why, and AWS's dashboard validation warnings.
        dry_run: nothing was changed.
    """

    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = True

    def count(self, action: str) -> int:
        """How many changes have ``action``."""
        return sum(c.action == action for c in self.changes)


# ---- comparing metric filters -------------------------------------------------------------------------


def put_metric_filter_request(f: MetricFilter) -> dict[str, Any]:
    """PutMetricFilter's parameters for ``f`` (optional members only when set)."""
    request = {k: v for k, v in f.to_aws().items() if k not in ("creationTime", "applyOnTransformedLogs")}
    if f.apply_on_transformed_logs:
        request["applyOnTransformedLogs"] = True
    return request


def _normal(item: dict[str, Any]) -> dict[str, Any]:
    """A metric filter as DescribeMetricFilters or PutMetricFilter has it, without what AWS
    adds (``creationTime``, ``logGroupName``) and with its defaults made explicit."""
    def transformation(t: dict[str, Any]) -> dict[str, Any]:
        default = t.get("defaultValue")
        return {
            "metricName": t.get("metricName"),
            "metricNamespace": t.get("metricNamespace"),
            "metricValue": t.get("metricValue"),
            "defaultValue": None if default is None else float(default),
            "dimensions": dict(t.get("dimensions") or {}),
            "unit": t.get("unit") or "None",
        }

    return {
        "filterPattern": item.get("filterPattern") or "",
        "metricTransformations": [transformation(t) for t in item.get("metricTransformations") or ()],
        "applyOnTransformedLogs": bool(item.get("applyOnTransformedLogs", False)),
        "fieldSelectionCriteria": item.get("fieldSelectionCriteria") or None,
        "emitSystemFieldDimensions": sorted(item.get("emitSystemFieldDimensions") or ()),
    }


def filter_differences(existing: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between two metric filters (describe or put shape), normalised, as
    ``key: 'old' -> 'new'``; empty if they are the same filter."""
    old, new = _normal(existing), _normal(wanted)
    out = []
    for key in new:
        if key == "metricTransformations" and len(old[key]) == len(new[key]):
            for i, (a, b) in enumerate(zip(old[key], new[key])):
                out += [f"{key}[{i}].{k}: {a[k]!r} -> {b[k]!r}" for k in b if a[k] != b[k]]
        elif old[key] != new[key]:
            out.append(f"{key}: {old[key]!r} -> {new[key]!r}")
    return out


# ---- dashboards -----------------------------------------------------------------------------------------


def drawn_dimension_values(body: Any, prefix: str) -> dict[tuple[str, str], list[tuple[tuple[str, str], ...]]]:
    """The dimension value sets a dashboard body draws, per (namespace without ``prefix``,
    metric name), in its order: what a ``cloudwatch_dashboard`` sink has seen."""
    seen: dict[tuple[str, str], list[tuple[tuple[str, str], ...]]] = {}
    widgets = body.get("widgets") if isinstance(body, dict) else None
    for widget in widgets if isinstance(widgets, list) else ():
        props = widget.get("properties") if isinstance(widget, dict) else None
        lines = props.get("metrics") if isinstance(props, dict) else None
        for line in lines if isinstance(lines, list) else ():
            parts = line[:-1] if isinstance(line, list) and line and isinstance(line[-1], dict) else line
            if not isinstance(parts, list) or len(parts) < 4 or len(parts) % 2 or not all(isinstance(p, str)
                                                                                          for p in parts):
                continue
            if not parts[0].startswith(prefix):
                continue
            dims = tuple((parts[i], parts[i + 1]) for i in range(2, len(parts), 2))
            sets = seen.setdefault((parts[0][len(prefix):], parts[1]), [])
            if dims not in sets:
                sets.append(dims)
    return seen


def _keep_matching(seen: dict, filters: list[MetricFilter]) -> dict:
    """Only the value sets whose dimension names are those the metric has now."""
    names = {}
    for f in filters:
        for t in f.metric_transformations:
            names[(t.metric_namespace, t.metric_name)] = sorted(t.dimensions or ())
    return {key: [d for d in sets if sorted(n for n, _ in d) == names[key]] for key, sets in seen.items()
            if key in names}


# ---- errors ------------------------------------------------------------------------------------------------


def _logs_error(error: CloudWatchLogsError) -> ProvisionError:
    return ProvisionError(str(error), error.kind)


def _cloudwatch_failure(error: BaseException, operation: str, name: str, where: str) -> ProvisionError:
    from botocore import exceptions as bx

    if is_denied(error):
        why = describe_error(error) if error_code(error) else "no AWS credentials found in the standard chain"
        return ProvisionError(
            f"CloudWatch denied {operation} of dashboard {name!r} ({where}): {why}; the credentials come from the "
            f"standard AWS chain and need cloudwatch:{operation}",
            "denied",
        )
    if isinstance(error, (bx.NoRegionError, bx.ProfileNotFound)):
        return ProvisionError(f"cannot call CloudWatch: {error}", "config")
    if is_retriable(error):
        return ProvisionError(f"CloudWatch {operation} of dashboard {name!r} kept failing ({where}): "
                              f"{describe_error(error)}", "unavailable")
    return ProvisionError(f"CloudWatch refused {operation} of dashboard {name!r} ({where}): {describe_error(error)}",
                          "refused")


# ---- the plan ------------------------------------------------------------------------------------------------


async def provision(config: EngineConfig, *, dry_run: bool = False) -> Plan:
    """Compare ``config`` with AWS and, unless ``dry_run``, make the difference (see the
    module docstring); a second call then finds every resource ``unchanged``.

    Returns:
        the :class:`Plan`, every change's ``action`` being what was (or, dry, would be) done.

    Raises:
        ProvisionError: a call failed for good (``done`` says how many changes were made
            before), a log group of another log class, or a metric filter or body that
            castlewatch refuses (``config``).
    """
    plan = Plan(dry_run=dry_run)
    async with hold_clients():
        try:
            await _plan(config, plan)
        except CloudWatchLogsError as error:
            raise _logs_error(error) from None
        if dry_run:
            return plan
        for done, change in enumerate(plan.changes):
            if change.apply is None:
                continue
            try:
                await change.apply()
            except CloudWatchLogsError as error:
                raise ProvisionError(str(error), error.kind, done) from None
            except ProvisionError as error:
                error.done = done
                raise
    return plan


def _log_groups(config: EngineConfig, plan: Plan) -> dict[tuple[AwsTarget, str], list[MetricFilter]]:
    """(target, log group) -> the configuration's metric filters to put on it, in order."""
    groups: dict[tuple[AwsTarget, str], list[MetricFilter]] = {}
    prefixes: list[tuple[AwsTarget, str]] = []
    for spec in config.sources:
        if spec.type != "cloudwatch_logs":
            continue
        for name in spec.log_group_names:
            groups.setdefault((spec.target, name), [])
        if spec.log_group_name_prefix is not None:
            prefixes.append((spec.target, spec.log_group_name_prefix))
    for f in config.metric_filters:
        keys = [key for key in groups if key[1] == f.log_group_name]
        keys += [(t, f.log_group_name) for t, p in prefixes if f.log_group_name.startswith(p)
                 and (t, f.log_group_name) not in keys]
        if not keys:
            plan.notes.append(f"metric filter {f.filter_name!r} of log group {f.log_group_name!r} is not provisioned: "
                              "no cloudwatch_logs source reads that log group")
        for key in keys:
            groups.setdefault(key, []).append(f)
    for target, prefix in prefixes:
        if not any(t == target and name.startswith(prefix) for t, name in groups):
            plan.notes.append(f"no log group is created for log_group_name_prefix {prefix!r}: provision creates the "
                              "log groups named in log_group_names or by a metric filter of the configuration")
    return groups


async def _plan(config: EngineConfig, plan: Plan) -> None:
    provisioned: dict[str, list[dict[str, Any]]] = {}  # log group -> the filters it has (describe shape)
    for (target, group), filters in _log_groups(config, plan).items():
        account = logs_account(target)
        async with account.logs() as logs:
            where = account.where(logs)
            existing = await _describe_log_group(account, logs, group)
            if existing is None:
                plan.changes.append(Change(LOG_GROUP, group, where, "create",
                                           apply=_create_log_group(account, group)))
                described: list[dict[str, Any]] = []
            else:
                log_class = existing.get("logGroupClass") or "STANDARD"
                if log_class != "STANDARD" and filters:
                    raise ProvisionError(
                        f"log group {group!r} ({where}) is of the {log_class} log class, which takes no metric "
                        "filters; metric filters need a STANDARD log group", "refused")
                plan.changes.append(Change(LOG_GROUP, group, where, "unchanged"))
                described = await described_metric_filters(account, logs, group)
        provisioned[group] = described
        _check_limits(group, described, filters)
        by_name = {item.get("filterName"): item for item in described}
        for f in filters:
            request = put_metric_filter_request(f)
            name = f"{group}:{f.filter_name}"
            apply = _put_metric_filter(account, request)
            if f.filter_name not in by_name:
                plan.changes.append(Change(METRIC_FILTER, name, where, "create", apply=apply))
                continue
            differences = filter_differences(by_name[f.filter_name], request)
            if differences:
                plan.changes.append(Change(METRIC_FILTER, name, where, "update", "; ".join(differences), apply=apply))
            else:
                plan.changes.append(Change(METRIC_FILTER, name, where, "unchanged"))
    for spec in config.sinks:
        if spec.type == "cloudwatch_dashboard":
            plan.changes.append(await _plan_dashboard(config, spec, provisioned, plan))


def _check_limits(group: str, described: list[dict[str, Any]], filters: list[MetricFilter]) -> None:
    """The per-log-group quotas (§1) over the filters the log group keeps and those put on it."""
    from castlewatch.grammar.errors import FilterPatternError
    from castlewatch.metric_filters import LimitExceededError

    names = {f.filter_name for f in filters}
    kept = []
    for item in described:
        if item.get("filterName") in names:
            continue
        pattern = item.get("filterPattern") or ""
        try:
            check_group_limits([MetricFilter(str(item.get("filterName")), pattern, [], group)])
        except FilterPatternError:
            pattern = ""  # AWS took it; castlewatch cannot tell whether it has a regex: counted without
        kept.append(MetricFilter(str(item.get("filterName")), pattern, [], group))
    try:
        check_group_limits(kept + filters)
    except LimitExceededError as error:
        raise ProvisionError(f"{error} (with the {len(kept)} metric filters log group {group!r} already has that "
                             "the configuration does not name)", "config") from None


async def _describe_log_group(account: LogsAccount, logs: Any, group: str) -> dict[str, Any] | None:
    """The log group as DescribeLogGroups gives it, or None if it does not exist."""
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupNamePrefix": group, "limit": 50}
        if token:
            kwargs["nextToken"] = token
        answer = await account.call(logs.describe_log_groups, "DescribeLogGroups", group, **kwargs)
        for item in answer.get("logGroups") or ():
            if item.get("logGroupName") == group:
                return item
        token = answer.get("nextToken")
        if not token:
            return None


def _create_log_group(account: LogsAccount, group: str) -> Callable[[], Awaitable[None]]:
    async def apply() -> None:
        async with account.logs() as logs:
            try:
                await account.call(logs.create_log_group, "CreateLogGroup", group, logGroupName=group)
            except CloudWatchLogsError as error:
                if "ResourceAlreadyExists" not in str(error):  # made meanwhile: it is there
                    raise

    return apply


def _put_metric_filter(account: LogsAccount, request: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def apply() -> None:
        async with account.logs() as logs:
            await account.call(logs.put_metric_filter, "PutMetricFilter", request["logGroupName"], **request)

    return apply


async def _plan_dashboard(config: EngineConfig, spec: Any, provisioned: dict[str, list[dict[str, Any]]],
                          plan: Plan) -> Change:
    from castlewatch.sinks.cloudwatch_dashboard import namespace_prefix_of

    target = spec.target
    shared = SharedClient("cloudwatch", target, read_timeout_s=spec.timeout_s)
    name = spec.dashboard_name
    try:
        async with shared.use() as cw:
            where = target.where(cw.meta.region_name)
            region = spec.region or cw.meta.region_name
            try:
                answer = await call(cw.get_dashboard, DashboardName=name)
                current = orjson.loads(answer.get("DashboardBody") or "null")
            except Exception as error:
                if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
                    raise _cloudwatch_failure(error, "GetDashboard", name, where) from None
                current = None
    except ProvisionError:
        raise
    except Exception as error:  # no region, an unknown profile
        raise _cloudwatch_failure(error, "GetDashboard", name, target.where()) from None
    filters = list(config.metric_filters)
    if config.discover_metric_filters:  # the run evaluates the filters provisioned on its log groups too
        filters += _discovered(config, provisioned)
    prefix = namespace_prefix_of(spec, config)
    seen = _keep_matching(drawn_dimension_values(current, prefix), filters)
    body = dashboard_body(dataclasses.replace(config, metric_filters=tuple(filters)), region=region, seen=seen,
                          namespace_prefix=prefix)
    try:
        check_dashboard(name, body)
    except DashboardValidationError as error:
        raise ProvisionError(f"dashboard {name!r}: castlewatch generated a body PutDashboard would refuse "
                             f"(a castlewatch bug): {error}", "config") from None
    apply = _put_dashboard(shared, name, body, where, plan)
    if current is None:
        return Change(DASHBOARD, name, where, "create", apply=apply)
    if current == body:
        return Change(DASHBOARD, name, where, "unchanged")
    widgets = len(current.get("widgets") or ()) if isinstance(current, dict) else 0
    return Change(DASHBOARD, name, where, "update",
                  f"the body differs from the generated one ({widgets} widgets, {len(body['widgets'])} generated)",
                  apply=apply)


def _discovered(config: EngineConfig, provisioned: dict[str, list[dict[str, Any]]]) -> list[MetricFilter]:
    """The filters provisioned on the log groups that the configuration does not name."""
    named = {(f.log_group_name, f.filter_name) for f in config.metric_filters}
    out = []
    for group, items in provisioned.items():
        for k, item in enumerate(items):
            if (group, item.get("filterName")) in named:
                continue
            try:
                f = decode_filter(item, f"metricFilters[{k}]", f"DescribeMetricFilters on log group {group!r}")
            except MetricFilterLoadError as error:
                raise ProvisionError(str(error), "config") from None
            f.log_group_name = group
            out.append(f)
    return out


def _put_dashboard(shared: SharedClient, name: str, body: dict[str, Any], where: str,
                   plan: Plan) -> Callable[[], Awaitable[None]]:
    async def apply() -> None:
        try:
            async with shared.use() as cw:
                answer = await call(cw.put_dashboard, DashboardName=name, DashboardBody=orjson.dumps(body).decode())
        except Exception as error:
            raise _cloudwatch_failure(error, "PutDashboard", name, where) from None
        plan.notes += [f"dashboard {name!r} saved with a warning: {m}" for m in validation_messages(answer)]

    return apply
