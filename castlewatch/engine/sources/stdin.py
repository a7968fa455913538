"""The stdin source: log events piped in, read to EOF.

Read in binary, in chunks, by a daemon thread (a read blocked on an idle pipe never
holds up shutdown), at most a few chunks ahead (bounded memory); the bytes become events
as in :mod:`castlewatch.engine.formats`. stdin has no checkpoint: what was read is gone.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from castlewatch.engine.formats import MAX_DOCUMENT_BYTES, StreamParser
from castlewatch.engine.sources.base import CHUNK_BYTES, Source, SourceSpec, check_format
from castlewatch.model import EventBatch, Stats

__all__ = ["StdinSource"]


class StdinSource(Source):
    """Reads the log events piped into the process (:class:`SourceSpec` of type ``stdin``).

    Args:
        spec: what to read (its ``path`` is None).
        stats: counters (see :class:`~castlewatch.engine.sources.base.Source`); a read
            error is counted ``unreadable_file``.
        positions: ignored (stdin has no checkpoint: :meth:`positions` is ``{}``).
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: an unknown format, ``batch_size`` < 1, or the process has no stdin
            (it was closed).

    Attributes:
        name: ``"stdin:-"``.
        chunk_bytes: bytes per read (default :data:`CHUNK_BYTES`).
    """

    def __init__(
        self, spec: SourceSpec, stats: Stats | None, positions: Any = None, batch_size: int = 1000
    ) -> None:
        check_format(spec)
        super().__init__(spec, stats, batch_size)
        self.chunk_bytes = CHUNK_BYTES
        if sys.stdin is None:
            raise ValueError(
                "a stdin source needs a standard input, and this process has none (it was closed); "
                "pipe the events in, or give a file source"
            )

    async def _batches(self, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """The batches of :meth:`~castlewatch.engine.sources.base.Source.batches`: stdin
        is read to its EOF whether following or not (following, a JSON document is
        collected over at most ``MAX_DOCUMENT_BYTES``), or until ``stop`` is set."""
        doc_limit = MAX_DOCUMENT_BYTES if follow else None
        stream = sys.stdin
        if stream is None:
            raise ValueError("a stdin source needs a standard input, and this process has none (it was closed)")
        try:
            # The file descriptor itself (a copy of it), not sys.stdin's buffered reader: a
            # thread blocked in a buffered read holds that reader's lock, and the interpreter,
            # closing sys.stdin at exit, dies on it ("_enter_buffered_busy").
            fd: int | None = os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError):  # no descriptor (an in-memory stdin)
            fd = None
        if fd is not None:
            read: Callable[[int], bytes] = functools.partial(os.read, fd)
        else:
            buffered = getattr(stream, "buffer", stream)
            read = getattr(buffered, "read1", None) or buffered.read
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        credit = threading.Semaphore(4)  # chunks read ahead at most: bounded memory
        size = self.chunk_bytes

        def reader() -> None:
            # A daemon thread: a read blocked on an idle pipe never holds up shutdown.
            try:
                while True:
                    credit.acquire()
                    try:
                        data: bytes | BaseException = read(size)
                    except BaseException as exc:  # handed over: OSError counted, others raised
                        data = exc
                    try:
                        loop.call_soon_threadsafe(queue.put_nowait, data)
                    except RuntimeError:  # the loop is closed
                        return
                    if not data or isinstance(data, BaseException):
                        return
            finally:
                if fd is not None:
                    os.close(fd)

        threading.Thread(target=reader, name=f"castlewatch-{self.name}", daemon=True).start()
        p = StreamParser(self.spec, self.batch_size, doc_limit)
        stop_wait: asyncio.Task | None = None
        try:
            while not stop.is_set():
                if queue.empty():
                    if stop_wait is None:
                        stop_wait = asyncio.ensure_future(stop.wait())
                    get = asyncio.ensure_future(queue.get())
                    await asyncio.wait((get, stop_wait), return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        get.cancel()
                        return
                    data = get.result()
                else:
                    data = queue.get_nowait()
                credit.release()
                if isinstance(data, (OSError, ValueError)):
                    self._tally.count_malformed("unreadable_file")
                    data = b""
                elif isinstance(data, BaseException):
                    raise data
                if data:
                    p.feed(data)
                else:
                    p.end(final=True)
                p.cut()
                for events, _, _, counts in p.ready:
                    counts = self._counts(counts)
                    if p.light:
                        yield EventBatch(self.name, [], {}, messages=events, log_group=p.group, malformed=counts)
                    else:
                        yield EventBatch(self.name, events, {}, malformed=counts)
                p.ready = []
                counts = self._counts(p.counts())
                if counts:  # malformed input and no event after it yet
                    yield EventBatch(self.name, [], {}, malformed=counts)
                if not data:
                    return
        finally:
            if stop_wait is not None:
                stop_wait.cancel()
