"""The durable file underneath every file sink (JSON Lines, CSV, Avro).

Durability and resume
    ``write()`` only buffers / writes to the OS; ``flush()`` makes everything written
    so far durable (``flush`` + ``os.fsync``; for Avro it first ends the current block)
    and returns the checkpoint position ``{"size": <bytes>}``.
    ``open_sink(spec, position)`` with that position truncates the file back to it and
    appends, so whatever was written after the checkpoint (a torn line, a half Avro
    block, whole datapoints the runner will produce again) is dropped, not duplicated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkBase, SinkError


def position_size(position: Any) -> int:
    """The byte size recorded in a checkpoint position ``{"size": N}``."""
    if isinstance(position, dict):
        size = position.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            return size
    raise SinkError(f"invalid sink position {position!r}; expected {{'size': <non-negative int>}}")


def fsync_dir(path: Path) -> None:
    """fsync a directory so a newly created entry in it survives a crash (POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prepare_file(path: Path, position: Any) -> int:
    """Create parents; truncate the file for a fresh run or back to ``position``.

    Returns the file's size afterwards (0 for a fresh run).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if position is None:
        existed = path.exists()
        with open(path, "wb"):
            pass
        if not existed:
            fsync_dir(path.parent)
        return 0
    size = position_size(position)
    try:
        current = path.stat().st_size
    except FileNotFoundError:
        if size:
            raise SinkError(f"{path}: cannot resume at byte {size}: the file does not exist") from None
        with open(path, "wb"):
            pass
        fsync_dir(path.parent)
        return 0
    if current < size:
        raise SinkError(
            f"{path}: cannot resume at byte {size}: the file has only {current} bytes "
            "(was it truncated or replaced?)"
        )
    if current > size:
        os.truncate(path, size)
    return size


# --------------------------------------------------------------------------- file sinks


class DurableFileSink(SinkBase):
    """What every file sink shares: a binary file that ``flush`` makes durable and
    measures (the checkpoint position), ``close``, and context-manager use.
    Subclasses set ``path`` and ``_fh`` and may end a block in ``_end_block``."""

    path: Path
    _fh: BinaryIO | None

    def _file(self) -> BinaryIO:
        if self._fh is None:
            raise SinkError(f"{self.path}: sink is closed")
        return self._fh

    def _end_block(self) -> None:
        """Write out anything buffered above the file (Avro's open block)."""

    def flush(self) -> dict[str, int]:
        """Flush and fsync the file; return the position ``{"size": bytes}`` to resume at."""
        fh = self._file()
        self._end_block()
        fh.flush()
        os.fsync(fh.fileno())
        return {"size": os.fstat(fh.fileno()).st_size}

    def close(self) -> None:
        """Flush durably and close the file; calling it again does nothing."""
        if self._fh is None:
            return
        try:
            self.flush()
        finally:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


#: Bytes a file sink buffers before it writes (a large minute of JSON Lines is megabytes:
#: one write() per MiB, not per 8 KiB). Durability is unchanged: ``flush`` writes and syncs.
WRITE_BUFFER = 1 << 20


class FileSink(DurableFileSink):
    """A sink appending encoded batches to one file; subclasses define ``_encode``."""

    def __init__(self, path: str | os.PathLike[str], position: Any = None) -> None:
        self.path = Path(path)
        if position is not None:
            self._check_resumable(position_size(position))  # before anything is truncated
        size = prepare_file(self.path, position)
        self._fh = open(self.path, "ab", buffering=WRITE_BUFFER)
        if size == 0:
            head = self._header()
            if head:
                self._fh.write(head)

    def _header(self) -> bytes:
        return b""

    def _check_resumable(self, size: int) -> None:
        """Raise SinkError if the file cut back to ``size`` bytes cannot be appended to:
        it must start with the header (a missing or short file is left to prepare_file)."""
        head = self._header()
        if not head or size == 0:
            return
        try:
            with open(self.path, "rb") as fh:
                start = fh.read(len(head))
        except FileNotFoundError:
            return
        if len(start) < min(size, len(head)):
            return
        if size < len(head) or start != head:
            raise SinkError(
                f"{self.path}: does not start with the header castlewatch writes "
                f"({head.decode('utf-8').strip()}); written by another castlewatch version? cannot append"
            )

    def _encode(self, datapoints: list[Datapoint]) -> Iterable[bytes]:  # pragma: no cover - abstract
        """The bytes to append for ``datapoints``, in pieces written one after the other
        (so a minute of many datums is never held twice in memory)."""
        raise NotImplementedError

    def write(self, datapoints: list[Datapoint]) -> None:
        """Append the datapoints to the file (buffered; durable only after ``flush``).

        Raises:
            SinkError: the sink is closed.
        """
        write = self._file().write
        for piece in self._encode(datapoints):
            write(piece)
