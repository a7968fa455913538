"""Errors ``castlewatch serve`` answers, in the AWS JSON 1.1 error shape.

An error answer is ``{"__type": CODE, "message": TEXT}`` with an HTTP status (botocore
reads the code from ``__type``, after any ``#``). CloudWatch Logs' own errors
(``InvalidParameterException``, ``LimitExceededException``, ...) are status 400 with the
service's messages (spec §11). Errors of the AWS JSON protocol layer carry the
``com.amazon.coral.service#`` prefix as AWS's JSON services answer them: an unknown
``X-Amz-Target`` is ``UnknownOperationException`` and a body that is not a JSON object of
the operation's shape is ``SerializationException``, both status 400 [report: AWS JSON
services' answers as emulators of them record]. Where castlewatch adds a message of its own
(a body too large or too slow, an unreachable upstream), it says so ("castlewatch serve:").
"""

from __future__ import annotations

import uuid

import orjson
from aiohttp import web

from castlewatch.endpoint.limits import JSON_CONTENT_TYPE
from castlewatch.grammar.errors import INVALID_PATTERN, FilterPatternError, InvalidParameterError
from castlewatch.metric_filters.errors import LimitExceededError, MetricFilterError

CORAL = "com.amazon.coral.service#"
UNKNOWN_OPERATION = CORAL + "UnknownOperationException"
SERIALIZATION = CORAL + "SerializationException"
INVALID_PARAMETER = "InvalidParameterException"
LIMIT_EXCEEDED = "LimitExceededException"
SERVICE_UNAVAILABLE = "ServiceUnavailableException"
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
#: castlewatch's own answers to a body too large or too slow to arrive, and to its own bug.
REQUEST_TOO_LARGE = "RequestEntityTooLargeException"
REQUEST_TIMEOUT = "RequestTimeoutException"
INTERNAL_FAILURE = "InternalFailure"

#: How each operation words "Invalid metric filter pattern" (the generic syntax error,
#: spec §11): FilterLogEvents says "Invalid filter pattern" [rec R-F]; PutSubscriptionFilter
#: keeps the metric filter wording [adopted: no recording].
PATTERN_WORDING = {"FilterLogEvents": "Invalid filter pattern"}


class ApiError(Exception):
    """An error answer: ``code`` (``__type``), ``message`` and HTTP ``status``.

    ``close`` asks for the connection to be closed after the answer (a body left unread).
    """

    def __init__(self, code: str, message: str, status: int = 400, *, close: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.close = close

    def response(self) -> web.Response:
        """The answer, with a request id as the service gives one."""
        body = orjson.dumps({"__type": self.code, "message": self.message})
        answer = web.Response(status=self.status, body=body, headers=json_headers())
        if self.close:
            answer.force_close()
        return answer


def json_headers() -> dict[str, str]:
    """Headers of an AWS JSON 1.1 answer: its content type and a fresh ``x-amzn-RequestId``."""
    return {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())}


def from_castlewatch(error: InvalidParameterError, operation: str) -> ApiError:
    """The service's answer to a request castlewatch's validation refused.

    ``FilterPatternError`` and ``MetricFilterError`` carry the service's ``message``
    (§11; :data:`PATTERN_WORDING` for the operation), ``LimitExceededError`` is
    ``LimitExceededException`` "Resource limit exceeded.", any other
    ``InvalidParameterError`` (TestMetricFilter's request limits) its text.
    """
    if isinstance(error, FilterPatternError):
        message = error.message
        if message == INVALID_PATTERN:
            message = PATTERN_WORDING.get(operation, message)
        return ApiError(INVALID_PARAMETER, message)
    if isinstance(error, LimitExceededError):
        return ApiError(LIMIT_EXCEEDED, error.message)
    if isinstance(error, MetricFilterError):
        return ApiError(INVALID_PARAMETER, error.message)
    return ApiError(error.code, str(error))
