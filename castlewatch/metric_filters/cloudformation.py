"""Metric filters from the ``AWS::Logs::MetricFilter`` resources of a CloudFormation template.

Intrinsic functions are resolved where the template alone determines them
(:class:`_CfnResolver`); a value only a deployment knows (``Fn::GetAtt``,
``Fn::ImportValue``...) is a :class:`~castlewatch.metric_filters.errors.MetricFilterLoadError`
naming the resource and the property.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from castlewatch.metric_filters.describe import type_name
from castlewatch.metric_filters.errors import MetricFilterLoadError
from castlewatch.model import MetricFilter

_NO_VALUE = object()  # AWS::NoValue: the property is removed
_CFN_FILTER_PROPERTIES = (
    "FilterName",
    "FilterPattern",
    "LogGroupName",
    "MetricTransformations",
    "ApplyOnTransformedLogs",
    "EmitSystemFieldDimensions",
    "FieldSelectionCriteria",
)
_CFN_TRANSFORMATION_PROPERTIES = ("MetricName", "MetricNamespace", "MetricValue", "DefaultValue", "Dimensions", "Unit")
_UNKNOWABLE_FUNCTIONS = {
    "Fn::GetAtt": "an attribute of a deployed resource",
    "Fn::ImportValue": "an export of another deployed stack",
    "Fn::GetAZs": "the availability zones of the deploying account",
}


class _Unresolvable(Exception):
    """A value castlewatch cannot know from the template.

    ``where``: the property holding the intrinsic function; ``node``: the innermost
    intrinsic function that failed.
    """

    where: str | None = None
    node: Any = None


class _Circular(_Unresolvable):
    """Log groups whose ``LogGroupName`` refers (through ``Ref`` or ``Fn::Sub``) back to itself."""


class _CfnResolver:
    """Resolves intrinsic functions whose result the template alone determines.

    Supported: ``Ref`` to a parameter (its ``Default``, or a value given in
    ``parameters``) or to an ``AWS::Logs::LogGroup`` (its ``LogGroupName``, or its
    logical id when it has none), ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``,
    ``Fn::FindInMap``, ``Fn::If`` with template ``Conditions`` (``Fn::Equals``,
    ``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Condition``), ``AWS::NoValue``.  Pseudo
    parameters (``AWS::Region``, ``AWS::AccountId``, ...) only when given in
    ``parameters``: castlewatch does not invent them.  A log group whose
    ``LogGroupName`` refers back to itself (directly or through other log groups) and
    a condition that refers to itself are :class:`_Unresolvable` (circular), not a
    ``RecursionError``.  The template's sections are checked first
    (:func:`_check_template_sections`).
    """

    def __init__(self, template: Mapping, overrides: Mapping[str, Any] | None) -> None:
        self.parameters = template.get("Parameters") or {}
        self.mappings = template.get("Mappings") or {}
        self.conditions = template.get("Conditions") or {}
        self.resources = template.get("Resources") or {}
        self.overrides = dict(overrides or {})
        self._condition_values: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._log_groups: list[str] = []  # log groups whose LogGroupName is being resolved

    # -- values --

    def resolve(self, node: Any, where: str | None = None) -> Any:
        """``node`` with every intrinsic function replaced by its value.

        ``where`` is the node's location in the template (None inside a function's
        arguments); an :class:`_Unresolvable` leaves with the location of the property
        holding the failing function.
        """
        if isinstance(node, Mapping):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                    try:
                        return self.ref(arg) if key == "Ref" else self.function(key, arg)
                    except _Unresolvable as error:
                        if error.node is None:
                            error.node = node
                        if error.where is None and where is not None:
                            error.where = where
                        raise
            out = {}
            for key, value in node.items():
                value = self.resolve(value, None if where is None else f"{where}.{key}")
                if value is not _NO_VALUE:
                    out[key] = value
            return out
        if isinstance(node, list):
            items = (self.resolve(item, None if where is None else f"{where}[{i}]") for i, item in enumerate(node))
            return [v for v in items if v is not _NO_VALUE]
        if isinstance(node, (_dt.date, _dt.datetime)):  # YAML reads 2010-09-09 as a date
            return node.isoformat()
        return node

    def text(self, node: Any, what: str) -> str:
        value = self.resolve(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise _Unresolvable(f"{what} must be a string, got {type_name(value)}")

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise _Unresolvable(f"Ref takes a name, got {type_name(name)}")
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.overrides:
            return self._parameter_value(name, self.overrides[name])
        if name.startswith("AWS::"):
            raise _Unresolvable(
                f"the pseudo parameter {name} is only known in a deployed stack; "
                f"give its value in parameters ({name}: ...) or write the value in the template"
            )
        if name in self.parameters:
            spec = self.parameters[name] or {}
            if "Default" not in spec:
                raise _Unresolvable(f"parameter {name} has no Default; give its value in parameters ({name}: ...)")
            return self._parameter_value(name, spec["Default"])
        resource = self.resources.get(name)
        if isinstance(resource, Mapping):
            kind = resource.get("Type")
            if kind == "AWS::Logs::LogGroup":
                props = resource.get("Properties") or {}
                if not isinstance(props, Mapping):
                    raise _Unresolvable(f"Ref {name}: Resources.{name}.Properties is not a mapping")
                if "LogGroupName" in props:
                    if name in self._log_groups:
                        cycle = self._log_groups[self._log_groups.index(name) :]
                        if len(cycle) == 1:
                            raise _Circular(f"circular reference: the LogGroupName of {name} refers to {name} itself")
                        raise _Circular(
                            f"circular reference: {' -> '.join(cycle + [name])} "
                            "(the LogGroupName of each refers to the next)"
                        )
                    self._log_groups.append(name)
                    try:
                        return self.text(props["LogGroupName"], "LogGroupName")
                    except _Circular:
                        raise
                    except _Unresolvable as error:
                        raise _Unresolvable(f"Ref {name}: Resources.{name}.Properties.LogGroupName: {error}") from None
                    finally:
                        self._log_groups.pop()
                return name  # CloudFormation generates the name; castlewatch uses the logical id
            raise _Unresolvable(f"Ref to {name} (a {kind} resource) is only known in a deployed stack")
        raise _Unresolvable(f"Ref to {name!r}: no such parameter or resource in the template")

    def _parameter_value(self, name: str, value: Any) -> Any:
        problem = _parameter_value_problem(value)  # checked when loading; kept for direct use
        if problem:
            raise _Unresolvable(f"parameter {name}: {problem}")
        spec = self.parameters.get(name) or {}
        kind = str(spec.get("Type", "String"))
        if isinstance(value, list):
            return [_scalar_text(v) for v in value]
        value = _scalar_text(value)
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [part.strip() for part in value.split(",")]
        return value

    def function(self, name: str, arg: Any) -> Any:
        if name == "Fn::Sub":
            return self._sub(arg)
        if name == "Fn::Join":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise _Unresolvable("Fn::Join takes [delimiter, [values...]]")
            delimiter = self.text(arg[0], "the Fn::Join delimiter")
            items = self.resolve(arg[1])
            if not isinstance(items, list):
                raise _Unresolvable("Fn::Join needs a list of values")
            return delimiter.join(self.text(item, "an Fn::Join value") for item in items)
        if name == "Fn::Select":
            if not (isinstance(arg, list) and len(arg) == 2):
                raise _Unresolvable("Fn::Select takes [index, [values...]]")
            index = self.text(arg[0], "the Fn::Select index")
            items = self.resolve(arg[1])
            if not index.isdigit() or not isinstance(items, list) or int(index) >= len(items):
                raise _Unresolvable(f"Fn::Select index {index} is not within the list")
            return items[int(index)]
        if name == "Fn::FindInMap":
            if not (isinstance(arg, list) and len(arg) == 3):
                raise _Unresolvable("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
            keys = [self.text(k, "an Fn::FindInMap key") for k in arg]
            try:
                return self.resolve(self.mappings[keys[0]][keys[1]][keys[2]])
            except (KeyError, TypeError):
                raise _Unresolvable(f"Fn::FindInMap: no Mappings entry {'.'.join(keys)}") from None
        if name == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
                raise _Unresolvable("Fn::If takes [ConditionName, value_if_true, value_if_false]")
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if name in _UNKNOWABLE_FUNCTIONS:
            raise _Unresolvable(f"{name} gives {_UNKNOWABLE_FUNCTIONS[name]}, only known in a deployed stack")
        raise _Unresolvable(f"{name} is not supported by castlewatch; write the value in the template")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], Mapping):
            template, variables = arg[0], arg[1]
        else:
            template, variables = arg, {}
        if not isinstance(template, str):
            raise _Unresolvable("Fn::Sub takes a string or [string, {variables}]")

        def replace(match: re.Match) -> str:
            body = match.group(1)
            if body.startswith("!"):  # ${!Literal} is the text ${Literal}
                return "${" + body[1:] + "}"
            body = body.strip()
            if body in variables:
                return self.text(variables[body], f"Fn::Sub variable {body}")
            if "." in body:
                raise _Unresolvable(f"${{{body}}} is an attribute of a deployed resource (Fn::GetAtt)")
            value = self.ref(body)
            if value is _NO_VALUE or not isinstance(value, str):
                raise _Unresolvable(f"${{{body}}} is not a string value")
            return value

        return re.sub(r"\$\{([^}]*)\}", replace, template)

    # -- conditions --

    def condition(self, name: str) -> bool:
        if not isinstance(name, str):
            raise _Unresolvable(f"a condition is named by a string, got {_show(name)}")
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            raise _Unresolvable(f"no condition {name!r} in the template's Conditions")
        if name in self._evaluating:
            raise _Unresolvable(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            value = self._condition_expr(self.conditions[name])
        except _Unresolvable as error:
            raise _Unresolvable(f"condition {name}: {error}") from None
        finally:
            self._evaluating.discard(name)
        self._condition_values[name] = value
        return value

    def _condition_expr(self, node: Any) -> bool:
        if not (isinstance(node, Mapping) and len(node) == 1):
            raise _Unresolvable("a condition is one of Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition")
        ((key, arg),) = node.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = (self.resolve(v) for v in arg)
            return _plain(left) == _plain(right)
        if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._condition_expr(item) for item in arg]
            return all(values) if key == "Fn::And" else any(values)
        if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            return not self._condition_expr(arg[0])
        raise _Unresolvable(f"{key} is not a condition function castlewatch evaluates")


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def is_cloudformation_template(data: Any) -> bool:
    """A mapping with ``Resources`` or ``AWSTemplateFormatVersion``."""
    return isinstance(data, Mapping) and ("Resources" in data or "AWSTemplateFormatVersion" in data)


def filters_from_template(
    template: Mapping, source, parameters: Mapping[str, Any] | None
) -> list[MetricFilter]:
    _check_template_sections(template, source)
    resources = template["Resources"]
    declared = template.get("Parameters") or {}
    for name, value in (parameters or {}).items():
        if name not in declared and not str(name).startswith("AWS::"):
            raise MetricFilterLoadError(
                f"parameter {name!r} is not declared in the template "
                f"(its parameters: {', '.join(map(str, declared)) or 'none'})",
                source=source,
                location="parameters",
            )
        problem = _parameter_value_problem(value)
        if problem:
            raise MetricFilterLoadError(problem, source=source, location=f"parameters.{name}")
    resolver = _CfnResolver(template, parameters)
    filters = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Logs::MetricFilter":
            continue
        where = f"Resources.{logical_id}"
        if "Condition" in resource:
            try:
                if not resolver.condition(resource["Condition"]):
                    continue  # not created with these parameter values
            except _Unresolvable as error:
                raise MetricFilterLoadError(str(error), source=source, location=where + ".Condition") from None
        props = resource.get("Properties")
        if not isinstance(props, Mapping):
            raise MetricFilterLoadError("needs Properties", source=source, location=where)
        filters.append(_filter_from_cfn(props, str(logical_id), where + ".Properties", resolver, source))
    return filters


def _check_template_sections(template: Mapping, source) -> None:
    """Refuse template sections of the wrong shape, naming the section (and entry).

    ``Resources`` is a mapping of logical ids to mappings (``Properties``, when given, a
    mapping); ``Parameters`` a mapping of names to declarations (mappings; an empty one
    is a ``String`` without default) whose ``Default`` is a string, number or boolean
    (or, for a list type, a list of those): never null, a mapping or an intrinsic
    function, which CloudFormation does not evaluate there; ``Mappings`` a mapping of
    mappings of mappings; ``Conditions`` a mapping.  Empty sections are absent ones.
    """

    def fail(location: str, reason: str) -> MetricFilterLoadError:
        return MetricFilterLoadError(reason, source=source, location=location)

    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        raise fail("Resources", f"a CloudFormation template needs a Resources mapping, got {type_name(resources)}")
    for logical_id, resource in resources.items():
        where = f"Resources.{logical_id}"
        if not isinstance(resource, Mapping):
            raise fail(where, f"expected a resource mapping (Type, Properties), got {type_name(resource)}")
        if "Properties" in resource and resource["Properties"] is not None:
            props = resource["Properties"]
            if not isinstance(props, Mapping):
                raise fail(f"{where}.Properties", f"expected a mapping of properties, got {type_name(props)}")
    for section in ("Parameters", "Mappings", "Conditions"):
        value = template.get(section)
        if value is not None and not isinstance(value, Mapping):
            raise fail(section, f"expected a mapping of names to definitions, got {type_name(value)}")
    for name, spec in (template.get("Parameters") or {}).items():
        where = f"Parameters.{name}"
        if spec is None:
            continue
        if not isinstance(spec, Mapping):
            shape = "{Type: String, Default: ...}"
            raise fail(where, f"expected a parameter declaration such as {shape}, got {_show(spec)}")
        if "Default" in spec:
            problem = _parameter_value_problem(spec["Default"])
            if problem:
                raise fail(f"{where}.Default", problem)
    for name, entries in (template.get("Mappings") or {}).items():
        if not isinstance(entries, Mapping):
            raise fail(f"Mappings.{name}", f"expected a mapping of top-level keys, got {type_name(entries)}")
        for key, values in entries.items():
            if not isinstance(values, Mapping):
                raise fail(
                    f"Mappings.{name}.{key}", f"expected a mapping of second-level keys, got {type_name(values)}"
                )


def _scalar_text(value: Any) -> str:
    """A parameter's scalar value as CloudFormation passes it: text (``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _parameter_value_problem(value: Any) -> str:
    """Why ``value`` cannot be a parameter's value or ``Default``, or ``""``.

    CloudFormation parameter values are strings (numbers and booleans are written as
    their text); a list is accepted for list types.  Null, a mapping and an intrinsic
    function are not values.
    """
    scalar = (str, int, float, bool, _dt.date)
    if value is None:
        return "a parameter value cannot be null; give a string (e.g. '' for an empty value)"
    if isinstance(value, list):
        if all(isinstance(item, scalar) for item in value):
            return ""
        return f"expected a list of strings, got {_show(value)}"
    if isinstance(value, scalar):
        return ""
    if isinstance(value, Mapping) and len(value) == 1 and ("Ref" in value or str(next(iter(value))).startswith("Fn::")):
        return f"expected a string, got the intrinsic function {_show(value)}, which is not evaluated here"
    return f"expected a string, got {'a mapping' if isinstance(value, Mapping) else type_name(value)} {_show(value)}"


def _filter_from_cfn(props: Mapping, logical_id: str, where: str, resolver: _CfnResolver, source) -> MetricFilter:
    def err(location: str, reason: str) -> MetricFilterLoadError:
        return MetricFilterLoadError(reason, source=source, location=location)

    def text(v: Any, location: str, *, numbers: bool = False) -> str:
        if isinstance(v, str):
            return v
        if numbers and isinstance(v, (int, float)) and not isinstance(v, bool):
            return str(v)  # CloudFormation turns scalars of String properties into strings
        raise err(location, f"expected a string, got {type_name(v)}")

    try:
        props = resolver.resolve(props, where)
    except _Unresolvable as error:
        raise err(error.where or where, f"cannot resolve {_show(error.node)}: {error}") from None
    _check_cfn_keys(props, _CFN_FILTER_PROPERTIES, where, source, "AWS::Logs::MetricFilter")
    for required in ("FilterPattern", "LogGroupName", "MetricTransformations"):
        if required not in props:
            raise err(f"{where}.{required}", "required property missing")
    data: dict[str, Any] = {
        "filterName": text(props["FilterName"], f"{where}.FilterName") if "FilterName" in props else logical_id,
        "filterPattern": text(props["FilterPattern"], f"{where}.FilterPattern", numbers=True),
        "logGroupName": text(props["LogGroupName"], f"{where}.LogGroupName"),
    }
    transformations = props["MetricTransformations"]
    if not isinstance(transformations, list):
        raise err(f"{where}.MetricTransformations", f"expected a list, got {type_name(transformations)}")
    data["metricTransformations"] = []
    for i, t in enumerate(transformations):
        at = f"{where}.MetricTransformations[{i}]"
        if not isinstance(t, Mapping):
            raise err(at, f"expected a mapping, got {type_name(t)}")
        _check_cfn_keys(t, _CFN_TRANSFORMATION_PROPERTIES, at, source, "MetricTransformation")
        for required in ("MetricName", "MetricNamespace", "MetricValue"):
            if required not in t:
                raise err(f"{at}.{required}", "required property missing")
        out: dict[str, Any] = {
            "metricName": text(t["MetricName"], f"{at}.MetricName"),
            "metricNamespace": text(t["MetricNamespace"], f"{at}.MetricNamespace"),
            "metricValue": text(t["MetricValue"], f"{at}.MetricValue", numbers=True),
        }
        if "DefaultValue" in t:
            default = t["DefaultValue"]
            try:
                if isinstance(default, bool):
                    raise ValueError
                out["defaultValue"] = float(default)
            except (TypeError, ValueError):
                raise err(f"{at}.DefaultValue", f"expected a number, got {_show(default)}") from None
        if "Unit" in t:
            out["unit"] = text(t["Unit"], f"{at}.Unit")
        if "Dimensions" in t:
            dims = t["Dimensions"]
            if not isinstance(dims, list):
                raise err(f"{at}.Dimensions", f"expected a list of {{Key, Value}}, got {type_name(dims)}")
            out["dimensions"] = {}
            for j, dim in enumerate(dims):
                dat = f"{at}.Dimensions[{j}]"
                if not isinstance(dim, Mapping) or set(dim) != {"Key", "Value"}:
                    raise err(dat, "expected a mapping with exactly Key and Value")
                key = text(dim["Key"], f"{dat}.Key")
                if key in out["dimensions"]:
                    raise err(f"{dat}.Key", f"dimension {key!r} is given twice")
                out["dimensions"][key] = text(dim["Value"], f"{dat}.Value")
        data["metricTransformations"].append(out)
    if "ApplyOnTransformedLogs" in props:
        flag = props["ApplyOnTransformedLogs"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise err(f"{where}.ApplyOnTransformedLogs", f"expected true or false, got {_show(flag)}")
        data["applyOnTransformedLogs"] = flag
    if "EmitSystemFieldDimensions" in props:
        fields = props["EmitSystemFieldDimensions"]
        if not (isinstance(fields, list) and all(isinstance(x, str) for x in fields)):
            raise err(f"{where}.EmitSystemFieldDimensions", "expected a list of strings")
        data["emitSystemFieldDimensions"] = fields
    if "FieldSelectionCriteria" in props:
        data["fieldSelectionCriteria"] = text(props["FieldSelectionCriteria"], f"{where}.FieldSelectionCriteria")
    return msgspec.convert(data, MetricFilter)


def _check_cfn_keys(data: Mapping, allowed: tuple[str, ...], where: str, source, kind: str) -> None:
    for key in data:
        if key not in allowed:
            raise MetricFilterLoadError(
                f"unknown property {key!r} ({kind} allows: {', '.join(allowed)})",
                source=source,
                location=where,
            )


def _show(node: Any) -> str:
    try:
        return json.dumps(node, default=str)
    except (TypeError, ValueError):
        return repr(node)
