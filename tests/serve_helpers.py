"""``castlewatch serve`` for the tests: the real server (aiohttp, castlewatch.endpoint) in a
thread of its own on 127.0.0.1 and a free port, and real botocore clients pointed at it.

Nothing here mocks a component: the server answers real HTTP requests, and an upstream is
a real moto server.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from typing import Any

import botocore.session
from botocore.config import Config

from castlewatch.endpoint import ServeConfig, ServeLimits, start


class ServeThread:
    """``castlewatch serve`` with ``config`` (port 0) running in a thread; ``url`` once
    entered. ``lines`` collects its log lines (readiness aside)."""

    def __init__(self, upstream: str | None = None, **limits: Any) -> None:
        self.lines: list[str] = []
        self.config = ServeConfig(
            host="127.0.0.1", port=0, upstream=upstream, limits=ServeLimits(**limits), log=self.lines.append
        )
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="castlewatch-serve", daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            running = await start(self.config)
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self.url = running.url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await running.runner.cleanup()

    def __enter__(self) -> "ServeThread":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("castlewatch serve did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "castlewatch serve did not stop"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@functools.cache
def _session() -> botocore.session.Session:
    """One botocore session for the tests' clients (making one loads the models again)."""
    return botocore.session.Session()


def logs_client(url: str, *, validate: bool = True, read_timeout: float = 10):
    """A botocore CloudWatch Logs client for ``url`` (fake credentials, us-east-1, no
    retries); ``validate=False`` lets invalid requests reach the server."""
    return _session().create_client(
        "logs",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDTESTING",
        aws_secret_access_key="castlewatch-test-secret",
        config=Config(
            retries={"total_max_attempts": 1},
            parameter_validation=validate,
            read_timeout=read_timeout,
            connect_timeout=5,
        ),
    )


def raw_request(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send ``data`` (a whole HTTP request) on a new connection; the bytes of the answer,
    read until it is complete (its ``Content-Length``), the server closes the connection,
    or ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all
        received = b""
        while not answer_complete(received):
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return received


def answer_complete(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False
