"""The limits ``castlewatch serve`` keeps: the CloudWatch Logs API's, and its own as a server.

The API's limits come from the API reference and botocore's model of CloudWatch Logs
(``botocore/data/logs/2014-03-28/service-2.json``): ``TestEventMessages`` 1-50,
``FilterPattern`` 0-1024 (both checked by :func:`castlewatch.grammar.check_test_request`),
``EventsLimit`` 1-10,000, and FilterLogEvents' pages of "up to 1 MB of log events or up to
10,000 log events" (API_FilterLogEvents).

The server's own limits bound what one client can cost: the request body's size and the
time it may take to arrive, the time an upstream may take, and the upstream pages one
FilterLogEvents call may read before it answers with a partial page and a ``nextToken``
(as the service itself may: "A returned page might only be partially full, or even
empty").
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``X-Amz-Target`` of CloudWatch Logs operations: ``Logs_20140328.<Operation>``.
TARGET_PREFIX = "Logs_20140328."
#: The AWS JSON 1.1 content type of requests and answers.
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

#: FilterLogEvents ``limit``: 1 to 10,000 events, 10,000 when not given (EventsLimit).
MAX_FILTER_EVENTS = 10_000
#: FilterLogEvents: a page holds at most 1 MB of log events (API_FilterLogEvents). castlewatch
#: keeps the whole answer's body within 1 MiB (1,048,576 bytes) [adopted: how the service
#: counts the megabyte is not documented].
FILTER_PAGE_BYTES = 1 << 20
#: Room kept in a page for everything but the events: the envelope and the ``nextToken``.
FILTER_PAGE_ENVELOPE_BYTES = 4096

#: PutSubscriptionFilter: "Each log group can have up to two subscription filters"
#: (API_PutSubscriptionFilter); a third is ``LimitExceededException``.
MAX_SUBSCRIPTION_FILTERS = 2


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """The server's own bounds.

    Attributes:
        max_body_bytes: largest request body read, in bytes (larger: 413). The default,
            8 MiB, holds the largest valid PutLogEvents call (1,048,576 bytes of events,
            as JSON with every character escaped).
        body_timeout_s: seconds a request body may take to arrive (slower: 408).
        upstream_timeout_s: seconds the upstream may take to answer one call (slower: 503).
        upstream_page_size: ``limit`` of the FilterLogEvents calls made to the upstream
            (events per upstream page).
        upstream_pages_per_call: upstream pages one FilterLogEvents call reads at most
            before answering with what it found and a ``nextToken``.
        shutdown_timeout_s: seconds given to open requests when the server stops.
    """

    max_body_bytes: int = 8 << 20
    body_timeout_s: float = 30.0
    upstream_timeout_s: float = 60.0
    upstream_page_size: int = MAX_FILTER_EVENTS
    upstream_pages_per_call: int = 50
    shutdown_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, not {self.max_body_bytes}")
        if not 1 <= self.upstream_page_size <= MAX_FILTER_EVENTS:
            raise ValueError(f"upstream_page_size must be 1 to {MAX_FILTER_EVENTS}, not {self.upstream_page_size}")
        if self.upstream_pages_per_call < 1:
            raise ValueError(f"upstream_pages_per_call must be at least 1, not {self.upstream_pages_per_call}")
        for name in ("body_timeout_s", "upstream_timeout_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
