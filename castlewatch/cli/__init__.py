"""The ``castlewatch`` command line (entry point :func:`main`, a click group)."""

from castlewatch.cli.commands import main

__all__ = ["main"]
