"""One archive object (a file, an S3 object) read as events, in memory bounded by its records.

A CloudTrail object is one JSON document, ``{"Records": [record, ...]}``, often tens of MB
on one line. Read as a file source reads it (:class:`~castlewatch.engine.formats.StreamParser`
collects a document until it parses), the whole document and every record's Python objects
are held at once: 367 MB of RSS for a 53 MB object. :func:`object_batches` streams it
instead: it decompresses the object chunk by chunk and parses one record at a time with
orjson (a window of the bytes that starts at a record is parsed; orjson says where the
record ends), so what is held is a chunk, the record being parsed and one batch of events.

The events and counts are exactly those the file source gives for the same bytes
(:mod:`castlewatch.engine.formats`): each record becomes an event by the same code
(:meth:`~castlewatch.engine.formats.StreamParser.record_event`). When an object is not the
plain shape (a byte order mark or whitespace are fine; JSON Lines, several documents, a
record that does not parse, keys after ``Records``, a corrupt gzip stream), the streaming
stops, :data:`RESTART` is yielded, and the object is read again from its start by a
``StreamParser``, exactly as a replay reads it (holding that document whole, as a replay
does): whoever consumes the batches drops what it took from the object before
:data:`RESTART`. Objects of the other formats (``flow_log_file``, ``lines``, ...) are read
by a ``StreamParser`` from the start: they are line by line, bounded already.

A gzip object is recognised by its magic bytes, as a file source does. A corrupt or
truncated gzip stream is counted ``unreadable_file`` and the events read before the damage
are kept, as a replay keeps them; :class:`ObjectBatch` ``damaged`` says so. An object that
cannot be opened or read (an ``OSError`` of the storage, not of the gzip data) raises.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from castlewatch.engine.formats import StreamParser
from castlewatch.model import LogEvent

#: Decompressed bytes taken from an object per read.
CHUNK_BYTES = 1 << 20
#: Yielded by :func:`object_batches` when the object is read again from its start.
RESTART = object()

_GZIP_MAGIC = b"\x1f\x8b"
_HEAD = re.compile(rb'(?:\xef\xbb\xbf)?[ \t\r\n]*\{[ \t\r\n]*"Records"[ \t\r\n]*:[ \t\r\n]*\[[ \t\r\n]*')
_HEAD_BYTES = 64  # enough to see the head above (with a BOM and some whitespace)
_BLANK = b" \t\r\n"
_FIRST_WINDOW = 1 << 14
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(slots=True)
class ObjectBatch:
    """Events of one object, in order, with the malformed input counted since the last
    batch (reason -> count, or None); ``damaged``: the gzip stream broke (counted
    ``unreadable_file``), nothing follows."""

    events: list[LogEvent]
    malformed: dict[str, int] | None = None
    damaged: bool = False


class _Fallback(Exception):
    """The object is not of the plain shape: read it with a StreamParser."""


def object_batches(open_object: Callable[[], IO[bytes]], spec: Any, batch_size: int = 1000) -> Iterator[Any]:
    """The events of one object as :class:`ObjectBatch` es, or :data:`RESTART` once (module
    docstring).

    Args:
        open_object: opens the object for reading, from its start (raw bytes; gzip or
            not); called again after :data:`RESTART`. What it returns is closed here.
        spec: the source's spec (``format``, ``log_group``), as a file source takes it.
        batch_size: most events in one batch.

    Raises:
        OSError: the object cannot be opened or read (not a damaged gzip stream, which is
            counted).
    """
    if spec.format == "cloudtrail_archive":
        parser = StreamParser(spec, batch_size)
        try:
            yield from _records(open_object, parser, batch_size)
            return
        except _Fallback:
            yield RESTART
    yield from _parsed(open_object, spec, batch_size)


def _chunks(raw: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of ``raw`` (gzip by its magic bytes, else as they are)."""
    head = raw.read(2)
    if head == _GZIP_MAGIC:
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")
    else:
        if head:
            yield head
        stream = raw
    while True:
        data = stream.read(CHUNK_BYTES)
        if not data:
            return
        yield data


def _parsed(open_object: Callable[[], IO[bytes]], spec: Any, batch_size: int) -> Iterator[ObjectBatch]:
    """The object through a StreamParser, as a file source reads it once (replay)."""
    parser = StreamParser(spec, batch_size)
    damaged = False
    with open_object() as raw:
        chunks = _chunks(raw)
        while True:
            try:
                data = next(chunks, None)
            except _GZIP_ERRORS as err:
                if not _is_gzip_error(err):
                    raise
                # as FileSource._gz_failed: counted, a partial line or document dropped
                parser.stats.count_malformed("unreadable_file")
                parser.take()
                parser.mode = None
                damaged = True
                break
            if data is None:
                parser.end(final=True)
                break
            parser.feed(data)
            for events, _, _, counts in parser.ready:
                yield ObjectBatch(events, counts)
            parser.ready = []
    parser.cut()
    for events, _, _, counts in parser.ready:
        yield ObjectBatch(events, counts)
    counts = parser.counts()
    if counts or damaged:
        yield ObjectBatch([], counts, damaged)


def _is_gzip_error(err: BaseException) -> bool:
    """A damaged gzip stream (``gzip.BadGzipFile``, a truncated stream, zlib's errors), as
    opposed to the storage failing (any other ``OSError``)."""
    return isinstance(err, (gzip.BadGzipFile, EOFError, zlib.error))


def _records(open_object: Callable[[], IO[bytes]], parser: StreamParser, batch_size: int) -> Iterator[ObjectBatch]:
    """A ``{"Records": [...]}`` object, one record at a time; :class:`_Fallback` when it is
    not of that plain shape (nothing of it is then to be kept)."""
    with open_object() as raw:
        chunks = _chunks(raw)

        def more() -> bytes | None:
            try:
                return next(chunks, None)
            except _GZIP_ERRORS as err:
                if _is_gzip_error(err):
                    raise _Fallback from err
                raise

        buf = b""
        while len(buf) < _HEAD_BYTES:
            data = more()
            if data is None:
                break
            buf += data
        head = _HEAD.match(buf)
        if head is None:
            raise _Fallback
        i = head.end()
        events: list[LogEvent] = []
        window = _FIRST_WINDOW
        expect_record = True  # after "[" or ",": a record (or "]" right after "[")
        first = True
        while True:
            # skip blanks; get more when the buffer runs out
            while True:
                while i < len(buf) and buf[i] in _BLANK:
                    i += 1
                if i < len(buf):
                    break
                data = more()
                if data is None:
                    raise _Fallback  # the document ends before "]}"
                buf, i = buf[i:] + data, 0
            c = buf[i]
            if c == 93 and (first or not expect_record):  # "]"
                i += 1
                break
            if expect_record:
                if c != 123:  # "{": records are objects
                    raise _Fallback
                while True:
                    end = _record_end(buf, i, window)
                    if end > 0:
                        break
                    data = more()
                    if data is None:
                        raise _Fallback
                    buf, i = buf[i:] + data, 0
                record = orjson.loads(buf[i:end])
                window = max(_FIRST_WINDOW, 2 * (end - i))
                i = end
                event = parser.record_event(record)
                if parser.stats.malformed.get("too_deep"):
                    # deeper than orjson writes: in the whole document it may be deeper than
                    # orjson reads too (the document invalid): as a replay reads it
                    raise _Fallback
                if event is not None:
                    events.append(event)
                    if len(events) >= batch_size:
                        yield ObjectBatch(events, parser.counts())
                        events = []
                expect_record = False
                first = False
            elif c == 44:  # ","
                i += 1
                expect_record = True
            else:
                raise _Fallback
            if i > CHUNK_BYTES:  # drop what was consumed
                buf, i = buf[i:], 0
        rest = buf[i:]
        while True:  # "}" and nothing but blanks to the end
            data = more()
            if data is None:
                break
            rest += data
            if len(rest) > CHUNK_BYTES:
                break
        if rest.strip(_BLANK) != b"}":
            raise _Fallback
    yield ObjectBatch(events, parser.counts())


def _record_end(buf: bytes, i: int, window: int) -> int:
    """The end of the JSON value that starts at ``buf[i]`` ("{"), or 0 if it does not end
    within ``buf``. Parsed in growing windows: orjson says where a complete value is
    followed by more ("unexpected content after document"), or that the window ends
    inside it. Raises :class:`_Fallback` if the bytes cannot be a value."""
    while True:
        end = min(len(buf), i + window)
        text = buf[i:end]
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as err:
            doc, pos = err.doc, err.pos
            if err.msg.startswith("unexpected content after document") and isinstance(doc, str):
                at = pos if len(doc) == len(text) else len(doc[:pos].encode("utf-8", "surrogatepass"))
                return i + at
            if end < len(buf) and _ended_early(err, text):
                window *= 4
                continue
            if end == len(buf) and _ended_early(err, text):
                return 0
            raise _Fallback from err
        return end


def _ended_early(err: orjson.JSONDecodeError, text: bytes) -> bool:
    """Whether ``text`` is the valid start of a value that goes on past its end."""
    doc, pos = err.doc, err.pos
    if not isinstance(doc, str) or not doc:
        return len(text) > 0 and _valid_utf8_prefix(text)  # cut inside a UTF-8 sequence
    return pos >= len(doc)


def _valid_utf8_prefix(text: bytes) -> bool:
    """Whether ``text`` is valid UTF-8 but for a sequence cut at its very end."""
    try:
        text.decode()
    except UnicodeDecodeError as bad:
        return bad.end == len(text) and bad.reason == "unexpected end of data"
    return True
