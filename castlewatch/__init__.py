"""castlewatch: CloudWatch Logs filter patterns and metric filters, evaluated locally as AWS does.

Public interface (spec: ``docs/filter-patterns.md``):

- :func:`compile_pattern` turns a filter pattern into a :class:`FilterPattern`
  (compiled once, cached);
- :func:`test_metric_filter` answers like the TestMetricFilter API;
- :class:`FilterPatternError` is raised for every pattern the service rejects.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FilterPattern",
    "FilterPatternError",
    "InvalidParameterError",
    "compile_pattern",
    "purge",
    "test_metric_filter",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the public names come from castlewatch.grammar, imported on first use: the program
    # (``python -m castlewatch``) starts before the imports it runs without the cyclic
    # garbage collector (castlewatch.cli.program.setting_up)
    if name in __all__:
        import castlewatch.grammar

        return getattr(castlewatch.grammar, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
