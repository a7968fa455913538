"""castlewatch: CloudWatch Logs filter patterns and metric filters, evaluated locally as AWS does.

Public interface (spec: ``docs/filter-patterns.md``):

- :func:`compile_pattern` turns a filter pattern into a :class:`FilterPattern`
  (compiled once, cached);
- :func:`test_metric_filter` answers like the TestMetricFilter API;
- :class:`FilterPatternError` is raised for every pattern the service rejects.
"""

from castlewatch.grammar import (
    FilterPattern,
    FilterPatternError,
    InvalidParameterError,
    compile_pattern,
    purge,
    test_metric_filter,
)

__all__ = [
    "FilterPattern",
    "FilterPatternError",
    "InvalidParameterError",
    "compile_pattern",
    "purge",
    "test_metric_filter",
]
__version__ = "0.1.0"
