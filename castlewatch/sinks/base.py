"""What every sink shares: the :class:`Sink` interface, its lifecycle, errors and the kind record.

A sink takes :class:`~castlewatch.model.Datapoint` objects the runner closed
(:mod:`castlewatch.engine.runner`) and delivers them somewhere: a file, stdout,
CloudWatch. Each sink kind lives in a module of its own in this package and is listed
in :mod:`castlewatch.sinks.registry` (one line), which :func:`~castlewatch.sinks.open_sink`
reads.

The interface is synchronous (``write``, ``flush``, ``close``): a file sink needs no more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SinkKind:
    """One sink kind, as :mod:`castlewatch.sinks.registry` lists it.

    Attributes:
        type: the config's ``type:`` (``"jsonl"``).
        open: ``open(spec, position) -> Sink`` (see :func:`~castlewatch.sinks.open_sink`).
        needs_path: whether a spec of this kind must have a ``path``.
    """

    type: str
    open: Callable[..., Sink]
    needs_path: bool = False
