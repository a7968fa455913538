"""FilterLogEvents with a ``filterPattern``, answered exactly in front of an upstream (spec §1:
one pattern language for metric filters, subscription filters and FilterLogEvents).

LocalStack and moto return every event for JSON and space-delimited patterns. castlewatch
reads the events from the upstream *without* the pattern (the request's log group, streams,
prefix and time range unchanged, following the upstream's pages), keeps those the pattern
matches, and pages its own answer:

- at most ``limit`` events (1-10,000; 10,000 when not given) and 1 MB per page
  (:data:`~castlewatch.endpoint.limits.FILTER_PAGE_BYTES`), at least one event per
  non-empty page;
- ``nextToken`` while events may remain; a page may hold fewer events than ``limit``,
  even none, when one call has read ``upstream_pages_per_call`` upstream pages (as the
  service's own pages may, API_FilterLogEvents); no ``nextToken`` once the upstream has no
  more;
- ``searchedLogStreams`` is ``[]``: the service has returned an empty list since May 15,
  2020 (API_FilterLogEvents);
- the events are the upstream's, in its order, unchanged.

A ``nextToken`` is castlewatch's: the upstream's token of the upstream page it stopped in,
the number of that page's events already read, and the upstream page size, so that the
next call reads the same upstream page again and continues after them. It holds a digest
of the request's other members: a token given with another log group, pattern or time
range is "The specified nextToken is invalid." (``InvalidParameterException``, as the
service says of a token it did not issue for the request) [adopted: wording as moto's].

Errors: the service's validation messages for ``limit`` and ``nextToken``; an invalid
pattern with FilterLogEvents' wording ("Invalid filter pattern" for the generic syntax
error, [rec R-F]); an upstream error (a missing log group...) passed back as it came.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from castlewatch.endpoint.errors import INVALID_PARAMETER, ApiError, from_castlewatch
from castlewatch.endpoint.limits import FILTER_PAGE_BYTES, FILTER_PAGE_ENVELOPE_BYTES, MAX_FILTER_EVENTS
from castlewatch.endpoint.shapes import Call, member
from castlewatch.grammar import FilterPattern, compile_pattern
from castlewatch.grammar.errors import FilterPatternError, validation_errors

INVALID_TOKEN = "The specified nextToken is invalid."
_TOKEN_PREFIX = "cw1."
#: Members castlewatch sets itself in its calls to the upstream.
_PAGING_MEMBERS = ("filterPattern", "nextToken", "limit")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a FilterLogEvents answer stopped in the upstream's events.

    Attributes:
        upstream_token: the upstream's ``nextToken`` that gives the upstream page (None:
            the first page).
        skip: events of that page already read.
        page_size: the ``limit`` of the upstream calls (their pages must be the same again).
    """

    upstream_token: str | None
    skip: int
    page_size: int


def encode_token(position: Position, digest: str) -> str:
    """The ``nextToken`` castlewatch answers for ``position`` of the request of ``digest``."""
    data = orjson.dumps([position.upstream_token, position.skip, position.page_size, digest])
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_token(token: str, digest: str) -> Position:
    """The position a ``nextToken`` of castlewatch's holds.

    Raises:
        ApiError: ``InvalidParameterException`` "The specified nextToken is invalid." for a
            token castlewatch did not issue, or issued for another request.
    """
    try:
        if not token.startswith(_TOKEN_PREFIX):
            raise ValueError(token)
        text = token[len(_TOKEN_PREFIX) :]
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        upstream_token, skip, page_size, issued_for = orjson.loads(data)
        valid = (
            (upstream_token is None or (isinstance(upstream_token, str) and upstream_token))
            and type(skip) is int and skip >= 0
            and type(page_size) is int and 1 <= page_size <= MAX_FILTER_EVENTS
            and issued_for == digest
        )  # fmt: skip
    except (ValueError, TypeError, orjson.JSONDecodeError):
        valid = False
    if not valid:
        raise ApiError(INVALID_PARAMETER, INVALID_TOKEN)
    return Position(upstream_token, skip, page_size)


def request_digest(payload: dict[str, Any]) -> str:
    """A digest of the request's members other than ``nextToken`` and ``limit`` (a client
    may change its ``limit`` from page to page)."""
    kept = {key: value for key, value in payload.items() if key not in ("nextToken", "limit")}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _limit(payload: dict[str, Any]) -> int:
    limit = member(payload, "limit", int)
    if limit is None:
        return MAX_FILTER_EVENTS
    if limit < 1:
        raise ApiError(
            INVALID_PARAMETER, validation_errors(("limit", "Member must have value greater than or equal to 1"))
        )
    if limit > MAX_FILTER_EVENTS:
        raise ApiError(
            INVALID_PARAMETER,
            validation_errors(("limit", f"Member must have value less than or equal to {MAX_FILTER_EVENTS}")),
        )
    return limit


async def handle(call: Call) -> dict[str, Any] | web.Response:
    """The FilterLogEvents answer to ``call`` (which has a ``filterPattern`` and an upstream).

    Returns:
        ``{"events": [...], "searchedLogStreams": [], "nextToken"?: str}``, or the
        upstream's own answer when it refused a call (unchanged).

    Raises:
        ApiError: an invalid ``limit``, ``nextToken`` or pattern; an unreachable upstream.
    """
    payload = call.payload
    filter_pattern = member(payload, "filterPattern", str)
    limit = _limit(payload)
    token = member(payload, "nextToken", str)
    if token == "":
        raise ApiError(
            INVALID_PARAMETER, validation_errors(("nextToken", "Member must have length greater than or equal to 1"))
        )
    try:
        pattern = compile_pattern(filter_pattern or "")
    except FilterPatternError as error:
        raise from_castlewatch(error, call.operation) from None
    digest = request_digest(payload)
    if token is None:
        start = Position(None, 0, call.limits.upstream_page_size)
    else:
        start = decode_token(token, digest)
    found = await _collect(call, pattern, start, limit)
    if isinstance(found, web.Response):
        return found
    events, stop = found
    answer: dict[str, Any] = {"events": events, "searchedLogStreams": []}
    if stop is not None:
        answer["nextToken"] = encode_token(stop, digest)
    return answer


async def _collect(
    call: Call, pattern: FilterPattern, start: Position, limit: int
) -> tuple[list[dict[str, Any]], Position | None] | web.Response:
    """The matching events from ``start`` on, and where the next page starts (None: no more)."""
    assert call.upstream is not None
    base = {key: value for key, value in call.payload.items() if key not in _PAGING_MEMBERS}
    budget = FILTER_PAGE_BYTES - FILTER_PAGE_ENVELOPE_BYTES
    events: list[dict[str, Any]] = []
    size = 0
    upstream_token, skip, page_size = start.upstream_token, start.skip, start.page_size
    for _ in range(call.limits.upstream_pages_per_call):
        request = {**base, "limit": page_size}
        if upstream_token is not None:
            request["nextToken"] = upstream_token
        answer = await call.upstream.call(call.request, "FilterLogEvents", request)
        if not answer.ok:
            return answer.response()
        data = answer.json()
        page = data.get("events") or []
        next_token = data.get("nextToken") or None
        for index in range(skip, len(page)):
            event = page[index]
            message = event.get("message") if isinstance(event, dict) else None
            if not isinstance(message, str) or not pattern.matches(message):
                continue
            event_bytes = len(orjson.dumps(event)) + 1
            if events and size + event_bytes > budget:
                return events, Position(upstream_token, index, page_size)
            events.append(event)
            size += event_bytes
            if len(events) >= limit:
                if index + 1 < len(page):
                    return events, Position(upstream_token, index + 1, page_size)
                return events, (Position(next_token, 0, page_size) if _advances(next_token, upstream_token) else None)
        if not _advances(next_token, upstream_token):
            return events, None
        upstream_token, skip = next_token, 0
    return events, Position(upstream_token, 0, page_size)


def _advances(next_token: str | None, token: str | None) -> bool:
    """Whether the upstream's ``next_token`` leads further (a token equal to the one just
    used would read the same page again)."""
    return next_token is not None and next_token != token
