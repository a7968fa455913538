"""The HTTP server of ``castlewatch serve`` (aiohttp): routing by ``X-Amz-Target``, bounded
request reading, answers and the request log.

Routing (AWS JSON 1.1, ``X-Amz-Target: Logs_20140328.<Operation>``, method POST):

- ``TestMetricFilter``: castlewatch answers (:mod:`.test_metric_filter`).
- With an upstream: ``FilterLogEvents`` with a ``filterPattern`` member
  (:mod:`.filter_log_events`), ``PutMetricFilter`` and ``PutSubscriptionFilter``
  (:mod:`.put_filters`); every other request, whatever its target, protocol or method, is
  forwarded unchanged (:mod:`.forward`).
- Without an upstream: every other request is ``UnknownOperationException``.
- ``GET /_castlewatch/health``: ``{"status": "ok", "upstream": URL | null}`` (a health check
  for containers; never forwarded).

Bounds (:class:`~castlewatch.endpoint.limits.ServeLimits`): a body over ``max_body_bytes``
is refused with 413 before it is read (a declared ``Content-Length``) or as soon as it
passes the limit; a body slower than ``body_timeout_s`` gets 408; both close the
connection. A body that is not JSON, or not of the operation's shape, is
``SerializationException``. A castlewatch bug answers 500 ``InternalFailure`` and is
logged; the server keeps serving.

The request log (one line per request on stderr unless quiet) names the operation, the
status and the time taken; never a header, a credential, a signature or a body.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from castlewatch.endpoint import filter_log_events, put_filters, test_metric_filter
from castlewatch.endpoint.errors import (
    INTERNAL_FAILURE,
    REQUEST_TIMEOUT,
    REQUEST_TOO_LARGE,
    SERIALIZATION,
    UNKNOWN_OPERATION,
    ApiError,
    json_headers,
)
from castlewatch.endpoint.forward import Upstream
from castlewatch.endpoint.limits import TARGET_PREFIX, ServeLimits
from castlewatch.endpoint.shapes import Call, decode_body

HEALTH_PATH = "/_castlewatch/health"
#: Seconds the rest of a refused body is read and dropped after the answer (so that a
#: client still sending it gets the answer rather than a reset), then the connection closes.
LINGER_S = 2.0

Handler = Callable[[Call], Awaitable["dict[str, Any] | web.Response"]]

#: Operations castlewatch answers itself.
ANSWERED: dict[str, Handler] = {"TestMetricFilter": test_metric_filter.handle}
#: Operations castlewatch answers (or checks) only in front of an upstream.
WITH_UPSTREAM: dict[str, Handler] = {
    "FilterLogEvents": filter_log_events.handle,
    "PutMetricFilter": put_filters.put_metric_filter,
    "PutSubscriptionFilter": put_filters.put_subscription_filter,
}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class ServeConfig:
    """What ``castlewatch serve`` runs.

    Attributes:
        host: address to listen on (loopback unless told otherwise).
        port: TCP port (0: a free one, named in the readiness line).
        upstream: URL of LocalStack, moto or another CloudWatch Logs endpoint that does
            not check signatures, or None.
        limits: the server's bounds.
        log: where the request log and the readiness line go (one line a call), or None
            for no request log.
    """

    host: str = "127.0.0.1"
    port: int = 4599
    upstream: str | None = None
    limits: ServeLimits = field(default_factory=ServeLimits)
    log: Callable[[str], None] | None = _stderr


def _operation_of(request: web.Request) -> str:
    """``Operation`` of a CloudWatch Logs target, ``""`` for none or another service's."""
    target = request.headers.get("X-Amz-Target", "")
    return target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""


async def read_body(request: web.Request, limits: ServeLimits) -> bytes:
    """The request's body, bounded in size and in time.

    Raises:
        ApiError: 413 ``RequestEntityTooLargeException`` over ``max_body_bytes``; 408
            ``RequestTimeoutException`` when it takes longer than ``body_timeout_s``;
            ``SerializationException`` when the connection ends before the body does (or
            its chunked encoding is broken).
    """
    too_large = ApiError(
        REQUEST_TOO_LARGE,
        f"castlewatch serve: the request body is over {limits.max_body_bytes:,} bytes (serve --max-body-bytes)",
        413,
        close=True,
    )
    if request.content_length is not None and request.content_length > limits.max_body_bytes:
        raise too_large
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    except (ConnectionError, HttpProcessingError, ClientPayloadError) as error:
        raise ApiError(
            SERIALIZATION, f"castlewatch serve: the request body did not arrive whole ({error})", close=True
        ) from None
    except TimeoutError:
        raise ApiError(
            REQUEST_TIMEOUT,
            f"castlewatch serve: the request body did not arrive within {limits.body_timeout_s:g} s",
            408,
            close=True,
        ) from None


def build_app(config: ServeConfig) -> web.Application:
    """The aiohttp application: one route for every method and path (see the module
    docstring), the upstream opened and closed with it."""
    limits = config.limits
    upstream = Upstream(config.upstream, limits.upstream_timeout_s) if config.upstream else None
    handlers = {**ANSWERED, **(WITH_UPSTREAM if upstream else {})}
    log = config.log

    async def route(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        operation = _operation_of(request)
        name = operation or request.headers.get("X-Amz-Target") or f"{request.method} {request.path}"
        where = ""
        try:
            answer, where = await _answer(request, operation)
        except ApiError as error:
            answer = error.response()
        except Exception as error:  # a castlewatch bug: answered and logged, the server goes on
            if log is not None:
                log(f"castlewatch serve: {name} failed on a castlewatch bug: {type(error).__name__}: {error}")
            answer = ApiError(INTERNAL_FAILURE, f"castlewatch serve: {type(error).__name__}: {error}", 500).response()
        if log is not None:
            log(f"castlewatch serve: {name} -> {where}{answer.status} ({(time.monotonic() - started) * 1000:.1f} ms)")
        return answer

    async def _answer(request: web.Request, operation: str) -> tuple[web.StreamResponse, str]:
        if request.method == "GET" and request.path == HEALTH_PATH:
            status = {"status": "ok", "upstream": upstream.url if upstream else None}
            return web.Response(body=orjson.dumps(status), content_type="application/json"), ""
        handler = handlers.get(operation) if request.method == "POST" else None
        if handler is None and upstream is None:
            raise ApiError(UNKNOWN_OPERATION, _unknown(request, operation), close=True)
        body = await read_body(request, limits)
        if handler is not None:
            payload = decode_body(body, request.headers.get("Content-Encoding", ""), limits.max_body_bytes)
            if operation == "FilterLogEvents" and "filterPattern" not in payload:
                handler = None  # no pattern to apply: the upstream's answer is exact
        if handler is None:
            assert upstream is not None
            return await upstream.forward(request, body), "upstream "
        result = await handler(Call(operation, request, body, payload, upstream, limits))
        if isinstance(result, web.StreamResponse):
            return result, ""
        return web.Response(body=orjson.dumps(result), headers=json_headers()), ""

    async def on_startup(app: web.Application) -> None:
        if upstream is not None:
            await upstream.open()

    async def on_cleanup(app: web.Application) -> None:
        if upstream is not None:
            await upstream.close()

    app = web.Application(client_max_size=limits.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", route)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def _unknown(request: web.Request, operation: str) -> str:
    """Why a request without an upstream is an unknown operation."""
    if operation in WITH_UPSTREAM:
        return (
            f"castlewatch serve answers {operation} only in front of an upstream: start it with "
            "--upstream URL (LocalStack, moto)"
        )
    target = request.headers.get("X-Amz-Target")
    what = f"X-Amz-Target {target!r}" if target else f"{request.method} {request.path} without an X-Amz-Target"
    return (
        f"castlewatch serve: unknown operation ({what}); without --upstream it answers "
        f"POST X-Amz-Target: {TARGET_PREFIX}TestMetricFilter only"
    )


@dataclass
class Running:
    """A started server: its ``url`` and its ``runner`` (``await runner.cleanup()`` stops it)."""

    url: str
    runner: web.AppRunner


async def start(config: ServeConfig) -> Running:
    """Start serving on the running event loop; returns once connections are accepted.

    Raises:
        OSError: the address cannot be bound (in use, not local, no permission).
    """
    runner = web.AppRunner(
        build_app(config),
        access_log=None,  # castlewatch logs requests itself, without their headers
        auto_decompress=False,  # bodies are forwarded as sent; castlewatch decodes with bounds
        shutdown_timeout=config.limits.shutdown_timeout_s,
        lingering_time=LINGER_S,
        handle_signals=False,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    return Running(url=f"http://{shown}:{port}", runner=runner)


async def serve(config: ServeConfig, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then stop cleanly: new connections refused, open
    requests given ``shutdown_timeout_s``, the upstream's connections closed.

    Prints ``castlewatch serve: listening on URL`` through ``config.log`` (stderr) once
    connections are accepted, and ``castlewatch serve: stopped`` at the end.

    Raises:
        OSError: the address cannot be bound.
    """
    say = config.log or _stderr
    running = await start(config)
    try:
        via = f", in front of {config.upstream}" if config.upstream else ", TestMetricFilter only (no --upstream)"
        say(f"castlewatch serve: listening on {running.url}{via}")
        await stop.wait()
    finally:
        await running.runner.cleanup()
        say("castlewatch serve: stopped")
