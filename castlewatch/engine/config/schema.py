"""The configuration document's shape, declared as msgspec Structs.

Every mapping forbids unknown keys.  A field's ``Meta(description=...)`` is what
error messages say is expected there (:mod:`castlewatch.engine.config.decode`).
What a schema cannot say (paths, which keys a source type needs, timestamp
selectors, log groups without filters, inputs meeting outputs) is checked after
decoding, in :mod:`castlewatch.engine.config.load` and
:mod:`castlewatch.engine.config.paths`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from castlewatch.engine.config.model import DEFAULT_ALLOWED_LATENESS_S
from castlewatch.engine.sources.cloudwatch_logs import DEFAULT_LOOKBACK_S, DEFAULT_POLL_INTERVAL_S
from castlewatch.metric_filters import LOG_GROUP_NAME_RE
from castlewatch.packs import LOG_GROUP_KINDS
from castlewatch.sinks import SINK_TYPES

TIMESTAMP_SHAPE = "'ingestion' or {field: SELECTOR, format: iso8601|epoch_s|epoch_ms}"
SELECTOR_SHAPE = (
    "a JSON selector without wildcards such as $.eventTime, or a 1-based space-delimited field position such as $11"
)


class _Mapping(Struct, forbid_unknown_fields=True, frozen=True):
    """A mapping of the configuration: unknown keys are errors."""


class TimestampField(_Mapping):
    """``timestamp: {field, format}`` of a ``lines`` source: the event time read from the event."""

    field: Annotated[str, Meta(description=SELECTOR_SHAPE)]
    format: Literal["iso8601", "epoch_s", "epoch_ms"]


Timestamp = Annotated[Literal["ingestion"] | TimestampField, Meta(description=TIMESTAMP_SHAPE)]


SourceType = Literal["file", "stdin", "cloudwatch_logs"]


class SourceEntry(_Mapping, kw_only=True):
    """One ``file`` or ``stdin`` entry of ``sources`` (``timestamp`` is UNSET when not given,
    unlike ``null``); ``cloudwatch_logs`` entries are :class:`CloudWatchLogsSourceEntry`.
    ``endpoint_url`` and ``region`` go with an ``s3://`` path (read by ``castlewatch backfill``)."""

    type: SourceType
    path: Annotated[str | None, Meta(description="a file path or glob (or s3://bucket/prefix for backfill)")] = None
    log_group: Annotated[
        str,
        Meta(
            pattern=rf"\A(?:{LOG_GROUP_NAME_RE.pattern})\Z",
            max_length=512,
            description="the name of the log group whose metric filters apply "
            "(1-512 of letters, digits and . - _ / #)",
        ),
    ]
    format: Literal["lines", "cloudwatch_events", "cloudtrail_archive", "flow_log_file"] = "lines"
    timestamp: Annotated[
        Literal["ingestion"] | TimestampField | UnsetType, Meta(description=TIMESTAMP_SHAPE)
    ] = UNSET
    endpoint_url: Annotated[
        Annotated[str, Meta(pattern=r"^https?://\S+$")] | None,
        Meta(description="an http:// or https:// URL such as http://127.0.0.1:4566"),
    ] = None
    region: Annotated[
        Annotated[str, Meta(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")] | None,
        Meta(description="an AWS region such as us-east-1"),
    ] = None


# the pattern on the string, the description on the optional value (what error messages say)
Region = Annotated[
    Annotated[str, Meta(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")] | None,
    Meta(description="an AWS region such as us-east-1"),
]
EndpointUrl = Annotated[
    Annotated[str, Meta(pattern=r"^https?://\S+$")] | None,
    Meta(description="an http:// or https:// URL such as http://127.0.0.1:4566"),
]
LogGroupName = Annotated[
    str,
    Meta(
        pattern=rf"\A(?:{LOG_GROUP_NAME_RE.pattern})\Z",
        max_length=512,
        description="a log group name (1-512 of letters, digits and . - _ / #)",
    ),
]
TIME_SHAPE = "an ISO 8601 time such as 2026-12-06T12:00:00Z, or a time before now such as 5m, 2h, 3d"


class CloudWatchLogsSourceEntry(_Mapping, kw_only=True):
    """One ``type: cloudwatch_logs`` entry of ``sources``: log groups read with FilterLogEvents.

    ``start_time`` and ``end_time`` are checked after decoding: YAML reads an unquoted
    ``2026-12-06T12:00:00Z`` as a datetime, which a msgspec union with ``str`` cannot
    hold. Exactly one of ``log_group_names`` and ``log_group_name_prefix`` is checked
    after decoding too.
    """

    type: Literal["cloudwatch_logs"]
    log_group_names: Annotated[
        list[LogGroupName], Meta(min_length=1, description="a non-empty list of log group names")
    ] | UnsetType = UNSET
    log_group_name_prefix: Annotated[
        str,
        Meta(
            pattern=rf"\A(?:{LOG_GROUP_NAME_RE.pattern})\Z",
            max_length=512,
            description="the start of log group names (1-512 of letters, digits and . - _ / #)",
        ),
    ] | UnsetType = UNSET
    region: Region = None
    endpoint_url: EndpointUrl = None
    start_time: Annotated[Any, Meta(description=TIME_SHAPE)] = None
    end_time: Annotated[Any, Meta(description=TIME_SHAPE)] = None
    poll_interval_s: Annotated[
        float, Meta(gt=0, le=86_400, description="a number of seconds > 0 (at most a day)")
    ] = DEFAULT_POLL_INTERVAL_S
    lookback_s: Annotated[
        float, Meta(ge=0, le=14 * 86_400, description="a number of seconds >= 0 (at most 14 days)")
    ] = DEFAULT_LOOKBACK_S


class SinkKindEntry(Struct, frozen=True):
    """An entry of ``sinks`` as first decoded: its ``type`` only; the entry is then
    decoded again as its type's own mapping (:data:`SINK_ENTRIES`), which forbids unknown keys."""

    type: Literal[SINK_TYPES]  # type: ignore[valid-type]  # the registry's types


SINK_SHAPE = "a sink mapping such as {type: jsonl, path: FILE} or {type: cloudwatch, region: REGION}"


class SinkEntry(_Mapping):
    """A ``jsonl``, ``csv``, ``avro`` or ``stdout`` sink (``stdout`` takes no path)."""

    type: Literal["jsonl", "csv", "avro", "stdout"]
    path: Annotated[str | None, Meta(description="a file path")] = None


_SECONDS = Meta(gt=0, le=86400 * 365, description="a positive number of seconds")
_PREFIX_TEXT = (
    "text put before every metric namespace, such as castlewatch/ (at most 200 characters, not starting with ':')"
)
_PREFIX = Annotated[str, Meta(max_length=200, pattern=r"^(?:[^:].*)?$", description=_PREFIX_TEXT)]


class CloudWatchSinkEntry(_Mapping, kw_only=True):
    """``type: cloudwatch``: PutMetricData (:mod:`castlewatch.sinks.cloudwatch`)."""

    type: Literal["cloudwatch"]
    region: Region = None
    endpoint_url: EndpointUrl = None
    namespace_prefix: _PREFIX = ""
    protocol: Literal["json", "query", "smithy-rpc-v2-cbor"] | None = None
    spool_dir: Annotated[Annotated[str, Meta(min_length=1)] | None, Meta(description="a directory path")] = None
    buffer_datums: Annotated[int, Meta(ge=1000, le=10**8, description="a number of datums >= 1000")] = 100_000
    max_requests_per_s: Annotated[float, Meta(gt=0, le=10_000, description="requests per second, > 0")] = 50.0
    timeout_s: Annotated[float, _SECONDS] = 30.0
    retry_max_delay_s: Annotated[float, _SECONDS] = 20.0
    replay_timeout_s: Annotated[float, _SECONDS] = 300.0
    shutdown_timeout_s: Annotated[float, _SECONDS] = 10.0


class CloudWatchDashboardSinkEntry(_Mapping, kw_only=True):
    """``type: cloudwatch_dashboard``: PutDashboard (:mod:`castlewatch.sinks.cloudwatch_dashboard`)."""

    type: Literal["cloudwatch_dashboard"]
    dashboard_name: Annotated[
        str, Meta(pattern=r"^[A-Za-z0-9_-]{1,255}$", description="1-255 of letters, digits, _ and -")
    ]
    region: Region = None
    endpoint_url: EndpointUrl = None
    namespace_prefix: Annotated[
        Annotated[str, Meta(max_length=200, pattern=r"^(?:[^:].*)?$")] | None, Meta(description=_PREFIX_TEXT)
    ] = None
    update_interval_s: Annotated[float, _SECONDS] = 60.0
    timeout_s: Annotated[float, _SECONDS] = 30.0


class HtmlDashboardSinkEntry(_Mapping, kw_only=True):
    """``type: html_dashboard``: the dashboard as a local HTML page (:mod:`castlewatch.sinks.html_dashboard`)."""

    type: Literal["html_dashboard"]
    path: Annotated[str, Meta(min_length=1, description="a file path")]
    max_minutes: Annotated[
        int, Meta(ge=1, le=44_640, description="a number of minutes from 1 to 44,640 (31 days)")
    ] = 10_080


#: Each sink type's mapping.
SINK_ENTRIES: dict[str, type[Struct]] = {
    "jsonl": SinkEntry,
    "csv": SinkEntry,
    "avro": SinkEntry,
    "stdout": SinkEntry,
    "cloudwatch": CloudWatchSinkEntry,
    "cloudwatch_dashboard": CloudWatchDashboardSinkEntry,
    "html_dashboard": HtmlDashboardSinkEntry,
}


class MetricFiltersFile(_Mapping):
    """``metric_filters: {file, parameters}``: describe-metric-filters JSON or a CloudFormation template.

    ``parameters`` values are checked after decoding: YAML reads ``2024-01-01`` as a
    date, which a msgspec union with ``str`` cannot hold.
    """

    file: Annotated[str, Meta(min_length=1, description="a file path")]
    parameters: Annotated[dict[Any, Any] | None, Meta(description="a mapping of parameter names to values")] = None


class DiscoverEntry(_Mapping):
    """``{discover: true}`` in ``metric_filters``: the metric filters provisioned on the
    cloudwatch_logs sources' log groups (DescribeMetricFilters), read before the run."""

    discover: Annotated[
        bool, Meta(description="true: read the metric filters provisioned on the cloudwatch_logs log groups")
    ]


PACK_LOG_GROUP_SHAPE = (
    "a log group name, or {kind: NAME} for a pack reading several kinds of log group "
    f"({', '.join(LOG_GROUP_KINDS)})"
)


class PackEntry(_Mapping, kw_only=True):
    """``{pack: NAME, log_group: ..., variants: {KEY: VARIANT}}`` in ``metric_filters``: a
    built-in pack's filters (:mod:`castlewatch.packs`) on the given log groups.

    The pack name, the log group kinds and the variant keys and names are checked after
    decoding, against the pack (:class:`castlewatch.packs.PackError` with its location).
    """

    pack: Annotated[str, Meta(description="a built-in pack's name (castlewatch packs list)")]  # checked after decoding
    log_group: Annotated[
        LogGroupName | dict[str, LogGroupName],  # the kinds are the pack's: checked after decoding
        Meta(description=PACK_LOG_GROUP_SHAPE),
    ]
    variants: Annotated[
        dict[str, str] | None,
        Meta(description="a mapping of the pack's filter keys to variant names, "
             "e.g. {unauthorized-api-calls: cis-v5.0}"),
    ] = None


class Document(_Mapping):
    """The whole configuration file.

    ``metric_filters`` list items are metric filters, :class:`MetricFiltersFile` (a
    mapping with ``file``), :class:`PackEntry` (a mapping with ``pack``) or
    :class:`DiscoverEntry` (a mapping with ``discover``);
    ``sources`` items are :class:`SourceEntry` or, by their ``type``,
    :class:`CloudWatchLogsSourceEntry`: both decoded item by item.
    """

    metric_filters: Annotated[
        list[Any] | MetricFiltersFile,
        Meta(
            description="a list of metric filters (describe-metric-filters shape), {file: PATH}, "
            "{pack: NAME, log_group: NAME} and {discover: true} entries, or {file: PATH}"
        ),
    ]
    sources: Annotated[list[Any], Meta(min_length=1, description="a non-empty list of sources")]
    sinks: Annotated[
        list[Annotated[SinkKindEntry, Meta(description=SINK_SHAPE)]],
        Meta(min_length=1, description="a non-empty list of sinks, e.g. [{type: stdout}]"),
    ]
    allowed_lateness_s: Annotated[
        float, Meta(ge=0, le=sys.float_info.max, description="a number of seconds >= 0")
    ] = DEFAULT_ALLOWED_LATENESS_S
