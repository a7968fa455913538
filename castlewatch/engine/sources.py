"""Log event sources: files (read once, or followed like ``tail -F``) and stdin.

A :class:`Source` turns the bytes of its input into :class:`~castlewatch.model.LogEvent`
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

Files are read in binary, in chunks of :data:`CHUNK_BYTES`, off the event loop
(:func:`asyncio.to_thread`); gzip files are recognised by their magic bytes and decompressed
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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import glob as _glob
import gzip
import io
import logging
import os
import stat as _stat
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from castlewatch.engine.formats import MAX_DOCUMENT_BYTES, MAX_EVENT_BYTES, StreamParser
from castlewatch.model import EventBatch, Stats

__all__ = [
    "CHUNK_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_EVENT_BYTES",
    "POLL_INTERVAL_S",
    "Source",
    "SourceSpec",
    "open_source",
]

#: Bytes read from a file (or decompressed from a gzip file) per read.
CHUNK_BYTES = 1 << 20
#: Seconds between two looks at the files while following, when nothing was read.
POLL_INTERVAL_S = 0.2
#: Bytes at the start of a file whose CRC-32 is checkpointed, to recognise the file on resume;
#: also the bytes just before the read offset compared on each look while following, to
#: notice a file rewritten in place (truncated and written again, to any size).
HEAD_BYTES = 256
#: While following, seconds a file must not grow before its last line without a newline is
#: read as an event (module docstring).
PARTIAL_LINE_QUIET_S = 5.0
#: While following, seconds a file rotated away (no matching path leads to it) must not grow
#: before it is closed: its writer may go on appending to it until it reopens its log.
#: Filebeat's ``close_inactive`` defaults to 5 minutes too.
ROTATED_QUIET_S = 300.0
#: Checkpoint format version.
POSITIONS_VERSION = 1

log = logging.getLogger("castlewatch.engine")

_FORMATS = ("lines", "cloudwatch_events", "cloudtrail_archive")
_TYPES = ("file", "stdin")
# While following, at most this many chunks are read from one file before the others get a turn.
_CHUNKS_PER_ROUND = 8
_GZIP_MAGIC = b"\x1f\x8b"


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


def open_source(spec: SourceSpec, stats: Stats | None, positions: dict | None = None, batch_size: int = 1000) -> Source:
    """The :class:`Source` for ``spec`` (same arguments and errors as :class:`Source`)."""
    return Source(spec, stats, positions, batch_size)


# --------------------------------------------------------------------------------------------
# Files


class _File:
    """One file being read, identified by (device, inode) whatever its name."""

    __slots__ = (
        "changed_at",
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
        "tail",
        "tail_end",
        "truncated",
    )

    def __init__(self, path: str, st: os.stat_result, parser: StreamParser) -> None:
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
        # the last HEAD_BYTES bytes read, ending at offset tail_end: looked at again on each
        # look while following (an append leaves them alone, a rewrite replaces them)
        self.tail = b""
        self.tail_end = 0
        self.expect: list | None = None  # checkpointed [length, crc32] of the head, to verify
        self.done = False  # gzip: fully consumed
        self.failed = False  # unreadable (counted once)
        self.gone = False  # following: no matching path leads to it any more (followed until quiet)
        self.orphan = False  # found on resume under a name outside the glob: the same
        self.hot = False  # the last read filled a whole chunk: read again without waiting
        self.incomplete: tuple[int, int] | None = None  # gzip cut short at (size, mtime_ns)
        self.truncated = False  # following: found truncated (or rewritten) by its bytes
        self.resumed = False  # partly read before, according to the checkpoint
        # monotonic time it was last seen growing; when found, from its mtime
        self.changed_at = time.monotonic() - max(0.0, time.time() - st.st_mtime_ns / 1e9)

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


def _not_a_file_warning(source: str, path: str, mode: int) -> str:
    """The warning for a glob's match that is not a regular file (nor a directory)."""
    what = "a named pipe (FIFO)" if _stat.S_ISFIFO(mode) else "a socket" if _stat.S_ISSOCK(mode) else "a device"
    advice = f"; read a pipe with a stdin source: castlewatch ... < {path}" if _stat.S_ISFIFO(mode) else ""
    return f"Warning: source {source}: {path} is {what}, not a regular file: the glob skips it{advice}"


def _check_file_path(path: str) -> None:
    """ValueError if ``path`` exists and is not a regular file (a file source reads files)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing (or not reachable): counted when it is read
    if _stat.S_ISREG(mode):
        return
    if _stat.S_ISDIR(mode):
        raise ValueError(
            f"source path {path!r} is a directory, not a file; to read the files in it give a glob, "
            f"e.g. {os.path.join(path, '*.log')!r}"
        )
    if _stat.S_ISFIFO(mode):
        raise ValueError(
            f"source path {path!r} is a named pipe (FIFO), not a file; read a pipe with a stdin source "
            f"(type: stdin) and redirect it: castlewatch ... < {path}"
        )
    raise ValueError(f"source path {path!r} is not a regular file; a file source reads regular files (or a glob of them)")


class Source:
    """Reads the log events of one :class:`SourceSpec`.

    Args:
        spec: what to read.
        stats: counters; malformed events and unreadable files are counted in
            ``stats.malformed`` as the batch carrying them is yielded (``stats.events_read``
            is left to the caller). Every count travels in ``EventBatch.malformed`` of the
            first batch whose position is past the bytes counted (a batch may carry counts
            only), so a caller that evaluates batches later than it receives them (the
            Engine) passes ``None`` here and adds ``EventBatch.malformed`` itself when it
            evaluates the batch: then a checkpoint's counts match its positions.
        positions: a checkpoint from :meth:`positions` (or from ``EventBatch.position``) of
            an earlier run on the same spec; reading resumes right after the last event
            yielded then. ``None`` or ``{}``: read every file from its beginning.
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: an invalid spec (unknown type or format, a file source without a path),
            ``batch_size`` < 1, ``positions`` not of the shape :meth:`positions` returns, a
            file path (not a glob) naming something that is not a file (a directory, a
            FIFO), or a stdin source while the process has no stdin (it was closed).

    Attributes:
        name: ``"file:<path>"`` or ``"stdin:-"``; the ``source`` of every batch.
        poll_interval: seconds between looks at the files while following (default
            :data:`POLL_INTERVAL_S`).
        chunk_bytes: bytes per read (default :data:`CHUNK_BYTES`).
        partial_line_quiet_s: :data:`PARTIAL_LINE_QUIET_S`, for this source.
        rotated_quiet_s: :data:`ROTATED_QUIET_S`, for this source.

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
        stats: Stats | None,
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
        self.partial_line_quiet_s = PARTIAL_LINE_QUIET_S
        self.rotated_quiet_s = ROTATED_QUIET_S
        self._checkpoint = _check_positions(positions)
        self._files: dict[str, _File] = {}
        self._committed: dict[str, dict[str, Any]] = {}
        self._bad_paths: set[str] = set()
        self._skipped_paths: set[str] = set()  # not regular files a glob matched (warned about)
        self._progress = False
        self._last_scan = 0.0
        self._doc_limit: int | None = None  # MAX_DOCUMENT_BYTES while following
        self._tally = Stats()  # file-level counts (unreadable_file) not yet in a batch
        # A path with glob characters that names an existing file is that file.
        self._literal = spec.type == "file" and not _has_magic(self._pattern())
        if spec.type == "file":
            pattern = self._pattern()
            if self._literal or os.path.lexists(pattern):
                self._literal = True
                _check_file_path(pattern)
        elif sys.stdin is None:
            raise ValueError(
                "a stdin source needs a standard input, and this process has none (it was closed); "
                "pipe the events in, or give a file source"
            )
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
                waits for its newline, or for its file to be quiet: module docstring) until
                ``stop`` is set. stdin always ends at EOF.
            stop: set it to end the iteration promptly; events not yet yielded are not
                consumed (a restart from :meth:`positions` reads them), except the partial
                last lines of files read to their end, which are yielded then.

        A batch may have no events: it then only moves the checkpoint forward (a run of
        malformed or empty lines, a gzip file finished) or only carries malformed counts
        (``EventBatch.malformed``: an unreadable file). Files are closed when the
        iteration ends (or call :meth:`close`).
        """
        self._doc_limit = MAX_DOCUMENT_BYTES if follow else None
        if self.spec.type == "stdin":
            inner = self._stdin_batches(stop)
        else:
            inner = self._file_batches(follow, stop)
        stats = self.stats
        async with contextlib.aclosing(inner):
            async for batch in inner:
                if stats is not None and batch.malformed:
                    for reason, n in batch.malformed.items():
                        stats.count_malformed(reason, n)
                yield batch

    def close(self) -> None:
        """Close every open file (done automatically when :meth:`batches` ends)."""
        for f in self._files.values():
            f.close()

    def warning(self) -> str | None:
        """A word about the files as they are now, if the source would read nothing of
        them: no file matches its glob, or its file does not exist. None for stdin."""
        if self.spec.type != "file":
            return None
        pattern = self._pattern()
        if self._literal or os.path.lexists(pattern):
            if os.path.lexists(pattern):
                return None
            return f"source {self.name}: no such file (replay counts it unreadable; run reads it once it appears)"
        if any(os.path.isfile(path) for path in _glob.iglob(pattern, recursive=True)):
            return None
        return f"source {self.name}: no file matches the glob (replay reads nothing; run reads files once they appear)"

    def locate(self, before: Any, after: Any, index: int, message: str) -> str | None:
        """Where event ``index`` (0-based, with this ``message``) of a batch is, as
        ``"<path> byte N"``: the batch was read between the checkpoint positions ``before``
        (the previous batch's, or None) and ``after`` (its own).

        For reports only (an event whose evaluation failed), so it may be slow: it reads
        that part of the file again and parses it event by event. ``lines``: N is where
        the event's line starts; JSON formats: where reading resumes to give that event
        first (with the number of items of the JSON value there already read before it).
        None when it cannot be told: stdin, the file no longer there or changed, the
        event not found where it was read.
        """
        if self.spec.type != "file" or not isinstance(after, dict):
            return None
        old = before.get("files", {}) if isinstance(before, dict) else {}
        new = after.get("files", {})
        moved = [
            key
            for key, entry in new.items()
            if (entry["offset"], entry.get("skip", 0)) != (old.get(key, {}).get("offset", 0), old.get(key, {}).get("skip", 0))
        ]
        if len(moved) != 1:
            return None
        key = moved[0]
        entry, start_entry = new[key], old.get(key) or {"offset": 0}
        start, skip = start_entry["offset"], start_entry.get("skip", 0)
        size = entry["offset"] - start + (MAX_DOCUMENT_BYTES if entry.get("skip") else 0)
        data = self._reread(key, entry, start, size)
        if data is None:
            return None
        parser = StreamParser(self.spec, 1)
        parser.offset, parser.skip, parser.discard = start, skip, bool(start_entry.get("discard"))
        parser.feed(data)
        parser.end(final=True)
        parser.cut()
        cuts = parser.ready
        if index >= len(cuts):
            return None
        found = cuts[index][0][0]
        if (found if type(found) is str else found.message) != message:
            return None
        offset, items = (start, skip) if index == 0 else cuts[index - 1][1:3]
        if self.spec.format == "lines":
            end = cuts[index][1] - start
            if data[end - 1 : end] == b"\n":
                end -= 1
            line_start = start + data.rfind(b"\n", 0, end) + 1
            if line_start == 0 and data.startswith(b"\xef\xbb\xbf"):
                line_start = 3  # after the byte order mark
            return f"{entry['path']} byte {line_start}"
        if not items:
            rest = data[offset - start :]
            offset += len(rest) - len(rest.lstrip(b" \t\r\n,"))
            return f"{entry['path']} byte {offset}"
        return f"{entry['path']} byte {offset} (after {items} items of the JSON value there)"

    def _reread(self, key: str, entry: dict[str, Any], start: int, size: int) -> bytes | None:
        """Up to ``size`` bytes (decompressed for gzip) from ``start`` of the file of
        checkpoint ``entry``, through the open file if there is one; None if it is gone."""
        f = self._files.get(key)
        fd = f.fd if f is not None else None
        opened = None
        try:
            if fd is None:
                fd = opened = os.open(entry["path"], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (entry["dev"], entry["ino"]):
                    return None
            if entry.get("gz"):
                with gzip.GzipFile(fileobj=io.FileIO(fd, "rb", closefd=False), mode="rb") as gz:
                    return _gz_read(gz, size, start)
            return os.pread(fd, size, start)
        except (OSError, EOFError, zlib.error):
            return None
        finally:
            if opened is not None:
                os.close(opened)

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
                    log.warning(_not_a_file_warning(self.name, path, st.st_mode))
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

    def _new_file(self, path: str, st: os.stat_result) -> _File:
        f = _File(path, st, StreamParser(self.spec, self.batch_size, self._doc_limit))
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
                        f = _File(dirent.path, st, StreamParser(self.spec, self.batch_size, self._doc_limit))
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

    def _take_partial_line(self, f: _File) -> list[EventBatch]:
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
            offset = f.parser.read_pos
            if offset and not f.gz:  # resumed: the bytes before the offset, to notice a rewrite
                f.tail = os.pread(fd, min(HEAD_BYTES, offset), offset - min(HEAD_BYTES, offset))
                f.tail_end = offset
        except OSError:
            self._fail(f)
            return False
        return True

    def _fail(self, f: _File) -> None:
        if not f.failed:
            f.failed = True
            self._tally.count_malformed("unreadable_file")
        f.close()

    def _counts(self, counts: dict[str, int] | None) -> dict[str, int] | None:
        """A batch's malformed counts: ``counts`` (a parser's cut) and the file-level ones
        not yet carried by a batch."""
        tally = self._tally.malformed
        if not tally:
            return counts
        self._tally.malformed = {}
        if counts:
            for reason, n in counts.items():
                tally[reason] = tally.get(reason, 0) + n
        return tally

    def _batches_ready(self, f: _File) -> list[EventBatch]:
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

    def _flush(self, f: _File) -> list[EventBatch]:
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

    async def _drain(self, f: _File, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
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
            if len(data) >= HEAD_BYTES or f.tail_end != pos:
                f.tail = data[-HEAD_BYTES:]
            else:
                f.tail = (f.tail + data)[-HEAD_BYTES:]
            f.tail_end = pos + len(data)
            if f.tail_end > f.size:  # grown since the last look
                f.changed_at = time.monotonic()
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
            p.end(final=not follow)
            for batch in self._flush(f):
                yield batch
            if not follow:
                f.close()
        else:
            for batch in self._flush(f):
                yield batch

    def _quiet(self, f: _File, seconds: float) -> bool:
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

    def _settle(self, f: _File) -> list[EventBatch]:
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
        self._tally.count_malformed("unreadable_file")
        f.parser.take()  # a partial last line of a broken stream is not an event
        f.parser.mode = None
        f.done = done

    # -- stdin ---------------------------------------------------------------------------

    async def _stdin_batches(self, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
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
        p = StreamParser(self.spec, self.batch_size, self._doc_limit)
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
