"""File sources: files read once (``replay``), or followed like ``tail -F`` (``run``).

A :class:`FileSource` turns the bytes of its input into :class:`~castlewatch.model.LogEvent`
objects and yields them in :class:`~castlewatch.model.EventBatch` es, each carrying the
checkpoint position after its last event.

The formats and how bytes become events: :mod:`castlewatch.engine.formats`. Malformed
input is counted in :class:`~castlewatch.model.Stats` ``malformed`` and skipped, never raised
(the reasons are listed there, plus ``unreadable_file``: one per file that cannot be opened
or read, or is a corrupt or truncated gzip stream, and a literal path that does not exist
in batch mode, or that became a directory while following).

A file source's path that names an existing file is that file, glob characters and all
(``app[1].log``); otherwise a path with ``*``, ``?`` or ``[`` is a glob. A path (not a
glob) naming a directory or a FIFO is refused when the source is made (ValueError).

Files are read in binary, in chunks of :data:`READ_CHUNK_BYTES`, off the event loop (in the
default executor); after a full chunk the next one is read while this one is parsed and its
events evaluated (waiting for each read cost a replay about a tenth of its time); gzip files
are recognised by their magic bytes and decompressed
(read once, also while following: a gzip file is complete; one found cut short while
following is read when it has grown). Files are followed by identity (device, inode) like
``tail -F``: a file renamed to another name matching the glob is still followed; one whose
name no longer leads to it (rotated away by logrotate's ``create`` mode, or deleted) is
still followed through the open file, before the file now under its name, until it has not
grown for :data:`ROTATED_QUIET_S` (as Filebeat's ``close_inactive``): a writer keeps
appending to the renamed file until it reopens its log, and those lines are read too,
whichever form the path has; it stays in the checkpoint meanwhile, and a restart finds it
again by its identity. A file found shorter than what was read, or whose
:data:`HEAD_BYTES` bytes just before the read offset changed (one small read per file per
look: a file truncated and written again to the same size or longer, ``copytruncate``),
was truncated and is read again from its start.

The last line of a file without a newline (or a JSON document not whole at its end) is
read as at the end of a replay, so that ``run`` and ``replay`` count the same events:
while following, once its file has not grown for :data:`PARTIAL_LINE_QUIET_S`, and when
the iteration is stopped (``run``'s shutdown) with the file read to its end. Its bytes are
then consumed (the checkpoint is past them, so they are never read twice): a writer that
completes the line later makes the rest a line of its own, as with any tailer that does
not wait forever.

A glob skips what is not a regular file; a named pipe (FIFO), socket or device matching
it is named in a warning (logger ``castlewatch.engine``), once per path.

Per-file state and checkpoint entries: :mod:`.file_state`; finding an event again for a
report: :mod:`.file_locate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob as _glob
import gzip
import io
import logging
import os
import stat as _stat
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from castlewatch.engine.formats import MAX_DOCUMENT_BYTES, StreamParser
from castlewatch.engine.sources import file_locate
from castlewatch.engine.sources.base import CHUNK_BYTES, Source, SourceSpec, check_format
from castlewatch.engine.sources.file_state import (
    HEAD_BYTES,
    POSITIONS_VERSION,
    FileState,
    check_file_path,
    check_positions,
    gz_read,
    has_magic,
    not_a_file_warning,
)
from castlewatch.model import EventBatch, Stats

__all__ = ["POLL_INTERVAL_S", "PARTIAL_LINE_QUIET_S", "ROTATED_QUIET_S", "FileSource"]

#: Seconds between two looks at the files while following, when nothing was read.
POLL_INTERVAL_S = 0.2
#: While following, seconds a file must not grow before its last line without a newline is
#: read as an event (module docstring). Long, like :data:`ROTATED_QUIET_S`: a writer with a
#: full stdio buffer (4 or 8 KiB) ends its writes mid-line and completes the line at its
#: next flush, which on a quiet service may come minutes later.
PARTIAL_LINE_QUIET_S = 300.0
#: While following, seconds a file rotated away (no matching path leads to it) must not grow
#: before it is closed: its writer may go on appending to it until it reopens its log.
#: Filebeat's ``close_inactive`` defaults to 5 minutes too.
ROTATED_QUIET_S = 300.0

log = logging.getLogger("castlewatch.engine")

# While following, at most this many chunks are read from one file before the others get a turn.
_CHUNKS_PER_ROUND = 8
#: Bytes per read of a plain file: each read is waited for through the event loop (about
#: 0.3 ms a read ahead, the read's thread needing the GIL back), so a replay of 1.4 KB
#: CloudTrail lines ran about 10% faster with 8 MiB reads than with 1 MiB (CHUNK_BYTES,
#: still the gzip reads' size), and a daemon catching up a backlog as fast as a replay.
READ_CHUNK_BYTES = 8 << 20


async def _settled(read: asyncio.Future) -> None:
    """Wait for a read ahead whose bytes are not wanted; its error, if any, is not one."""
    with contextlib.suppress(OSError):
        await read


_GZIP_MAGIC = b"\x1f\x8b"


class FileSource(Source):
    """Reads the log events of a file source (:class:`SourceSpec` of type ``file``).

    Args:
        spec: what to read.
        stats: counters (see :class:`~castlewatch.engine.sources.base.Source`); unreadable
            files are counted ``unreadable_file``.
        positions: a checkpoint from :meth:`positions` (or from ``EventBatch.position``) of
            an earlier run on the same spec; reading resumes right after the last event
            yielded then. ``None`` or ``{}``: read every file from its beginning.
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: an invalid spec (unknown format, no path), ``batch_size`` < 1,
            ``positions`` not of the shape :meth:`positions` returns, a file path (not a
            glob) naming something that is not a file (a directory, a FIFO).

    Attributes:
        name: ``"file:<path>"``; the ``source`` of every batch.
        poll_interval: seconds between looks at the files while following (default
            :data:`POLL_INTERVAL_S`).
        chunk_bytes: bytes per read; None (the default): :data:`READ_CHUNK_BYTES` for a
            plain file, :data:`CHUNK_BYTES` for a gzip file's decompressed bytes.
        partial_line_quiet_s: :data:`PARTIAL_LINE_QUIET_S`, for this source.
        rotated_quiet_s: :data:`ROTATED_QUIET_S`, for this source.

    Checkpoints: ``{"v": 1, "files": {"<dev>:<ino>": entry}}``, one entry per file
    identity known (found by the glob, even if nothing of it was yielded yet: then at offset
    0; or rotated away and still being finished), ``entry = {"path", "dev", "ino", "offset",
    ...}``: ``path`` is where the file was last seen; ``offset`` is the number of
    bytes consumed (decompressed bytes for gzip) up to the end of the last line or document
    whose events were all yielded; ``skip`` (if present) the number of events/records of the
    JSON value at ``offset`` already yielded; ``head`` ``[n, crc32]`` of the file's first
    ``n`` bytes, checked on resume so a reused inode is not mistaken for the old file;
    ``discard`` (if present): the rest of an over-long line is being skipped; gzip files
    have ``gz``, ``size``, ``mtime_ns`` and ``done`` once fully consumed.
    """

    def __init__(
        self,
        spec: SourceSpec,
        stats: Stats | None,
        positions: dict | None = None,
        batch_size: int = 1000,
    ) -> None:
        check_format(spec)
        if not spec.path:
            raise ValueError("a file source needs a path")
        if spec.path.startswith("s3://"):
            raise ValueError(f"source path {spec.path!r} is in S3: castlewatch backfill reads S3 archives; "
                             "replay and run read files (copy the objects down, or use backfill)")
        super().__init__(spec, stats, batch_size)
        self.poll_interval = POLL_INTERVAL_S
        self.chunk_bytes: int | None = None
        self.partial_line_quiet_s = PARTIAL_LINE_QUIET_S
        self.rotated_quiet_s = ROTATED_QUIET_S
        self._checkpoint = check_positions(positions)
        self._files: dict[str, FileState] = {}
        self._committed: dict[str, dict[str, Any]] = {}
        self._bad_paths: set[str] = set()
        self._skipped_paths: set[str] = set()  # not regular files a glob matched (warned about)
        self._progress = False
        self._last_scan = 0.0
        self._doc_limit: int | None = None  # MAX_DOCUMENT_BYTES while following
        # A path with glob characters that names an existing file is that file.
        pattern = self._pattern()
        self._literal = not has_magic(pattern)
        if self._literal or os.path.lexists(pattern):
            self._literal = True
            check_file_path(pattern)
        self._last: dict[str, Any] = {"v": POSITIONS_VERSION, "files": dict(self._checkpoint)}

    def positions(self) -> dict:
        """The checkpoint after every batch yielded so far (before any: the one given).

        A msgpack-able dict (shape in the class docstring); a new ``FileSource`` given it
        reads exactly the events after the last batch yielded.
        """
        return {"v": POSITIONS_VERSION, "files": dict(self._last["files"])}

    def _batches(self, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """The batches of :meth:`~castlewatch.engine.sources.base.Source.batches`.

        ``follow`` False: read every matching file once to its end (a partial last line
        is an event) and return. True: keep reading like ``tail -F`` (appended data,
        rotation, truncation, new files matching the glob; a partial last line waits for
        its newline, or for its file to be quiet: module docstring) until ``stop`` is
        set. Stopped, the partial last lines of files read to their end are yielded.
        Empty batches move the checkpoint forward (a run of malformed or empty lines, a
        gzip file finished) or carry the count of an unreadable file. Files are closed
        when the iteration ends (or call :meth:`close`).
        """
        self._doc_limit = MAX_DOCUMENT_BYTES if follow else None
        return self._file_batches(follow, stop)

    def close(self) -> None:
        """Close every open file (done automatically when :meth:`batches` ends)."""
        for f in self._files.values():
            f.close()

    def warning(self) -> str | None:
        """A word about the files as they are now, if the source would read nothing of
        them: no file matches its glob, or its file does not exist."""
        pattern = self._pattern()
        if self._literal or os.path.lexists(pattern):
            if os.path.lexists(pattern):
                return None
            return f"source {self.name}: no such file (replay counts it unreadable; run reads it once it appears)"
        matched = list(_glob.iglob(pattern, recursive=True))
        if any(os.path.isfile(path) for path in matched):
            return None
        others = [path for path in matched if not os.path.isdir(path)]
        skipped = ""
        if others:
            shown = ", ".join(sorted(others)[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            skipped = f" but {shown}, which it skips: not regular files (named pipes, sockets, devices)"
        return (
            f"source {self.name}: no file matches the glob{skipped} "
            "(replay reads nothing; run reads files once they appear)"
        )

    def locate(self, before: Any, after: Any, index: int, message: str) -> str | None:
        """Where event ``index`` of a batch is, as ``"<path> byte N"``
        (:func:`~castlewatch.engine.sources.file_locate.locate`)."""
        return file_locate.locate(self, before, after, index, message)

    # -- file discovery ------------------------------------------------------------------

    def _pattern(self) -> str:
        return os.path.expanduser(self.spec.path or "")

    def _scan(self, follow: bool, initial: bool) -> None:
        """Look for matching files: new ones, renamed, rotated away, truncated."""
        self._last_scan = time.monotonic()
        pattern = self._pattern()
        if not self._literal and os.path.lexists(pattern):
            self._literal = True  # a file named with glob characters: that file, from now on
        literal = self._literal
        paths = [pattern] if literal else sorted(_glob.glob(pattern, recursive=True))
        seen: set[str] = set()
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if initial and not follow and literal:
                    self._tally.count_malformed("unreadable_file")
                continue
            except OSError:
                if path not in self._bad_paths:
                    self._bad_paths.add(path)
                    self._tally.count_malformed("unreadable_file")
                continue
            if not _stat.S_ISREG(st.st_mode):
                # A glob's directories are no files of it; the path given, if it became one
                # (it was checked when the source was made), is unreadable: counted once.
                if literal and path not in self._bad_paths:
                    self._bad_paths.add(path)
                    self._tally.count_malformed("unreadable_file")
                elif not literal and not _stat.S_ISDIR(st.st_mode) and path not in self._skipped_paths:
                    self._skipped_paths.add(path)
                    log.warning(not_a_file_warning(self.name, path, st.st_mode))
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
                if st.st_size != f.size:
                    f.changed_at = time.monotonic()
                if f.tail and f.fd is not None and not f.gz and st.st_size >= f.tail_end:
                    # Truncated and written again since the last look (copytruncate, then as
                    # many bytes or more): the size does not tell; the bytes just before the
                    # read offset do, which appending leaves alone (one small read per look).
                    try:
                        if os.pread(f.fd, len(f.tail), f.tail_end - len(f.tail)) != f.tail:
                            f.truncated = True
                    except OSError:
                        pass
                f.size = st.st_size
                f.mtime_ns = st.st_mtime_ns
        if not initial:
            for key, f in list(self._files.items()):
                if key in seen:
                    continue
                if f.orphan and f.fd is None:
                    continue  # not opened yet
                if f.fd is not None and not f.done and not f.failed and not f.gz:
                    # Rotated away or deleted: followed through the open file until quiet.
                    f.gone = not f.orphan
                    try:
                        size = os.fstat(f.fd).st_size
                    except OSError:
                        continue
                    if size != f.size:
                        f.size = size
                        f.changed_at = time.monotonic()
                else:
                    self._drop(f)

    def _new_file(self, path: str, st: os.stat_result) -> FileState:
        f = FileState(path, st, StreamParser(self.spec, self.batch_size, self._doc_limit))
        entry = self._checkpoint.pop(f.key, None)
        if entry is not None and self._resume(f, entry, st):
            self._committed[f.key] = entry
        else:
            # Known from now on, even before anything of it is yielded: if it is rotated away
            # while we are down, a restart still finds it (by inode) and reads it.
            self._committed[f.key] = f.entry(0, 0)
        return f

    def _resume(self, f: FileState, entry: dict[str, Any], st: os.stat_result) -> bool:
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
        if isinstance(entry.get("header"), str):
            f.parser.set_header(entry["header"])
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
                        f = FileState(dirent.path, st, StreamParser(self.spec, self.batch_size, self._doc_limit))
                        # (one with nothing new yet may still be written to, until it is quiet)
                        recent = time.time() - st.st_mtime_ns / 1e9 < self.rotated_quiet_s
                        more = entry.get("gz") or st.st_size > entry["offset"] or recent
                        if more and self._resume(f, entry, st):
                            f.orphan = True
                            self._files[key] = f
                            self._committed[key] = entry
                        break
            except OSError:
                continue

    def _drop(self, f: FileState) -> None:
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
                # Files rotated away first: read the old file, then the new one.
                for f in sorted(self._files.values(), key=lambda f: not (f.gone or f.orphan)):
                    async with contextlib.aclosing(self._drain(f, follow, stop)) as drained:
                        async for batch in drained:
                            self._last = batch.position
                            yield batch
                            if stop.is_set():
                                break
                    if stop.is_set():
                        break
                if stop.is_set():
                    break
                if self._tally.malformed:
                    # Files found unreadable, and no batch since to carry the count: an empty
                    # batch at the last position yielded.
                    yield EventBatch(self.name, [], self.positions(), malformed=self._counts(None))
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
            if follow:
                # Stopped: the partial last lines of the files read to their end are events
                # now, as at the end of a replay.
                for f in list(self._files.values()):
                    for batch in self._take_partial_line(f):
                        self._last = batch.position
                        yield batch
        finally:
            self.close()

    def _take_partial_line(self, f: FileState) -> list[EventBatch]:
        """The batches of ``f``'s partial last line (or unfinished JSON document) as at the
        end of a replay, if ``f`` has been read to its end; none otherwise."""
        p = f.parser
        if not p.plen or p.ready or p.events or f.fd is None or f.gz or f.failed or f.done:
            return []
        yielded = self._last.get("files", {}).get(f.key) or {"offset": 0}
        made = self._committed.get(f.key) or {"offset": 0}
        if (yielded["offset"], yielded.get("skip", 0)) != (made["offset"], made.get("skip", 0)):
            return []  # batches made and not yielded: the iteration stopped before them
        try:
            if os.fstat(f.fd).st_size != p.read_pos:
                return []  # more to read: the bytes held are not its end
        except OSError:
            return []
        p.end(final=True)
        return self._flush(f)

    def _open(self, f: FileState, follow: bool) -> bool:
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
            offset = f.parser.read_pos
            if offset and not f.gz:  # resumed: the bytes before the offset, to notice a rewrite
                f.tail = os.pread(fd, min(HEAD_BYTES, offset), offset - min(HEAD_BYTES, offset))
                f.tail_end = offset
        except OSError:
            self._fail(f)
            return False
        return True

    def _fail(self, f: FileState) -> None:
        if not f.failed:
            f.failed = True
            self._tally.count_malformed("unreadable_file")
        f.close()

    def _fed(self, f: FileState, data: bytes) -> list[EventBatch]:
        """Give ``data`` (the next bytes of ``f``) to its parser: the batches now ready."""
        self._progress = True
        f.parser.feed(data)
        return self._batches_ready(f) if f.parser.ready else []

    def _batches_ready(self, f: FileState) -> list[EventBatch]:
        """EventBatches of the parser's ready cuts, each with its checkpoint snapshot."""
        out = []
        light, group = f.parser.light, f.parser.group
        for events, offset, skip, counts in f.parser.ready:
            self._committed[f.key] = f.entry(offset, skip)
            position = {"v": POSITIONS_VERSION, "files": dict(self._committed)}
            counts = self._counts(counts)
            if light:
                out.append(EventBatch(self.name, [], position, messages=events, log_group=group, malformed=counts))
            else:
                out.append(EventBatch(self.name, events, position, malformed=counts))
        f.parser.ready = []
        return out

    def _flush(self, f: FileState) -> list[EventBatch]:
        """Cut the events gathered so far; or an empty batch if only the position moved (or
        malformed input was counted)."""
        p = f.parser
        p.cut()
        out = self._batches_ready(f) if p.ready else []
        previous = self._committed.get(f.key)
        entry = f.entry(p.offset, p.skip)
        counts = self._counts(p.counts())  # counted after the last cut, before the offset
        if entry == previous and not counts:
            return out
        self._committed[f.key] = entry
        out.append(EventBatch(self.name, [], {"v": POSITIONS_VERSION, "files": dict(self._committed)}, malformed=counts))
        return out

    async def _drain(self, f: FileState, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """Read ``f`` up to its current end (a bounded number of chunks while following)."""
        if f.done or f.failed:
            return
        if f.fd is None:
            if follow and f.size < 2 and f.gz is None and not f.gone:
                if not (f.size and self._quiet(f, self.partial_line_quiet_s)):
                    return  # too short to tell gzip from text yet (one byte: a line, once quiet)
            if not self._open(f, follow):
                return
        if f.gz:
            f.parser.doc_limit = None  # a gzip file is complete: its documents end in it
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
            f.tail = b""
            f.tail_end = 0
            f.hot = True
            for batch in self._flush(f):
                yield batch
        if follow and not f.hot and f.size <= p.read_pos:
            # Nothing new since the last look: a quiet file's partial line is read now, a
            # file rotated away and quiet is done.
            for batch in self._settle(f):
                yield batch
            return
        chunks = 0
        eof = False
        fd = f.fd
        size = self.chunk_bytes or READ_CHUNK_BYTES
        ahead: tuple[int, asyncio.Future] | None = None  # (offset, the read of the next chunk)
        try:
            while True:
                pos = p.read_pos
                try:
                    if ahead is not None and ahead[0] == pos:
                        data = await ahead[1]
                    else:
                        data = await asyncio.to_thread(os.pread, fd, size, pos)
                    ahead = None
                except OSError:
                    self._fail(f)
                    return
                if not data:
                    eof = True
                    break
                if len(data) == size and not (follow and chunks + 1 >= _CHUNKS_PER_ROUND):
                    # a full chunk: the next one is read (in the executor at once) while this
                    # one is parsed and its events evaluated
                    loop = asyncio.get_running_loop()
                    ahead = (pos + size, loop.run_in_executor(None, os.pread, fd, size, pos + size))
                if pos == 0:
                    f.head = data[:HEAD_BYTES]
                if len(data) >= HEAD_BYTES or f.tail_end != pos:
                    f.tail = data[-HEAD_BYTES:]
                else:
                    f.tail = (f.tail + data)[-HEAD_BYTES:]
                f.tail_end = pos + len(data)
                if f.tail_end > f.size:  # grown since the last look
                    f.changed_at = time.monotonic()
                for batch in self._fed(f, data):
                    yield batch
                if stop.is_set():
                    return
                chunks += 1
                if len(data) < size:
                    eof = True
                    break
                if follow and chunks >= _CHUNKS_PER_ROUND:
                    break
        finally:
            if ahead is not None:  # a read ahead not used (stopped, the file shrank, an error):
                await _settled(ahead[1])  # it ends before the file may be closed
        # The file is at least as long as what was read: a later look that finds it shorter
        # means it was truncated.
        f.size = max(f.size, p.read_pos)
        f.hot = not eof
        if eof:
            p.end(final=not follow)
            for batch in self._flush(f):
                yield batch
            if not follow:
                f.close()
        else:
            for batch in self._flush(f):
                yield batch

    def _quiet(self, f: FileState, seconds: float) -> bool:
        """True if ``f`` has not grown for ``seconds`` (and has not since the last look)."""
        if time.monotonic() - f.changed_at < seconds:
            return False
        if f.fd is not None:
            try:
                size = os.fstat(f.fd).st_size
            except OSError:
                return True
            if size > f.size:
                f.size = size
                f.changed_at = time.monotonic()
                return False
        return True

    def _settle(self, f: FileState) -> list[EventBatch]:
        """``f`` (followed) is read to its end and nothing new came: its partial last line is
        an event once it has been quiet for :attr:`partial_line_quiet_s`; rotated away and
        quiet for :attr:`rotated_quiet_s`, it is finished and closed."""
        p = f.parser
        if (f.gone or f.orphan) and self._quiet(f, self.rotated_quiet_s):
            p.end(final=True)
            out = self._flush(f)
            self._drop(f)  # and a batch whose position no longer has it
            position = {"v": POSITIONS_VERSION, "files": dict(self._committed)}
            out.append(EventBatch(self.name, [], position, malformed=self._counts(None)))
            return out
        if p.plen and self._quiet(f, self.partial_line_quiet_s):
            p.end(final=True)
            return self._flush(f)
        return []

    async def _drain_gz(self, f: FileState, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
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
        size = self.chunk_bytes or CHUNK_BYTES
        while True:
            try:
                data = await asyncio.to_thread(gz_read, f.gzf, size, skip)
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
            for batch in self._fed(f, data):
                yield batch
            if stop.is_set():
                return
        for batch in self._flush(f):
            yield batch
        f.close()

    def _gz_failed(self, f: FileState, done: bool) -> None:
        """A corrupt or truncated gzip file: counted, its events so far kept."""
        self._tally.count_malformed("unreadable_file")
        f.parser.take()  # a partial last line of a broken stream is not an event
        f.parser.mode = None
        f.done = done
