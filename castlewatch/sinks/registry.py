"""The sink kinds, one line each, and how a spec is opened.

Adding a sink kind: a module in this package defining ``KIND`` (a
:class:`~castlewatch.sinks.base.SinkKind`) and one line in :data:`KINDS`. Modules are
imported when a spec of their kind is first made or opened, so ``import castlewatch.sinks``
stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from castlewatch.sinks.base import Sink, SinkContext, SinkError, SinkKind

#: type -> the module defining its ``KIND``.
KINDS: dict[str, str] = {
    "jsonl": "castlewatch.sinks.jsonl",
    "csv": "castlewatch.sinks.csv",
    "avro": "castlewatch.sinks.avro",
    "stdout": "castlewatch.sinks.stdout",
    "cloudwatch": "castlewatch.sinks.cloudwatch",
    "cloudwatch_dashboard": "castlewatch.sinks.cloudwatch_dashboard",
    "html_dashboard": "castlewatch.sinks.html_dashboard",
}

#: The sink types a config's ``sinks: [{type: ...}]`` may name.
SINK_TYPES: tuple[str, ...] = tuple(KINDS)


@cache
def sink_kind(type: str) -> SinkKind:
    """The :class:`SinkKind` of ``type``.

    Raises:
        SinkError: ``type`` is not one of :data:`SINK_TYPES`.
    """
    module = KINDS.get(type)
    if module is None:
        raise SinkError(f"unknown sink type {type!r}; expected one of: {', '.join(SINK_TYPES)}")
    return import_module(module).KIND


@dataclass(frozen=True)
class SinkSpec:
    """Where datapoints go: one entry of the config's ``sinks: [{type, path}]``.

    Attributes:
        type: one of :data:`SINK_TYPES` (``"jsonl"``, ``"csv"``, ``"avro"``, ``"stdout"``;
            ``"cloudwatch"`` and ``"cloudwatch_dashboard"`` have specs of their own,
            :class:`~castlewatch.sinks.cloudwatch.CloudWatchSinkSpec` and
            :class:`~castlewatch.sinks.cloudwatch_dashboard.CloudWatchDashboardSinkSpec`).
        path: the output file; required for ``jsonl``, ``csv`` and ``avro``, ignored
            for ``stdout``. Parent directories are created when the sink is opened.

    Raises:
        SinkError: (a ``ValueError``) for an unknown type or a file type without path.
    """

    type: str
    path: str | None = None

    def __post_init__(self) -> None:
        if sink_kind(self.type).needs_path and not self.path:
            raise SinkError(f"sink type {self.type!r} needs a path")

    @property
    def where(self) -> str:
        """Where the datapoints go, in a few words (the path, ``stdout``)."""
        return self.path or self.type


def open_sink(spec: SinkSpec, position: Any = None, context: SinkContext | None = None) -> Sink:
    """Open the sink ``spec`` describes.

    Args:
        spec: sink type and path (and the kind's own settings).
        position: ``None`` for a fresh run (the file is created, or truncated if it
            exists); or a position an earlier ``flush()`` returned (``{"size": N}``) to
            resume after a crash: the file is truncated back to it and appended to.
            Ignored for stdout.
        context: the run opening the sink (:class:`~castlewatch.sinks.base.SinkContext`);
            default: none (no checkpoint, no configuration).

    Returns:
        A :class:`~castlewatch.sinks.base.Sink` (``JsonLinesSink``, ``CsvSink``,
        ``AvroSink`` or ``StdoutSink``).

    Raises:
        SinkError: invalid spec or position, file shorter than the position, an Avro
            file that cannot be appended to (see :class:`SinkError`).
        OSError: the file or its directory cannot be created or written.
    """
    kind = sink_kind(spec.type)
    if kind.needs_path and not spec.path:
        raise SinkError(f"sink type {spec.type!r} needs a path")
    return kind.open(spec, position, context or SinkContext())
