"""What every sink shares: the :class:`Sink` interface, its lifecycle, errors and the kind record.

A sink takes :class:`~castlewatch.model.Datapoint` objects the runner closed
(:mod:`castlewatch.engine.runner`) and delivers them somewhere: a file, stdout,
CloudWatch. Each sink kind lives in a module of its own in this package and is listed
in :mod:`castlewatch.sinks.registry` (one line), which :func:`~castlewatch.sinks.open_sink`
reads.

The interface is synchronous (``write``, ``flush``, ``close``): a file sink needs no more.
A sink that talks to a service (CloudWatch) also has an asynchronous lifecycle, whose
defaults :class:`SinkBase` gives:

- ``start(mode)`` on the event loop before the first write (``"replay"`` or ``"run"``):
  open clients, start a publisher task;
- ``flush_async()``: ``flush()`` without blocking the event loop (default: in a thread);
- ``committed(position)``: the checkpoint holding ``position`` (what ``flush`` returned)
  is durable, so what the sink wrote up to it will never be produced again: only then may
  it be sent where it cannot be taken back (exactly-once, :mod:`castlewatch.engine.runner`);
  a run without a checkpoint commits each flush at once;
- ``finish()``: the run is over (everything flushed and committed): deliver what is
  pending, in a bounded time;
- ``aclose()``: stop background work and ``close()``;
- ``counters()``: the sink's delivery counters for :class:`~castlewatch.model.Stats`
  (``published``, ``refused``, ``unknown_outcomes``, ``unpublished``), or None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from castlewatch.model import Datapoint


class SinkError(ValueError):
    """A sink cannot be opened as asked.

    Raised for an invalid :class:`~castlewatch.sinks.SinkSpec` (unknown type, missing
    path), an invalid resume position, a file shorter than the checkpoint position (it
    was replaced or truncated behind castlewatch's back), an Avro file that is not a
    container file or was written with another schema, and for writes after ``close()``.
    OS errors (permissions, full disk) are raised as the usual ``OSError``.
    """


@runtime_checkable
class Sink(Protocol):
    """What the runner writes datapoints to."""

    def write(self, datapoints: list[Datapoint]) -> None:
        """Write the datapoints (cheap: no fsync; may stay in memory until ``flush``)."""
        ...

    def flush(self) -> Any:
        """Make everything written durable; return the checkpoint position or None."""
        ...

    def close(self) -> None:
        """Flush (durably) and release the file; idempotent."""
        ...


class PublishError(Exception):
    """A sink could not deliver its datapoints: the service refused them for good
    (AccessDenied, ...) or stayed unreachable longer than the sink waits.

    ``str()`` is one line saying why, how many datums were not published and where they
    are kept.

    Attributes:
        unpublished: datums not published.
        kept_in: the file holding them (None if nothing is kept).
        denied: the service denied the call (AccessDenied, no or invalid credentials:
            :func:`castlewatch.aws.is_denied`).
    """

    def __init__(
        self, message: str, unpublished: int = 0, kept_in: str | None = None, *, denied: bool = False
    ) -> None:
        super().__init__(message)
        self.unpublished = unpublished
        self.kept_in = kept_in
        self.denied = denied


class SinkBase:
    """The lifecycle defaults (see the module docstring): nothing asynchronous to do."""

    async def start(self, mode: str) -> None:
        """Called once on the event loop before the first write; ``mode`` is ``"replay"`` or ``"run"``."""

    async def flush_async(self) -> Any:
        """``flush()`` in a thread, so that an fsync does not block the event loop."""
        return await asyncio.to_thread(self.flush)  # type: ignore[attr-defined]

    def committed(self, position: Any) -> None:
        """The checkpoint holding ``position`` (returned by ``flush``) is durable."""

    async def finish(self) -> None:
        """The run is over, everything flushed and committed: deliver what is pending.

        Raises:
            PublishError: what is pending could not be delivered.
        """

    async def aclose(self) -> None:
        """Stop background work, then ``close()``."""
        self.close()  # type: ignore[attr-defined]

    def counters(self) -> dict[str, Any] | None:
        """Delivery counters (``published``, ``refused``, ``unknown_outcomes``,
        ``unpublished``) for :class:`~castlewatch.model.Stats`, or None for a sink that
        keeps none."""
        return None


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need from the run that opens it.

    Attributes:
        index: the sink's place in the configuration's ``sinks`` (0-based).
        config: the :class:`~castlewatch.engine.config.EngineConfig` (metric filters,
            discovered log groups, the configuration file).
        checkpoint: the run's checkpoint file; None when nothing resumes this run (``replay``).
    """

    index: int = 0
    config: Any = None
    checkpoint: Path | None = None


@dataclass(frozen=True)
class SinkKind:
    """One sink kind, as :mod:`castlewatch.sinks.registry` lists it.

    Attributes:
        type: the config's ``type:`` (``"jsonl"``).
        open: ``open(spec, position, context) -> Sink`` (see :func:`~castlewatch.sinks.open_sink`;
            ``context`` is a :class:`SinkContext`).
        needs_path: whether a spec of this kind must have a ``path``.
        from_entry: ``from_entry(entry, resolve) -> SinkSpec``: the spec of a decoded
            configuration entry (its Struct in :mod:`castlewatch.engine.config.schema`),
            ``resolve`` making a relative path absolute; None: a ``path`` spec.
        check: ``check(spec, config) -> (key, reason) | None``: what is wrong with the spec
            given the rest of the configuration (an ``EngineConfig``: metric filters,
            discovered log groups), checked when the configuration is loaded and again
            before any sink is opened (None: nothing to check).
    """

    type: str
    open: Callable[..., Sink]
    needs_path: bool = False
    from_entry: Callable[..., Any] | None = None
    check: Callable[..., tuple[str, str] | None] | None = None
