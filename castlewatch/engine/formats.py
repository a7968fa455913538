"""How a source's bytes become log events: the formats of ``SourceSpec.format``.

``lines``
    One event per line, the line without its ``\\n`` and without one ``\\r`` before it (CRLF).
    Empty lines are not events; a UTF-8 byte order mark at the very start of the stream is
    not part of the first line (as in the JSON formats). ``LogEvent.timestamp`` is
    ``READ_FROM_MESSAGE`` ("take it from the message", done by the evaluator), or the
    ingestion time (now, epoch ms) with ``ingestion_time``.
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

``flow_log_file``
    VPC Flow Logs as delivered to S3 (``*.log.gz``, text): the first line is a header of the
    record's field names (``version account-id interface-id srcaddr ... start end action
    log-status``, any custom format), not an event; every other line is one event, read as a
    ``lines`` line is (the message is the record as it is, as in CloudWatch Logs). The
    timestamp is the record's ``start`` field (epoch seconds, the start of its capture window)
    in epoch ms, found by its name in the header; the log stream its ``interface-id`` (as
    CloudWatch Logs names flow-log streams), ``""`` when the header has none. A first line
    that is not a header naming ``start`` (names of lower-case letters, digits and ``-``) is
    counted ``invalid_header``, and every record of the stream then ``bad_timestamp``; a record
    whose ``start`` is missing or not a whole number of seconds is counted ``bad_timestamp``.
    A checkpoint holds the header (:attr:`StreamParser.header`), so a resumed stream reads on.

The JSON formats read a sequence of JSON values, concatenated (two ``aws logs`` outputs
appended to one file are both read) and separated by whitespace or newlines (or a comma
after a value that ends mid-line). A line that is one value is read as such (JSON Lines).
A line that is the valid start of a value, not a whole one (``{``, ``{"events": [``, or a
truncated line), starts a document: the lines from there are collected until they parse
as one value (read; what follows it on its last line is read on), or until orjson finds
they cannot be one (an error before the end of the lines collected: then that first line
is one ``invalid_json`` and the lines after it are read on their own, each of which may
start a value again, so every whole event is read and each bad line counted once). A
document not whole at the end of the data is split in the same way; while following, so
is one that grows over :data:`MAX_DOCUMENT_BYTES` without parsing (the most a source holds
in memory for one document; a gzip file, complete when written, has no such limit).

Malformed input is counted in :class:`~castlewatch.model.Stats` ``malformed`` and
skipped, never raised: ``invalid_utf8``, ``too_large`` (a message over
:data:`MAX_EVENT_BYTES` of UTF-8), ``invalid_json`` (a JSON line or document that does not
parse, is not of the expected shape, or lacks the message or timestamp), ``too_deep`` (a
CloudTrail record nested deeper than orjson writes, 254 levels, so it cannot be the
message; orjson reads up to 1024, deeper is ``invalid_json``), ``bad_timestamp`` (a
timestamp present but unusable), ``invalid_header`` (``flow_log_file``: see there). Each
count travels with the first
:class:`~castlewatch.model.EventBatch` whose position is past the input counted
(``EventBatch.malformed``).

:class:`StreamParser` reads one byte stream (a file, a gzip file's decompressed bytes,
stdin) in whatever pieces it comes, tracking the offset up to which everything has been
turned into events, so that :mod:`castlewatch.engine.sources` can checkpoint it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from castlewatch.model import READ_FROM_MESSAGE, LogEvent, Stats, iso8601_ms

if TYPE_CHECKING:
    from castlewatch.engine.sources import SourceSpec

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_EVENT_BYTES", "StreamParser"]

#: CloudWatch Logs' maximum event size: a longer message (UTF-8 bytes) is counted ``too_large``.
#: The largest log event CloudWatch Logs takes: "Each log event can be no larger than 1 MB",
# with a batch's size counted as UTF-8 message bytes plus 26 bytes per event within
# 1,048,576 bytes (API_PutLogEvents).  It was 256 KB until April 2025.
MAX_EVENT_BYTES = 1_048_576 - 26
#: While following, the most bytes a JSON document is collected over (16 MiB, sixteen events
#: of the largest size) before it is given up as one and read line by line (module docstring).
MAX_DOCUMENT_BYTES = 16 * 1_048_576
_BOM = b"\xef\xbb\xbf"
# A document is first parsed over this many bytes (whole lines), then over 4 times more, ...
_DOC_WINDOW = 1 << 14
_BLANK = b" \t\r"  # JSON whitespace within a line
_OPENERS = b"{["
_JSONDecodeError = orjson.JSONDecodeError
_loads = orjson.loads
_dumps = orjson.dumps


def _ascii_lines() -> Callable[[bytes, int, int], Any] | None:
    """The C line splitter of :meth:`StreamParser._plain_chunk`, or None on the pure-Python
    backend (no extension, or ``CASTLEWATCH_PURE_PYTHON``): both give the same events."""
    from castlewatch.grammar import literals

    if literals.backend() != "c":
        return None
    from castlewatch.grammar import _speedups

    return getattr(_speedups, "ascii_lines", None)


class StreamParser:
    """Turns a byte stream into events, tracking how many bytes are consumed.

    ``offset`` is the number of stream bytes consumed: everything before it has been turned
    into events (or counted as malformed); ``skip`` is the number of items (events or records)
    of the JSON value starting at ``offset`` already turned into events. ``pending`` holds the
    bytes after ``offset`` not consumed yet (a partial line, or a document being collected), as
    a list of pieces (``plen`` bytes) so that a long document is joined once, not per chunk.
    Events gather in ``events``; when ``batch_size`` are there they move to ``ready`` as
    ``(events, offset, skip, malformed)``, the position right after the last of them and the
    malformed input counted before that position since the previous cut (a dict, or None).

    Malformed input is tallied in the parser's own ``stats`` (not the run's): each cut takes
    the tally along, so a count travels with the batch whose position covers its bytes and
    is added to the run's counters when that batch is, never ahead of a checkpoint.

    ``doc_limit`` (while following): the most bytes a JSON document is collected over before
    it is given up and read line by line (:data:`MAX_DOCUMENT_BYTES`); None: no limit (a file
    or stream read once ends, and with it every document).
    """

    __slots__ = (
        "batch_size",
        "check_at",
        "checked",
        "discard",
        "doc_limit",
        "events",
        "fmt",
        "group",
        "header",
        "ingestion",
        "light",
        "mode",
        "offset",
        "pending",
        "plen",
        "ready",
        "skip",
        "stats",
        "_flow",
        "_times",
    )

    def __init__(self, spec: SourceSpec, batch_size: int, doc_limit: int | None = None) -> None:
        self.fmt = spec.format
        self.group = spec.log_group
        self.ingestion = spec.ingestion_time
        # plain lines timed from their messages gather as bare strings (EventBatch.messages)
        self.light = self.fmt == "lines" and not self.ingestion
        self.stats = Stats()  # the malformed tally since the last cut
        self.batch_size = batch_size
        self.doc_limit = doc_limit
        self.offset = 0
        self.skip = 0
        # lines: the rest of a too-long line is being skipped up to its newline.
        self.discard = False
        self.pending: list[bytes] = []
        self.plen = 0
        # JSON formats: None (reading line by line) or "doc" (a value going on past its line
        # is being collected from ``offset``); ``checked``: pending bytes when it was last
        # looked at, ``check_at``: pending bytes at which to look again while reading on.
        self.mode: str | None = None
        self.checked = 0
        self.check_at = 0
        self.events: list[LogEvent] = []
        self.ready: list[tuple[list[LogEvent], int, int, dict[str, int] | None]] = []
        self._times: dict[str, int | None] = {}
        # flow_log_file: the header line (None until read) and (start index, interface-id
        # index or -1), or None for a header without ``start``
        self.header: str | None = None
        self._flow: tuple[int, int] | None = None

    def set_header(self, header: str) -> None:
        """``flow_log_file``: the stream's header line (from a checkpoint, on resume)."""
        self.header = header
        self._flow = _flow_fields(header)

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
        self.checked = 0
        self.check_at = 0
        self.header = None
        self._flow = None

    def counts(self) -> dict[str, int] | None:
        """Take the malformed tally since the last cut (None if nothing was counted)."""
        malformed = self.stats.malformed
        if not malformed:
            return None
        self.stats.malformed = {}
        return malformed

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        if self.fmt == "lines" or self.fmt == "flow_log_file":
            self._feed_lines(data)
        else:
            self._feed_json(data)

    def end(self, final: bool) -> None:
        """No more bytes for now; ``final``: none will come (the partial last line is an event)."""
        if self.fmt == "lines" or self.fmt == "flow_log_file":
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
            self.ready.append((self.events, self.offset, self.skip, self.counts()))
            self.events = []

    # -- lines ---------------------------------------------------------------------------

    def _feed_lines(self, data: bytes) -> None:
        if self.offset == 0 and self.plen < 3 and not self.discard:
            # A UTF-8 byte order mark opening the stream is not part of the first line.
            data = self.take(data)
            if data[:3] == _BOM:
                self.offset = 3
                data = data[3:]
            elif len(data) < 3 and data and _BOM.startswith(data):
                self.hold(data)  # too short to tell yet
                return
        if b"\n" not in data and not self.discard:
            # Part of a line: collect it (joined once, when its newline comes).
            self.pending.append(data)
            self.plen += len(data)
            if self.plen > MAX_EVENT_BYTES + 1:  # + 1: a "\r" that may precede the newline
                self.stats.count_malformed("too_large")
                if self.fmt == "flow_log_file" and self.header is None:
                    self.set_header("")
                self.discard = True
                self.offset += self.plen
                self.pending = []
                self.plen = 0
            return
        if self.pending and self.light and not self.discard and _ascii_lines() is not None:
            # The line the pending bytes began ends in ``data``: complete it on its own, then
            # read the rest of ``data`` in place (no copy of the chunk behind the pending bytes).
            newline = data.find(b"\n")
            self._feed_buffer(self.take(data[: newline + 1]))
            if not self.pending and not self.discard and self._plain_chunk(data, self.offset, newline + 1):
                return
            data = data[newline + 1 :]
            if not data:
                return
        self._feed_buffer(self.take(data))

    def _feed_buffer(self, buf: bytes) -> None:
        """:meth:`_feed_lines` once the pending bytes are joined: ``buf`` follows ``offset``."""
        base = self.offset
        if self.discard:
            newline = buf.find(b"\n")
            if newline < 0:
                self.offset = base + len(buf)
                return
            self.discard = False
            base += newline + 1
            buf = buf[newline + 1 :]
        if self.light and self._plain_chunk(buf, base):
            return
        lines = buf.split(b"\n")
        rest = lines.pop()
        end = base + len(buf) - len(rest)
        if lines:
            self._lines(lines, base, end)
        self.offset = end
        if rest:
            if len(rest) > MAX_EVENT_BYTES + 1:  # + 1: a "\r" that may precede the newline
                self.stats.count_malformed("too_large")
                if self.fmt == "flow_log_file" and self.header is None:
                    self.set_header("")
                self.discard = True
                self.offset = end + len(rest)
            else:
                self.hold(rest)

    def _lines(self, lines: list[bytes], base: int, end: int) -> None:
        """Events of ``lines`` (newline-separated from stream offset ``base`` to ``end``)."""
        timestamp = int(time.time() * 1000) if self.ingestion else READ_FROM_MESSAGE
        flow = self.fmt == "flow_log_file"
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
                if flow and self.header is None:
                    self.set_header("")  # the header's place: records cannot be timed
                continue
            try:
                message = line.decode()
            except UnicodeDecodeError:
                count_malformed("invalid_utf8")
                if flow and self.header is None:
                    self.set_header("")
                continue
            if flow:
                event = self._flow_event(message)
                if event is None:
                    continue
                append(event)
            else:
                append(message if light else LogEvent(timestamp, message, group, ""))
            if len(events) >= batch_size:
                base = min(end, base + sum(map(len, lines[first : i + 1])) + (i + 1 - first))
                first = i + 1
                self.ready.append((events, base, 0, self.counts()))
                events = self.events = []
                append = events.append

    def _flow_event(self, message: str) -> LogEvent | None:
        """``flow_log_file``: the first line is the header (no event); a record is an event
        timed by its ``start`` field, or counted ``bad_timestamp``."""
        if self.header is None:
            self.set_header(message)
            if self._flow is None:
                self.stats.count_malformed("invalid_header")
            return None
        if self._flow is None:
            self.stats.count_malformed("bad_timestamp")
            return None
        start_at, stream_at = self._flow
        fields = message.split(" ")
        start = fields[start_at] if start_at < len(fields) else ""
        if not (start.isdigit() and start.isascii()):
            self.stats.count_malformed("bad_timestamp")
            return None
        stream = fields[stream_at] if 0 <= stream_at < len(fields) else ""
        return LogEvent(int(start) * 1000, message, self.group, stream)

    def _plain_chunk(self, buf: bytes, base: int, start: int = 0) -> bool:
        """The usual case of :meth:`_feed_lines` for bare messages (``buf[start:]`` starting at
        stream offset ``base`` on a line's start), in a few calls for all its lines: ASCII, no
        ``\\r``, no empty line, none too large, so that each line is one event, as
        :meth:`_lines` would find. False (nothing done) otherwise. With the C extension one
        call splits the lines into str objects (``_speedups.ascii_lines``)."""
        split = _ascii_lines()
        if split is not None:
            got = split(buf, start, MAX_EVENT_BYTES)
            if got is None:
                return False
            texts, stop = got
            rest_len = len(buf) - stop
        else:
            if start:
                buf, start = buf[start:], 0
            if not buf.isascii() or b"\r" in buf:
                return False
            texts = buf.decode("ascii").split("\n")
            rest = texts.pop()
            if "" in texts or len(rest) > MAX_EVENT_BYTES + 1 or max(map(len, texts), default=0) > MAX_EVENT_BYTES:
                return False
            rest_len = len(rest)
        end = base + len(buf) - start - rest_len
        events = self.events
        batch_size = self.batch_size
        first = i = 0  # lines before ``first`` are cut into batches; before ``i``, gathered
        while i < len(texts):
            take = texts[i : i + batch_size - len(events)]
            events.extend(take)
            i += len(take)
            if len(events) >= batch_size:
                base = min(end, base + sum(map(len, texts[first:i])) + (i - first))
                first = i
                self.ready.append((events, base, 0, self.counts()))
                events = self.events = []
        self.offset = end
        if rest_len:
            self.hold(buf[len(buf) - rest_len :])
        return True

    # -- JSON ----------------------------------------------------------------------------
    #
    # The stream is read as a sequence of JSON values. A line is one value (JSON Lines, the
    # fast path), or several separated by whitespace or a comma (``{...} {...}``, ``{...},``),
    # or the start of one that goes on over the next lines (a pretty-printed document): that
    # is collected from where it starts until it parses, or until orjson finds it cannot be
    # one value; then its first line is counted malformed once and the lines after it are
    # read on their own (each may start a value again). A value that ends mid-line is
    # followed by the next value or by the end of the line (a comma between is allowed);
    # anything else there makes the rest of the line one malformed line.

    def _feed_json(self, data: bytes) -> None:
        if self.mode == "doc" or b"\n" not in data:
            # A document, or a line, still being collected: joined once, when complete (a
            # document is looked at again once it has grown enough).
            if data:
                self.pending.append(data)
                self.plen += len(data)
            if self.mode == "doc" and self.plen >= self.check_at:
                self._run_json(self.take(), final=False)
            return
        self._run_json(self.take(data), final=False)

    def _end_json(self, final: bool) -> None:
        if not self.pending:
            return
        if not final and (self.mode != "doc" or self.plen <= self.checked):
            return  # a partial line, or a document not grown since it was looked at
        self._run_json(self.take(), final)

    def _run_json(self, buf: bytes, final: bool) -> None:
        """Read the values of ``buf``, the stream from ``offset``; hold what is incomplete."""
        i = 0
        if self.mode == "doc":
            after = self._document(buf, 0, final)
            if after is None:
                return
            i = after
        self._json_lines(buf, i, final)

    def _json_lines(self, buf: bytes, i: int, final: bool) -> None:
        """Read ``buf[i:]`` (the stream from ``offset``) line by line, and the documents that
        start there; hold the partial last line (read it, if ``final``), or a document from
        its start while it may still come whole (mode "doc")."""
        base = self.offset - i  # stream offset of buf[0]
        if self.offset == 0 and buf[i : i + 3] == _BOM:
            self.offset = 3
            i += 3
        lines = (buf[i:] if i else buf).split(b"\n")
        rest = lines.pop()
        pos = self.offset
        resume = -1  # after a document: the stream offset to go on from
        for line in lines:
            start = pos
            pos += len(line) + 1
            if resume >= 0:
                if pos <= resume:
                    continue  # a line of the document
                if resume > start:  # the document ended on this line: the rest of it
                    line = line[resume - start :]
                    start = resume
                resume = -1
            if not line or line == b"\r":
                continue
            try:
                value = _loads(line)
            except _JSONDecodeError as err:
                doc = self._segment(line, start, pos, err)
                if doc < 0:
                    continue
                self.offset = doc
                after = self._document(buf, doc - base, final)
                if after is None:
                    return
                resume = base + after
                continue
            self._items(value, start, pos)
        if final and rest:
            # The last line, without a newline: read too (any document in it ends here).
            start = pos
            pos += len(rest)
            if resume > start:
                rest = rest[resume - start :] if resume < pos else b""
                start = resume
            if rest.strip():
                try:
                    value = _loads(rest)
                except _JSONDecodeError as err:
                    doc = self._segment(rest, start, pos, err)
                    if doc >= 0:
                        self.offset = doc
                        resume = base + (self._document(buf, doc - base, True) or 0)
                else:
                    self._items(value, start, pos)
            rest = b""
        self.offset = max(pos, resume)
        self.hold(rest)

    def _segment(self, seg: bytes, start: int, end: int, err: _JSONDecodeError) -> int:
        """``seg``, a line or the rest of one from stream offset ``start`` (``end``: after
        its newline), is not one JSON value (``err``): read the values it has, or count it.
        Returns the offset where a value going on past the line starts, else -1."""
        while True:
            if seg.isspace():
                return -1
            at = _error_at(err, seg)
            if at >= len(seg):
                return start  # a valid start of a value, which may go on below
            after = _next_value(seg, at) if at else -1
            if after >= 0:
                try:
                    value = _loads(seg[:at])
                except _JSONDecodeError:
                    after = -1
            if after < 0:
                self._bad_json(seg)
                return -1
            if after >= len(seg):
                self._items(value, start, end)
                return -1
            self._items(value, start, start + after)
            seg = seg[after:]
            start += after
            try:
                value = _loads(seg)
            except _JSONDecodeError as again:
                err = again
                continue
            self._items(value, start, end)
            return -1

    def _document(self, buf: bytes, i: int, final: bool) -> int | None:
        """``buf[i:]`` (the stream from ``offset``) starts with a value that goes on past its
        first line. Read it once it is whole: returns the index in ``buf`` after it (and the
        comma and line end that follow it). If it cannot be one value (or never came whole:
        ``final``, or over ``doc_limit``), its first line is counted: returns the index after
        that line. None while it may still come whole (``buf[i:]`` is held, mode "doc")."""
        complete = len(buf) if final else buf.rfind(b"\n", i) + 1
        # Parsed in growing windows of whole lines: an error near the start (a line that
        # only looked like the start of a document) is found without parsing the rest.
        window = i + _DOC_WINDOW
        while complete > i:
            size = complete
            if window < complete:
                size = buf.find(b"\n", window - 1) + 1 or complete
            text = buf[i:size]
            try:
                value = _loads(text)
            except _JSONDecodeError as err:
                at = _error_at(err, text)
                if at >= len(text):
                    if size < complete:
                        window = i + 4 * (size - i)
                        continue
                    break  # valid so far: more may come
                try:
                    value = _loads(text[:at])
                except _JSONDecodeError:
                    return self._resplit(buf, i)
                size = _after_value(buf, i + at)
            start = self.offset
            self.offset = start + size - i
            self.mode = None
            self._items(value, start, self.offset)
            return size
        if final or (self.doc_limit is not None and len(buf) - i > self.doc_limit):
            return self._resplit(buf, i)
        self.mode = "doc"
        self.hold(buf[i:] if i else buf)
        self.checked = self.plen
        self.check_at = self.plen + max(self.plen, _DOC_WINDOW)
        if self.doc_limit is not None:
            self.check_at = min(self.check_at, self.doc_limit + 1)
        return None

    def _resplit(self, buf: bytes, i: int) -> int:
        """The document at ``buf[i]`` is not one: count its first line, go on after it."""
        newline = buf.find(b"\n", i)
        size = len(buf) if newline < 0 else newline + 1
        self._bad_json(buf[i:size])
        self.offset += size - i
        self.skip = 0
        self.mode = None
        return size

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
                    if k < n:
                        self.ready.append((events, start, k, self.counts()))
                    else:
                        self.ready.append((events, end, 0, self.counts()))
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

    def record_event(self, record: Any) -> LogEvent | None:
        """The event of one CloudTrail record (a decoded ``Records`` item), as this format
        makes it (module docstring), or None with the reason counted in :attr:`stats`."""
        return self._cloudtrail_event(record)

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
        try:
            message = _dumps(record)
        except orjson.JSONEncodeError:
            # Nested deeper than orjson writes (254 levels; it reads up to 1024).
            self.stats.count_malformed("too_deep")
            return None
        if len(message) > MAX_EVENT_BYTES:
            self.stats.count_malformed("too_large")
            return None
        account = record.get("recipientAccountId")
        region = record.get("awsRegion")
        stream = f"{account}_CloudTrail_{region}" if type(account) is str and type(region) is str else ""
        return LogEvent(timestamp, message.decode(), self.group, stream)


_FIELD_NAME = re.compile(r"[a-z][a-z0-9-]*")


def _flow_fields(header: str) -> tuple[int, int] | None:
    """(index of ``start``, index of ``interface-id`` or -1) in a flow log header, or None if
    ``header`` is not one (names of lower-case letters, digits and ``-``) naming ``start``."""
    names = header.split(" ")
    if not all(_FIELD_NAME.fullmatch(name) for name in names) or "start" not in names:
        return None
    return names.index("start"), names.index("interface-id") if "interface-id" in names else -1


def _error_at(err: _JSONDecodeError, text: bytes) -> int:
    """The byte offset in ``text`` where orjson found (``err``) that it is not one JSON
    value; ``len(text)`` if it is the valid start of one that goes on (it ended too soon)."""
    doc, pos = err.doc, err.pos
    if type(pos) is not int or pos < 0:
        return 0
    if isinstance(doc, (bytes, bytearray)):
        return min(pos, len(text))
    if doc:
        if pos >= len(doc):
            return len(text)
        if len(doc) == len(text):  # ASCII: characters are bytes
            return pos
        return len(doc[:pos].encode("utf-8", "surrogatepass"))
    # Not UTF-8 (orjson then says where in no way): where it stops being UTF-8, unless
    # a whole value ends before that, is where it stops being JSON.
    try:
        text.decode()
    except UnicodeDecodeError as bad:
        cut = bad.start
    else:
        return 0
    if cut == 0:
        return 0
    head = text[:cut]
    try:
        _loads(head)
    except _JSONDecodeError as inner:
        return min(_error_at(inner, head), cut)
    return cut


def _next_value(seg: bytes, at: int) -> int:
    """After a value ending at ``at`` in the line ``seg`` (whitespace and one comma may
    follow): the offset of the next value (``{`` or ``[``), ``len(seg)`` if nothing else is
    on the line, or -1 if something else is."""
    n = len(seg)
    i = _past_separator(seg, at)
    if i == n:
        return n
    return i if seg[i] in _OPENERS else -1


def _past_separator(buf: bytes, i: int) -> int:
    """Past the blanks, one comma and the blanks after it that start at ``i`` in ``buf``."""
    n = len(buf)
    while i < n and buf[i] in _BLANK:
        i += 1
    if i < n and buf[i] == 44:  # ","
        i += 1
        while i < n and buf[i] in _BLANK:
            i += 1
    return i


def _after_value(buf: bytes, at: int) -> int:
    """After a document ending at ``at`` in ``buf``: past the whitespace (and one comma)
    that follow it, up to and with the end of its line; or where something else starts."""
    i = _past_separator(buf, at)
    if i < len(buf) and buf[i] == 10:  # "\n"
        return i + 1
    return i


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
