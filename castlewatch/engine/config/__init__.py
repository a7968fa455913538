"""The engine's configuration file (YAML): metric filters, sources, sinks.

A configuration has exactly these top-level keys (``allowed_lateness_s`` optional)::

    metric_filters:              # a list in the describe-metric-filters shape ...
      - filterName: console-sign-in-failures
        logGroupName: cloudtrail
        filterPattern: '{ $.eventName = "ConsoleLogin" && $.errorMessage = "Failed authentication" }'
        metricTransformations:
          - {metricName: ConsoleSignInFailures, metricNamespace: CloudTrailMetrics, metricValue: "1"}
    # ... or a file: describe-metric-filters JSON, or a CloudFormation template
    # metric_filters: {file: cfn/alarms.yaml, parameters: {Env: prod}}
    # ... or a list mixing filters, {file: PATH, parameters: ...} and {discover: true}
    # (the filters provisioned on the cloudwatch_logs sources' log groups)
    sources:
      - type: file                 # file | stdin | cloudwatch_logs
        path: logs/*.json.gz       # file or glob; relative to this file's directory
        log_group: cloudtrail
        format: cloudtrail_archive # lines (default) | cloudwatch_events | cloudtrail_archive | flow_log_file
      - type: file
        path: vpc/*.log
        log_group: vpc-flow-logs
        timestamp: {field: $11, format: epoch_s}   # required for `lines`
      - type: cloudwatch_logs
        log_group_names: [CloudTrail/DefaultGroup]  # or log_group_name_prefix: /aws/lambda/
        region: us-east-1          # optional; endpoint_url: http://127.0.0.1:4566 (LocalStack, moto)
        start_time: 2h             # ISO 8601, or 5m, 2h, 3d before now; default now
        end_time: 2026-12-06T12:00:00Z               # optional
        poll_interval_s: 5
        lookback_s: 300
    sinks:
      - {type: jsonl, path: out/datapoints.jsonl}  # jsonl | csv | avro | stdout
    allowed_lateness_s: 60

The shape is declared once, as msgspec Structs (:mod:`.schema`), and decoded with
msgspec (:mod:`.decode`); :mod:`.load` then makes the checks a schema cannot, and
:mod:`.paths` keeps inputs and outputs apart.

Decisions:

- Unknown keys are errors, at every level, naming the key and the allowed ones (with
  a "did you mean" when one is close); a value outside a fixed set gets one too.
  Every error about the file's content names the key's path (``sources[1].format``)
  and its line and column in the file.
- A ``lines`` source must say where its event time comes from: ``timestamp:
  ingestion`` (the time the line is read, right for a live tail) or ``{field, format}``.
  Defaulting to ingestion time would put a whole replayed file into the current
  minute, so there is no default.  Other formats carry their own time and take no
  ``timestamp``.
- Every source's log group must have at least one metric filter (otherwise nothing
  would ever be published from it).  With ``{discover: true}``, or a
  ``log_group_name_prefix``, that is checked once the log groups and their provisioned
  filters are known (:func:`resolve_config`, before the run).
- A cloudwatch_logs source's ``start_time`` and ``end_time`` take ISO 8601 or a time
  before now as ``aws logs tail --since`` does (``5m``, ``2h``, ``3d``), resolved when
  the file is loaded; no bare numbers (seconds or milliseconds would be a guess).
- Relative paths (sources, sinks, ``metric_filters.file``) are resolved against the
  configuration file's directory; globs are kept, to be expanded by the source.
- ``metric_filters: {file: ...}`` may carry ``parameters`` for a CloudFormation
  template (parameter values and pseudo parameters such as ``AWS::Region``): strings,
  numbers, booleans or lists of them, never null.
- A key given twice in one mapping (anywhere in the file) is an error naming the key
  and both lines: YAML would silently keep the last value.
- Inputs and outputs must not meet, checked when the file is loaded (and again by
  :func:`with_sinks_in` for ``--out``): a sink may not be a file a source reads (an
  existing file matched now, or a path the source's glob would match once it
  exists), since opening the sink would destroy the input; two sinks may not share a
  file (every datapoint would be written twice).
- Two sources of one log group may not read one file (each of its events would be
  counted twice): the globs are expanded when the file is loaded, as the sources
  expand them (relative to the configuration file's directory, ``**`` recursive,
  ``~`` expanded, regular files only, a file known by its device and inode so that
  links count as the same file), and two sources with the same path are refused even
  when nothing matches yet.  Files that appear later (while following) are not
  checked.  Sources of *different* log groups may share a file: each group's filters
  then see each event once, as when one file is shipped to two log groups.  At most
  one source reads stdin.

Errors: :class:`ConfigError` for the file's own structure; the metric filters raise
the errors of :mod:`castlewatch.metric_filters`.  :data:`CONFIG_ERRORS` is the
tuple to catch.
"""

from castlewatch.engine.config.load import load_config, load_config_text, parse_time, parse_timestamp
from castlewatch.engine.config.model import CONFIG_ERRORS, ConfigError, EngineConfig, SourceConfig
from castlewatch.engine.config.paths import check_checkpoint_path, with_sinks_in
from castlewatch.engine.config.resolve import resolve_config
from castlewatch.engine.config.targets import talks_to_aws, with_aws_flags
from castlewatch.engine.evaluate import TimestampSpec

__all__ = [
    "CONFIG_ERRORS",
    "ConfigError",
    "EngineConfig",
    "SourceConfig",
    "TimestampSpec",
    "load_config",
    "load_config_text",
    "check_checkpoint_path",
    "parse_time",
    "parse_timestamp",
    "resolve_config",
    "talks_to_aws",
    "with_aws_flags",
    "with_sinks_in",
]
