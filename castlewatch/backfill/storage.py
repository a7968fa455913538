"""Where a backfill source's archive is: a local folder (or glob), or ``s3://bucket/prefix``.

Listing (on the client, :func:`list_objects`) walks the folders level by level and goes
only into those that may hold log files of the source's format within the dates
(:func:`~castlewatch.backfill.layout.folder_may_hold`), so objects outside the dates are
neither read nor, mostly, listed. Objects are ordered by key (code point order, which is
S3's UTF-8 byte order and the order a replay's sorted glob reads files in).

Reading (on a worker, :func:`open_object`): a local file, or an S3 object through s3fs
(a maintained fsspec filesystem over aiobotocore, which the rest of castlewatch uses for
AWS) with ``endpoint_url`` and ``region`` from the source's configuration; credentials
come from the standard AWS chain (environment, shared files, instance or task role) of
the machine reading, never from castlewatch. An S3 object is read in blocks of
:data:`S3_BLOCK_BYTES`, never whole.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

from castlewatch.backfill.layout import classify, folder_may_hold

#: S3 bytes fetched per request while an object is read.
S3_BLOCK_BYTES = 8 << 20
_LIST_THREADS = 16


@dataclass(frozen=True, slots=True)
class Location:
    """A source's archive.

    Attributes:
        url: ``s3://bucket/prefix`` or an absolute local path (a folder, or a glob).
        endpoint_url: for S3: another endpoint than AWS's (moto, LocalStack, MinIO).
        region: for S3: the bucket's region (else the standard chain's).
    """

    url: str
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def name(self, key: str) -> str:
        """How an object of this archive is named to a user: ``s3://bucket/key`` or its path."""
        return f"s3://{key}" if self.is_s3 else key


@dataclass
class Listing:
    """What a listing found within the dates.

    Attributes:
        logs: (key, size in bytes) of each log file to read, ordered by key.
        unreadable: (key, reason) of objects in the service's date folders that are not
            log files castlewatch reads (they fail the backfill: named, exit non-zero).
        undated: (key, reason) of objects in the service's folders outside its date folders.
        other: reason -> objects listed that are not the source's (another service's
            folder, outside ``AWSLogs/``); digest folders are not even listed.
    """

    logs: list[tuple[str, int]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    undated: list[tuple[str, str]] = field(default_factory=list)
    other: Counter = field(default_factory=Counter)


def s3_filesystem(location: Location) -> Any:
    """The s3fs filesystem for ``location`` (s3fs caches instances per arguments, so a
    worker makes one per endpoint and region)."""
    import s3fs

    client_kwargs = {"region_name": location.region} if location.region else {}
    return s3fs.S3FileSystem(endpoint_url=location.endpoint_url, client_kwargs=client_kwargs,
                             use_listings_cache=False, default_block_size=S3_BLOCK_BYTES)


def open_object(location: Location, key: str) -> IO[bytes]:
    """Open one object of ``location`` for reading (binary, seekable).

    Raises:
        OSError: it cannot be opened (missing, denied, unreachable).
    """
    if location.is_s3:
        return s3_filesystem(location).open(key, "rb", block_size=S3_BLOCK_BYTES, cache_type="readahead")
    return open(key, "rb")


def list_objects(location: Location, fmt: str, start: _dt.date, end: _dt.date) -> Listing:
    """The objects of ``location`` a source of format ``fmt`` reads from ``start`` to
    ``end`` (inclusive, UTC dates of the keys), and what else was found.

    Raises:
        OSError: the folder or bucket cannot be listed (missing, denied, unreachable).
    """
    listing = Listing()
    if location.is_s3:
        fs = s3_filesystem(location)
        root = location.url[len("s3://"):].rstrip("/")
        entries = _walk(root, lambda folder: _s3_ls(fs, folder), fmt, start, end)
    elif glob.has_magic(location.url):
        entries = [(path, os.path.getsize(path)) for path in glob.glob(location.url, recursive=True)
                   if os.path.isfile(path)]
    else:
        if not os.path.isdir(location.url):
            raise NotADirectoryError(f"{location.url} is not a folder (a backfill source reads the folder that holds "
                                     "AWSLogs/, or a glob)")
        entries = _walk(location.url.rstrip(os.sep) or os.sep, _local_ls, fmt, start, end)
    for key, size in sorted(entries):
        verdict = classify(key, fmt)
        if verdict.kind == "other":
            listing.other[verdict.reason] += 1
        elif verdict.kind == "undated":
            listing.undated.append((key, verdict.reason))
        elif verdict.date is not None and start <= verdict.date <= end:
            if verdict.kind == "log":
                listing.logs.append((key, size))
            else:
                listing.unreadable.append((key, verdict.reason))
    return listing


def _walk(root: str, ls: Callable[[str], tuple[list[str], list[tuple[str, int]]]], fmt: str,
          start: _dt.date, end: _dt.date) -> list[tuple[str, int]]:
    """Every file under ``root`` in the folders that may hold the source's log files in
    the dates, level by level (the folders of a level listed in parallel)."""
    files: list[tuple[str, int]] = []
    level = [root]
    with ThreadPoolExecutor(_LIST_THREADS) as pool:
        while level:
            nxt = []
            for folders, found in pool.map(ls, level):
                files += found
                nxt += [f for f in folders if folder_may_hold(f, fmt, start, end)]
            level = nxt
    return files


def _local_ls(folder: str) -> tuple[list[str], list[tuple[str, int]]]:
    folders, files = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                folders.append(entry.path)
            else:  # a broken link too: named when it cannot be read
                try:
                    size = entry.stat().st_size
                except OSError:
                    size = 0
                files.append((entry.path, size))
    return folders, files


def _s3_ls(fs: Any, folder: str) -> tuple[list[str], list[tuple[str, int]]]:
    folders, files = [], []
    for entry in fs.ls(folder, detail=True, refresh=True):
        name = entry["name"].rstrip("/")
        if entry.get("type") == "directory":
            folders.append(name)
        else:
            files.append((name, int(entry.get("size") or 0)))
    return folders, files
