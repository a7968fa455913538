"""Log event sources: files (read once, or followed like ``tail -F``) and stdin.

A :class:`Source` turns the bytes of its input into :class:`~castlewatch.engine.model.LogEvent`
objects and yields them in :class:`~castlewatch.engine.model.EventBatch` es, each carrying the
checkpoint position after its last event.

Formats (``SourceSpec.format``):

``lines``
    One event per line, the line without its ``\\n`` and without one ``\\r`` before it (CRLF).
    Empty lines are not events. ``LogEvent.timestamp`` is ``READ_FROM_MESSAGE`` ("take it from the message",
    done by the evaluator), or the ingestion time (now, epoch ms) with ``ingestion_time``.
``cloudwatch_events``
    What ``aws logs filter-log-events`` / ``get-log-events`` print: a document
    ``{"events": [{"timestamp": ms, "message": str, "logStreamName": str?, ...}], ...}``
    (pretty-printed over many lines, or compact on one line), or JSON Lines of such documents or of
    single event objects (a line may also hold a JSON array of event objects). The timestamp is
    the event's own ``timestamp``; the log stream its ``logStreamName`` or ``""``.
``cloudtrail_archive``
    CloudTrail log files as delivered to S3, ``{"Records": [record, ...]}`` (usually gzipped),
    also one document per line, or one bare record per line. One event per record: the message
    is the record re-serialised compactly by orjson (keys in their original order), the
    timestamp its ``eventTime`` (ISO 8601) in epoch ms, the log stream
    ``<recipientAccountId>_CloudTrail_<awsRegion>`` as CloudTrail names its streams (``""``
    when either is missing).

A whole document is recognised when the first non-empty line of a file (or of stdin) does not
parse and opens a document as pretty-printed JSON does (it starts with ``{`` or ``[`` and ends
with one: ``{``, ``[``, ``{"events": [``); everything from there to the end of the data is then
parsed as one value (while following: once it parses; if it never does, it is one
``invalid_json`` when the file is finished).

Malformed input is counted in :class:`~castlewatch.engine.model.Stats` ``malformed`` and
skipped, never raised: ``invalid_utf8``, ``too_large`` (a message over
:data:`MAX_EVENT_BYTES` of UTF-8), ``invalid_json`` (a JSON line or document that does not
parse, is not of the expected shape, or lacks the message or timestamp), ``bad_timestamp``
(a timestamp present but unusable), ``unreadable_file`` (one per file that cannot be opened or
read, or is a corrupt or truncated gzip stream, and a literal path that does not exist in
batch mode).

Files are read in binary, in chunks of :data:`CHUNK_BYTES`, off the event loop
(:func:`asyncio.to_thread`); gzip files are recognised by their magic bytes and decompressed
(read once, also while following: a gzip file is complete; one found cut short while
following is read when it has grown). Files are followed by identity (device, inode) like
``tail -F``: a file renamed to another name matching the glob is still followed; one whose
name no longer leads to it (rotated away, deleted) is read to its end through the open file,
its partial last line then being an event, before the file now under its name; a file
found shorter than what was read, or whose first bytes changed, was truncated and is read
again from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as _glob
import gzip
import io
import os
import stat as _stat
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from castlewatch.engine.model import READ_FROM_MESSAGE, EventBatch, LogEvent, Stats, iso8601_ms

__all__ = [
    "CHUNK_BYTES",
    "MAX_EVENT_BYTES",
    "POLL_INTERVAL_S",
    "Source",
    "SourceSpec",
    "open_source",
]

#: CloudWatch Logs' maximum event size: a longer message (UTF-8 bytes) is counted ``too_large``.
#: The largest log event CloudWatch Logs takes: "Each log event can be no larger than 1 MB",
# with a batch's size counted as UTF-8 message bytes plus 26 bytes per event within
# 1,048,576 bytes (API_PutLogEvents).  It was 256 KB until April 2025.
MAX_EVENT_BYTES = 1_048_576 - 26
#: Bytes read from a file (or decompressed from a gzip file) per read.
CHUNK_BYTES = 1 << 20
#: Seconds between two looks at the files while following, when nothing was read.
POLL_INTERVAL_S = 0.2
#: Bytes at the start of a file whose CRC-32 is checkpointed, to recognise the file on resume.
HEAD_BYTES = 256
#: Checkpoint format version.
POSITIONS_VERSION = 1

_FORMATS = ("lines", "cloudwatch_events", "cloudtrail_archive")
_TYPES = ("file", "stdin")
# While following, at most this many chunks are read from one file before the others get a turn.
_CHUNKS_PER_ROUND = 8
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_JSONDecodeError = orjson.JSONDecodeError
_loads = orjson.loads
_dumps = orjson.dumps


@dataclass(frozen=True)
class SourceSpec:
    """Where events come from and how to read them (one ``sources`` entry of the config).

    Attributes:
        type: ``"file"`` (``path`` is required) or ``"stdin"``.
        log_group: the log group name every event of this source belongs to.
        path: a file path or a glob (``*``, ``?``, ``[...]``, ``**``; ``~`` is expanded);
            matching files are read in sorted path order. ``None`` for stdin.
        format: ``"lines"``, ``"cloudwatch_events"`` or ``"cloudtrail_archive"`` (see the
            module docstring).
        ingestion_time: for ``lines``, stamp events with the time they are read (epoch ms)
            instead of ``READ_FROM_MESSAGE``; ignored by the JSON formats, which carry their own timestamps.
    """

    type: Literal["file", "stdin"]
    log_group: str
    path: str | None = None
    format: Literal["lines", "cloudwatch_events", "cloudtrail_archive"] = "lines"
    ingestion_time: bool = False


def open_source(spec: SourceSpec, stats: Stats, positions: dict | None = None, batch_size: int = 1000) -> Source:
    """The :class:`Source` for ``spec`` (same arguments and errors as :class:`Source`)."""
    return Source(spec, stats, positions, batch_size)


# --------------------------------------------------------------------------------------------
# Bytes -> events


def _opens_document(line: bytes) -> bool:
    """True for the first line of a pretty-printed JSON document (``{``, ``[``, ``"events": [``)."""
    stripped = line.strip()
    return stripped[:1] in (b"{", b"[") and stripped[-1:] in (b"{", b"[")


class _Parser:
    """Turns a byte stream into events, tracking how many bytes are consumed.

    ``offset`` is the number of stream bytes consumed: everything before it has been turned
    into events (or counted as malformed); ``skip`` is the number of items (events or records)
    of the JSON value starting at ``offset`` already turned into events. ``pending`` holds the
    bytes after ``offset`` not consumed yet (a partial line, or a document being collected), as
    a list of pieces (``plen`` bytes) so that a long document is joined once, not per chunk.
    Events gather in ``events``; when ``batch_size`` are there they move to ``ready`` as
    ``(events, offset, skip)``, the position right after the last of them.
    """

    __slots__ = (
        "batch_size",
        "discard",
        "events",
        "fmt",
        "group",
        "ingestion",
        "light",
        "mode",
        "offset",
        "pending",
        "plen",
        "ready",
        "skip",
        "stats",
        "_times",
    )

    def __init__(self, spec: SourceSpec, stats: Stats, batch_size: int) -> None:
        self.fmt = spec.format
        self.group = spec.log_group
        self.ingestion = spec.ingestion_time
        # plain lines timed from their messages gather as bare strings (EventBatch.messages)
        self.light = self.fmt == "lines" and not self.ingestion
        self.stats = stats
        self.batch_size = batch_size
        self.offset = 0
        self.skip = 0
        # lines: the rest of a too-long line is being skipped up to its newline.
        self.discard = False
        self.pending: list[bytes] = []
        self.plen = 0
        # JSON formats: None (nothing seen yet), "lines" (JSON Lines) or "doc" (one document).
        self.mode: str | None = None
        self.events: list[LogEvent] = []
        self.ready: list[tuple[list[LogEvent], int, int]] = []
        self._times: dict[str, int | None] = {}

    @property
    def read_pos(self) -> int:
        """Stream bytes received so far."""
        return self.offset + self.plen

    def take(self, data: bytes = b"") -> bytes:
        """The pending bytes followed by ``data``; nothing is pending afterwards."""
        if not self.pending:
            return data
        self.pending.append(data)
        buf = b"".join(self.pending)
        self.pending = []
        self.plen = 0
        return buf

    def hold(self, buf: bytes) -> None:
        """Keep ``buf`` (which follows ``offset``) pending."""
        self.pending = [buf] if buf else []
        self.plen = len(buf)

    def reset(self) -> None:
        """Start over at the beginning of the stream (a truncated file)."""
        self.offset = 0
        self.skip = 0
        self.discard = False
        self.pending = []
        self.plen = 0
        self.mode = None

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        if self.fmt == "lines":
            self._feed_lines(data)
        else:
            self._feed_json(data)

    def end(self, final: bool) -> None:
        """No more bytes for now; ``final``: none will come (the partial last line is an event)."""
        if self.fmt == "lines":
            if final:
                if self.pending:
                    line = self.take()
                    start = self.offset
                    self.offset = start + len(line)
                    self._lines([line], start, self.offset)
                self.discard = False
        else:
            self._end_json(final)

    def cut(self) -> None:
        """Move the events gathered so far to ``ready`` (at the current position)."""
        if self.events:
            self.ready.append((self.events, self.offset, self.skip))
            self.events = []

    # -- lines ---------------------------------------------------------------------------

    def _feed_lines(self, data: bytes) -> None:
        if b"\n" not in data and not self.discard:
            # Part of a line: collect it (joined once, when its newline comes).
            self.pending.append(data)
            self.plen += len(data)
            if self.plen > MAX_EVENT_BYTES + 1:  # + 1: a "\r" that may precede the newline
                self.stats.count_malformed("too_large")
                self.discard = True
                self.offset += self.plen
                self.pending = []
                self.plen = 0
            return
        buf = self.take(data)
        base = self.offset
        if self.discard:
            newline = buf.find(b"\n")
            if newline < 0:
                self.offset = base + len(buf)
                return
            self.discard = False
            base += newline + 1
            buf = buf[newline + 1 :]
        lines = buf.split(b"\n")
        rest = lines.pop()
        end = base + len(buf) - len(rest)
        if lines:
            self._lines(lines, base, end)
        self.offset = end
        if rest:
            if len(rest) > MAX_EVENT_BYTES + 1:  # + 1: a "\r" that may precede the newline
                self.stats.count_malformed("too_large")
                self.discard = True
                self.offset = end + len(rest)
            else:
                self.hold(rest)

    def _lines(self, lines: list[bytes], base: int, end: int) -> None:
        """Events of ``lines`` (newline-separated from stream offset ``base`` to ``end``)."""
        timestamp = int(time.time() * 1000) if self.ingestion else READ_FROM_MESSAGE
        light = self.light
        group = self.group
        batch_size = self.batch_size
        count_malformed = self.stats.count_malformed
        events = self.events
        append = events.append
        first = 0  # index of the first line after the last cut
        for i, line in enumerate(lines):
            if not line:
                continue
            if line[-1] == 13:  # "\r" of CRLF
                line = line[:-1]
                if not line:
                    continue
            if len(line) > MAX_EVENT_BYTES:
                count_malformed("too_large")
                continue
            try:
                message = line.decode()
            except UnicodeDecodeError:
                count_malformed("invalid_utf8")
                continue
            append(message if light else LogEvent(timestamp, message, group, ""))
            if len(events) >= batch_size:
                base = min(end, base + sum(map(len, lines[first : i + 1])) + (i + 1 - first))
                first = i + 1
                self.ready.append((events, base, 0))
                events = self.events = []
                append = events.append

    # -- JSON ----------------------------------------------------------------------------

    def _feed_json(self, data: bytes) -> None:
        if self.mode == "doc" or b"\n" not in data:
            # A document, or a line, still being collected: join it once, when complete.
            if data:
                self.pending.append(data)
                self.plen += len(data)
            return
        buf = self.take(data)
        if self.offset == 0 and buf[:3] == _BOM:
            self.offset = 3
            buf = buf[3:]
        base = pos = self.offset
        lines = buf.split(b"\n")
        rest = lines.pop()
        for i, line in enumerate(lines):
            start = pos
            pos += len(line) + 1
            if not line or line == b"\r":
                continue
            try:
                value = _loads(line)
            except _JSONDecodeError:
                if line.isspace():
                    continue
                if self.mode is None and _opens_document(line):
                    self.mode = "doc"
                    self.offset = start
                    self.hold(buf[start - base :])
                    return
                self.mode = "lines"
                self._bad_json(line)
                continue
            self.mode = "lines"
            self._items(value, start, pos)
        self.offset = pos
        self.hold(rest)

    def _end_json(self, final: bool) -> None:
        if self.mode == "doc":
            document = self.take()
            try:
                value = _loads(document)
            except _JSONDecodeError:
                if not final:
                    self.hold(document)
                    return  # maybe still being written
                self._bad_json(document)
                value = None
            start = self.offset
            self.offset = start + len(document)
            self.mode = None
            if value is not None:
                self._items(value, start, self.offset)
            self.skip = 0
        elif final and self.pending:
            line = self.take()
            start = self.offset
            self.offset = start + len(line)
            if line.strip():
                try:
                    value = _loads(line)
                except _JSONDecodeError:
                    self._bad_json(line)
                else:
                    self.mode = "lines"
                    self._items(value, start, self.offset)

    def _bad_json(self, raw: bytes) -> None:
        try:
            raw.decode()
        except UnicodeDecodeError:
            self.stats.count_malformed("invalid_utf8")
        else:
            self.stats.count_malformed("invalid_json")

    def _items(self, value: Any, start: int, end: int) -> None:
        """Events of the JSON ``value`` found between stream offsets ``start`` and ``end``."""
        if self.fmt == "cloudwatch_events":
            items = _json_items(value, "events", ("message", "timestamp"))
            make: Callable[[Any], LogEvent | None] = self._cloudwatch_event
        else:
            items = _json_items(value, "Records", ("eventTime", "eventVersion"))
            make = self._cloudtrail_event
        first = self.skip
        self.skip = 0
        if items is None:
            self.stats.count_malformed("invalid_json")
            return
        events = self.events
        batch_size = self.batch_size
        n = len(items)
        k = first
        while k < n:
            event = make(items[k])
            k += 1
            if event is not None:
                events.append(event)
                if len(events) >= batch_size:
                    self.ready.append((events, start, k) if k < n else (events, end, 0))
                    events = self.events = []

    def _cloudwatch_event(self, item: Any) -> LogEvent | None:
        if type(item) is not dict:
            self.stats.count_malformed("invalid_json")
            return None
        message = item.get("message")
        timestamp = item.get("timestamp")
        if type(message) is not str or timestamp is None:
            self.stats.count_malformed("invalid_json")
            return None
        if type(timestamp) is not int:
            timestamp = _coerce_ms(timestamp)
            if timestamp is None:
                self.stats.count_malformed("bad_timestamp")
                return None
        if len(message) > MAX_EVENT_BYTES // 4 and len(message.encode()) > MAX_EVENT_BYTES:
            self.stats.count_malformed("too_large")
            return None
        stream = item.get("logStreamName")
        return LogEvent(timestamp, message, self.group, stream if type(stream) is str else "")

    def _cloudtrail_event(self, record: Any) -> LogEvent | None:
        if type(record) is not dict:
            self.stats.count_malformed("invalid_json")
            return None
        event_time = record.get("eventTime")
        if event_time is None:
            self.stats.count_malformed("invalid_json")
            return None
        timestamp = self._times.get(event_time) if type(event_time) is str else None
        if timestamp is None:
            timestamp = iso8601_ms(event_time)
            if timestamp is None:
                self.stats.count_malformed("bad_timestamp")
                return None
            if len(self._times) >= 4096:
                self._times.clear()
            self._times[event_time] = timestamp
        message = _dumps(record)
        if len(message) > MAX_EVENT_BYTES:
            self.stats.count_malformed("too_large")
            return None
        account = record.get("recipientAccountId")
        region = record.get("awsRegion")
        stream = f"{account}_CloudTrail_{region}" if type(account) is str and type(region) is str else ""
        return LogEvent(timestamp, message.decode(), self.group, stream)


def _json_items(value: Any, list_key: str, item_keys: tuple[str, str]) -> list | tuple | None:
    """The items of a JSON value: ``value[list_key]`` (``events`` of ``aws logs
    filter-log-events`` output, ``Records`` of a CloudTrail file), a bare item (an object
    with one of ``item_keys``), or a JSON array of items; None if it has none."""
    if type(value) is dict:
        items = value.get(list_key)
        if items is not None:
            return items if type(items) is list else None
        if item_keys[0] in value or item_keys[1] in value:
            return (value,)
        return None
    if type(value) is list:
        return value
    return None


def _coerce_ms(value: Any) -> int | None:
    """An epoch-ms ``timestamp`` given as an integral float or a decimal string, else None."""
    if type(value) is float:
        return int(value) if value.is_integer() else None
    if type(value) is str:
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# Files


class _File:
    """One file being read, identified by (device, inode) whatever its name."""

    __slots__ = (
        "dev",
        "done",
        "expect",
        "failed",
        "fd",
        "gone",
        "gz",
        "gzf",
        "head",
        "hot",
        "incomplete",
        "ino",
        "key",
        "mtime_ns",
        "orphan",
        "parser",
        "path",
        "resumed",
        "size",
        "truncated",
    )

    def __init__(self, path: str, st: os.stat_result, parser: _Parser) -> None:
        self.path = path
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.key = f"{st.st_dev}:{st.st_ino}"
        self.size = st.st_size
        self.mtime_ns = st.st_mtime_ns
        self.parser = parser
        self.fd: int | None = None
        self.gzf: gzip.GzipFile | None = None
        self.gz: bool | None = None  # None: not known yet
        self.head = b""  # the first HEAD_BYTES bytes, as far as known
        self.expect: list | None = None  # checkpointed [length, crc32] of the head, to verify
        self.done = False  # gzip: fully consumed
        self.failed = False  # unreadable (counted once)
        self.gone = False  # following: no matching path leads to it any more
        self.orphan = False  # found on resume under a name outside the glob: finish, then drop
        self.hot = False  # the last read filled a whole chunk: read again without waiting
        self.incomplete: tuple[int, int] | None = None  # gzip cut short at (size, mtime_ns)
        self.truncated = False  # following: found truncated by its first bytes
        self.resumed = False  # partly read before, according to the checkpoint

    def entry(self, offset: int, skip: int) -> dict[str, Any]:
        """Checkpoint entry for this file consumed up to ``offset`` (+ ``skip`` items)."""
        entry: dict[str, Any] = {"path": self.path, "dev": self.dev, "ino": self.ino, "offset": offset}
        if skip:
            entry["skip"] = skip
        if self.gz:
            entry["gz"] = True
            entry["size"] = self.size
            entry["mtime_ns"] = self.mtime_ns
            if self.done and offset == self.parser.offset and not skip:
                entry["done"] = True  # (not in the positions of the batches before the last)
        else:
            if self.parser.discard and offset == self.parser.offset:
                entry["discard"] = True
            length = min(HEAD_BYTES, offset)
            if len(self.head) < length and self.fd is not None:
                try:
                    self.head = os.pread(self.fd, HEAD_BYTES, 0)
                except OSError:
                    pass
            length = min(length, len(self.head))
            entry["head"] = [length, zlib.crc32(self.head[:length])]
        return entry

    def close(self) -> None:
        if self.gzf is not None:
            try:
                self.gzf.close()
            except Exception:  # a truncated stream may complain on close
                pass
            self.gzf = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _gz_read(gzf: gzip.GzipFile, size: int, skip: int) -> bytes:
    """Discard ``skip`` decompressed bytes, then read up to ``size`` (runs in a thread)."""
    while skip > 0:
        data = gzf.read(min(skip, size))
        if not data:
            return b""
        skip -= len(data)
    return gzf.read(size)


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class Source:
    """Reads the log events of one :class:`SourceSpec`.

    Args:
        spec: what to read.
        stats: counters; malformed events and unreadable files are counted in
            ``stats.malformed`` (``stats.events_read`` is left to the caller).
        positions: a checkpoint from :meth:`positions` (or from ``EventBatch.position``) of
            an earlier run on the same spec; reading resumes right after the last event
            yielded then. ``None`` or ``{}``: read every file from its beginning.
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: an invalid spec (unknown type or format, a file source without a path),
            ``batch_size`` < 1, or ``positions`` not of the shape :meth:`positions` returns.

    Attributes:
        name: ``"file:<path>"`` or ``"stdin:-"``; the ``source`` of every batch.
        poll_interval: seconds between looks at the files while following (default
            :data:`POLL_INTERVAL_S`).
        chunk_bytes: bytes per read (default :data:`CHUNK_BYTES`).

    Checkpoints (files): ``{"v": 1, "files": {"<dev>:<ino>": entry}}``, one entry per file
    identity known (found by the glob, even if nothing of it was yielded yet: then at offset
    0; or rotated away and still being finished), ``entry = {"path", "dev", "ino", "offset",
    ...}``: ``path`` is where the file was last seen; ``offset`` is the number of
    bytes consumed (decompressed bytes for gzip) up to the end of the last line or document
    whose events were all yielded; ``skip`` (if present) the number of events/records of the
    JSON value at ``offset`` already yielded; ``head`` ``[n, crc32]`` of the file's first
    ``n`` bytes, checked on resume so a reused inode is not mistaken for the old file;
    ``discard`` (if present): the rest of an over-long line is being skipped; gzip files
    have ``gz``, ``size``, ``mtime_ns`` and ``done`` once fully consumed. stdin has no
    checkpoint (``{}``).
    """

    def __init__(
        self,
        spec: SourceSpec,
        stats: Stats,
        positions: dict | None = None,
        batch_size: int = 1000,
    ) -> None:
        if spec.type not in _TYPES:
            raise ValueError(f"source type must be one of {', '.join(_TYPES)}, not {spec.type!r}")
        if spec.format not in _FORMATS:
            raise ValueError(f"source format must be one of {', '.join(_FORMATS)}, not {spec.format!r}")
        if spec.type == "file" and not spec.path:
            raise ValueError("a file source needs a path")
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.spec = spec
        self.stats = stats
        self.batch_size = batch_size
        self.name = f"{spec.type}:{spec.path or '-'}"
        self.poll_interval = POLL_INTERVAL_S
        self.chunk_bytes = CHUNK_BYTES
        self._checkpoint = _check_positions(positions)
        self._files: dict[str, _File] = {}
        self._committed: dict[str, dict[str, Any]] = {}
        self._bad_paths: set[str] = set()
        self._progress = False
        self._last_scan = 0.0
        if spec.type == "stdin":
            self._last: dict[str, Any] = {}
        else:
            self._last = {"v": POSITIONS_VERSION, "files": dict(self._checkpoint)}

    def positions(self) -> dict:
        """The checkpoint after every batch yielded so far (before any: the one given).

        A JSON-able dict (shape in the class docstring); a new ``Source`` given it reads
        exactly the events after the last batch yielded. ``{}`` for stdin.
        """
        if not self._last:
            return {}
        return {"v": POSITIONS_VERSION, "files": dict(self._last["files"])}

    async def batches(self, *, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """Yield the source's events in batches of at most ``batch_size``.

        Args:
            follow: ``False``: read every matching file once to its end (a partial last line
                is an event) and return. ``True``: keep reading like ``tail -F`` (appended
                data, rotation, truncation, new files matching the glob; a partial last line
                waits for its newline) until ``stop`` is set. stdin always ends at EOF.
            stop: set it to end the iteration promptly; events not yet yielded are not
                consumed (a restart from :meth:`positions` reads them).

        A batch may have no events: it then only moves the checkpoint forward (a run of
        malformed or empty lines, a gzip file finished). Files are closed when the
        iteration ends (or call :meth:`close`).
        """
        if self.spec.type == "stdin":
            inner = self._stdin_batches(stop)
        else:
            inner = self._file_batches(follow, stop)
        async with contextlib.aclosing(inner):
            async for batch in inner:
                yield batch

    def close(self) -> None:
        """Close every open file (done automatically when :meth:`batches` ends)."""
        for f in self._files.values():
            f.close()

    # -- file discovery ------------------------------------------------------------------

    def _pattern(self) -> str:
        return os.path.expanduser(self.spec.path or "")

    def _scan(self, follow: bool, initial: bool) -> None:
        """Look for matching files: new ones, renamed, rotated away, truncated."""
        self._last_scan = time.monotonic()
        pattern = self._pattern()
        magic = _has_magic(pattern)
        paths = sorted(_glob.glob(pattern, recursive=True)) if magic else [pattern]
        seen: set[str] = set()
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if initial and not follow and not magic:
                    self.stats.count_malformed("unreadable_file")
                continue
            except OSError:
                if path not in self._bad_paths:
                    self._bad_paths.add(path)
                    self.stats.count_malformed("unreadable_file")
                continue
            if not _stat.S_ISREG(st.st_mode):
                continue
            key = f"{st.st_dev}:{st.st_ino}"
            if key in seen:
                continue
            seen.add(key)
            f = self._files.get(key)
            if f is None:
                self._files[key] = self._new_file(path, st)
            else:
                f.path = path
                f.gone = False
                if st.st_size != f.size and f.fd is not None and f.head and not f.gz:
                    # Truncated and written again since the last look (copytruncate, then
                    # more lines): the size alone may not tell, the first bytes do.
                    try:
                        if os.pread(f.fd, len(f.head), 0) != f.head:
                            f.truncated = True
                    except OSError:
                        pass
                f.size = st.st_size
                f.mtime_ns = st.st_mtime_ns
        if not initial:
            for key, f in list(self._files.items()):
                if key in seen or f.orphan:
                    continue
                if f.fd is not None and not f.done and not f.failed and not f.gz:
                    f.gone = True  # rotated away or deleted: finish it through the open file
                else:
                    self._drop(f)

    def _new_file(self, path: str, st: os.stat_result) -> _File:
        f = _File(path, st, _Parser(self.spec, self.stats, self.batch_size))
        entry = self._checkpoint.pop(f.key, None)
        if entry is not None and self._resume(f, entry, st):
            self._committed[f.key] = entry
        else:
            # Known from now on, even before anything of it is yielded: if it is rotated away
            # while we are down, a restart still finds it (by inode) and reads it.
            self._committed[f.key] = f.entry(0, 0)
        return f

    def _resume(self, f: _File, entry: dict[str, Any], st: os.stat_result) -> bool:
        """Apply a checkpoint entry of the same inode; False if the file is not that file."""
        offset = entry["offset"]
        if entry.get("gz"):
            if entry.get("done"):
                # A finished gzip file is skipped while it is the very same file.
                if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
                    return False
                f.done = True
            elif st.st_size < entry.get("size", 0):
                return False  # a gzip file read in part can only have grown since
            f.gz = True
        elif offset > st.st_size:
            return False  # truncated while we were away
        else:
            if offset:  # (at 0, nothing was read: gzip or not is still to be seen)
                f.gz = False
            f.expect = entry.get("head")
        f.resumed = bool(offset or entry.get("skip"))
        f.parser.offset = offset
        f.parser.skip = entry.get("skip", 0)
        f.parser.discard = bool(entry.get("discard", False))
        return True

    def _adopt_orphans(self) -> None:
        """Checkpointed files no longer matching the glob (rotated while down): finish them."""
        for key, entry in list(self._checkpoint.items()):
            if entry.get("done") or key in self._files:
                continue
            directory = os.path.dirname(entry["path"]) or "."
            try:
                with os.scandir(directory) as it:
                    for dirent in it:
                        if dirent.inode() != entry["ino"] or not dirent.is_file():
                            continue
                        st = dirent.stat()
                        if st.st_dev != entry["dev"] or st.st_ino != entry["ino"]:
                            continue
                        f = _File(dirent.path, st, _Parser(self.spec, self.stats, self.batch_size))
                        more = entry.get("gz") or st.st_size > entry["offset"]
                        if more and self._resume(f, entry, st):
                            f.orphan = True
                            self._files[key] = f
                            self._committed[key] = entry
                        break
            except OSError:
                continue

    def _drop(self, f: _File) -> None:
        f.close()
        self._files.pop(f.key, None)
        self._committed.pop(f.key, None)

    # -- reading -------------------------------------------------------------------------

    async def _file_batches(self, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        try:
            self._scan(follow, initial=True)
            self._adopt_orphans()
            # Files known from the checkpoint are older than new ones: finish them first.
            self._files = dict(sorted(self._files.items(), key=lambda item: not item[1].resumed))
            while not stop.is_set():
                self._progress = False
                # Files rotated away first: finish the old file, then read the new one.
                for f in sorted(self._files.values(), key=lambda f: not (f.gone or f.orphan)):
                    async with contextlib.aclosing(self._drain(f, follow, stop)) as drained:
                        async for batch in drained:
                            self._last = batch.position
                            yield batch
                            if stop.is_set():
                                return
                    if stop.is_set():
                        return
                if not follow:
                    return
                if not self._progress:
                    try:
                        async with asyncio.timeout(self.poll_interval):
                            await stop.wait()
                    except TimeoutError:
                        pass
                if time.monotonic() - self._last_scan >= self.poll_interval and not stop.is_set():
                    self._scan(follow, initial=False)
        finally:
            self.close()

    def _open(self, f: _File, follow: bool) -> bool:
        try:
            fd = os.open(f.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            self._fail(f)
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            # Replaced between the look and the open: following, the next look finds it.
            os.close(fd)
            if follow:
                self._drop(f)
            else:
                self._fail(f)
            return False
        f.fd = fd
        try:
            if f.gz is None and st.st_size >= 2:
                f.gz = os.pread(fd, 2, 0) == _GZIP_MAGIC
            if f.expect:
                length, crc = f.expect
                f.expect = None
                head = os.pread(fd, length, 0)
                if len(head) != length or zlib.crc32(head) != crc:
                    if f.orphan:
                        self._drop(f)  # not the file we were reading after all
                        return False
                    f.parser.reset()  # another file under a reused inode: from its start
        except OSError:
            self._fail(f)
            return False
        return True

    def _fail(self, f: _File) -> None:
        if not f.failed:
            f.failed = True
            self.stats.count_malformed("unreadable_file")
        f.close()

    def _batches_ready(self, f: _File) -> list[EventBatch]:
        """EventBatches of the parser's ready cuts, each with its checkpoint snapshot."""
        out = []
        light, group = f.parser.light, f.parser.group
        for events, offset, skip in f.parser.ready:
            self._committed[f.key] = f.entry(offset, skip)
            position = {"v": POSITIONS_VERSION, "files": dict(self._committed)}
            if light:
                out.append(EventBatch(self.name, [], position, messages=events, log_group=group))
            else:
                out.append(EventBatch(self.name, events, position))
        f.parser.ready = []
        return out

    def _flush(self, f: _File) -> list[EventBatch]:
        """Cut the events gathered so far; or an empty batch if only the position moved."""
        p = f.parser
        p.cut()
        if p.ready:
            return self._batches_ready(f)
        previous = self._committed.get(f.key)
        entry = f.entry(p.offset, p.skip)
        if entry == previous:
            return []
        self._committed[f.key] = entry
        return [EventBatch(self.name, [], {"v": POSITIONS_VERSION, "files": dict(self._committed)})]

    async def _drain(self, f: _File, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """Read ``f`` up to its current end (a bounded number of chunks while following)."""
        if f.done or f.failed:
            return
        if f.fd is None:
            if follow and f.size < 2 and f.gz is None and not f.gone:
                return  # too short to tell gzip from text yet
            if not self._open(f, follow):
                return
        if f.gz:
            async with contextlib.aclosing(self._drain_gz(f, follow, stop)) as drained:
                async for batch in drained:
                    yield batch
            return
        p = f.parser
        if follow and not f.gone and (f.truncated or f.size < p.read_pos):
            f.truncated = False
            # Truncated (f.size is from a look after the last read, see below): what was
            # held is all there will be of that line; start over.
            p.end(final=True)
            p.reset()
            f.head = b""
            f.hot = True
            for batch in self._flush(f):
                yield batch
        final = not follow or f.orphan
        if follow and not (f.gone or f.orphan or f.hot) and f.size <= p.read_pos:
            return  # nothing new since the last look
        chunks = 0
        eof = False
        fd = f.fd
        size = self.chunk_bytes
        while True:
            pos = p.read_pos
            try:
                data = await asyncio.to_thread(os.pread, fd, size, pos)
            except OSError:
                self._fail(f)
                return
            if not data:
                eof = True
                break
            if pos == 0:
                f.head = data[:HEAD_BYTES]
            self._progress = True
            p.feed(data)
            if p.ready:
                for batch in self._batches_ready(f):
                    yield batch
            if stop.is_set():
                return
            chunks += 1
            if len(data) < size:
                eof = True
                break
            if follow and chunks >= _CHUNKS_PER_ROUND:
                break
        # The file is at least as long as what was read: a later look that finds it shorter
        # means it was truncated.
        f.size = max(f.size, p.read_pos)
        f.hot = not eof
        if eof:
            # A file rotated away (or deleted) is finished at its end, like tail -F does,
            # before the file now under its name is read.
            finished = final or f.gone
            p.end(final=finished)
            for batch in self._flush(f):
                yield batch
            if finished and follow:
                self._drop(f)
            elif not follow:
                f.close()
        else:
            for batch in self._flush(f):
                yield batch

    async def _drain_gz(self, f: _File, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """Read a gzip file to its end, once (a gzip file is complete when written)."""
        p = f.parser
        skip = 0
        if f.incomplete is not None:
            if f.incomplete == (f.size, f.mtime_ns):
                return  # still being written
            f.incomplete = None
        if f.gzf is None:
            assert f.fd is not None
            os.lseek(f.fd, 0, os.SEEK_SET)
            f.gzf = gzip.GzipFile(fileobj=io.FileIO(f.fd, "rb", closefd=False), mode="rb")
            skip = p.read_pos
        size = self.chunk_bytes
        while True:
            try:
                data = await asyncio.to_thread(_gz_read, f.gzf, size, skip)
            except EOFError:  # the stream ends early: not (yet) a complete gzip file
                if follow:
                    f.incomplete = (f.size, f.mtime_ns)
                    f.gzf.close()
                    f.gzf = None
                    for batch in self._flush(f):
                        yield batch
                    return
                # Counted, but not marked done: a later run resumes it if it was completed.
                self._gz_failed(f, done=False)
                break
            except (OSError, zlib.error):
                self._gz_failed(f, done=True)
                break
            skip = 0
            if not data:
                p.end(final=True)
                f.done = True
                break
            self._progress = True
            p.feed(data)
            if p.ready:
                for batch in self._batches_ready(f):
                    yield batch
            if stop.is_set():
                return
        for batch in self._flush(f):
            yield batch
        f.close()

    def _gz_failed(self, f: _File, done: bool) -> None:
        """A corrupt or truncated gzip file: counted, its events so far kept."""
        self.stats.count_malformed("unreadable_file")
        f.parser.take()  # a partial last line of a broken stream is not an event
        f.parser.mode = None
        f.done = done

    # -- stdin ---------------------------------------------------------------------------

    async def _stdin_batches(self, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        stream = sys.stdin.buffer
        read = getattr(stream, "read1", None) or stream.read
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        credit = threading.Semaphore(4)  # chunks read ahead at most: bounded memory
        size = self.chunk_bytes

        def reader() -> None:
            # A daemon thread: a read blocked on an idle pipe never holds up shutdown.
            while True:
                credit.acquire()
                try:
                    data: bytes | BaseException = read(size)
                except (OSError, ValueError) as exc:
                    data = exc
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, data)
                except RuntimeError:  # the loop is closed
                    return
                if not data or isinstance(data, BaseException):
                    return

        threading.Thread(target=reader, name=f"castlewatch-{self.name}", daemon=True).start()
        p = _Parser(self.spec, self.stats, self.batch_size)
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
                if isinstance(data, BaseException):
                    self.stats.count_malformed("unreadable_file")
                    data = b""
                if data:
                    p.feed(data)
                else:
                    p.end(final=True)
                p.cut()
                for events, _, _ in p.ready:
                    if p.light:
                        yield EventBatch(self.name, [], {}, messages=events, log_group=p.group)
                    else:
                        yield EventBatch(self.name, events, {})
                p.ready = []
                if not data:
                    return
        finally:
            if stop_wait is not None:
                stop_wait.cancel()


def _check_positions(positions: Any) -> dict[str, dict[str, Any]]:
    """The ``files`` entries of a checkpoint, copied; ValueError if it is not one."""
    if not positions:
        return {}
    if not isinstance(positions, dict) or positions.get("v") != POSITIONS_VERSION:
        raise ValueError(f"positions must be a checkpoint of version {POSITIONS_VERSION} from Source.positions()")
    files = positions.get("files")
    if not isinstance(files, dict):
        raise ValueError("positions must have a 'files' mapping")
    out = {}
    for key, entry in files.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or type(entry.get("dev")) is not int
            or type(entry.get("ino")) is not int
            or type(entry.get("offset")) is not int
            or entry["offset"] < 0
        ):
            raise ValueError(f"positions entry {key!r} is not a file position")
        out[key] = dict(entry)
    return out
