"""Standard output sink (``type: stdout``): the JSON Lines sink's lines, on stdout.

Same lines as :mod:`castlewatch.sinks.jsonl`; there is no checkpoint position (a
restart cannot take back what was printed).
"""

from __future__ import annotations

import sys

from castlewatch.model import Datapoint
from castlewatch.sinks.base import SinkBase, SinkKind
from castlewatch.sinks.jsonl import jsonl_lines


class StdoutSink(SinkBase):
    """JSON Lines (same lines as :class:`JsonLinesSink`) on ``sys.stdout``, flushed per write.

    ``sys.stdout`` is looked up at each write (so redirection by the caller applies);
    ``flush()`` returns None (no resumable position) and ``close()`` leaves stdout open.
    """

    def write(self, datapoints: list[Datapoint]) -> None:
        """Print one line per MetricDatum and flush stdout."""
        out = sys.stdout
        wrote = False
        for line in jsonl_lines(datapoints):
            out.write(line.decode("utf-8"))
            wrote = True
        if wrote:
            out.flush()

    def flush(self) -> None:
        """Flush stdout; there is no checkpoint position, so returns None."""
        sys.stdout.flush()
        return None

    def close(self) -> None:
        """Flush stdout (it is not closed)."""
        sys.stdout.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "StdoutSink()"


KIND = SinkKind("stdout", lambda spec, position, context: StdoutSink())
