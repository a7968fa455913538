"""One archive object read as events (:mod:`castlewatch.engine.archive`): the events and
counts a file source gives for the same bytes, streamed record by record when the object
is a plain ``{"Records": [...]}`` document, read again from its start otherwise."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
from pathlib import Path

import orjson
import pytest

from castlewatch.engine.archive import RESTART, object_batches
from castlewatch.engine.sources import SourceSpec, open_source
from castlewatch.model import Stats


def _record(i: int, **extra) -> dict:
    return {"eventVersion": "1.09", "eventTime": f"2025-01-02T03:{i % 60:02d}:00Z", "eventName": f"Call{i}",
            "recipientAccountId": "123456789012", "awsRegion": "eu-west-1", "note": "é✓𝄞" * (i % 3), **extra}


RECORDS = [_record(i) for i in range(25)]
DEEP = b'{"x":' * 300 + b"1" + b"}" * 300  # deeper than orjson writes (254), not than it reads (1024)

CASES = {
    "compact": orjson.dumps({"Records": RECORDS}),
    "empty": b'{"Records":[]}',
    "bom and whitespace": b"\xef\xbb\xbf \n" + json.dumps({"Records": RECORDS}, indent=2).encode() + b"\n\n",
    "a bad record": orjson.dumps({"Records": RECORDS[:3]})[:-2] + b',{"eventTime": "x"},"str",7,{"eventVersion":1}]}',
    "bad time and no time": orjson.dumps({"Records": [_record(1, eventTime="soon"), {"eventName": "x"}, *RECORDS[:2]]}),
    "keys after Records": orjson.dumps({"Records": RECORDS[:4], "Other": 1}),
    "two documents": orjson.dumps({"Records": RECORDS[:4]}) + b"\n" + orjson.dumps({"Records": RECORDS[4:9]}),
    "json lines": b"\n".join(orjson.dumps(r) for r in RECORDS[:6]),
    "not json": b'{"Records":[{"eventTime": "2025-01-02T03:00:00Z", oops}]}',
    "cut short": orjson.dumps({"Records": RECORDS})[:-40],
    "too deep": b'{"Records":[' + orjson.dumps(_record(1))[:-1] + b',"deep":' + DEEP + b"}," + orjson.dumps(RECORDS[2]) + b"]}",
    "deeper than orjson reads in the document": b'{"Records":[{"eventTime":"2025-01-02T03:00:00Z","d":'
    + b"[" * 1021 + b"]" * 1021 + b"}]}",
    "invalid utf-8": orjson.dumps({"Records": RECORDS[:2]})[:-2] + b',{"eventTime":"2025-01-02T03:00:00Z","x":"\xff"}]}',
    "big": orjson.dumps({"Records": [_record(i, blob="y" * (i * 997 % 70_000)) for i in range(60)]}),
}


def _file_source(path: Path) -> tuple[list, dict]:
    stats = Stats()
    source = open_source(SourceSpec("file", "ct", str(path), "cloudtrail_archive"), stats, batch_size=7)

    async def main() -> list:
        out = []
        async for batch in source.batches(follow=False, stop=asyncio.Event()):
            out += batch.log_events()
        return out

    return asyncio.run(main()), stats.malformed


def _object(data: bytes) -> tuple[list, dict, bool, int]:
    events, malformed, restarts, damaged = [], {}, 0, False
    spec = SourceSpec("file", "ct", "x", "cloudtrail_archive")
    for item in object_batches(lambda: io.BytesIO(data), spec, batch_size=7):
        if item is RESTART:
            events, malformed, restarts = [], {}, restarts + 1
            continue
        assert len(item.events) <= 7
        events += item.events
        damaged = damaged or item.damaged
        for reason, n in (item.malformed or {}).items():
            malformed[reason] = malformed.get(reason, 0) + n
    return events, malformed, damaged, restarts


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("name", list(CASES))
def test_an_object_reads_as_a_file_source_reads_it(tmp_path: Path, name: str, gz: bool) -> None:
    data = gzip.compress(CASES[name]) if gz else CASES[name]
    path = tmp_path / "object.json.gz"
    path.write_bytes(data)
    want_events, want_malformed = _file_source(path)
    events, malformed, damaged, restarts = _object(data)
    assert (events, malformed) == (want_events, want_malformed)
    assert not damaged
    streamed = name in ("compact", "empty", "bom and whitespace", "bad time and no time", "big")
    assert restarts == (0 if streamed else 1)


def test_a_damaged_gzip_stream_keeps_what_came_before_as_a_replay_does(tmp_path: Path) -> None:
    lines = b"\n".join(orjson.dumps({"Records": RECORDS[i : i + 5]}) for i in range(0, 25, 5)) + b"\n"
    for data in (gzip.compress(lines)[:-30], gzip.compress(CASES["compact"])[:-30],
                 gzip.compress(lines)[:200] + b"\x00" * 50 + gzip.compress(lines)[250:]):
        path = tmp_path / "object.json.gz"
        path.write_bytes(data)
        want_events, want_malformed = _file_source(path)
        events, malformed, damaged, _ = _object(data)
        assert (events, malformed) == (want_events, want_malformed)
        assert damaged and malformed.get("unreadable_file") == 1


def test_a_storage_error_is_raised_not_counted() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("connection reset by peer")

    spec = SourceSpec("file", "ct", "x", "cloudtrail_archive")
    with pytest.raises(ConnectionResetError):
        list(object_batches(lambda: Failing(b""), spec))


def test_flow_log_objects_are_read_line_by_line() -> None:
    header = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"
    record = b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"
    spec = SourceSpec("file", "vpc", "x", "flow_log_file")
    items = list(object_batches(lambda: io.BytesIO(gzip.compress(header + record * 3)), spec))
    assert RESTART not in items
    assert [e.timestamp for item in items for e in item.events] == [1_700_000_000_000] * 3
