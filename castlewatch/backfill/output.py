"""Writing a backfill's datapoints to the configuration's sinks, as a replay writes them.

The sinks are opened, started, written, flushed, finished and closed as
:meth:`castlewatch.engine.runner.Engine.replay` drives them (JSONL, CSV, Avro, stdout, and
CloudWatch, whose own checks refuse datapoints more than two weeks old:
:func:`cloudwatch_caveat` says so before the run).
"""

from __future__ import annotations

import contextlib
import datetime as _dt

from castlewatch.aws import hold_clients
from castlewatch.engine.config import EngineConfig
from castlewatch.engine.config.load import sink_problem
from castlewatch.engine.runner import NamedSink, sync_sink_counters
from castlewatch.model import Datapoint, Stats
from castlewatch.sinks import SinkContext, SinkError, open_sink

#: How far back CloudWatch takes a PutMetricData timestamp (spec §9).
CLOUDWATCH_DAYS = 14


def cloudwatch_caveat(config: EngineConfig, start: _dt.date, today: _dt.date) -> str | None:
    """A warning when a ``cloudwatch`` sink is configured and the backfill starts more
    than two weeks before ``today``: CloudWatch refuses older timestamps (the sink counts
    them ``refused: too_old``); a file sink keeps them."""
    if not any(sink.type == "cloudwatch" for sink in config.sinks):
        return None
    oldest = today - _dt.timedelta(days=CLOUDWATCH_DAYS)
    if start >= oldest:
        return None
    return (f"CloudWatch takes PutMetricData timestamps of the last two weeks only: the datapoints before {oldest} "
            "will be refused by the cloudwatch sink (counted refused: too_old); write them to a file sink "
            "(jsonl, csv, avro) to keep them")


async def write_datapoints(config: EngineConfig, batches: list[list[Datapoint]], stats: Stats) -> None:
    """Write each list of ``batches`` (one per source) to every sink of ``config``, counting
    ``datapoints_written``, ``datums_written`` and the sinks' delivery counters in ``stats``.

    Raises:
        SinkError: a sink's configuration is refused. OutputError: a sink cannot be
            written. PublishError: a service sink could not deliver everything.
    """
    problem = sink_problem(config)
    if problem is not None:
        raise SinkError(": ".join(problem))
    async with hold_clients():
        sinks: list[NamedSink] = []
        try:
            for i, spec in enumerate(config.sinks):
                sinks.append(NamedSink(open_sink(spec, None, SinkContext(i, config, None)), spec.where))
            for sink in sinks:
                await sink.start("replay")
            for points in batches:
                if not points:
                    continue
                for sink in sinks:
                    sink.write(points)
                stats.datapoints_written += len(points)
                stats.datums_written += sum(p.datum_count() for p in points)
            for sink in sinks:
                sink.committed(await sink.flush_async())
            for sink in sinks:
                await sink.finish()
        except BaseException:
            sync_sink_counters(stats, sinks)
            for sink in sinks:
                with contextlib.suppress(Exception):
                    await sink.aclose()
            raise
        sync_sink_counters(stats, sinks)
        for sink in sinks:
            await sink.aclose()
