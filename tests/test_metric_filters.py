"""Metric filters: PutMetricFilter validation (spec §8.1, §8.2), limits per log group (§1),
loading from describe-metric-filters JSON and CloudFormation templates."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import castlewatch
from castlewatch.grammar.ast import Index, Key
from castlewatch.metric_filters import (
    UNITS,
    DuplicateFilterError,
    LimitExceededError,
    MetricFilterError,
    MetricFilterLoadError,
    MetricFilterPatternError,
    Reference,
    check_group_limits,
    is_valid_selection_criteria,
    load_metric_filters,
    parse_metric_value,
    parse_reference,
    validate_metric_filter,
    validate_metric_filters,
    validate_transformation,
)
from castlewatch.model import MetricFilter, MetricTransformation

DATA = Path(__file__).parent / "data"
CASES_FILE = Path(__file__).parent / "conformance" / "cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").split("\n") if line]
INVALID_TRANSFORM_CASES = [c for c in CASES if c.get("invalid") and "transform" in c]
VALID_TRANSFORM_CASES = [c for c in CASES if not c.get("invalid") and "transform" in c]

JSON_PATTERN = '{ $.bucket = "NEVER_BUCKET" }'
GROUP = "/stackd/native-metric-filters-owned"


def make(
    pattern: str = JSON_PATTERN,
    *,
    name: str = "z-invalid",
    group: str = GROUP,
    transformations: list[MetricTransformation] | None = None,
    system: list[str] | None = None,
    criteria: str | None = None,
    **transformation,
) -> MetricFilter:
    t = {"metric_name": "Control", "metric_namespace": "Stackd/NativeMetricFilters/owned", "metric_value": "1"}
    t.update(transformation)
    return MetricFilter(
        filter_name=name,
        filter_pattern=pattern,
        metric_transformations=transformations if transformations is not None else [MetricTransformation(**t)],
        log_group_name=group,
        emit_system_field_dimensions=system,
        field_selection_criteria=criteria,
    )


def rejection(f: MetricFilter) -> MetricFilterError:
    with pytest.raises(MetricFilterError) as info:
        validate_metric_filter(f)
    error = info.value
    assert error.code == "InvalidParameterException"
    assert error.filter_name == f.filter_name
    assert error.log_group_name == f.log_group_name
    return error


# ---- §8.2, one test per rule, in order ------------------------------------------------------


def test_valid_filter_returns_its_compiled_pattern() -> None:
    pattern = validate_metric_filter(make(dimensions={"Bucket": "$.bucket"}, metric_value="$.value"))
    assert pattern.kind == "json"
    assert pattern.matches('{"bucket": "NEVER_BUCKET"}')


def test_step1_pattern_must_compile() -> None:
    error = rejection(make("{ $.broken = }"))
    assert isinstance(error, MetricFilterPatternError)
    assert isinstance(error, castlewatch.FilterPatternError)
    assert error.message == "Invalid metric filter pattern"  # [rec R-M failed-replacement-pattern]
    assert error.rule == "filter_pattern"
    assert error.pattern == "{ $.broken = }"
    assert error.column == 14
    text = str(error)
    assert text.startswith(f"metric filter 'z-invalid' (log group '{GROUP}'): Invalid metric filter pattern\n")
    assert "^" in text


def test_step2_metric_name_with_colon() -> None:
    error = rejection(make(metric_name="Error:Count"))
    assert error.message == (
        "1 validation error detected: Value at 'metricTransformations.1.member.metricName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [^:*$]*"
    )
    assert error.rule == "metric_name"


@pytest.mark.parametrize("namespace", ["a*b", "$ns"])
def test_step2_metric_namespace_characters(namespace: str) -> None:
    error = rejection(make(metric_namespace=namespace))
    assert error.message == (
        "1 validation error detected: Value at 'metricTransformations.1.member.metricNamespace' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [^:*$]*"
    )


def test_step2_lengths() -> None:
    assert rejection(make(metric_name="m" * 256)).message.endswith(
        "Member must have length less than or equal to 255"
    )
    assert rejection(make(metric_namespace="")).message == (
        "1 validation error detected: Value at 'metricTransformations.1.member.metricNamespace' failed to "
        "satisfy constraint: Member must have length greater than or equal to 1"
    )
    validate_metric_filter(make(metric_name="m" * 255, metric_namespace="n" * 255))


@pytest.mark.parametrize("value", ["not-a-number", "$.items[*].value", "length", "1e400", "3e108", "", "1,5"])
def test_step3_metric_value_must_be_a_number_or_reference(value: str) -> None:
    error = rejection(make(metric_value=value))
    assert error.message == f"Invalid metric transformation: metric value {value} must be a valid number"
    assert error.rule == "metric_value"


@pytest.mark.parametrize("value", ["1", "-2.5", "1e3", ".5", "2e108", "$.value", "$.a.b[0]", "$missing", "$7"])
def test_step3_numbers_and_references_are_accepted(value: str) -> None:
    validate_metric_filter(make(metric_value=value))


def test_step3_metric_value_length() -> None:
    error = rejection(make(metric_value="$." + "a" * 99))
    assert error.message == (
        "1 validation error detected: Value at 'metricTransformations.1.member.metricValue' failed to "
        "satisfy constraint: Member must have length less than or equal to 100"
    )


def test_step4_default_value_and_dimensions_exclude_each_other() -> None:
    error = rejection(make(name="X", group="g", default_value=0, dimensions={"Bucket": "$.bucket"}))
    assert error.message == (
        "Invalid metric transformation: dimensions and default value are mutually exclusive properties"
    )
    assert error.rule == "default_with_dimensions"
    assert str(error).split("\n")[0] == (
        "metric filter 'X' (log group 'g'): Invalid metric transformation: dimensions and default value "
        "are mutually exclusive properties"
    )


def test_step5_system_fields() -> None:
    error = rejection(make(system=["@aws.nope"]))
    assert error.message == (
        "The provided system fields are invalid. The supported system fields are - "
        "[@aws.region, @aws.account, @source.log]"
    )
    validate_metric_filter(make(system=["@aws.account", "@aws.account"]))  # duplicates accepted [rec]
    validate_metric_filter(make("SYSTEM_MATCH", system=["@aws.account", "@aws.region"]))  # on a term pattern [rec]


def test_step6_at_most_three_dimensions() -> None:
    expected = "Number of dimensions exceeds the maximum number of dimensions supported per metric filter"
    four = {k: "$.bucket" for k in "ABCD"}
    assert rejection(make(dimensions=four)).message == expected
    three = {k: "$.bucket" for k in "ABC"}
    validate_metric_filter(make(dimensions=three))
    error = rejection(make(dimensions=three, system=["@aws.account"]))  # system fields count [rec]
    assert error.message == expected
    assert error.rule == "dimension_count"


@pytest.mark.parametrize("value", ["prod", "$.items[*].bucket", "1", "$.a.*"])
def test_step7_dimension_value_must_be_a_reference(value: str) -> None:
    error = rejection(make(dimensions={"Env": value}))
    assert error.message == "Invalid metric transformation: dimension value must be valid selector"
    assert error.rule == "dimension_value"


def test_step7_unknown_selector_is_accepted() -> None:
    validate_metric_filter(make(dimensions={"Bucket": "$.missing"}))  # [rec]


@pytest.mark.parametrize("name", [":Bucket", "", "   ", "Büro", "k" * 256])
def test_step7_dimension_names(name: str) -> None:
    assert rejection(make(dimensions={name: "$.bucket"})).rule == "dimension_name"


@pytest.mark.parametrize("pattern", ["ERROR", "%ERROR%", "", '"a b"'])
def test_step8_dimensions_need_json_or_space_delimited_pattern(pattern: str) -> None:
    error = rejection(make(pattern, dimensions={"Server": "$server"}))
    assert error.message == "The specified filter pattern does not support dimensions"
    assert error.rule == "dimensions_unsupported"


def test_step8_space_delimited_dimensions_accepted() -> None:
    validate_metric_filter(make("[kind = \"SPACE\", value, bucket]", metric_value="$value", dimensions={"B": "$bucket"}))


def test_step9_unit() -> None:
    error = rejection(make(unit="Widgets"))
    assert error.message == (  # the service's own order of the enum [rec R-M invalid-unit]
        "1 validation error detected: Value at 'metricTransformations.1.member.unit' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Gigabits/Second, Gigabits, Percent, Terabits, Bits, "
        "Kilobits, Megabytes/Second, Kilobytes, Megabits/Second, Terabytes, Bytes, Count, Gigabytes, "
        "Milliseconds, Count/Second, Gigabytes/Second, None, Terabytes/Second, Bytes/Second, Megabits, "
        "Kilobytes/Second, Megabytes, Microseconds, Kilobits/Second, Terabits/Second, Bits/Second, Seconds]"
    )
    assert error.rule == "unit"
    assert "Count" in rejection(make(unit="count")).hint


def test_step9_every_standard_unit_is_accepted() -> None:
    assert len(UNITS) == 27
    for unit in UNITS:
        validate_metric_filter(make(unit=unit))


def test_step10_field_selection_criteria() -> None:
    error = rejection(make(criteria="nonsense"))
    assert error.message == "The provided field selection criteria is invalid"
    assert error.rule == "field_selection_criteria"
    validate_metric_filter(make(criteria='@aws.account = "000000000000" AND @aws.region = "us-east-1"'))
    validate_metric_filter(make(criteria=""))  # [adopted] empty: no selection
    validate_metric_filter(make(criteria='@aws.account IN ["111111111111", "222222222222"] OR @aws.region != "x"'))
    too_long = '@aws.region = "' + "x" * 2000 + '"'
    assert rejection(make(criteria=too_long)).message.endswith("Member must have length less than or equal to 2000")


SELECTION_ACCEPTED = [
    '@aws.region = "us-east-1"',
    '@aws.region = "us-east-1" AND @aws.account IN ["123456789012", "210987654321"]',
    '@a != "x"',
    '@a IN ["1"]',
    '@a NOT IN ["1", "2"]',
    '@a="x"AND@b="y"',
    '(@a = "x" OR @b = "y") AND @c IN ["z"]',
    '((@a = "x"))',
    '@a = "x" OR @b = "y" AND @c = "z"',
    '  @a = "x"\t\n',
    '@a = ""',
    '@a = "say \\"hi\\" \\\\"',
    '@a = "\u00e9t\u00e9"',
    "@a.b_1.C2 = \"x\"",
    '@a IN [ "1" , "2" ]',
    # the API reference's own example writes `or`: keywords in any case [doc]
    '@aws.region = "us-east-1" or @aws.account IN ["123456789012", "987654321098"]',
    '@a = "x" and @b not in ["y"]',
]
SELECTION_REFUSED = [
    "",
    "   ",
    "nonsense",
    '@a == "x"',
    '@a = x',
    "@a = 'x'",
    '@a = "x',
    '@a = "x\\"',
    '@a = "a\\\nb"',
    '@1a = "x"',
    '@a. = "x"',
    '@a..b = "x"',
    'a = "x"',
    '@a = "x" AND',
    '@a = "x" ANDX @b = "y"',
    '@a = "x" && @b = "y"',
    '@a IN []',
    '@a IN ["1",]',
    '@a IN "1"',
    '@a NOT = "x"',
    '@a NOT IN ["1"] NOT',
    '(@a = "x"',
    '@a = "x")',
    '()',
    '@a IN ["1"] IN ["2"]',
    '@a = "x" @b = "y"',
    '@a < "1"',
]


@pytest.mark.parametrize("criteria", SELECTION_ACCEPTED)
def test_step10_selection_criteria_grammar_accepts(criteria: str) -> None:
    """§8.2 step 10 [adopted]: comparisons (= !=), IN / NOT IN lists of quoted values,
    AND / OR (AND first), parentheses; whitespace optional between tokens."""
    assert is_valid_selection_criteria(criteria)
    validate_metric_filter(make(criteria=criteria))


@pytest.mark.parametrize("criteria", SELECTION_REFUSED)
def test_step10_selection_criteria_grammar_refuses(criteria: str) -> None:
    """§8.2 step 10 [adopted]: anything else is "The provided field selection criteria is
    invalid" (the empty text is no selection, checked before the grammar)."""
    assert not is_valid_selection_criteria(criteria)
    if criteria:
        assert rejection(make(criteria=criteria)).rule == "field_selection_criteria"


def test_rules_apply_in_the_spec_order() -> None:
    # bad pattern (1) before bad name (2)
    assert rejection(make("{ $.a = ", metric_name="a:b")).rule == "filter_pattern"
    # bad name (2) before bad value (3)
    assert rejection(make(metric_name="a:b", metric_value="x")).rule == "metric_name"
    # bad value (3) before default with dimensions (4)
    assert rejection(make(metric_value="x", default_value=1, dimensions={"A": "prod"})).rule == "metric_value"
    # default with dimensions (4) before 4 dimensions (6) and literal values (7)
    dims = {k: "prod" for k in "ABCD"}
    assert rejection(make(default_value=1, dimensions=dims)).rule == "default_with_dimensions"
    # 4 dimensions (6) before literal dimension values (7)
    assert rejection(make(dimensions=dims)).rule == "dimension_count"
    # dimension value (7) before dimensions on a term pattern (8)
    assert rejection(make("ERROR", dimensions={"A": "prod"})).rule == "dimension_value"
    # dimensions on a term pattern (8) before the unit (9)
    assert rejection(make("ERROR", dimensions={"A": "$a"}, unit="Widgets")).rule == "dimensions_unsupported"
    # unit (9) before field selection criteria (10)
    assert rejection(make(unit="Widgets", criteria="nonsense")).rule == "unit"


# ---- §8.1 request members -------------------------------------------------------------------


def test_two_transformations() -> None:
    t = MetricTransformation("Control", "Stackd/NativeMetricFilters/owned", "1")
    error = rejection(make(transformations=[t, t]))
    assert error.message == (
        "1 validation error detected: Value at 'metricTransformations' failed to satisfy constraint: "
        "Member must have length less than or equal to 1"
    )
    assert rejection(make(transformations=[])).message.endswith("Member must have length greater than or equal to 1")


@pytest.mark.parametrize(
    ("group", "constraint"),
    [
        ("", "Member must have length greater than or equal to 1"),
        ("g" * 513, "Member must have length less than or equal to 512"),
        ("my group", "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"),
        ("grp:1", "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"),
    ],
)
def test_log_group_name(group: str, constraint: str) -> None:
    error = rejection(make(group=group))
    assert error.message == f"1 validation error detected: Value at 'logGroupName' failed to satisfy constraint: {constraint}"
    assert error.rule == "log_group_name"


def test_log_group_name_accepted_characters() -> None:
    validate_metric_filter(make(group="/aws/lambda/my-fn_1.2#x"))
    validate_metric_filter(make(group="g" * 512))


@pytest.mark.parametrize(
    ("name", "constraint"),
    [
        ("", "Member must have length greater than or equal to 1"),
        ("f" * 513, "Member must have length less than or equal to 512"),
        ("a:b", "Member must satisfy regular expression pattern: [^:*]*"),
        ("errors*", "Member must satisfy regular expression pattern: [^:*]*"),
    ],
)
def test_filter_name(name: str, constraint: str) -> None:
    error = rejection(make(name=name))
    assert error.message == f"1 validation error detected: Value at 'filterName' failed to satisfy constraint: {constraint}"
    assert error.rule == "filter_name"


def test_filter_name_may_hold_spaces_and_symbols() -> None:
    validate_metric_filter(make(name="Console sign-in failures ($, /, @)"))


def test_non_finite_default_value() -> None:
    assert rejection(make(default_value=float("nan"))).rule == "default_value"
    assert rejection(make(default_value=float("inf"))).rule == "default_value"


# ---- validate_transformation and the conformance cases ----------------------------------------


@pytest.mark.parametrize("case", INVALID_TRANSFORM_CASES, ids=[c["id"] for c in INVALID_TRANSFORM_CASES])
def test_conformance_invalid_transformations_are_rejected(case: dict) -> None:
    assert INVALID_TRANSFORM_CASES, "the conformance suite has transformations that must be rejected"
    with pytest.raises(castlewatch.InvalidParameterError) as info:
        validate_transformation(case["pattern"], case["transform"])
    assert info.value.code == "InvalidParameterException"


@pytest.mark.parametrize("case", VALID_TRANSFORM_CASES, ids=[c["id"] for c in VALID_TRANSFORM_CASES])
def test_conformance_valid_transformations_are_accepted(case: dict) -> None:
    validate_transformation(case["pattern"], case["transform"])


def test_validate_transformation_takes_a_struct_and_names_no_filter() -> None:
    t = MetricTransformation("m", "ns", "1", default_value=0, dimensions={"server": "$server"})
    with pytest.raises(MetricFilterError) as info:
        validate_transformation("[ip, server]", t)
    assert str(info.value) == (
        "metric transformation: Invalid metric transformation: dimensions and default value are mutually "
        "exclusive properties\n  hint: remove defaultValue or the dimensions"
    )


def test_validate_transformation_rejects_a_malformed_dict() -> None:
    with pytest.raises(MetricFilterLoadError, match=r"transformation.metricValue: required key missing"):
        validate_transformation("ERROR", {"metricName": "m", "metricNamespace": "n"})


# ---- references -------------------------------------------------------------------------------


def test_parse_reference() -> None:
    assert parse_reference("$.a.b[0]") == Reference("json", "$.a.b[0]", segments=(Key("a"), Key("b"), Index(0)))
    assert parse_reference("$.['cluster.name']") == Reference("json", "$.['cluster.name']", segments=(Key("cluster.name"),))
    assert parse_reference("$size") == Reference("field", "$size", name="size")
    assert parse_reference("$status_code-2") == Reference("field", "$status_code-2", name="status_code-2")
    assert parse_reference("$7") == Reference("position", "$7", position=7)
    assert parse_reference("$007").position == 7


def test_a_position_of_thousands_of_digits_names_no_field() -> None:
    # int() of more than 4,300 digits raises; such a position is past every event's fields
    huge = parse_reference("$" + "9" * 5000)
    assert huge is not None and huge.kind == "position" and huge.position > 10**17


def test_parse_reference_refuses() -> None:
    for text in ["$.items[*].value", "$.a.*", "prod", "$", "$.", "$a.b", "$ name", " $.a", "1", "$.a b"]:
        assert parse_reference(text) is None, text


def test_parse_metric_value() -> None:
    assert parse_metric_value("1") == 1.0
    assert parse_metric_value("-1.5e2") == -150.0
    assert parse_metric_value("$.v") == Reference("json", "$.v", segments=(Key("v"),))
    assert parse_metric_value("NaN") is None
    assert parse_metric_value("Infinity") is None
    assert parse_metric_value("0x10") is None


# ---- limits per log group (§1) ----------------------------------------------------------------


def filters(count: int, pattern: str = "ERROR", group: str = "g", prefix: str = "f") -> list[MetricFilter]:
    return [make(pattern, name=f"{prefix}-{i}", group=group) for i in range(count)]


def test_hundred_filters_per_log_group() -> None:
    check_group_limits(filters(100) + filters(100, group="other"))
    with pytest.raises(LimitExceededError) as info:
        check_group_limits(filters(101))
    error = info.value
    assert error.code == "LimitExceededException"
    assert error.message == "Resource limit exceeded."
    assert error.limit == "filters_per_log_group"
    assert (error.log_group_name, error.filter_name) == ("g", "f-100")
    assert str(error) == (
        "metric filter 'f-100' (log group 'g'): Resource limit exceeded. "
        "(at most 100 metric filters per log group; this is the 101st)"
    )


def test_five_regex_filters_per_log_group() -> None:
    five = [make("{ $.a = %A% && $.b = %B% }", name="two-regexes", group="g")] + filters(4, "%NEVER%")
    check_group_limits(five + filters(50, "ERROR", prefix="plain") + filters(5, "%X%", group="other"))
    with pytest.raises(LimitExceededError) as info:
        check_group_limits(five + [make("[a = %x%]", name="sixth", group="g")])
    error = info.value
    assert error.code == "LimitExceededException"
    assert error.message == "Resource limit exceeded."
    assert error.limit == "regex_filters_per_log_group"
    assert (error.log_group_name, error.filter_name) == ("g", "sixth")
    assert "at most 5 metric filters with a regular expression per log group; this is the 6th" in str(error)


def test_duplicate_filter_names_in_a_log_group() -> None:
    check_group_limits([make(name="a", group="g1"), make(name="a", group="g2")])
    with pytest.raises(DuplicateFilterError, match=r"'a' is defined twice in log group 'g1' \(filters #1 and #3\)"):
        check_group_limits([make(name="a", group="g1"), make(name="b", group="g1"), make(name="a", group="g1")])


def test_validate_metric_filters_reports_the_first_problem_in_order() -> None:
    bad = make(name="bad", metric_value="x")
    with pytest.raises(LimitExceededError):
        validate_metric_filters(filters(6, "%R%") + [bad])
    with pytest.raises(MetricFilterError) as info:
        validate_metric_filters(filters(2) + [bad] + filters(6, "%R%", prefix="r"))
    assert info.value.filter_name == "bad"


def test_errors_survive_pickling() -> None:
    for error in (
        rejection(make(unit="Widgets")),
        rejection(make("{ $.a = ")),
        LimitExceededError("filters_per_log_group", log_group_name="g", filter_name="f", detail="d"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)


# ---- loading ----------------------------------------------------------------------------------

DESCRIBE_OUTPUT = """{
    "metricFilters": [
        {
            "filterName": "a-number",
            "filterPattern": "{ $.kind = \\"number\\" && $.value = * }",
            "metricTransformations": [
                {
                    "metricName": "JsonNumber",
                    "metricNamespace": "Stackd/NativeMetricFilters/owned",
                    "metricValue": "$.value"
                }
            ],
            "creationTime": 1789348528016,
            "logGroupName": "/stackd/native-metric-filters-owned",
            "applyOnTransformedLogs": false
        },
        {
            "filterName": "c-default",
            "filterPattern": "DEFAULT_MATCH",
            "metricTransformations": [
                {
                    "metricName": "Default",
                    "metricNamespace": "Stackd/NativeMetricFilters/owned",
                    "metricValue": "5",
                    "defaultValue": 3.0
                }
            ],
            "creationTime": 1789348533552,
            "logGroupName": "/stackd/native-metric-filters-owned",
            "applyOnTransformedLogs": false
        },
        {
            "filterName": "e-selection-false",
            "filterPattern": "SYSTEM_MATCH",
            "metricTransformations": [
                {"metricName": "SelectFalse", "metricNamespace": "Stackd/NativeMetricFilters/owned", "metricValue": "23"}
            ],
            "creationTime": 1789348537961,
            "logGroupName": "/stackd/native-metric-filters-owned",
            "applyOnTransformedLogs": false,
            "fieldSelectionCriteria": "@aws.account = \\"999999999999\\""
        }
    ],
    "nextToken": "INc4gNn-MFkI8h_dxlTtePQm_nVFaetBBO-AyCTHRsxdLX36IaULaDVoxMaPK1SYv1YYjyNfsUI0b97zU_9SkQ"
}
"""


def check_describe_filters(loaded: list[MetricFilter]) -> None:
    assert [f.filter_name for f in loaded] == ["a-number", "c-default", "e-selection-false"]
    assert loaded[0].metric_transformations[0].metric_value == "$.value"
    assert loaded[0].creation_time == 1789348528016
    assert loaded[1].metric_transformations[0].default_value == 3.0
    assert loaded[2].field_selection_criteria == '@aws.account = "999999999999"'
    assert all(f.log_group_name == GROUP for f in loaded)


def test_load_pasted_describe_output_file(tmp_path: Path) -> None:
    path = tmp_path / "filters.json"
    path.write_text(DESCRIBE_OUTPUT, encoding="utf-8")
    check_describe_filters(load_metric_filters(path))
    check_describe_filters(load_metric_filters(str(path)))


def test_load_describe_output_dict_and_list() -> None:
    data = json.loads(DESCRIBE_OUTPUT)
    check_describe_filters(load_metric_filters(data))
    check_describe_filters(load_metric_filters(data["metricFilters"]))


def test_load_round_trips_to_aws_shape() -> None:
    data = json.loads(DESCRIBE_OUTPUT)["metricFilters"]
    for item in data:
        del item["applyOnTransformedLogs"]  # false: MetricFilter.to_aws() omits defaults
    assert [f.to_aws() for f in load_metric_filters(data)] == data


def test_load_yaml_list(tmp_path: Path) -> None:
    path = tmp_path / "filters.yaml"
    path.write_text(
        "- filterName: errors\n"
        "  logGroupName: app\n"
        "  filterPattern: ERROR\n"
        "  metricTransformations:\n"
        "    - {metricName: Errors, metricNamespace: App, metricValue: '1', defaultValue: 0, unit: Count}\n",
        encoding="utf-8",
    )
    [f] = load_metric_filters(path)
    assert f == MetricFilter("errors", "ERROR", [MetricTransformation("Errors", "App", "1", 0.0, None, "Count")], "app")


def test_load_validates_every_filter() -> None:
    data = json.loads(DESCRIBE_OUTPUT)
    data["metricFilters"][1]["metricTransformations"][0]["dimensions"] = {"Kind": "$.kind"}
    with pytest.raises(MetricFilterError) as info:
        load_metric_filters(data)
    assert info.value.filter_name == "c-default"
    assert info.value.rule == "default_with_dimensions"


def test_load_checks_group_limits() -> None:
    data = [make("%x%", name=f"r{i}", group="g").to_aws() for i in range(6)]
    with pytest.raises(LimitExceededError):
        load_metric_filters(data)


def test_decode_errors_name_the_path() -> None:
    data = json.loads(DESCRIBE_OUTPUT)
    data["metricFilters"][2]["metricTransformations"][0]["metricValue"] = 1
    with pytest.raises(MetricFilterLoadError) as info:
        load_metric_filters(data)
    assert str(info.value) == (
        'metricFilters[2].metricTransformations[0].metricValue: expected str, got int (write it as a string, e.g. "1")'
    )


def test_decode_missing_key() -> None:
    data = json.loads(DESCRIBE_OUTPUT)["metricFilters"]
    del data[1]["filterPattern"]
    with pytest.raises(MetricFilterLoadError, match=r"^metricFilters\[1\]\.filterPattern: required key missing$"):
        load_metric_filters(data)


def test_decode_unknown_key_is_an_error() -> None:
    data = json.loads(DESCRIBE_OUTPUT)["metricFilters"]
    data[0]["metricTransformations"][0]["defaultValu"] = 0
    with pytest.raises(MetricFilterLoadError) as info:
        load_metric_filters(data)
    assert str(info.value).startswith(
        "metricFilters[0].metricTransformations[0]: unknown key 'defaultValu'; did you mean 'defaultValue'?"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"filters": []}, "got a mapping with keys: filters"),
        ({"metricFilters": "ERROR"}, "metricFilters: expected a list of metric filters, got str"),
        ([1], r"metricFilters\[0\]: expected an object, got int"),
        ({"metricFilters": {"a": 1}}, "metricFilters: expected a list of metric filters, got object"),
    ],
)
def test_wrong_document_shapes(document, message: str) -> None:
    with pytest.raises(MetricFilterLoadError, match=message):
        load_metric_filters(document)


def test_file_with_a_scalar(tmp_path: Path) -> None:
    path = tmp_path / "filters.yaml"
    path.write_text("ERROR\n", encoding="utf-8")
    with pytest.raises(MetricFilterLoadError, match=r"filters.yaml: metricFilters: expected a list of metric filters, got str"):
        load_metric_filters(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MetricFilterLoadError, match="no such file"):
        load_metric_filters(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"metricFilters": [\n  {"filterName": }\n]}', encoding="utf-8")
    with pytest.raises(MetricFilterLoadError, match=r"bad.json: invalid JSON at line 2, column 18"):
        load_metric_filters(bad)


# ---- CloudFormation ---------------------------------------------------------------------------

TEMPLATE = DATA / "cfn-metric-filters.yaml"


def test_cloudformation_yaml_template() -> None:
    loaded = load_metric_filters(TEMPLATE)
    by_name = {f.filter_name: f for f in loaded}
    # FilterName from !Sub with a parameter default; LogGroupName from !Ref to a log group
    # whose name is !Ref to a parameter; MetricValue 1 (a YAML number) becomes "1".
    api = by_name["prod-unauthorized-api-calls"]
    assert api.log_group_name == "/aws/cloudtrail/management"
    assert api.metric_transformations[0] == MetricTransformation("UnauthorizedAPICalls", "CISBenchmark", "1", 0.0)
    # FilterName defaults to the logical id; !Join; Dimensions as [{Key, Value}].
    console = by_name["ConsoleSignInFailuresFilter"]
    assert console.metric_transformations[0] == MetricTransformation(
        "ConsoleSignInFailures-prod", "CISBenchmark", "1", None, {"User": "$.userIdentity.userName"}, "Count"
    )
    # A log group without LogGroupName is known by its logical id; !Sub with a variable map.
    rejected = by_name["rejected-bytes"]
    assert rejected.log_group_name == "FlowLogGroup"
    assert rejected.metric_transformations[0].metric_namespace == "VPC/FlowLogs"
    assert rejected.metric_transformations[0].dimensions == {"Interface": "$eni"}
    # Condition IsProd is true with the default parameters; the alarm is not a filter.
    assert by_name["ProdOnlyFilter"].metric_transformations[0].metric_namespace == "CISBenchmark"
    assert len(loaded) == 4


def test_cloudformation_parameters_override_defaults() -> None:
    loaded = load_metric_filters(TEMPLATE, parameters={"Env": "dev", "TrailLogGroupName": "trail"})
    names = [f.filter_name for f in loaded]
    assert names == ["dev-unauthorized-api-calls", "ConsoleSignInFailuresFilter", "rejected-bytes"]
    assert loaded[0].log_group_name == "trail"
    assert loaded[0].metric_transformations[0].metric_namespace == "CISBenchmark-dev"


def test_cloudformation_unknown_parameter() -> None:
    with pytest.raises(MetricFilterLoadError, match=r"parameter 'Envv' is not declared in the template"):
        load_metric_filters(TEMPLATE, parameters={"Envv": "dev"})


CFN_JSON = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"AppName": {"Type": "String", "Default": "checkout"}},
    "Resources": {
        "AppLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/app/${AppName}"}}},
        "LatencyFilter": {
            "Type": "AWS::Logs::MetricFilter",
            "Properties": {
                "FilterName": "latency",
                "LogGroupName": {"Ref": "AppLogs"},
                "FilterPattern": "{ $.latencyMs = * }",
                "MetricTransformations": [
                    {
                        "MetricName": "Latency",
                        "MetricNamespace": {"Fn::Join": ["/", ["App", {"Ref": "AppName"}]]},
                        "MetricValue": "$.latencyMs",
                        "Unit": "Milliseconds",
                        "Dimensions": [{"Key": "Route", "Value": "$.route"}],
                    }
                ],
            },
        },
    },
}


def test_cloudformation_json_template(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(CFN_JSON, indent=2), encoding="utf-8")
    [f] = load_metric_filters(path)
    assert f.filter_name == "latency"
    assert f.log_group_name == "/app/checkout"
    assert f.metric_transformations[0] == MetricTransformation(
        "Latency", "App/checkout", "$.latencyMs", None, {"Route": "$.route"}, "Milliseconds"
    )


def write_template(tmp_path: Path, log_group: str, extra: str = "") -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(
        f"""Parameters:
  NoDefault: {{Type: String}}
Resources:
  Topic: {{Type: AWS::SNS::Topic}}
  Errors:
    Type: AWS::Logs::MetricFilter
    Properties:
      LogGroupName: {log_group}
      FilterPattern: ERROR
      MetricTransformations:
        - {{MetricName: Errors, MetricNamespace: App, MetricValue: '1'}}
{extra}""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("log_group", "reason"),
    [
        ("!Sub '/aws/lambda/${AWS::Region}'", "the pseudo parameter AWS::Region is only known in a deployed stack"),
        ("!Ref AWS::AccountId", "the pseudo parameter AWS::AccountId is only known in a deployed stack"),
        ("!GetAtt Topic.TopicName", "Fn::GetAtt gives an attribute of a deployed resource"),
        ("!Ref NoDefault", "parameter NoDefault has no Default"),
        ("!Ref Topic", "Ref to Topic (a AWS::SNS::Topic resource) is only known in a deployed stack"),
        ("!Ref Nothing", "Ref to 'Nothing': no such parameter or resource"),
        ("!Sub '${Topic.TopicName}'", "is an attribute of a deployed resource"),
        ("!ImportValue shared-group", "Fn::ImportValue gives an export of another deployed stack"),
        ("!Base64 abc", "Fn::Base64 is not supported"),
    ],
)
def test_cloudformation_unresolvable_values(tmp_path: Path, log_group: str, reason: str) -> None:
    path = write_template(tmp_path, log_group)
    with pytest.raises(MetricFilterLoadError) as info:
        load_metric_filters(path)
    error = info.value
    assert error.source == str(path)
    assert error.location == "Resources.Errors.Properties.LogGroupName"
    assert reason in error.reason
    assert str(error).startswith(f"{path}: Resources.Errors.Properties.LogGroupName: cannot resolve ")


def test_cloudformation_pseudo_parameter_given_explicitly(tmp_path: Path) -> None:
    path = write_template(tmp_path, "!Sub '/aws/lambda/${AWS::Region}-${NoDefault}'")
    [f] = load_metric_filters(path, parameters={"AWS::Region": "eu-west-1", "NoDefault": "fn"})
    assert f.log_group_name == "/aws/lambda/eu-west-1-fn"
    assert f.filter_name == "Errors"


def test_cloudformation_unknown_property(tmp_path: Path) -> None:
    path = write_template(tmp_path, "app", "      Filter: x\n")
    with pytest.raises(MetricFilterLoadError, match=r"Resources.Errors.Properties: unknown property 'Filter'"):
        load_metric_filters(path)


def test_cloudformation_invalid_filter_is_a_metric_filter_error(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """Resources:
  Bad:
    Type: AWS::Logs::MetricFilter
    Properties:
      LogGroupName: app
      FilterPattern: ERROR
      MetricTransformations:
        - MetricName: Errors
          MetricNamespace: App
          MetricValue: '1'
          Dimensions: [{Key: Env, Value: prod}]
""",
        encoding="utf-8",
    )
    with pytest.raises(MetricFilterError) as info:
        load_metric_filters(path)
    assert info.value.filter_name == "Bad"
    assert info.value.message == "Invalid metric transformation: dimension value must be valid selector"


def test_cloudformation_template_without_filters(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("AWSTemplateFormatVersion: 2010-09-09\nResources: {}\n", encoding="utf-8")
    assert load_metric_filters(path) == []


def test_cloudformation_json_under_another_name(tmp_path: Path) -> None:
    path = tmp_path / "stack.template"
    path.write_text(json.dumps(CFN_JSON, indent="\t"), encoding="utf-8")  # tabs: JSON, not YAML
    [f] = load_metric_filters(path)
    assert f.log_group_name == "/app/checkout"


def test_cloudformation_no_value_drops_a_property(tmp_path: Path) -> None:
    path = write_template(tmp_path, "app", "      FieldSelectionCriteria: !Ref AWS::NoValue\n")
    [f] = load_metric_filters(path)
    assert f.field_selection_criteria is None


def test_cloudformation_error_names_the_nested_property(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """Resources:
  Errors:
    Type: AWS::Logs::MetricFilter
    Properties:
      LogGroupName: app
      FilterPattern: ERROR
      MetricTransformations:
        - MetricName: Errors
          MetricNamespace: !Join ['/', [App, !Ref AWS::Region]]
          MetricValue: 1
""",
        encoding="utf-8",
    )
    with pytest.raises(MetricFilterLoadError) as info:
        load_metric_filters(path)
    assert info.value.location == "Resources.Errors.Properties.MetricTransformations[0].MetricNamespace"
    assert info.value.reason.startswith('cannot resolve {"Ref": "AWS::Region"}: the pseudo parameter AWS::Region')


# ---- CloudFormation: templates of the wrong shape, cycles, parameter values ---------------------

FILTER_RESOURCE = (
    "  F1: {Type: AWS::Logs::MetricFilter, Properties: {LogGroupName: %s, FilterPattern: ERROR,"
    " MetricTransformations: [{MetricName: %s, MetricNamespace: N, MetricValue: '1'}]}}\n"
)


def template_error(tmp_path: Path, text: str, parameters: dict | None = None) -> MetricFilterLoadError:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MetricFilterLoadError) as info:
        load_metric_filters(path, parameters=parameters)
    assert info.value.source == str(path)
    return info.value


@pytest.mark.parametrize(
    ("head", "log_group", "extra", "location", "reason"),
    [
        ("Parameters: {P: 5}\n", "!Ref P", "", "Parameters.P", "expected a parameter declaration such as"),
        ("Parameters: [P]\n", "!Ref P", "", "Parameters", "expected a mapping of names to definitions, got array"),
        ("Conditions: 5\n", "g", "", "Conditions", "expected a mapping of names to definitions, got int"),
        ("Mappings: {M: [1]}\n", "g", "", "Mappings.M", "expected a mapping of top-level keys"),
        ("Mappings: {M: {K: 5}}\n", "g", "", "Mappings.M.K", "expected a mapping of second-level keys"),
        ("", "!Ref LG", "  LG: {Type: AWS::Logs::LogGroup, Properties: 5}\n", "Resources.LG.Properties",
         "expected a mapping of properties, got int"),
        ("", "g", "  X: 5\n", "Resources.X", "expected a resource mapping (Type, Properties), got int"),
    ],
)
def test_cloudformation_sections_of_the_wrong_shape(
    tmp_path: Path, head: str, log_group: str, extra: str, location: str, reason: str
) -> None:
    """Named errors, not TypeErrors, for sections that are not mappings of mappings."""
    text = head + "Resources:\n" + FILTER_RESOURCE % (log_group, "M") + extra
    error = template_error(tmp_path, text)
    assert (error.location, reason in error.reason) == (location, True), str(error)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("  LG: {Type: AWS::Logs::LogGroup, Properties: {LogGroupName: !Ref LG}}\n",
         "circular reference: the LogGroupName of LG refers to LG itself"),
        ("  LG: {Type: AWS::Logs::LogGroup, Properties: {LogGroupName: !Sub '${B}-x'}}\n"
         "  B: {Type: AWS::Logs::LogGroup, Properties: {LogGroupName: !Join ['', [!Ref LG]]}}\n",
         "circular reference: LG -> B -> LG (the LogGroupName of each refers to the next)"),
    ],
)
def test_cloudformation_circular_log_group_names(tmp_path: Path, extra: str, reason: str) -> None:
    """A log group whose name refers back to itself is an error, not a RecursionError."""
    error = template_error(tmp_path, "Resources:\n" + FILTER_RESOURCE % ("!Ref LG", "M") + extra)
    assert error.location == "Resources.F1.Properties.LogGroupName"
    assert error.reason.endswith(reason), error.reason


def test_cloudformation_condition_named_by_a_list(tmp_path: Path) -> None:
    text = (
        "Conditions: {C: {Condition: [x]}}\nResources:\n"
        "  F1: {Type: AWS::Logs::MetricFilter, Condition: C, Properties: {LogGroupName: g, FilterPattern: ERROR,"
        " MetricTransformations: [{MetricName: M, MetricNamespace: N, MetricValue: '1'}]}}\n"
    )
    error = template_error(tmp_path, text)
    assert error.location == "Resources.F1.Condition"
    assert "a condition is named by a string" in error.reason


@pytest.mark.parametrize(
    ("declaration", "parameters", "location", "reason"),
    [
        ("{Type: String}", {"Env": None}, "parameters.Env", "a parameter value cannot be null"),
        ("{Type: String, Default: null}", None, "Parameters.Env.Default", "a parameter value cannot be null"),
        ("{Type: String, Default: {Ref: Env}}", None, "Parameters.Env.Default",
         'expected a string, got the intrinsic function {"Ref": "Env"}, which is not evaluated here'),
        ("{Type: String, Default: {a: 1}}", None, "Parameters.Env.Default",
         'expected a string, got a mapping {"a": 1}'),
        ("{Type: String}", {"Env": {"a": 1}}, "parameters.Env", 'expected a string, got a mapping {"a": 1}'),
        ("{Type: CommaDelimitedList, Default: [a, null]}", None, "Parameters.Env.Default",
         'expected a list of strings, got ["a", null]'),
    ],
)
def test_cloudformation_parameter_values_are_strings(
    tmp_path: Path, declaration: str, parameters: dict | None, location: str, reason: str
) -> None:
    """Never the text 'None' or a mapping's repr as a metric or log group name."""
    text = f"Parameters:\n  Env: {declaration}\nResources:\n" + FILTER_RESOURCE % ("g", "!Sub 'Err-${Env}'")
    error = template_error(tmp_path, text, parameters)
    assert error.location == location
    assert error.reason.startswith(reason), error.reason


def test_cloudformation_scalar_parameter_values_as_text(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Parameters:\n  Flags: {Type: CommaDelimitedList, Default: [a, true]}\n  Env: {Type: String, Default: 5}\n"
        "Resources:\n" + FILTER_RESOURCE % ("!Select [1, !Ref Flags]", "!Sub 'Err-${Env}'"),
        encoding="utf-8",
    )
    [f] = load_metric_filters(path)
    assert (f.log_group_name, f.metric_transformations[0].metric_name) == ("true", "Err-5")
    [f] = load_metric_filters(path, parameters={"Env": False})
    assert f.metric_transformations[0].metric_name == "Err-false"


# ---- PutSubscriptionFilter ---------------------------------------------------------------------

_SUBSCRIPTION = dict(
    log_group_name="app/one", filter_name="to-lambda", filter_pattern='{ $.level = "ERROR" }',
    destination_arn="arn:aws:lambda:us-east-1:123456789012:function:sink",
)


def test_subscription_filter_is_validated_like_put_subscription_filter():
    """The pattern language and names of metric filters (§1, §8.1); a Lambda destination
    needs no role; the compiled pattern comes back."""
    from castlewatch.metric_filters import validate_subscription_filter

    assert validate_subscription_filter(**_SUBSCRIPTION).kind == "json"
    assert validate_subscription_filter(**{**_SUBSCRIPTION, "filter_pattern": ""}).kind == "all"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filter_pattern": "{ $.level = }"}, "Invalid metric filter pattern"),
        ({"filter_name": "a:b"}, "1 validation error detected: Value at 'filterName' failed to satisfy constraint: "
                                 "Member must satisfy regular expression pattern: [^:*]*"),
        ({"log_group_name": ""}, "1 validation error detected: Value at 'logGroupName' failed to satisfy constraint: "
                                 "Member must have length greater than or equal to 1"),
        ({"destination_arn": ""}, "1 validation error detected: Value at 'destinationArn' failed to satisfy "
                                  "constraint: Member must have length greater than or equal to 1"),
        ({"distribution": "random"}, "1 validation error detected: Value at 'distribution' failed to satisfy "
                                     "constraint: Member must satisfy enum value set: [Random, ByLogStream]"),
        ({"emit_system_fields": ["@aws.zone"]}, "The provided system fields are invalid. The supported system fields "
                                                "are - [@aws.region, @aws.account, @source.log]"),
        ({"field_selection_criteria": "@aws.region =="}, "The provided field selection criteria is invalid"),
        ({"destination_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/s"},
         "destinationArn for vendor kinesis cannot be used without roleArn"),
    ],
    ids=["pattern", "filter-name", "log-group", "destination", "distribution", "system-fields", "criteria",
         "kinesis-without-role"],
)
def test_subscription_filter_refusals_carry_the_services_message(change, message):
    from castlewatch.metric_filters import MetricFilterError, validate_subscription_filter

    with pytest.raises(MetricFilterError) as info:
        validate_subscription_filter(**{**_SUBSCRIPTION, **change})
    assert info.value.message == message
    assert info.value.code == "InvalidParameterException"
