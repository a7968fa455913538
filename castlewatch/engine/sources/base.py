"""The one interface the runner uses for every kind of log event source, and the byte sources' spec.

A source reads the log events of one input (a file or glob, stdin, one CloudWatch Logs
log group) and yields them in :class:`~castlewatch.model.EventBatch` es, each carrying
the checkpoint position after its last event: a new source of the same spec given that
position reads exactly the events after that batch. What the runner calls is
:class:`Source`'s: ``name``, ``spec``, ``batches(follow=, stop=)``, ``positions()``,
``warning()``, ``locate()``, ``close()``, and the class methods ``name_for(spec)`` (the
name before the source is made: the checkpoint's key) and ``split(spec)`` (one config
entry as the specs of the sources it makes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from castlewatch.model import EventBatch, Stats

__all__ = ["CHUNK_BYTES", "FORMATS", "Source", "SourceSpec", "check_format"]

#: Bytes read from a file or stdin (or decompressed from a gzip file) per read.
CHUNK_BYTES = 1 << 20
#: The byte formats of file and stdin sources (:mod:`castlewatch.engine.formats`).
FORMATS = ("lines", "cloudwatch_events", "cloudtrail_archive", "flow_log_file")


@dataclass(frozen=True)
class SourceSpec:
    """Where a file or stdin source's events come from and how to read them (one
    ``sources`` entry of the config).

    Attributes:
        type: ``"file"`` (``path`` is required) or ``"stdin"``.
        log_group: the log group name every event of this source belongs to.
        path: a file path or a glob (``*``, ``?``, ``[...]``, ``**``; ``~`` is expanded);
            matching files are read in sorted path order. ``None`` for stdin.
        format: ``"lines"``, ``"cloudwatch_events"``, ``"cloudtrail_archive"`` or
            ``"flow_log_file"`` (:mod:`castlewatch.engine.formats`).
        ingestion_time: for ``lines``, stamp events with the time they are read (epoch ms)
            instead of ``READ_FROM_MESSAGE``; ignored by the JSON formats, which carry their own timestamps.
    """

    type: Literal["file", "stdin"]
    log_group: str
    path: str | None = None
    format: Literal["lines", "cloudwatch_events", "cloudtrail_archive", "flow_log_file"] = "lines"
    ingestion_time: bool = False


def check_format(spec: Any) -> None:
    """ValueError if a byte source's ``spec.format`` is not one of :data:`FORMATS`."""
    if spec.format not in FORMATS:
        raise ValueError(f"source format must be one of {', '.join(FORMATS)}, not {spec.format!r}")


class Source:
    """Reads the log events of one spec; the base of every source kind.

    Args:
        spec: what to read (:class:`SourceSpec`, or a kind's own spec).
        stats: counters; malformed input is counted in ``stats.malformed`` as the batch
            carrying it is yielded (``stats.events_read`` is left to the caller). Every
            count travels in ``EventBatch.malformed`` of the first batch whose position is
            past the input counted (a batch may carry counts only), so a caller that
            evaluates batches later than it receives them (the Engine) passes ``None``
            here and adds ``EventBatch.malformed`` itself when it evaluates the batch:
            then a checkpoint's counts match its positions.
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: ``batch_size`` < 1 (and a kind's own spec errors).

    Attributes:
        name: the ``source`` of every batch and the source's key in a checkpoint
            (:meth:`name_for`).
        spec, stats, batch_size: as given.

    A kind implements :meth:`_batches` and overrides what it has: :meth:`positions`,
    :meth:`warning`, :meth:`locate`, :meth:`close`, :meth:`name_for`, :meth:`split`.
    """

    def __init__(self, spec: Any, stats: Stats | None, batch_size: int = 1000) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.spec = spec
        self.stats = stats
        self.batch_size = batch_size
        self.name = self.name_for(spec)
        self._tally = Stats()  # counts not yet carried by a batch (e.g. unreadable files)

    @classmethod
    def name_for(cls, spec: Any) -> str:
        """The name a source of ``spec`` has: ``"<type>:<path>"`` (``"stdin:-"``)."""
        return f"{spec.type}:{spec.path or '-'}"

    @classmethod
    def split(cls, spec: Any) -> list[Any]:
        """The specs of the sources one config entry makes (one each, by default).

        Raises:
            ValueError: the entry cannot be split as it is (e.g. not resolved yet).
        """
        return [spec]

    def positions(self) -> Any:
        """The checkpoint after every batch yielded so far (before any: the one given);
        msgpack-able data. ``{}`` for a source without checkpoints."""
        return {}

    async def batches(self, *, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """Yield the source's events in batches of at most ``batch_size``.

        Args:
            follow: ``False``: read what there is to its end and return (``replay``).
                ``True``: keep reading new events until ``stop`` is set (``run``).
            stop: set it to end the iteration promptly; events not yet yielded are not
                consumed (a restart from :meth:`positions` reads them).

        A batch may have no events: it then only moves the checkpoint forward or only
        carries malformed counts (``EventBatch.malformed``).
        """
        stats = self.stats
        inner = self._batches(follow, stop)
        async with contextlib.aclosing(inner):
            async for batch in inner:
                if stats is not None and batch.malformed:
                    for reason, n in batch.malformed.items():
                        stats.count_malformed(reason, n)
                yield batch

    def _batches(self, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds open (done when :meth:`batches` ends)."""

    def warning(self) -> str | None:
        """A word about the input as it is now, if the source would read nothing of it."""
        return None

    def locate(self, before: Any, after: Any, index: int, message: str) -> str | None:
        """Where event ``index`` (0-based, with this ``message``) of a batch read between
        the positions ``before`` and ``after`` is, for a report; None when not known."""
        return None

    def _counts(self, counts: dict[str, int] | None) -> dict[str, int] | None:
        """A batch's malformed counts: ``counts`` (a parser's cut) and the source-level
        ones not yet carried by a batch."""
        tally = self._tally.malformed
        if not tally:
            return counts
        self._tally.malformed = {}
        if counts:
            for reason, n in counts.items():
                tally[reason] = tally.get(reason, 0) + n
        return tally
