"""Real AWS-compatible servers for the tests: moto in server mode, and a fault proxy.

- :func:`moto_server` starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1, port 0
  (a free port), and :func:`reset_moto` empties its state between tests.
- :class:`FaultProxy` is an HTTP reverse proxy (aiohttp, in a thread of its own) between
  castlewatch and moto. Tests script faults per operation: a throttling answer in the
  request's own protocol, a 500, a connection dropped before or after moto applied the
  request, a slow answer. Everything else passes through unchanged.

Nothing here mocks a client: castlewatch's aiobotocore clients make real HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import threading
import time
import urllib.request
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass

#: Credentials for emulators only (moto accepts any); set by :func:`emulator_env`.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def emulator_env() -> Iterator[None]:
    """Fake credentials and a region in the environment, no AWS config files read."""
    saved = {k: os.environ.get(k) for k in (*FAKE_ENV, "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE")}
    os.environ.update(FAKE_ENV)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; yields its URL (``http://127.0.0.1:PORT``)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(url: str) -> None:
    """Forget every resource of the moto server at ``url`` (its ``/moto-api/reset``)."""
    request = urllib.request.Request(url + "/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@dataclass
class Fault:
    """One scripted fault.

    ``kind``:
        ``"throttle"``: answer 400 with the protocol's throttling error, not forwarded;
        ``"deny"``: answer 400 with the protocol's AccessDenied error, not forwarded;
        ``"answer"``: answer 200 with ``body`` (JSON protocols), not forwarded;
        ``"invalid"``: answer 400 with the protocol's ``InvalidParameterValue`` error (a
        request CloudWatch finds invalid), not forwarded;
        ``"error"``: answer ``status`` (default 500) with an empty body, not forwarded;
        ``"drop"``: close the connection without an answer, not forwarded;
        ``"drop_after"``: forward to moto (it applies the request), then close the
        connection without the answer: the client cannot know the outcome;
        ``"delay"``: wait ``seconds``, then forward, unless the client has gone meanwhile
        (timed out, killed): then nothing reaches moto.
    """

    kind: str
    status: int = 500
    seconds: float = 0.0
    body: bytes = b""


def operation_of(headers, body: bytes, path: str = "") -> str:
    """The API operation of a request: ``X-Amz-Target`` (JSON protocols, ``Logs_20140328.FilterLogEvents``
    gives ``FilterLogEvents``), the URL path of an RPC v2 CBOR request, or ``Action=`` of a query request."""
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return path.rsplit("/", 1)[-1]
    if body.startswith(b"Action=") or b"&Action=" in body:
        for part in body.split(b"&"):
            if part.startswith(b"Action="):
                return part[len(b"Action=") :].decode()
    return ""


def _cbor_text_map(items: dict[str, str]) -> bytes:
    """RFC 8949 encoding of a small map of text strings (what an RPC v2 CBOR error body holds)."""

    def head(major: int, n: int) -> bytes:
        return bytes([major << 5 | n]) if n < 24 else bytes([major << 5 | 24, n])

    out = head(5, len(items))
    for key, value in items.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return out


def _error_response(
    headers, code: str, message: str, json_code: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A 400 answer with error ``code`` in the request's protocol (``json_code`` for the JSON ones)."""
    content_type = headers.get("Content-Type", "")
    if "json" in content_type:
        body = json.dumps({"__type": json_code or code, "message": message}).encode()
        return 400, {"Content-Type": content_type}, body
    if "cbor" in content_type:
        body = _cbor_text_map({"__type": code, "message": message})
        return 400, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, body
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
        f"<Message>{message}</Message></Error><RequestId>x</RequestId></ErrorResponse>"
    ).encode()
    return 400, {"Content-Type": "text/xml"}, body


def _throttle_response(headers) -> tuple[int, dict[str, str], bytes]:
    return _error_response(headers, "Throttling", "Rate exceeded", "ThrottlingException")


#: What AWS says to a caller without the permission (the message names no credentials).
DENIED_MESSAGE = "User: arn:aws:iam::123456789012:user/tester is not authorized to perform this action"


def _page(body: bytes, key: str, size: int) -> tuple[bytes, int]:
    """A JSON request with its (proxy-made) ``nextToken`` taken out, and the page it asks for."""
    request = json.loads(body or b"{}")
    token = request.pop("nextToken", None)
    page = int(token.removeprefix("page-")) if token else 0
    return json.dumps(request).encode(), page


class FaultProxy:
    """A reverse proxy to ``upstream`` with scripted faults, serving on 127.0.0.1.

    Use as a context manager; ``url`` is where clients connect. ``inject(op, *faults)``
    queues faults for the next requests of operation ``op`` (``"*"``: any operation);
    ``seen[op]`` counts the requests that reached the proxy per operation,
    ``forwarded[op]`` those moto received, ``times[op]`` the monotonic time each request
    reached the proxy; ``bodies[op]`` are the requests' bodies as sent (a gzip body
    decompressed), in order; ``delayed[op]`` counts the requests a ``delay`` fault has
    started holding. ``paginate(op, key, size)`` makes the proxy page a JSON operation's
    answer list ``key`` by ``size`` items with its own ``nextToken`` s, as AWS does
    (moto answers DescribeMetricFilters in one page whatever its ``limit``).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self.seen: dict[str, int] = defaultdict(int)
        self.forwarded: dict[str, int] = defaultdict(int)
        self.times: dict[str, list[float]] = defaultdict(list)
        self._pages: dict[str, tuple[str, int]] = {}
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        self.delayed: dict[str, int] = defaultdict(int)
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    def inject(self, operation: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests of ``operation`` (or ``"*"``)."""
        with self._lock:
            self._faults[operation].extend(faults)

    def paginate(self, operation: str, key: str, size: int) -> None:
        """Answer ``operation`` in pages of ``size`` items of its list ``key``."""
        with self._lock:
            self._pages[operation] = (key, size)

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for key in (operation, "*"):
                if self._faults[key]:
                    return self._faults[key].popleft()
        return None

    def __enter__(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import aiohttp
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        session = aiohttp.ClientSession(auto_decompress=False)

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            plain = gzip.decompress(body) if request.headers.get("Content-Encoding") == "gzip" else body
            operation = operation_of(request.headers, plain, request.path)
            with self._lock:
                self.seen[operation] += 1
                self.times[operation].append(time.monotonic())
                paging = self._pages.get(operation)
                self.bodies[operation].append(plain)
            fault = self._next_fault(operation)
            if fault is not None and fault.kind == "throttle":
                status, headers, payload = _throttle_response(request.headers)
                return web.Response(status=status, headers=headers, body=payload)
            if fault is not None and fault.kind == "deny":
                status, headers, payload = _error_response(request.headers, "AccessDeniedException", DENIED_MESSAGE)
                return web.Response(status=status, headers=headers, body=payload)
            if fault is not None and fault.kind == "answer":
                content_type = {"Content-Type": request.headers["Content-Type"]}
                return web.Response(status=200, headers=content_type, body=fault.body)
            if fault is not None and fault.kind == "invalid":
                status, headers, payload = _error_response(
                    request.headers, "InvalidParameterValue", "The value for parameter MetricData.member.1 is invalid.",
                    "InvalidParameterValueException",
                )
                return web.Response(status=status, headers=headers, body=payload)
            page = 0
            if paging is not None:
                body, page = _page(body, paging[0], paging[1])
            if fault is not None and fault.kind == "error":
                return web.Response(status=fault.status, body=b"")
            if fault is not None and fault.kind == "drop":
                request.transport.close()
                raise asyncio.CancelledError
            if fault is not None and fault.kind == "delay":
                with self._lock:
                    self.delayed[operation] += 1
                await asyncio.sleep(fault.seconds)
                if request.transport is None or request.transport.is_closing():
                    raise asyncio.CancelledError  # the client is gone: nothing is forwarded
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body
            ) as upstream:
                payload = await upstream.read()
                with self._lock:
                    self.forwarded[operation] += 1
                if fault is not None and fault.kind == "drop_after":
                    request.transport.close()
                    raise asyncio.CancelledError
                out_headers = {
                    k: v
                    for k, v in upstream.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")
                }
                if paging is not None and upstream.status == 200:
                    key, size = paging
                    answer = json.loads(payload)
                    items = answer.get(key) or []
                    answer[key] = items[page * size : (page + 1) * size]
                    answer.pop("nextToken", None)
                    if (page + 1) * size < len(items):
                        answer["nextToken"] = f"page-{page + 1}"
                    payload = json.dumps(answer).encode()
                    out_headers = {k: v for k, v in out_headers.items() if not k.lower().startswith("x-amz-crc32")}
                return web.Response(status=upstream.status, headers=out_headers, body=payload)

        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", handle)
        # auto_decompress off: a gzip request body (botocore compresses PutMetricData bodies of
        # 10 KB and more) is forwarded as sent, with its Content-Encoding
        # shutdown_timeout: a request still held by a delay fault does not hold up the exit
        runner = web.AppRunner(app, access_log=None, auto_decompress=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await session.close()
            await runner.cleanup()
