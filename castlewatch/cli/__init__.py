"""The ``castlewatch`` command line (entry point :func:`main`, a click group).

``main`` is imported on first use, so that :mod:`castlewatch.cli.program` starts before
the command line's imports (which it runs under its ``setting_up``)."""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name == "main":
        from castlewatch.cli.commands import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
