"""StreamParser's C line splitter and in-place read behind a pending line
(``_speedups.ascii_lines``) against the line-by-line loop and the pure-Python backend:
every intermediate state (ready batches with offsets and counts, offset, pending length,
discard, malformed tally, gathered events) after each chunk, with BOMs, CR/CRLF, invalid
UTF-8, empty lines, empty chunks, end(final=False), small batches and a small size limit."""
from __future__ import annotations

import random
from unittest import mock

import pytest

from castlewatch.engine import formats
from castlewatch.engine.formats import StreamParser
from castlewatch.engine.sources.base import SourceSpec
from castlewatch.grammar import literals as backends

PIECES = [b"a", b"bc", b"xyz", b"\n", b"\n", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xc3\xa9", b"\xff", b"\xe2\x98", b"\x83"]


class LineByLine(StreamParser):
    def _plain_chunk(self, *args) -> bool:
        return False


def _run(kind, data, chunks, batch_size, ingestion):
    p = kind(SourceSpec("file", "g", "x"), batch_size)
    if ingestion:
        p.ingestion, p.light = True, False
    at = k = 0
    states = []
    while at < len(data):
        size = chunks[k % len(chunks)]
        p.feed(data[at:at + size])
        at += size
        k += 1
        if k % 3 == 0:
            p.feed(b"")
        if k % 5 == 0:
            p.end(final=False)
        states.append((list(p.ready), p.offset, p.plen, p.discard, dict(p.stats.malformed), list(p.events)))
    p.end(final=True)
    p.cut()
    states.append((p.ready, p.offset, p.stats.malformed))
    return repr(states)


@pytest.mark.parametrize("seed", range(8))
def test_split_lines_agree_with_the_loop_at_every_step(seed):
    if "c" not in backends.AVAILABLE:
        pytest.skip("no C backend")
    before = backends.backend()
    rng = random.Random(seed)
    try:
        for _ in range(300):
            plain = rng.choice([0.15, 0.5])
            data = b"".join(rng.choice(PIECES) if rng.random() < plain else rng.choice([b"a", b"b", b"c"]) * rng.randint(1, 9)
                            for _ in range(rng.randint(0, 30)))
            if rng.random() < 0.3:
                data = b"\xef\xbb\xbf" + data
            chunks = [rng.choice([1, 2, 3, 5, 7, 11, 20, 40]) for _ in range(rng.randint(1, 4))]
            batch_size, ingestion = rng.randint(1, 5), rng.random() < 0.1
            with mock.patch.object(formats, "MAX_EVENT_BYTES", rng.choice([3, 4, 5, 8, 100])), \
                    mock.patch("time.time", lambda: 1.0):
                backends.use_backend("c")
                a = _run(StreamParser, data, chunks, batch_size, ingestion)
                b = _run(LineByLine, data, chunks, batch_size, ingestion)
                backends.use_backend("python")
                c = _run(StreamParser, data, chunks, batch_size, ingestion)
            assert a == b == c, (data, chunks, batch_size)
    finally:
        backends.use_backend(before)
