"""The ``flow_log_file`` source format: VPC Flow Logs as delivered to S3, a header line of
field names first (:mod:`castlewatch.engine.formats`)."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

from castlewatch.engine.config import load_config_text
from castlewatch.engine.runner import Engine
from castlewatch.engine.sources import SourceSpec, open_source
from castlewatch.model import LogEvent, Stats

DEFAULT = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
CUSTOM = "start interface-id srcaddr action bytes"


def _read(path: Path, stats: Stats | None = None) -> list[LogEvent]:
    source = open_source(SourceSpec("file", "vpc", str(path), "flow_log_file"), stats if stats is not None else Stats())

    async def collect():
        out = []
        async for batch in source.batches(follow=False, stop=asyncio.Event()):
            out += batch.log_events()
        return out

    return asyncio.run(collect())


def test_the_header_is_not_an_event_and_start_times_each_record(tmp_path: Path) -> None:
    record = "2 123456789012 eni-0a1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK"
    nodata = "2 123456789012 eni-0a2 - - - - - - - 1700000120 1700000180 - NODATA"
    path = tmp_path / "flow.log.gz"
    path.write_bytes(gzip.compress(f"{DEFAULT}\n{record}\n\n{nodata}\r\n".encode()))
    assert _read(path) == [
        LogEvent(1_700_000_000_000, record, "vpc", "eni-0a1"),
        LogEvent(1_700_000_120_000, nodata, "vpc", "eni-0a2"),
    ]


def test_a_custom_format_is_read_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "flow.log"
    path.write_text(f"{CUSTOM}\n1700000300 eni-9 10.1.1.1 REJECT 60\n- eni-9 10.1.1.1 REJECT 60\n1700000301\n")
    stats = Stats()
    assert _read(path, stats) == [
        LogEvent(1_700_000_300_000, "1700000300 eni-9 10.1.1.1 REJECT 60", "vpc", "eni-9"),
        LogEvent(1_700_000_301_000, "1700000301", "vpc", ""),
    ]
    assert stats.malformed == {"bad_timestamp": 1}  # a start of '-' cannot time its record


def test_a_first_line_that_is_no_header_is_counted_and_no_record_is_guessed(tmp_path: Path) -> None:
    path = tmp_path / "flow.log"
    path.write_text("2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n"
                    "2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1700000000 1700000060 ACCEPT OK\n")
    stats = Stats()
    assert _read(path, stats) == []
    assert stats.malformed == {"invalid_header": 1, "bad_timestamp": 1}
    (tmp_path / "nostart.log").write_text("version interface-id action\n2 eni-1 ACCEPT\n")
    stats = Stats()
    assert _read(tmp_path / "nostart.log", stats) == []
    assert stats.malformed == {"invalid_header": 1, "bad_timestamp": 1}


def test_replay_of_flow_log_files_equals_the_lines_source_timed_by_field_11(tmp_path: Path) -> None:
    records = [f"2 123456789012 eni-{i % 3} 10.0.0.{i} 10.0.0.2 443 {1000 + i} 6 {i} {40 * i} "
               f"{1700000000 + 7 * i} {1700000060 + 7 * i} {'REJECT' if i % 4 == 0 else 'ACCEPT'} OK" for i in range(60)]
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "a.log.gz").write_bytes(gzip.compress(("\n".join([DEFAULT] + records[:30]) + "\n").encode()))
    (tmp_path / "archive" / "b.log.gz").write_bytes(gzip.compress(("\n".join([DEFAULT] + records[30:]) + "\n").encode()))
    (tmp_path / "plain.log").write_text("\n".join(records) + "\n")
    filters = """
metric_filters:
  - filterName: rejects
    logGroupName: vpc
    filterPattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, start, end, action = "REJECT", status]'
    metricTransformations: [{metricName: Rejects, metricNamespace: Flow, metricValue: $bytes, dimensions: {Eni: $eni}}]
"""
    outputs = []
    for name, source in (
        ("files", "{type: file, path: archive/*.log.gz, log_group: vpc, format: flow_log_file}"),
        ("lines", "{type: file, path: plain.log, log_group: vpc, timestamp: {field: $11, format: epoch_s}}"),
    ):
        config = load_config_text(f"{filters}sources:\n  - {source}\nsinks:\n  - {{type: jsonl, path: {name}.jsonl}}\n",
                                  tmp_path)
        stats = asyncio.run(Engine(config).replay())
        assert stats.events_read == 60 and stats.matched == {"rejects": 15}
        outputs.append((tmp_path / f"{name}.jsonl").read_text())
    assert outputs[0] == outputs[1] and outputs[0]
