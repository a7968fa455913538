"""The upstream: LocalStack, moto, or any CloudWatch Logs endpoint that does not check
request signatures.

:meth:`Upstream.forward` passes a request on unchanged (method, path, query, headers, body)
and its answer back unchanged (status, headers, body), so that a client can use
``castlewatch serve`` as its only endpoint. :meth:`Upstream.call` makes a CloudWatch Logs
call of castlewatch's own on behalf of a client (the FilterLogEvents pages it reads, the
filters a Put is checked against), with the client's headers (its ``Authorization`` names
the account and region an emulator files the call under) and a body castlewatch wrote.
Since that body is not the one the client signed, the upstream must not check
signatures: emulators do not; AWS itself would refuse the call.

Bodies go through as bytes (no decompression either way); hop-by-hop headers
(``Connection``, ``Transfer-Encoding``...) and ``Host`` / ``Content-Length`` are left to
each connection. Nothing here logs a header.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from castlewatch.endpoint.errors import SERVICE_UNAVAILABLE, ApiError
from castlewatch.endpoint.limits import JSON_CONTENT_TYPE, TARGET_PREFIX

#: Headers that belong to one connection (RFC 9110 §7.6.1), and those each hop sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect",
    }
)  # fmt: skip

#: Headers of the client's request that castlewatch's own calls set for themselves.
_REPLACED_IN_CALLS = frozenset({"x-amz-target", "content-type", "content-encoding", "accept-encoding"})


def _end_to_end(headers) -> CIMultiDict[str]:
    """``headers`` without the hop-by-hop ones (repeated headers kept)."""
    return CIMultiDict((key, value) for key, value in headers.items() if key.lower() not in _HOP_BY_HOP)


class Upstream:
    """A CloudWatch Logs endpoint behind ``castlewatch serve``.

    Args:
        url: e.g. ``http://127.0.0.1:4566`` (LocalStack) or a moto server.
        timeout_s: seconds one upstream call may take (connecting included).

    Use :meth:`open` before the first call and :meth:`close` at the end.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Start the connection pool (on the running event loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _send(self, method: str, path_qs: str, headers: CIMultiDict[str], body: bytes) -> tuple[int, Any, bytes]:
        """One HTTP exchange: ``(status, headers, body)``.

        Raises:
            ApiError: ``ServiceUnavailableException`` (503) when the upstream cannot be
                reached, drops the connection or takes longer than ``timeout_s``.
        """
        assert self._session is not None, "Upstream.open() first"
        try:
            async with self._session.request(
                method, self.url + path_qs, headers=headers, data=body, allow_redirects=False
            ) as answer:
                return answer.status, answer.headers, await answer.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            why = "no answer within %g s" % self.timeout_s if isinstance(error, asyncio.TimeoutError) else (
                f"{type(error).__name__}: {error}"
            )
            raise ApiError(
                SERVICE_UNAVAILABLE, f"castlewatch serve: the upstream {self.url} did not answer ({why})", 503
            ) from None

    async def forward(self, request: web.Request, body: bytes) -> web.Response:
        """``request`` (whose body, already read, is ``body``) sent on unchanged, and the
        upstream's answer as it came.

        Raises:
            ApiError: the upstream cannot be reached (503).
        """
        status, headers, payload = await self._send(request.method, request.path_qs, _end_to_end(request.headers), body)
        return web.Response(status=status, headers=_end_to_end(headers), body=payload)

    async def call(self, request: web.Request, operation: str, payload: dict[str, Any]) -> "UpstreamAnswer":
        """The CloudWatch Logs ``operation`` with ``payload`` as its body, sent with the
        headers of the client's ``request`` (its credentials scope, user agent...).

        Raises:
            ApiError: the upstream cannot be reached (503).
        """
        headers = CIMultiDict(
            (key, value) for key, value in _end_to_end(request.headers).items() if key.lower() not in _REPLACED_IN_CALLS
        )
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
        headers["Content-Type"] = JSON_CONTENT_TYPE
        headers["Accept-Encoding"] = "identity"  # castlewatch reads this answer
        status, answer_headers, body = await self._send("POST", "/", headers, orjson.dumps(payload))
        return UpstreamAnswer(status, answer_headers, body)


class UpstreamAnswer:
    """An upstream's answer to :meth:`Upstream.call`: ``status``, ``headers``, ``body``."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> dict[str, Any]:
        """The decoded body of a 200 answer.

        Raises:
            ApiError: ``ServiceUnavailableException`` (503) when it is not a JSON object.
        """
        try:
            data = orjson.loads(self.body or b"{}")
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(SERVICE_UNAVAILABLE, "castlewatch serve: the upstream answered with something not JSON", 503)
        return data

    def error_code(self) -> str:
        """The AWS error code of an error answer (``__type`` after any ``#``), else ``""``."""
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return ""
        code = data.get("__type", "") if isinstance(data, dict) else ""
        return code.rsplit("#", 1)[-1] if isinstance(code, str) else ""

    def response(self) -> web.Response:
        """The answer, passed back to the client unchanged (an upstream error as it came)."""
        return web.Response(status=self.status, headers=_end_to_end(self.headers), body=self.body)
