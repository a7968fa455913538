"""CloudWatch sink (``type: cloudwatch``): PutMetricData, with nothing lost and nothing doubled silently.

**Requests.** The datums of closed datapoints (``Datapoint.iter_metric_data``: ``Values`` +
``Counts``, at most 150 values, StorageResolution 60) are gathered per namespace
(``namespace_prefix`` + the metric transformation's namespace) into requests of at most
1,000 datums and 1,000,000 bytes of serialised body, measured exactly for the wire protocol
in use (:mod:`castlewatch.sinks.put_metric_data`); ``flush`` ends the requests being
gathered. Every request is appended to the spool (:mod:`castlewatch.sinks.spool`) when it
is complete.

**Sending.** One publisher task on the event loop sends the requests in spool order, one
at a time, under a rate limit, each retried with exponential backoff and full jitter on
throttling, 5xx answers, dropped connections and timeouts (:func:`castlewatch.aws.call`):
in ``run`` for as long as it takes, in ``replay`` for ``replay_timeout_s`` after the first
failure. Just before it goes (for each attempt), a datum CloudWatch would refuse (over
two weeks old, over two hours ahead, a dimension value it refuses) is taken out and
counted (``Stats.refused``), never sent to fail its request. A request CloudWatch answers
with a validation error is split in halves until the datum at fault is alone, which is
counted ``rejected`` (its AWS message logged); any other refusal (AccessDenied, an
unknown token) stops publishing with a :class:`~castlewatch.sinks.base.PublishError`.

**Memory.** The requests waiting are held in memory up to ``buffer_datums`` datums; past
that they stay in the spool only and are read back from it when their turn comes, so a
long outage costs disk, not memory, and loses nothing.

**Exactly once.** PutMetricData has no idempotency key and CloudWatch adds up whatever
it receives, so:

- In ``run`` (with a checkpoint) a request is sent only once the checkpoint holding it is
  durable (``committed``): what was written after it is produced again by a restart and
  must not have left. ``flush`` fsyncs the spool and returns its logical end, which the
  checkpoint stores; a restart truncates the spool back to it.
- The publish ledger records, durably, each request before it is sent and its outcome
  after; a restart skips what was done and sends the rest. A request in flight when the
  process died, or whose answer was lost (a timeout, a connection dropped after sending:
  :func:`castlewatch.aws.outcome_unknown`), may have been applied: it is sent again and
  counted in ``Stats.unknown_outcomes``, the only way a datum can reach CloudWatch twice.
- In ``replay`` nothing resumes: the ledger is not kept. If CloudWatch does not accept
  everything, ``finish`` writes what was not published to a file of PutMetricData
  requests (one per line, for ``aws cloudwatch put-metric-data --cli-input-json``) and
  raises a PublishError naming it and how many datapoints it holds.

**Not doubling AWS's own metrics.** A metric filter discovered on a log group of real AWS
already publishes its metric there: without ``namespace_prefix``, a sink publishing to
real AWS would add castlewatch's datapoints to AWS's, so it refuses to start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from castlewatch.aws import AwsTarget, RateLimiter, RetryPolicy, call, client, describe_error, error_code
from castlewatch.aws import is_denied, is_retriable, outcome_unknown, resolved_protocol
from castlewatch.model import Datapoint
from castlewatch.sinks.base import PublishError, SinkBase, SinkContext, SinkError, SinkKind
from castlewatch.sinks.put_metric_data import MAX_DATUMS, MAX_REQUEST_BYTES, TOO_OLD, RequestSize, refusal_reason
from castlewatch.sinks.registry import SinkSpec
from castlewatch.sinks.spool import ACCEPTED, FAILED, REFUSED, REJECTED, SENDING, UNKNOWN, Counters, Entry, Ledger
from castlewatch.sinks.spool import Spool, ranges_of

log = logging.getLogger("castlewatch.sinks.cloudwatch")

#: Error codes of a request CloudWatch found invalid: the datum at fault is looked for.
VALIDATION_CODES = frozenset({
    "InvalidParameterValue", "InvalidParameterValueException", "InvalidParameterCombination",
    "InvalidParameterCombinationException", "MissingParameter", "MissingRequiredParameterException",
    "ValidationError", "ValidationException", "RequestEntityTooLarge", "413",
})
#: How often an outage is reported while it lasts (seconds).
REPORT_EVERY_S = 60.0
#: Rotate the spool once the requests done before the first waiting one weigh this much.
ROTATE_BYTES = 8 << 20


@dataclass(frozen=True, kw_only=True)
class CloudWatchSinkSpec(SinkSpec):
    """``type: cloudwatch``: where and how to publish (see the README for each setting).

    Attributes:
        region, endpoint_url: AWS region and endpoint (LocalStack, moto); None: the
            standard AWS chain (environment, config file). Credentials always come from
            the chain.
        profile: the AWS profile (``--profile``; not a config file setting), or None.
        namespace_prefix: put before every metric namespace (``castlewatch/``).
        protocol: ``json``, ``query`` or ``smithy-rpc-v2-cbor``; None: botocore's (JSON).
        spool_dir: directory of the spool and the ledger; None: ``.castlewatch-spool``
            beside the checkpoint (``run``) or the configuration file (``replay``).
        buffer_datums: datums held in memory before the rest waits in the spool only.
        max_requests_per_s: PutMetricData requests per second at most.
        timeout_s: seconds to wait for an answer (then the outcome is unknown).
        retry_max_delay_s: the longest wait between two attempts (seconds).
        replay_timeout_s: ``replay`` gives up after CloudWatch failed this long (seconds).
        shutdown_timeout_s: ``run`` waits this long at shutdown for what is pending
            (seconds); the rest stays in the spool for the next run.
    """

    type: str = "cloudwatch"
    region: str | None = None
    endpoint_url: str | None = None
    namespace_prefix: str = ""
    protocol: str | None = None
    spool_dir: str | None = None
    buffer_datums: int = 100_000
    max_requests_per_s: float = 50.0
    timeout_s: float = 30.0
    retry_max_delay_s: float = 20.0
    replay_timeout_s: float = 300.0
    shutdown_timeout_s: float = 10.0
    profile: str | None = None

    @property
    def target(self) -> AwsTarget:
        """Where PutMetricData goes (None fields: the standard AWS chain's)."""
        return AwsTarget(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)

    @property
    def where(self) -> str:
        return f"CloudWatch {self.endpoint_url or self.region or '(default region)'}"


@dataclass
class _Request:
    """A request of the spool: logical offset, the offset after it, and its content."""

    at: int
    next: int
    namespace: str
    datums: list[dict[str, Any]]
    done: set[int] = field(default_factory=set)


class _Gathering:
    __slots__ = ("datums", "size")

    def __init__(self, size: int) -> None:
        self.datums: list[dict[str, Any]] = []
        self.size = size


class _TooLarge(Exception):
    """Raised before sending a request whose body is over :data:`MAX_REQUEST_BYTES`."""


class _Stopping(Exception):
    """Raised in a retry wait once the sink is told to stop."""


def double_count_problem(spec: CloudWatchSinkSpec, config: Any) -> str | None:
    """Why the sink would add castlewatch's datapoints to those AWS already publishes, or
    None: metric filters discovered on log groups of real AWS (``config.discovered_log_groups``
    with no endpoint) publish their metrics there, and the sink publishes to real AWS (no
    ``endpoint_url``, given or configured as in :meth:`AwsTarget.endpoint`) into the same
    namespaces (no ``namespace_prefix``)."""
    discovered = getattr(config, "discovered_log_groups", None) or {}
    real = sorted(group for group, endpoint in discovered.items() if endpoint is None)
    if not real or spec.namespace_prefix or spec.target.endpoint("cloudwatch"):
        return None
    shown = ", ".join(real[:5]) + (f" and {len(real) - 5} more" if len(real) > 5 else "")
    return (
        f"the cloudwatch sink would double-count: the metric filters of {shown} were discovered in AWS, which "
        "already publishes their metrics, and publishing castlewatch's datapoints into the same namespaces adds "
        "them to AWS's; set namespace_prefix (e.g. castlewatch/) to publish them beside AWS's"
    )


def check_double_count(spec: CloudWatchSinkSpec, context: SinkContext) -> None:
    """Refuse to open a sink :func:`double_count_problem` finds a problem with.

    Raises:
        SinkError: naming the log groups and what to do.
    """
    problem = double_count_problem(spec, context.config)
    if problem is not None:
        raise SinkError(f"sinks[{context.index}]: {problem}")


def _spool_paths(spec: CloudWatchSinkSpec, context: SinkContext) -> tuple[Path, Path]:
    """(spool, ledger) paths: beside the checkpoint for ``run``, beside the configuration
    (one per process) for ``replay``, in ``spool_dir`` or ``.castlewatch-spool``."""
    if context.checkpoint is not None:
        directory = Path(spec.spool_dir) if spec.spool_dir else context.checkpoint.parent / ".castlewatch-spool"
        stem = f"{context.checkpoint.name}.sink{context.index}"
    else:
        config = getattr(context.config, "path", None)
        here = Path(config).parent if config else Path.cwd()
        directory = Path(spec.spool_dir) if spec.spool_dir else here / ".castlewatch-spool"
        stem = f"{Path(config).name if config else 'castlewatch'}.replay-{os.getpid()}.sink{context.index}"
    return directory / f"{stem}.spool", directory / f"{stem}.ledger"


class CloudWatchSink(SinkBase):
    """The ``cloudwatch`` sink (see the module docstring).

    Args:
        spec: the settings.
        position: None for a fresh run; else ``{"end": N}`` from a checkpoint.
        context: the run (its checkpoint decides whether a ledger is kept).

    Raises:
        SinkError: the double-count guard (:func:`check_double_count`), a position that
            is not ``{"end": N}``, a spool or ledger that cannot be resumed.
        OSError: the spool or the ledger cannot be written.
    """

    def __init__(self, spec: CloudWatchSinkSpec, position: Any, context: SinkContext) -> None:
        check_double_count(spec, context)
        self.spec = spec
        self.index = context.index
        self.durable = context.checkpoint is not None
        self.mode = "run"
        self.sizes = RequestSize(resolved_protocol("cloudwatch", spec.protocol))
        self.counters_ = Counters()
        self._discovered = dict(getattr(context.config, "discovered_log_groups", None) or {})
        self.max_request_bytes = 0  # largest request body sent (bytes), for reports and tests
        self._config_path = getattr(context.config, "path", None)
        spool_path, ledger_path = _spool_paths(spec, context)
        end = None
        if position is not None:
            end = position.get("end") if isinstance(position, dict) else None
            if not isinstance(end, int) or isinstance(end, bool) or end < 0:
                raise SinkError(f"invalid cloudwatch sink position {position!r}; expected {{'end': <offset>}}")
        self.spool = Spool(spool_path, end)
        self.ledger = Ledger(ledger_path, fresh=end is None) if self.durable else None
        self._gathering: dict[str, _Gathering] = {}
        self._queue: collections.deque[_Request] = collections.deque()
        self._queued = 0  # datums in _queue
        self._spilled = False  # requests sealed while the memory bound was reached: read back from the spool
        self._cursor = self.spool.base  # the next request to send
        self._committed = self.spool.end if end is not None else self.spool.base
        self._done: set[int] = set()  # indices already done of the request at the cursor (after a restart)
        self.pending = 0  # datums sealed and not yet done
        if end is not None:
            self._resume()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._lock = asyncio.Lock()  # spool rotation vs an fsync in a thread
        self._task: asyncio.Task | None = None
        self._client_cm: Any = None
        self._cw: Any = None
        self._current: tuple[_Request, list[int]] | None = None
        self._failure: PublishError | None = None
        self._stopping = False
        self._in_flight = False  # a request is on the wire (stopping then waits for its answer)
        self._exported: str | None = None
        self._outage_since: float | None = None
        self._reported_at = 0.0
        self._told_too_old = False

    # ---- restart --------------------------------------------------------------------------------------

    def _resume(self) -> None:
        """After a restart: skip what the ledger says is done, count and resend what was in flight."""
        folded = self.ledger.fold(self.spool.base) if self.ledger is not None else None
        if folded is not None:
            self.counters_ = folded.counters
            self._cursor, self._done = folded.frontier, folded.done
            for indices in folded.in_flight:
                self.counters_.unknown_outcomes += 1
                self._ledger(Entry(UNKNOWN, self._cursor, ranges=ranges_of(indices)))
            if folded.in_flight:
                log.warning(
                    f"castlewatch: {self.spec.where}: {len(folded.in_flight)} request(s) were in flight when the "
                    "previous run stopped, their outcome unknown: sent again (counted as unknown outcomes; their "
                    "datums may be counted twice)"
                )
        self.spool.flush()
        at = self._cursor
        while at < self.spool.end:
            request, nxt = self.spool.read(at)
            self.pending += len(request["MetricData"]) - (len(self._done) if at == self._cursor else 0)
            at = nxt
        self._spilled = self._cursor < self.spool.end  # what waits is in the spool only

    # ---- the Sink interface (event loop) --------------------------------------------------------------

    def write(self, datapoints: list[Datapoint]) -> None:
        """Gather the datapoints' datums into requests (appended to the spool when complete).

        Raises:
            PublishError: ``run``: publishing stopped for good (AccessDenied, ...).
        """
        if self._failure is not None and self.mode == "run":
            raise self._failure
        prefix = self.spec.namespace_prefix
        for dp in datapoints:
            if dp.sample_count <= 0:
                continue
            namespace = prefix + dp.namespace
            for datum in dp.iter_metric_data():
                self._add(namespace, datum)

    def _add(self, namespace: str, datum: dict[str, Any]) -> None:
        batch = self._gathering.get(namespace)
        if batch is None:
            batch = self._gathering[namespace] = _Gathering(self.sizes.base(namespace, MAX_DATUMS))
        size = self.sizes.datum(datum, len(batch.datums) + 1)
        if batch.datums and (len(batch.datums) >= MAX_DATUMS or batch.size + size > MAX_REQUEST_BYTES):
            self._seal(namespace, batch)
            batch = self._gathering[namespace] = _Gathering(self.sizes.base(namespace, MAX_DATUMS))
            size = self.sizes.datum(datum, 1)
        batch.datums.append(datum)
        batch.size += size

    def _seal(self, namespace: str, batch: _Gathering) -> None:
        """Append a complete request to the spool, and to the memory queue if there is room."""
        line = orjson.dumps({"Namespace": namespace, "MetricData": batch.datums}) + b"\n"
        at = self.spool.append(line)
        n = len(batch.datums)
        self.pending += n
        if not self._spilled and self._queued + n <= self.spec.buffer_datums:
            self._queue.append(_Request(at, self.spool.end, namespace, batch.datums))
            self._queued += n
        elif not self._spilled:
            self._spilled = True
            log.warning(f"castlewatch: {self.spec.where}: {self._queued} datums waiting in memory; "
                     f"the next ones wait in the spool {self.spool.path}")
        if not self.durable:
            self._committed = self.spool.end
            self._wake.set()

    def _seal_all(self) -> None:
        for namespace, batch in self._gathering.items():
            if batch.datums:
                self._seal(namespace, batch)
        self._gathering.clear()

    def flush(self) -> dict[str, int]:
        """End the requests being gathered, make the spool durable (``run``), return
        ``{"end": <logical end of the spool>}``."""
        if self._failure is not None and self.mode == "run":
            raise self._failure
        self._seal_all()
        self.spool.flush()
        if self.durable:
            self.spool.fsync()
        return {"end": self.spool.end}

    async def flush_async(self) -> dict[str, int]:
        """:meth:`flush`, its fsync in a thread."""
        if self._failure is not None and self.mode == "run":
            raise self._failure
        self._seal_all()
        self.spool.flush()
        if self.durable:
            async with self._lock:
                await asyncio.to_thread(self.spool.fsync)
        return {"end": self.spool.end}

    def committed(self, position: Any) -> None:
        """The checkpoint holding ``position`` is durable: its requests may be sent."""
        if isinstance(position, dict) and position.get("end", 0) > self._committed:
            self._committed = position["end"]
            self._wake.set()

    def counters(self) -> dict[str, Any]:
        """``published``, ``refused`` (reason -> datums), ``unknown_outcomes`` (requests) and
        ``unpublished`` (datums waiting), for ``Stats``."""
        c = self.counters_
        return {"published": c.published, "refused": dict(c.refused), "unknown_outcomes": c.unknown_outcomes,
                "unpublished": self.pending}

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def start(self, mode: str) -> None:
        """Open the client and start the publisher (``mode``: ``replay`` or ``run``)."""
        self.mode = mode
        if mode == "replay":
            log.warning(
                f"castlewatch: note: {self.spec.where} takes datapoints of the last two weeks only (and up to two "
                "hours ahead); older ones from this replay are counted as refused (too_old), not published; to keep "
                "them, add a file sink (jsonl, csv or avro)"
            )
        from botocore.exceptions import BotoCoreError

        emulated = sorted(g for g, url in self._discovered.items() if url and url == self.spec.endpoint_url)
        if emulated and not self.spec.namespace_prefix:
            log.warning(
                f"castlewatch: {self.spec.where}: the metric filters of {', '.join(emulated[:5])} were discovered at "
                "this endpoint: an emulator that computes metric filters itself (LocalStack counts every event for "
                "every filter) publishes into the same namespaces; set namespace_prefix to keep castlewatch's apart"
            )
        target = self.spec.target
        self._client_cm = client("cloudwatch", target, read_timeout_s=self.spec.timeout_s, protocol=self.spec.protocol)
        try:
            self._cw = await self._client_cm.__aenter__()
        except BotoCoreError as err:  # no region, an unknown profile
            self._client_cm = None
            raise PublishError(f"{self.spec.where}: cannot open a CloudWatch client: {err}", self.pending) from None
        self._cw.meta.events.register("before-call.cloudwatch.PutMetricData", self._before_call)
        self._limiter = RateLimiter(self.spec.max_requests_per_s, burst=max(1, int(self.spec.max_requests_per_s)))
        self._task = asyncio.create_task(self._publish_all(), name=f"castlewatch-cloudwatch-sink{self.index}")

    async def finish(self) -> None:
        """Wait for what is committed to be published: ``replay`` until done (or given up),
        ``run`` at most ``shutdown_timeout_s`` (the rest stays in the spool).

        Raises:
            PublishError: publishing stopped (``replay``: with the file of what was not
                published; ``run``: AccessDenied and the like).
        """
        deadline = None if self.mode == "replay" else time.monotonic() + self.spec.shutdown_timeout_s
        while self._cursor < self._committed and self._failure is None and self._task is not None:
            if self._task.done():
                break
            self._progress.clear()
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout)
        if self._failure is None and self.mode == "replay" and self.pending and self._task is not None:
            self._failure = PublishError(f"{self.spec.where}: the publisher stopped before publishing everything",
                                         self.pending)
        if self._failure is not None:
            await self._stop()
            if self.mode == "replay":
                self._export()
            raise self._failure
        if self.pending and self.mode == "run":
            log.warning(
                f"castlewatch: {self.spec.where}: {self.pending} datums not yet published at shutdown stay in the "
                f"spool {self.spool.path}; the next run with this checkpoint publishes them"
            )

    async def aclose(self) -> None:
        """Stop the publisher and the client; ``replay``: keep what was not published in a
        file (named in the log), remove the spool."""
        await self._stop()
        if self._client_cm is not None:
            with contextlib.suppress(Exception):
                await self._client_cm.__aexit__(None, None, None)
            self._client_cm = None
        self.close()

    def close(self) -> None:
        """Close the files (``replay``: export what was not published, remove the spool)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.spool._fh.closed:
            return
        if self.mode == "replay" or not self.durable:
            self._seal_all()
            if self.pending and self._exported is None:
                self._export()
                log.warning(f"castlewatch: {self.spec.where}: {self.pending} datums were not published; "
                            f"they are in {self._exported} (one PutMetricData request per line)")
            self.spool.remove()
        else:
            self.spool.close()
        if self.ledger is not None:
            self.ledger.close()

    async def _stop(self) -> None:
        """Stop the publisher between requests (a request in flight gets its answer or
        its timeout first, so stopping does not leave an unknown outcome)."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is None:
            return
        deadline = time.monotonic() + self.spec.timeout_s + 5
        while not task.done() and self._in_flight and time.monotonic() < deadline:
            await asyncio.wait([task], timeout=0.05)
        if not task.done():
            task.cancel()  # waiting between attempts, or reading the spool: nothing is on the wire
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    # ---- publishing -----------------------------------------------------------------------------------

    async def _publish_all(self) -> None:
        try:
            while not self._stopping:
                request = await self._next()
                if request is None:
                    return
                await self._publish(request)
                self._cursor = request.next
                self._done = set()
                self._progress.set()
                await self._maybe_rotate()
        except _Stopping:
            return
        except PublishError as err:
            self._failure = err
            self._progress.set()
            if self.mode == "run":
                log.error(f"castlewatch: {err}")
        except Exception as err:  # a castlewatch bug: publishing stops, what is pending is kept
            self._failure = PublishError(f"{self.spec.where}: publishing stopped on a castlewatch bug "
                                         f"({type(err).__name__}: {err})", self.pending)
            self._progress.set()
            log.exception("castlewatch: the CloudWatch publisher failed")

    async def _next(self) -> _Request | None:
        """The request at the cursor once committed (from memory, or read back from the spool)."""
        while not self._stopping:
            if self._cursor < self._committed:
                if self._queue and self._queue[0].at == self._cursor:
                    request = self._queue.popleft()
                    self._queued -= len(request.datums)
                    return request
                self.spool.flush()
                body, nxt = await asyncio.to_thread(self.spool.read, self._cursor)
                if not self._queue and nxt >= self.spool.end:
                    self._spilled = False  # caught up with the spool: the next requests may wait in memory
                return _Request(self._cursor, nxt, body["Namespace"], body["MetricData"], self._done)
            self._wake.clear()
            await self._wake.wait()
        return None

    async def _publish(self, request: _Request) -> None:
        """Refuse what CloudWatch would refuse, send the rest (what was in flight before a
        restart included: it is not done)."""
        now = time.time()
        by_reason: dict[str, list[int]] = {}
        todo = []
        for i, datum in enumerate(request.datums):
            if i in request.done:
                continue
            reason = refusal_reason(datum, now)
            if reason is None:
                todo.append(i)
            else:
                by_reason.setdefault(reason, []).append(i)
        for reason, indices in by_reason.items():
            self.counters_.refuse(reason, len(indices))
            await self._settled(request, indices, REFUSED, reason)
            if reason == TOO_OLD and not self._told_too_old:
                self._told_too_old = True
                log.warning(f"castlewatch: {self.spec.where}: datapoints over two weeks old are not published "
                            "(CloudWatch refuses them); counted as refused: too_old")
        if todo:
            await self._send(request, todo)

    async def _send(self, request: _Request, indices: list[int]) -> None:
        if not indices:
            return
        self._current = (request, indices)
        params = {"Namespace": request.namespace, "MetricData": [request.datums[i] for i in indices]}
        policy = RetryPolicy(max_attempts=None, base_delay_s=0.2, max_delay_s=self.spec.retry_max_delay_s)
        give_up = self.spec.replay_timeout_s if self.mode == "replay" else None
        try:
            try:
                await call(self._cw.put_metric_data, limiter=self._limiter, policy=policy,
                           on_retry=lambda e, w: self._on_retry(e, w, indices), give_up_after_s=give_up, **params)
            finally:
                self._in_flight = False
        except _TooLarge:
            await self._halves(request, indices)
        except _Stopping:
            raise
        except Exception as err:
            if outcome_unknown(err):
                self.counters_.unknown_outcomes += 1
            if error_code(err) in VALIDATION_CODES:
                await self._ledger_async(Entry(FAILED, request.at, ranges=ranges_of(indices), reason=error_code(err)))
                if len(indices) > 1:
                    await self._halves(request, indices)
                    return
                self.counters_.refuse("rejected", 1)
                await self._settled(request, indices, REJECTED, error_code(err))
                log.error(f"castlewatch: {self.spec.where}: CloudWatch rejected a datum of {request.namespace} "
                          f"{request.datums[indices[0]]['MetricName']}: {describe_error(err)}")
                return
            raise self._give_up(err) from None
        else:
            self.counters_.published += len(indices)
            await self._settled(request, indices, ACCEPTED, "")
            if self._outage_since is not None:
                log.warning(f"castlewatch: {self.spec.where}: CloudWatch accepts requests again after "
                            f"{time.monotonic() - self._outage_since:.0f} s")
                self._outage_since = None

    async def _halves(self, request: _Request, indices: list[int]) -> None:
        half = len(indices) // 2
        await self._send(request, indices[:half])
        await self._send(request, indices[half:])

    async def _settled(self, request: _Request, indices: list[int], state: int, reason: str) -> None:
        request.done.update(indices)
        self.pending -= len(indices)
        entry = Entry(state, request.at, request.next, len(request.datums), ranges_of(indices), reason)
        await self._ledger_async(entry)

    def _on_retry(self, error: BaseException, wait: float, indices: list[int]) -> None:
        self._in_flight = False
        if self._stopping:
            raise _Stopping()
        if outcome_unknown(error):
            self.counters_.unknown_outcomes += 1
            log.warning(f"castlewatch: {self.spec.where}: the answer to a PutMetricData request of {len(indices)} "
                        f"datums was lost ({describe_error(error)}); sent again, it may count them twice "
                        "(counted as an unknown outcome)")
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
        if now - self._outage_since >= REPORT_EVERY_S and now - self._reported_at >= REPORT_EVERY_S:
            self._reported_at = now
            log.warning(
                f"castlewatch: {self.spec.where}: CloudWatch has not accepted a request for "
                f"{now - self._outage_since:.0f} s ({describe_error(error)}); {self.pending} datums waiting "
                f"({self._queued} in memory, the rest in the spool {self.spool.path}); retrying"
            )

    def _give_up(self, err: BaseException) -> PublishError:
        why = "did not accept them" if is_retriable(err) else "refused them"
        return PublishError(f"{self.spec.where} {why} ({describe_error(err)})", self.pending, denied=is_denied(err))

    async def _before_call(self, params: dict[str, Any], **kwargs: Any) -> None:
        """botocore's ``before-call`` event: measure the body botocore built, and record in
        the ledger that the request is about to be sent."""
        from castlewatch.sinks.put_metric_data import body_size

        size = body_size(params.get("body"))
        if size > MAX_REQUEST_BYTES:
            raise _TooLarge(size)
        if self._stopping:
            raise _Stopping()
        self.max_request_bytes = max(self.max_request_bytes, size)
        if self._current is not None:
            request, indices = self._current
            await self._ledger_async(Entry(SENDING, request.at, request.next, len(request.datums), ranges_of(indices)))
        self._in_flight = True

    def _ledger(self, entry: Entry) -> None:
        if self.ledger is not None:
            c = self.counters_
            entry.published, entry.unknown_outcomes, entry.refused = c.published, c.unknown_outcomes, dict(c.refused)
            self.ledger.append(entry)

    async def _ledger_async(self, entry: Entry) -> None:
        if self.ledger is not None:
            c = self.counters_
            entry.published, entry.unknown_outcomes, entry.refused = c.published, c.unknown_outcomes, dict(c.refused)
            await asyncio.to_thread(self.ledger.append, entry)

    async def _maybe_rotate(self) -> None:
        """Drop the requests done from the spool (and the ledger) once they weigh enough."""
        spool = self.spool
        if self._cursor - spool.base < ROTATE_BYTES or spool.end - self._cursor > ROTATE_BYTES:
            return
        if self._cursor > self._committed:
            return
        async with self._lock:
            spool.rotate(self._cursor)
            if self.ledger is not None:
                self.ledger.compact(self.counters_)

    # ---- replay: what was not published ----------------------------------------------------------------

    def _export(self) -> None:
        """Write the requests not done to a file of their own and name it in the failure."""
        if self._exported is not None or not self.pending:
            return
        self._seal_all()
        self.spool.flush()
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"{Path(self._config_path).name if self._config_path else 'castlewatch'}.sink{self.index}"
        path = self.spool.path.parent / f"{name}.unpublished-{stamp}.jsonl"
        datapoints: set[tuple] = set()
        datums = 0
        with open(path, "wb") as out:
            at = self._cursor
            while at < self.spool.end:
                body, nxt = self.spool.read(at)
                done = self._done if at == self._cursor else set()
                left = [d for i, d in enumerate(body["MetricData"]) if i not in done]
                if left:
                    out.write(orjson.dumps({"Namespace": body["Namespace"], "MetricData": left}) + b"\n")
                    datums += len(left)
                    for d in left:
                        dims = tuple((x["Name"], x["Value"]) for x in d.get("Dimensions", ()))
                        datapoints.add((body["Namespace"], d["MetricName"], d["Timestamp"], dims))
                at = nxt
            out.flush()
            os.fsync(out.fileno())
        self._exported = str(path)
        if self._failure is not None:
            self._failure = PublishError(
                f"{self._failure}: {len(datapoints)} datapoints ({datums} datums) were not published; they are in "
                f"{path}, one PutMetricData request per line (aws cloudwatch put-metric-data --cli-input-json)",
                datums, str(path),
            )


def spec_from_entry(entry: Any, resolve: Any) -> CloudWatchSinkSpec:
    """The spec of a decoded ``type: cloudwatch`` configuration entry (``spool_dir`` made absolute)."""
    return CloudWatchSinkSpec(
        region=entry.region,
        endpoint_url=entry.endpoint_url,
        namespace_prefix=entry.namespace_prefix,
        protocol=entry.protocol,
        spool_dir=resolve(entry.spool_dir) if entry.spool_dir else None,
        buffer_datums=entry.buffer_datums,
        max_requests_per_s=entry.max_requests_per_s,
        timeout_s=entry.timeout_s,
        retry_max_delay_s=entry.retry_max_delay_s,
        replay_timeout_s=entry.replay_timeout_s,
        shutdown_timeout_s=entry.shutdown_timeout_s,
    )


def namespace_problem(prefix: str, metric_filters: Any) -> tuple[str, str] | None:
    """``("namespace_prefix", reason)`` when ``prefix`` makes a metric filter's namespace
    one PutMetricData refuses (over 255 characters, starting with ``AWS/``; spec §9)."""
    for f in metric_filters:
        for t in f.metric_transformations:
            namespace = prefix + t.metric_namespace
            if len(namespace) > 255:
                return "namespace_prefix", (
                    f"with it, the namespace of metric filter '{f.filter_name}' is {len(namespace)} characters long; "
                    "PutMetricData takes at most 255"
                )
            if namespace.startswith("AWS/"):
                return "namespace_prefix", (
                    f"with it, the namespace of metric filter '{f.filter_name}' starts with AWS/, which PutMetricData "
                    "refuses (AWS reserves it)"
                )
    return None


KIND = SinkKind(
    "cloudwatch",
    lambda spec, position, context: CloudWatchSink(spec, position, context),
    from_entry=spec_from_entry,
    check=lambda spec, config: namespace_problem(spec.namespace_prefix, config.metric_filters)
    or (("namespace_prefix", problem) if (problem := double_count_problem(spec, config)) else None),
)
