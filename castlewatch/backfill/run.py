"""One backfill, from a configuration to the datapoints written: :func:`run_backfill`."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from castlewatch.backfill.executor import BackfillResult, Plan, execute, plan
from castlewatch.backfill.layout import SERVICES
from castlewatch.backfill.output import write_datapoints
from castlewatch.backfill.storage import Location
from castlewatch.backfill.task import SourceJob
from castlewatch.engine.config import EngineConfig
from castlewatch.engine.partial import PartialAggregate, dimension_set_risks, merge_stats
from castlewatch.engine.runner import run_async
from castlewatch.model import Datapoint, Stats


class BackfillConfigError(ValueError):
    """A configuration a backfill cannot run (a source that is not an archive)."""


@dataclass
class BackfillReport:
    """What a backfill did.

    Attributes:
        stats: the counters of every event read (as a replay counts them; no event is
            late: every minute is complete when the datapoints are written).
        plan: the objects and partitions.
        result: what the partitions gave (failed and damaged objects among it).
        withheld: metric filter -> most distinct dimension value sets within 61 minutes,
            for filters whose datapoints were not written (:func:`dimension_set_risks`).
        datapoints: the datapoints written, per source (in the configuration's order).
    """

    stats: Stats
    plan: Plan
    result: BackfillResult
    withheld: dict[str, int] = field(default_factory=dict)
    datapoints: list[list[Datapoint]] = field(default_factory=list)

    @property
    def unread(self) -> list[tuple[str, str]]:
        """(object, why) of every object within the dates that was not read in full: failed
        after its retries, a damaged gzip stream, or not a log file castlewatch reads."""
        location = {job.index: job.location for job in self.plan.jobs}
        out = list(self.result.failed)
        out += [(name, "damaged gzip stream (counted unreadable_file; the events before the damage were read)")
                for name in self.result.damaged]
        for job, listing in zip(self.plan.jobs, self.plan.listings):
            out += [(location[job.index].name(key), reason) for key, reason in listing.unreadable]
        return sorted(out)


def jobs_for(config: EngineConfig) -> list[SourceJob]:
    """The backfill job of each source of ``config``.

    Raises:
        BackfillConfigError: a source that is not a file source of format
            ``cloudtrail_archive`` or ``flow_log_file`` (backfill reads archives by their
            key layout), naming it.
    """
    jobs = []
    for i, spec in enumerate(config.sources):
        if spec.type != "file" or spec.format not in SERVICES:
            what = spec.type if spec.type != "file" else f"format {spec.format}"
            raise BackfillConfigError(
                f"sources[{i}]: backfill reads archives in the layout AWS writes to S3 (type: file, format: "
                f"cloudtrail_archive or flow_log_file, path: a folder, a glob or s3://bucket/prefix), not {what}; "
                "castlewatch replay reads the others"
            )
        location = Location(spec.path, spec.endpoint_url, spec.region)
        jobs.append(SourceJob.make(i, spec, location, tuple(config.filters_for(spec.log_group))))
    return jobs


def list_sources(config: EngineConfig, start: _dt.date, end: _dt.date, threads: int,
                 objects_per_task: int | None = None) -> Plan:
    """The plan of a backfill of ``config`` from ``start`` to ``end`` (every source listed).

    Raises:
        BackfillConfigError: as :func:`jobs_for`. OSError: a folder or bucket cannot be listed.
    """
    return plan(jobs_for(config), start, end, threads, objects_per_task)


def run_backfill(
    config: EngineConfig,
    the_plan: Plan,
    client: Any,
    retries: int = 2,
    on_done: Callable[[int, int], None] | None = None,
) -> BackfillReport:
    """Run ``the_plan`` on ``client``'s cluster, merge each source's partitions, and write
    the datapoints to the sinks of ``config`` (those of filters whose dimension value sets
    come near AWS's limit are withheld: a merge cannot tell whether AWS would have
    disabled them, §8.4).

    Raises:
        as :func:`~castlewatch.backfill.output.write_datapoints`.
    """
    result = execute(client, the_plan, retries, on_done)
    stats = Stats()
    report = BackfillReport(stats, the_plan, result)
    for job in the_plan.jobs:
        partial = result.partials.get(job.index) or PartialAggregate()
        points = partial.datapoints()
        risks = dimension_set_risks(points, job.filters)
        if risks:
            report.withheld.update(risks)
            metrics = {_metric(f) for f in job.filters if f.filter_name in risks}
            points = [p for p in points if (p.namespace, p.metric_name, p.unit) not in metrics]
        report.datapoints.append(points)
        report.stats = stats = merge_stats(stats, partial.stats)
        for f in job.filters:
            stats.matched.setdefault(f.filter_name, 0)
    run_async(write_datapoints(config, report.datapoints, stats))
    return report


def _metric(f: Any) -> tuple[str, str, str]:
    t = f.metric_transformations[0]
    return t.metric_namespace, t.metric_name, t.unit or "None"
