"""What a Dask worker runs: one partition (a batch of objects of one source) evaluated
into a :class:`~castlewatch.engine.partial.PartialAggregate`.

The metric filters are compiled once per worker thread and job, not per task: a
:class:`SourceJob` is scattered to the workers once (``Client.scatter(broadcast=True)``),
and :func:`evaluator_for` keeps each job's compiled
:class:`~castlewatch.engine.evaluate.LogGroupEvaluator` in a thread-local cache keyed by
the job's digest; a partition only resets its state (the dimension value sets of §8.4).

Each object is read by :func:`castlewatch.engine.archive.object_batches` and evaluated
into a partial aggregate of its own (its origin: its ordinal in the source's order), then
merged into the partition's (:func:`castlewatch.engine.partial.merge`): an object read
again from its start (:data:`~castlewatch.engine.archive.RESTART`) drops only its own.

An object that cannot be read (the storage fails, or a castlewatch bug) raises
:class:`ObjectFailed` naming it, so the partition fails and the client retries it, the
failing object on its own (:mod:`castlewatch.backfill.executor`).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from castlewatch.backfill.storage import Location, open_object
from castlewatch.engine.archive import RESTART, object_batches
from castlewatch.engine.evaluate import LogGroupEvaluator
from castlewatch.engine.partial import PartialAggregate, merge
from castlewatch.model import MetricFilter

#: Events per batch read from an object.
BATCH_EVENTS = 1000
#: Evaluation errors (castlewatch bugs) reported per partition; later ones are counted only.
REPORTED_ERRORS = 10

# (job digest, thread id) -> the job's evaluator, compiled in this worker process
_compiled: dict[tuple[str, int], LogGroupEvaluator] = {}
_compiled_lock = threading.Lock()


@dataclass(frozen=True)
class SourceJob:
    """One backfill source as the workers need it.

    Attributes:
        index: the source's position in the configuration.
        spec: the source (``format``, ``log_group``: a
            :class:`~castlewatch.engine.config.SourceConfig`).
        location: where its archive is.
        filters: the metric filters of its log group, in file order.
        digest: identifies the job (a hash of the above) in the workers' caches.
    """

    index: int
    spec: Any
    location: Location
    filters: tuple[MetricFilter, ...]
    digest: str = ""

    @classmethod
    def make(cls, index: int, spec: Any, location: Location, filters: tuple[MetricFilter, ...]) -> SourceJob:
        """The job with its digest."""
        digest = hashlib.sha256(pickle.dumps((index, spec, location, filters))).hexdigest()
        return cls(index, spec, location, filters, digest)


class ObjectFailed(Exception):
    """Object ``key`` of a partition could not be read or evaluated: ``reason`` says why
    (the error's type and message; never credentials, which AWS errors do not carry)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


@dataclass
class PartitionResult:
    """What a partition gives back.

    Attributes:
        source: the source's index.
        keys: the objects evaluated, in order.
        partial: their partial aggregate.
        damaged: keys of objects whose gzip stream broke (counted ``unreadable_file``,
            the events before the damage kept, as a replay keeps them).
        errors: the first evaluation errors, as report lines.
        restarts: objects read again from their start (not of the plain shape).
        cpu_seconds, wall_seconds: what the partition cost its worker thread.
    """

    source: int
    keys: list[str]
    partial: PartialAggregate
    damaged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    restarts: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def evaluator_for(job: SourceJob) -> LogGroupEvaluator:
    """The job's evaluator, compiled once per thread of this process (an evaluator holds
    the state of the events it saw, so two threads never share one), its state reset."""
    key = (job.digest, threading.get_ident())
    evaluator = _compiled.get(key)
    if evaluator is None:
        evaluator = LogGroupEvaluator(list(job.filters), PartialAggregate().stats)
        with _compiled_lock:
            _compiled[key] = evaluator
    else:
        evaluator.reset()
    return evaluator


def compiled_jobs() -> dict[str, int]:
    """Job digest -> how many times this process compiled its filters (once per thread
    that ran one of its partitions); for tests and diagnostics."""
    counts: dict[str, int] = {}
    with _compiled_lock:
        for digest, _ in _compiled:
            counts[digest] = counts.get(digest, 0) + 1
    return counts


def run_partition(job: SourceJob, objects: list[tuple[int, str]]) -> PartitionResult:
    """Evaluate ``objects`` ((ordinal, key) of one source, in order) into one partial
    aggregate.

    Raises:
        ObjectFailed: an object could not be read (or its evaluation hit a castlewatch
            bug outside an event); the partition is to be retried.
    """
    started, cpu = time.perf_counter(), time.thread_time()
    evaluator = evaluator_for(job)
    result = PartitionResult(job.index, [key for _, key in objects], PartialAggregate(origin=objects[0][0]))
    for ordinal, key in objects:
        try:
            part = _evaluate_object(job, evaluator, ordinal, key, result)
        except Exception as err:  # a storage failure, or a bug: the client retries, then names it
            raise ObjectFailed(job.location.name(key), f"{type(err).__name__}: {err}") from None
        result.partial = merge(result.partial, part)
    result.cpu_seconds = time.thread_time() - cpu
    result.wall_seconds = time.perf_counter() - started
    return result


def _evaluate_object(job: SourceJob, evaluator: LogGroupEvaluator, ordinal: int, key: str,
                     result: PartitionResult) -> PartialAggregate:
    name = job.location.name(key)

    def on_error(event: Any, err: Exception) -> None:
        if len(result.errors) < REPORTED_ERRORS:
            result.errors.append(f"skipped an event of {name}, counted as malformed: evaluation_error "
                                 f"(a castlewatch bug): {err}")

    part = PartialAggregate(origin=ordinal)
    for item in object_batches(lambda: open_object(job.location, key), job.spec, BATCH_EVENTS):
        if item is RESTART:
            part = PartialAggregate(origin=ordinal)
            result.restarts += 1
            continue
        part.evaluate(evaluator, item.events, on_error)
        if item.malformed:
            for reason, n in item.malformed.items():
                part.stats.count_malformed(reason, n)
        if item.damaged:
            result.damaged.append(name)
    return part
