"""The engine's configuration file (YAML): metric filters, sources, sinks.

A configuration has exactly these top-level keys (``allowed_lateness_s`` optional)::

    metric_filters:              # a list in the describe-metric-filters shape ...
      - filterName: console-sign-in-failures
        logGroupName: cloudtrail
        filterPattern: '{ $.eventName = "ConsoleLogin" && $.errorMessage = "Failed authentication" }'
        metricTransformations:
          - {metricName: ConsoleSignInFailures, metricNamespace: CloudTrailMetrics, metricValue: "1"}
    # ... or a file: describe-metric-filters JSON, or a CloudFormation template
    # metric_filters: {file: cfn/alarms.yaml, parameters: {Env: prod}}
    sources:
      - type: file                 # file | stdin
        path: logs/*.json.gz       # file or glob; relative to this file's directory
        log_group: cloudtrail
        format: cloudtrail_archive # lines (default) | cloudwatch_events | cloudtrail_archive
      - type: file
        path: vpc/*.log
        log_group: vpc-flow-logs
        timestamp: {field: $11, format: epoch_s}   # required for `lines`
    sinks:
      - {type: jsonl, path: out/datapoints.jsonl}  # jsonl | csv | avro | stdout
    allowed_lateness_s: 60

Decisions:

- Unknown keys are errors, at every level, naming the key and the allowed ones.
- A ``lines`` source must say where its event time comes from: ``timestamp:
  ingestion`` (the time the line is read, right for a live tail) or ``{field, format}``.
  Defaulting to ingestion time would put a whole replayed file into the current
  minute, so there is no default.  Other formats carry their own time and take no
  ``timestamp``.
- Every source's log group must have at least one metric filter (otherwise nothing
  would ever be published from it).
- Relative paths (sources, sinks, ``metric_filters.file``) are resolved against the
  configuration file's directory; globs are kept, to be expanded by the source.
- ``metric_filters: {file: ...}`` may carry ``parameters`` for a CloudFormation
  template (parameter values and pseudo parameters such as ``AWS::Region``).

Errors: :class:`ConfigError` for the file's own structure; the metric filters raise
the errors of :mod:`castlewatch.engine.metric_filters`.  :data:`CONFIG_ERRORS` is the
tuple to catch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from castlewatch.engine.evaluate import TimestampSpec
from castlewatch.engine.metric_filters import (
    LOG_GROUP_NAME_RE,
    MetricFilterLoadError,
    load_metric_filters,
    parse_reference,
    yaml_error_text,
)
from castlewatch.engine.model import MetricFilter
from castlewatch.engine.sources import SourceSpec
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.sinks.local import SinkError, SinkSpec

__all__ = [
    "CONFIG_ERRORS",
    "ConfigError",
    "EngineConfig",
    "SourceConfig",
    "TimestampSpec",
    "load_config",
    "load_config_text",
    "parse_timestamp",
]

TOP_LEVEL_KEYS = ("metric_filters", "sources", "sinks", "allowed_lateness_s")
METRIC_FILTER_FILE_KEYS = ("file", "parameters")
SOURCE_KEYS = ("type", "path", "log_group", "format", "timestamp")
SOURCE_TYPES = ("file", "stdin")
SOURCE_FORMATS = ("lines", "cloudwatch_events", "cloudtrail_archive")
TIMESTAMP_KEYS = ("field", "format")
TIMESTAMP_FORMATS = ("iso8601", "epoch_s", "epoch_ms")
SINK_KEYS = ("type", "path")
SINK_TYPES = ("jsonl", "csv", "avro", "stdout")
DEFAULT_ALLOWED_LATENESS_S = 60.0


class ConfigError(ValueError):
    """A configuration file castlewatch cannot run with.

    Attributes:
        source: the configuration file, or None (text given directly).
        location: the key at fault, e.g. ``sources[1].format``.
        reason: what is wrong and what is allowed.
    """

    def __init__(self, reason: str, *, source: str | os.PathLike | None = None, location: str = "") -> None:
        self.reason = reason
        self.source = None if source is None else str(source)
        self.location = location
        super().__init__(": ".join([p for p in (self.source, location) if p] + [reason]))


CONFIG_ERRORS = (ConfigError, MetricFilterLoadError, InvalidParameterError)
"""Everything :func:`load_config` raises for a bad configuration (all ``ValueError``)."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One entry of ``sources``: a :class:`~castlewatch.engine.sources.SourceSpec` plus
    where a ``lines`` event's time comes from (``timestamp``, for the evaluator).

    It has ``SourceSpec``'s attributes (``ingestion_time`` derived from ``timestamp``),
    so it can be handed to ``open_source`` as is; :meth:`to_source_spec` converts.

    Attributes:
        type: ``"file"`` or ``"stdin"``.
        log_group: the log group its events belong to (its metric filters apply).
        path: for ``file``, an absolute path or glob; None for ``stdin``.
        format: ``"lines"``, ``"cloudwatch_events"`` or ``"cloudtrail_archive"``.
        timestamp: for ``lines``, where the event time comes from; None otherwise.
    """

    type: Literal["file", "stdin"]
    log_group: str
    path: str | None = None
    format: Literal["lines", "cloudwatch_events", "cloudtrail_archive"] = "lines"
    timestamp: TimestampSpec | None = None

    @property
    def ingestion_time(self) -> bool:
        """Whether events are stamped with the time they are read (``timestamp: ingestion``)."""
        return self.timestamp is not None and self.timestamp.kind == "ingestion"

    def to_source_spec(self) -> SourceSpec:
        """The :class:`~castlewatch.engine.sources.SourceSpec` that reads this source."""
        return SourceSpec(self.type, self.log_group, self.path, self.format, self.ingestion_time)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """A validated configuration.

    Attributes:
        metric_filters: every filter, valid (§8.1, §8.2) and within the per-log-group
            limits (§1), in file order.
        sources: the sources, in file order.
        sinks: the sinks (:class:`~castlewatch.sinks.local.SinkSpec`), paths absolute.
        allowed_lateness_s: how long a minute stays open after the watermark passes it.
        path: the configuration file, or None.
    """

    metric_filters: tuple[MetricFilter, ...]
    sources: tuple[SourceConfig, ...]
    sinks: tuple[SinkSpec, ...]
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S
    path: Path | None = field(default=None, compare=False)

    def filters_for(self, log_group: str) -> list[MetricFilter]:
        """The metric filters of ``log_group``, in file order."""
        return [f for f in self.metric_filters if f.log_group_name == log_group]


def load_config(path: str | os.PathLike) -> EngineConfig:
    """Read and validate a configuration file (YAML; JSON is YAML too).

    Raises:
        ConfigError: the file is missing, not YAML, or its structure is wrong.
        MetricFilterLoadError, MetricFilterError, LimitExceededError: from the metric
            filters (see :func:`~castlewatch.engine.metric_filters.load_metric_filters`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", source=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read: {error}", source=path) from None
    return load_config_text(text, path.parent, source=path)


def load_config_text(
    text: str, base_dir: str | os.PathLike, *, source: str | os.PathLike | None = None
) -> EngineConfig:
    """Validate a configuration given as YAML text; relative paths resolve against ``base_dir``.

    Raises: as :func:`load_config`.
    """
    base = Path(base_dir).absolute()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(yaml_error_text(error), source=source) from None
    return _Loader(base, source).config(data)


def parse_timestamp(value: Any, where: str = "timestamp", source: str | os.PathLike | None = None) -> TimestampSpec:
    """A source's ``timestamp`` setting as a :class:`TimestampSpec`.

    ``ingestion``, or ``{field: SELECTOR, format: iso8601|epoch_s|epoch_ms}`` where
    SELECTOR is a wildcard-free JSON selector (``$.eventTime``) or a 1-based
    space-delimited field position (``$11``).

    Raises:
        ConfigError: anything else, naming ``where``.
    """

    def fail(reason: str, at: str = where) -> ConfigError:
        return ConfigError(reason, source=source, location=at)

    shape = "expected 'ingestion' or {field: SELECTOR, format: iso8601|epoch_s|epoch_ms}"
    if value == "ingestion":
        return TimestampSpec("ingestion")
    if not isinstance(value, Mapping):
        raise fail(f"{shape}; got {value!r}")
    _check_keys(value, TIMESTAMP_KEYS, where, source)
    for key in TIMESTAMP_KEYS:
        if key not in value:
            raise fail(f"required key missing; {shape}", f"{where}.{key}")
    fmt = value["format"]
    if fmt not in TIMESTAMP_FORMATS:
        raise fail(f"unknown format {fmt!r}; allowed: {', '.join(TIMESTAMP_FORMATS)}", f"{where}.format")
    selector = value["field"]
    ref = parse_reference(selector) if isinstance(selector, str) else None
    if ref is None or ref.kind == "field" or (ref.kind == "position" and ref.position < 1):
        why = (
            "space-delimited fields are given by their 1-based position here, e.g. $11"
            if ref is not None
            else "expected a JSON selector without wildcards such as $.eventTime, or a 1-based "
            "space-delimited field position such as $11"
        )
        raise fail(f"{why}; got {selector!r}", f"{where}.field")
    if ref.kind == "json":
        return TimestampSpec("json", selector=ref.text, format=fmt)
    return TimestampSpec("position", position=ref.position, format=fmt)


def _check_keys(data: Mapping, allowed: tuple[str, ...], where: str, source) -> None:
    for key in data:
        if key not in allowed:
            at = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"unknown key; allowed here: {', '.join(allowed)}", source=source, location=at)


def _make_source(
    type: str, log_group: str, path: str | None, format: str, timestamp: TimestampSpec | None
) -> SourceConfig:
    """The one place a source entry becomes the runner's source spec (adjust here if needed)."""
    return SourceConfig(type, log_group, path, format, timestamp)  # type: ignore[arg-type]


class _Loader:
    def __init__(self, base: Path, source: str | os.PathLike | None) -> None:
        self.base = base
        self.source = source

    def fail(self, location: str, reason: str) -> ConfigError:
        return ConfigError(reason, source=self.source, location=location)

    def resolve(self, path: str) -> str:
        expanded = os.path.expanduser(path)
        return expanded if os.path.isabs(expanded) else str(self.base / expanded)

    def config(self, data: Any) -> EngineConfig:
        if data is None:
            raise self.fail("", "the configuration is empty; it needs metric_filters, sources and sinks")
        if not isinstance(data, Mapping):
            raise self.fail("", f"expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
        _check_keys(data, TOP_LEVEL_KEYS, "", self.source)
        for key in ("metric_filters", "sources", "sinks"):
            if key not in data:
                raise self.fail(key, "required key missing")
        lateness = data.get("allowed_lateness_s", DEFAULT_ALLOWED_LATENESS_S)
        if isinstance(lateness, bool) or not isinstance(lateness, (int, float)) or not math.isfinite(lateness):
            raise self.fail("allowed_lateness_s", f"expected a number of seconds >= 0, got {lateness!r}")
        if lateness < 0:
            raise self.fail("allowed_lateness_s", f"must be >= 0, got {lateness!r}")
        filters = self.metric_filters(data["metric_filters"])
        sources = self.sources(data["sources"], filters)
        sinks = self.sinks(data["sinks"])
        path = Path(self.source) if self.source is not None else None
        return EngineConfig(tuple(filters), tuple(sources), tuple(sinks), float(lateness), path)

    def metric_filters(self, value: Any) -> list[MetricFilter]:
        if isinstance(value, list):
            try:
                return load_metric_filters(value, where="metric_filters")
            except MetricFilterLoadError as error:  # name the configuration file
                if error.source is not None:
                    raise
                raise type(error)(error.reason, source=self.source, location=error.location) from None
        if isinstance(value, Mapping):
            _check_keys(value, METRIC_FILTER_FILE_KEYS, "metric_filters", self.source)
            path = value.get("file")
            if not isinstance(path, str) or not path:
                raise self.fail("metric_filters.file", f"expected a file path, got {path!r}")
            parameters = value.get("parameters")
            if parameters is not None and not isinstance(parameters, Mapping):
                raise self.fail("metric_filters.parameters", "expected a mapping of parameter names to values")
            return load_metric_filters(self.resolve(path), parameters=parameters)
        raise self.fail(
            "metric_filters",
            "expected a list of metric filters (describe-metric-filters shape) or {file: PATH}",
        )

    def sources(self, value: Any, filters: list[MetricFilter]) -> list[SourceConfig]:
        if not isinstance(value, list) or not value:
            raise self.fail("sources", "expected a non-empty list of sources")
        groups = {f.log_group_name for f in filters}
        return [self.source_entry(item, f"sources[{i}]", groups) for i, item in enumerate(value)]

    def source_entry(self, item: Any, where: str, groups: set[str]) -> SourceConfig:
        if not isinstance(item, Mapping):
            raise self.fail(where, "expected a mapping with type, path, log_group, format, timestamp")
        _check_keys(item, SOURCE_KEYS, where, self.source)
        kind = item.get("type")
        if kind not in SOURCE_TYPES:
            raise self.fail(f"{where}.type", f"expected one of {', '.join(SOURCE_TYPES)}, got {kind!r}")
        path = item.get("path")
        if kind == "file":
            if not isinstance(path, str) or not path:
                raise self.fail(f"{where}.path", f"a file source needs a path (file or glob), got {path!r}")
            path = self.resolve(path)
        elif path is not None:
            raise self.fail(f"{where}.path", "a stdin source takes no path")
        group = item.get("log_group")
        if group is None:
            raise self.fail(f"{where}.log_group", "required key missing: the log group whose metric filters apply")
        if not isinstance(group, str) or not LOG_GROUP_NAME_RE.fullmatch(group) or len(group) > 512:
            raise self.fail(
                f"{where}.log_group", f"not a log group name (1-512 of letters, digits and . - _ / #): {group!r}"
            )
        if group not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise self.fail(
                f"{where}.log_group",
                f"no metric filter is defined for log group {group!r}, so nothing would be published "
                f"(log groups with filters: {known})",
            )
        fmt = item.get("format", "lines")
        if fmt not in SOURCE_FORMATS:
            raise self.fail(f"{where}.format", f"unknown format {fmt!r}; allowed: {', '.join(SOURCE_FORMATS)}")
        timestamp = None
        if fmt == "lines":
            if "timestamp" not in item:
                raise self.fail(
                    f"{where}.timestamp",
                    "a 'lines' source needs a timestamp: {field: SELECTOR, format: iso8601|epoch_s|epoch_ms} "
                    "(e.g. {field: $.eventTime, format: iso8601}), or 'timestamp: ingestion' to use the time "
                    "each line is read (right for a live tail, wrong for a replay)",
                )
            timestamp = parse_timestamp(item["timestamp"], f"{where}.timestamp", self.source)
        elif "timestamp" in item:
            raise self.fail(
                f"{where}.timestamp",
                f"format {fmt!r} carries its own event time; timestamp applies to format 'lines' only",
            )
        return _make_source(kind, group, path, fmt, timestamp)

    def sinks(self, value: Any) -> list[SinkSpec]:
        if not isinstance(value, list) or not value:
            raise self.fail("sinks", "expected a non-empty list of sinks, e.g. [{type: stdout}]")
        sinks: list[SinkSpec] = []
        paths: dict[str, int] = {}
        for i, item in enumerate(value):
            where = f"sinks[{i}]"
            if not isinstance(item, Mapping):
                raise self.fail(where, "expected a mapping with type and path")
            _check_keys(item, SINK_KEYS, where, self.source)
            kind = item.get("type")
            if kind not in SINK_TYPES:
                raise self.fail(f"{where}.type", f"expected one of {', '.join(SINK_TYPES)}, got {kind!r}")
            path = item.get("path")
            if kind == "stdout":
                if path is not None:
                    raise self.fail(f"{where}.path", "a stdout sink takes no path")
            else:
                if not isinstance(path, str) or not path:
                    raise self.fail(f"{where}.path", f"a {kind} sink needs a path, got {path!r}")
                path = self.resolve(path)
                same = os.path.normpath(path)
                if same in paths:
                    raise self.fail(f"{where}.path", f"the same file as sinks[{paths[same]}]")
                paths[same] = i
            try:
                sinks.append(SinkSpec(kind, path))
            except SinkError as error:
                raise self.fail(where, str(error)) from None
        return sinks
