"""The benchmark's workloads and targets (issue 4).

A workload is a stream (``cloudtrail``, ``vpc`` or ``app``, see :mod:`bench.generate`)
and what castlewatch does with it:

- ``match``: one filter pattern, ``FilterPattern.matches`` on every event;
- ``pack``: several metric filters of one log group evaluated together by the engine's
  :class:`~castlewatch.engine.evaluate.LogGroupEvaluator` (also timed as a plain loop
  of ``matches`` calls);
- ``extract``: a metric filter with a value reference (``metricValue: $bytes``)
  through the ``LogGroupEvaluator``, contributions summed;
- ``replay``: ``Engine.replay()`` from the file through per-minute aggregation to
  the JSON Lines sink, compared with the matcher-only workload ``baseline``;
- ``e2e``: ``castlewatch replay --config FILE`` in a fresh process (start-up included),
  with the realistic filter sets of issue 11 (:func:`cis_default_filters`,
  :func:`vpc_four_filters`), compared with ``orjson.loads`` on every line, with
  iterating the lines, or with the same events in time order (``compare``); its
  datapoints must equal those of the general evaluator (the reference) written by an
  in-process replay with the batch path off.

The metric filters are those of castlewatch's built-in packs (``castlewatch/data/packs``):
the 15 CIS filters for CloudTrail and the VPC Flow Logs ones; the ``e2e`` workloads build their own sets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from castlewatch.metric_filters import load_metric_filters
from castlewatch.model import MetricFilter
from castlewatch.packs import get_pack

from bench.peers import AWS_JSON, MOTO

AWS_JSON_ONCE = AWS_JSON + " (parsed once)"

#: The VPC Flow Logs v2 REJECT pattern (the one AWS documents for rejected flows).
VPC_REJECT = (
    "[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, "
    'windowstart, windowend, action="REJECT", flowlogstatus]'
)
CLOUDTRAIL_GROUP = "CloudTrail/DefaultLogGroup"
VPC_GROUP = "vpc-flow-logs"


@dataclass(frozen=True)
class Target:
    """A target of the issue: ``ratios[ratio] >= threshold`` for the workload."""

    ratio: str
    threshold: float
    text: str


@dataclass(frozen=True)
class Workload:
    """One benchmark workload (see the module docstring for ``kind``).

    Attributes:
        name: short id, used in JSON and on the command line output.
        title: what it is, for the table.
        stream: the generated stream it reads.
        kind: ``match``, ``pack``, ``extract`` or ``replay``.
        pattern: the filter pattern (``match``).
        filters: metric filter names from the demo set (``pack``, ``extract``, ``replay``);
            a name ending in ``*`` is a prefix.
        grep: the fixed strings for the ``grep -cF`` floor (``-e`` each).
        grep_exact: True when ``grep -cF`` counts exactly the pattern's matches, so it
            joins the correctness guard.
        peers: peers to run (names in :data:`bench.peers.PEERS`).
        baseline: for ``replay``, the matcher-only workload on the same stream.
        timestamp: for ``replay`` and ``e2e``, the config's ``timestamp`` of the source.
        targets: the issue's targets for this workload.
        filter_set: for ``e2e``, ``"cis+default"`` or ``"vpc4"`` (see :func:`e2e_filters`).
        compare: for ``e2e``, what castlewatch is measured against: ``"orjson"``
            (``orjson.loads`` on every line), ``"floor"`` (iterating the lines) or
            ``"in_order"`` (the same run on the stream ``in_order_stream``).
        in_order_stream: for ``compare="in_order"``, the in-order stream.
    """

    name: str
    title: str
    stream: str
    kind: Literal["match", "pack", "extract", "replay", "e2e"]
    pattern: str = ""
    filters: tuple[str, ...] = ()
    grep: tuple[str, ...] = ()
    grep_exact: bool = False
    peers: tuple[str, ...] = ()
    baseline: str = ""
    timestamp: dict = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    filter_set: str = ""
    compare: str = ""
    in_order_stream: str = ""

    @property
    def log_group(self) -> str:
        if self.stream == "cloudtrail":
            return CLOUDTRAIL_GROUP
        return VPC_GROUP if self.stream.startswith("vpc") else "app"


_TERM_TARGET = Target("floor", 0.40, ">= 40% of floor")

WORKLOADS: tuple[Workload, ...] = (
    Workload("term", "term: ERROR", "app", "match", pattern="ERROR", grep=("ERROR",), grep_exact=True,
             peers=(MOTO,), targets=(_TERM_TARGET,)),
    Workload("term-optional", "term: ?ERROR ?FATAL", "app", "match", pattern="?ERROR ?FATAL",
             grep=("ERROR", "FATAL"), grep_exact=True, peers=(MOTO,), targets=(_TERM_TARGET,)),
    Workload("term-exclude", "term: ERROR -timeout", "app", "match", pattern="ERROR -timeout", grep=("ERROR",),
             peers=(MOTO,), targets=(_TERM_TARGET,)),
    Workload("regex", "regex: %status=5[0-9]{2}%", "app", "match", pattern="%status=5[0-9]{2}%", grep=("status=5",)),
    Workload("json-equality", 'JSON: { $.eventName = "ConsoleLogin" }', "cloudtrail", "match",
             pattern='{ $.eventName = "ConsoleLogin" }', grep=("ConsoleLogin",), peers=(AWS_JSON, AWS_JSON_ONCE)),
    Workload("cis-pack", "CIS pack: 15 JSON metric filters", "cloudtrail", "pack", filters=("CIS-*",),
             grep=("eventName",), peers=(AWS_JSON, AWS_JSON_ONCE),
             targets=(Target("naive", 10.0, ">= 10x naive"), Target("peer:" + AWS_JSON, 20.0, ">= 20x " + AWS_JSON))),
    Workload("vpc-reject", "VPC flow: action=REJECT", "vpc", "match", pattern=VPC_REJECT, grep=("REJECT",),
             targets=(Target("floor", 0.25, ">= 25% of floor"),)),
    Workload("vpc-reject-bytes", "VPC flow: REJECT, metricValue $bytes", "vpc", "extract",
             filters=("VPCRejectedBytes",), grep=("REJECT",)),
    Workload("replay-cloudtrail", "replay: CloudTrail, CIS pack -> JSONL", "cloudtrail", "replay", filters=("CIS-*",),
             grep=("eventName",), baseline="cis-pack", timestamp={"field": "$.eventTime", "format": "iso8601"},
             targets=(Target("matcher", 0.60, ">= 60% of matcher-only"),)),
    Workload("replay-vpc", "replay: VPC flow, REJECT bytes -> JSONL", "vpc", "replay", filters=("VPCRejectedBytes",),
             grep=("REJECT",), baseline="vpc-reject-bytes", timestamp={"field": "$11", "format": "epoch_s"},
             targets=(Target("matcher", 0.60, ">= 60% of matcher-only"),)),
    Workload("e2e-cloudtrail", "end to end: CloudTrail, 15 CIS + defaultValue -> JSONL", "cloudtrail", "e2e",
             grep=("eventName",), timestamp={"field": "$.eventTime", "format": "iso8601"},
             filter_set="cis+default", compare="orjson",
             targets=(Target("orjson", 0.75, ">= 75% of orjson.loads"),)),
    Workload("e2e-vpc", "end to end: VPC flow, 4 filters -> JSONL", "vpc-e2e", "e2e", grep=("REJECT",),
             timestamp={"field": "$11", "format": "epoch_s"}, filter_set="vpc4", compare="floor",
             targets=(Target("floor", 0.06, ">= 6% of floor"),)),
    Workload("e2e-vpc-late", "end to end: VPC flow, 90% late, 4 filters -> JSONL", "vpc-late", "e2e",
             grep=("REJECT",), timestamp={"field": "$11", "format": "epoch_s"}, filter_set="vpc4",
             compare="in_order", in_order_stream="vpc-late-sorted",
             targets=(Target("in_order", 0.80, ">= 80% of in-order"),)),
)


def demo_filters() -> list[MetricFilter]:
    """The built-in packs of the demo's CloudTrail and VPC Flow Logs log groups (``cis`` on
    CloudTrail/DefaultLogGroup, ``vpc-flow-logs`` on vpc-flow-logs), validated as
    PutMetricFilter would."""
    filters = get_pack("cis").metric_filters("CloudTrail/DefaultLogGroup")
    filters += get_pack("vpc-flow-logs").metric_filters("vpc-flow-logs")
    return load_metric_filters(filters)


def select_filters(names: tuple[str, ...]) -> list[MetricFilter]:
    """The demo filters named (``PREFIX*`` for a prefix), in the packs' order."""
    out = []
    for f in demo_filters():
        for name in names:
            if f.filter_name == name or (name.endswith("*") and f.filter_name.startswith(name[:-1])):
                out.append(f)
                break
    if not out:
        raise ValueError(f"no demo metric filter named {', '.join(names)}")
    return out


def cis_patterns() -> list[str]:
    """The filter patterns of the 15 CIS filters (the compile-time workload)."""
    return [f.filter_pattern for f in select_filters(("CIS-*",))]


# ---- the end-to-end filter sets (issue 11) -----------------------------------------------------

#: The VPC Flow Logs v2 default format with every field named (no condition).
VPC_FIELDS = (
    "[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, "
    "windowstart, windowend, action, flowlogstatus]"
)
VPC_SSH_REJECT = VPC_REJECT.replace("destport,", 'destport="22",').replace("protocol,", 'protocol="6",')


def _filter(name: str, pattern: str, group: str, namespace: str, metric: str, value: str,
            default: float | None = None, dimensions: dict | None = None) -> dict:
    transformation: dict = {"metricName": metric, "metricNamespace": namespace, "metricValue": value}
    if default is not None:
        transformation["defaultValue"] = default
    if dimensions:
        transformation["dimensions"] = dimensions
    return {"filterName": name, "filterPattern": pattern, "logGroupName": group,
            "metricTransformations": [transformation]}


def cis_default_filters() -> list[MetricFilter]:
    """The 15 CIS monitoring filters (their canonical pattern in ``cis-patterns.json``, the
    one Security Hub prints) and one filter with a ``defaultValue``, so that every event
    publishes (console sign-ins, 1 per sign-in and 0 for every other event)."""
    text = resources.files("castlewatch").joinpath("data/cis-patterns.json").read_text(encoding="utf-8")
    entries = [e for e in json.loads(text) if e["id"].startswith("CIS")]
    if len(entries) != 15:
        raise ValueError(f"cis-patterns.json holds {len(entries)} CIS filters, not 15")
    filters = [_filter(f"CIS-{e['metric_name']}", e["filter_pattern"], CLOUDTRAIL_GROUP, "CISBenchmark",
                       e["metric_name"], "1") for e in entries]
    filters.append(_filter("ConsoleSignIns", '{ $.eventName = "ConsoleLogin" }', CLOUDTRAIL_GROUP,
                           "castlewatch/CloudTrail", "ConsoleSignIns", "1", default=0))
    return load_metric_filters({"metricFilters": filters})


def vpc_four_filters() -> list[MetricFilter]:
    """Four VPC Flow Logs filters: the REJECT count, SSH rejects, every flow's ``$bytes``,
    and ``$bytes`` by ``$action`` as a dimension."""
    ns = "castlewatch/VPCFlowLogs"
    return load_metric_filters({"metricFilters": [
        _filter("RejectCount", VPC_REJECT, VPC_GROUP, ns, "RejectCount", "1"),
        _filter("SSHRejects", VPC_SSH_REJECT, VPC_GROUP, ns, "SSHRejects", "1"),
        _filter("Bytes", VPC_FIELDS, VPC_GROUP, ns, "Bytes", "$bytes"),
        _filter("BytesByAction", VPC_FIELDS, VPC_GROUP, ns, "BytesByAction", "$bytes",
                dimensions={"Action": "$action"}),
    ]})


def e2e_filters(w: Workload) -> list[MetricFilter]:
    """The filter set of an ``e2e`` workload."""
    if w.filter_set == "cis+default":
        return cis_default_filters()
    if w.filter_set == "vpc4":
        return vpc_four_filters()
    raise ValueError(f"no filter set {w.filter_set!r}")
