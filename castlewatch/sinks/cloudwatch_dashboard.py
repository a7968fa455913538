"""CloudWatch dashboard sink (``type: cloudwatch_dashboard``): PutDashboard of a generated body.

The body is :func:`castlewatch.dashboard.dashboard_body` of the configuration and the
dimension value sets the sink has seen in the datapoints written to it (at most 500 per
metric, a widget's limit), validated by :func:`castlewatch.dashboard.check_dashboard`
before it is sent. It is put:

- when the run starts (the metrics without dimensions have their graphs at once);
- when new dimension values appear, at most once every ``update_interval_s``;
- at the end of the run (``finish``).

PutDashboard replaces the whole dashboard and is idempotent, so it needs no ledger; the
dimension value sets seen are the sink's checkpoint position, so a restarted ``run``
draws the same lines. ``DashboardValidationMessages`` in the answer are logged as
warnings (the dashboard was saved, some parts may not draw); an invalid body
(``DashboardInvalidInputError``, or castlewatch's own validation) is logged as an error,
and ``replay`` then fails with a :class:`~castlewatch.sinks.base.PublishError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from castlewatch.aws import AwsTarget, RetryPolicy, call, client, describe_error, is_retriable
from castlewatch.dashboard import (
    MAX_METRICS_PER_WIDGET,
    DashboardValidationError,
    check_dashboard,
    dashboard_body,
    validation_messages,
)
from castlewatch.model import Datapoint
from castlewatch.sinks.base import PublishError, SinkBase, SinkContext, SinkError, SinkKind
from castlewatch.sinks.registry import SinkSpec

log = logging.getLogger("castlewatch.sinks.cloudwatch_dashboard")


@dataclass(frozen=True, kw_only=True)
class CloudWatchDashboardSinkSpec(SinkSpec):
    """``type: cloudwatch_dashboard``.

    Attributes:
        dashboard_name: 1-255 of ``A-Za-z0-9_-`` (spec §10).
        region, endpoint_url: where PutDashboard goes and (region) where the graphs'
            metrics are; None: the standard AWS chain.
        namespace_prefix: the ``cloudwatch`` sink's; None: that of the configuration's
            first ``cloudwatch`` sink (``""`` without one: AWS's own metrics).
        update_interval_s: at most one update per this many seconds (new dimension values).
        profile: the AWS profile (``--profile``; not a config file setting), or None.
        timeout_s: seconds to wait for an answer.
    """

    type: str = "cloudwatch_dashboard"
    dashboard_name: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    namespace_prefix: str | None = None
    update_interval_s: float = 60.0
    timeout_s: float = 30.0
    profile: str | None = None

    @property
    def target(self) -> AwsTarget:
        """Where PutDashboard goes (None fields: the standard AWS chain's)."""
        return AwsTarget(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)

    @property
    def where(self) -> str:
        return f"CloudWatch dashboard {self.dashboard_name}"


def namespace_prefix_of(spec: CloudWatchDashboardSinkSpec, config: Any) -> str:
    """The namespace prefix of the dashboard's metrics: the spec's, else that of the first
    ``cloudwatch`` sink of ``config`` (``""`` without one: AWS's own metrics)."""
    if spec.namespace_prefix is not None:
        return spec.namespace_prefix
    sinks = getattr(config, "sinks", ()) or ()
    return next((s.namespace_prefix for s in sinks if s.type == "cloudwatch"), "")


class CloudWatchDashboardSink(SinkBase):
    """The ``cloudwatch_dashboard`` sink (see the module docstring).

    Raises:
        SinkError: an invalid dashboard name, a position that is not ``{"seen": [...]}``.
    """

    def __init__(self, spec: CloudWatchDashboardSinkSpec, position: Any, context: SinkContext) -> None:
        self.spec = spec
        self.config = context.config
        self.prefix = namespace_prefix_of(spec, context.config)
        self.seen: dict[tuple[str, str], dict[tuple, None]] = {}  # insertion-ordered sets
        if position is not None:
            try:
                for namespace, name, dims in position["seen"]:
                    self.seen.setdefault((namespace, name), {})[tuple((n, v) for n, v in dims)] = None
            except (KeyError, TypeError, ValueError):
                raise SinkError(f"invalid dashboard sink position {position!r}") from None
        self.mode = "run"
        self.puts = 0  # successful PutDashboard calls
        self.last_body: dict[str, Any] | None = None
        self._dirty = True
        self._put_at = 0.0
        self._failure: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._client_cm: Any = None
        self._cw: Any = None
        self.region: str | None = spec.region

    # ---- the Sink interface ------------------------------------------------------------------------

    def write(self, datapoints: list[Datapoint]) -> None:
        """Note the dimension value sets not seen yet (an update is then due)."""
        for dp in datapoints:
            if not dp.dimensions or dp.sample_count <= 0:
                continue
            sets = self.seen.setdefault((dp.namespace, dp.metric_name), {})
            if dp.dimensions not in sets and len(sets) < MAX_METRICS_PER_WIDGET:
                sets[dp.dimensions] = None
                self._dirty = True
                self._wake.set()

    def flush(self) -> dict[str, Any]:
        """The position: the dimension value sets seen,
        ``{"seen": [[namespace, metric, [[name, value], ...]], ...]}``."""
        seen = self.seen.items()
        return {"seen": [[ns, name, [list(d) for d in dims]] for (ns, name), sets in seen for dims in sets]}

    async def flush_async(self) -> dict[str, Any]:
        """:meth:`flush` (nothing to write to disk)."""
        return self.flush()

    def close(self) -> None:
        """Stop the updater (``aclose`` also closes the client)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # ---- lifecycle --------------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The body for what has been seen so far (the region must be known: after ``start``)."""
        return dashboard_body(self.config, region=self.region or "", seen=self.seen, namespace_prefix=self.prefix)

    async def start(self, mode: str) -> None:
        """Open the client, put the dashboard, start the updater."""
        from botocore.exceptions import BotoCoreError

        self.mode = mode
        target = self.spec.target
        self._client_cm = client("cloudwatch", target, read_timeout_s=self.spec.timeout_s)
        try:
            self._cw = await self._client_cm.__aenter__()
        except BotoCoreError as err:
            self._client_cm = None
            raise PublishError(f"{self.spec.where}: cannot open a CloudWatch client: {err}") from None
        self.region = self.spec.region or self._cw.meta.region_name
        await self._put()
        self._task = asyncio.create_task(self._updates(), name="castlewatch-dashboard")

    async def finish(self) -> None:
        """Put the dashboard as it stands now.

        Raises:
            PublishError: ``replay``, and the last put failed (invalid body, CloudWatch unreachable).
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._cw is not None:
            await self._put()
        if self._failure is not None and self.mode == "replay":
            raise PublishError(f"{self.spec.where}: {self._failure}")

    async def aclose(self) -> None:
        """Stop the updater and close the client."""
        self.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._client_cm is not None:
            with contextlib.suppress(Exception):
                await self._client_cm.__aexit__(None, None, None)
            self._client_cm = None

    async def _updates(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = self._put_at + self.spec.update_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._dirty:
                await self._put()

    async def _put(self) -> None:
        """Validate and put the body; log what CloudWatch says about it."""
        self._dirty = False
        self._put_at = time.monotonic()
        body = self.body()
        try:
            check_dashboard(self.spec.dashboard_name, body)
        except DashboardValidationError as err:
            self._failure = f"castlewatch generated an invalid body (a castlewatch bug): {err}"
            log.error(f"castlewatch: {self.spec.where}: {self._failure}")
            return
        policy = RetryPolicy(max_attempts=5, base_delay_s=0.2, max_delay_s=5.0)
        try:
            answer = await call(self._cw.put_dashboard, policy=policy, DashboardName=self.spec.dashboard_name,
                                DashboardBody=orjson.dumps(body).decode())
        except Exception as err:
            self._dirty = True  # try again at the next update
            refused = not is_retriable(err)  # DashboardInvalidInputError, AccessDenied, ...
            what = "refused the dashboard" if refused else "did not answer"
            self._failure = f"CloudWatch {what}: {describe_error(err)}"
            log.error(f"castlewatch: {self.spec.where}: {self._failure}")
            return
        self._failure = None
        self.puts += 1
        self.last_body = body
        for message in validation_messages(answer):
            log.warning(f"castlewatch: {self.spec.where}: saved with a warning: {message}")


def spec_from_entry(entry: Any, resolve: Any) -> CloudWatchDashboardSinkSpec:
    """The spec of a decoded ``type: cloudwatch_dashboard`` configuration entry."""
    return CloudWatchDashboardSinkSpec(
        dashboard_name=entry.dashboard_name,
        region=entry.region,
        endpoint_url=entry.endpoint_url,
        namespace_prefix=entry.namespace_prefix,
        update_interval_s=entry.update_interval_s,
        timeout_s=entry.timeout_s,
    )


KIND = SinkKind(
    "cloudwatch_dashboard",
    lambda spec, position, context: CloudWatchDashboardSink(spec, position, context),
    from_entry=spec_from_entry,
)
