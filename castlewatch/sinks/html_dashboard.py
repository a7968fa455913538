"""Local dashboard page sink (``type: html_dashboard``): the CloudWatch dashboard as one HTML file.

The page :mod:`castlewatch.dashboard_page` draws (the widgets the ``cloudwatch_dashboard``
sink would put, filled with the datapoints written to this sink), one self-contained file
that opens offline; ``castlewatch dashboard`` draws the same page from a file sink's
datapoints afterwards. It is rewritten whole (a temporary file renamed over it) at each
flush after new datapoints: at the end of a ``replay``, and in ``run`` at each checkpoint
after a minute closed. It keeps the last ``max_minutes`` minutes up to the newest datapoint
(:class:`~castlewatch.dashboard_data.MinuteSums`).

A ``run`` that resumes from a checkpoint fills the page first from the configuration's
``jsonl``, ``avro`` or ``csv`` sink (by then truncated back to the checkpoint), so the
restarted daemon's page still shows the minutes written before; without such a sink it
starts empty. Its checkpoint position is ``{"page": 1}``: the page holds nothing that a
restart needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castlewatch.dashboard_data import MinuteSums, datapoint_file, read_datapoints
from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkBase, SinkContext, SinkError, SinkKind
from castlewatch.sinks.registry import SinkSpec

#: Minutes a page keeps by default (a week, up to the newest datapoint).
DEFAULT_MAX_MINUTES = 10_080


@dataclass(frozen=True, kw_only=True)
class HtmlDashboardSinkSpec(SinkSpec):
    """``type: html_dashboard``.

    Attributes:
        path: the HTML file.
        max_minutes: minutes drawn, counted back from the newest datapoint (1 to 44,640).
    """

    type: str = "html_dashboard"
    path: str | None = None
    max_minutes: int = DEFAULT_MAX_MINUTES


class HtmlDashboardSink(SinkBase):
    """The ``html_dashboard`` sink (see the module docstring).

    Raises:
        SinkError: opened without the configuration (its metric filters make the widgets).
        OSError: the page's directory cannot be created.
    """

    def __init__(self, spec: HtmlDashboardSinkSpec, position: Any, context: SinkContext) -> None:
        if context.config is None:
            raise SinkError("an html_dashboard sink draws the configuration's metric filters: it needs the configuration")
        self.spec = spec
        self.config = context.config
        self.path = Path(spec.path or "")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.store = MinuteSums(spec.max_minutes)
        self.resumed = position is not None
        self.mode = "replay"
        self.notes: list[str] = []
        self._written: int | None = None  # the store's version the page on disk shows

    async def start(self, mode: str) -> None:
        """``run`` resuming from a checkpoint: fill the page from the configuration's file sink."""
        self.mode = mode
        found = datapoint_file(self.config)
        if self.resumed and found is not None:
            kind, path = found
            try:
                self.notes = await asyncio.to_thread(read_datapoints, kind, path, self.store)
            except FileNotFoundError:
                pass
            except ValueError as err:  # DatapointFileError: the page goes on from here
                self.notes = [f"the minutes before this run are not drawn: {err}"]

    def write(self, datapoints: list[Datapoint]) -> None:
        """Add the datapoints to the page's minutes (drawn at the next flush)."""
        self.store.add_datapoints(datapoints)

    def flush(self) -> dict[str, int]:
        """Write the page if it changed since it was last written; the position ``{"page": 1}``."""
        if self._written != self.store.version:
            self._write_page(self.store, self.store.version)
        return {"page": 1}

    async def flush_async(self) -> dict[str, int]:
        """:meth:`flush`, the page drawn and written in a thread from a copy of the minutes."""
        if self._written != self.store.version:
            await asyncio.to_thread(self._write_page, self.store.copy(), self.store.version)
        return {"page": 1}

    def close(self) -> None:
        """Write the page if it changed."""
        self.flush()

    def _write_page(self, store: MinuteSums, version: int) -> None:
        from castlewatch.dashboard_page import page_model, render_page

        found = datapoint_file(self.config)
        if found is not None:  # the same datapoints as this sink's
            source, kind = str(found[1]), "file"
        else:
            source, kind = f"this {self.mode}", "run"
        html = render_page(page_model(self.config, store, source=source, source_kind=kind, notes=self.notes))
        write_atomically(self.path, html)
        self._written = version


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path`` (mode as the umask gives),
    then rename it over ``path``: a reader sees the old page or the new one, never half.

    Raises:
        OSError: the file cannot be written (the temporary file is removed).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def spec_from_entry(entry: Any, resolve: Any) -> HtmlDashboardSinkSpec:
    """The spec of a decoded ``type: html_dashboard`` configuration entry (path resolved)."""
    return HtmlDashboardSinkSpec(path=resolve(entry.path), max_minutes=entry.max_minutes)


KIND = SinkKind(
    "html_dashboard",
    lambda spec, position, context: HtmlDashboardSink(spec, position, context),
    needs_path=True,
    from_entry=spec_from_entry,
)
