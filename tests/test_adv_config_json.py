"""Adversarial tests of reading a JSON configuration with the standard library's decoder
(castlewatch.engine.config.decode.read_json, load.load_config_text): for JSON that YAML
reads the same way, the configuration or the error (message, line, column) is the one the
YAML path gives; a JSON text YAML cannot read still gives the configuration's own error."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castlewatch.engine.config import load as load_module
from castlewatch.engine.config.decode import NOT_JSON
from castlewatch.engine.config.load import load_config_text
from castlewatch.engine.config.model import ConfigError

BASE = {
    "metric_filters": [
        {"filterName": "f1", "logGroupName": "g", "filterPattern": "[a, b]",
         "metricTransformations": [{"metricName": "M", "metricNamespace": "N", "metricValue": "$b"}]},
        {"filterName": "f2", "logGroupName": "g", "filterPattern": "{ $.x = 1 }",
         "metricTransformations": [{"metricName": "M2", "metricNamespace": "N", "metricValue": "1",
                                    "defaultValue": 0, "unit": "Count"}]},
    ],
    "sources": [{"type": "stdin", "log_group": "g", "timestamp": {"field": "$1", "format": "epoch_s"}}],
    "sinks": [{"type": "jsonl", "path": "out.jsonl"}, {"type": "csv", "path": "out.csv"}],
    "allowed_lateness_s": 300,
}

# (path, value) mutations: wrong types, unknown keys, misspelt values, bad patterns
MUTATIONS = [
    (("sinks", 0, "type"), "jsonI"), (("sinks", 1, "path"), 5), (("sinks", 1, "path"), "out.jsonl"),
    (("sources", 0, "timestamp", "format"), "epoch_x"), (("sources", 0, "type"), "stdn"), (("sources", 0, "bogus"), 1),
    (("allowed_lateness_s",), -1), (("allowed_lateness_s",), "300"), (("allowed_lateness_s",), 1.5),
    (("bogus",), {"x": [1, 2]}), (("metric_filters", 0, "filterPattern"), "[a, b"),
    (("metric_filters", 1, "filterPattern"), "{ $.x = "), (("metric_filters", 1, "bogusKey"), True),
    (("metric_filters", 0, "metricTransformations", 0, "metricValue"), "$c"),
    (("metric_filters", 1, "metricTransformations", 0, "defaultValue"), "x"),
    (("metric_filters", 1, "metricTransformations", 0, "unit"), "Bogus"),
    (("metric_filters", 0, "metricTransformations", 0, "dimensions"), {"A": "$a"}),
    (("metric_filters", 0, "metricTransformations"), []), (("metric_filters", 0, "filterName"), ""),
    (("metric_filters", 0, "filterName"), "caf\u00e9 \u2603"), (("sinks",), []), (("sources",), {}),
    (("metric_filters",), {"pack": "nope", "log_group": "g"}), (("metric_filters",), {"pack": "cis", "log_group": "g"}),
]


def _yaml_only(text: str):
    """load_config_text as before the JSON reader: every text read as YAML."""
    real = load_module.read_json
    load_module.read_json = lambda text: NOT_JSON
    try:
        return _outcome(text)
    finally:
        load_module.read_json = real


def _outcome(text: str):
    try:
        return ("ok", repr(load_config_text(text, "/etc/cw", source="/etc/cw/c.json")))
    except Exception as error:  # noqa: BLE001 - the very exception is compared
        return ("error", type(error).__name__, str(error), getattr(error, "line", None), getattr(error, "column", None))


def _set(data: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (IndexError, KeyError, TypeError):  # an earlier mutation removed it
            return data
    node[path[-1]] = value
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(MUTATIONS), max_size=2), st.sampled_from([None, 0, 1, 2, 4]),
       st.sampled_from([(", ", ": "), (",", ":"), (",", ": ")]), st.booleans())
def test_json_configs_load_as_the_yaml_path_loads_them(mutations, indent, separators, crlf):
    data = BASE
    for path, value in mutations:
        data = _set(data, path, value)
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=False) + "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    assert _outcome(text) == _yaml_only(text)


@pytest.mark.parametrize("char", ["\x7f", "\ufffe"])
@pytest.mark.parametrize("path, value, reason", [
    (("sinks", 0, "type"), "jsonI", "got 'jsonI'"),
    (("metric_filters", 1, "bogusKey"), True, "bogusKey"),
])
def test_json_config_yaml_cannot_read_still_gives_its_own_error(char, path, value, reason):
    """JSON takes characters YAML 1.1 refuses (DEL, C1 controls, U+FFFE) in a string: a
    configuration error there is reported as such (without a line: YAML gives none), not as
    a YAML reader error about that character."""
    data = _set(_set(BASE, ("sources", 0, "log_group"), "g"), ("metric_filters", 0, "filterName"), "f" + char)
    text = json.dumps(_set(data, path, value), indent=2, ensure_ascii=False)
    with pytest.raises((ConfigError, ValueError)) as info:  # ConfigError, MetricFilterLoadError
        load_config_text(text, "/etc/cw", source="/etc/cw/c.json")
    assert reason in str(info.value) and "unacceptable character" not in str(info.value)
