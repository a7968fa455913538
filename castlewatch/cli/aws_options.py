"""``--region``, ``--profile`` and ``--endpoint-url``, as the AWS CLI has them.

They are accepted before the command (``castlewatch --region eu-west-1 run ...``, as
``aws --region eu-west-1 logs ...``) and after it (``castlewatch run --region ...``); the
command's own flag wins over the group's. Precedence over the configuration and the
environment: :mod:`castlewatch.engine.config.targets`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from castlewatch.aws import AwsTarget

#: Where the group's flags are kept in the root context's ``meta``.
_META_KEY = "castlewatch.aws_flags"
# botocore's check of a region name (a host label: botocore.utils.validate_region_name)
_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")

REGION_HELP = (
    "AWS Region of every cloudwatch_logs source and CloudWatch sink (cloudwatch, cloudwatch_dashboard): "
    "overrides their region setting in the config file. Without it: that setting, then AWS_REGION / "
    "AWS_DEFAULT_REGION, then the profile's region in ~/.aws/config."
)
PROFILE_HELP = (
    "AWS profile (~/.aws/config, ~/.aws/credentials) of every AWS call: overrides AWS_PROFILE. "
    "Credentials always come from the standard AWS chain, never from the config file."
)
ENDPOINT_HELP = (
    "Send every CloudWatch Logs and CloudWatch call to URL (LocalStack, moto): overrides the endpoint_url "
    "setting of every cloudwatch_logs source and CloudWatch sink in the config file. Without it: that setting, "
    "then AWS_ENDPOINT_URL_CLOUDWATCH_LOGS / AWS_ENDPOINT_URL_CLOUDWATCH / AWS_ENDPOINT_URL, then ~/.aws/config."
)


def _region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _REGION.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a region name such as us-east-1", ctx, param)
    return value


def _endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"https?://\S+", value):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL such as http://127.0.0.1:4566", ctx,
                                 param)
    return value


def _profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return value
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    try:
        botocore.session.Session(profile=value).get_scoped_config()
    except ProfileNotFound:
        raise click.BadParameter(
            f"no profile {value!r} in the AWS config files (AWS_CONFIG_FILE or ~/.aws/config, "
            "AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)",
            ctx,
            param,
        ) from None
    return value


def _options(expose_value: bool, callback: Callable | None = None) -> list[Callable]:
    def store(name: str, check: Callable) -> Callable:
        def both(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
            value = check(ctx, param, value)
            if callback is not None:
                callback(ctx, name, value)
            return value

        return both

    return [
        click.option("--region", metavar="REGION", help=REGION_HELP, expose_value=expose_value,
                     callback=store("region", _region)),
        click.option("--profile", metavar="PROFILE", help=PROFILE_HELP, expose_value=expose_value,
                     callback=store("profile", _profile)),
        click.option("--endpoint-url", metavar="URL", help=ENDPOINT_HELP, expose_value=expose_value,
                     callback=store("endpoint_url", _endpoint)),
    ]


def _keep_in_root(ctx: click.Context, name: str, value: Any) -> None:
    if value is not None:
        flags = ctx.find_root().meta.setdefault(_META_KEY, {})
        flags[name] = value


def group_aws_options(f: Callable) -> Callable:
    """The three flags on the ``castlewatch`` group: kept for the command that follows."""
    for option in reversed(_options(False, _keep_in_root)):
        f = option(f)
    return f


def aws_options(f: Callable) -> Callable:
    """The three flags on a command that talks to AWS; its function gets ``region``,
    ``profile`` and ``endpoint_url`` (read them with :func:`aws_flags`)."""
    for option in reversed(_options(True)):
        f = option(f)
    return f


def aws_flags(region: str | None, profile: str | None, endpoint_url: str | None) -> AwsTarget:
    """The flags of the command, over those given before it (``castlewatch --region R CMD``)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.find_root().meta.get(_META_KEY, {}) if ctx is not None else {}
    return AwsTarget(**given).merged(AwsTarget(region=region, profile=profile, endpoint_url=endpoint_url))
