"""Loading a configuration: YAML, validated key by key."""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from castlewatch.engine.config.model import DEFAULT_ALLOWED_LATENESS_S, ConfigError, EngineConfig, SourceConfig
from castlewatch.engine.config.paths import check_paths, check_sources_disjoint
from castlewatch.engine.evaluate import TimestampSpec
from castlewatch.metric_filters import (
    LOG_GROUP_NAME_RE,
    MetricFilterLoadError,
    load_metric_filters,
    parse_reference,
    yaml_error_text,
)
from castlewatch.model import MetricFilter
from castlewatch.sinks.local import SinkError, SinkSpec

TOP_LEVEL_KEYS = ("metric_filters", "sources", "sinks", "allowed_lateness_s")
METRIC_FILTER_FILE_KEYS = ("file", "parameters")
SOURCE_KEYS = ("type", "path", "log_group", "format", "timestamp")
SOURCE_TYPES = ("file", "stdin")
SOURCE_FORMATS = ("lines", "cloudwatch_events", "cloudtrail_archive")
TIMESTAMP_KEYS = ("field", "format")
TIMESTAMP_FORMATS = ("iso8601", "epoch_s", "epoch_ms")
SINK_KEYS = ("type", "path")
SINK_TYPES = ("jsonl", "csv", "avro", "stdout")


def load_config(path: str | os.PathLike) -> EngineConfig:
    """Read and validate a configuration file (YAML; JSON is YAML too).

    Raises:
        ConfigError: the file is missing, not YAML (or gives a key twice), its structure
            is wrong, a sink would overwrite an input or share a file with another
            sink, or two sources of one log group read one file.
        MetricFilterLoadError, MetricFilterError, LimitExceededError: from the metric
            filters (see :func:`~castlewatch.metric_filters.load_metric_filters`).
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
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigError(yaml_error_text(error), source=source) from None
    return _Loader(base, source).config(data)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives one key twice.

    Plain YAML keeps the last value silently (a second ``sources:`` would replace the
    first).  Keys brought in by a merge (``<<: *defaults``) may be overridden, as YAML
    intends.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the safe loader refuses it below
                    continue
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {key!r} is given twice in one mapping (first at line {first.start_mark.line + 1}); "
                        "YAML would keep only the last value: remove or merge one",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


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
        check_paths(sources, sinks, self.fail)
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
            for name, given in (parameters or {}).items():
                scalar = (str, int, float, bool, datetime.date)  # YAML reads 2024-01-01 as a date
                if given is None or not (
                    isinstance(given, scalar) or (isinstance(given, list) and all(isinstance(v, scalar) for v in given))
                ):
                    null = "; CloudFormation has no null parameter value, write '' for an empty one"
                    raise self.fail(
                        f"metric_filters.parameters.{name}",
                        f"expected a string (or a number, true/false, or a list of those), got {given!r}"
                        + (null if given is None else ""),
                    )
            return load_metric_filters(self.resolve(path), parameters=parameters)
        raise self.fail(
            "metric_filters",
            "expected a list of metric filters (describe-metric-filters shape) or {file: PATH}",
        )

    def sources(self, value: Any, filters: list[MetricFilter]) -> list[SourceConfig]:
        if not isinstance(value, list) or not value:
            raise self.fail("sources", "expected a non-empty list of sources")
        groups = {f.log_group_name for f in filters}
        sources = [self.source_entry(item, f"sources[{i}]", groups) for i, item in enumerate(value)]
        check_sources_disjoint(sources, self.fail)
        return sources

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
            try:
                sinks.append(SinkSpec(kind, path))
            except SinkError as error:
                raise self.fail(where, str(error)) from None
        return sinks
