"""TestMetricFilter, answered by castlewatch (spec §7).

Request ``{"filterPattern": str, "logEventMessages": [str, ...]}``; answer ``{"matches":
[{"eventNumber", "eventMessage", "extractedValues"}]}``, computed by
:func:`castlewatch.grammar.test_metric_filter`, the one implementation that
``castlewatch test-metric-filter`` prints too. Errors: ``InvalidParameterException`` with
the service's message for an invalid pattern (§11) and for the request limits (1 to 50
messages of at least one character, a pattern of at most 1024 characters).
"""

from __future__ import annotations

from typing import Any

from castlewatch.endpoint.errors import from_castlewatch
from castlewatch.endpoint.shapes import Call, member, string_list
from castlewatch.grammar import test_metric_filter
from castlewatch.grammar.errors import InvalidParameterError


async def handle(call: Call) -> dict[str, Any]:
    """The TestMetricFilter answer to ``call``.

    Raises:
        ApiError: ``SerializationException`` for members of the wrong JSON type,
            ``InvalidParameterException`` for a missing member, the request limits or an
            invalid pattern (the service's message).
    """
    filter_pattern = member(call.payload, "filterPattern", str, required=True)
    messages = string_list(call.payload, "logEventMessages", required=True)
    try:
        return test_metric_filter(filter_pattern, messages)
    except InvalidParameterError as error:
        raise from_castlewatch(error, call.operation) from None
