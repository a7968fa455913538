"""``castlewatch serve``: the CloudWatch Logs endpoint of :mod:`castlewatch.endpoint`."""

from __future__ import annotations

import asyncio
import ipaddress
import re

import click

from castlewatch.endpoint import ServeConfig, ServeLimits, serve
from castlewatch.engine.runner import install_signal_handlers, run_async

SERVE_EXIT_STATUSES = """\b
Exit status:
  0   stopped by SIGTERM or SIGINT
  2   invalid options, or the address cannot be listened on (in use, not local)
"""


_DEFAULTS = ServeLimits()


class ServeError(click.ClickException):
    """``Error: ...`` on stderr, exit 2."""

    exit_code = 2


def _upstream(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://[^\s/]+/?", value):
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL such as http://127.0.0.1:4566", ctx, param
        )
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve", epilog=SERVE_EXIT_STATUSES)
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on. Loopback by default: castlewatch serve checks no credentials.")
@click.option("--port", default=4599, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: a free one, named in the readiness line).")
@click.option("--upstream", metavar="URL", callback=_upstream,
              help="LocalStack or moto (e.g. http://127.0.0.1:4566): FilterLogEvents with a pattern is answered "
                   "from its events, PutMetricFilter and PutSubscriptionFilter are validated before they reach it, "
                   "every other call is forwarded unchanged. Without it: TestMetricFilter only.")
@click.option("--max-body-bytes", default=_DEFAULTS.max_body_bytes, show_default=True,
              type=click.IntRange(1024, None), help="Largest request body accepted (larger: 413).")
@click.option("--body-timeout", default=_DEFAULTS.body_timeout_s, show_default=True,
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time a request body may take to arrive (slower: 408).")
@click.option("--upstream-timeout", default=_DEFAULTS.upstream_timeout_s, show_default=True,
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time the upstream may take to answer one call (slower: 503 ServiceUnavailableException).")
@click.option("--quiet", is_flag=True, help="No request log (one line per request on stderr otherwise).")
def serve_command(host: str, port: int, upstream: str | None, max_body_bytes: int, body_timeout: float,
                  upstream_timeout: float, quiet: bool) -> None:
    """Serve the CloudWatch Logs API on HOST:PORT, answering filter patterns exactly.

    Point any AWS SDK, the AWS CLI, Terraform or CDK tests at it with --endpoint-url
    (or AWS_ENDPOINT_URL_CLOUDWATCH_LOGS):

    \b
      aws logs test-metric-filter --endpoint-url http://127.0.0.1:4599 \\
          --filter-pattern '{ $.level = "ERROR" }' --log-event-messages '{"level": "ERROR"}'

    TestMetricFilter is answered by castlewatch, with the service's answers and errors.
    With --upstream (LocalStack, moto): FilterLogEvents with a filterPattern returns exactly
    the events the pattern selects, paged as the service pages them; PutMetricFilter and
    PutSubscriptionFilter are refused with AWS's error where AWS would refuse them; every
    other call goes to the upstream unchanged. The upstream must not check request
    signatures (emulators do not).

    Once it accepts connections it prints 'castlewatch serve: listening on URL' on stderr;
    SIGTERM or SIGINT stops it cleanly. The request log (stderr) names each call's operation,
    status and time, never its headers, credentials or body.
    """
    try:
        limits = ServeLimits(max_body_bytes=max_body_bytes, body_timeout_s=body_timeout,
                             upstream_timeout_s=upstream_timeout)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    config = ServeConfig(host=host, port=port, upstream=upstream, limits=limits)
    if quiet:
        config.log = None
    if not _is_loopback(host):
        click.echo(f"Note: castlewatch serve on {host}: whoever reaches it may call it (it checks no credentials).",
                   err=True)

    async def main() -> None:
        stop = asyncio.Event()
        remove = install_signal_handlers(stop)
        try:
            await serve(config, stop)
        finally:
            remove()

    try:
        run_async(main())
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
