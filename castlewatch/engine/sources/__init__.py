"""Log event sources: one module per source kind, behind one interface, chosen by a registry.

Every source is a :class:`~castlewatch.engine.sources.base.Source`: it reads the log
events of one input and yields them in :class:`~castlewatch.model.EventBatch` es, each
carrying the checkpoint position after its last event. The runner
(:mod:`castlewatch.engine.runner`) knows nothing else of them: it asks
:func:`split_source` for the sources a config entry makes, :func:`source_name` for the
checkpoint key of each, and :func:`open_source` for the source itself.

Kinds (the ``type`` of a ``sources`` entry), one module each:

- ``file``: :mod:`.files` (files and globs, read once or followed like ``tail -F``);
- ``stdin``: :mod:`.stdin`;
- ``cloudwatch_logs``: :mod:`.cloudwatch_logs` (CloudWatch Logs log groups, FilterLogEvents).

How bytes become events (the ``format`` of file and stdin sources):
:mod:`castlewatch.engine.formats`.

Adding a kind: write its module (a ``Source`` subclass taking ``(spec, stats,
positions, batch_size)``; its spec has a ``type`` and a ``log_group``) and add one line
to :data:`SOURCE_KINDS`; its config entry goes into
:mod:`castlewatch.engine.config.schema`.
"""

from __future__ import annotations

from typing import Any

from castlewatch.engine.formats import MAX_DOCUMENT_BYTES, MAX_EVENT_BYTES
from castlewatch.engine.sources.base import CHUNK_BYTES, Source, SourceSpec
from castlewatch.engine.sources.cloudwatch_logs import CloudWatchLogsSource
from castlewatch.engine.sources.files import POLL_INTERVAL_S, FileSource
from castlewatch.engine.sources.stdin import StdinSource
from castlewatch.model import Stats

__all__ = [
    "CHUNK_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_EVENT_BYTES",
    "POLL_INTERVAL_S",
    "SOURCE_KINDS",
    "FileSource",
    "Source",
    "SourceSpec",
    "StdinSource",
    "open_source",
    "source_name",
    "split_source",
]

#: The source kinds: a ``sources`` entry's ``type`` -> the class that reads it.
SOURCE_KINDS: dict[str, type[Source]] = {
    "file": FileSource,
    "stdin": StdinSource,
    "cloudwatch_logs": CloudWatchLogsSource,
}


def _kind(spec: Any) -> type[Source]:
    kind = SOURCE_KINDS.get(getattr(spec, "type", None))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"source type must be one of {', '.join(SOURCE_KINDS)}, not {getattr(spec, 'type', None)!r}")
    return kind


def open_source(spec: Any, stats: Stats | None, positions: Any = None, batch_size: int = 1000) -> Source:
    """The source that reads ``spec``, resuming from ``positions`` (a checkpoint from its
    ``positions()`` or a batch's ``position``; None: from the start).

    Raises:
        ValueError: an unknown ``spec.type``, and the kind's own errors (an invalid spec,
            ``batch_size`` < 1, ``positions`` of another shape).
    """
    return _kind(spec)(spec, stats, positions, batch_size)


def source_name(spec: Any) -> str:
    """The name a source of ``spec`` has (its batches' ``source``, its checkpoint key),
    before it is made (ValueError for an unknown type)."""
    return _kind(spec).name_for(spec)


def split_source(spec: Any) -> list[Any]:
    """The specs of the sources one config entry makes (a file or stdin entry: itself).

    Raises:
        ValueError: an unknown type, or an entry that cannot be split as it is.
    """
    return _kind(spec).split(spec)
