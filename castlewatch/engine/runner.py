"""The metric job: sources -> evaluation -> per-minute aggregation -> sinks.

:class:`Engine` wires one run from an :class:`~castlewatch.engine.config.EngineConfig`:

- ``replay()``: batch; reads every source to its end, flushes every window, closes
  the sinks.
- ``run(stop)``: the daemon; follows the sources, with a bounded queue between the
  source tasks and the evaluation (backpressure, bounded memory), and writes a
  checkpoint ``checkpoint_interval_s`` seconds after the previous one was written,
  and at shutdown.

Exactly-once across crashes: a checkpoint holds, together and written atomically,
each source's position after the last evaluated batch, the open windows after it,
and each sink's position after the datapoints closed so far were flushed (a file
sink's size, a CloudWatch sink's spool end).  A
restart truncates the sinks back to those sizes, restores the windows and resumes
the sources, so its output equals an uninterrupted run's.  A save writes only what
changed since the previous one, in a thread, while the run goes on
(:mod:`castlewatch.engine.checkpoint`: the format, and why a crash during a save is
safe).

Sinks that send datapoints where they cannot be taken back (CloudWatch) only send
what a durable checkpoint covers: after each save is written, every sink hears
``committed(position)`` with the position its ``flush`` gave for that save
(:mod:`castlewatch.sinks.base`); what was written after it is produced again by a
restart, so it must not have left yet.  Their lifecycle runs on the event loop: the
runner ``start`` s them before the first batch, and ``finish`` es them (deliver what is
pending, bounded) after the last checkpoint of ``run`` or the last flush of ``replay``.

Each source has its own aggregator, and in it each metric its own watermark: two
log groups replayed from different periods, or two filters of one log group, don't
make each other's events late.

Malformed input is counted when the batch after it is evaluated
(``EventBatch.malformed``), not when the source reads it, so the counts in a
checkpoint are those of the input before its positions.

An exception raised while evaluating one event (a castlewatch bug) costs that event,
not the run: the evaluator takes back whatever the event had counted
(:class:`~castlewatch.engine.evaluate.EventEvaluationError`), the event is counted as
``malformed["evaluation_error"]``, reported on stderr with the metric filter and the
event's byte offset in its file (the first :data:`REPORTED_EVALUATION_ERRORS`), and the
batch goes on with the next event.  So the checkpoint moves past it: no poison pill.

An exception in a source (a bug: malformed input is counted, never raised) is not
taken for the source's end: ``run`` stops every source, evaluates what was
queued, writes every open minute and a last checkpoint as on SIGTERM, then raises
it; ``replay`` raises it after closing the sinks.

Any other failure of ``run`` (a sink or the checkpoint that cannot be written,
:class:`OutputError`; a bug in the aggregation) leaves the state in memory possibly
half-applied: ``run`` then stops the sources (never waiting on a full queue), closes
the sinks and raises it without writing another checkpoint, so the one on disk,
written after the last good batch, is what a restart resumes from, truncating the
sinks back to their sizes in it: the output after a restart is exactly that of an
uninterrupted run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import operator
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from castlewatch.aws import hold_clients
from castlewatch.engine import checkpoint as _checkpoint
from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.checkpoint import CheckpointError
from castlewatch.engine.checkpoint import check_writable as _check_writable
from castlewatch.engine.config import EngineConfig
from castlewatch.engine.config.load import sink_problem
from castlewatch.engine.evaluate import EventEvaluationError, LogGroupEvaluator
from castlewatch.engine.sources import open_source, source_name, split_source
from castlewatch.model import READ_FROM_MESSAGE, Datapoint, EventBatch, Stats
from castlewatch.sinks import SinkContext, SinkError, open_sink

#: Most events a source hands over in one batch: the batch path (castlewatch.engine.batch)
#: evaluates a batch in a few calls, whose fixed cost fewer, larger batches spread thinner
#: (16,384 rather than 4,096 events: the end-to-end VPC replay about 25% faster in process,
#: CloudTrail about 14%, late-heavy streams as much; about 23 MB of CloudTrail messages held).
BATCH_EVENTS = 16384
#: Batches a daemon's sources may read ahead of the evaluation (``run``'s queue): 32,768
#: events, about 46 MB of CloudTrail messages.
QUEUE_BATCHES = 2
#: Evaluation errors reported one by one on stderr; later ones are counted only.
REPORTED_EVALUATION_ERRORS = 10
#: The longest ``run`` waits for its source tasks to end once it has cancelled them.
STOP_TIMEOUT_S = 10.0
#: errno values meaning "no room for the output": disk full, over quota, over the file size limit.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

log = logging.getLogger("castlewatch.engine")


class OutputError(OSError):
    """A sink or the checkpoint could not be written: the run stopped.

    Raised by :class:`Engine` in place of the ``OSError`` of a sink's write, flush or
    close, or of writing the checkpoint; ``str()`` is one line naming the file.

    Attributes:
        what: ``"sink"`` or ``"checkpoint"``.
        filename: the file's path (``"stdout"`` for the stdout sink).
        errno, strerror: those of the ``OSError`` (also ``__cause__``).
        no_space: True for a full disk, an exhausted quota or a file over the size
            limit (:data:`NO_SPACE_ERRNOS`): free space, then restart.
    """

    def __init__(self, what: str, path: str | os.PathLike[str], err: OSError) -> None:
        super().__init__(err.errno, err.strerror or str(err), str(path))
        self.what = what

    @property
    def no_space(self) -> bool:
        return self.errno in NO_SPACE_ERRNOS

    def __str__(self) -> str:
        code = errno.errorcode.get(self.errno, "") if self.errno is not None else ""
        return f"cannot write the {self.what} {self.filename}: {self.strerror}" + (f" ({code})" if code else "")


class Engine:
    """One configured metric job.

    Args:
        config: the validated configuration.
        checkpoint: checkpoint file path (daemon); when it exists the run resumes from it.
        on_progress: called with the :class:`Stats` after each evaluated batch, and about once a
            second while ``run`` waits for input (UI).
        observers: called with every list of datapoints the sinks are given, after them
            (``run --serve``'s live dashboard); they must be quick and must not raise.

    Raises:
        UnsupportedMetricFilterError: a metric filter uses a setting castlewatch refuses.
        CheckpointError: the checkpoint doesn't belong to this configuration, is not of
            the shape :meth:`save_checkpoint` writes, or cannot be written where it is to go.
        ValueError: a source that cannot be read (a path to a directory or a FIFO, a
            stdin source without a stdin).

    Attributes:
        warnings: things worth saying before the run: filters' caveats, sources that
            match no file (yet), a checkpoint whose last save was cut short or that is
            migrated from version 1.
        bad_timestamps: source name -> events of this run counted ``bad_timestamp``
            (not checkpointed); with an empty ``aggregators[name].watermarks`` (nothing
            published) it tells a source whose timestamp resolved in no event.
        checkpoints: the :class:`~castlewatch.engine.checkpoint.CheckpointWriter`
            (its ``report``: what the saves cost).
        observers: the ``observers`` (a list: more may be added before the run).
        last_batch_at: source name -> wall time (epoch seconds) its last batch was evaluated.
    """

    def __init__(
        self,
        config: EngineConfig,
        checkpoint: Path | None = None,
        on_progress: Callable[[Stats], None] | None = None,
        observers: list[Callable[[list[Datapoint]], None]] | None = None,
    ) -> None:
        self.config = config
        self.checkpoint = checkpoint
        self.on_progress = on_progress
        self.observers = list(observers or ())
        self.last_batch_at: dict[str, float] = {}
        self.stats = Stats()
        self.bad_timestamps: dict[str, int] = {}
        state = self._load_checkpoint()
        if self.checkpoint is not None:
            _check_writable(self.checkpoint)
        lateness_ms = int(config.allowed_lateness_s * 1000)
        by_group: dict[str, list] = {}
        for f in config.metric_filters:
            by_group.setdefault(f.log_group_name, []).append(f)
        self.sources = []
        self._sources_by_name: dict[str, Any] = {}
        self._evaluation_errors = 0
        self.evaluators: dict[str, LogGroupEvaluator] = {}
        self.aggregators: dict[str, MinuteAggregator] = {}
        self.batches: dict[str, Any] = {}  # source name -> its batch path (castlewatch.engine.batch), if any
        self.positions: dict[str, Any] = dict(state.get("sources", {}))
        for spec in (part for entry in config.sources for part in split_source(entry)):
            positions = self.positions.get(source_name(spec))
            try:
                # Counts travel in the batches (EventBatch.malformed), added in process().
                source = open_source(spec, None, positions=positions, batch_size=BATCH_EVENTS)
            except ValueError as err:
                if positions and str(err).startswith("positions"):  # the checkpoint's, not the spec's
                    raise CheckpointError(f"checkpoint {self.checkpoint}: source {source_name(spec)}: {err}") from None
                raise
            name = source.name
            if name in self.evaluators:
                raise ValueError(f"two sources read {name}; give each file or glob to one source only")
            self.sources.append(source)
            self._sources_by_name[name] = source
            timestamp = getattr(spec, "timestamp", None)  # lines sources: where an event's time is
            self.evaluators[name] = LogGroupEvaluator(by_group.get(spec.log_group, []), self.stats, timestamp)
            aggregator = self.aggregators[name] = MinuteAggregator(self.stats, lateness_ms)
            if timestamp is not None and timestamp.kind != "ingestion":  # lines timed from their messages
                from castlewatch.engine.batch import batch_path

                self.batches[name] = batch_path(self.evaluators[name], aggregator)
            try:
                if name in state.get("evaluators", {}):
                    self.evaluators[name].restore(state["evaluators"][name])
                if name in state.get("aggregators", {}):
                    aggregator.restore(state["aggregators"][name])
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
                raise CheckpointError(
                    f"checkpoint {self.checkpoint}: the state of source {name} is not of the shape castlewatch "
                    f"writes ({type(err).__name__}: {err}); move the checkpoint away to start afresh"
                ) from None
        self.warnings = [w for e in self.evaluators.values() for w in e.warnings]
        self.warnings += [w for w in (s.warning() for s in self.sources) if w]
        self.warnings += self.checkpoints.warnings
        if state:
            _restore_stats(self.stats, state["stats"])
        problem = sink_problem(config)
        if problem is not None:  # before any sink is opened (and its file truncated)
            raise SinkError(": ".join(problem))
        sink_positions = state.get("sinks") or [None] * len(config.sinks)
        self.sinks = []
        try:
            for i, (spec, pos) in enumerate(zip(config.sinks, sink_positions)):
                try:
                    sink = open_sink(spec, pos, SinkContext(i, config, self.checkpoint))
                    self.sinks.append(NamedSink(sink, spec.where))
                except ValueError as err:
                    if pos is None:
                        raise
                    raise CheckpointError(f"checkpoint {self.checkpoint}: sinks[{i}]: {err}") from None
        except BaseException:
            for opened in self.sinks:  # those opened before the one that failed
                with contextlib.suppress(Exception):
                    opened.sink.close()
            raise
        self._sync_sink_stats()

    # -- evaluation --

    def process(self, batch: EventBatch) -> None:
        """Evaluate one batch, write the datapoints its events closed, note its position.

        An event whose evaluation raises is skipped (see :meth:`_skip_event`); the loop
        goes on after it with the same iterator, so the events pay nothing for it.

        Raises:
            OutputError: a sink could not be written.
        """
        evaluator = self.evaluators[batch.source]
        aggregator = self.aggregators[batch.source]
        add = aggregator.add
        bad_before = self.stats.malformed.get("bad_timestamp", 0)
        fast = self.batches.get(batch.source)
        if batch.messages is not None and fast is not None and fast.enabled:  # evaluated as a block
            fast.process(batch.messages, lambda index, err: self._skip_event(batch, index, err))
        elif batch.messages is not None:
            evaluate_message = evaluator.evaluate_message
            messages = iter(batch.messages)
            while True:
                try:
                    for message in messages:
                        evaluate_message(message, READ_FROM_MESSAGE, add)
                    break
                except EventEvaluationError as err:
                    self._skip_event(batch, len(batch) - operator.length_hint(messages) - 1, err)
        else:
            evaluate = evaluator.evaluate
            events = iter(batch.events)
            while True:
                try:
                    for event in events:
                        evaluate(event, add)
                    break
                except EventEvaluationError as err:
                    self._skip_event(batch, len(batch) - operator.length_hint(events) - 1, err)
        self.stats.events_read += len(batch)
        if batch.malformed:
            count_malformed = self.stats.count_malformed
            for reason, n in batch.malformed.items():
                count_malformed(reason, n)
        bad = self.stats.malformed.get("bad_timestamp", 0) - bad_before
        if bad:
            self.bad_timestamps[batch.source] = self.bad_timestamps.get(batch.source, 0) + bad
        self.positions[batch.source] = batch.position
        self.last_batch_at[batch.source] = time.time()
        self._write(aggregator.close_ready())
        if self.on_progress is not None:
            self.on_progress(self.stats)

    def _skip_event(self, batch: EventBatch, index: int, err: EventEvaluationError) -> None:
        """Event ``index`` of ``batch`` raised while evaluated (it had no effect): count it
        as ``malformed["evaluation_error"]`` and report it on stderr with the metric
        filter and where the event is (file and byte offset), the first
        :data:`REPORTED_EVALUATION_ERRORS` times."""
        self.stats.count_malformed("evaluation_error")
        self._evaluation_errors += 1
        if self._evaluation_errors > REPORTED_EVALUATION_ERRORS:
            return
        message = batch.messages[index] if batch.messages is not None else batch.events[index].message
        source = self._sources_by_name.get(batch.source)
        where = None
        if source is not None:
            with contextlib.suppress(Exception):  # only a report: never fail the run over it
                where = source.locate(self.positions.get(batch.source), batch.position, index, message)
        where = where or f"source {batch.source} (byte offset unknown)"
        more = ""
        if self._evaluation_errors == REPORTED_EVALUATION_ERRORS:
            more = "; later ones are counted, not reported"
        log.error(
            f"castlewatch: skipped the event at {where}, counted as malformed: evaluation_error "
            f"(a castlewatch bug{more}): {err}"
        )
        log.debug("evaluation error", exc_info=err.cause)

    def _write(self, datapoints: list[Datapoint]) -> None:
        """Hand ``datapoints`` to every sink (OutputError if one cannot be written)."""
        if not datapoints:
            return
        for sink in self.sinks:
            sink.write(datapoints)
        for observe in self.observers:
            observe(datapoints)
        self.stats.datapoints_written += len(datapoints)
        self.stats.datums_written += sum(dp.datum_count() for dp in datapoints)

    def close_all_windows(self) -> None:
        """Close every open minute of every source and write its datapoints."""
        for aggregator in self.aggregators.values():
            self._write(aggregator.close_all())

    # -- batch --

    async def replay(self) -> Stats:
        """Read every source once to its end, flush every window, close the sinks.

        Raises:
            PublishError: a sink could not deliver what it was given (the counters in
                :attr:`stats` are those of the end).
        """
        async with hold_clients():  # one AWS client per target for the whole replay
            return await self._replay()

    async def _replay(self) -> Stats:
        stop = asyncio.Event()
        try:
            for sink in self.sinks:
                await sink.start("replay")
            for source in self.sources:
                try:
                    async for batch in source.batches(follow=False, stop=stop):
                        self.process(batch)
                except Exception as err:
                    with contextlib.suppress(AttributeError):
                        err.add_note(f"castlewatch: raised while replaying source {source.name}")
                    raise
            self.close_all_windows()
            for sink in self.sinks:
                sink.committed(await sink.flush_async())  # nothing resumes a replay
            for sink in self.sinks:
                await sink.finish()
        except BaseException:
            self._sync_sink_stats()
            await self._close_sinks(quietly=True)
            raise
        self._sync_sink_stats()
        await self._close_sinks()
        return self.stats

    async def _close_sinks(self, quietly: bool = False) -> None:
        """Close every sink; ``quietly`` (the run already failed): ignore their errors."""
        for sink in self.sinks:
            if quietly:
                with contextlib.suppress(Exception):
                    await sink.aclose()
            else:
                await sink.aclose()

    def _sync_sink_stats(self) -> None:
        """Take the delivery counters of the sinks into :attr:`stats` (:func:`sync_sink_counters`)."""
        sync_sink_counters(self.stats, self.sinks)

    # -- daemon --

    async def run(self, stop: asyncio.Event, checkpoint_interval_s: float = 5.0, queue_size: int = QUEUE_BATCHES) -> Stats:
        """Follow the sources until ``stop`` is set, then shut down gracefully.

        Shutdown stops the sources, evaluates the batches already queued, closes and
        writes every open window, flushes the sinks, writes a last checkpoint and lets
        the sinks deliver what is pending (each within its own bound: a CloudWatch sink
        keeps what is left in its spool for the next run).
        While a source is idle for ``allowed_lateness_s`` of wall time (at least 1 s),
        its metrics' watermarks move on with the wall clock from where its last batch
        left them, so their last minutes close, and late datapoints still open are sealed
        once a watermark enters a new minute (:mod:`castlewatch.engine.aggregate`).

        Raises:
            Exception: whatever a source raised (a bug, never malformed input), after
                that same shutdown (``stop`` is set); the first one if several did.
            OutputError: a sink or the checkpoint could not be written (disk full, ...).
                The run stops at once, ``stop`` set, the sinks closed, without another
                checkpoint: the last one written is the last good state.
            PublishError: a sink's service refused its datapoints for good (AccessDenied,
                ...), the same way: a restart resumes from the last checkpoint.
            Exception: any other failure of the evaluation loop (a bug), the same way.
        """
        async with hold_clients():  # one AWS client per target for the whole run
            return await self._run(stop, checkpoint_interval_s, queue_size)

    async def _run(self, stop: asyncio.Event, checkpoint_interval_s: float, queue_size: int) -> Stats:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        try:
            for sink in self.sinks:
                await sink.start("run")
        except BaseException:
            await self._close_sinks(quietly=True)
            raise
        producers = [asyncio.create_task(self._produce(s, queue, stop)) for s in self.sources]
        running = len(producers)
        # per source: (wall time of its last batch, its metrics' watermarks then)
        last_event = {name: (time.monotonic(), dict(agg.watermarks)) for name, agg in self.aggregators.items()}
        idle_s = max(self.config.allowed_lateness_s, 1.0)
        failure: BaseException | None = None
        try:
            while running:
                try:
                    batch = await asyncio.wait_for(queue.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    batch = _IDLE
                    if self.on_progress is not None:  # idle: the UI may show what changed since
                        self.on_progress(self.stats)
                if batch is None:
                    running -= 1
                elif isinstance(batch, _SourceFailed):
                    # A source broke: not its end. Stop them all, as on SIGTERM, then raise.
                    running -= 1
                    if failure is None:
                        failure = batch.error
                    stop.set()
                elif batch is not _IDLE:
                    self.process(batch)
                    last_event[batch.source] = (time.monotonic(), dict(self.aggregators[batch.source].watermarks))
                now = time.monotonic()
                for name, aggregator in self.aggregators.items():
                    since, watermarks = last_event[name]
                    if now - since >= idle_s and (aggregator.windows or aggregator.late):
                        aggregator.advance(int((now - since) * 1000), since=watermarks)
                        self._write(aggregator.close_ready())
                if self.checkpoints.due(checkpoint_interval_s):  # measured from the end of the last save
                    await self.save_checkpoint(wait=False)
            await _stop(producers)
            await self.checkpoints.idle()  # a save being written: its memory is freed before the last minutes
            self.close_all_windows()
            await self.save_checkpoint()
            for sink in self.sinks:
                await sink.finish()
            self._sync_sink_stats()
            await self._close_sinks()
        except BaseException:
            # Not a graceful end: the state in memory may be half-applied, so no checkpoint
            # is written; the sources are stopped without waiting on the queue.
            stop.set()
            await _stop(producers)
            with contextlib.suppress(Exception):  # a save being written finishes (or its tail is ignored)
                await self.checkpoints.idle()
            self._sync_sink_stats()
            await self._close_sinks(quietly=True)
            raise
        if failure is not None:
            raise failure
        return self.stats

    @staticmethod
    async def _produce(source, queue: asyncio.Queue, stop: asyncio.Event) -> None:
        """Queue the source's batches, then None (its end); an exception it raises is
        queued as :class:`_SourceFailed` instead, so the run stops on it and raises it.
        Cancelled (the run failed), it queues nothing more: the queue may be full and
        no one reading it."""
        try:
            async for batch in source.batches(follow=True, stop=stop):
                await queue.put(batch)
        except Exception as err:  # handed to run(), which raises it
            with contextlib.suppress(AttributeError):
                err.add_note(f"castlewatch: raised while reading source {source.name}; the run was stopped")
            await queue.put(_SourceFailed(err))
            return
        await queue.put(None)

    # -- checkpoints --

    async def save_checkpoint(self, wait: bool = True) -> None:
        """Flush the sinks, then record positions, windows and sink sizes atomically.

        Waits for the previous save's write first. On the event loop only what changed
        since the previous save is taken; a thread writes it
        (:mod:`castlewatch.engine.checkpoint`). ``wait`` False: return once it is taken,
        and let the write go on while the run evaluates more batches.

        Raises:
            OutputError: a sink or the checkpoint (this save's or the previous one's
                write) could not be written.
        """
        writer = self.checkpoints
        await self._settle()
        sink_positions = [await sink.flush_async() for sink in self.sinks]
        self._sync_sink_stats()

        def committed() -> None:  # on the event loop, once the save is durable
            for sink, position in zip(self.sinks, sink_positions):
                sink.committed(position)

        if self.checkpoint is None:
            writer.start(None, committed)
            return
        everything = writer.wants_everything
        writer.start(_checkpoint.capture(
            self.positions,
            {name: ev.snapshot() for name, ev in self.evaluators.items()},
            {name: agg.checkpoint_changes(everything) for name, agg in self.aggregators.items()},
            sink_positions,
            self.stats,
        ), committed)
        if wait:
            await self._settle()

    async def _settle(self) -> None:
        """Wait for the checkpoint write in progress; its ``OSError`` as an :class:`OutputError`."""
        try:
            await self.checkpoints.settle()
        except OutputError:
            raise
        except OSError as err:
            raise OutputError("checkpoint", self.checkpoint or "", err) from err

    def _load_checkpoint(self) -> dict[str, Any]:
        self.checkpoints = _checkpoint.CheckpointWriter(self.checkpoint)
        state = self.checkpoints.load()
        if state and len(state.get("sinks") or []) != len(self.config.sinks):
            raise CheckpointError(
                f"checkpoint {self.checkpoint} was written for {len(state.get('sinks') or [])} sinks, "
                f"the configuration has {len(self.config.sinks)}; move the checkpoint away to start afresh"
            )
        return state


_IDLE = object()


async def _stop(tasks: list[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait for them to end, at most :data:`STOP_TIMEOUT_S`."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)


def sync_sink_counters(stats: Stats, sinks: list[NamedSink]) -> None:
    """Take the delivery counters of the sinks that keep them (``Sink.counters()``: published,
    refused per reason, unknown outcomes, unpublished) into ``stats``, summed over the sinks:
    theirs are the newer (a CloudWatch sink's publish ledger is written at every request, the
    checkpoint every few seconds). Sinks that keep none leave ``stats`` as it is."""
    reports = [r for r in (sink.counters() for sink in sinks) if r is not None]
    if not reports:
        return
    stats.published = sum(r["published"] for r in reports)
    stats.unknown_outcomes = sum(r["unknown_outcomes"] for r in reports)
    stats.unpublished = sum(r["unpublished"] for r in reports)
    refused: dict[str, int] = {}
    for r in reports:
        for reason, n in r["refused"].items():
            refused[reason] = refused.get(reason, 0) + n
    stats.refused = refused


class NamedSink:
    """A sink whose ``OSError`` s (disk full, ...) become :class:`OutputError` s naming its
    file; the lifecycle of :class:`~castlewatch.sinks.SinkBase` for a sink that has only
    ``write``, ``flush`` and ``close``."""

    __slots__ = ("sink", "path")

    def __init__(self, sink, path: str) -> None:
        self.sink = sink
        self.path = path

    async def start(self, mode: str) -> None:
        start = getattr(self.sink, "start", None)
        if start is not None:
            await start(mode)

    async def flush_async(self) -> Any:
        flush = getattr(self.sink, "flush_async", None)
        try:
            return await flush() if flush is not None else await asyncio.to_thread(self.sink.flush)
        except OSError as err:
            raise OutputError("sink", self.path, err) from err

    def committed(self, position: Any) -> None:
        committed = getattr(self.sink, "committed", None)
        if committed is not None:
            committed(position)

    async def finish(self) -> None:
        finish = getattr(self.sink, "finish", None)
        if finish is not None:
            try:
                await finish()
            except OSError as err:
                raise OutputError("sink", self.path, err) from err

    async def aclose(self) -> None:
        aclose = getattr(self.sink, "aclose", None)
        try:
            await aclose() if aclose is not None else self.sink.close()
        except OSError as err:
            raise OutputError("sink", self.path, err) from err

    def counters(self) -> dict[str, Any] | None:
        counters = getattr(self.sink, "counters", None)
        return counters() if counters is not None else None

    def write(self, datapoints: list[Datapoint]) -> None:
        try:
            self.sink.write(datapoints)
        except OSError as err:
            raise OutputError("sink", self.path, err) from err

    def flush(self) -> Any:
        try:
            return self.sink.flush()
        except OSError as err:
            raise OutputError("sink", self.path, err) from err

    def close(self) -> None:
        try:
            self.sink.close()
        except OSError as err:
            raise OutputError("sink", self.path, err) from err


class _SourceFailed:
    """Queued by a source task whose source raised ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _restore_stats(stats: Stats, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(stats, name, value)


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop`` (graceful shutdown); returns a remover."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


def run_async(main) -> Any:
    """Run a coroutine on uvloop where available, else on asyncio's default loop."""
    _keep_std_fds_open()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(main)
    return uvloop.run(main)


def _keep_std_fds_open() -> None:
    """Put /dev/null on file descriptors 0-2 where they are closed (``<&-``): the event
    loop's own descriptors would get those numbers otherwise, and uvloop aborts closing
    one (``uv__close: Assertion fd > STDERR_FILENO``). ``sys.stdin`` stays None, so a
    stdin source still says that there is no stdin."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                null = os.open(os.devnull, os.O_RDWR)
            except OSError:
                return
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
