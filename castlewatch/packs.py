"""Built-in monitoring packs: ready-made metric filters with their metadata.

A pack is a data file, ``castlewatch/data/packs/<name>.json``, read through
:mod:`importlib.resources`. Each entry of its ``filters`` holds a metric filter in the
``describe-metric-filters`` shape without ``logGroupName`` (spec §8.5; the log group is
given where the pack is used), the kind of log group it reads (``cloudtrail`` or
``vpc_flow_logs``) and its metadata:

- ``key``: its name within the pack (``unauthorized-api-calls``), used to choose a variant;
- ``title``, ``rationale``;
- ``cis``: the control's id in every CIS AWS Foundations Benchmark version that has it,
  ``[{"versions": "1.4-5.0", "control": "4.1"}, ...]``; ``securityHub``: the Security
  Hub control (``CloudWatch.2``) or null;
- ``variant``: the name of the pattern text shipped (``security-hub`` for the CIS pack:
  the exact text Security Hub's CloudWatch.1 to .14 controls check, since they fail a
  modified pattern), ``source``: where that text is printed (the first source prints it
  character for character, the others up to whitespace); ``variants``: the documented
  alternatives, each with its ``name``, ``filterPattern``, ``source`` and ``difference``;
- ``notes``.

An entry ``{"include": "PACK/KEY", "widget": TITLE}`` (the ``seed-dashboard`` pack) is
that filter of another pack, metadata and variants included.

The CIS pack's texts come from ``castlewatch/data/cis-patterns.json`` (every documented
variant and its source); ``tests/test_packs.py`` checks each against it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from castlewatch.model import MetricFilter

#: The kinds of log group a pack's filters read, as written in a configuration
#: (``log_group: {cloudtrail: NAME, vpc_flow_logs: NAME}``).
LOG_GROUP_KINDS = ("cloudtrail", "vpc_flow_logs")


def _packs() -> Any:
    """The folder of the bundled packs (importlib.resources, imported on first use: start-up)."""
    from importlib.resources import files

    return files("castlewatch") / "data" / "packs"


class PackError(ValueError):
    """A pack used wrongly: an unknown filter key or variant, a missing or unknown log group
    kind. ``location`` is where, relative to the pack's entry (``variants.root-usage``,
    ``log_group``, ``log_group.cloudtrail``), for a configuration's message."""

    def __init__(self, reason: str, location: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location


class UnknownPackError(PackError, LookupError):
    """A pack name that is not bundled; the message has a "did you mean" and the names."""

    def __init__(self, name: str) -> None:
        names = pack_names()
        super().__init__(f"unknown pack {name!r}{_did_you_mean(name.lower(), names)} (packs: {', '.join(names)})",
                         "pack")
        self.name = name


@dataclass(frozen=True)
class Variant:
    """One text a pack filter may use: its ``name``, the ``filter_pattern`` (a documented
    text, as printed), where it is printed (``source``) and how it differs from the
    canonical one (``difference``; for the canonical text, what it is)."""

    name: str
    filter_pattern: str
    source: tuple[str, ...]
    difference: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filterPattern": self.filter_pattern,
            "source": list(self.source),
            "difference": self.difference,
        }


@dataclass(frozen=True)
class PackFilter:
    """One filter of a pack.

    Attributes:
        key: its name within the pack (``unauthorized-api-calls``).
        log_group_kind: one of :data:`LOG_GROUP_KINDS`.
        metric_filter: the filter with the canonical pattern, ``log_group_name`` empty.
        variants: every text it may use, the canonical one first, by name.
        metadata: title, cis, securityHub, rationale, notes (and widget) as in the file.
    """

    key: str
    log_group_kind: str
    metric_filter: MetricFilter
    variants: Mapping[str, Variant]
    metadata: Mapping[str, Any]

    @property
    def canonical(self) -> str:
        """The name of the text shipped by default (``security-hub`` for most CIS filters)."""
        return next(iter(self.variants))

    def describe(self, variant: str | None = None) -> dict[str, Any]:
        """The metadata shown beside the filter (``packs show``): ``filterName``, ``key``,
        ``logGroupKind``, the file's metadata, ``variant`` (the name in use), ``source`` (its
        sources) and ``variants`` (every text offered, the canonical one first)."""
        chosen = self.variants[variant or self.canonical]
        return {
            "filterName": self.metric_filter.filter_name,
            "key": self.key,
            "logGroupKind": self.log_group_kind,
            **self.metadata,
            "variant": chosen.name,
            "source": list(chosen.source),
            "variants": [v.to_json() for v in self.variants.values()],
        }


@dataclass(frozen=True)
class Pack:
    """A built-in pack: ``name``, ``title``, ``description``, the log group kinds its
    filters read (kind -> what that log group is) and its ``filters`` in order."""

    name: str
    title: str
    description: str
    log_group_kinds: Mapping[str, str]
    filters: tuple[PackFilter, ...]

    def filter(self, key: str, location: str = "") -> PackFilter:
        """The filter of ``key``.

        Raises:
            PackError: no such key, with a "did you mean" and the pack's keys.
        """
        for f in self.filters:
            if f.key == key:
                return f
        keys = [f.key for f in self.filters]
        raise PackError(f"pack {self.name} has no filter {key!r}{_did_you_mean(key, keys)} (its filters: "
                        f"{', '.join(keys)})", location)

    def metric_filters(
        self, log_group: str | Mapping[str, str], variants: Mapping[str, str] | None = None
    ) -> list[MetricFilter]:
        """The pack's metric filters on the given log groups, in pack order, not yet validated.

        Args:
            log_group: the log group name for a pack whose filters read one kind of log
                group, or ``{kind: name}`` with exactly the pack's kinds.
            variants: filter key -> variant name (``{"unauthorized-api-calls": "cis-v5.0"}``);
                the others use their canonical text.

        Raises:
            PackError: an unknown key or variant name, a kind missing or not the pack's
                (each with a "did you mean" where one is close).
        """
        groups = self.log_groups(log_group)
        chosen = self.chosen_variants(variants)
        out = []
        for f in self.filters:
            pattern = f.variants[chosen.get(f.key, f.canonical)].filter_pattern
            out.append(msgspec.structs.replace(f.metric_filter, filter_pattern=pattern,
                                               log_group_name=groups[f.log_group_kind]))
        return out

    def chosen_variants(self, variants: Mapping[str, str] | None) -> dict[str, str]:
        """``variants`` checked: key -> variant name.

        Raises:
            PackError: at ``variants.KEY``, an unknown key or variant name.
        """
        for key, name in (variants or {}).items():
            f = self.filter(key, f"variants.{key}")
            if name not in f.variants:
                offered = ", ".join(f"{n} (canonical)" if n == f.canonical else n for n in f.variants)
                raise PackError(f"filter {key} of pack {self.name} has no variant {name!r}"
                                f"{_did_you_mean(name, list(f.variants))} (its variants: {offered})",
                                f"variants.{key}")
        return dict(variants or {})

    def log_groups(self, log_group: str | Mapping[str, str]) -> dict[str, str]:
        """``log_group`` as kind -> log group name for every kind of the pack.

        Raises:
            PackError: a single name for a pack of several kinds, a kind missing, a kind
                the pack does not read.
        """
        kinds = list(self.log_group_kinds)
        if isinstance(log_group, str):
            if len(kinds) != 1:
                mapping = ", ".join(f"{k}: NAME" for k in kinds)
                raise PackError(f"pack {self.name} reads {len(kinds)} kinds of log group: give log_group as "
                                f"{{{mapping}}}", "log_group")
            return {kinds[0]: log_group}
        for kind in log_group:
            if kind not in kinds:
                raise PackError(f"pack {self.name} has no filter for a {kind} log group"
                                f"{_did_you_mean(kind, kinds)} (its kinds: {', '.join(kinds)})",
                                f"log_group.{kind}")
        missing = [k for k in kinds if k not in log_group]
        if missing:
            raise PackError(f"pack {self.name} needs a log group for {', '.join(missing)} too", "log_group")
        return dict(log_group)

    def describe(
        self, log_group: str | Mapping[str, str] | None = None, variants: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """``{"metricFilters": [...], "metadata": [...], "pack": {...}}``: the filters as
        ``aws logs describe-metric-filters`` prints them (without ``creationTime``; with
        ``logGroupName`` only when ``log_group`` is given), in pack order, and beside them
        the metadata of each, in the same order (:meth:`PackFilter.describe`).

        Raises:
            PackError: as :meth:`metric_filters`.
        """
        chosen = self.chosen_variants(variants)
        if log_group is None:
            filters = [
                msgspec.structs.replace(f.metric_filter, filter_pattern=f.variants[chosen.get(f.key, f.canonical)]
                                        .filter_pattern)
                for f in self.filters
            ]
        else:
            filters = self.metric_filters(log_group, chosen)
        return {
            "metricFilters": [f.to_aws() for f in filters],
            "metadata": [f.describe(chosen.get(f.key)) for f in self.filters],
            "pack": {
                "name": self.name,
                "title": self.title,
                "description": self.description,
                "logGroupKinds": dict(self.log_group_kinds),
            },
        }


# --- the files ----------------------------------------------------------------------------


class _Cis(msgspec.Struct, forbid_unknown_fields=True):
    versions: str
    control: str


class _Variant(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str
    filter_pattern: str
    source: list[str]
    difference: str


class _Filter(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    key: str
    log_group: str
    title: str
    cis: list[_Cis]
    security_hub: str | None
    rationale: str
    metric_filter: MetricFilter
    variant: str
    source: list[str]
    variants: list[_Variant]
    notes: list[str]


class _Include(msgspec.Struct, forbid_unknown_fields=True):
    include: str
    widget: str


class _PackFile(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str
    title: str
    description: str
    filters: list[dict[str, Any]]
    log_groups: dict[str, str] = {}


def pack_names() -> list[str]:
    """The bundled packs' names, sorted (``["cis", "console-activity", ...]``)."""
    return sorted(entry.name.removesuffix(".json") for entry in _packs().iterdir() if entry.name.endswith(".json"))


@functools.cache
def get_pack(name: str) -> Pack:
    """The bundled pack ``name``.

    Raises:
        UnknownPackError: not a bundled pack.
        msgspec.ValidationError: its file is malformed (a castlewatch bug; the tests load
            every pack).
    """
    if name not in pack_names():
        raise UnknownPackError(name)
    data = msgspec.json.decode((_packs() / f"{name}.json").read_bytes(), type=_PackFile)
    assert data.name == name, (data.name, name)
    filters = []
    kinds: dict[str, str] = {}
    for raw in data.filters:
        if "include" in raw:
            entry = msgspec.convert(raw, _Include)
            pack_name, _, key = entry.include.partition("/")
            other = get_pack(pack_name)
            included = other.filter(key)
            filters.append(PackFilter(included.key, included.log_group_kind, included.metric_filter,
                                      included.variants, {**included.metadata, "widget": entry.widget,
                                                          "includedFrom": pack_name}))
            kinds.setdefault(included.log_group_kind, other.log_group_kinds[included.log_group_kind])
        else:
            filters.append(_pack_filter(msgspec.convert(raw, _Filter)))
            kinds.setdefault(filters[-1].log_group_kind, data.log_groups[filters[-1].log_group_kind])
    assert all(kind in LOG_GROUP_KINDS for kind in kinds), kinds
    keys = [f.key for f in filters]
    assert len(set(keys)) == len(keys), keys
    kinds = {kind: kinds[kind] for kind in LOG_GROUP_KINDS if kind in kinds}
    return Pack(data.name, data.title, data.description, kinds, tuple(filters))


def _pack_filter(entry: _Filter) -> PackFilter:
    hub = f"the exact text Security Hub's {entry.security_hub} checks" if entry.security_hub else "the text shipped"
    variants = {entry.variant: Variant(entry.variant, entry.metric_filter.filter_pattern, tuple(entry.source),
                                       f"canonical: {hub}")}
    for v in entry.variants:
        assert v.name not in variants, v.name
        variants[v.name] = Variant(v.name, v.filter_pattern, tuple(v.source), v.difference)
    metadata = {
        "title": entry.title,
        "cis": [msgspec.to_builtins(c) for c in entry.cis],
        "securityHub": entry.security_hub,
        "rationale": entry.rationale,
        "notes": list(entry.notes),
    }
    return PackFilter(entry.key, entry.log_group, entry.metric_filter, variants, metadata)


def _did_you_mean(given: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``): the choices ``given`` begins (at most 2),
    else the closest by :func:`difflib.get_close_matches`; ``""`` when none is close."""
    starting = [c for c in choices if given and c.startswith(given)][:2]
    import difflib  # only for this message

    suggestions = starting or difflib.get_close_matches(given, choices, n=1)
    return f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else ""
