"""The ``cloudwatch`` sink against a real moto server (never a mocked client), through the
fault proxy: request limits and sizes per wire protocol, datums CloudWatch would refuse,
retries that lose and double nothing, unknown outcomes counted, a validation error
narrowed down to its datum, the publish ledger across a restart, the double-count guard."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from pathlib import Path

import botocore.serialize
import botocore.session
import pytest
from aws_emulator import Fault, FaultProxy
from cloudwatch_checks import cloudwatch_stats, doubled, request_datums, requests_stats

from castlewatch.engine.config import EngineConfig
from castlewatch.model import Datapoint
from castlewatch.sinks import PublishError, SinkContext, SinkError, open_sink
from castlewatch.sinks.cloudwatch import CloudWatchSinkSpec
from castlewatch.sinks.put_metric_data import MAX_REQUEST_BYTES, PROTOCOLS, RequestSize, body_size

NOW = int(time.time()) // 60 * 60


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """A replay's spool goes beside the configuration, here the current directory."""
    monkeypatch.chdir(tmp_path)


def spec(url: str, **kw) -> CloudWatchSinkSpec:
    options = dict(region="us-east-1", endpoint_url=url, namespace_prefix="cw/", timeout_s=2.0,
                   retry_max_delay_s=0.05)
    options.update(kw)
    return CloudWatchSinkSpec(**options)


def datapoint(metric: str, minute: int, values, dims=(), namespace: str = "App", unit: str = "Count") -> Datapoint:
    dp = Datapoint(namespace, metric, tuple(dims), unit, minute)
    for v in values:
        dp.add(float(v))
    return dp


def expected(datapoints: list[Datapoint], prefix: str = "cw/") -> dict:
    return request_datums({"Namespace": prefix + dp.namespace, **d} for dp in datapoints for d in dp.iter_metric_data())


def publish(sink_spec: CloudWatchSinkSpec, batches: list[list[Datapoint]], *, mode: str = "replay",
            checkpoint: Path | None = None, position=None):
    """Open the sink, write each batch (a flush and commit after each), finish and close it."""

    async def main():
        sink = open_sink(sink_spec, position, SinkContext(0, None, checkpoint))
        await sink.start(mode)
        try:
            for batch in batches:
                sink.write(batch)
                sink.committed(await sink.flush_async())
            await sink.finish()
        finally:
            await sink.aclose()
        return sink

    return asyncio.run(main())


def some_datapoints(n_minutes: int = 3, users: int = 5, values: int = 20) -> list[Datapoint]:
    out = []
    for m in range(n_minutes):
        out.append(datapoint("Errors", NOW - 60 * m, [1] * 7))
        for u in range(users):
            dims = (("User", f"u{u}"),)
            out.append(datapoint("Latency", NOW - 60 * m, range(u, u + values), dims, unit="Milliseconds"))
    return out


# ---- sizes ------------------------------------------------------------------------------------------


def _random_datum(rng: random.Random) -> dict:
    n = rng.randint(1, 150)
    d = {"MetricName": rng.choice(["M", "Console Sign-in/Failures", "x" * 200])}
    if rng.random() < 0.7:
        d["Dimensions"] = [{"Name": f"D{j} x", "Value": rng.choice(["a b", "v:/=&+", "x" * 1024, "~._-"])}
                           for j in range(rng.randint(1, 30))]
    d["Timestamp"] = "2026-12-06T16:%02d:00Z" % rng.randint(0, 59)
    d["Values"] = [rng.choice([rng.random() * 1e20, float(rng.randint(-5, 5)), 1e-7, 1e16, 2.0**300]) for _ in range(n)]
    d["Counts"] = [float(rng.randint(1, 10**6)) for _ in range(n)]
    d["Unit"] = rng.choice(["None", "Count/Second"])
    d["StorageResolution"] = 60
    return d


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_request_sizes_are_those_botocore_serialises(protocol):
    """RequestSize gives the exact body botocore builds, datum by datum, for each protocol."""
    operation = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData")
    serializer = botocore.serialize.create_serializer(protocol, include_validation=False)
    sizes = RequestSize(protocol)
    rng = random.Random(protocol)
    for count in [1, 2, 9, 10, 11, 99, 100, 101, 1000]:
        datums = [_random_datum(rng) for _ in range(count)]
        namespace = rng.choice(["CIS", "castlewatch/CIS Benchmark"])
        body = serializer.serialize_to_request({"Namespace": namespace, "MetricData": datums}, operation)["body"]
        assert sizes.request(namespace, datums) == body_size(body), (protocol, count)


def test_an_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown CloudWatch protocol 'xml'"):
        RequestSize("xml")


# ---- what is sent ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_publishes_the_same_statistics(moto, protocol):
    points = some_datapoints()
    with FaultProxy(moto) as proxy:
        sink = publish(spec(proxy.url, protocol=protocol), [points])
    assert sink.counters() == {"published": sum(dp.datum_count() for dp in points), "refused": {},
                               "unknown_outcomes": 0, "unpublished": 0}
    want = expected(points)
    assert cloudwatch_stats(moto, want) == want


def test_requests_respect_the_putmetricdata_limits(moto):
    """A minute of 400 distinct values (3 datums of at most 150), 2,500 dimension values in
    one minute (over 1,000 datums), datums of 150 values with 30 long dimensions (requests
    cut by size, the largest near 1 MB): every request within the limits, nothing lost."""
    wide = [("D%02d" % j, "v" * 300) for j in range(29)]
    points = [datapoint("Many", NOW, range(400), namespace="A")]
    points += [datapoint("Users", NOW - 60, [1, 2], (("User", f"u{u}"),), namespace="B") for u in range(2500)]
    points += [datapoint("Wide", NOW - 120, [i * 0.5 + k for i in range(150)], wide + [("K", str(k))], namespace="C")
               for k in range(120)]
    with FaultProxy(moto) as proxy:
        sink = publish(spec(proxy.url, buffer_datums=1000), [points])
        bodies = [json.loads(b) for b in proxy.bodies["PutMetricData"]]
    sizes = [len(b) for b in proxy.bodies["PutMetricData"]]
    assert max(sizes) <= MAX_REQUEST_BYTES and max(sizes) > 900_000
    assert max(sizes) == sink.max_request_bytes
    for body in bodies:
        assert 1 <= len(body["MetricData"]) <= 1000
        for d in body["MetricData"]:
            assert len(d["Values"]) == len(d["Counts"]) <= 150
            assert len(d.get("Dimensions", ())) <= 30
            assert d["StorageResolution"] == 60
    assert [len(b["MetricData"]) for b in bodies if b["Namespace"] == "cw/B"] == [1000, 1000, 500]
    assert [len(b["MetricData"]) for b in bodies if b["Namespace"] == "cw/A"] == [3]
    assert len([b for b in bodies if b["Namespace"] == "cw/C"]) == 2  # 120 datums of ~12 KB: cut by size
    want = expected(points)
    assert requests_stats(bodies) == want
    # moto scans every value it stores for each series asked: a sample of the series
    sample = [k for k in want if k[0] == "cw/A"] + [k for k in want if k[0] != "cw/A"][::200]
    assert cloudwatch_stats(moto, sample) == {k: want[k] for k in sample}


def test_datums_cloudwatch_would_refuse_are_counted_per_reason_never_sent(moto, caplog):
    now = int(time.time()) // 60 * 60  # not the module's now: the two-week bound is checked at sending
    good = datapoint("Ok", now, [1, 2])
    points = [
        good,
        datapoint("Old", now - 15 * 86400, [1]),
        datapoint("Old", now - 16 * 86400, [1, 2, 3]),
        datapoint("Ahead", now + 3 * 3600, [1]),
        datapoint("Dim", now, [1], (("User", "caf\u00e9"),)),
        datapoint("Dim", now, [1], (("User", "   "),)),
        datapoint("Dim", now, [1], (("User", "x" * 1025),)),
        datapoint("Dims", now, [1], tuple((f"D{j}", "v") for j in range(31))),
        datapoint("Fine", now - 14 * 86400 + 120, [5]),
    ]
    with caplog.at_level(logging.WARNING), FaultProxy(moto) as proxy:
        sink = publish(spec(proxy.url), [points])
        bodies = [json.loads(b) for b in proxy.bodies["PutMetricData"]]
    assert sink.counters() == {
        "published": 2,
        "refused": {"too_old": 2, "too_far_ahead": 1, "bad_dimension_value": 3, "too_many_dimensions": 1},
        "unknown_outcomes": 0,
        "unpublished": 0,
    }
    assert sorted(d["MetricName"] for b in bodies for d in b["MetricData"]) == ["Fine", "Ok"]
    want = expected([good, points[-1]])
    assert cloudwatch_stats(moto, want) == want
    assert "datapoints over two weeks old are not published" in caplog.text


# ---- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        [Fault("throttle"), Fault("throttle"), Fault("error", status=500)],
        [Fault("error", status=503), Fault("error", status=502)],
        [Fault("delay", seconds=0.5), Fault("delay", seconds=0.3)],
    ],
    ids=["throttling", "5xx", "slow-answers"],
)
def test_retried_faults_lose_and_double_nothing(moto, faults):
    points = some_datapoints()
    with FaultProxy(moto) as proxy:
        proxy.inject("PutMetricData", *faults)
        sink = publish(spec(proxy.url), [points[:6], points[6:]])
        assert proxy.seen["PutMetricData"] == proxy.forwarded["PutMetricData"] + sum(
            f.kind != "delay" for f in faults)
    assert sink.counters()["unknown_outcomes"] == 0
    want = expected(points)
    assert cloudwatch_stats(moto, want) == want


def test_a_connection_dropped_before_moto_has_the_request_is_an_unknown_outcome_not_a_double(moto):
    """The client cannot tell a connection dropped before the request was applied from one
    dropped after: both are counted as unknown outcomes; here moto never had it."""
    points = some_datapoints()
    with FaultProxy(moto) as proxy:
        proxy.inject("PutMetricData", Fault("drop"))
        sink = publish(spec(proxy.url), [points])
    assert sink.counters()["unknown_outcomes"] == 1
    want = expected(points)
    assert cloudwatch_stats(moto, want) == want


def test_an_answer_lost_after_moto_applied_the_request_is_counted_and_reported(moto, caplog):
    """``drop_after``: moto applied the request, the answer never came back; the request is
    sent again (counted as an unknown outcome, reported), so its datums count twice."""
    points = some_datapoints()
    with caplog.at_level(logging.WARNING), FaultProxy(moto) as proxy:
        proxy.inject("PutMetricData", Fault("drop_after"))
        sink = publish(spec(proxy.url), [points])
        first = json.loads(proxy.bodies["PutMetricData"][0])
    assert sink.counters()["unknown_outcomes"] == 1
    assert "was lost" in caplog.text and "may count them twice" in caplog.text
    want = doubled(expected(points), requests_stats([first]))
    assert cloudwatch_stats(moto, want) == want


def test_a_validation_error_is_narrowed_down_to_its_datum(moto, caplog):
    """A request CloudWatch finds invalid is halved until the datum at fault is alone: only
    it is lost (counted ``rejected``, its error logged), the others are published."""
    points = [datapoint("M", NOW, [i], (("User", f"u{i}"),)) for i in range(8)]
    with caplog.at_level(logging.ERROR), FaultProxy(moto) as proxy:
        # the 8-datum request, its first half, the first quarter, then the first datum alone
        proxy.inject("PutMetricData", *[Fault("invalid")] * 4)
        sink = publish(spec(proxy.url), [points])
        sent = [len(json.loads(b)["MetricData"]) for b in proxy.bodies["PutMetricData"]]
    assert sent == [8, 4, 2, 1, 1, 2, 4]
    assert sink.counters()["refused"] == {"rejected": 1} and sink.counters()["published"] == 7
    assert "CloudWatch rejected a datum of cw/App M: InvalidParameterValue" in caplog.text
    want = expected(points[1:])
    assert cloudwatch_stats(moto, want) == want


def test_access_denied_stops_publishing_and_keeps_what_was_not_published(moto, tmp_path):
    points = some_datapoints()
    with FaultProxy(moto) as proxy:
        proxy.inject("PutMetricData", Fault("error", status=403))
        with pytest.raises(PublishError) as caught:
            publish(spec(proxy.url, spool_dir=str(tmp_path)), [points])
    kept = caught.value.kept_in
    assert kept is not None and Path(kept).parent == tmp_path
    assert caught.value.unpublished == sum(dp.datum_count() for dp in points)
    message = str(caught.value)
    assert "refused them (403" in message and f"{len(points)} datapoints" in message and kept in message
    lines = [json.loads(line) for line in Path(kept).read_text().splitlines()]
    assert requests_stats(lines) == expected(points)
    assert cloudwatch_stats(moto, expected(points)) == {}


# ---- the ledger across a restart -------------------------------------------------------------------


def test_a_restart_sends_only_what_was_not_accepted(moto, tmp_path):
    """run mode: what the ledger says was accepted is not sent again after a restart; what
    was committed and not sent is."""
    checkpoint = tmp_path / "ck"
    first, second = some_datapoints(2), some_datapoints(1, users=2)
    for dp in second:
        dp.timestamp -= 600
    with FaultProxy(moto) as proxy:
        sink_spec = spec(proxy.url, shutdown_timeout_s=0.5)

        async def crash_after_first():
            sink = open_sink(sink_spec, None, SinkContext(0, None, checkpoint))
            await sink.start("run")
            sink.write(first)
            position = await sink.flush_async()
            sink.committed(position)
            while sink.counters()["unpublished"]:
                await asyncio.sleep(0.01)
            proxy.inject("PutMetricData", *[Fault("error", status=503)] * 1000)  # CloudWatch goes down
            sink.write(second)
            position = await sink.flush_async()
            sink.committed(position)
            await sink.finish()  # gives up after shutdown_timeout_s: the rest stays in the spool
            await sink.aclose()
            return position, sink.counters()

        position, counters = asyncio.run(crash_after_first())
        assert counters["unpublished"] == sum(dp.datum_count() for dp in second)
        proxy.clear()
        before = proxy.forwarded["PutMetricData"]
        sink = publish(sink_spec, [], mode="run", checkpoint=checkpoint, position=position)
        assert proxy.forwarded["PutMetricData"] == before + 1  # only the request not accepted
    assert sink.counters()["published"] == sum(dp.datum_count() for dp in first + second)
    want = expected(first + second)
    assert cloudwatch_stats(moto, want) == want


def test_a_position_the_spool_does_not_reach_is_refused(tmp_path):
    checkpoint = tmp_path / "ck"
    sink = open_sink(spec("http://127.0.0.1:9"), None, SinkContext(0, None, checkpoint))
    sink.write(some_datapoints(1))
    position = sink.flush()
    sink.close()
    with pytest.raises(SinkError, match="cannot resume at"):
        open_sink(spec("http://127.0.0.1:9"), {"end": position["end"] + 10}, SinkContext(0, None, checkpoint))
    with pytest.raises(SinkError, match="invalid cloudwatch sink position"):
        open_sink(spec("http://127.0.0.1:9"), {"size": 3}, SinkContext(0, None, checkpoint))


# ---- double counting AWS's own metrics -------------------------------------------------------------


def _config(discovered: dict) -> EngineConfig:
    return EngineConfig((), (), (), discovered_log_groups=discovered)


@pytest.mark.parametrize(
    ("discovered", "options", "refused"),
    [
        ({"CloudTrail/DefaultLogGroup": None}, {}, True),
        ({"CloudTrail/DefaultLogGroup": None}, {"namespace_prefix": "castlewatch/"}, False),
        ({"CloudTrail/DefaultLogGroup": None}, {"endpoint_url": "http://127.0.0.1:4566"}, False),
        ({"CloudTrail/DefaultLogGroup": "http://127.0.0.1:4566"}, {}, False),
        ({}, {}, False),
    ],
    ids=["real-aws-no-prefix", "prefix", "emulator-sink", "discovered-in-emulator", "nothing-discovered"],
)
def test_a_sink_that_would_double_aws_metrics_refuses_to_start(tmp_path, discovered, options, refused):
    sink_spec = CloudWatchSinkSpec(region="us-east-1", spool_dir=str(tmp_path), **options)
    context = SinkContext(0, _config(discovered), None)
    if refused:
        with pytest.raises(SinkError, match="would double-count: the metric filters of CloudTrail/DefaultLogGroup "
                                             "were discovered in AWS, which already publishes their metrics"):
            open_sink(sink_spec, None, context)
    else:
        open_sink(sink_spec, None, context).close()


def test_the_spool_is_rotated_once_published_and_a_restart_after_it_resends_nothing(moto, tmp_path, monkeypatch):
    """run mode: once the requests done weigh ROTATE_BYTES the spool is rewritten from the
    first waiting one (and the ledger to one entry of counters); a restart at the last
    checkpoint position reads the new file and sends nothing again."""
    import castlewatch.sinks.cloudwatch as cloudwatch_mod

    monkeypatch.setattr(cloudwatch_mod, "ROTATE_BYTES", 2000)
    checkpoint = tmp_path / "ck"
    batches = [[datapoint("M", NOW - 60 * m, [m, m + 1], (("User", f"u{u}"),)) for u in range(10)] for m in range(6)]
    with FaultProxy(moto) as proxy:
        sink_spec = spec(proxy.url)

        async def run_all():
            sink = open_sink(sink_spec, None, SinkContext(0, None, checkpoint))
            await sink.start("run")
            for batch in batches:
                sink.write(batch)
                position = await sink.flush_async()
                sink.committed(position)
                while sink.counters()["unpublished"]:
                    await asyncio.sleep(0.01)
            await sink.finish()
            await sink.aclose()
            return sink, position

        sink, position = asyncio.run(run_all())
        header = json.loads(sink.spool.path.read_bytes().splitlines()[0])
        assert header["base"] > 0 and sink.spool.path.stat().st_size < 2000 + len(json.dumps(header)) + 1
        assert header["base"] <= position["end"]
        sent = proxy.forwarded["PutMetricData"]
        restarted = publish(sink_spec, [], mode="run", checkpoint=checkpoint, position=position)
        assert proxy.forwarded["PutMetricData"] == sent
    assert restarted.counters() == sink.counters() and sink.counters()["published"] == 60
    want = expected([dp for batch in batches for dp in batch])
    assert cloudwatch_stats(moto, want) == want
