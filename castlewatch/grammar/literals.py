"""The matcher's two hottest loops: literal scans and the plain field split.

Two backends give the same results (the test suite runs the conformance cases on both):

- ``"c"``: :mod:`castlewatch.grammar._speedups`, an optional C extension built at install
  time (SSE2 scan of 1-byte strings, one call per event instead of one ``in`` per literal);
- ``"python"``: the pure-Python functions below, used when the extension is not built,
  or when the environment variable ``CASTLEWATCH_PURE_PYTHON`` is set (to anything but
  empty, ``0``, ``false``, ``no`` or ``off``, which leave the C backend on).

The backend is chosen when a pattern is compiled; :func:`use_backend` switches it (and
empties the compiled-pattern cache so no pattern keeps the other one).
"""

from __future__ import annotations

import os
from collections.abc import Callable

try:
    from castlewatch.grammar import _speedups
except ImportError:  # not built (no C compiler at install time): pure Python
    _speedups = None


def python_literals(
    required: tuple[str, ...], excluded: tuple[str, ...], optional: tuple[str, ...]
) -> Callable[[str], bool]:
    """``message -> bool``: all ``required`` in it, no ``excluded`` in it, and when
    ``optional`` is not empty, at least one of them in it (Python's ``in``: case-sensitive
    substrings, spec §3.2).  The usual shapes are unrolled: no generator per event.
    """
    r, x, o = required, excluded, optional
    shape = (len(r), len(x), len(o))
    if shape == (0, 0, 0):
        return lambda m: True
    if not o and len(r) + len(x) <= 3:
        r = r + ("",) * (3 - len(r))
        x = x + ("",) * (3 - len(x))
        unrolled = {
            (1, 0): lambda m: r[0] in m,
            (2, 0): lambda m: r[0] in m and r[1] in m,
            (3, 0): lambda m: r[0] in m and r[1] in m and r[2] in m,
            (0, 1): lambda m: x[0] not in m,
            (0, 2): lambda m: x[0] not in m and x[1] not in m,
            (0, 3): lambda m: x[0] not in m and x[1] not in m and x[2] not in m,
            (1, 1): lambda m: r[0] in m and x[0] not in m,
            (1, 2): lambda m: r[0] in m and x[0] not in m and x[1] not in m,
            (2, 1): lambda m: r[0] in m and r[1] in m and x[0] not in m,
        }
        return unrolled[shape[:2]]
    if shape == (0, 0, 1):
        (a,) = o
        return lambda m: a in m
    if shape == (0, 0, 2):
        a, b = o
        return lambda m: a in m or b in m

    def matches(m: str) -> bool:
        for t in r:
            if t not in m:
                return False
        for t in x:
            if t in m:
                return False
        if not o:
            return True
        for t in o:
            if t in m:
                return True
        return False

    return matches


def python_plain_split(message: str) -> list[str] | None:
    """``message.split()`` when that is exactly the space-delimited field split (§6.2),
    else None.

    ``str.split()`` splits ASCII text on the pattern language's separators (space, tab,
    CR, LF, FF, VT) plus ``\\x1c``-``\\x1f``; with none of those four, no ``"`` and no ``[``
    (which group fields), the two agree.
    """
    if (
        message.isascii()
        and '"' not in message
        and "[" not in message
        and "\x1c" not in message
        and "\x1d" not in message
        and "\x1e" not in message
        and "\x1f" not in message
    ):
        return message.split()
    return None


def python_plain_field(message: str, index: int) -> tuple[int, str | None] | None:
    """``(len(fields), fields[index])`` (None for a field past the last) where
    ``fields = python_plain_split(message)``, else None: what a pattern with one condition
    needs of the split (the C backend's ``plain_field`` builds only that one field)."""
    fields = python_plain_split(message)
    if fields is None:
        return None
    return len(fields), fields[index] if 0 <= index < len(fields) else None


_BACKENDS: dict[str, tuple[Callable, Callable, Callable]] = {
    "python": (python_literals, python_plain_split, python_plain_field)
}
if _speedups is not None:
    _BACKENDS["c"] = (_speedups.Literals, _speedups.plain_split, _speedups.plain_field)

#: The backends available here: ``("c", "python")`` or ``("python",)``.
AVAILABLE: tuple[str, ...] = tuple(sorted(_BACKENDS))

#: ``(required, excluded, optional) -> (message -> bool)`` of the current backend.
literals: Callable[[tuple[str, ...], tuple[str, ...], tuple[str, ...]], Callable[[str], bool]]
#: ``message -> list[str] | None`` of the current backend (see :func:`python_plain_split`).
plain_split: Callable[[str], list[str] | None]
#: ``(message, index) -> (int, str | None) | None`` of the current backend (see :func:`python_plain_field`).
plain_field: Callable[[str, int], tuple[int, str | None] | None]
_current = ""


def backend() -> str:
    """The backend new patterns are compiled with: ``"c"`` or ``"python"``."""
    return _current


def use_backend(name: str) -> None:
    """Compile patterns with the ``"c"`` or ``"python"`` backend from now on.

    Empties :func:`castlewatch.compile_pattern`'s cache.  Raises ValueError when the
    backend is not available (``"c"`` without the built extension).
    """
    global literals, plain_split, plain_field, _current
    if name not in _BACKENDS:
        raise ValueError(f"no {name!r} backend here (available: {', '.join(AVAILABLE)})")
    literals, plain_split, plain_field = _BACKENDS[name]
    _current = name
    from castlewatch.grammar import purge  # late: the package imports this module

    purge()


def _initial() -> str:
    flag = os.environ.get("CASTLEWATCH_PURE_PYTHON", "").strip().lower()
    return "c" if "c" in _BACKENDS and flag in ("", "0", "false", "no", "off") else "python"


literals, plain_split, plain_field = _BACKENDS[_initial()]
_current = _initial()
