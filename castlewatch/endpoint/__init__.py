"""``castlewatch serve``: a CloudWatch Logs endpoint that answers filter patterns exactly.

Any AWS SDK, the AWS CLI, Terraform or CDK tests point ``--endpoint-url`` at it:
TestMetricFilter is answered by castlewatch; in front of an upstream (LocalStack, moto),
FilterLogEvents with a pattern is answered exactly from the upstream's events,
PutMetricFilter and PutSubscriptionFilter are validated as the service validates them, and
every other call is forwarded unchanged. One module per concern:

- :mod:`.app`: the aiohttp server, routing, bounded request reading, the request log;
- :mod:`.test_metric_filter`, :mod:`.filter_log_events`, :mod:`.put_filters`: the operations;
- :mod:`.forward`: the upstream (forwarding, and castlewatch's own calls to it);
- :mod:`.shapes`: request bodies read against the API's shapes;
- :mod:`.errors`: the AWS JSON error answers; :mod:`.limits`: the API's and the server's bounds.
"""

from castlewatch.endpoint.app import Running, ServeConfig, build_app, serve, start
from castlewatch.endpoint.limits import ServeLimits

__all__ = ["Running", "ServeConfig", "ServeLimits", "build_app", "serve", "start"]
