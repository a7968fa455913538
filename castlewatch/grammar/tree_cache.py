"""The ASTs of the filter patterns parsed before, kept between processes (issue 11).

A process that compiles only patterns it has met before (a daemon restarting, a replay
run again, the same CIS pack) then needs neither Lark nor the LALR tables: about 40 ms
less start-up. The file is ``patterns-<digest>.pickle`` in the user's cache directory
(``$XDG_CACHE_HOME/castlewatch``, else ``~/.cache/castlewatch``, made ``0700``; the
same folder as Lark's own cache, :func:`castlewatch.grammar.lalr._cache_file`), a pickled
``{pattern text: AST}``. ``<digest>`` is a checksum (CRC-32 and Adler-32) of castlewatch's
version, of the files that decide an AST (the grammar, the parser, the AST classes, the
messages) and of Lark's ``__init__`` (which names its version), so an upgrade of either or
an edited checkout starts a new file and does not read another version's trees.

Only patterns that parsed are kept (a rejected one is parsed again, to raise its error),
at most :data:`MAX_PATTERNS`: the ones this process used first (a run's own patterns stay
in the file however many others come and go), then those the file held. New trees are
written once, when the process exits, to a temporary file renamed over the old one (two
processes writing at once: the last one wins, each file whole). A file that cannot be
read, written or unpickled is ignored: the parser then runs as without a cache.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

#: The most pattern trees one cache file holds (a few hundred bytes each: loading them
#: costs far less than importing Lark), and the most this process adds to it.
MAX_PATTERNS = 256
_SOURCES = ("filter_pattern.lark", "parser.py", "lalr.py", "ast.py", "numbers.py", "errors.py", "tree_cache.py")

_trees: dict[str, Any] | None = None  # the file's, loaded on first use
_used: dict[str, Any] = {}  # the trees this process used, in order (at most MAX_PATTERNS)
_new = False


def cache_folder() -> str | None:
    """The folder of castlewatch's caches (made when missing), or None: no home, a relative
    ``XDG_CACHE_HOME``, or a folder that cannot be made."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    folder = os.path.join(base, "castlewatch")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder


def _path() -> str | None:
    folder = cache_folder()
    if folder is None:
        return None
    from castlewatch import __version__

    data = [__version__.encode()]
    here = Path(__file__).parent
    lark = importlib.util.find_spec("lark")  # found, not imported: its __init__ names its version
    try:
        data += [(here / name).read_bytes() for name in _SOURCES]
        data.append(Path(lark.origin).read_bytes() if lark is not None and lark.origin else b"")
    except OSError:
        return None
    joined = b"\0".join(data)  # a cache key, not a signature: CRC-32 and Adler-32 (zlib is loaded anyway)
    return os.path.join(folder, f"patterns-{zlib.crc32(joined):08x}{zlib.adler32(joined):08x}.pickle")


def _load() -> dict[str, Any]:
    global _trees
    if _trees is None:
        _trees = {}
        path = _path()
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    found = pickle.load(fh)
                if isinstance(found, dict):
                    _trees = found
            except Exception:  # missing, unreadable, truncated, another format: no cache
                _trees = {}
    return _trees


def get(pattern: str) -> Any:
    """The AST of ``pattern`` kept from an earlier parse, or None."""
    tree = _used.get(pattern)
    if tree is None:
        tree = _load().get(pattern)
        if tree is not None and len(_used) < MAX_PATTERNS:
            _used[pattern] = tree
    return tree


def put(pattern: str, tree: Any) -> None:
    """Keep the AST of a pattern that parsed; written when the process exits."""
    global _new
    if pattern in _used or len(_used) >= MAX_PATTERNS:
        return
    _used[pattern] = tree
    if not _new:
        _new = True
        atexit.register(save)


def save() -> None:
    """Write the trees if new ones were added (also called at exit); errors are ignored."""
    global _new
    if not _new:
        return
    _new = False
    path = _path()
    if path is None:
        return
    trees = dict(_used)
    for pattern, tree in _load().items():
        if len(trees) >= MAX_PATTERNS:
            break
        trees.setdefault(pattern, tree)
    import tempfile

    try:
        fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".patterns-")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(trees, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except Exception:  # a full disk, a read-only home: the next process parses again
        pass
