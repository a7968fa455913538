"""The ``castlewatch`` program (the console script and ``python -m castlewatch``): :func:`run`.

It runs the command line (:func:`castlewatch.cli.main`) and exits as Python would,
except after a command that has closed everything it wrote and called
:func:`may_end_at_once` (``replay``): then the process ends once the ``atexit``
functions have run and stdout and stderr are flushed, without tearing the interpreter
down. Freeing every module and object one by one costs a ``replay`` of 500,000 flow log
lines about 40 ms (4% of its run, issue 11) and changes nothing outside the process.

Imports and the set-up of a command run under :func:`setting_up`: without the cyclic
garbage collector, whose passes over the growing heap of modules, classes and compiled
patterns are about 4% of the instructions ``replay`` spends before its first event.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

_at_once = False


def may_end_at_once() -> None:
    """Declare that the running command has closed every file and connection it wrote to
    (its sinks flushed and closed): the process may end without the interpreter's teardown."""
    global _at_once
    _at_once = True


def run() -> NoReturn:
    """Run the ``castlewatch`` command line with the process's arguments and exit with its
    status (see the module docstring). Exceptions other than ``SystemExit`` propagate."""
    # castlewatch does no linear algebra: the threads numpy's OpenBLAS starts would only spin
    # (about 0.1 s of CPU a run, on the cores a backfill's workers use); set before numpy loads
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with setting_up():
        from castlewatch.cli.commands import main

    try:
        main(prog_name="castlewatch")
    except SystemExit as exc:
        end(exc.code)
    end(0)


@contextmanager
def setting_up() -> Iterator[None]:
    """Run the block (imports, building an engine: objects that live as long as the
    process) without the cyclic garbage collector, then move every object alive into
    the collector's permanent generation (:func:`gc.freeze`, never scanned again) and
    turn the collector back on as it was. Nested blocks end with the outermost.

    A cycle that becomes garbage among the frozen objects is not collected: only what
    the block made for the whole process belongs in it, never per-event work.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def end(code: int | str | None) -> NoReturn:
    """Exit with ``code`` as ``sys.exit(code)`` does; at once when :func:`may_end_at_once`
    was called and no other thread runs (module docstring)."""
    if not _at_once or threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # what an ordinary exit runs (they are not run twice)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the ordinary exit reports it as it always has
        sys.exit(code)
    os._exit(code)
