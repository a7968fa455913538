"""A file source's per-file state and its checkpoint entries (:mod:`.files` reads the files).

A file is known by its identity (device, inode) whatever its name; its checkpoint entry
(:meth:`FileState.entry`) says how far it was read and how to recognise it on resume (the
shape: :class:`~castlewatch.engine.sources.files.FileSource`).
"""

from __future__ import annotations

import gzip
import os
import stat as _stat
import time
import zlib
from typing import Any

from castlewatch.engine.formats import StreamParser

#: Bytes at the start of a file whose CRC-32 is checkpointed, to recognise the file on resume;
#: also the bytes just before the read offset compared on each look while following, to
#: notice a file rewritten in place (truncated and written again, to any size).
HEAD_BYTES = 256
#: Checkpoint format version.
POSITIONS_VERSION = 1


class FileState:
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
        if offset and self.parser.header is not None:  # flow_log_file: its header, read before offset
            entry["header"] = self.parser.header
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


def gz_read(gzf: gzip.GzipFile, size: int, skip: int) -> bytes:
    """Of a gzip stream, discard ``skip`` decompressed bytes, then read up to ``size`` (runs in a thread)."""
    while skip > 0:
        data = gzf.read(min(skip, size))
        if not data:
            return b""
        skip -= len(data)
    return gzf.read(size)


def has_magic(pattern: str) -> bool:
    """Whether a file source's path has glob characters (``*``, ``?``, ``[``)."""
    return any(c in pattern for c in "*?[")


def not_a_file_warning(source: str, path: str, mode: int) -> str:
    """The warning for a glob's match that is not a regular file (nor a directory)."""
    what = "a named pipe (FIFO)" if _stat.S_ISFIFO(mode) else "a socket" if _stat.S_ISSOCK(mode) else "a device"
    advice = f"; read a pipe with a stdin source: castlewatch ... < {path}" if _stat.S_ISFIFO(mode) else ""
    return f"Warning: source {source}: {path} is {what}, not a regular file: the glob skips it{advice}"


def check_file_path(path: str) -> None:
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


def check_positions(positions: Any) -> dict[str, dict[str, Any]]:
    """The ``files`` entries of a checkpoint, copied; ValueError if it is not one."""
    if not positions:
        return {}
    if not isinstance(positions, dict) or positions.get("v") != POSITIONS_VERSION:
        raise ValueError(f"positions must be a checkpoint of version {POSITIONS_VERSION} from FileSource.positions()")
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
