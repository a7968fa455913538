"""The CloudWatch sink's files: the spool of requests not yet accepted, and the publish ledger.

**Spool** (:class:`Spool`): an append-only file of PutMetricData requests, one JSON line
each (``{"Namespace": ..., "MetricData": [...]}``, ready for ``aws cloudwatch
put-metric-data --cli-input-json``), after a header line ``{"castlewatch_spool": 1,
"base": B}``. A request is known by its *logical offset*: ``B`` plus its byte offset after
the header. Logical offsets never change: :meth:`Spool.rotate` drops the requests before
an offset by writing a new file whose header says where it starts (atomically: temporary
file, fsync, rename), with the requests after it copied as they are. The checkpoint
holds the spool's logical end; a restart truncates the spool back to it, exactly as the
file sinks are truncated.

**Ledger** (:class:`Ledger`): what became of each request, appended and fsynced before a
request is sent (``SENDING``) and once its outcome is known (``ACCEPTED``, ``REJECTED``
by CloudWatch, ``REFUSED`` by castlewatch before sending, ``FAILED``: answered with an
error, so not applied), each entry naming the request (logical offset) and its datums
(index ranges) and holding the sink's counters so far. Framed like the checkpoint: ``u32
length, u32 CRC-32``, msgpack payload; a torn last entry is ignored. Reading it back
(:meth:`Ledger.fold`) gives the requests done, the first one not done, and the requests
sent whose outcome never came back (a crash while in flight): only those may be sent
twice, and they are counted.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import orjson

from castlewatch.sinks.base import SinkError
from castlewatch.sinks.files import fsync_dir

_HEADER_KEY = "castlewatch_spool"


def _write_atomically(path: Path, pieces: list[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        for piece in pieces:
            fh.write(piece)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _header(base: int) -> bytes:
    return orjson.dumps({_HEADER_KEY: 1, "base": base}) + b"\n"


class Spool:
    """The spool file at ``path`` (see the module docstring).

    Args:
        path: the file; its directory is created.
        end: ``None`` for a fresh spool (any file there is replaced); else the logical
            end a checkpoint recorded: the spool is truncated back to it.

    Raises:
        SinkError: the file is missing or not a spool, or does not reach ``end`` (it was
            replaced or truncated behind castlewatch's back), or starts after ``end``.
        OSError: the file cannot be created or written.
    """

    def __init__(self, path: Path, end: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if end is None:
            _write_atomically(path, [_header(0)])
        else:
            self._resume(end)
        self._open()

    def _resume(self, end: int) -> None:
        try:
            with open(self.path, "rb") as fh:
                head = fh.readline()
                size = os.fstat(fh.fileno()).st_size
        except FileNotFoundError:
            raise SinkError(f"{self.path}: the spool the checkpoint refers to is missing") from None
        try:
            base = orjson.loads(head)["base"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise SinkError(f"{self.path}: not a castlewatch spool") from None
        data = size - len(head)
        if end < base:
            raise SinkError(f"{self.path}: the spool starts at {base}, after the checkpoint's end {end}")
        if end > base + data:
            raise SinkError(
                f"{self.path}: cannot resume at {end}: the spool ends at {base + data} (was it truncated or replaced?)"
            )
        if end < base + data:
            os.truncate(self.path, len(head) + end - base)

    def _open(self) -> None:
        self._fh = open(self.path, "ab")
        with open(self.path, "rb") as fh:
            head = fh.readline()
        self.base: int = orjson.loads(head)["base"]
        self._head = len(head)
        self.end: int = self.base + os.fstat(self._fh.fileno()).st_size - self._head
        self._reader = open(self.path, "rb")

    def append(self, line: bytes) -> int:
        """Append one request line (buffered); returns its logical offset."""
        at = self.end
        self._fh.write(line)
        self.end += len(line)
        return at

    def flush(self) -> None:
        """Hand what was appended to the OS (readable, not yet durable)."""
        self._fh.flush()

    def fsync(self) -> None:
        """Make what was flushed durable (may run in a thread)."""
        os.fsync(self._fh.fileno())

    def read(self, at: int) -> tuple[dict[str, Any], int]:
        """The request at logical offset ``at`` and the offset after it (may run in a thread,
        for offsets already :meth:`flush` ed).

        Raises:
            SinkError: ``at`` is not the start of a whole request line.
        """
        self._reader.seek(self._head + at - self.base)
        line = self._reader.readline()
        if not line.endswith(b"\n"):
            raise SinkError(f"{self.path}: no whole request at offset {at}")
        try:
            return orjson.loads(line), at + len(line)
        except orjson.JSONDecodeError as err:
            raise SinkError(f"{self.path}: not a request at offset {at}: {err}") from None

    def rotate(self, base: int) -> None:
        """Drop the requests before logical offset ``base`` (all done): the file is replaced,
        atomically, by one starting at ``base`` with the requests after it."""
        self.flush()
        self._reader.seek(self._head + base - self.base)
        tail = self._reader.read()
        self._fh.close()
        self._reader.close()
        _write_atomically(self.path, [_header(base), tail])
        self._open()

    def close(self) -> None:
        """Flush and close the file (not fsynced: a checkpointed run fsyncs in its flush)."""
        if not self._fh.closed:
            self._fh.close()
            self._reader.close()

    def remove(self) -> None:
        """Close and delete the file (and its directory, if that leaves it empty)."""
        self.close()
        self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:  # not empty (other spools, a file of what was not published), or gone
            pass


# ---- the publish ledger ------------------------------------------------------------------------------

BASE, SENDING, ACCEPTED, REJECTED, REFUSED, FAILED, UNKNOWN = range(7)
_MAGIC = b"CWLEDGR\x01"
_FRAME = struct.Struct("<II")


class Entry(msgspec.Struct, array_like=True):
    """One ledger entry: ``state`` for the datums ``ranges`` ([lo, hi) indices) of the
    request at logical offset ``at`` (``next``: the offset after it; ``size``: its datums),
    ``reason`` (a refusal reason, an AWS error code), and the counters after it."""

    state: int
    at: int = 0
    next: int = 0
    size: int = 0
    ranges: list[tuple[int, int]] = []
    reason: str = ""
    published: int = 0
    unknown_outcomes: int = 0
    refused: dict[str, int] = {}


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Entry).decode


def ranges_of(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct indices as [lo, hi) ranges: ``[0, 1, 2, 5]`` gives ``[(0, 3), (5, 6)]``."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def indices_of(ranges: list[tuple[int, int]]) -> list[int]:
    """The indices of [lo, hi) ranges."""
    return [i for lo, hi in ranges for i in range(lo, hi)]


@dataclass
class Counters:
    """A CloudWatch sink's counters (see ``Stats``): datums accepted, requests of unknown
    outcome sent again, datums refused per reason."""

    published: int = 0
    unknown_outcomes: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str, n: int) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + n


@dataclass
class Folded:
    """What a ledger says: ``frontier``, the logical offset of the first request not done
    (from ``base`` on, requests are done in order); ``done``, the indices already done of
    the request at the frontier; ``in_flight``, the datum indices of that request sent
    with no outcome recorded (a crash while in flight), one list per request sent;
    ``counters``."""

    frontier: int
    done: set[int]
    in_flight: list[list[int]]
    counters: Counters


class Ledger:
    """The publish ledger at ``path`` (see the module docstring).

    Args:
        path: the file.
        fresh: start a new, empty ledger (replacing any file there); else read it.

    Raises:
        SinkError: the file is missing or not a ledger.
        OSError: it cannot be written.
    """

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        self.entries: list[Entry] = []
        if fresh:
            _write_atomically(path, [_MAGIC])
            good = len(_MAGIC)
        else:
            good = self._read()
        self._fh = open(path, "r+b")
        self._fh.truncate(good)  # a torn last entry
        self._fh.seek(good)

    def _read(self) -> int:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise SinkError(
                f"{self.path}: the publish ledger is missing: what CloudWatch accepted is unknown"
            ) from None
        if not data.startswith(_MAGIC):
            raise SinkError(f"{self.path}: not a castlewatch publish ledger")
        at = len(_MAGIC)
        while at + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, at)
            payload = data[at + _FRAME.size : at + _FRAME.size + length]
            if length == 0 or len(payload) < length or zlib.crc32(payload) != crc:
                break
            try:
                self.entries.append(_decode(payload))
            except msgspec.DecodeError:
                break
            at += _FRAME.size + length
        return at

    def append(self, entry: Entry) -> None:
        """Append ``entry`` and make it durable (fdatasync); may run in a thread."""
        payload = _encode(entry)
        self._fh.write(_FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
        self._fh.flush()
        os.fdatasync(self._fh.fileno()) if hasattr(os, "fdatasync") else os.fsync(self._fh.fileno())

    def fold(self, base: int) -> Folded:
        """What the entries say, for a spool starting at logical offset ``base``."""
        counters = Counters()
        progress: dict[int, tuple[int, int, set[int]]] = {}  # at -> (next, size, done)
        sent: dict[tuple[int, tuple], list[int]] = {}  # (at, ranges) -> indices, until an outcome
        for e in self.entries:
            counters = Counters(e.published, e.unknown_outcomes, dict(e.refused))
            if e.state == BASE or e.at < base:
                continue
            key = (e.at, tuple(map(tuple, e.ranges)))
            indices = indices_of(e.ranges)
            if e.state == SENDING:
                sent[key] = indices
                continue
            sent.pop(key, None)
            if e.state in (ACCEPTED, REJECTED, REFUSED):
                nxt, size, done = progress.setdefault(e.at, (e.next, e.size, set()))
                done.update(indices)
        frontier = base
        while frontier in progress and len(progress[frontier][2]) >= progress[frontier][1]:
            frontier = progress[frontier][0]
        done = progress[frontier][2] if frontier in progress else set()
        in_flight = [[i for i in indices if i not in done] for (at, _), indices in sent.items() if at == frontier]
        return Folded(frontier, done, [i for i in in_flight if i], counters)

    def compact(self, counters: Counters) -> None:
        """Replace the ledger by one entry holding ``counters`` (every request done)."""
        self._fh.close()
        payload = _encode(Entry(BASE, published=counters.published, unknown_outcomes=counters.unknown_outcomes,
                                refused=dict(counters.refused)))
        _write_atomically(self.path, [_MAGIC, _FRAME.pack(len(payload), zlib.crc32(payload)), payload])
        self.entries = []
        self._fh = open(self.path, "r+b")
        self._fh.seek(0, os.SEEK_END)

    def close(self) -> None:
        """Close the file (every entry was made durable when it was appended)."""
        self._fh.close()
