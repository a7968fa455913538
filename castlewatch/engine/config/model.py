"""What loading a configuration gives: :class:`EngineConfig`, its sources, and :class:`ConfigError`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from castlewatch.engine.evaluate import TimestampSpec
from castlewatch.engine.sources import SourceSpec
from castlewatch.engine.sources.cloudwatch_logs import CloudWatchLogsSpec
from castlewatch.grammar.errors import InvalidParameterError
from castlewatch.metric_filters import MetricFilterLoadError
from castlewatch.model import MetricFilter
from castlewatch.sinks import SinkSpec

DEFAULT_ALLOWED_LATENESS_S = 60.0


class ConfigError(ValueError):
    """A configuration file castlewatch cannot run with.

    ``str(error)`` is ``FILE:LINE:COLUMN: LOCATION: REASON`` (parts unknown are left
    out; without a file, ``line L, column C: ...``), e.g.
    ``castlewatch.yaml:10:5: sources[0].format: expected one of lines, cloudwatch_events,
    cloudtrail_archive, got 'line'; did you mean 'lines'?``.

    Attributes:
        source: the configuration file, or None (text given directly).
        location: the key at fault, e.g. ``sources[1].format``.
        reason: what is wrong and what is allowed.
        line, column: 1-based position in the YAML text of that key (of the entry
            missing it, for a missing key), or None when not known.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | os.PathLike | None = None,
        location: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = None if source is None else str(source)
        self.location = location
        self.line = line
        self.column = column
        where = self.source
        if line is not None:
            where = f"{where}:{line}:{column}" if where else f"line {line}, column {column}"
        super().__init__(": ".join([p for p in (where, location) if p] + [reason]))


CONFIG_ERRORS = (ConfigError, MetricFilterLoadError, InvalidParameterError)
"""Everything :func:`~castlewatch.engine.config.load_config` raises for a bad configuration (all ``ValueError``)."""


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
        format: ``"lines"``, ``"cloudwatch_events"``, ``"cloudtrail_archive"`` or ``"flow_log_file"``.
        timestamp: for ``lines``, where the event time comes from; None otherwise.
        endpoint_url, region: for an ``s3://bucket/prefix`` path (``castlewatch backfill``
            reads it): the S3 endpoint (moto, LocalStack) and the bucket's region, or None.
    """

    type: Literal["file", "stdin"]
    log_group: str
    path: str | None = None
    format: Literal["lines", "cloudwatch_events", "cloudtrail_archive", "flow_log_file"] = "lines"
    timestamp: TimestampSpec | None = None
    endpoint_url: str | None = None
    region: str | None = None

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
        sources: the sources, in file order: :class:`SourceConfig` (file, stdin) and
            :class:`~castlewatch.engine.sources.cloudwatch_logs.CloudWatchLogsSpec`.
        sinks: the sinks (:class:`~castlewatch.sinks.SinkSpec`), paths absolute.
        allowed_lateness_s: how long a minute stays open after the watermark passes it
            (seconds).
        discover_metric_filters: ``metric_filters`` has ``{discover: true}`` and the
            filters provisioned on the cloudwatch_logs log groups are still to be read
            (:func:`~castlewatch.engine.config.resolve_config` reads them and clears it).
        path: the configuration file, or None.
        discovered_log_groups: log group -> the endpoint URL its metric filters were
            discovered from (None: real AWS, which then publishes their metrics itself).
    """

    metric_filters: tuple[MetricFilter, ...]
    sources: tuple[SourceConfig | CloudWatchLogsSpec, ...]
    sinks: tuple[SinkSpec, ...]
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S
    discover_metric_filters: bool = False
    path: Path | None = field(default=None, compare=False)
    discovered_log_groups: dict[str, str | None] = field(default_factory=dict)

    def filters_for(self, log_group: str) -> list[MetricFilter]:
        """The metric filters of ``log_group``, in file order."""
        return [f for f in self.metric_filters if f.log_group_name == log_group]
