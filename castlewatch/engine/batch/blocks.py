"""The two scans of a batch's messages made in one call each, and the block they split.

A block is the UTF-8 bytes of the messages, each followed by ``\\n`` (the messages of a
``lines`` source hold none). Two scans, in C (:mod:`castlewatch.grammar._speedups`) or, on
the pure-Python backend, in Python with the same results:

- :func:`scan`: which of a set of literals occur in each message (on the messages' own
  1-byte representation, so a literal is found exactly when ``literal in message``),
  whether it holds ``\\u`` (a JSON escape that may hide a literal), and whether its first character other than
  ``" \\t\\n\\r\\f\\v"`` is ``{``;
- :func:`split`: the space-delimited fields of each line (§6.2), with a flag saying whether
  the split is exact (ASCII, no ``"``, ``[`` or ``\\x1c``-``\\x1f``, so that ``str.split()`` is
  the field split) and the line has exactly ``k`` fields.

And, in C only, :func:`json_times`: the time field of JSON messages, read without decoding them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from castlewatch.grammar import literals as _literals

try:
    from castlewatch.grammar import _speedups
except ImportError:  # pragma: no cover - the extension not built: pure Python
    _speedups = None

#: The shortest literal the block scan looks for (its 4-byte anchor).
MIN_LITERAL = 4
#: The most number fields, and the most (field, bytes) comparisons, :func:`split` takes.
MAX_SPLIT_FIELDS = 16
#: A key field :func:`split` could not pack (over 7 bytes, or the line not exact).
NO_KEY = np.uint64(2**64 - 1)
#: The most digits :func:`split` reads as a number (below 2^53, so ``float(text)`` is that integer).
MAX_DIGITS = 15
ESCAPE_U = 1  # scan flags
OPENS_OBJECT = 2
NOT_SCANNED = 4
_BLANK_STR = " \t\n\r\f\v"
_FIELD = re.compile(rb"[^ \t\n\r\f\v]+")
_SPECIAL = re.compile(rb'[\x80-\xff"\[\x1c-\x1f]')


def block_of(messages: list[str]) -> bytes:
    """The block of ``messages``: their UTF-8 bytes (lone surrogates passed through, as the
    literal scanner of :mod:`castlewatch.engine.prefilter` encodes them), one ``\\n`` after each
    (ASCII messages copied once by the C extension when it is there)."""
    if _speedups is not None and type(messages) is list:
        block = _speedups.ascii_block(messages)
        if block is not None:
            return block
    return ("\n".join(messages) + "\n").encode("utf-8", "surrogatepass") if messages else b""


def _c_backend() -> bool:
    return _speedups is not None and _literals.backend() == "c"


#: :func:`json_times` of a message it leaves to the caller.
UNDECIDED_TIME = np.iinfo(np.int64).min + 2


def json_times(messages: list[str], rows: Any, field: str) -> Any:
    """The time of each message of ``rows`` (int indexes into ``messages``) from its top-level
    key ``field`` (an identifier) with the C validator of ``_json_time.c``: an int64 array of
    epoch ms (a string ``YYYY-MM-DDTHH:MM:SSZ``), ``NO_TIME`` (null or absent: no time) or
    :data:`UNDECIDED_TIME` where the message is not certainly one JSON object that every
    decoder of the general path takes with the key at most once, or the value has another
    type or form. None on the pure-Python backend.
    """
    if not _c_backend() or type(messages) is not list:
        return None
    got = _speedups.json_times(messages, np.ascontiguousarray(rows, np.int64).tobytes(), field)
    return np.frombuffer(got, np.int64)


def latin1(literals: tuple[str, ...]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """The literals a 1-byte str can hold, as Latin-1 bytes, and their indexes (a literal with
    a character beyond U+00FF occurs in no such str)."""
    out, where = [], []
    for i, lit in enumerate(literals):
        try:
            out.append(lit.encode("latin-1"))
        except UnicodeEncodeError:
            continue
        where.append(i)
    return tuple(out), tuple(where)


def _windows(data: bytes) -> Any:
    """Every 4-byte window of ``data`` as a uint32 (little-endian), in order."""
    b = np.frombuffer(data, np.uint8).astype(np.uint32)
    if len(b) < 4:
        return np.zeros(0, np.uint32)
    return b[:-3] | (b[1:-2] << 8) | (b[2:-1] << 16) | (b[3:] << 24)


def windows(literals: tuple[bytes, ...], sample: list[str]) -> tuple[tuple[int, ...], int]:
    """``(firsts, stride)`` for the C scan: it probes every ``stride`` bytes (the shortest
    literal's length - 3, at most 8) and registers ``stride`` consecutive 4-byte windows of
    each literal from ``firsts[j]``, those least frequent in ``sample`` (common windows,
    such as ``"eve`` in CloudTrail, would be verified at every occurrence)."""
    if not literals:
        return (), 1
    stride = max(1, min(8, min(len(lit) for lit in literals) - 3))
    seen = [_windows(message.encode("latin-1", "replace")) for message in sample]
    distinct, counts = np.unique(np.concatenate(seen) if seen else np.zeros(0, np.uint32), return_counts=True)
    wanted = np.concatenate([_windows(lit) for lit in literals])  # each literal's windows, in order
    at = np.minimum(np.searchsorted(distinct, wanted), max(0, len(distinct) - 1))
    known = (distinct[at] == wanted) if len(distinct) else np.zeros(len(wanted), bool)
    costs = np.where(known, counts[at] if len(distinct) else 0, 0).tolist()
    firsts = []
    for lit in literals:
        cost, costs = costs[:len(lit) - 3], costs[len(lit) - 3:]
        totals = [sum(cost[o:o + stride]) for o in range(len(cost) - stride + 1)]
        firsts.append(totals.index(min(totals)))
    return tuple(firsts), stride


class LiteralScan:
    """A scan's set-up for a set of literals, made once from a sample of messages: the C
    scan's windows, and the pure-Python backend's RE2 set of the literals (one pass per
    message, :class:`~castlewatch.engine.prefilter.LiteralScanner`)."""

    def __init__(self, literals: tuple[str, ...], sample: list[str]) -> None:
        self.literals = literals
        self.data, self.where = latin1(literals)
        self.firsts, self.stride = windows(self.data, sample) if _speedups is not None else ((), 1)
        self._python: Any = None

    def python_scanner(self) -> Any:
        """``message -> literal ids found`` (RE2 set over the message's UTF-8 bytes)."""
        if self._python is None:
            from castlewatch.engine.prefilter import LiteralScanner

            scanner = LiteralScanner([("any", list(self.literals))]) if self.literals else None
            order = [scanner.ids[lit] for lit in self.literals] if scanner else []
            back = {j: i for i, j in enumerate(order)}
            self._python = (scanner, back)
        return self._python


def scan(messages: list[str], literals: tuple[str, ...], setup: LiteralScan | None = None) -> tuple[Any, Any]:
    """``(masks, flags)`` for ``messages``: ``masks`` a ``(n, words)`` uint64 array (bit ``j``
    of a message's words: ``literals[j] in message``), ``flags`` a uint8 array
    (:data:`ESCAPE_U`: ``\\u`` in it, :data:`OPENS_OBJECT`, :data:`NOT_SCANNED`: a message
    with a character beyond U+00FF, whose bits are not set).

    ``literals`` are at least :data:`MIN_LITERAL` characters; ``setup`` (for the C scan) is
    made once per set of literals (:class:`LiteralScan`).
    """
    n = len(messages)
    words = max(1, (len(literals) + 63) // 64)
    if _c_backend():
        if setup is None or setup.literals != literals:
            setup = LiteralScan(literals, messages[:64])
        data, where = setup.data, setup.where
        masks, flags = _speedups.scan_lines(messages, data, setup.firsts, setup.stride)
        masks = np.frombuffer(masks, np.uint64).reshape(n, max(1, (len(data) + 63) // 64))
        if len(where) != len(literals):  # back to the literals' own numbering
            full = np.zeros((n, words), np.uint64)
            for j, i in enumerate(where):
                bit = (masks[:, j >> 6] >> np.uint64(j & 63)) & np.uint64(1)
                full[:, i >> 6] |= bit << np.uint64(i & 63)
            masks = full
        return masks, np.frombuffer(flags, np.uint8)
    if setup is None or setup.literals != literals:
        setup = LiteralScan(literals, [])
    scanner, back = setup.python_scanner()
    rows: list[list[int]] = []
    flags = np.zeros(n, np.uint8)
    word_mask = (1 << 64) - 1
    for i, message in enumerate(messages):
        bits = 0
        if not message.isascii() and max(message) > "\xff":
            flags[i] = NOT_SCANNED
        else:
            f = ESCAPE_U if "\\u" in message else 0
            if message.lstrip(_BLANK_STR)[:1] == "{":
                f |= OPENS_OBJECT
            flags[i] = f
            if scanner is not None:
                for j in scanner.scan(message):
                    bits |= 1 << back[j]
        rows.append([(bits >> (64 * w)) & word_mask for w in range(words)])
    return np.array(rows, np.uint64).reshape(n, words), flags


def split(block: bytes, k: int, n: int, digit_fields: tuple[int, ...] = (),
          equal_fields: tuple[tuple[int, bytes], ...] = (), key_fields: tuple[int, ...] = ()) -> Split | None:
    """The :class:`Split` of the ``n`` lines of ``block`` into ``k`` space-delimited fields,
    with the numbers of ``digit_fields``, the comparisons ``equal_fields`` (``(field index,
    bytes)`` pairs) and the packed ``key_fields`` (all indexes < ``k``, at most
    :data:`MAX_SPLIT_FIELDS` of each); None when the block does not hold ``n`` lines."""
    d, q, c = len(digit_fields), len(equal_fields), len(key_fields)
    if _c_backend():
        found = _speedups.split_block(block, k, n, digit_fields, equal_fields, key_fields)
        if found is None:
            return None
        bounds, flags, numbers, equal, keys = found
        return Split(np.frombuffer(bounds, np.int32).reshape(n, k, 2), np.frombuffer(flags, np.uint8).astype(bool),
                     np.frombuffer(numbers, np.int64).reshape(n, d),
                     np.frombuffer(equal, np.uint8).reshape(n, q).astype(bool),
                     np.frombuffer(keys, np.uint64).reshape(n, c))
    lines = block.split(b"\n")
    if len(lines) != n + 1 or lines[-1]:
        return None
    out = Split(np.zeros((n, k, 2), np.int32), np.zeros(n, bool), np.full((n, d), -1, np.int64),
                np.zeros((n, q), bool), np.full((n, c), NO_KEY, np.uint64))
    at = 0
    for i, line in enumerate(lines[:-1]):
        if _SPECIAL.search(line) is None:
            spans = [m.span() for m in _FIELD.finditer(line)]
            if len(spans) == k:
                out.bounds[i] = np.array(spans, np.int32) + at
                out.exact[i] = True
                for col, j in enumerate(digit_fields):
                    text = line[spans[j][0]:spans[j][1]]
                    if 1 <= len(text) <= MAX_DIGITS and text.isdigit():  # bytes: ASCII digits only
                        out.numbers[i, col] = int(text)
                for col, (j, literal) in enumerate(equal_fields):
                    out.equal[i, col] = line[spans[j][0]:spans[j][1]] == literal
                for col, j in enumerate(key_fields):
                    text = line[spans[j][0]:spans[j][1]]
                    if len(text) <= 7:
                        out.keys[i, col] = (len(text) << 56) | int.from_bytes(text, "little")
        at += len(line) + 1
    return out


class Split:
    """A block split into its lines' fields (:func:`split`).

    Attributes:
        bounds: ``(n, k, 2)`` int32, each field's start and end offsets in the block.
        exact: ``(n,)`` bool: the line's split is exact and it has ``k`` fields; only then
            are its bounds and the columns below filled.
        numbers: ``(n, len(digit_fields))`` int64: the field's value when it is 1 to
            :data:`MAX_DIGITS` ASCII digits, else -1.
        equal: ``(n, len(equal_fields))`` bool: the field is the pair's bytes.
        keys: ``(n, len(key_fields))`` uint64: the field's length << 56 | its bytes
            (little-endian) when it is at most 7 bytes, else :data:`NO_KEY`.
    """

    __slots__ = ("bounds", "exact", "numbers", "equal", "keys")

    def __init__(self, bounds: Any, exact: Any, numbers: Any, equal: Any, keys: Any) -> None:
        self.bounds, self.exact, self.numbers, self.equal, self.keys = bounds, exact, numbers, equal, keys
