"""Running a backfill on Dask distributed: the partitions, their retries, the merge.

:func:`plan` lists each source's objects within the dates and cuts them into partitions:
runs of consecutive objects (in key order) of one source, at most ``objects_per_task``
objects and :data:`MAX_TASK_BYTES` compressed bytes each (by default about eight
partitions per worker thread, then smaller and smaller ones, :func:`task_sizes`, so that
the threads finish together).

:func:`execute` scatters each source's job to every worker once (the metric filters are
compiled once per worker, :mod:`castlewatch.backfill.task`), submits the partitions and
merges each result into its source's partial aggregate as it arrives (the merge is
associative and commutative: arrival order does not matter,
:mod:`castlewatch.engine.partial`). A partition that fails is submitted again: when its
error names the object (:class:`~castlewatch.backfill.task.ObjectFailed`), that object on
its own and the others together; otherwise each object on its own. An object that still
fails after ``retries`` more attempts is reported by key with its error
(:attr:`BackfillResult.failed`), never dropped silently.

:func:`dask_client`: a client of an existing scheduler (``tcp://host:8786``), or of a
``LocalCluster`` of ``workers`` processes (one thread each) started for the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from castlewatch.backfill.storage import Listing, Location, list_objects
from castlewatch.backfill.task import ObjectFailed, PartitionResult, SourceJob, run_partition
from castlewatch.engine.partial import PartialAggregate, merge

#: The most compressed bytes of objects in one partition (a partition is read by one task).
MAX_TASK_BYTES = 256 << 20
#: Partitions per worker thread aimed at when ``objects_per_task`` is not given.
TASKS_PER_THREAD = 8
#: The most objects in one partition when ``objects_per_task`` is not given.
MAX_OBJECTS_PER_TASK = 64
#: Towards the end of a run a partition takes 1 / (TAPER x threads) of the objects left
#: (:func:`task_sizes`).
TAPER = 4
#: Further attempts of a failing object before it is reported.
DEFAULT_RETRIES = 2
#: Dask settings of the ``LocalCluster`` that :func:`dask_client` starts (a cluster of the user's,
#: ``--scheduler``, keeps its own). Its housekeeping is for interactive diagnostics, which a
#: backfill's cluster (no dashboard) never shows, and takes CPU from the partitions on a
#: machine whose cores are all workers: the statistical profiler samples every task thread's
#: stack every 10 ms (about 10% of a core per worker: in an interleaved comparison over the
#: archive of ``bench/backfill.py``, 2 workers over 1 went from 1.76x to 1.91x without these
#: settings), the event-loop tick runs every
#: 20 ms, the system monitor every 500 ms. Memory is still watched (spill, pause, restart).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@dataclass
class Partition:
    """A run of consecutive objects of one source: ``objects`` are (ordinal, key)."""

    source: int
    objects: list[tuple[int, str]]
    attempt: int = 1


@dataclass
class Plan:
    """What a backfill reads: a job per source, its listing, the partitions."""

    jobs: list[SourceJob]
    listings: list[Listing]
    partitions: list[Partition]

    @property
    def objects(self) -> int:
        return sum(len(p.objects) for p in self.partitions)


@dataclass
class BackfillResult:
    """What the partitions gave.

    Attributes:
        partials: source index -> the merge of its partitions' partial aggregates.
        failed: (object, error) of each object that could not be read after its retries.
        damaged: objects whose gzip stream broke (counted ``unreadable_file``).
        errors: the first evaluation errors (castlewatch bugs) reported by the workers.
        objects_read: objects evaluated.
        restarts: objects read again from their start (not of the plain shape).
        attempts: object -> how many times it was attempted, for those tried more than once.
        cpu_seconds, wall_seconds: summed over the partitions that succeeded (what the
            workers' threads spent on them).
    """

    partials: dict[int, PartialAggregate] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    objects_read: int = 0
    restarts: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def plan(jobs: list[SourceJob], start: _dt.date, end: _dt.date, threads: int,
         objects_per_task: int | None = None) -> Plan:
    """List every job's objects from ``start`` to ``end`` and cut them into partitions
    for ``threads`` worker threads (module docstring), in the order they are submitted.

    With ``objects_per_task``, every partition has that many objects (fewer at the end
    of a source). Without it, partitions shrink towards the end of the run
    (:func:`task_sizes`), so the threads finish together instead of one running the
    last large partition alone.

    Raises:
        OSError: a folder or bucket cannot be listed.
    """
    listings = [list_objects(job.location, job.spec.format, start, end) for job in jobs]
    total = sum(len(listing.logs) for listing in listings)
    schedule = task_sizes(total, threads, objects_per_task)
    sizes, smallest = iter(schedule), min(schedule, default=1)
    partitions = []
    for job, listing in zip(jobs, listings):
        current: list[tuple[int, str]] = []
        size = 0
        wanted = 0
        for ordinal, (key, nbytes) in enumerate(listing.logs):
            if current and (len(current) >= wanted or size + nbytes > MAX_TASK_BYTES):
                partitions.append(Partition(job.index, current))
                current, size = [], 0
            if not current:
                wanted = next(sizes, smallest)  # cut at a source's end: more partitions than sizes
            current.append((ordinal, key))
            size += nbytes
        if current:
            partitions.append(Partition(job.index, current))
    return Plan(jobs, listings, partitions)


def task_sizes(total: int, threads: int, objects_per_task: int | None = None) -> list[int]:
    """How many objects each partition takes, in submission order, for ``total`` objects
    and ``threads`` worker threads (their sum is at least ``total``; a partition that
    reaches the end of a source's objects is cut there and the next one starts anew).

    ``objects_per_task`` given: that size throughout. Otherwise guided self-scheduling:
    a partition takes a share of what is left, ``ceil(left / (TAPER * threads))``, at
    most ``ceil(total / (TASKS_PER_THREAD * threads))`` and :data:`MAX_OBJECTS_PER_TASK`:
    about ``TASKS_PER_THREAD`` equal partitions per thread, then smaller and smaller
    ones, down to an eighth of the first size, so that no thread is left running a
    large one while the others are idle.
    """
    if objects_per_task:
        return [objects_per_task] * max(1, math.ceil(total / objects_per_task))
    threads = max(1, threads)
    most = max(1, min(MAX_OBJECTS_PER_TASK, math.ceil(total / (TASKS_PER_THREAD * threads))))
    smallest = max(1, most // 8)
    sizes, left = [], total
    while left > 0:
        size = max(smallest, min(most, math.ceil(left / (TAPER * threads))))
        sizes.append(size)
        left -= size
    return sizes


def execute(client: Any, the_plan: Plan, retries: int = DEFAULT_RETRIES,
            on_done: Callable[[int, int], None] | None = None) -> BackfillResult:
    """Run every partition of ``the_plan`` on ``client``'s cluster and merge the results.

    ``on_done(objects, failed)`` is called as objects are done (read, or failed for good).
    """
    from distributed import as_completed

    result = BackfillResult()
    jobs = {job.index: job for job in the_plan.jobs}
    scattered = {index: client.scatter(job, broadcast=True, hash=False) for index, job in jobs.items()}
    pending: dict[Any, Partition] = {}

    def submit(partition: Partition) -> Any:
        future = client.submit(run_partition, scattered[partition.source], partition.objects, pure=False,
                               key=f"castlewatch-backfill-{os.urandom(8).hex()}")
        pending[future] = partition
        return future

    futures = as_completed([submit(p) for p in the_plan.partitions])
    for future in futures:
        partition = pending.pop(future)
        if future.status == "finished":
            done: PartitionResult = future.result()
            held = result.partials.get(done.source)
            result.partials[done.source] = done.partial if held is None else merge(held, done.partial)
            result.damaged += done.damaged
            result.errors += done.errors[: max(0, 10 - len(result.errors))]
            result.objects_read += len(done.keys)
            result.restarts += done.restarts
            result.cpu_seconds += done.cpu_seconds
            result.wall_seconds += done.wall_seconds
            if on_done is not None:
                on_done(len(done.keys), 0)
            continue
        try:
            error = future.exception()
        except (Exception, asyncio.CancelledError) as err:  # cancelled: tried again like a failure
            error = err
        for retry in _retries(partition, error, jobs[partition.source].location, retries, result):
            futures.add(submit(retry))
        if on_done is not None and len(partition.objects) == 1 and partition.attempt > retries:
            on_done(1, 1)
    result.failed.sort()
    return result


def _retries(partition: Partition, error: BaseException, location: Location, retries: int,
             result: BackfillResult) -> list[Partition]:
    """The partitions to submit after ``partition`` failed with ``error``; an object out of
    attempts goes to ``result.failed`` instead."""
    objects = partition.objects
    if len(objects) == 1:
        name = location.name(objects[0][1])
        result.attempts[name] = partition.attempt
        if partition.attempt > retries:
            reason = error.reason if isinstance(error, ObjectFailed) else f"{type(error).__name__}: {error}"
            result.failed.append((name, reason))
            return []
        return [Partition(partition.source, objects, partition.attempt + 1)]
    if isinstance(error, ObjectFailed):
        bad = [o for o in objects if location.name(o[1]) == error.key]
        if bad:
            rest = [o for o in objects if o not in bad]
            return [Partition(partition.source, rest), Partition(partition.source, bad, 2)]
    return [Partition(partition.source, [o]) for o in objects]


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``scheduler``, or of a ``LocalCluster`` of
    ``workers`` processes (default: the machine's cores), one thread each, started here
    and stopped on exit.

    Raises:
        OSError: the scheduler cannot be reached (a timeout).
        ValueError: the workers cannot import castlewatch (it must be installed there).
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler, timeout="10s") as client:
            check_workers(client)
            yield client
        return
    import dask

    # on the loopback interface, ports chosen by the system, no dashboard (its HTTP routes on a free port);
    # the nannies hand the settings of LOCAL_CLUSTER_CONFIG to their worker processes
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def worker_threads(client: Any) -> int:
    """How many tasks the cluster runs at once (its worker threads)."""
    return sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()) or 1


def check_workers(client: Any) -> None:
    """ValueError naming the workers that cannot import castlewatch, or run another
    version of it than this client."""
    import castlewatch

    try:
        versions = client.run(_castlewatch_version)
    except Exception as err:
        raise ValueError(f"the Dask workers cannot run castlewatch ({type(err).__name__}: {err}); "
                         "install castlewatch on every worker") from None
    other = {w: v for w, v in versions.items() if v != castlewatch.__version__}
    if other:
        shown = ", ".join(f"{w} has {v}" for w, v in sorted(other.items())[:3])
        raise ValueError(f"the Dask workers run another castlewatch than {castlewatch.__version__} ({shown}); "
                         "install the same version on every worker")


def _castlewatch_version() -> str:
    import castlewatch

    return castlewatch.__version__
