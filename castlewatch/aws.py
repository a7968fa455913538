"""AWS clients for castlewatch: one place that builds them, limits their rate and retries.

Every call castlewatch makes to AWS (CloudWatch Logs, CloudWatch) goes through an
aiobotocore client made by :func:`client` and, for calls that may be throttled, through
:func:`call` with a :class:`RateLimiter` and a :class:`RetryPolicy`.

- **Where to connect** (:class:`AwsTarget`): ``region``, ``profile`` and ``endpoint_url``
  given by a flag or the config win; what is left unset is resolved by botocore exactly
  as the AWS CLI does (environment ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
  ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``, then
  ``~/.aws/config``).
- **Credentials** come from the standard AWS chain only; castlewatch never reads, stores
  or prints them. :func:`describe_error` gives a client error's code and message, which
  AWS never fills with credentials.
- **Emulators** (an ``endpoint_url``, given or configured: LocalStack, moto): ``inject_host_prefix=False`` (no
  ``streaming-logs.``-style host prefixes the emulator cannot resolve) and botocore's own
  retries off, since :func:`call` retries with castlewatch's policy.
- **Sharing**: clients come from one botocore session per profile (and wire protocol) and
  event loop (creating a session loads the service models: about 0.1 s), and a
  :class:`SharedClient` lets the users of one AWS target share one client; inside
  :func:`hold_clients` (a whole ``replay`` or ``run``) it stays open between users, so a
  sequential replay of many log groups opens one client per target, not one per log group.
- **Wire protocol**: botocore speaks CloudWatch over AWS JSON 1.0 (its choice since
  1.42.7), and can speak Query and Smithy RPC v2 CBOR, which the service model lists too;
  ``client(..., protocol=...)`` picks one (for an emulator or a proxy that knows only one).
- **Retries**: throttling and 5xx answers, dropped connections and timeouts are retried
  with exponential backoff and full jitter (the AWS Architecture Blog's "Exponential
  Backoff And Jitter"); any other error (AccessDenied, a missing log group, a validation
  error) is raised at once, never retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "AwsTarget",
    "RateLimiter",
    "RetryPolicy",
    "SharedClient",
    "call",
    "client",
    "describe_error",
    "error_code",
    "hold_clients",
    "is_denied",
    "is_retriable",
    "outcome_unknown",
    "resolved_protocol",
]

T = TypeVar("T")

#: Error codes AWS answers when a caller goes too fast (CloudWatch Logs, CloudWatch, STS).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceFault",
        "InternalServerError",
    }
)


#: Error codes that mean the credentials may not do this (or there are none that work).
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)


@dataclass(frozen=True, slots=True)
class AwsTarget:
    """Where AWS calls go. ``None`` fields are resolved by botocore as the AWS CLI does.

    Attributes:
        region: e.g. ``us-east-1``.
        profile: a profile of ``~/.aws/config`` / ``~/.aws/credentials``.
        endpoint_url: e.g. ``http://127.0.0.1:4566`` (LocalStack) or a moto server; set
            means an emulator: see the module docstring.
    """

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    def merged(self, other: "AwsTarget") -> "AwsTarget":
        """This target with ``other``'s set fields winning (a flag over the config)."""
        return AwsTarget(
            region=other.region or self.region,
            profile=other.profile or self.profile,
            endpoint_url=other.endpoint_url or self.endpoint_url,
        )

    def where(self, region: str | None = None) -> str:
        """``endpoint URL`` or ``region R`` (``region``: the one botocore resolved, when
        known), with ``profile P`` if one is named, for messages."""
        if self.endpoint_url:
            text = f"endpoint {self.endpoint_url}"
        else:
            region = region or self.region
            text = f"region {region}" if region else "the default region"
        return f"{text}, profile {self.profile}" if self.profile else text

    def endpoint(self, service: str) -> str | None:
        """The endpoint URL calls to ``service`` (``"logs"``, ``"cloudwatch"``) go to, or None
        for AWS's own: ``endpoint_url`` when set, else the one the AWS configuration names
        (``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, ``endpoint_url`` in the
        profile or its ``services`` section; none under ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``),
        resolved by botocore's own ``ConfiguredEndpointProvider`` exactly as a client does
        (AWS SDKs and Tools Reference Guide, "Service-specific endpoints").

        Raises:
            botocore.exceptions.ProfileNotFound: ``profile`` is not configured.
        """
        if self.endpoint_url:
            return self.endpoint_url
        from botocore.configprovider import ConfiguredEndpointProvider
        from botocore.session import Session

        session = Session(profile=self.profile) if self.profile else Session()
        if session.get_config_variable("ignore_configured_endpoint_urls"):
            return None
        provider = ConfiguredEndpointProvider(
            full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name=service
        )
        return provider.provide()


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, Any]] = weakref.WeakKeyDictionary()


def _session(profile: str | None, service: str, protocol: str | None) -> Any:
    """The aiobotocore session of ``profile`` (and, for a chosen wire ``protocol``, of that
    service and protocol: its data loader is the session's) on the running event loop;
    made once, since making one loads the service models again (about 0.1 s). Outside a
    running loop: a new session."""
    from aiobotocore.session import AioSession

    key = (profile, service if protocol is not None else None, protocol)
    try:
        sessions = _SESSIONS.setdefault(asyncio.get_running_loop(), {})
    except RuntimeError:
        sessions = {}
    session = sessions.get(key)
    if session is None:
        session = AioSession(profile=profile) if profile else AioSession()
        if protocol is not None:
            session.register_component("data_loader", _protocol_loader(session, service, protocol))
        sessions[key] = session
    return session


def client(
    service: str, target: AwsTarget, *, read_timeout_s: float = 30.0, protocol: str | None = None
) -> AbstractAsyncContextManager[Any]:
    """An aiobotocore client for ``service`` (``"logs"``, ``"cloudwatch"``), to use as
    ``async with client("logs", target) as logs: ...``.

    Args:
        service: the botocore service name.
        target: region, profile, endpoint (unset parts from the standard AWS chain).
        read_timeout_s: seconds to wait for an answer before the call fails (a timeout
            is retried by :func:`call`; for a call that changes state its outcome is then
            unknown, see :func:`outcome_unknown`).
        protocol: the wire protocol, one of those the service model lists (CloudWatch:
            ``json``, ``query``, ``smithy-rpc-v2-cbor``); None: botocore's choice.

    Raises:
        botocore.exceptions.ProfileNotFound: ``target.profile`` is not configured.
        botocore.exceptions.NoRegionError: no region anywhere (flag, config, environment).
        ValueError: ``protocol`` is not one the service model lists.
    """
    from aiobotocore.config import AioConfig

    session = _session(target.profile, service, protocol)
    options: dict[str, Any] = {"read_timeout": read_timeout_s, "connect_timeout": 10}
    if target.endpoint_url or target.endpoint(service):
        options.update(inject_host_prefix=False, retries={"total_max_attempts": 1})
    else:
        options.update(retries={"total_max_attempts": 1})  # call() retries, with its own policy
    return session.create_client(
        service,
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=AioConfig(**options),
    )


_HOLDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[set["SharedClient"]]] = weakref.WeakKeyDictionary()


class SharedClient:
    """One aiobotocore client of ``service`` at ``target`` shared by its users on one event
    loop: :meth:`use` opens it for the first user and closes it when the last one leaves,
    unless a :func:`hold_clients` block is running, which closes it when it ends.

    Args:
        service, target, options: as :func:`client` takes them (``read_timeout_s``,
            ``protocol``).

    Raises (from :meth:`use`): as :func:`client`, and botocore's errors opening it.
    """

    def __init__(self, service: str, target: AwsTarget, **options: Any) -> None:
        self.service = service
        self.target = target
        self.options = options
        self.opened = 0  # clients opened so far (tests, reports)
        self._client: Any = None
        self._context: Any = None
        self._users = 0
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """The shared client, while the block runs."""
        async with self._lock:
            if self._client is None:
                context = client(self.service, self.target, **self.options)
                self._client = await context.__aenter__()
                self._context = context
                self.opened += 1
                holds = _HOLDS.get(asyncio.get_running_loop())
                if holds:
                    holds[-1].add(self)
            self._users += 1
        try:
            yield self._client
        finally:
            self._users -= 1
            if self._users == 0 and not _HOLDS.get(asyncio.get_running_loop()):
                await self.close()

    async def close(self) -> None:
        """Close the client now if no one uses it (it is opened again when needed)."""
        if self._users == 0 and self._context is not None:
            context, self._client, self._context = self._context, None, None
            await context.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def hold_clients() -> AsyncIterator[None]:
    """While the block runs, the :class:`SharedClient` s opened on this event loop stay open
    between their users (a replay reading log groups one after the other opens one client
    per AWS target); those left idle are closed when it ends. Blocks may nest."""
    loop = asyncio.get_running_loop()
    holds = _HOLDS.setdefault(loop, [])
    held: set[SharedClient] = set()
    holds.append(held)
    try:
        yield
    finally:
        holds.remove(held)
        for shared in held:
            if holds:  # an outer block keeps it
                holds[-1].add(shared)
            else:
                with contextlib.suppress(Exception):
                    await shared.close()


def _protocol_loader(session: Any, service: str, protocol: str) -> Any:
    """A botocore data loader (the session's ``data_path`` kept) whose model of ``service``
    lists ``protocol`` only, so that botocore speaks it: the public way to change what
    botocore loads is a loader component or a model on ``AWS_DATA_PATH``."""
    from botocore.loaders import Loader

    class ProtocolLoader(Loader):
        def load_service_model(self, service_name, type_name, api_version=None):
            model = super().load_service_model(service_name, type_name, api_version)
            if service_name != service or type_name != "service-2":
                return model
            metadata = model["metadata"]
            if protocol not in metadata.get("protocols", [metadata.get("protocol")]):
                raise ValueError(
                    f"{service} does not speak {protocol!r}; it speaks {', '.join(metadata.get('protocols', []))}"
                )
            return {**model, "metadata": {**metadata, "protocol": protocol, "protocols": [protocol]}}

    data_path = session.get_config_variable("data_path")  # as botocore.loaders.create_loader reads it
    extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)] if data_path else []
    return ProtocolLoader(extra_search_paths=extra)


def resolved_protocol(service: str, protocol: str | None = None) -> str:
    """The wire protocol a :func:`client` for ``service`` speaks (``protocol`` if given,
    else botocore's choice among those the service model lists)."""
    if protocol is not None:
        return protocol
    return _default_protocol(service)


@functools.cache
def _default_protocol(service: str) -> str:
    import botocore.session

    return botocore.session.get_session().get_service_model(service).resolved_protocol


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``"ThrottlingException"``), else ``""``."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _http_status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def describe_error(error: BaseException) -> str:
    """One line for an AWS error: ``Code: message`` for a client error, the exception's
    type and text otherwise. Never includes credentials (AWS answers hold none)."""
    code = error_code(error)
    if code:
        message = getattr(error, "response", {}).get("Error", {}).get("Message", "")
        text = f"{code}: {message}" if message else code
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())  # one line, even for an HTML error page
    return text if len(text) <= 300 else text[:297] + "..."


def _connection_errors() -> tuple[type[BaseException], ...]:
    import aiohttp
    from botocore import exceptions as bx

    return (
        bx.EndpointConnectionError,
        bx.ConnectionClosedError,
        bx.ReadTimeoutError,
        bx.ConnectTimeoutError,
        bx.ConnectionError,
        aiohttp.ClientError,
        asyncio.TimeoutError,
        ConnectionError,
    )


def is_denied(error: BaseException) -> bool:
    """Whether AWS refused the call for the credentials: AccessDenied, no or invalid
    credentials (:data:`DENIED_CODES`, or botocore's ``NoCredentialsError`` family)."""
    if error_code(error) in DENIED_CODES:
        return True
    from botocore import exceptions as bx

    return isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError))


def is_retriable(error: BaseException) -> bool:
    """Whether trying again may succeed: throttling, a 5xx answer, a dropped connection
    or a timeout. AccessDenied, a missing resource or an invalid request are not."""
    code = error_code(error)
    if code:
        return code in THROTTLING_CODES or _http_status(error) >= 500
    return isinstance(error, _connection_errors())


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed call may have taken effect anyway: the request may have reached
    AWS but its answer never came back (a read timeout, a connection closed while
    waiting). A call that changes state and ends so may have been applied."""
    from botocore import exceptions as bx

    if error_code(error):
        return False
    return isinstance(error, (bx.ReadTimeoutError, bx.ConnectionClosedError, asyncio.TimeoutError)) or (
        type(error).__name__ in ("ServerDisconnectedError", "ClientPayloadError")
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: the n-th retry waits a random time in
    ``[0, min(max_delay_s, base_delay_s * 2**n)]`` seconds.

    Attributes:
        max_attempts: calls in all, the first included (``None``: no limit, for a daemon
            that must outlast an outage).
        base_delay_s, max_delay_s: seconds.
    """

    max_attempts: int | None = 8
    base_delay_s: float = 0.2
    max_delay_s: float = 20.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return random.uniform(0.0, min(self.max_delay_s, self.base_delay_s * (2.0**min(retry, 30))))


class RateLimiter:
    """At most ``rate`` calls per second on average, ``burst`` at once: a token bucket
    shared by every caller of one API quota (e.g. FilterLogEvents' per-account TPS).

    Args:
        rate: calls per second (> 0).
        burst: calls that may go at once after a quiet time (>= 1).
    """

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a call may go, then take its token."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


async def call(
    operation: Callable[..., Awaitable[T]],
    /,
    *,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy = RetryPolicy(),
    on_retry: Callable[[BaseException, float], None] | None = None,
    give_up_after_s: float | None = None,
    **kwargs: Any,
) -> T:
    """``await operation(**kwargs)`` under ``limiter``, retried per ``policy`` while the
    error :func:`is_retriable`.

    Args:
        operation: a client method, e.g. ``logs.filter_log_events``.
        on_retry: called with the error and the delay (s) before each retry (logging,
            counters); it may raise to stop retrying.
        give_up_after_s: stop retrying once the next attempt would start more than this
            many seconds after the first failure (None: as many attempts as ``policy``
            allows).

    Raises:
        the last error, once it is not retriable, the attempts are used up or the time
        is.
    """
    attempt = 0
    first_failure = 0.0
    while True:
        if limiter is not None:
            await limiter.acquire()
        try:
            return await operation(**kwargs)
        except Exception as error:
            attempt += 1
            if attempt == 1:
                first_failure = time.monotonic()
            if not is_retriable(error) or (policy.max_attempts is not None and attempt >= policy.max_attempts):
                raise
            wait = policy.delay(attempt - 1)
            if give_up_after_s is not None and time.monotonic() + wait - first_failure > give_up_after_s:
                raise
            if on_retry is not None:
                on_retry(error, wait)
            await asyncio.sleep(wait)
