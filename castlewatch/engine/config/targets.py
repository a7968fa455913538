"""The AWS targets of a configuration, and the command line's ``--region``, ``--profile``
and ``--endpoint-url`` over them.

A configuration names a target per ``cloudwatch_logs`` source and per ``cloudwatch`` /
``cloudwatch_dashboard`` sink (``region``, ``endpoint_url``; never credentials nor a
profile). Precedence, as the AWS CLI's (a flag, then the environment, then the AWS
config file), with the configuration file's settings as explicit ones:

1. a flag (:func:`with_aws_flags`), for every source and sink that talks to AWS;
2. the configuration file's ``region`` / ``endpoint_url`` of that source or sink;
3. the environment (``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
   ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``) and then the AWS config file
   (``~/.aws/config``, the profile's ``region``), both resolved by botocore.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from castlewatch.aws import AwsTarget
from castlewatch.engine.config.model import EngineConfig

__all__ = ["AWS_SINK_TYPES", "talks_to_aws", "with_aws_flags"]

#: Sink types that call AWS (and take ``region``, ``endpoint_url`` and a profile).
AWS_SINK_TYPES = frozenset({"cloudwatch", "cloudwatch_dashboard"})


def talks_to_aws(config: EngineConfig) -> bool:
    """Whether a source or a sink of ``config`` calls AWS."""
    return any(s.type == "cloudwatch_logs" for s in config.sources) or any(
        s.type in AWS_SINK_TYPES for s in config.sinks
    )


def _override(spec: Any, flags: AwsTarget) -> Any:
    changes = {
        name: value
        for name, value in (("region", flags.region), ("profile", flags.profile), ("endpoint_url", flags.endpoint_url))
        if value
    }
    return dataclasses.replace(spec, **changes) if changes else spec


def with_aws_flags(config: EngineConfig, flags: AwsTarget) -> EngineConfig:
    """``config`` with each field set in ``flags`` (``--region``, ``--profile``,
    ``--endpoint-url``) replacing that setting of every ``cloudwatch_logs`` source and
    every ``cloudwatch`` and ``cloudwatch_dashboard`` sink; fields left None keep the
    configuration's (then the standard AWS chain's). File sources and sinks are kept as
    they are."""
    if not (flags.region or flags.profile or flags.endpoint_url):
        return config
    sources = tuple(_override(s, flags) if s.type == "cloudwatch_logs" else s for s in config.sources)
    sinks = tuple(_override(s, flags) if s.type in AWS_SINK_TYPES else s for s in config.sinks)
    return dataclasses.replace(config, sources=sources, sinks=sinks)
