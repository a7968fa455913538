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
  template (parameter values and pseudo parameters such as ``AWS::Region``): strings,
  numbers, booleans or lists of them, never null.
- A key given twice in one mapping (anywhere in the file) is an error naming the key
  and both lines: YAML would silently keep the last value.
- Inputs and outputs must not meet, checked when the file is loaded (and again by
  :func:`with_sinks_in` for ``--out``): a sink may not be a file a source reads (an
  existing file matched now, or a path the source's glob would match once it
  exists), since opening the sink would destroy the input; two sinks may not share a
  file (every datapoint would be written twice).
- Two sources of one log group may not read one file (each of its events would be
  counted twice): the globs are expanded when the file is loaded, as the sources
  expand them (relative to the configuration file's directory, ``**`` recursive,
  ``~`` expanded, regular files only, a file known by its device and inode so that
  links count as the same file), and two sources with the same path are refused even
  when nothing matches yet.  Files that appear later (while following) are not
  checked.  Sources of *different* log groups may share a file: each group's filters
  then see each event once, as when one file is shipped to two log groups.  At most
  one source reads stdin.

Errors: :class:`ConfigError` for the file's own structure; the metric filters raise
the errors of :mod:`castlewatch.metric_filters`.  :data:`CONFIG_ERRORS` is the
tuple to catch.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import glob
import math
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from castlewatch.engine.evaluate import TimestampSpec
from castlewatch.engine.sources import SourceSpec
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.metric_filters import (
    LOG_GROUP_NAME_RE,
    MetricFilterLoadError,
    load_metric_filters,
    parse_reference,
    yaml_error_text,
)
from castlewatch.model import MetricFilter
from castlewatch.sinks.local import SinkError, SinkSpec

__all__ = [
    "CONFIG_ERRORS",
    "ConfigError",
    "EngineConfig",
    "SourceConfig",
    "TimestampSpec",
    "load_config",
    "load_config_text",
    "check_checkpoint_path",
    "parse_timestamp",
    "with_sinks_in",
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


def with_sinks_in(config: EngineConfig, directory: str | os.PathLike) -> EngineConfig:
    """``config`` with every file sink moved into ``directory``, file names kept (``--out DIR``).

    Raises:
        ConfigError: two sinks would then share a file (``a/dp.jsonl`` and
            ``b/dp.jsonl`` both become ``DIR/dp.jsonl``: every datapoint would be
            written twice), or a sink would be a file a source reads.
    """
    directory = Path(directory)
    sinks = [
        s if s.path is None else dataclasses.replace(s, path=str(directory / Path(s.path).name)) for s in config.sinks
    ]

    def fail(location: str, reason: str) -> ConfigError:
        reason = f"{reason} (sinks moved into {directory}, file names kept)"
        return ConfigError(reason, source=config.path, location=location)

    _check_paths(config.sources, sinks, fail, before=config.sinks)
    return dataclasses.replace(config, sinks=tuple(sinks))


def check_checkpoint_path(config: EngineConfig, checkpoint: str | os.PathLike) -> None:
    """Refuse a checkpoint file that a source reads or a sink writes (it is rewritten
    every few seconds, so either would destroy or corrupt the other).

    Raises:
        ConfigError: naming the source or sink.
    """
    path = os.path.abspath(checkpoint)
    identity = _file_identity(path)
    for j, source in enumerate(config.sources):
        if source.type != "file" or not source.path:
            continue
        if (identity is not None and identity in _matched_files(source.path)) or _glob_would_match(source.path, path):
            raise ConfigError(
                f"the checkpoint file {path} is read by sources[{j}] ({source.path}); put the checkpoint elsewhere",
                source=config.path,
                location="checkpoint",
            )
    for j, sink in enumerate(config.sinks):
        if sink.path is None:
            continue
        other = os.path.abspath(sink.path)
        same_file = identity is not None and identity == _file_identity(other)
        if same_file or os.path.realpath(other) == os.path.realpath(path):
            raise ConfigError(
                f"the checkpoint file {path} is the file of sinks[{j}]; put the checkpoint elsewhere",
                source=config.path,
                location="checkpoint",
            )


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a regular file, or None (missing, unreadable, not a file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _matched_files(pattern: str) -> dict[tuple[int, int], str]:
    """The regular files a file source's path matches now, as the source finds them
    (``~`` expanded, ``**`` recursive, sorted): identity -> first path."""
    pattern = os.path.expanduser(pattern)
    paths = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
    found: dict[tuple[int, int], str] = {}
    for path in paths:
        identity = _file_identity(path)
        if identity is not None:
            found.setdefault(identity, path)
    return found


def _glob_would_match(pattern: str, path: str) -> bool:
    """Whether ``glob.glob(pattern, recursive=True)`` would list ``path`` once it exists.

    Both are absolute; compared component by component as ``glob`` does: ``*``, ``?``
    and ``[...]`` within one component, ``**`` alone for any number of them, and a
    wildcard never matching a name that starts with ``.`` unless the pattern's
    component does.
    """
    pattern = os.path.normpath(os.path.expanduser(pattern))
    path = os.path.normpath(path)
    if not glob.has_magic(pattern):
        return pattern == path
    pat = pattern.split(os.sep)
    parts = path.split(os.sep)

    def hidden(name: str, component: str) -> bool:
        return name.startswith(".") and not component.startswith(".") and glob.has_magic(component)

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(parts)
        if pat[i] == "**":
            for k in range(j, len(parts) + 1):  # ** takes parts[j:k]
                if match(i + 1, k):
                    return True
                if k < len(parts) and hidden(parts[k], "*"):
                    return False
            return False
        if j == len(parts) or hidden(parts[j], pat[i]):
            return False
        return fnmatch.fnmatchcase(parts[j], pat[i]) and match(i + 1, j + 1)

    return match(0, 0)


def _check_sources_disjoint(sources: list[SourceConfig], fail: Callable[[str, str], ConfigError]) -> None:
    """Refuse two sources of one log group reading one file, and two stdin sources.

    Globs are expanded now, as the sources will expand them; a file that appears
    later is not checked (see the module docstring).
    """
    stdin: int | None = None
    read: dict[tuple[int, int], tuple[int, str]] = {}  # file identity -> (source index, path)
    for i, source in enumerate(sources):
        where = f"sources[{i}]"
        if source.type == "stdin":
            if stdin is not None:
                raise fail(where, f"stdin is already read by sources[{stdin}]; only one source can read it")
            stdin = i
            continue
        assert source.path is not None
        for j, other in enumerate(sources[:i]):
            if other.type == "file" and other.log_group == source.log_group and _same_path(other.path, source.path):
                raise fail(
                    f"{where}.path",
                    f"the same path as sources[{j}] in log group {source.log_group!r}: "
                    "each event would be counted twice; remove one",
                )
        for identity, path in _matched_files(source.path).items():
            first = read.get(identity)
            if first is not None and sources[first[0]].log_group == source.log_group:
                j, other_path = first
                same = path if path == other_path else f"{path} (also {other_path})"
                raise fail(
                    f"{where}.path",
                    f"{same} is matched by sources[{j}] ({sources[j].path}) too, in the same log group "
                    f"{source.log_group!r}: each of its events would be counted twice; narrow one of the paths",
                )
            read.setdefault(identity, (i, path))


def _same_path(a: str | None, b: str | None) -> bool:
    """Whether two source paths (or globs) are written alike, once normalised."""
    return os.path.normpath(os.path.expanduser(a or "")) == os.path.normpath(os.path.expanduser(b or ""))


def _check_paths(
    sources: Sequence[SourceConfig],
    sinks: Sequence[SinkSpec],
    fail: Callable[[str, str], ConfigError],
    before: Sequence[SinkSpec] | None = None,
) -> None:
    """Refuse a sink that is a file a source reads, and two sinks sharing a file.

    Checked before anything is opened (opening a sink truncates its file). A sink is
    an input when it is a file a source's path matches now (symbolic and hard links
    included), or a path the source's glob would match once it exists.  ``before``:
    the sinks as configured, when ``sinks`` moved them (``--out``), to name them.
    """
    shown = before if before is not None else sinks
    taken: dict[Any, int] = {}
    matched = [(_matched_files(s.path) if s.type == "file" and s.path else {}) for s in sources]
    for i, sink in enumerate(sinks):
        if sink.path is None:
            continue
        where = f"sinks[{i}].path"
        path = os.path.abspath(sink.path)
        identity = _file_identity(path)
        for j, source in enumerate(sources):
            if source.type != "file" or not source.path:
                continue
            if (identity is not None and identity in matched[j]) or any(
                _glob_would_match(source.path, p) for p in {path, os.path.realpath(path)}
            ):
                raise fail(
                    where,
                    f"{path} is read by sources[{j}] ({source.path}): opening the sink would destroy that input "
                    "(and a followed source would read the datapoints back); write the datapoints elsewhere",
                )
        for key in {os.path.realpath(path), identity} - {None}:
            if key in taken:
                j = taken[key]
                if before is None:
                    what = f"the same file as sinks[{j}] ({path})"
                else:
                    what = f"{shown[i].path} and sinks[{j}] ({shown[j].path}) would both be {path}"
                raise fail(where, f"{what}: every datapoint would be written to it twice; give each sink its own file")
            taken[key] = i


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
        _check_paths(sources, sinks, self.fail)
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
        _check_sources_disjoint(sources, self.fail)
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
