"""Reading the configuration's YAML and decoding it with msgspec into :mod:`.schema`'s Structs.

msgspec reports what is wrong and where (``Invalid enum value 'ndjson' - at
`$.sources[0].format```); this module says it in the configuration's terms:
the key's path (``sources[0].format``), what is allowed there (the field's
``Meta(description)``, its ``Literal`` values, or a Struct's keys), what was given,
a "did you mean" (difflib) for a misspelt key or value, and, from the YAML nodes
kept beside the data, the line and column of the key at fault.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from castlewatch.engine.config.model import ConfigError
from castlewatch.metric_filters import yaml_error_text

if TYPE_CHECKING:
    import yaml

T = TypeVar("T")

_AT = re.compile(r"(?s)(.*?)(?: - at (`key` in )?`\$(.*)`)?")
_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


@functools.cache
def _unique_key_loader() -> type:
    """PyYAML's safe loader, refusing a mapping that gives one key twice (made on first use:
    reading a JSON configuration does not import PyYAML).

    Plain YAML keeps the last value silently (a second ``sources:`` would replace the
    first).  Keys brought in by a merge (``<<: *defaults``) may be overridden, as YAML
    intends.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            if isinstance(node, yaml.MappingNode):
                seen: dict[Any, yaml.Node] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:  # an unhashable key: the safe loader refuses it below
                        continue
                    if first is not key_node:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"key {key!r} is given twice in one mapping (first at line {first.start_mark.line + 1}); "
                            "YAML would keep only the last value: remove or merge one",
                            key_node.start_mark,
                        )
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


class _NotPlainJson(Exception):
    """A JSON text read as YAML instead: a key given twice, ``NaN`` or ``Infinity``."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _NotPlainJson
    return out


def _constant(name: str) -> Any:
    raise _NotPlainJson


#: What :func:`read_json` returns for a text that is not one plain JSON object.
NOT_JSON = object()


def read_json(text: str) -> Any:
    """The data of ``text`` when it is one JSON object (RFC 8259, no key given twice, no
    ``NaN``/``Infinity``), read by the standard library's C decoder with JSON's own meaning
    of numbers (YAML 1.1 would read ``1e3`` and ``1.5e3`` as strings); else :data:`NOT_JSON`,
    and the caller reads it as YAML, which reports any error with its line."""
    if not text.lstrip(" \t\r\n").startswith("{"):
        return NOT_JSON
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except (ValueError, RecursionError, _NotPlainJson):
        return NOT_JSON


def read_yaml(text: str, source: str | os.PathLike | None) -> tuple[yaml.Node | None, Any]:
    """The YAML document's root node (for :func:`with_line`) and its data (safe types only).

    Raises:
        ConfigError: not YAML, or a key given twice (with line and column).
    """
    import yaml

    loader = None
    try:
        loader = _unique_key_loader()(text)  # its reader refuses some characters (DEL, U+FFFE) at once
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ConfigError(yaml_error_text(error), source=source) from None
    finally:
        if loader is not None:
            loader.dispose()


def decode(data: Any, schema: type[T] | Any, *, where: str = "", source: str | os.PathLike | None = None) -> T:
    """``data`` (from YAML) as ``schema``, strictly (no string-to-number coercion).

    Raises:
        ConfigError: naming the key (``where`` + msgspec's path), what is expected
            there and what was given; a misspelt key or value gets a "did you mean".
    """
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as error:
        raise _error(str(error), schema, data, where, source) from None


def with_line(error: ConfigError, root: yaml.Node | None) -> ConfigError:
    """``error`` with the line and column of the key its location names in the YAML
    whose root node is ``root`` (of the entry lacking it, for a missing key)."""
    if root is None or not error.location or error.line is not None:
        return error
    line, column = position_of(error.location, root)
    return ConfigError(error.reason, source=error.source, location=error.location, line=line, column=column)


def position_of(location: str, root: yaml.Node) -> tuple[int, int]:
    """1-based ``(line, column)`` in the YAML whose root node is ``root`` of the key that
    ``location`` (``metric_filters[0].metricTransformations``) names, or of the deepest
    entry on its way that exists."""
    import yaml

    node, mark = root, root.start_mark
    for part in _parts("." + location):
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        elif isinstance(node, yaml.MappingNode) and (pairs := [p for p in node.value if p[0].value == str(part)]):
            key, node = pairs[-1]  # merged keys come first, the mapping's own last
            mark = key.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1


def _error(text: str, schema: Any, data: Any, where: str, source: str | os.PathLike | None) -> ConfigError:
    match = _AT.fullmatch(text)
    assert match is not None
    message, in_key, path = match.groups()
    parts = _parts(path or "")
    value = _value_at(data, parts)
    kind, description = _schema_at(schema, parts)
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    missing = re.fullmatch(r"Object missing required field `(.*)`", message)
    if unknown or in_key:  # in_key: a key that is not a string
        key = unknown.group(1) if unknown else next(k for k in value if not isinstance(k, str))
        allowed = _struct(kind).__struct_fields__  # type: ignore[union-attr]
        reason = f"unknown key; allowed here: {', '.join(allowed)}{_did_you_mean(key, allowed)}"
        parts.append(str(key))
    elif missing:
        parts.append(missing.group(1))
        reason = f"required key missing; expected {_expected(*_schema_at(schema, parts), message)}"
    else:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        reason = f"expected {_expected(kind, description, message)}, got {shown}{_did_you_mean(value, _choices(kind))}"
    return ConfigError(reason, source=source, location=_location(where, parts))


def _parts(path: str) -> list[str | int]:
    """``.sources[1].format`` -> ``['sources', 1, 'format']``."""
    return [name or int(index) for name, index in _PART.findall(path)]


def _location(where: str, parts: list[str | int]) -> str:
    for part in parts:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else part
    return where


def _value_at(data: Any, parts: list[str | int]) -> Any:
    for part in parts:
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _schema_at(schema: Any, parts: list[str | int]) -> tuple[Any, str]:
    """The type declared at ``parts`` (``Annotated`` removed) and its description."""
    kind, description = _unannotated(schema)
    for part in parts:
        if isinstance(part, int):
            options = [_unannotated(o)[0] for o in _options(kind)]
            kind = next((get_args(o)[0] for o in options if get_origin(o) is list), Any)
        else:
            struct = _struct(kind)
            kind = get_type_hints(struct, include_extras=True).get(part, Any) if struct else Any
        kind, description = _unannotated(kind)
    return kind, description


def _unannotated(kind: Any) -> tuple[Any, str]:
    """``kind`` without ``Annotated``, and its description: an optional value's
    (``Annotated[str, Meta(...)] | None``) is that of its one described option."""
    if get_origin(kind) is not Annotated:
        described = [d for o in _options(kind) if get_origin(o) is Annotated and (d := _unannotated(o)[1])]
        return kind, described[0] if len(described) == 1 else ""
    base, *metadata = get_args(kind)
    return base, next((m.description for m in metadata if isinstance(m, msgspec.Meta) and m.description), "")


def _options(kind: Any) -> tuple[Any, ...]:
    return get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)


def _struct(kind: Any) -> type[msgspec.Struct] | None:
    return next((o for o in _options(kind) if isinstance(o, type) and issubclass(o, msgspec.Struct)), None)


def _expected(kind: Any, description: str, message: str) -> str:
    """What a value of type ``kind`` is, in words: its description, its Literal values,
    a Struct's keys, or else msgspec's own ``message``."""
    if description:
        return description
    if choices := _choices(kind):
        return f"one of {', '.join(choices)}"
    if struct := _struct(kind):
        return f"a mapping with keys {', '.join(struct.__struct_fields__)}"
    return message.removeprefix("Expected ").split(", got ")[0].replace("`", "")


def _choices(kind: Any) -> list[str]:
    return [c for option in _options(kind) if get_origin(option) is Literal for c in get_args(option)]


def _did_you_mean(given: Any, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(given, allowed, n=1) if isinstance(given, str) else []
    return f"; did you mean {close[0]!r}?" if close else ""
