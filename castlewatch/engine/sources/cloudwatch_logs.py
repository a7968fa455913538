"""The CloudWatch Logs source: the log events of one log group, read with FilterLogEvents.

One ``type: cloudwatch_logs`` config entry names log groups (``log_group_names``, or a
``log_group_name_prefix`` resolved with DescribeLogGroups before the run,
:func:`resolve_log_groups`); :meth:`CloudWatchLogsSource.split` makes one source per log
group, named ``cloudwatch_logs:<log group>``, so that each log group's events go to that
log group's metric filters, with its own checkpoint position.

How a log group is read (the loss and duplication bugs of other tailers this avoids are
in ``aws-tailing-and-publishing.md`` §0-§1 of the shared reference):

- **FilterLogEvents** on the whole log group, without a filter pattern (one call reads
  every log stream; the metric filters are evaluated here), never GetLogEvents per
  stream nor Live Tail (it samples above 500 events/s and has no ``eventId``). The
  event time is the log event's ``timestamp`` (ms), as CloudWatch buckets metric
  filters (§8.4).
- **Poll windows.** A poll reads ``[cursor, end]`` of event time, following
  ``nextToken`` while it is present (empty and partial pages are normal; no botocore
  paginator, which stops on "the same next token received twice"). The API selects on
  event time but an event becomes visible at ingestion time, so the next window starts
  ``lookback_s`` before the latest event time seen (capped at the wall clock, so that an
  event stamped in the future does not move the window past the present), never at
  "last timestamp + 1" nor at "now": an event ingested late is read by a later poll as
  long as its time is at most ``lookback_s`` before the latest event time seen. While
  the event time read so far is more than :data:`WINDOW_SPAN_S` (or four lookbacks)
  behind now (catching up on history), a window reads that span past it and no more, so
  that memory and checkpoints stay bounded.
- **De-duplication** by ``eventId``: the ids of the events evaluated whose time is at or
  after the window's start are kept (a window of event time at least as long as the
  lookback, bounded by time, not by count) and an event already evaluated is skipped
  whenever a later poll reads it again.
- **Checkpoint.** The window's start only moves once the whole window is evaluated; a
  batch inside a window carries the window's start and the ids evaluated so far, so a
  restart from any batch's position (kill -9 at any moment) reads the window again and
  skips exactly the events already evaluated: nothing lost, nothing counted twice.
  Position: ``{"v": 1, "cursor": ms, "high": ms | None, "read_to": ms | None, "seen":
  [[ts, id, ts, id, ...], ...]}`` (``cursor``: where the next window starts; ``high``:
  the latest event time seen in whole windows; ``read_to``: the event time whole windows
  read up to; ``seen``: the ids kept, with their event times, in chunks).
- **Rate and errors.** Every CloudWatch Logs read call of one AWS target (region,
  profile, endpoint) in the process goes through one token bucket of
  :data:`LOGS_READ_TPS` calls per second (FilterLogEvents' per-account quota), and
  throttling, 5xx answers, dropped connections and timeouts are retried with
  exponential backoff and full jitter (:func:`castlewatch.aws.call`; without end while
  following, bounded in a replay). AccessDenied (or no credentials), a missing log
  group, or any other refusal raises :class:`CloudWatchLogsError` at once, one line.
- **Credentials** come from the standard AWS chain only (:mod:`castlewatch.aws`); they
  are never in the config, a log line or an error message.

An event without a ``timestamp``, ``eventId`` or ``message`` (never seen from AWS) is
counted ``malformed["invalid_event"]`` and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from castlewatch.aws import (
    AwsTarget,
    RateLimiter,
    RetryPolicy,
    SharedClient,
    call,
    describe_error,
    error_code,
    is_denied,
    is_retriable,
)
from castlewatch.engine.sources.base import Source
from castlewatch.model import EventBatch, LogEvent, Stats

__all__ = [
    "DEFAULT_LOOKBACK_S",
    "DEFAULT_POLL_INTERVAL_S",
    "FOLLOW_RETRY_POLICY",
    "LOGS_READ_TPS",
    "REPLAY_RETRY_POLICY",
    "WINDOW_SPAN_S",
    "CloudWatchLogsError",
    "CloudWatchLogsSource",
    "CloudWatchLogsSpec",
    "check_log_group",
    "describe_metric_filters",
    "logs_account",
    "resolve_log_groups",
]

#: CloudWatch Logs read calls per second per AWS target, all log groups together:
#: FilterLogEvents' quota has long been 5 transactions per second per account and Region
#: (Filebeat's ``api_sleep`` documentation; the reference's rule T6).
LOGS_READ_TPS = 5.0
#: Calls that may go at once after a quiet time.
LOGS_READ_BURST = 5
#: Event time one catch-up window covers at most (seconds); at least four lookbacks.
WINDOW_SPAN_S = 3600.0
DEFAULT_POLL_INTERVAL_S = 5.0
DEFAULT_LOOKBACK_S = 300.0
#: Position format version.
POSITIONS_VERSION = 1
#: Retries of a call in a replay: bounded, so that an outage ends the replay with an error.
REPLAY_RETRY_POLICY = RetryPolicy()
#: Retries of a call while following: without end (a daemon outlasts an outage), at most
#: 20 s apart.
FOLLOW_RETRY_POLICY = RetryPolicy(max_attempts=None)
#: At most one "retrying" warning per AWS target in this many seconds.
RETRY_WARNING_EVERY_S = 30.0
log = logging.getLogger("castlewatch.engine")


@dataclass(frozen=True)
class CloudWatchLogsSpec:
    """One ``type: cloudwatch_logs`` entry of the config (times resolved to epoch ms).

    Attributes:
        log_group_names: the log groups to read (after :func:`resolve_log_groups` for a
            prefix); a source reads one (:meth:`CloudWatchLogsSource.split`).
        log_group_name_prefix: read every log group whose name starts with it (resolved
            once, before the run), or None.
        region, endpoint_url: where to connect (None: the standard AWS chain; an
            ``endpoint_url`` is an emulator such as LocalStack or moto).
        profile: the AWS profile (``--profile``; never in the config file), or None:
            the standard chain's (``AWS_PROFILE``, then ``default``).
        start_ms: the earliest event time read, epoch **milliseconds** (a checkpoint's
            position wins over it).
        end_ms: events from this time on (epoch ms) are not read; ``replay`` stops there,
            ``run`` ends once ``lookback_s`` has passed after it. None: ``replay`` reads up
            to its start, ``run`` follows.
        poll_interval_s: seconds between two polls of a log group once caught up.
        lookback_s: seconds of event time re-read before the latest event seen, for
            events ingested late.
    """

    log_group_names: tuple[str, ...] = ()
    log_group_name_prefix: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    start_ms: int = 0
    end_ms: int | None = None
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    lookback_s: float = DEFAULT_LOOKBACK_S
    type: Literal["cloudwatch_logs"] = "cloudwatch_logs"
    profile: str | None = None

    @property
    def log_group(self) -> str:
        """The log group a split spec reads (``""`` while it names none or several)."""
        return self.log_group_names[0] if len(self.log_group_names) == 1 and not self.log_group_name_prefix else ""

    @property
    def target(self) -> AwsTarget:
        """Where the calls go (None fields: the standard AWS chain's)."""
        return AwsTarget(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)


class CloudWatchLogsError(Exception):
    """A CloudWatch Logs call failed for good; ``str()`` is one line saying which and why,
    never with credentials.

    Attributes:
        kind: ``"denied"`` (AccessDenied, no or invalid credentials), ``"not_found"`` (a
            log group that does not exist), ``"unavailable"`` (throttling, 5xx or no
            connection after the retries of a replay), ``"refused"`` (any other error
            answer), ``"config"`` (no region, an unknown profile).
        log_group: the log group concerned, or None.
    """

    def __init__(self, message: str, kind: str, log_group: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.log_group = log_group


def failure(error: BaseException, operation: str, log_group: str | None, where: str) -> CloudWatchLogsError:
    """The :class:`CloudWatchLogsError` for an AWS call that raised ``error``.

    Args:
        operation: e.g. ``"FilterLogEvents"``.
        log_group: the log group of the call, or None.
        where: ``"region us-east-1"`` or ``"endpoint http://..."``, for the message.
    """
    from botocore import exceptions as bx

    code = error_code(error)
    on = f" on log group {log_group!r}" if log_group else ""
    if code == "ResourceNotFoundException":
        what = f"log group {log_group!r} does not exist" if log_group else describe_error(error)
        return CloudWatchLogsError(f"{what} ({where}; {operation})", "not_found", log_group)
    if is_denied(error):
        why = describe_error(error) if code else "no AWS credentials found in the standard chain"
        return CloudWatchLogsError(
            f"CloudWatch Logs denied {operation}{on} ({where}): {why}; the credentials come from the standard AWS "
            f"chain (environment, profile, instance or task role) and need logs:{operation}",
            "denied",
            log_group,
        )
    if isinstance(error, (bx.NoRegionError, bx.ProfileNotFound)):
        return CloudWatchLogsError(f"cannot call CloudWatch Logs: {error}", "config", log_group)
    if is_retriable(error):
        return CloudWatchLogsError(
            f"CloudWatch Logs {operation}{on} kept failing ({where}): {describe_error(error)}", "unavailable", log_group
        )
    return CloudWatchLogsError(f"CloudWatch Logs refused {operation}{on} ({where}): {describe_error(error)}",
                               "refused", log_group)


# ---- what the sources of one AWS target share ------------------------------------------------


class LogsAccount:
    """The CloudWatch Logs client and the read-call rate limiter of one AWS target, shared
    by every source and lookup of that target on one event loop (:func:`logs_account`).

    The client (:class:`castlewatch.aws.SharedClient`) is opened by the first user of
    :meth:`logs` and closed when the last one leaves, or, inside
    :func:`castlewatch.aws.hold_clients` (a whole replay or run), when that block ends.
    """

    def __init__(self, target: AwsTarget) -> None:
        self.target = target
        self.limiter = RateLimiter(LOGS_READ_TPS, burst=LOGS_READ_BURST)
        self.shared = SharedClient("logs", target)
        self._warned_at = -RETRY_WARNING_EVERY_S

    @contextlib.asynccontextmanager
    async def logs(self) -> AsyncIterator[Any]:
        """The shared aiobotocore ``logs`` client, while the block runs.

        Raises:
            CloudWatchLogsError: ``config``: no region, an unknown profile.
        """
        from botocore.exceptions import BotoCoreError

        try:
            context = self.shared.use()
            logs = await context.__aenter__()
        except BotoCoreError as error:  # no region, an unknown profile
            raise failure(error, "client", None, self.where()) from None
        try:
            yield logs
        except BaseException as error:
            if not await context.__aexit__(type(error), error, error.__traceback__):
                raise
        else:
            await context.__aexit__(None, None, None)

    def where(self, logs: Any = None) -> str:
        """``endpoint URL`` or ``region R`` (and the profile if named), for messages."""
        return self.target.where(getattr(getattr(logs, "meta", None), "region_name", None))

    async def call(
        self,
        operation: Callable[..., Awaitable[Any]],
        name: str,
        log_group: str | None,
        *,
        policy: RetryPolicy | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``operation(**kwargs)`` under the rate limit, retried per ``policy`` (default
        :data:`REPLAY_RETRY_POLICY`); ``on_retry`` (default: a warning at most every
        :data:`RETRY_WARNING_EVERY_S`) is called before each retry.

        Raises:
            CloudWatchLogsError: it failed for good (see :func:`failure`).
        """
        if on_retry is None:
            on_retry = functools.partial(self.warn_retry, name, log_group)
        try:
            return await call(
                operation, limiter=self.limiter, policy=policy or REPLAY_RETRY_POLICY, on_retry=on_retry, **kwargs
            )
        except Exception as error:
            if isinstance(error, CloudWatchLogsError) or not _is_aws_error(error):
                raise
            raise failure(error, name, log_group, self.where(getattr(operation, "__self__", None))) from None


    def warn_retry(self, name: str, log_group: str | None, error: BaseException, wait: float) -> None:
        """Say that a call is retried, at most every :data:`RETRY_WARNING_EVERY_S` per target."""
        now = time.monotonic()
        if now - self._warned_at >= RETRY_WARNING_EVERY_S:
            self._warned_at = now
            on = f" on log group {log_group!r}" if log_group else ""
            log.warning(
                f"castlewatch: CloudWatch Logs {name}{on}: {describe_error(error)}; "
                f"retrying with backoff and jitter (next in {wait:.1f} s)"
            )


_ACCOUNTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[AwsTarget, LogsAccount]] = (
    weakref.WeakKeyDictionary()
)


def logs_account(target: AwsTarget) -> LogsAccount:
    """The :class:`LogsAccount` of ``target`` on the running event loop (one per target)."""
    accounts = _ACCOUNTS.setdefault(asyncio.get_running_loop(), {})
    account = accounts.get(target)
    if account is None:
        account = accounts[target] = LogsAccount(target)
    return account


def _is_aws_error(error: BaseException) -> bool:
    from botocore import exceptions as bx

    return bool(error_code(error)) or isinstance(error, bx.BotoCoreError) or is_retriable(error)


# ---- lookups before a run ------------------------------------------------------------------


async def resolve_log_groups(spec: CloudWatchLogsSpec) -> list[str]:
    """The log groups ``spec`` reads, sorted: those whose name starts with its
    ``log_group_name_prefix`` (DescribeLogGroups, every page, ``nextToken`` followed while
    present), or its ``log_group_names`` each checked to exist and be readable
    (:func:`check_log_group`).

    Raises:
        CloudWatchLogsError: a named log group does not exist (``not_found``), or a call
            failed for good.
    """
    account = logs_account(spec.target)
    async with account.logs() as logs:
        if spec.log_group_name_prefix is None:
            for name in spec.log_group_names:
                await check_log_group(account, logs, name)
            return sorted(spec.log_group_names)
        names: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"logGroupNamePrefix": spec.log_group_name_prefix, "limit": 50}
            if token:
                kwargs["nextToken"] = token
            answer = await account.call(logs.describe_log_groups, "DescribeLogGroups", None, **kwargs)
            names += [g["logGroupName"] for g in answer.get("logGroups", ()) if g.get("logGroupName")]
            token = answer.get("nextToken")
            if not token:
                return sorted(set(names))


async def check_log_group(account: LogsAccount, logs: Any, name: str) -> None:
    """CloudWatchLogsError unless log group ``name`` exists and may be read: one
    FilterLogEvents call over a millisecond, with the permission the source needs anyway
    (``not_found``: "The specified log group does not exist"; ``denied``)."""
    now = _now_ms()
    await account.call(
        logs.filter_log_events, "FilterLogEvents", name, logGroupName=name, startTime=now, endTime=now, limit=1
    )


async def describe_metric_filters(spec: CloudWatchLogsSpec, log_group: str) -> list[dict[str, Any]]:
    """The metric filters provisioned on ``log_group`` (DescribeMetricFilters with
    ``logGroupName``, ``limit`` 50, every page, ``nextToken`` followed while present), in
    the describe-metric-filters shape (spec §8.5), in the order AWS gives them.

    Raises:
        CloudWatchLogsError: a call failed for good.
    """
    account = logs_account(spec.target)
    async with account.logs() as logs:
        return await described_metric_filters(account, logs, log_group)


async def described_metric_filters(account: LogsAccount, logs: Any, log_group: str) -> list[dict[str, Any]]:
    """:func:`describe_metric_filters` with a client already open (``logs``, of ``account``):
    every page of DescribeMetricFilters (``limit`` 50) for ``log_group``.

    Raises:
        CloudWatchLogsError: a call failed for good.
    """
    filters: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": log_group, "limit": 50}
        if token:
            kwargs["nextToken"] = token
        answer = await account.call(logs.describe_metric_filters, "DescribeMetricFilters", log_group, **kwargs)
        filters += answer.get("metricFilters") or []
        token = answer.get("nextToken")
        if not token:
            return filters


# ---- the source ----------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CloudWatchLogsSource(Source):
    """Reads the log events of one log group (a :class:`CloudWatchLogsSpec` naming one),
    as the module docstring says.

    Args:
        spec: a spec naming exactly one log group (:meth:`split`).
        stats: counters (see :class:`~castlewatch.engine.sources.base.Source`).
        positions: a position from :meth:`positions` or a batch of an earlier run on the
            same log group: reading resumes exactly after the events evaluated then.
            None: from ``spec.start_ms``.
        batch_size: most events in one batch (>= 1).

    Raises:
        ValueError: a spec naming no or several log groups, or a prefix; ``positions``
            not of the shape :meth:`positions` returns (the message starts with
            ``positions``); ``batch_size`` < 1.

    Attributes:
        name: ``"cloudwatch_logs:<log group>"``.
        poll_interval: ``spec.poll_interval_s``.
        window_span_s: event time one catch-up window covers at most (seconds).
        page_limit: FilterLogEvents' ``limit`` (None: the API's, 10,000 events).
        retry_policy: the retries of a call (None: :data:`FOLLOW_RETRY_POLICY` while
            following, :data:`REPLAY_RETRY_POLICY` in a replay).
        retries: calls retried so far.
    """

    def __init__(self, spec: CloudWatchLogsSpec, stats: Stats | None, positions: Any = None, batch_size: int = 1000):
        if not spec.log_group:
            raise ValueError("a cloudwatch_logs source reads one log group: split the entry first (split_source)")
        super().__init__(spec, stats, batch_size)
        self.group = spec.log_group
        self.poll_interval = spec.poll_interval_s
        self.window_span_s = max(WINDOW_SPAN_S, 4 * spec.lookback_s)
        self.page_limit: int | None = None
        self.retry_policy: RetryPolicy | None = None
        self.retries = 0
        self._lookback_ms = int(spec.lookback_s * 1000)
        self._account: LogsAccount | None = None
        self._cursor, self._high, self._read_to, self._chunks = _restore(positions, spec.start_ms)
        self._seen = {pairs[i + 1]: pairs[i] for pairs in self._chunks for i in range(0, len(pairs), 2)}
        self._last: dict[str, Any] = self._position(self._chunks)

    @classmethod
    def name_for(cls, spec: CloudWatchLogsSpec) -> str:
        return f"cloudwatch_logs:{spec.log_group or spec.log_group_name_prefix or ','.join(spec.log_group_names)}"

    @classmethod
    def split(cls, spec: CloudWatchLogsSpec) -> list[CloudWatchLogsSpec]:
        """One spec per log group named.

        Raises:
            ValueError: a spec with a prefix (resolve it first: :func:`resolve_log_groups`,
                done by :func:`castlewatch.engine.config.resolve_config`).
        """
        if spec.log_group_name_prefix is not None:
            raise ValueError(
                f"cloudwatch_logs source with log_group_name_prefix {spec.log_group_name_prefix!r}: the prefix must "
                "be resolved to log groups before the run (castlewatch.engine.config.resolve_config)"
            )
        return [dataclasses.replace(spec, log_group_names=(name,)) for name in spec.log_group_names]

    def positions(self) -> dict[str, Any]:
        """The position after every batch yielded so far (before any: the one given)."""
        return self._last

    def _position(self, chunks: list[list[Any]]) -> dict[str, Any]:
        return {
            "v": POSITIONS_VERSION, "cursor": self._cursor, "high": self._high, "read_to": self._read_to, "seen": chunks
        }

    async def _batches(self, follow: bool, stop: asyncio.Event) -> AsyncIterator[EventBatch]:
        """The batches of :meth:`~castlewatch.engine.sources.base.Source.batches`: windows
        up to ``spec.end_ms`` (a replay without it: up to its start) then return
        (``follow`` False); or poll every ``poll_interval`` until ``stop`` is set (or, with
        an ``end_ms``, until ``lookback_s`` has passed after it)."""
        spec = self.spec
        end = spec.end_ms if spec.end_ms is not None or follow else _now_ms() + 1
        policy = self.retry_policy or (FOLLOW_RETRY_POLICY if follow else REPLAY_RETRY_POLICY)
        account = self._account = logs_account(spec.target)
        async with account.logs() as logs:
            while not stop.is_set():
                now = _now_ms()
                last, catching_up = self._window_end(now, end)
                async with contextlib.aclosing(self._window(account, logs, policy, now, last, stop)) as window:
                    async for batch in window:
                        yield batch
                if stop.is_set():
                    return
                if end is not None and last == end - 1 and (not follow or now >= end + self._lookback_ms):
                    return
                if follow and not catching_up:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_interval):
                            await stop.wait()

    def _window_end(self, now: int, end: int | None) -> tuple[int | None, bool]:
        """(the last event time, ms inclusive, the next window reads, None for no end;
        whether it is a catch-up window): while the time read so far (``read_to``) is
        more than ``window_span_s`` behind now, a window reads ``window_span_s`` past it."""
        span = int(self.window_span_s * 1000)
        base = self._cursor if self._read_to is None else self._read_to
        catching_up = base + span <= now and (end is None or base + span < end)
        last = base + span - 1 if catching_up else None
        if end is not None and not catching_up:
            last = end - 1
        return last, catching_up

    async def _window(
        self, account: LogsAccount, logs: Any, policy: RetryPolicy, now: int, last: int | None, stop: asyncio.Event
    ) -> AsyncIterator[EventBatch]:
        """Read ``[cursor, last]`` whole, yield its new events; then move the cursor."""
        cursor = self._cursor
        high = self._high
        added: list[list[Any]] = []  # this window's ids so far, chunk per batch
        token = None
        yielded = False
        while True:
            kwargs: dict[str, Any] = {"logGroupName": self.group, "startTime": cursor}
            if last is not None:
                kwargs["endTime"] = last
            if token:
                kwargs["nextToken"] = token
            if self.page_limit:
                kwargs["limit"] = self.page_limit
            answer = await self._call(account, logs.filter_log_events, policy, stop, kwargs)
            if answer is None:
                return  # stopped: the batches yielded carry exact positions
            events: list[LogEvent] = []
            pairs: list[Any] = []
            invalid = 0
            seen = self._seen
            for event in answer.get("events") or ():
                ts, event_id, message = event.get("timestamp"), event.get("eventId"), event.get("message")
                if type(ts) is not int or not isinstance(event_id, str) or not isinstance(message, str):
                    invalid += 1
                    continue
                if high is None or ts > high:
                    high = ts
                if event_id in seen or ts < cursor or (last is not None and ts > last):
                    continue
                seen[event_id] = ts
                events.append(LogEvent(ts, message, self.group, event.get("logStreamName") or ""))
                pairs += (ts, event_id)
            token = answer.get("nextToken")
            counts = {"invalid_event": invalid} if invalid else None
            if token:  # more of this window: positions keep its start, with the ids so far
                for batch_events, batch_pairs in self._cut(events, pairs):
                    added.append(batch_pairs)
                    self._last = self._position(self._chunks + added)
                    yield EventBatch(self.name, batch_events, self._last, malformed=counts)
                    counts = None
                    yielded = True
                if counts:
                    yield EventBatch(self.name, [], self._last, malformed=counts)
                continue
            # The whole window is read: the last batch carries the next window's position.
            cuts = list(self._cut(events, pairs))
            for batch_events, batch_pairs in cuts[:-1]:
                added.append(batch_pairs)
                self._last = self._position(self._chunks + added)
                yield EventBatch(self.name, batch_events, self._last, malformed=counts)
                counts = None
                yielded = True
            before = self._cursor
            self._finish(now, last, high)
            final_events = cuts[-1][0] if cuts else []
            if final_events or yielded or counts or self._cursor != before:
                yield EventBatch(self.name, final_events, self._last, malformed=counts)
            return

    def _cut(self, events: list[LogEvent], pairs: list[Any]):
        """(events, their [ts, id, ...]) in batches of at most ``batch_size``."""
        size = self.batch_size
        for i in range(0, len(events), size):
            yield events[i : i + size], pairs[2 * i : 2 * (i + size)]

    def _finish(self, now: int, last: int | None, high: int | None) -> None:
        """A whole window read: the latest event time seen, the time read up to, the next
        window's start (``lookback_s`` before the latest event time seen, which is capped
        at now), the ids kept (those of events at or after that start)."""
        self._high = high
        self._read_to = now if last is None else last
        if high is not None:
            self._cursor = max(self._cursor, min(high, now) - self._lookback_ms)
        cursor = self._cursor
        kept = sorted((ts, event_id) for event_id, ts in self._seen.items() if ts >= cursor)
        self._seen = {event_id: ts for ts, event_id in kept}
        self._chunks = [[x for pair in kept for x in pair]] if kept else []
        self._last = self._position(self._chunks)

    async def _call(
        self, account: LogsAccount, operation: Callable[..., Awaitable[Any]], policy: RetryPolicy,
        stop: asyncio.Event, kwargs: dict[str, Any],
    ) -> Any:
        """FilterLogEvents(**kwargs) with the shared rate limit and retries; None if
        ``stop`` was set first (the call is cancelled)."""
        task = asyncio.ensure_future(
            account.call(operation, "FilterLogEvents", self.group, policy=policy, on_retry=self._on_retry, **kwargs)
        )
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task.cancelled():
            return None
        return task.result()

    def _on_retry(self, error: BaseException, wait: float) -> None:
        self.retries += 1
        if self._account is not None:
            self._account.warn_retry("FilterLogEvents", self.group, error, wait)


def _restore(positions: Any, start_ms: int) -> tuple[int, int | None, int | None, list[list[Any]]]:
    """(cursor, high, read_to, chunks) of a position; ValueError (starting with
    ``positions``) if it is not one :meth:`CloudWatchLogsSource.positions` returns."""
    if not positions:
        return start_ms, None, None, []
    if not isinstance(positions, dict) or positions.get("v") != POSITIONS_VERSION:
        raise ValueError(f"positions must be a CloudWatch Logs position of version {POSITIONS_VERSION}")
    cursor, high, read_to = positions.get("cursor"), positions.get("high"), positions.get("read_to")
    chunks = positions.get("seen")
    if (
        type(cursor) is not int
        or any(v is not None and type(v) is not int for v in (high, read_to))
        or not isinstance(chunks, list)
    ):
        raise ValueError("positions must have an integer cursor, integer or null high and read_to, and a seen list")
    for chunk in chunks:
        if (
            not isinstance(chunk, list)
            or len(chunk) % 2
            or not all(type(ts) is int and isinstance(i, str) for ts, i in zip(chunk[::2], chunk[1::2]))
        ):
            raise ValueError("positions: seen must hold lists of event time, eventId pairs")
    return cursor, high, read_to, [list(chunk) for chunk in chunks]
