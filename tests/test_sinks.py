"""Local sinks: exact output of every format, and truncate-and-append resume."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os

import fastavro
import fastavro.schema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from castlewatch.model import Datapoint
from castlewatch.sinks import (
    CSV_HEADER,
    AvroSink,
    CsvSink,
    JsonLinesSink,
    Sink,
    SinkError,
    SinkSpec,
    StdoutSink,
    avro_schema,
    format_dimensions,
    open_sink,
    parse_dimensions,
)
from castlewatch.sinks import files as local_mod

T0 = 1_704_067_260  # 2024-01-01T00:01:00Z
T0_ISO = "2024-01-01T00:01:00Z"
T0_DT = dt.datetime(2024, 1, 1, 0, 1, tzinfo=dt.timezone.utc)


def make_dp(
    values: dict[float, int],
    *,
    namespace: str = "CISBenchmark",
    metric: str = "ConsoleSignIn",
    dims: tuple[tuple[str, str], ...] = (),
    unit: str = "Count",
    ts: int = T0,
) -> Datapoint:
    dp = Datapoint(namespace=namespace, metric_name=metric, dimensions=dims, unit=unit, timestamp=ts)
    for value, count in values.items():
        dp.add(value, count)
    return dp


# Spec §8.4: contributions 13 and 17.5 give Sum 30.5, SampleCount 2, Min 13, Max 17.5.
DP_DIMS = make_dp({13.0: 1, 17.5: 1}, dims=(("User", "alice"), ("Region", "eu-west-1")), unit="Seconds")
DP_PLAIN = make_dp({1.0: 3}, metric="RootUsage", unit="None", ts=T0 + 60)

LINE_DIMS = {
    "Namespace": "CISBenchmark",
    "MetricName": "ConsoleSignIn",
    "Dimensions": [{"Name": "User", "Value": "alice"}, {"Name": "Region", "Value": "eu-west-1"}],
    "Timestamp": T0_ISO,
    "Values": [13.0, 17.5],
    "Counts": [1.0, 1.0],
    "Unit": "Seconds",
    "StorageResolution": 60,
}
LINE_PLAIN = {
    "Namespace": "CISBenchmark",
    "MetricName": "RootUsage",
    "Timestamp": "2024-01-01T00:02:00Z",
    "Values": [1.0],
    "Counts": [3.0],
    "Unit": "None",
    "StorageResolution": 60,
}


def read_lines(path) -> list[dict]:
    with open(path, "rb") as fh:
        data = fh.read()
    assert data == b"" or data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def read_avro(path) -> list[dict]:
    with open(path, "rb") as fh:
        return list(fastavro.reader(fh))


def avro_expected(dp: Datapoint) -> dict:
    rec = dp.to_record()
    rec["Timestamp"] = dt.datetime.fromtimestamp(dp.timestamp, dt.timezone.utc)
    return rec


# --------------------------------------------------------------------------- spec


def test_spec_validation():
    assert SinkSpec("stdout").path is None
    assert SinkSpec("jsonl", "out/x.jsonl").path == "out/x.jsonl"
    with pytest.raises(SinkError, match="needs a path"):
        SinkSpec("csv")
    with pytest.raises(ValueError, match="unknown sink type 'parquet'"):
        SinkSpec("parquet", "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "cls"), [("jsonl", JsonLinesSink), ("csv", CsvSink), ("avro", AvroSink), ("stdout", StdoutSink)]
)
def test_open_sink_types(tmp_path, kind, cls):
    sink = open_sink(SinkSpec(kind, str(tmp_path / "deep" / "dir" / f"out.{kind}")))
    try:
        assert isinstance(sink, cls)
        assert isinstance(sink, Sink)
        if kind != "stdout":
            assert (tmp_path / "deep" / "dir" / f"out.{kind}").exists()
    finally:
        sink.close()


# --------------------------------------------------------------------------- JSON Lines


def test_jsonl_content(tmp_path):
    path = tmp_path / "dp.jsonl"
    sink = open_sink(SinkSpec("jsonl", str(path)))
    sink.write([DP_DIMS])
    sink.write([DP_PLAIN])
    sink.write([])
    sink.close()
    assert read_lines(path) == [LINE_DIMS, LINE_PLAIN]
    # Namespace first, then the MetricDatum exactly as Datapoint.metric_data() gives it.
    first = path.read_bytes().splitlines()[0]
    assert first.startswith(b'{"Namespace":"CISBenchmark","MetricName":"ConsoleSignIn",')
    assert "Dimensions" not in read_lines(path)[1]


def test_jsonl_splits_at_150_values(tmp_path):
    path = tmp_path / "dp.jsonl"
    values = {float(i): (i % 3) + 1 for i in range(200)}
    dp = make_dp(values, dims=(("Host", "h1"),))
    with open_sink(SinkSpec("jsonl", str(path))) as sink:
        sink.write([dp])
    lines = read_lines(path)
    assert len(lines) == 2
    assert [len(line["Values"]) for line in lines] == [150, 50]
    for line in lines:
        assert len(line["Counts"]) == len(line["Values"]) <= 150
        assert line["Namespace"] == "CISBenchmark"
        assert line["Dimensions"] == [{"Name": "Host", "Value": "h1"}]
        assert line["Timestamp"] == T0_ISO
    assert lines[0]["Values"] + lines[1]["Values"] == [float(i) for i in range(200)]
    merged = dict(zip(lines[0]["Values"] + lines[1]["Values"], lines[0]["Counts"] + lines[1]["Counts"]))
    assert merged == {v: float(c) for v, c in values.items()}
    assert [{k: v for k, v in line.items() if k != "Namespace"} for line in lines] == dp.metric_data()


def test_empty_datapoint_publishes_nothing(tmp_path):
    empty = make_dp({})
    for kind in ("jsonl", "csv", "avro"):
        path = tmp_path / f"x.{kind}"
        with open_sink(SinkSpec(kind, str(path))) as sink:
            sink.write([empty, DP_PLAIN, empty])
        if kind == "jsonl":
            assert read_lines(path) == [LINE_PLAIN]
        elif kind == "csv":
            assert len(read_csv(path)) == 2
        else:
            assert read_avro(path) == [avro_expected(DP_PLAIN)]


# --------------------------------------------------------------------------- stdout


def test_stdout(capsys):
    sink = open_sink(SinkSpec("stdout"))
    sink.write([DP_DIMS, DP_PLAIN])
    assert sink.flush() is None
    sink.close()
    out = capsys.readouterr().out
    assert [orjson.loads(line) for line in out.splitlines()] == [LINE_DIMS, LINE_PLAIN]
    assert out.endswith("\n")


# --------------------------------------------------------------------------- CSV


def test_csv_content(tmp_path):
    path = tmp_path / "dp.csv"
    odd = make_dp(
        {2.5: 1}, namespace='App, "prod"', metric="Latency", dims=(("Path", "/a,b=c\\d"),), unit="Milliseconds"
    )
    with open_sink(SinkSpec("csv", str(path))) as sink:
        sink.write([DP_DIMS, DP_PLAIN])
        sink.write([odd])
    assert path.read_bytes() == (
        b"Namespace,MetricName,Dimensions,Timestamp,Unit,SampleCount,Sum,Minimum,Maximum\r\n"
        b'CISBenchmark,ConsoleSignIn,"Region=eu-west-1,User=alice",2024-01-01T00:01:00Z,Seconds,2,30.5,13.0,17.5\r\n'
        b"CISBenchmark,RootUsage,,2024-01-01T00:02:00Z,None,3,3.0,1.0,1.0\r\n"
        b'"App, ""prod""",Latency,"Path=/a\\,b\\=c\\\\d",2024-01-01T00:01:00Z,Milliseconds,1,2.5,2.5,2.5\r\n'
    )


def test_csv_reads_back_as_one_scalar_per_cell(tmp_path):
    """Tidy for spreadsheets and pandas: the csv module gives, per datapoint, one row of
    CSV_HEADER's columns; every cell is one number, one time or one string (no JSON),
    and the Dimensions string gives the datapoint's dimension set back."""
    path = tmp_path / "dp.csv"
    odd = make_dp({2.5: 1, -4.0: 2}, namespace='App, "prod"', dims=(("Path", "/a,b=c\\d"), ("B", "")))
    many = make_dp({float(i): 1 for i in range(400)}, metric="Many")
    dps = [DP_DIMS, DP_PLAIN, odd, many]
    with open_sink(SinkSpec("csv", str(path))) as sink:
        sink.write(dps)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_HEADER
    assert len(rows) == len(dps)  # one row per datapoint, also with more than 150 values
    for row, dp in zip(rows, dps):
        assert None not in row and set(row) == set(CSV_HEADER)  # no extra or missing cells
        for cell in row.values():
            assert isinstance(cell, str) and cell[:1] not in ("[", "{") and "\n" not in cell
        assert row["Namespace"] == dp.namespace and row["MetricName"] == dp.metric_name and row["Unit"] == dp.unit
        assert parse_dimensions(row["Dimensions"]) == dict(dp.dimensions)
        assert dt.datetime.fromisoformat(row["Timestamp"]) == dt.datetime.fromtimestamp(dp.timestamp, dt.timezone.utc)
        assert int(row["SampleCount"]) == dp.sample_count
        assert (float(row["Sum"]), float(row["Minimum"]), float(row["Maximum"])) == (dp.sum, dp.minimum, dp.maximum)


@pytest.mark.parametrize(
    ("dimensions", "cell"),
    [
        ((), ""),
        ((("User", "alice"),), "User=alice"),
        ((("User", "alice"), ("Region", "eu-west-1")), "Region=eu-west-1,User=alice"),  # sorted by name
        ((("Path", "/a,b"), ("Q", "x=y"), ("W", "C:\\dir")), "Path=/a\\,b,Q=x\\=y,W=C:\\\\dir"),
        ((("a=b", ""),), "a\\=b="),
    ],
)
def test_csv_dimensions_cell(dimensions, cell):
    assert format_dimensions(dimensions) == cell
    assert parse_dimensions(cell) == dict(dimensions)


@pytest.mark.parametrize("text", ["a", "a=1,", "a=1,b", "a=b=c", ",", "a\\", "=1,,b=2"])
def test_csv_dimensions_cell_that_is_not_one(text):
    with pytest.raises(ValueError, match="not a list of Name=Value pairs"):
        parse_dimensions(text)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4))
def test_csv_dimensions_round_trip(dimensions):
    cell = format_dimensions(tuple(dimensions.items()))
    assert parse_dimensions(cell) == dimensions
    assert format_dimensions(tuple(reversed(dimensions.items()))) == cell  # canonical: order-free


def test_csv_header_only_once_and_empty_run(tmp_path):
    path = tmp_path / "dp.csv"
    sink = open_sink(SinkSpec("csv", str(path)))
    pos = sink.flush()
    sink.close()
    assert read_csv(path) == [list(CSV_HEADER)]
    sink = open_sink(SinkSpec("csv", str(path)), position=pos)
    sink.write([DP_PLAIN])
    sink.close()
    rows = read_csv(path)
    assert rows[0] == list(CSV_HEADER) and len(rows) == 2
    assert sum(1 for r in rows if r == list(CSV_HEADER)) == 1


@pytest.mark.parametrize(
    "head",
    [
        b"Namespace,MetricName,Dimensions,Timestamp,Unit,SampleCount,Sum,Minimum,Maximum,Values,Counts\r\n",
        b"Namespace,MetricName\r\n",
        b"x",
    ],
    ids=["older-columns", "short", "not-csv"],
)
def test_csv_resume_refuses_a_file_with_another_header(tmp_path, head):
    """A checkpointed CSV file is appended to only under castlewatch's own header (an
    older castlewatch wrote Values and Counts columns): never rows of two shapes."""
    path = tmp_path / "dp.csv"
    path.write_bytes(head + b"CISBenchmark,RootUsage\r\n")
    with pytest.raises(SinkError, match="does not start with the header castlewatch writes"):
        open_sink(SinkSpec("csv", str(path)), position={"size": len(head)})
    assert path.read_bytes() == head + b"CISBenchmark,RootUsage\r\n"  # untouched


# --------------------------------------------------------------------------- Avro


def test_avro_schema_file_parses():
    path = os.path.join(os.path.dirname(local_mod.__file__), "datapoint.avsc")
    loaded = fastavro.schema.load_schema(path)
    with open(path, "rb") as fh:
        raw = orjson.loads(fh.read())
    parsed = fastavro.parse_schema(raw)
    assert loaded["name"] == parsed["name"] == "castlewatch.Datapoint"
    fields = {f["name"]: f["type"] for f in raw["fields"]}
    assert list(fields) == [*CSV_HEADER, "Values", "Counts"]
    assert fields["Dimensions"] == {"type": "map", "values": "string"}
    assert fields["Timestamp"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["Values"] == {"type": "array", "items": "double"}
    assert fields["Counts"] == {"type": "array", "items": "long"}
    assert fields["SampleCount"] == "long"
    assert fields["Sum"] == fields["Minimum"] == fields["Maximum"] == "double"
    assert fields["Unit"] == fields["Namespace"] == fields["MetricName"] == "string"
    assert fastavro.schema.to_parsing_canonical_form(avro_schema()) == fastavro.schema.to_parsing_canonical_form(
        parsed
    )


def test_avro_round_trip(tmp_path):
    path = tmp_path / "dp.avro"
    many = make_dp({float(i): 1 for i in range(200)}, dims=(("Host", "h1"),))
    sink = open_sink(SinkSpec("avro", str(path)))
    sink.write([DP_DIMS, DP_PLAIN])
    sink.flush()
    # Readable after a flush while the sink is still open.
    assert read_avro(path) == [avro_expected(DP_DIMS), avro_expected(DP_PLAIN)]
    sink.write([many])
    sink.close()
    records = read_avro(path)
    assert records == [avro_expected(DP_DIMS), avro_expected(DP_PLAIN), avro_expected(many)]
    assert records[1]["Dimensions"] == {}
    assert records[0]["Timestamp"] == T0_DT
    assert len(records[2]["Values"]) == 200  # one record per datapoint, no 150 split
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        assert reader.writer_schema["name"] == "castlewatch.Datapoint"
        assert reader.codec == "deflate"


def test_avro_empty_run_is_valid(tmp_path):
    path = tmp_path / "dp.avro"
    open_sink(SinkSpec("avro", str(path))).close()
    assert read_avro(path) == []


# --------------------------------------------------------------------------- fresh run, durability


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_fresh_run_truncates(tmp_path, kind):
    path = tmp_path / f"dp.{kind}"
    path.write_bytes(b"left over from an earlier run\n")
    with open_sink(SinkSpec(kind, str(path))) as sink:
        sink.write([DP_PLAIN])
    assert content(kind, path) == content_of(kind, [DP_PLAIN])


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_fsync_only_in_flush(tmp_path, monkeypatch, kind):
    calls = []
    real = os.fsync
    monkeypatch.setattr(local_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    sink = open_sink(SinkSpec(kind, str(tmp_path / f"dp.{kind}")))
    calls.clear()
    batch = [make_dp({float(i % 7): 1}, dims=(("N", str(i)),)) for i in range(5000)]
    sink.write(batch)
    sink.write(batch)
    assert calls == []
    pos = sink.flush()
    assert len(calls) == 1
    assert pos == {"size": os.path.getsize(tmp_path / f"dp.{kind}")}
    sink.close()
    assert len(content(kind, tmp_path / f"dp.{kind}")) == 10000


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_closed_sink(tmp_path, kind):
    sink = open_sink(SinkSpec(kind, str(tmp_path / f"dp.{kind}")))
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(SinkError, match="closed"):
        sink.write([DP_PLAIN])
    with pytest.raises(SinkError, match="closed"):
        sink.flush()


# --------------------------------------------------------------------------- resume


A = [DP_DIMS, make_dp({5.0: 2, 6.0: 1}, metric="A2")]
B = [make_dp({99.0: 1}, metric="B1"), make_dp({98.0: 4}, metric="B2", dims=(("X", "y"),))]
C = [make_dp({7.0: 1}, metric="C1", ts=T0 + 120), DP_PLAIN]


def content(kind, path):
    """The datapoint-level content of a sink file (header excluded for CSV)."""
    if kind == "jsonl":
        return read_lines(path)
    if kind == "csv":
        rows = read_csv(path)
        assert rows[0] == list(CSV_HEADER)
        assert list(CSV_HEADER) not in rows[1:]
        return rows[1:]
    return read_avro(path)


def content_of(kind, dps):
    """What a fresh file holding exactly ``dps`` contains."""
    if kind == "jsonl":
        return [{"Namespace": dp.namespace, **d} for dp in dps for d in dp.metric_data()]
    if kind == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        for dp in dps:
            dims = ",".join(f"{n}={v}" for n, v in sorted(dp.dimensions))  # no special characters in A, B, C
            w.writerow([dp.namespace, dp.metric_name, dims, dp.iso_timestamp, dp.unit, dp.sample_count, dp.sum,
                        dp.minimum, dp.maximum])
        return list(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    return [avro_expected(dp) for dp in dps]


def crash(sink, extra: bytes = b"") -> None:
    """Simulate kill -9: whatever the process handed to the OS stays, nothing is closed
    cleanly (no final Avro block, no fsync); ``extra`` models a torn write."""
    if isinstance(sink, AvroSink):
        if sink._writer.block_count:
            sink._writer.dump()  # a block written past the checkpoint, never flushed by us
    fh = sink._fh
    fh.write(extra)
    fh.close()  # hands Python's buffer to the OS, like a write(2) that happened before the kill
    sink._fh = None


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
@pytest.mark.parametrize("b_state", ["unflushed", "flushed", "torn"])
def test_resume_truncates_to_checkpoint(tmp_path, kind, b_state):
    path = tmp_path / "out" / f"dp.{kind}"
    spec = SinkSpec(kind, str(path))
    sink = open_sink(spec)
    sink.write(A)
    pos = sink.flush()
    assert pos == {"size": path.stat().st_size}
    assert orjson.loads(orjson.dumps(pos)) == pos  # JSON-able
    size_at_checkpoint = path.stat().st_size

    sink.write(B)
    if b_state == "flushed":
        sink.flush()
    crash(sink, extra=b'{"Namespace":"half a li' if b_state == "torn" else b"")
    assert path.stat().st_size > size_at_checkpoint  # B's bytes really are in the file

    sink = open_sink(spec, position=pos)
    sink.write(C)
    sink.close()
    assert content(kind, path) == content_of(kind, A + C)


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_resume_twice_and_at_zero(tmp_path, kind):
    path = tmp_path / f"dp.{kind}"
    spec = SinkSpec(kind, str(path))
    sink = open_sink(spec)
    pos0 = sink.flush()
    sink.write(A)
    crash(sink)

    sink = open_sink(spec, position=pos0)  # crash before any datapoint was checkpointed
    sink.write(A)
    pos1 = sink.flush()
    sink.write(B)
    crash(sink)

    sink = open_sink(spec, position=pos1)
    sink.write(B)
    pos2 = sink.flush()
    crash(sink)

    sink = open_sink(spec, position=pos2)  # nothing to drop
    sink.write(C)
    sink.close()
    assert content(kind, path) == content_of(kind, A + B + C)


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_resume_missing_file(tmp_path, kind):
    path = tmp_path / "new" / f"dp.{kind}"
    spec = SinkSpec(kind, str(path))
    with pytest.raises(SinkError, match="does not exist"):
        open_sink(spec, position={"size": 10})
    with open_sink(spec, position={"size": 0}) as sink:
        sink.write(C)
    assert content(kind, path) == content_of(kind, C)


@pytest.mark.parametrize("kind", ["jsonl", "csv", "avro"])
def test_resume_file_shorter_than_position(tmp_path, kind):
    path = tmp_path / f"dp.{kind}"
    spec = SinkSpec(kind, str(path))
    with open_sink(spec) as sink:
        sink.write(A)
    size = path.stat().st_size
    with pytest.raises(SinkError, match="has only"):
        open_sink(spec, position={"size": size + 1})
    assert path.stat().st_size == size  # untouched


@pytest.mark.parametrize("bad", [5, {"size": -1}, {"size": "3"}, {"size": True}, {}, "x"])
def test_invalid_position(tmp_path, bad):
    with pytest.raises(SinkError, match="invalid sink position"):
        open_sink(SinkSpec("jsonl", str(tmp_path / "x.jsonl")), position=bad)


def test_stdout_ignores_position(capsys):
    sink = open_sink(SinkSpec("stdout"), position={"size": 10})
    sink.write([DP_PLAIN])
    sink.close()
    assert orjson.loads(capsys.readouterr().out) == LINE_PLAIN


def test_avro_resume_rejects_other_files(tmp_path):
    path = tmp_path / "dp.avro"
    path.write_bytes(b"not avro at all")
    with pytest.raises(SinkError, match="not an Avro container file"):
        open_sink(SinkSpec("avro", str(path)), position={"size": 10})

    other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "long"}]}
    with open(path, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(other), [{"x": 1}])
    with pytest.raises(SinkError, match="different Avro schema"):
        open_sink(SinkSpec("avro", str(path)), position={"size": path.stat().st_size})


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=400), st.integers(1, 3))
def test_jsonl_lines_write_the_datums_of_a_large_datapoint_as_their_lists_are_written(values, weight):
    """The JSON Lines sink writes a large datapoint's values from its arrays: byte for byte
    what ``orjson.dumps`` writes of ``iter_metric_data``'s lists (``-0.0``, exponents, 5e-324)."""
    from castlewatch.sinks.jsonl import jsonl_lines

    dp = Datapoint(namespace="N", metric_name="M", dimensions=(("A", "b"),), unit="Bytes", timestamp=T0)
    for v in values + [0.0, -0.0, 5e-324, 1e16, 1e-7]:
        dp.add(v, weight)
    expected = [orjson.dumps({"Namespace": "N", **datum}, option=orjson.OPT_APPEND_NEWLINE)
                for datum in dp.iter_metric_data()]
    assert list(jsonl_lines([dp])) == expected
    assert sum(len(orjson.loads(line)["Values"]) for line in expected) == dp.distinct_values


_VALUE = st.one_of(st.integers(-(2**53) + 1, 2**53 - 1).map(float), st.sampled_from([0.0, -0.0, 2.0**53, -(2.0**53), 1e16, 1e300]),
                   st.floats(allow_nan=False, allow_infinity=False))


@given(st.dictionaries(_VALUE, st.integers(1, 2**40), max_size=12), st.integers(-(2**53) + 1, 2**53 - 1),
       st.integers(1, 10**9), st.integers(0, 400), st.sampled_from([(), (("Action", "REJECT"),)]),
       st.sampled_from(["Bytes", "None"]))
def test_jsonl_lines_of_many_values_are_orjsons_bytes(special, start, step, n, dims, unit):
    """Whatever the values (up to 400 whole numbers, written from their int64 text, among
    fractions, -0.0, 2**53 and beyond, large counts), each line is byte for byte what
    orjson writes for the datum with its values as Python floats, on both backends."""
    from castlewatch.grammar import literals as backends
    from castlewatch.sinks.jsonl import jsonl_lines

    values = {float(v): 1 + i % 5 for i, v in enumerate(range(start, start + n * step, step))
              if abs(v) < 2**53} | special
    if not values:
        values = {1.0: 1}
    dp = make_dp(values, dims=dims, unit=unit)
    head = dp.datum_head(Namespace=dp.namespace)
    expected = [orjson.dumps({**head, "Values": v, "Counts": c, "Unit": unit, "StorageResolution": 60},
                             option=orjson.OPT_APPEND_NEWLINE) for v, c in dp.value_chunks()]
    before = backends.backend()
    try:
        for name in backends.AVAILABLE:
            backends.use_backend(name)
            assert list(jsonl_lines([dp])) == expected, name
    finally:
        backends.use_backend(before)


def test_importing_the_sinks_does_not_import_numpy():
    """The sinks (commands such as ``provision`` and ``dashboard`` import them) start without
    numpy's 70 ms: the JSON Lines sink's whole-number path uses the arrays' own methods."""
    import subprocess
    import sys

    code = "import sys, castlewatch.sinks; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
