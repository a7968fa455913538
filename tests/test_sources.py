"""Log event sources (castlewatch.engine.sources): formats, files, following, checkpoints, stdin."""

from __future__ import annotations

import asyncio
import calendar
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from castlewatch.engine.sources import MAX_EVENT_BYTES, Source, SourceSpec, file_state, files, open_source
from castlewatch.model import READ_FROM_MESSAGE, EventBatch, LogEvent, Stats

_BOM = b"\xef\xbb\xbf"

GROUP = "/test/group"
WAIT_S = 10.0  # upper bound of every wait; tests finish as soon as the condition holds


def file_spec(path: Path | str, fmt: str = "lines", **kw) -> SourceSpec:
    return SourceSpec(type="file", log_group=GROUP, path=str(path), format=fmt, **kw)


def read_all(
    spec: SourceSpec,
    stats: Stats | None = None,
    positions: dict | None = None,
    batch_size: int = 1000,
    chunk_bytes: int | None = None,
) -> tuple[list[EventBatch], Source]:
    """Every batch of a batch-mode (follow=False) run."""
    stats = Stats() if stats is None else stats
    source = open_source(spec, stats, positions, batch_size=batch_size)
    if chunk_bytes:
        source.chunk_bytes = chunk_bytes

    async def main() -> list[EventBatch]:
        return [batch async for batch in source.batches(follow=False, stop=asyncio.Event())]

    return asyncio.run(main()), source


def messages(batches: list[EventBatch]) -> list[str]:
    return [event.message for batch in batches for event in batch.log_events()]


def events(batches: list[EventBatch]) -> list[LogEvent]:
    return [event for batch in batches for event in batch.log_events()]


def epoch_ms(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000


class Follower:
    """Runs a source with follow=True in a task; collects what it yields."""

    def __init__(self, source: Source, stop_after: int | None = None) -> None:
        self.source = source
        source.poll_interval = 0.01
        self.batches: list[EventBatch] = []
        self.stop = asyncio.Event()
        self.stop_after = stop_after  # set stop once that many events came (a runner stopping)

    async def __aenter__(self) -> Follower:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for batch in self.source.batches(follow=True, stop=self.stop):
            self.batches.append(batch)
            if self.stop_after is not None and len(self.messages) >= self.stop_after:
                self.stop.set()

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT_S)

    @property
    def messages(self) -> list[str]:
        return messages(self.batches)

    async def wait_for(self, last: str) -> list[str]:
        """Wait until ``last`` was yielded; the messages so far."""
        deadline = time.monotonic() + WAIT_S
        while last not in self.messages:
            if self.task.done():
                self.task.result()
                pytest.fail(f"source ended early; got {self.messages}")
            if time.monotonic() > deadline:
                pytest.fail(f"{last!r} never came; got {self.messages}")
            await asyncio.sleep(0.005)
        return self.messages

    async def rounds(self, n: int = 3) -> None:
        """Let the source look at the files ``n`` more times (for 'nothing more came' checks)."""
        for _ in range(n):
            before = self.source._last_scan
            deadline = time.monotonic() + WAIT_S
            while self.source._last_scan == before:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)


# ------------------------------------------------------------------------------------------
# Spec, name, errors


def test_names_and_invalid_specs(tmp_path: Path) -> None:
    assert open_source(file_spec(tmp_path / "a.log"), Stats()).name == f"file:{tmp_path / 'a.log'}"
    assert open_source(SourceSpec(type="stdin", log_group=GROUP), Stats()).name == "stdin:-"
    with pytest.raises(ValueError, match="needs a path"):
        open_source(SourceSpec(type="file", log_group=GROUP), Stats())
    with pytest.raises(ValueError, match="format"):
        open_source(SourceSpec(type="file", log_group=GROUP, path="x", format="csv"), Stats())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type"):
        open_source(SourceSpec(type="s3", log_group=GROUP, path="x"), Stats())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        open_source(file_spec("x"), Stats(), batch_size=0)
    with pytest.raises(ValueError, match="positions"):
        open_source(file_spec("x"), Stats(), positions={"x.log": 3})


# ------------------------------------------------------------------------------------------
# Format: lines


def test_lines_crlf_empty_lines_and_final_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"first\r\n\n\r\nsecond\n  \nthird\r\r\n\n\nlast without newline")
    batches, source = read_all(file_spec(path))
    assert messages(batches) == ["first", "second", "  ", "third\r", "last without newline"]
    assert all(e.timestamp == READ_FROM_MESSAGE and e.log_group == GROUP and e.log_stream == "" for e in events(batches))
    assert all(b.source == source.name for b in batches)
    assert batches[-1].position["files"][next(iter(batches[-1].position["files"]))]["offset"] == path.stat().st_size


def test_lines_ingestion_time(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("a\nb\n")
    before = int(time.time() * 1000)
    batches, _ = read_all(file_spec(path, ingestion_time=True))
    after = int(time.time() * 1000)
    assert [e.message for e in events(batches)] == ["a", "b"]
    assert all(before <= e.timestamp <= after for e in events(batches))


def test_invalid_utf8_is_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes("ok é\n".encode() + b"bad \xff\xfe\n" + b"cut \xc3\n" + "fine ☃\n".encode())
    stats = Stats()
    batches, _ = read_all(file_spec(path), stats)
    assert messages(batches) == ["ok é", "fine ☃"]
    assert stats.malformed == {"invalid_utf8": 2}


@pytest.mark.parametrize("chunk_bytes", [None, 4096], ids=["one-chunk", "small-chunks"])
def test_too_large_lines(tmp_path: Path, chunk_bytes: int | None) -> None:
    limit = "a" * MAX_EVENT_BYTES
    multibyte = "é" * (MAX_EVENT_BYTES // 2)  # exactly the limit in UTF-8
    lines = [
        "before",
        limit,  # at the limit: an event
        limit + "b",  # one byte over: too large
        multibyte + "\r",  # CRLF: the "\r" is not part of the message
        multibyte + "x",  # over in bytes although fewer characters
        "a" * (3 * MAX_EVENT_BYTES),  # far over, spans many chunks
        "after",
    ]
    path = tmp_path / "big.log"
    path.write_text("\n".join(lines) + "\n" + "z" * (MAX_EVENT_BYTES + 5))  # too long final partial line
    stats = Stats()
    batches, _ = read_all(file_spec(path), stats, chunk_bytes=chunk_bytes)
    assert messages(batches) == ["before", limit, multibyte, "after"]
    assert stats.malformed == {"too_large": 4}


# ------------------------------------------------------------------------------------------
# Format: cloudwatch_events


CW_EVENTS = [
    {"logStreamName": "s1", "timestamp": 1700000000000, "message": "first", "ingestionTime": 1700000000100, "eventId": "1"},
    {"logStreamName": "s2", "timestamp": 1700000060000, "message": "{\"level\": \"ERROR\"}\nwith newline", "eventId": "2"},
    {"timestamp": 1700000120000, "message": ""},
]


def expected_cw(events_: list[dict]) -> list[LogEvent]:
    return [LogEvent(e["timestamp"], e["message"], GROUP, e.get("logStreamName", "")) for e in events_]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"events": CW_EVENTS, "searchedLogStreams": [], "nextToken": "x"}, indent=4),
        json.dumps({"events": CW_EVENTS, "nextForwardToken": "f/1"}),
        "\n".join(json.dumps(e) for e in CW_EVENTS) + "\n",
        "\r\n".join(json.dumps(e) for e in CW_EVENTS),
        json.dumps({"events": CW_EVENTS[:1]}) + "\n\n" + json.dumps({"events": CW_EVENTS[1:]}) + "\n",
        json.dumps(CW_EVENTS, indent=2),
        json.dumps(CW_EVENTS[:2]) + "\n" + json.dumps(CW_EVENTS[2]),
    ],
    ids=["pretty-document", "compact-document", "json-lines", "json-lines-crlf", "document-per-line", "pretty-array", "array-line"],
)
def test_cloudwatch_events_shapes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "events.json"
    path.write_text(text)
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats)
    assert events(batches) == expected_cw(CW_EVENTS)
    assert stats.malformed == {}


def test_cloudwatch_events_malformed(tmp_path: Path) -> None:
    good = {"timestamp": 5, "message": "good", "logStreamName": "s"}
    rows = [
        json.dumps(good).encode(),
        b'{"timestamp": 1, "message": "unterminated',  # invalid_json
        b"not json at all",  # invalid_json
        b'{"timestamp": 1}',  # no message: invalid_json
        b'{"message": "no timestamp"}',  # invalid_json
        b'{"timestamp": "soon", "message": "x"}',  # bad_timestamp
        b'{"timestamp": true, "message": "x"}',  # bad_timestamp
        b'{"timestamp": 1.5, "message": "x"}',  # bad_timestamp
        b'{"timestamp": "1700000000000", "message": "numeric string"}',
        b'{"timestamp": 1700000000000.0, "message": "integral float"}',
        b'{"timestamp": 1, "message": "\xff"}',  # invalid_utf8
        json.dumps({"timestamp": 1, "message": "m" * (MAX_EVENT_BYTES + 1)}).encode(),  # too_large
        b'{"events": "nope"}',  # invalid_json
        b"42",  # invalid_json
        b"   ",  # blank: nothing
        b'[{"timestamp": 7, "message": "in array"}, "junk"]',  # one event, one invalid_json
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats)
    assert [(e.timestamp, e.message, e.log_stream) for e in events(batches)] == [
        (5, "good", "s"),
        (1700000000000, "numeric string", ""),
        (1700000000000, "integral float", ""),
        (7, "in array", ""),
    ]
    assert stats.malformed == {"invalid_json": 7, "bad_timestamp": 3, "invalid_utf8": 1, "too_large": 1}


def test_cloudwatch_events_broken_document(tmp_path: Path) -> None:
    # Cut inside the last event: the document never comes whole, so it is read line by line;
    # the events that are whole are read, and each line that is not part of one is counted
    # once: "{", '"events": [', and the "{" and two lines of the cut event.
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"events": CW_EVENTS}, indent=4)[:-10])
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats)
    assert events(batches) == expected_cw(CW_EVENTS[:2])
    assert stats.malformed == {"invalid_json": 5}


# ------------------------------------------------------------------------------------------
# Format: cloudtrail_archive


def trail_records(n: int) -> list[dict]:
    return [
        {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "userName": f"user{i}", "arn": f"arn:aws:iam::111122223333:user/user{i}"},
            "eventTime": f"2024-03-05T09:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "eu-west-1",
            "requestParameters": None,
            "responseElements": {"ConsoleLogin": "Failure"},
            "errorMessage": "Failed authentication",
            "recipientAccountId": "111122223333",
        }
        for i in range(n)
    ]


def test_cloudtrail_archive_gzip(tmp_path: Path) -> None:
    records = trail_records(5)
    # Key order that is not sorted, and a fractional eventTime, must survive.
    records[1] = {"zeta": 1, "eventTime": "2024-03-05T09:00:01.250Z", "alpha": [1, 2.5, "x"], "eventVersion": "1.08"}
    path = tmp_path / "111122223333_CloudTrail_eu-west-1_20240305T0900Z_abc.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}, indent=2).encode()))
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudtrail_archive"), stats)
    got = events(batches)
    assert [e.message for e in got] == [orjson.dumps(r).decode() for r in records]
    assert got[1].message == '{"zeta":1,"eventTime":"2024-03-05T09:00:01.250Z","alpha":[1,2.5,"x"],"eventVersion":"1.08"}'
    assert [e.timestamp for e in got] == [
        epoch_ms("2024-03-05T09:00:00Z"),
        epoch_ms("2024-03-05T09:00:01Z") + 250,
        epoch_ms("2024-03-05T09:00:02Z"),
        epoch_ms("2024-03-05T09:00:03Z"),
        epoch_ms("2024-03-05T09:00:04Z"),
    ]
    assert got[0].log_stream == "111122223333_CloudTrail_eu-west-1"
    assert got[1].log_stream == ""
    assert stats.malformed == {}


def test_cloudtrail_archive_malformed_records(tmp_path: Path) -> None:
    good = trail_records(1)[0]
    records = [
        good,
        {"eventVersion": "1.08", "eventName": "NoTime"},  # invalid_json
        {"eventVersion": "1.08", "eventTime": "yesterday"},  # bad_timestamp
        {"eventVersion": "1.08", "eventTime": 1700000000},  # bad_timestamp
        "not a record",  # invalid_json
        {"eventTime": "2024-03-05T09:00:00Z", "blob": "x" * MAX_EVENT_BYTES},  # too_large
    ]
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": records}) + "\n" + '{"Records": 3}\n' + "{broken\n")
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudtrail_archive"), stats)
    assert messages(batches) == [orjson.dumps(good).decode()]
    assert stats.malformed == {"invalid_json": 4, "bad_timestamp": 2, "too_large": 1}


def test_cloudtrail_bundled_sample_one_record_per_line() -> None:
    sample = Path(__file__).parent.parent / "castlewatch" / "data" / "samples" / "cloudtrail.jsonl"
    stats = Stats()
    batches, _ = read_all(file_spec(sample, "cloudtrail_archive"), stats)
    lines = [line for line in sample.read_text().splitlines() if line]
    got = events(batches)
    assert [e.message for e in got] == [orjson.dumps(orjson.loads(line)).decode() for line in lines]
    for event, line in zip(got, lines):
        assert event.timestamp == epoch_ms(json.loads(line)["eventTime"])
    assert stats.malformed == {}


# ------------------------------------------------------------------------------------------
# gzip, globs, unreadable files


def test_gzip_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(gzip.compress(b"one\ntwo\r\nthree"))  # gzip without .gz
    (tmp_path / "b.log.gz").write_bytes(b"plain text\n")  # .gz that is not gzip
    multi = gzip.compress(b"four\nfi") + gzip.compress(b"ve\n")  # two gzip members
    (tmp_path / "c.log").write_bytes(multi)
    batches, _ = read_all(file_spec(tmp_path / "*.log*"))
    assert messages(batches) == ["one", "two", "three", "plain text", "four", "five"]


def test_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(b"line %d\n" % i for i in range(20000)))
    (tmp_path / "a-truncated.gz").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(gzip.compress(b"x\n" * 1000))
    corrupt[20:40] = b"\xff" * 20
    (tmp_path / "b-corrupt.gz").write_bytes(bytes(corrupt))
    (tmp_path / "c-fine.log").write_text("fine\n")
    stats = Stats()
    batches, _ = read_all(file_spec(tmp_path / "*"), stats)
    got = messages(batches)
    assert got[-1] == "fine"
    truncated = [m for m in got if m.startswith("line ")]
    assert truncated == [f"line {i}" for i in range(len(truncated))]  # whole lines, in order
    assert stats.malformed == {"unreadable_file": 2}


def test_glob_sorted_and_non_files_ignored(tmp_path: Path) -> None:
    for name in ["b.log", "a.log", "c.txt", "sub/d.log"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name + "\n")
    (tmp_path / "dir.log").mkdir()
    batches, _ = read_all(file_spec(tmp_path / "*.log"))
    assert messages(batches) == ["a.log", "b.log"]
    batches, _ = read_all(file_spec(tmp_path / "**" / "*.log"))
    assert messages(batches) == ["a.log", "b.log", "sub/d.log"]
    stats = Stats()
    batches, _ = read_all(file_spec(tmp_path / "nothing-*.log"), stats)
    assert batches == [] and stats.malformed == {}


def test_unreadable_and_missing_files_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = Stats()
    batches, _ = read_all(file_spec(tmp_path / "missing.log"), stats)
    assert stats.malformed == {"unreadable_file": 1}
    # No events: one empty batch carries the count (the Engine counts it when it evaluates it).
    assert [(len(b), b.malformed) for b in batches] == [(0, {"unreadable_file": 1})]

    (tmp_path / "a.log").write_text("a\n")
    (tmp_path / "b.log").write_text("b\n")
    (tmp_path / "c.log").write_text("c\n")
    denied = str(tmp_path / "b.log")
    real_open = os.open

    def fake_open(path, flags, *args, **kw):  # works as root too, unlike chmod
        if str(path) == denied:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    stats = Stats()
    batches, _ = read_all(file_spec(tmp_path / "*.log"), stats)
    assert messages(batches) == ["a", "c"]
    assert stats.malformed == {"unreadable_file": 1}


# ------------------------------------------------------------------------------------------
# Batching and checkpoints


def test_batches_respect_batch_size_and_carry_positions(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    batches, source = read_all(file_spec(path), batch_size=4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert source.positions() == batches[-1].position
    json.dumps(source.positions())  # JSON-able
    (entry,) = batches[0].position["files"].values()
    assert entry["offset"] == len("".join(f"line {i}\n" for i in range(4)))
    assert entry["path"] == str(path) and entry["ino"] == path.stat().st_ino


def test_malformed_only_file_still_moves_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"\xff\n\n\xfe\n")
    stats = Stats()
    batches, source = read_all(file_spec(path), stats)
    assert [b.log_events() for b in batches] == [[]]
    assert list(source.positions()["files"].values())[0]["offset"] == 5
    stats = Stats()
    assert read_all(file_spec(path), stats, positions=source.positions())[0] == []
    assert stats.malformed == {}  # not counted twice


def write_resume_inputs(tmp_path: Path, kind: str) -> SourceSpec:
    """Inputs where batches cut lines, documents and files in various places."""
    if kind == "lines":
        path = tmp_path / "app.log"
        path.write_bytes(b"".join(b"m%d\r\n" % i if i % 3 else b"m%d\n\n\xff\n" % i for i in range(17)) + b"tail")
        return file_spec(path)
    if kind == "glob-with-gzip":
        (tmp_path / "a.log").write_text("".join(f"a{i}\n" for i in range(5)))
        (tmp_path / "b.log.gz").write_bytes(gzip.compress("".join(f"b{i}\n" for i in range(7)).encode()))
        (tmp_path / "c.log").write_text("c0\n")
        (tmp_path / "d.log").write_text("".join(f"d{i}\n" for i in range(4)))
        return file_spec(tmp_path / "*.log*")
    if kind == "cloudwatch-documents":
        events_ = [{"timestamp": i, "message": f"e{i}"} for i in range(20)]
        path = tmp_path / "events.jsonl"
        path.write_text(
            json.dumps({"events": events_[:8]})
            + "\n"
            + json.dumps(events_[8])
            + "\nbroken\n"
            + json.dumps({"events": []})
            + "\n"
            + json.dumps({"events": events_[9:]})
        )
        return file_spec(path, "cloudwatch_events")
    if kind == "cloudwatch-pretty-document":
        path = tmp_path / "events.json"
        path.write_text(json.dumps({"events": [{"timestamp": i, "message": f"e{i}"} for i in range(11)]}, indent=4))
        return file_spec(path, "cloudwatch_events")
    if kind == "cloudtrail-gzip":
        for n in range(2):
            records = trail_records(7 + n)
            (tmp_path / f"trail{n}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
        return file_spec(tmp_path / "trail*.json.gz", "cloudtrail_archive")
    if kind == "flow-log-files":  # a header per file, read again on resume from the checkpoint
        header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"
        for n, wrap in enumerate((gzip.compress, lambda data: data)):
            body = "".join(f"2 123456789012 eni-{n}{i} 10.0.0.1 10.0.0.2 443 {i} 6 1 40 {1700000000 + i} {1700000060 + i} ACCEPT OK\n"
                           for i in range(6 + n))
            (tmp_path / f"flow{n}.log{'.gz' if n == 0 else ''}").write_bytes(wrap((header + body).encode()))
        return file_spec(tmp_path / "flow*.log*", "flow_log_file")
    raise AssertionError(kind)


@pytest.mark.parametrize("batch_size", [1, 3, 5])
@pytest.mark.parametrize(
    "kind", ["lines", "glob-with-gzip", "cloudwatch-documents", "cloudwatch-pretty-document", "cloudtrail-gzip",
             "flow-log-files"]
)
def test_resume_from_any_batch_reads_exactly_the_rest(tmp_path: Path, kind: str, batch_size: int) -> None:
    spec = write_resume_inputs(tmp_path, kind)
    full_stats = Stats()
    batches, _ = read_all(spec, full_stats, batch_size=batch_size, chunk_bytes=7)
    everything = messages(batches)
    assert len(everything) > 10
    assert all(len(b) <= batch_size for b in batches)
    assert messages(read_all(spec, batch_size=batch_size)[0]) == everything  # whatever the chunk size
    done = 0
    for batch in batches:
        done += len(batch)
        position = json.loads(json.dumps(batch.position))  # as stored on disk
        rest, _ = read_all(spec, positions=position, batch_size=batch_size, chunk_bytes=7)
        assert messages(rest) == everything[done:], (done, batch.position)
        assert events(rest) == events(batches)[done:]


def test_resume_after_append_truncation_and_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("a\nb\n")
    batches, source = read_all(file_spec(path))
    checkpoint = source.positions()
    with path.open("a") as f:
        f.write("c\n")
    assert messages(read_all(file_spec(path), positions=checkpoint)[0]) == ["c"]
    # Same inode, rewritten shorter: from the start.
    path.write_text("x\n")
    assert messages(read_all(file_spec(path), positions=checkpoint)[0]) == ["x"]
    # Same inode, rewritten longer with other content: the head differs, from the start.
    path.write_text("different\nlonger content\n")
    assert messages(read_all(file_spec(path), positions=checkpoint)[0]) == ["different", "longer content"]


def test_resume_after_rotation_while_down(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("1\n2\n")
    _, source = read_all(file_spec(path))
    checkpoint = source.positions()
    with path.open("a") as f:
        f.write("3\n4")  # written before the rotation, never read
    path.rename(tmp_path / "app.log.1")  # outside the glob now
    path.write_text("5\n6\n")
    batches, source = read_all(file_spec(path), positions=checkpoint)
    assert messages(batches) == ["3", "4", "5", "6"]
    # The rotated file was finished: it is not read again.
    assert messages(read_all(file_spec(path), positions=source.positions())[0]) == []


def test_resume_after_rotation_within_the_glob(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("1\n2\n")
    spec = file_spec(tmp_path / "app.log*")
    _, source = read_all(spec)
    with path.open("a") as f:
        f.write("3\n")
    path.rename(tmp_path / "app.log.1")
    path.write_text("4\n")
    # The rest of the file known from the checkpoint first, then the new file.
    assert messages(read_all(spec, positions=source.positions())[0]) == ["3", "4"]


def test_gzip_checkpoint_marks_the_file_done(tmp_path: Path) -> None:
    path = tmp_path / "old.log.gz"
    path.write_bytes(gzip.compress(b"a\nb\n"))
    batches, source = read_all(file_spec(tmp_path / "*.gz"))
    (entry,) = source.positions()["files"].values()
    st = path.stat()
    assert entry["done"] and entry["gz"] and (entry["size"], entry["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    assert messages(read_all(file_spec(tmp_path / "*.gz"), positions=source.positions())[0]) == []
    # A different gzip file under that inode is read.
    path.write_bytes(gzip.compress(b"new\ncontent\n"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert messages(read_all(file_spec(tmp_path / "*.gz"), positions=source.positions())[0]) == ["new", "content"]


# ------------------------------------------------------------------------------------------
# Following


def test_follow_appends_and_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("one\n")

    async def main() -> None:
        async with Follower(open_source(file_spec(path), Stats())) as follower:
            await follower.wait_for("one")
            with path.open("ab") as f:
                f.write(b"two\r\nthr")
                f.flush()
                await follower.wait_for("two")
                await follower.rounds()
                assert follower.messages == ["one", "two"]  # "thr" is held back
                f.write(b"ee\nfour\n")
            await follower.wait_for("four")
            assert follower.messages == ["one", "two", "three", "four"]

    asyncio.run(main())


def test_follow_stops_promptly_and_resumes_exactly(tmp_path: Path) -> None:
    """Stopped, a source ends at once. A partial last line at the end of its file is then
    an event, as at the end of a replay, and the checkpoint is past it: the rest of that
    line, written later, is a line of its own, and nothing is read twice."""
    path = tmp_path / "app.log"
    path.write_text("1\n2\n")

    async def first_run() -> tuple[dict, list[str]]:
        source = open_source(file_spec(path), Stats())
        async with Follower(source) as follower:
            await follower.wait_for("2")
            with path.open("a") as f:
                f.write("3\npart")
            await follower.wait_for("3")
            await follower.rounds()
            assert follower.messages == ["1", "2", "3"]  # not quiet for long yet: held back
            started = time.monotonic()
            follower.stop.set()
            await asyncio.wait_for(follower.task, WAIT_S)
            assert time.monotonic() - started < 1.0
        return source.positions(), follower.messages

    checkpoint, first = asyncio.run(first_run())
    assert first == ["1", "2", "3", "part"]
    with path.open("a") as f:
        f.write("ial\n4\n")

    async def second_run() -> list[str]:
        async with Follower(open_source(file_spec(path), Stats(), positions=checkpoint)) as follower:
            return await follower.wait_for("4")

    assert asyncio.run(second_run()) == ["ial", "4"]


def test_follow_stopped_mid_file_keeps_the_rest_for_the_next_run(tmp_path: Path) -> None:
    """Stopped before its file's end, nothing more of it is taken, partial last line or not."""
    path = tmp_path / "app.log"
    path.write_text("".join(f"{i}\n" for i in range(100)) + "tail")

    async def first_run() -> tuple[dict, list[str]]:
        source = open_source(file_spec(path), Stats(), batch_size=10)
        async with Follower(source, stop_after=30) as follower:
            await asyncio.wait_for(follower.task, WAIT_S)
        return source.positions(), follower.messages

    checkpoint, first = asyncio.run(first_run())
    assert first == [str(i) for i in range(30)]
    rest, _ = read_all(file_spec(path), positions=checkpoint)
    assert messages(rest) == [str(i) for i in range(30, 100)] + ["tail"]


def test_follow_partial_last_line_once_the_file_is_quiet(tmp_path: Path) -> None:
    """Following, the last line without a newline is an event once the file has not grown
    for ``partial_line_quiet_s``, as replay reads it; the checkpoint is then past it."""
    path = tmp_path / "app.log"
    path.write_text("one\ntwo")

    async def main() -> tuple[list[str], dict]:
        source = open_source(file_spec(path), Stats())
        source.partial_line_quiet_s = 0.3
        async with Follower(source) as follower:
            await follower.wait_for("one")
            with path.open("a") as f:
                f.write("-more")  # grows: the line is not taken yet
            started = time.monotonic()
            await follower.wait_for("two-more")
            assert time.monotonic() - started >= 0.3
            with path.open("a") as f:
                f.write("\nthree\n")  # the newline that ends it comes later: an empty line
            await follower.wait_for("three")
        return follower.messages, source.positions()

    got, checkpoint = asyncio.run(main())
    assert got == ["one", "two-more", "three"]
    assert messages(read_all(file_spec(path))[0]) == got  # a replay reads the same events
    assert messages(read_all(file_spec(path), positions=checkpoint)[0]) == []


def test_follow_a_file_quiet_before_the_start_gives_its_partial_line_at_once(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("a\nb")
    os.utime(path, (time.time() - 600, time.time() - 600))  # quiet for longer than PARTIAL_LINE_QUIET_S

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(path), Stats())) as follower:
            return await follower.wait_for("b")  # within WAIT_S, not after PARTIAL_LINE_QUIET_S

    assert asyncio.run(main()) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["cloudwatch_events", "cloudtrail_archive"])
def test_follow_json_document_unfinished_at_the_end_is_read_as_replay_reads_it(tmp_path: Path, fmt: str) -> None:
    if fmt == "cloudwatch_events":
        whole = json.dumps({"events": CW_EVENTS}, indent=2)
    else:
        whole = json.dumps({"Records": trail_records(4)}, indent=2)
    text = whole[: len(whole) * 2 // 3]  # cut short
    path = tmp_path / "in.json"
    path.write_text(text)
    replay_stats = Stats()
    replayed = events(read_all(file_spec(path, fmt), replay_stats)[0])
    assert replayed and replay_stats.malformed

    async def main() -> tuple[list[LogEvent], dict]:
        stats = Stats()
        source = open_source(file_spec(path, fmt), stats)
        source.partial_line_quiet_s = 0.2
        async with Follower(source) as follower:
            deadline = time.monotonic() + WAIT_S
            while stats.malformed != replay_stats.malformed:
                assert time.monotonic() < deadline, stats.malformed
                await asyncio.sleep(0.01)
        return events(follower.batches), stats.malformed

    got, malformed = asyncio.run(main())
    assert got == replayed


def test_follow_rotation_rename_and_new_file(tmp_path: Path) -> None:
    """logrotate's default (``create``): the writer keeps appending to the renamed file
    until it reopens; with a plain path those lines are read too, the old file followed
    until it has been quiet for ``rotated_quiet_s``, then forgotten."""
    path = tmp_path / "app.log"
    path.write_text("1\n")

    async def main() -> list[str]:
        source = open_source(file_spec(path), Stats())
        source.rotated_quiet_s = 0.5
        source.partial_line_quiet_s = 0.2
        async with Follower(source) as follower:
            await follower.wait_for("1")
            with path.open("a") as old:
                old.write("2\n")
                old.flush()
                path.rename(tmp_path / "app.log.1")  # logrotate's default: rename, then create
                old.write("3\n")  # the writer has not reopened yet
                old.flush()
                path.write_text("5\n")
                await follower.wait_for("5")
                await follower.rounds()
                old.write("4\n")  # still not reopened: after the new file's first lines
                old.write("4b")  # and a partial line at the end of the rotated file
                old.flush()
                await follower.wait_for("4")
            with path.open("a") as new:
                new.write("6\n")
            await follower.wait_for("6")
            await follower.wait_for("4b")  # quiet: its partial line is an event
            # Quiet for rotated_quiet_s: the rotated file is finished and forgotten.
            deadline = time.monotonic() + WAIT_S
            while len(source.positions()["files"]) > 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            (entry,) = source.positions()["files"].values()
            assert entry["ino"] == path.stat().st_ino
        return follower.messages

    got = asyncio.run(main())
    assert sorted(got) == ["1", "2", "3", "4", "4b", "5", "6"]
    assert got.index("3") < got.index("5")  # what the old file had when the new one came, first


def test_follow_rotated_file_across_a_restart(tmp_path: Path) -> None:
    """Stopped while a rotated-away file is still written to: the restart finds it by its
    identity (outside the path now) and reads on, before and after it gets more lines."""
    path = tmp_path / "app.log"
    path.write_text("1\n")
    old = path.open("a")
    try:

        async def first_run() -> tuple[dict, list[str]]:
            source = open_source(file_spec(path), Stats())
            async with Follower(source) as follower:
                await follower.wait_for("1")
                path.rename(tmp_path / "app.log.1")
                old.write("2\n")
                old.flush()
                path.write_text("3\n")
                await follower.wait_for("3")
                await follower.wait_for("2")
            return source.positions(), follower.messages

        checkpoint, first = asyncio.run(first_run())
        assert len(checkpoint["files"]) == 2  # the rotated file too: still followed
        old.write("4\n")  # while down
        old.flush()

        async def second_run() -> list[str]:
            async with Follower(open_source(file_spec(path), Stats(), positions=checkpoint)) as follower:
                await follower.wait_for("4")
                await follower.rounds()
                old.write("5\n")  # after the restart
                old.flush()
                return await follower.wait_for("5")

        assert sorted(first) == ["1", "2", "3"]
        assert asyncio.run(second_run()) == ["4", "5"]
    finally:
        old.close()


def test_follow_truncation(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("first\nsecond\n")

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(path), Stats())) as follower:
            await follower.wait_for("second")
            with path.open("r+") as f:  # copytruncate: same inode, size 0
                f.truncate(0)
            await follower.rounds()
            with path.open("a") as f:
                f.write("third\n")
            await follower.wait_for("third")
            await follower.rounds()
        return follower.messages

    assert asyncio.run(main()) == ["first", "second", "third"]


def test_follow_truncation_then_rewritten_longer(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("old 1\nold 2\n")

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(path), Stats())) as follower:
            await follower.wait_for("old 2")
            # Between two looks: truncated, then written past the old offset.
            with path.open("r+") as f:
                f.truncate(0)
                f.write("new content that is longer\n")
            await follower.wait_for("new content that is longer")
            await follower.rounds()
        return follower.messages

    assert asyncio.run(main()) == ["old 1", "old 2", "new content that is longer"]


def test_follow_new_files_for_the_glob(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("a1\n")

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(tmp_path / "*.log"), Stats())) as follower:
            await follower.wait_for("a1")
            (tmp_path / "b.log").write_text("b1\n")
            (tmp_path / "ignored.txt").write_text("no\n")
            await follower.wait_for("b1")
            (tmp_path / "c.log").write_bytes(gzip.compress(b"c1\nc2\n"))  # read once, complete
            await follower.wait_for("c2")
            with (tmp_path / "a.log").open("a") as f:
                f.write("a2\n")
            await follower.wait_for("a2")
            await follower.rounds()
        return follower.messages

    assert asyncio.run(main()) == ["a1", "b1", "c1", "c2", "a2"]


def test_follow_gzip_being_written_is_read_when_complete(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(b"g%d\n" % i for i in range(5000)))
    path = tmp_path / "app.log.gz"
    path.write_bytes(whole[:200])

    async def main() -> list[str]:
        stats = Stats()
        async with Follower(open_source(file_spec(tmp_path / "*.gz"), stats)) as follower:
            await follower.rounds()
            with path.open("ab") as f:
                f.write(whole[200:])
            await follower.wait_for("g4999")
            await follower.rounds()
        assert stats.malformed == {}
        return follower.messages

    assert asyncio.run(main()) == [f"g{i}" for i in range(5000)]


def test_follow_cloudwatch_document_written_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    text = json.dumps({"events": CW_EVENTS}, indent=4)
    path.write_text(text[:30])

    async def main() -> list[LogEvent]:
        stats = Stats()
        async with Follower(open_source(file_spec(path, "cloudwatch_events"), stats)) as follower:
            await follower.rounds()
            assert follower.messages == []
            with path.open("a") as f:
                f.write(text[30:] + "\n")
            await follower.wait_for("first")
            with path.open("a") as f:
                f.write(json.dumps({"timestamp": 9, "message": "appended"}) + "\n")
            await follower.wait_for("appended")
        assert stats.malformed == {}
        return events(follower.batches)

    assert asyncio.run(main()) == expected_cw(CW_EVENTS) + [LogEvent(9, "appended", GROUP, "")]


# ------------------------------------------------------------------------------------------
# stdin


def test_stdin_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(read_fd, "rb")))
    monkeypatch.setattr(sys, "stdin", stdin)

    def writer() -> None:
        with open(write_fd, "wb") as f:
            f.write(b"one\r\n\n")
            f.flush()
            time.sleep(0.01)
            f.write(b"two\n\xff\nthree")

    threading.Thread(target=writer).start()
    stats = Stats()
    source = open_source(SourceSpec(type="stdin", log_group=GROUP), stats)

    async def main() -> list[EventBatch]:
        return [b async for b in source.batches(follow=True, stop=asyncio.Event())]

    batches = asyncio.run(main())
    stdin.close()
    assert messages(batches) == ["one", "two", "three"]
    assert stats.malformed == {"invalid_utf8": 1}
    assert source.positions() == {} and all(b.source == "stdin:-" for b in batches)


def test_stdin_stop_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(read_fd, "rb")))
    monkeypatch.setattr(sys, "stdin", stdin)
    os.write(write_fd, b"hello\n")

    async def main() -> list[str]:
        got: list[str] = []
        stop = asyncio.Event()
        source = open_source(SourceSpec(type="stdin", log_group=GROUP), Stats())

        async def run() -> None:
            async for batch in source.batches(follow=True, stop=stop):
                got.extend(e.message for e in batch.log_events())

        task = asyncio.create_task(run())
        deadline = time.monotonic() + WAIT_S
        while not got:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        stop.set()  # stdin is still open: the source must end anyway
        await asyncio.wait_for(task, WAIT_S)
        return got

    assert asyncio.run(main()) == ["hello"]
    os.close(write_fd)  # lets the reader thread see EOF and end
    for thread in threading.enumerate():
        if thread.name == "castlewatch-stdin:-":
            thread.join(WAIT_S)
    stdin.close()


def test_stdin_cloudwatch_document_in_a_subprocess(tmp_path: Path) -> None:
    script = """
import asyncio, json, sys
from castlewatch.model import Stats
from castlewatch.engine.sources import SourceSpec, open_source

async def main():
    stats = Stats()
    source = open_source(SourceSpec(type="stdin", log_group="g", format="cloudwatch_events"), stats)
    out = []
    async for batch in source.batches(follow=False, stop=asyncio.Event()):
        out += [[e.timestamp, e.message, e.log_stream] for e in batch.log_events()]
    print(json.dumps({"events": out, "malformed": stats.malformed}))

asyncio.run(main())
"""
    document = json.dumps({"events": CW_EVENTS}, indent=4)
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=document.encode(),
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        check=True,
    )
    out = json.loads(result.stdout)
    assert out == {"events": [[e["timestamp"], e["message"], e.get("logStreamName", "")] for e in CW_EVENTS], "malformed": {}}


def test_truncated_gzip_resumed_once_complete(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(b"line %d\n" % i for i in range(30000)))
    path = tmp_path / "a.gz"
    path.write_bytes(whole[: len(whole) // 2])
    stats = Stats()
    first, source = read_all(file_spec(path), stats)
    assert stats.malformed == {"unreadable_file": 1}
    with path.open("ab") as f:
        f.write(whole[len(whole) // 2 :])
    stats = Stats()
    rest, _ = read_all(file_spec(path), stats, positions=source.positions())
    assert messages(first) + messages(rest) == [f"line {i}" for i in range(30000)]
    assert stats.malformed == {}


def test_follow_restarts_lose_and_repeat_nothing(tmp_path: Path) -> None:
    """Stop mid-stream, write and rotate while down, restart from positions(): every line once."""
    path = tmp_path / "app.log"
    path.write_text("")
    written: list[str] = []
    got: list[str] = []
    checkpoint: dict | None = None

    def write(lines: list[str], partial: str = "") -> None:
        with path.open("a") as f:
            f.write("".join(line + "\n" for line in lines) + partial)
        written.extend(lines)

    for run in range(6):

        async def one_run() -> dict:
            source = open_source(file_spec(path), Stats(), positions=checkpoint, batch_size=2)
            async with Follower(source, stop_after=7) as follower:
                write([f"r{run}-{i}" for i in range(40)])
                await asyncio.wait_for(follower.task, WAIT_S)
            assert len(follower.messages) == 8  # stopped mid-stream: the rest comes next run
            got.extend(follower.messages)
            return source.positions()

        checkpoint = asyncio.run(one_run())
        # While down: more lines, a partial line, and on odd runs a rotation.
        write([f"down{run}-{i}" for i in range(3)], partial=f"half{run}")
        written.append(f"half{run}")
        if run % 2:
            path.rename(tmp_path / f"app.log.{run}")
            path.write_text("")
        else:
            write([""])
            written.pop()  # "half" + "\n" completes the line "half{run}"

    rest, _ = read_all(file_spec(path), positions=checkpoint)
    got.extend(messages(rest))
    assert sorted(got) == sorted(written)
    for prefix in {m.split("-")[0] for m in written if "-" in m}:
        mine = [m for m in got if m.startswith(prefix + "-")]
        assert mine == sorted(mine, key=lambda m: int(m.split("-")[1]))


# ------------------------------------------------------------------------------------------
# Robustness: deep records, documents that are not one, byte order marks, rewrites in place,
# counts that travel with the batches, paths that are not files, a closed stdin


def test_cloudtrail_record_nested_too_deep_for_orjson_to_write(tmp_path: Path) -> None:
    # orjson reads up to 1024 levels but writes only 254: a record between the two cannot be
    # re-serialised as its message. It is counted (too_deep) and the records after it are read.
    good = trail_records(3)

    def deep(levels: int) -> str:
        return '{"eventVersion": "1.08", "eventTime": "2024-03-05T09:00:00Z", "x": ' + "[" * levels + "]" * levels + "}"

    lines = [json.dumps(good[0]), deep(255), deep(1022), json.dumps(good[1]), deep(1100), json.dumps(good[2])]
    path = tmp_path / "trail.jsonl"
    path.write_text("\n".join(lines) + "\n")
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudtrail_archive"), stats)
    assert messages(batches) == [orjson.dumps(r).decode() for r in good]
    assert stats.malformed == {"too_deep": 2, "invalid_json": 1}  # 1100 levels: orjson cannot read it
    # Inside a {"Records": [...]} document too.
    path.write_text(json.dumps({"Records": good[:1]})[:-2] + ", " + deep(300) + ", " + json.dumps(good[1]) + "]}\n")
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudtrail_archive"), stats)
    assert messages(batches) == [orjson.dumps(r).decode() for r in good[:2]]
    assert stats.malformed == {"too_deep": 1}


CW_LINES = [{"timestamp": 1700000000000 + i, "message": f"m{i}"} for i in range(1000)]


@pytest.mark.parametrize(
    "first",
    [
        '{"timestamp": 1700000000000, "message": "cut", "tags": [',  # looks like a document's start
        '{"events": [',
        "{",
        '{"timestamp": 1700000000000, "message": "unterminated',  # a truncated line
    ],
    ids=["ends-with-bracket", "events-opener", "brace", "truncated"],
)
@pytest.mark.parametrize("chunk_bytes", [None, 7], ids=["one-chunk", "small-chunks"])
def test_json_first_line_that_starts_a_document_which_never_is_one(tmp_path: Path, first: str, chunk_bytes) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(first + "\n" + "".join(json.dumps(e) + "\n" for e in CW_LINES))
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats, chunk_bytes=chunk_bytes)
    assert events(batches) == expected_cw(CW_LINES)  # none of the 1,000 lost
    assert stats.malformed == {"invalid_json": 1}  # the first line, once


def test_json_concatenated_documents_are_all_read(tmp_path: Path) -> None:
    # Two `aws logs filter-log-events` outputs appended to one file, then compact ones, some
    # on one line, an array's elements on their own lines with commas, and junk after a value.
    first, second = CW_EVENTS[:2], CW_EVENTS[2:]
    text = (
        json.dumps({"events": first}, indent=4)
        + "\n"
        + json.dumps({"events": second}, indent=2)
        + "\n"
        + json.dumps({"events": first}) + json.dumps({"events": second}) + "\n"
        + json.dumps(first[0]) + ", " + json.dumps(first[1]) + ",\n"
        + json.dumps({"events": second}, indent=2) + " trailing junk\n"
        + json.dumps(first[0]) + " junk after a value on its own line\n"
    )
    path = tmp_path / "events.json"
    path.write_text(text)
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats)
    assert events(batches) == expected_cw(CW_EVENTS + CW_EVENTS + first + second)
    assert stats.malformed == {"invalid_json": 2}  # " trailing junk" and the last line


def test_json_broken_document_followed_by_a_whole_one(tmp_path: Path) -> None:
    # A pretty-printed output cut short (an interrupted aws logs call), then a whole one: the
    # whole events of the first and every event of the second are read, each other line of
    # the first is counted once.
    cut = json.dumps({"events": CW_EVENTS}, indent=2)
    cut = cut[: cut.index('"message": ""')]  # inside the third event
    path = tmp_path / "events.json"
    path.write_text(cut + "\n" + json.dumps({"events": CW_EVENTS}, indent=2) + "\n")
    stats = Stats()
    batches, _ = read_all(file_spec(path, "cloudwatch_events"), stats)
    assert events(batches) == expected_cw(CW_EVENTS[:2] + CW_EVENTS)
    # "{", '"events": [', and the cut event's "{" and its "timestamp" line.
    assert stats.malformed == {"invalid_json": 4}


def test_follow_json_line_that_starts_a_document_which_never_is_one(tmp_path: Path) -> None:
    # While following, nothing ends the data: the lines after it prove it is not a document.
    path = tmp_path / "events.jsonl"
    path.write_text('{"timestamp": 1, "message": "cut", "tags": [\n')

    async def main() -> tuple[list[LogEvent], dict]:
        stats = Stats()
        async with Follower(open_source(file_spec(path, "cloudwatch_events"), stats)) as follower:
            await follower.rounds()
            with path.open("a") as f:
                f.write("".join(json.dumps(e) + "\n" for e in CW_LINES[:2]))
            await follower.wait_for("m1")
            with path.open("a") as f:
                f.write("".join(json.dumps(e) + "\n" for e in CW_LINES[2:5]))
            await follower.wait_for("m4")
            await follower.rounds()
        return events(follower.batches), stats.malformed

    got, malformed = asyncio.run(main())
    assert got == expected_cw(CW_LINES[:5])
    assert malformed == {"invalid_json": 1}


def test_follow_json_document_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A document that stays a valid start of one and never ends (an array of numbers): given
    # up once over MAX_DOCUMENT_BYTES, read line by line, and what comes after it is read.
    monkeypatch.setattr(files, "MAX_DOCUMENT_BYTES", 4096)
    path = tmp_path / "events.json"
    path.write_text("[\n")

    async def main() -> tuple[list[str], dict, int]:
        stats = Stats()
        source = open_source(file_spec(path, "cloudwatch_events"), stats)
        async with Follower(source) as follower:
            with path.open("a") as f:
                for _ in range(2000):  # 10,000 bytes
                    f.write("1234,\n")
                f.write(json.dumps({"timestamp": 5, "message": "after"}) + "\n")
            await follower.wait_for("after")
            await follower.rounds()
            held = max(f.parser.plen for f in source._files.values())
        return follower.messages, stats.malformed, held

    got, malformed, held = asyncio.run(main())
    assert got == ["after"]
    # "[" and every "1234," line (each its own bad line once the document was given up).
    assert malformed == {"invalid_json": 2001}
    assert held == 0


def test_lines_byte_order_mark_is_stripped_at_the_start_only(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(_BOM + b"1700000000 first\n\xef\xbb\xbf1700000001 second\n")
    for chunk_bytes in (None, 1, 2, 4):
        batches, source = read_all(file_spec(path), chunk_bytes=chunk_bytes)
        assert messages(batches) == ["1700000000 first", "\ufeff1700000001 second"], chunk_bytes
    # Resumed after the first line: the second keeps its mark (it is inside the file).
    first, source = read_all(file_spec(path), batch_size=1)
    assert messages(read_all(file_spec(path), positions=first[0].position)[0]) == ["\ufeff1700000001 second"]
    # A file that is only (part of) a mark.
    path.write_bytes(_BOM)
    assert read_all(file_spec(path))[0][-1].log_events() == []
    path.write_bytes(_BOM[:2])
    stats = Stats()
    assert messages(read_all(file_spec(path), stats)[0]) == [] and stats.malformed == {"invalid_utf8": 1}


@pytest.mark.parametrize("rewrite", ["same-size", "longer-same-head"])
def test_follow_file_rewritten_in_place(tmp_path: Path, rewrite: str) -> None:
    # Truncated and written again between two looks (copytruncate of fixed-format lines, or
    # `printf ... > file`): the size does not tell, the bytes before the read offset do.
    path = tmp_path / "app.log"
    path.write_text("1700000000 first\n")

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(path), Stats())) as follower:
            await follower.wait_for("1700000000 first")
            await follower.rounds()
            if rewrite == "same-size":
                path.write_text("1700000060 again\n")  # O_TRUNC, then as many bytes
                await follower.wait_for("1700000060 again")
            else:
                path.write_text("1700000000 fir\nst and more\n")  # same first bytes, longer
                await follower.wait_for("st and more")
            with path.open("a") as f:
                f.write("appended\n")
            await follower.wait_for("appended")
            await follower.rounds()
        return follower.messages

    expected = ["1700000060 again"] if rewrite == "same-size" else ["1700000000 fir", "st and more"]
    assert asyncio.run(main()) == ["1700000000 first"] + expected + ["appended"]


def test_follow_rewrite_check_is_one_small_read_per_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "app.log"
    path.write_text("x" * 5000 + "\n")
    reads: list[tuple[int, int]] = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append((n, offset))
        return real_pread(fd, n, offset)

    looks = [0]

    async def main() -> None:
        source = open_source(file_spec(path), Stats())
        scan = source._scan

        def counted_scan(*args, **kwargs):
            looks[0] += 1
            return scan(*args, **kwargs)

        async with Follower(source) as follower:
            await follower.wait_for("x" * 5000)
            await follower.rounds(1)
            monkeypatch.setattr(os, "pread", pread)
            source._scan = counted_scan
            await follower.rounds(5)
            source._scan = scan
            monkeypatch.undo()

    asyncio.run(main())
    assert reads and all(read == (file_state.HEAD_BYTES, 5001 - file_state.HEAD_BYTES) for read in reads)
    assert len(reads) <= looks[0]  # one small read per look, nothing else


def test_malformed_counts_travel_with_the_batch_that_covers_them(tmp_path: Path) -> None:
    # Counted when the batch after them is yielded, never ahead of its position: a resume from
    # any batch counts exactly the rest (no double counts after a crash).
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(b"ok %d\n" % i if i % 4 else b"bad \xff %d\n" % i for i in range(40)))
    stats = Stats()
    batches, _ = read_all(file_spec(path), stats, batch_size=3)
    assert stats.malformed == {"invalid_utf8": 10}
    counted: dict[str, int] = {}
    for batch in batches:
        for reason, n in (batch.malformed or {}).items():
            counted[reason] = counted.get(reason, 0) + n
        rest_stats = Stats()
        read_all(file_spec(path), rest_stats, positions=batch.position, batch_size=3)
        assert counted.get("invalid_utf8", 0) + rest_stats.malformed.get("invalid_utf8", 0) == 10
    assert counted == stats.malformed
    # The Engine's way: no Stats to the source, the counts only in the batches.
    batches, _ = read_all(file_spec(path), batch_size=3)
    assert sum((b.malformed or {}).get("invalid_utf8", 0) for b in batches) == 10


def test_literal_path_with_glob_characters(tmp_path: Path) -> None:
    (tmp_path / "app[1].log").write_text("literal\n")
    (tmp_path / "app1.log").write_text("matched by the glob\n")
    batches, _ = read_all(file_spec(tmp_path / "app[1].log"))
    assert messages(batches) == ["literal"]  # the file of that name, not the glob's match
    (tmp_path / "app[1].log").unlink()
    batches, _ = read_all(file_spec(tmp_path / "app[1].log"))
    assert messages(batches) == ["matched by the glob"]  # no such file: a glob


def test_directory_fifo_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    with pytest.raises(ValueError, match="is a directory, not a file.*glob"):
        open_source(file_spec(tmp_path / "logs"), Stats())
    os.mkfifo(tmp_path / "pipe.log")
    with pytest.raises(ValueError, match=r"named pipe \(FIFO\).*type: stdin"):
        open_source(file_spec(tmp_path / "pipe.log"), Stats())
    # Globs skip what is not a file, as before; warnings name sources that read nothing.
    assert open_source(file_spec(tmp_path / "*"), Stats()).warning() is not None
    assert "no file matches the glob" in open_source(file_spec(tmp_path / "*.txt"), Stats()).warning()
    assert "no such file" in open_source(file_spec(tmp_path / "missing.log"), Stats()).warning()
    (tmp_path / "a.txt").write_text("a\n")
    assert open_source(file_spec(tmp_path / "*.txt"), Stats()).warning() is None
    assert open_source(SourceSpec(type="stdin", log_group=GROUP), Stats()).warning() is None


def test_follow_literal_path_that_becomes_a_directory_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("one\n")

    async def main() -> dict:
        stats = Stats()
        async with Follower(open_source(file_spec(path), stats)) as follower:
            await follower.wait_for("one")
            path.unlink()
            path.mkdir()
            await follower.rounds(4)
        return stats.malformed

    assert asyncio.run(main()) == {"unreadable_file": 1}


def test_stdin_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(ValueError, match="stdin source needs a standard input"):
        open_source(SourceSpec(type="stdin", log_group=GROUP), Stats())


def test_follow_stopped_takes_a_file_that_is_one_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("")

    async def main() -> tuple[list[str], dict]:
        source = open_source(file_spec(path), Stats())
        async with Follower(source) as follower:
            await follower.rounds()
            path.write_text("only")
            await follower.rounds()
        return follower.messages, source.positions()

    got, checkpoint = asyncio.run(main())
    assert got == ["only"]
    assert messages(read_all(file_spec(path), positions=checkpoint)[0]) == []


def test_a_glob_names_a_fifo_it_skips_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.log").write_text("a\n")
    os.mkfifo(tmp_path / "pipe.log")
    (tmp_path / "dir.log").mkdir()  # a directory matching a glob is no news

    async def main() -> list[str]:
        async with Follower(open_source(file_spec(tmp_path / "*.log"), Stats())) as follower:
            await follower.wait_for("a")
            await follower.rounds(5)
            return follower.messages

    with caplog.at_level("WARNING", logger="castlewatch.engine"):
        assert asyncio.run(main()) == ["a"]
        assert messages(read_all(file_spec(tmp_path / "*.log"))[0]) == ["a"]
    fifo = tmp_path / "pipe.log"
    assert [r.getMessage() for r in caplog.records] == [
        f"Warning: source file:{tmp_path / '*.log'}: {fifo} is a named pipe (FIFO), not a regular file: the glob "
        f"skips it; read a pipe with a stdin source: castlewatch ... < {fifo}"
    ] * 2  # once per path for each source (the follower's, the replay's)


# ------------------------------------------------------------------------------------------
# Where an event is (Source.locate, for the report of an event whose evaluation failed)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_locate_gives_the_byte_offset_of_an_events_line(tmp_path: Path, gz: bool) -> None:
    raw = b"\xef\xbb\xbfa\r\n\n\nb\n\xff bad\nc\r\n" + b"".join(b"line %d\n" % i for i in range(20)) + b"last"
    path = tmp_path / ("app.log.gz" if gz else "app.log")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    source = open_source(file_spec(path), Stats(), batch_size=4)

    async def main() -> list[EventBatch]:
        return [b async for b in source.batches(follow=False, stop=asyncio.Event())]

    batches = asyncio.run(main())
    before = None
    found = []
    for batch in batches:
        for i, message in enumerate(batch.messages or []):
            found.append((message, source.locate(before, batch.position, i, message)))
        before = batch.position
    starts = {m: raw.index(b"\n" + m.encode()) + 1 if m != "a" else 3 for m, _ in found}
    assert found == [(m, f"{path} byte {starts[m]}") for m, _ in found]
    assert [m for m, _ in found][:4] == ["a", "b", "c", "line 0"]
    assert source.locate(before, batches[-1].position, 0, "not this one") is None  # checked against the message


def test_locate_resumed_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\nthree\n")
    first, source = read_all(file_spec(path), batch_size=1)
    checkpoint = first[0].position  # after "one"
    rest_source = open_source(file_spec(path), Stats(), positions=checkpoint)

    async def main() -> list[EventBatch]:
        return [b async for b in rest_source.batches(follow=False, stop=asyncio.Event())]

    (batch,) = asyncio.run(main())
    assert batch.messages == ["two", "three"]
    assert rest_source.locate(checkpoint, batch.position, 1, "three") == f"{path} byte 8"
    assert open_source(SourceSpec(type="stdin", log_group=GROUP), Stats()).locate(None, {}, 0, "x") is None


@pytest.mark.parametrize("chunk_bytes", [7, 64, 1000])
def test_each_chunk_is_read_once_and_ahead_of_its_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       chunk_bytes: int) -> None:
    """A file of many chunks: the next chunk is read before this one is parsed (the read
    ahead), each offset once, and the events are those of one read of the whole file."""
    from castlewatch.engine.formats import StreamParser

    path = tmp_path / "app.log"
    path.write_text("".join(f"line {i} {'x' * (i % 13)}\n" for i in range(300)))
    size = path.stat().st_size
    whole = messages(read_all(file_spec(path))[0])
    steps: list[tuple[str, int]] = []
    pread, feed = os.pread, StreamParser.feed

    def counted(fd: int, n: int, offset: int) -> bytes:
        if n == chunk_bytes:  # not the small reads of the magic bytes and the head
            steps.append(("read", offset))
        return pread(fd, n, offset)

    def fed(parser: StreamParser, data: bytes) -> None:
        steps.append(("parse", parser.read_pos))
        feed(parser, data)

    running_loop = asyncio.get_running_loop

    class Loop:  # the running loop, its run_in_executor calls noted
        def __init__(self) -> None:
            self.loop = running_loop()

        def __getattr__(self, name: str):
            return getattr(self.loop, name)

        def run_in_executor(self, executor, func, *args):
            if func is counted and args[1] == chunk_bytes:
                steps.append(("asked", args[2]))
            return self.loop.run_in_executor(executor, func, *args)

    monkeypatch.setattr(os, "pread", counted)
    monkeypatch.setattr(StreamParser, "feed", fed)
    monkeypatch.setattr(asyncio, "get_running_loop", Loop)
    batches, _ = read_all(file_spec(path), chunk_bytes=chunk_bytes, batch_size=10)
    assert messages(batches) == whole and len(whole) == 300
    offsets = range(0, size, chunk_bytes)
    reads = [at for step, at in steps if step == "read"]
    assert reads == list(offsets) + ([size] if size % chunk_bytes == 0 else [])  # each once, in order
    for at in offsets[:-1]:  # every full chunk's successor was asked for before it was parsed
        assert steps.index(("asked", at + chunk_bytes)) < steps.index(("parse", at))


def test_a_replay_and_a_follower_read_in_large_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once or followed (a daemon catching up a backlog), a plain file is read
    READ_CHUNK_BYTES at a time: fewer waits on the event loop."""
    from castlewatch.engine.sources import files as file_sources

    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i:07d} {'y' * 90}\n" for i in range(100_000)))  # about 10 MiB
    sizes: list[int] = []
    pread = os.pread

    def noted(fd: int, n: int, offset: int) -> bytes:
        sizes.append(n)
        return pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", noted)
    batches, _ = read_all(file_spec(path), batch_size=5000)
    assert len(messages(batches)) == 100_000
    assert max(sizes) == file_sources.READ_CHUNK_BYTES > path.stat().st_size // 2

    async def follow_once() -> None:
        source = open_source(file_spec(path), Stats(), None, batch_size=5000)
        async with Follower(source) as follower:
            assert len(await follower.wait_for(f"line {99_999:07d} {'y' * 90}")) == 100_000

    sizes.clear()
    asyncio.run(follow_once())
    assert max(sizes) == file_sources.READ_CHUNK_BYTES
