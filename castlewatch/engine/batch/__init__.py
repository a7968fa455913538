"""The batch path: a batch of ``lines`` events evaluated as a block, exactly (issue 11).

The engine hands each batch of plain lines (``EventBatch.messages``) to
:meth:`BatchPath.process`, the one entry point. It evaluates the block with a few passes
over all its events at once instead of one Python call per event and filter, and gives
every event it cannot prove it decides exactly to the general evaluator
(:meth:`~castlewatch.engine.evaluate.LogGroupEvaluator.evaluate_message`, the reference),
in order; the contributions of both go to the aggregator in event order
(:mod:`.fold`). Counters (matched per filter, malformed per reason, not JSON, out of
range, bad dimension values, late) end as the general evaluator leaves them.

Two plans (:mod:`.plan`), chosen once per log group from its metric filters:

- ``literals`` (:mod:`.literal_plan`): every filter needs a literal (JSON, regex, term and
  space-delimited patterns with a literal requirement). One C call finds each filter's
  literals in each line of the batch (:func:`.blocks.scan`); a line where some filter's
  requirement holds, with ``\\u`` (JSON literals may be escaped), or that does not open
  an object while a JSON filter is there, is a candidate and takes the general path. No
  other line can match any filter: it publishes only the ``defaultValue`` of the filters
  that have one, at its time, which msgspec reads (a Struct of the timestamp field alone;
  a line msgspec does not take as one JSON object takes the general path), ISO 8601 times
  of CloudTrail's form parsed with numpy.
- ``fields`` (:mod:`.field_plan`): every filter is a space-delimited pattern of the same
  number of fields, without ``...``, whose conditions are ``=``/``!=`` exact strings,
  with values and dimensions from its fields (VPC Flow Logs). The block is split in one
  call (:func:`.blocks.split`); conditions, values, dimensions and the event times are
  numpy operations over the fields' bytes; a line whose split is not plain, or without
  exactly the pattern's fields, takes the general path.

Anything else (no plan, a block whose lines cannot be told apart) is evaluated event by
event by the general evaluator, as without this package.

The exactness guard is one per plan, decided per line before anything is counted
(``Contributions.general``: the lines that take the general path); a block the guard
cannot settle (a dimension filter that could be disabled within it, §8.4) takes the
general path whole, and the aggregation has its own (:mod:`.fold`: a ``-0.0``, or late
datapoints that could reach their bound, fold contribution by contribution).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from castlewatch.engine.aggregate import MinuteAggregator
from castlewatch.engine.batch import fold as _fold
from castlewatch.engine.batch.plan import make_plan
from castlewatch.engine.evaluate import EventEvaluationError, LogGroupEvaluator
from castlewatch.model import READ_FROM_MESSAGE

__all__ = ["BatchPath", "batch_path"]

Skip = Callable[[int, EventEvaluationError], None]


class BatchPath:
    """One log group's batch path (see the module docstring).

    Args:
        evaluator: the log group's general evaluator (its filters, counters, timestamp
            spec and dimension state are the ones used).
        aggregator: where contributions are folded.
        plan: from :func:`~castlewatch.engine.batch.plan.make_plan`.

    Attributes:
        enabled: False sends every batch down the general path (the reference, for
            comparisons).
    """

    def __init__(self, evaluator: LogGroupEvaluator, aggregator: MinuteAggregator, plan: Any) -> None:
        self.evaluator = evaluator
        self.aggregator = aggregator
        self.plan = plan
        self.enabled = True
        self.keys: list[tuple] = []
        self._key_ids: dict[tuple, int] = {}

    def key_id(self, key: tuple) -> int:
        """The index of a metric key in :attr:`keys` (added when new)."""
        i = self._key_ids.get(key)
        if i is None:
            i = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
        return i

    def process(self, messages: list[str], skip: Skip) -> None:
        """Evaluate a batch of messages (their time read from them) and fold what they
        contribute into the aggregator, in event order.

        ``skip(index, error)`` is called for an event whose general evaluation raised
        (:class:`EventEvaluationError`: it had no effect), as the engine does per event.
        """
        n = len(messages)
        out = self.plan.evaluate(self, messages) if n else None
        if out is None:  # the whole batch through the general path
            out = Contributions()
            general = range(n)
        else:
            general = out.general
        if len(general):
            self._general(messages, general, out, skip)
        kid, ts, value = out.arrays()
        _fold.fold(self.aggregator, self.keys, kid, ts, value)

    def _general(self, messages: list[str], rows: Any, out: Contributions, skip: Skip) -> None:
        evaluate = self.evaluator.evaluate_message
        key_id = self.key_id
        rows_, kids, times, values = out.g_rows, out.g_kid, out.g_ts, out.g_value
        rows = rows.tolist() if isinstance(rows, np.ndarray) else rows
        found_of = out.found if out.found is not None else [None] * len(rows)
        times_of = out.times if out.times is not None else [READ_FROM_MESSAGE] * len(rows)
        for row, found, ts in zip(rows, found_of, times_of):

            def emit(key: tuple, ts: int, value: float, row: int = row) -> None:
                rows_.append(row)
                kids.append(key_id(key))
                times.append(ts)
                values.append(value)

            try:
                evaluate(messages[row], ts, emit, found)
            except EventEvaluationError as err:
                skip(row, err)


class Contributions:
    """What a block contributes: the batch path's (arrays, in event order) and the general
    path's (lists), merged by event in :meth:`arrays`.

    Attributes:
        general: rows (sorted) that take the general path.
        found: None, or per row of ``general`` the evaluator's scanner literals the block
            scan found in it (None for a row the evaluator is to scan itself).
        times: None, or per row of ``general`` its event time (epoch ms) where the block
            decided it exactly, else ``READ_FROM_MESSAGE``.
        rows, kid, ts, value: the batch path's contributions (numpy arrays; ``rows`` the
            event of each, ascending, an event's in filter order).
    """

    def __init__(self) -> None:
        self.general: Any = ()
        self.found: list[frozenset[int] | None] | None = None
        self.times: list[int] | None = None
        self.rows = self.kid = self.ts = self.value = None
        self.g_rows: list[int] = []
        self.g_kid: list[int] = []
        self.g_ts: list[int] = []
        self.g_value: list[float] = []

    def arrays(self) -> tuple[Any, Any, Any]:
        """(kid, ts, value) of every contribution in event order."""
        parts = []
        if self.rows is not None and len(self.rows):
            parts.append((self.rows, self.kid, self.ts, self.value))
        if self.g_rows:
            parts.append((np.array(self.g_rows, np.int64), np.array(self.g_kid, np.int64),
                          np.array(self.g_ts, np.int64), np.array(self.g_value, np.float64)))
        if not parts:
            empty = np.empty(0, np.int64)
            return empty, empty, np.empty(0, np.float64)
        if len(parts) == 1:
            return parts[0][1], parts[0][2], parts[0][3]
        rows, kid, ts, value = (np.concatenate(x) for x in zip(*parts))
        order = np.argsort(rows, kind="stable")  # an event is on one path: its contributions stay in order
        return kid[order], ts[order], value[order]


def batch_path(evaluator: LogGroupEvaluator, aggregator: MinuteAggregator) -> BatchPath | None:
    """The batch path of a log group, or None when no plan fits its filters and timestamp."""
    plan = make_plan(evaluator)
    return BatchPath(evaluator, aggregator, plan) if plan is not None else None
