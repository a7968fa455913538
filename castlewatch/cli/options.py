"""An option that takes several values after one flag, as the AWS CLI's options do.

The AWS CLI (argparse, ``nargs='+'``) reads ``--log-event-messages A B C`` as three
messages. click gives an option a fixed number of values, so :class:`MultiValueCommand`
rewrites the arguments before click parses them: every value that follows a
:class:`MultiValueOption` flag gets a flag of its own, and click's ``multiple=True``
collects them. A value that looks like an option has to be attached with ``=``
(``--log-event-messages=-x``), as with the AWS CLI; more values may follow it.
"""

from __future__ import annotations

import re

import click

# argparse reads these as values even though they start with "-".
_NEGATIVE_NUMBER = re.compile(r"-\d+$|-\d*\.\d+$")


class MultiValueOption(click.Option):
    """A ``multiple=True`` option whose flag may be followed by several values.

    Only works on a :class:`MultiValueCommand`; the parameter's value is a tuple of
    strings in command-line order (values of repeated flags are appended).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)


class MultiValueCommand(click.Command):
    """A command whose :class:`MultiValueOption` flags take every value that follows.

    Values run up to the next token that looks like an option, as argparse decides it:
    a token starting with ``-`` is a value only if it is ``-`` itself, a negative
    number, or contains a space. After ``--`` nothing is rewritten.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags = {
            flag
            for param in self.get_params(ctx)
            if isinstance(param, MultiValueOption)
            for flag in param.opts
        }
        return super().parse_args(ctx, _spread_values(ctx, args, flags))


def _spread_values(ctx: click.Context, args: list[str], flags: set[str]) -> list[str]:
    """``[F, a, b]`` becomes ``[F, a, F, b]`` (and ``[F=a, b]`` ``[F=a, F, b]``) for each F in ``flags``."""
    spread: list[str] = []
    position = 0
    while position < len(args):
        token = args[position]
        position += 1
        if token == "--":
            spread.append(token)
            spread.extend(args[position:])
            break
        flag, equals, _ = token.partition("=")
        if flag not in flags:
            spread.append(token)
            continue
        if equals:
            spread.append(token)
        start = position
        while position < len(args) and not _looks_like_option(args[position]):
            spread += [flag, args[position]]
            position += 1
        if position == start and not equals:
            ctx.fail(
                f"Option '{token}' expects one or more values. "
                f"Attach a value that starts with '-' with '=': {token}=-value"
            )
    return spread


def _looks_like_option(token: str) -> bool:
    return (
        token.startswith("-")
        and token != "-"
        and " " not in token
        and not _NEGATIVE_NUMBER.match(token)
    )
