"""Loading a configuration: YAML, decoded by :mod:`.schema`, then the checks a schema cannot make."""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgspec import UNSET

from castlewatch.engine.config.decode import NOT_JSON, decode, position_of, read_json, read_yaml, with_line
from castlewatch.engine.config.model import ConfigError, EngineConfig, SourceConfig
from castlewatch.engine.config.paths import check_paths, check_sources_disjoint
from castlewatch.engine.config.schema import (
    SELECTOR_SHAPE,
    TIME_SHAPE,
    CloudWatchLogsSourceEntry,
    DiscoverEntry,
    Document,
    MetricFiltersFile,
    PackEntry,
    SINK_ENTRIES,
    SinkEntry,
    SinkKindEntry,
    SourceEntry,
    Timestamp,
    TimestampField,
)
from castlewatch.engine.evaluate import TimestampSpec
from castlewatch.engine.sources.cloudwatch_logs import CloudWatchLogsSpec
from castlewatch.metric_filters import (
    MetricFilterLoadError,
    load_metric_filters,
    parse_reference,
    validate_metric_filters,
)
from castlewatch.metric_filters.describe import decode_filter
from castlewatch.model import MetricFilter, iso8601_ms
from castlewatch.packs import PackError, get_pack
from castlewatch.sinks import SinkSpec, sink_kind

_PARAMETER_SCALARS = (str, int, float, bool, datetime.date)  # YAML reads 2024-01-01 as a date
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MS = datetime.timedelta(milliseconds=1)
# `aws logs tail --since`: a number and one unit
_RELATIVE_TIME = re.compile(r"(\d+)([smhdw])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def load_config(path: str | os.PathLike) -> EngineConfig:
    """Read and validate a configuration file: YAML, or JSON (a text that is one JSON object is
    read as JSON, its numbers as JSON means them; see :func:`~.decode.read_json`).

    Raises:
        ConfigError: the file is missing, not YAML (or gives a key twice), its structure
            is wrong (with the line and column of the key at fault), a sink would
            overwrite an input or share a file with another sink, or two sources of
            one log group read one file.
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
    data = read_json(text)
    root = None
    if data is NOT_JSON:  # YAML (JSON with a key twice or NaN too: YAML says where)
        root, data = read_yaml(text, source)
    try:
        return _Loader(Path(base_dir).absolute(), source).config(data)
    except ConfigError as error:
        if root is None and error.location and error.line is None:  # read as JSON: the line from YAML's nodes
            root = _yaml_root(text, source)
        raise with_line(error, root) from None
    except MetricFilterLoadError as error:
        # a metric filter written in this file (not in a file it names): give its line
        inline = error.source == (None if source is None else str(source)) and error.location.startswith("metric_filters")
        if not inline or error.line is not None:
            raise
        if root is None:
            root = _yaml_root(text, source)
        if root is None:
            raise
        line, column = position_of(error.location, root)
        raise type(error)(
            error.reason, source=error.source, location=error.location, line=line, column=column
        ) from None


def _yaml_root(text: str, source: str | os.PathLike | None) -> Any:
    """The YAML root node of a configuration read as JSON, for an error's line; None when
    YAML does not read it (JSON allows what YAML 1.1 does not, such as tabs)."""
    try:
        return read_yaml(text, source)[0]
    except ConfigError:
        return None


def sink_problem(config: EngineConfig) -> tuple[str, str] | None:
    """``(location, reason)`` of the first sink its kind's ``check`` finds wrong in ``config``
    (``sinks[1].namespace_prefix``), or None. Checked when a configuration is loaded, and
    by the engine before it opens any sink (a configuration may be built in code)."""
    for i, spec in enumerate(config.sinks):
        kind = sink_kind(spec.type)
        problem = kind.check(spec, config) if kind.check is not None else None
        if problem is not None:
            return f"sinks[{i}].{problem[0]}", problem[1]
    return None


def parse_timestamp(value: Any, where: str = "timestamp", source: str | os.PathLike | None = None) -> TimestampSpec:
    """A source's ``timestamp`` setting as a :class:`TimestampSpec`.

    ``ingestion``, or ``{field: SELECTOR, format: iso8601|epoch_s|epoch_ms}`` where
    SELECTOR is a wildcard-free JSON selector (``$.eventTime``) or a 1-based
    space-delimited field position (``$11``).

    Raises:
        ConfigError: anything else, naming ``where``.
    """
    return _timestamp(decode(value, Timestamp, where=where, source=source), where, source)


def parse_time(value: Any, now_ms: int, where: str = "start_time", source: str | os.PathLike | None = None) -> int:
    """A cloudwatch_logs source's ``start_time`` / ``end_time`` as epoch milliseconds.

    ISO 8601 (``2026-12-06T12:00:00Z``, with an offset, or a date; UTC when it has none;
    YAML's own timestamps too) or a time before ``now_ms`` as ``aws logs tail --since``
    takes it: a number and one unit of ``s``, ``m``, ``h``, ``d``, ``w`` (``5m``, ``2h``,
    ``3d``).

    Raises:
        ConfigError: anything else (a bare number among them: seconds or milliseconds
            would be a guess), or a time before 1970, naming ``where``.
    """
    ms = None
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=datetime.timezone.utc)
        ms = (moment - _EPOCH) // _MS
    elif isinstance(value, datetime.date):
        ms = (datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc) - _EPOCH) // _MS
    elif isinstance(value, str):
        relative = _RELATIVE_TIME.fullmatch(value.strip())
        if relative:
            ms = now_ms - int(relative.group(1)) * _UNIT_MS[relative.group(2)]
        else:
            ms = iso8601_ms(value.strip())
    if ms is None:
        raise ConfigError(f"expected {TIME_SHAPE}, got {value!r}", source=source, location=where)
    if ms < 0:
        raise ConfigError(f"CloudWatch Logs times start in 1970, got {value!r}", source=source, location=where)
    return ms


def _iso(ms: int) -> str:
    return (_EPOCH + ms * _MS).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _timestamp(value: str | TimestampField, where: str, source: str | os.PathLike | None) -> TimestampSpec:
    if value == "ingestion":
        return TimestampSpec("ingestion")
    assert isinstance(value, TimestampField)
    ref = parse_reference(value.field)
    if ref is None or ref.kind == "field" or (ref.kind == "position" and ref.position < 1):
        expected = (
            "space-delimited fields are given by their 1-based position here, e.g. $11"
            if ref is not None
            else f"expected {SELECTOR_SHAPE}"
        )
        raise ConfigError(f"{expected}, got {value.field!r}", source=source, location=f"{where}.field")
    if ref.kind == "json":
        return TimestampSpec("json", selector=ref.text, format=value.format)
    return TimestampSpec("position", position=ref.position, format=value.format)


class _Loader:
    """The checks after decoding, for one file: ``base`` resolves its relative paths."""

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
        if isinstance(data, Mapping) and isinstance(data.get("metric_filters"), Mapping) and "pack" in data[
            "metric_filters"
        ]:
            raise self.fail("metric_filters",
                            "a pack is an entry of a list: metric_filters: [{pack: NAME, log_group: NAME}]")
        document = decode(data, Document, source=self.source)
        filters, discover = self.metric_filters(document.metric_filters)
        groups = {f.log_group_name for f in filters}
        sources = [
            self.source_item(item, f"sources[{i}]", groups, bool(discover)) for i, item in enumerate(document.sources)
        ]
        if discover and not any(isinstance(s, CloudWatchLogsSpec) for s in sources):
            raise self.fail(
                discover,
                "discover reads the metric filters of the cloudwatch_logs sources' log groups, and there is none",
            )
        check_sources_disjoint(sources, self.fail)
        sinks = [self.sink_entry(raw, f"sinks[{i}]") for i, raw in enumerate(data["sinks"])]
        check_paths(sources, sinks, self.fail)
        path = Path(self.source) if self.source is not None else None
        config = EngineConfig(
            tuple(filters),
            tuple(sources),
            tuple(sinks),
            document.allowed_lateness_s,
            discover_metric_filters=bool(discover),
            path=path,
        )
        problem = sink_problem(config)
        if problem is not None:
            raise self.fail(*problem)
        return config

    def metric_filters(self, value: list[Any] | MetricFiltersFile) -> tuple[list[MetricFilter], str | None]:
        """The filters, validated together, and where ``{discover: true}`` is (or None)."""
        if isinstance(value, MetricFiltersFile):
            return self.filters_file(value, "metric_filters"), None
        filters: list[MetricFilter] = []
        discover: str | None = None
        from_packs: dict[tuple[str, str], tuple[str, MetricFilter]] = {}
        for i, item in enumerate(value):
            where = f"metric_filters[{i}]"
            if isinstance(item, Mapping) and "file" in item:
                filters += self.filters_file(decode(item, MetricFiltersFile, where=where, source=self.source), where)
            elif isinstance(item, Mapping) and "pack" in item:
                entry = decode(item, PackEntry, where=where, source=self.source)
                filters += self.pack_filters(entry, where, from_packs)
            elif isinstance(item, Mapping) and "discover" in item:
                entry = decode(item, DiscoverEntry, where=where, source=self.source)
                if not entry.discover:
                    raise self.fail(f"{where}.discover", "discover: false discovers nothing; remove the entry")
                if discover is not None:
                    raise self.fail(where, f"discover is already given at {discover}; remove one")
                discover = where
            else:  # an inline filter, in the describe-metric-filters shape
                filters.append(decode_filter(item, where, self.source))
        validate_metric_filters(filters)  # together: names unique and quotas per log group
        return filters, discover

    def pack_filters(
        self, entry: PackEntry, where: str, seen: dict[tuple[str, str], tuple[str, MetricFilter]]
    ) -> list[MetricFilter]:
        """The filters of a ``{pack: ...}`` entry, less those an earlier pack entry already
        gave identically on the same log group (``seed-dashboard`` beside ``cis``: the
        security-group filter once); ``seen`` maps (log group, filter name) to the entry that
        gave it. A same-named filter that differs (another variant) is an error."""
        try:
            filters = get_pack(entry.pack).metric_filters(entry.log_group, entry.variants)
        except PackError as error:
            raise self.fail(f"{where}.{error.location}", error.reason) from None
        out = []
        for f in filters:
            first = seen.setdefault((f.log_group_name, f.filter_name), (where, f))
            if first[0] == where:
                out.append(f)
            elif first[1] != f:
                raise self.fail(
                    where,
                    f"pack {entry.pack} gives metric filter {f.filter_name} on log group {f.log_group_name} with "
                    f"another pattern than {first[0]} does; choose the same variant in both",
                )
        return out

    def filters_file(self, value: MetricFiltersFile, where: str) -> list[MetricFilter]:
        for name, given in (value.parameters or {}).items():
            values = given if isinstance(given, list) else [given]
            if given is None or not all(isinstance(v, _PARAMETER_SCALARS) for v in values):
                null = "; CloudFormation has no null parameter value, write '' for an empty one"
                raise self.fail(
                    f"{where}.parameters.{name}",
                    f"expected a string (or a number, true/false, or a list of those), got {given!r}"
                    + (null if given is None else ""),
                )
        return load_metric_filters(self.resolve(value.file), parameters=value.parameters)

    def source_item(self, item: Any, where: str, groups: set[str], discover: bool) -> Any:
        """One ``sources`` entry, decoded by its ``type``."""
        if isinstance(item, Mapping) and item.get("type") == "cloudwatch_logs":
            entry = decode(item, CloudWatchLogsSourceEntry, where=where, source=self.source)
            return self.cloudwatch_entry(entry, where, groups, discover)
        return self.source_entry(decode(item, SourceEntry, where=where, source=self.source), where, groups)

    def cloudwatch_entry(
        self, entry: CloudWatchLogsSourceEntry, where: str, groups: set[str], discover: bool
    ) -> CloudWatchLogsSpec:
        names, prefix = entry.log_group_names, entry.log_group_name_prefix
        if (names is UNSET) == (prefix is UNSET):
            both = names is not UNSET
            raise self.fail(
                where,
                "a cloudwatch_logs source takes log_group_names or log_group_name_prefix, not both"
                if both
                else "a cloudwatch_logs source needs log_group_names (a list of log groups) or log_group_name_prefix",
            )
        for j, name in enumerate(names or ()):
            if name in names[:j]:
                raise self.fail(f"{where}.log_group_names[{j}]", f"log group {name!r} is named twice; remove one")
            if not discover and name not in groups:
                raise self.fail(
                    f"{where}.log_group_names[{j}]",
                    f"no metric filter is defined for log group {name!r}, so nothing would be published "
                    f"(log groups with filters: {', '.join(sorted(groups)) or 'none'}; "
                    "or add {discover: true} to metric_filters)",
                )
        now = time.time_ns() // 1_000_000
        start = now
        if entry.start_time is not None:
            start = parse_time(entry.start_time, now, f"{where}.start_time", self.source)
        end = None if entry.end_time is None else parse_time(entry.end_time, now, f"{where}.end_time", self.source)
        if end is not None and end <= start:
            raise self.fail(f"{where}.end_time", f"end_time {_iso(end)} is not after start_time {_iso(start)}")
        return CloudWatchLogsSpec(
            log_group_names=tuple(names or ()),
            log_group_name_prefix=None if prefix is UNSET else prefix,
            region=entry.region,
            endpoint_url=entry.endpoint_url,
            start_ms=start,
            end_ms=end,
            poll_interval_s=entry.poll_interval_s,
            lookback_s=entry.lookback_s,
        )

    def source_entry(self, entry: SourceEntry, where: str, groups: set[str]) -> SourceConfig:
        path = entry.path
        if entry.type == "file":
            if not path:
                raise self.fail(f"{where}.path", f"a file source needs a path (file or glob), got {path!r}")
            if not path.startswith("s3://"):
                path = self.resolve(path)
            elif not path[len("s3://"):].split("/", 1)[0]:
                raise self.fail(f"{where}.path", f"an S3 path names its bucket: s3://BUCKET/PREFIX, got {path!r}")
        elif path is not None:
            raise self.fail(f"{where}.path", "a stdin source takes no path")
        for key in ("endpoint_url", "region"):
            if getattr(entry, key) is not None and not (path or "").startswith("s3://"):
                raise self.fail(f"{where}.{key}", f"{key} goes with an s3:// path (read by castlewatch backfill)")
        if entry.log_group not in groups:
            raise self.fail(
                f"{where}.log_group",
                f"no metric filter is defined for log group {entry.log_group!r}, so nothing would be published "
                f"(log groups with filters: {', '.join(sorted(groups)) or 'none'})",
            )
        timestamp = None
        if entry.format == "lines":
            if entry.timestamp is UNSET:
                raise self.fail(
                    f"{where}.timestamp",
                    "a 'lines' source needs a timestamp: {field: SELECTOR, format: iso8601|epoch_s|epoch_ms} "
                    "(e.g. {field: $.eventTime, format: iso8601}), or 'timestamp: ingestion' to use the time "
                    "each line is read (right for a live tail, wrong for a replay)",
                )
            timestamp = _timestamp(entry.timestamp, f"{where}.timestamp", self.source)
        elif entry.timestamp is not UNSET:
            raise self.fail(
                f"{where}.timestamp",
                f"format {entry.format!r} carries its own event time; timestamp applies to format 'lines' only",
            )
        return SourceConfig(entry.type, entry.log_group, path, entry.format, timestamp, entry.endpoint_url, entry.region)

    def sink_entry(self, raw: Any, where: str) -> SinkSpec:
        """The spec of one ``sinks`` entry, decoded as its type's mapping (:data:`SINK_ENTRIES`)."""
        kind_entry = decode(raw, SinkKindEntry, where=where, source=self.source)
        entry = decode(raw, SINK_ENTRIES[kind_entry.type], where=where, source=self.source)
        kind = sink_kind(entry.type)
        if kind.from_entry is None:
            return self.path_sink(entry, where)
        return kind.from_entry(entry, self.resolve)

    def path_sink(self, entry: SinkEntry, where: str) -> SinkSpec:
        path = entry.path
        if entry.type == "stdout":
            if path is not None:
                raise self.fail(f"{where}.path", "a stdout sink takes no path")
        elif not path:
            raise self.fail(f"{where}.path", f"a {entry.type} sink needs a path, got {path!r}")
        else:
            path = self.resolve(path)
        return SinkSpec(entry.type, path)
