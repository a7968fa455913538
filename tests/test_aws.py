"""castlewatch.aws against a real moto server, through a fault proxy: what is retried,
what is raised at once, what has an unknown outcome, and the rate limit."""

from __future__ import annotations

import asyncio
import time

import pytest
from aws_emulator import Fault, FaultProxy

from castlewatch.aws import AwsTarget, RateLimiter, RetryPolicy, call, client, describe_error, outcome_unknown

FAST = RetryPolicy(max_attempts=5, base_delay_s=0.001, max_delay_s=0.01)


def run(coro):
    return asyncio.run(coro)


def test_throttling_5xx_and_dropped_connections_are_retried(moto):
    async def main(proxy: FaultProxy) -> list[str]:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=proxy.url)) as logs:
            await logs.create_log_group(logGroupName="g")
            proxy.inject("FilterLogEvents", Fault("throttle"), Fault("error", status=503), Fault("drop"))
            retries: list[str] = []
            answer = await call(
                logs.filter_log_events, logGroupName="g", policy=FAST, on_retry=lambda e, w: retries.append(describe_error(e))
            )
            assert answer["events"] == []
            return retries

    with FaultProxy(moto) as proxy:
        retries = run(main(proxy))
        assert proxy.seen["FilterLogEvents"] == 4 and proxy.forwarded["FilterLogEvents"] == 1
    assert retries[0] == "ThrottlingException: Rate exceeded"
    assert retries[1].startswith("503")
    assert retries[2].startswith("ConnectionClosedError")


def test_a_missing_log_group_is_raised_at_once_not_retried(moto):
    async def main(proxy: FaultProxy) -> str:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=proxy.url)) as logs:
            with pytest.raises(Exception) as caught:
                await call(logs.filter_log_events, logGroupName="missing", policy=FAST)
            return describe_error(caught.value)

    with FaultProxy(moto) as proxy:
        assert run(main(proxy)) == "ResourceNotFoundException: The specified log group does not exist."
        assert proxy.seen["FilterLogEvents"] == 1


def test_attempts_are_bounded(moto):
    async def main(proxy: FaultProxy) -> None:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=proxy.url)) as logs:
            proxy.inject("DescribeLogGroups", *[Fault("throttle")] * 10)
            with pytest.raises(Exception, match="Rate exceeded"):
                await call(logs.describe_log_groups, policy=RetryPolicy(max_attempts=3, base_delay_s=0.001))

    with FaultProxy(moto) as proxy:
        run(main(proxy))
        assert proxy.seen["DescribeLogGroups"] == 3


def test_an_answer_lost_after_the_request_was_applied_is_an_unknown_outcome(moto):
    async def main(proxy: FaultProxy) -> tuple[bool, bool]:
        target = AwsTarget(region="us-east-1", endpoint_url=proxy.url)
        async with client("cloudwatch", target, read_timeout_s=0.5) as cloudwatch:
            datum = [{"MetricName": "m", "Value": 1.0}]
            proxy.inject("PutMetricData", Fault("drop_after"), Fault("delay", seconds=2))
            outcomes = []
            for _ in range(2):
                with pytest.raises(Exception) as caught:
                    await call(cloudwatch.put_metric_data, Namespace="n", MetricData=datum, policy=RetryPolicy(1))
                outcomes.append(outcome_unknown(caught.value))
            return tuple(outcomes)

    with FaultProxy(moto) as proxy:
        assert run(main(proxy)) == (True, True)
        assert proxy.forwarded["PutMetricData"] >= 1  # moto applied the first one


def test_the_rate_limiter_spaces_calls():
    async def main() -> float:
        limiter = RateLimiter(rate=20, burst=1)
        start = time.monotonic()
        for _ in range(5):
            await limiter.acquire()
        return time.monotonic() - start

    assert run(main()) >= 0.15  # 4 waits of 50 ms after the first call: it never lets them all go at once


def test_a_rate_limit_needs_a_positive_rate():
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(rate=0)


def test_a_sequential_replay_of_several_log_groups_opens_one_client_per_target(moto, tmp_path):
    """The replay reads the log groups one after the other; inside it (hold_clients) the
    shared CloudWatch Logs client stays open between them, and is closed at its end."""
    from castlewatch.engine.config import load_config_text
    from castlewatch.engine.runner import Engine
    from castlewatch.engine.sources.cloudwatch_logs import logs_account

    groups = ["g/one", "g/two", "g/three"]
    now = int(time.time() * 1000)

    async def put() -> None:
        async with client("logs", AwsTarget(region="us-east-1", endpoint_url=moto)) as logs:
            for group in groups:
                await logs.create_log_group(logGroupName=group)
                await logs.create_log_stream(logGroupName=group, logStreamName="s")
                await logs.put_log_events(logGroupName=group, logStreamName="s",
                                          logEvents=[{"timestamp": now - 60_000, "message": f"ERROR in {group}"}])

    run(put())
    filters = "".join(
        f"  - {{filterName: e, logGroupName: {g}, filterPattern: ERROR, metricTransformations: "
        f"[{{metricName: E, metricNamespace: N, metricValue: '1'}}]}}\n" for g in groups)
    config = load_config_text(
        f"metric_filters:\n{filters}sources:\n  - type: cloudwatch_logs\n    log_group_names: [{', '.join(groups)}]\n"
        f"    region: us-east-1\n    endpoint_url: {moto}\n    start_time: 1h\n"
        f"sinks: [{{type: jsonl, path: {tmp_path}/dp.jsonl}}]\n", tmp_path)

    async def main():
        engine = Engine(config)
        stats = await engine.replay()
        shared = logs_account(AwsTarget(region="us-east-1", endpoint_url=moto)).shared
        return stats, shared.opened, shared._client

    stats, opened, left_open = run(main())
    assert stats.events_read == 3 and stats.matched == {"e": 3}
    assert opened == 1 and left_open is None


def test_the_endpoint_of_a_target_is_the_one_botocore_resolves(monkeypatch, tmp_path):
    """Given > service-specific variable > global variable > profile's endpoint_url."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[profile emu]\nendpoint_url = http://127.0.0.1:5000\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert AwsTarget().endpoint("logs") is None
    assert AwsTarget(profile="emu").endpoint("logs") == "http://127.0.0.1:5000"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert AwsTarget().endpoint("cloudwatch") == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:4599")
    assert AwsTarget().endpoint("logs") == "http://127.0.0.1:4599"
    assert AwsTarget(endpoint_url="http://given:1").endpoint("logs") == "http://given:1"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert AwsTarget().endpoint("logs") is None
