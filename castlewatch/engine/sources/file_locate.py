"""Finding an event of a file source again, for a report (an event whose evaluation failed).

Slow on purpose: the part of the file between two checkpoint positions is read again
and parsed event by event; nothing here runs on the events' way.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import TYPE_CHECKING, Any

from castlewatch.engine.formats import MAX_DOCUMENT_BYTES, StreamParser
from castlewatch.engine.sources.file_state import gz_read

if TYPE_CHECKING:
    from castlewatch.engine.sources.files import FileSource


def locate(source: FileSource, before: Any, after: Any, index: int, message: str) -> str | None:
    """Where event ``index`` (0-based, with this ``message``) of a batch of ``source`` is, as
    ``"<path> byte N"``: the batch was read between the checkpoint positions ``before``
    (the previous batch's, or None) and ``after`` (its own).

    For reports only (an event whose evaluation failed), so it may be slow: it reads
    that part of the file again and parses it event by event. ``lines``: N is where
    the event's line starts; JSON formats: where reading resumes to give that event
    first (with the number of items of the JSON value there already read before it).
    None when it cannot be told: the file no longer there or changed, the
    event not found where it was read.
    """
    if not isinstance(after, dict):
        return None
    old = before.get("files", {}) if isinstance(before, dict) else {}
    new = after.get("files", {})
    moved = [
        key
        for key, entry in new.items()
        if (entry["offset"], entry.get("skip", 0))
        != (old.get(key, {}).get("offset", 0), old.get(key, {}).get("skip", 0))
    ]
    if len(moved) != 1:
        return None
    key = moved[0]
    entry, start_entry = new[key], old.get(key) or {"offset": 0}
    start, skip = start_entry["offset"], start_entry.get("skip", 0)
    size = entry["offset"] - start + (MAX_DOCUMENT_BYTES if entry.get("skip") else 0)
    data = _reread(source, key, entry, start, size)
    if data is None:
        return None
    parser = StreamParser(source.spec, 1)
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
    if source.spec.format == "lines":
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

def _reread(source: FileSource, key: str, entry: dict[str, Any], start: int, size: int) -> bytes | None:
    """Up to ``size`` bytes (decompressed for gzip) from ``start`` of the file of
    checkpoint ``entry``, through the open file if there is one; None if it is gone."""
    f = source._files.get(key)
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
                return gz_read(gz, size, start)
        return os.pread(fd, size, start)
    except (OSError, EOFError, zlib.error):
        return None
    finally:
        if opened is not None:
            os.close(opened)
