"""castlewatch's throughput benchmark suite (issue 4), run by ``castlewatch bench``.

Lives in the source checkout beside ``castlewatch/`` and is not part of the wheel.
Install the peers with ``pip install -e '.[bench]'``.

Modules: :mod:`bench.generate` (seeded stream generators), :mod:`bench.naive` (the
naive baseline), :mod:`bench.peers` (aws-json-term-matcher, moto), :mod:`bench.workloads`
(what is measured, and the targets), :mod:`bench.runner` (timing, floors,
correctness guard), :mod:`bench.checkpoint` (the daemon's checkpoint cost against
replay), :mod:`bench.report` (table, JSON, Markdown, chart).

The JSON document (``--json``, :func:`run_suite`'s return value) has:

- ``schema``, ``mode`` (``quick``/``full``), ``scale``, ``runs``, ``seed``, ``date``,
  ``machine`` (``cpus``, ``cpu_model``, ``python``...), ``versions``, ``seconds``;
- ``streams``: per stream ``events``, ``bytes``, ``avg_event_bytes``;
- ``workloads``: per workload ``name``, ``title``, ``stream``, ``kind``, ``events``,
  ``bytes``, ``pattern`` or ``filters``, ``results`` (per implementation: ``label``,
  ``called_as``, ``events``, ``bytes``, ``runs``, ``seconds``/``ev_s``/``mb_s`` as
  ``{median, min, max}``, ``counts``, ``matches``, ``agrees``, optional ``value_sum``,
  ``notes``), ``ratios`` (castlewatch's median over each other's: ``floor``, ``grep``,
  ``naive``, ``castlewatch_loop``, ``peer:<name>``, ``matcher`` for replays),
  ``targets`` and ``disagreements`` (each with ``implementation``, ``kind``, the two
  counts and, for a count, an ``example`` event);
- ``compile``: ``median_ms``, ``min_ms``, ``max_ms``, ``per_pattern_ms``, ``target``;
- ``rss``: ``events``, ``peak_mb``, ``after_import_mb``, ``full_size``, ``target``;
- ``checkpoint`` (:mod:`bench.checkpoint`): ``backlog`` (``events``, ``replay`` and
  ``daemon`` child results, ``agrees``), ``distinct`` (``values``, ``daemon``), ``ratios``
  (``daemon_vs_replay``), ``target``;
- ``targets``: every target with ``status`` ``met``/``missed``/``not checked``/``not measured``;
- ``agreement``: ``ok`` and every disagreement, tagged with its ``workload``.
"""

from bench.runner import run_suite

__all__ = ["run_suite"]
