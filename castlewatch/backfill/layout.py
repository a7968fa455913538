"""The key layout AWS writes archives in, and the date an object's key gives it.

CloudTrail (`CloudTrail log file examples`__, the trail's S3 bucket)::

    [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_ID.json.gz

VPC Flow Logs delivered to S3 (`Flow log files`__), text, optionally per hour, or with
Hive-compatible prefixes (``aws-account-id=ACCOUNT/aws-service=vpcflowlogs/
aws-region=REGION/year=YYYY/month=MM/day=DD/[hour=HH/]``)::

    [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz

__ https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html
__ https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html

An object's date is the one in its key (the day CloudTrail or the flow log service
delivered it, UTC), not the times of its events: an event from just before midnight can
sit in the next day's object, so a backfill from ``--from D`` may miss the last minutes
of ``D - 1`` and count the first minutes of ``--to D + 1`` from the objects of ``D``.

Other folders beside the service's are not logs of the source and are not listed:
``CloudTrail-Digest/`` (digest files, for log file integrity validation),
``CloudTrail-Insight/``, other services' folders.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

#: The service folder each backfill format reads, and what its log files' names end with.
SERVICES = {"cloudtrail_archive": "CloudTrail", "flow_log_file": "vpcflowlogs"}
_SUFFIXES = {"cloudtrail_archive": (".json.gz", ".json"), "flow_log_file": (".log.gz", ".log")}
_NAME_PARTS = {"cloudtrail_archive": "_CloudTrail_", "flow_log_file": "_vpcflowlogs_"}
_HIVE = {"aws-account-id", "aws-service", "aws-region", "year", "month", "day", "hour"}
_ROOT = "AWSLogs"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a key is to a source.

    ``kind``: ``"log"`` (a log file of the source's format, of ``date``), ``"unreadable"``
    (in a date folder of the source's service but not a log file it can read: ``reason``
    says why), ``"undated"`` (in the service's folders, outside its date folders),
    ``"other"`` (not the source's: another service's folder, a digest, outside
    ``AWSLogs/``; ``reason`` names it).
    """

    kind: str
    date: _dt.date | None = None
    reason: str = ""


def _segments(path: str) -> list[str] | None:
    """The segments after ``AWSLogs/`` (Hive ``name=`` prefixes and an organization id
    dropped): ``[account, service, region, YYYY, MM, DD, ...]``; None without ``AWSLogs/``."""
    parts = path.split("/")
    try:
        at = parts.index(_ROOT)
    except ValueError:
        return None
    out = []
    for part in parts[at + 1 :]:
        name, sep, value = part.partition("=")
        out.append(value if sep and name in _HIVE else part)
    if out and out[0].startswith("o-") and len(out) > 1:
        out = out[1:]  # an organization trail: AWSLogs/o-ORGID/ACCOUNT/...
    return out


def classify(key: str, fmt: str) -> Verdict:
    """What object ``key`` (a path or an S3 key, ``/``-separated) is to a source of
    format ``fmt`` (``cloudtrail_archive`` or ``flow_log_file``)."""
    segments = _segments(key)
    if segments is None:
        return Verdict("other", reason="outside AWSLogs/")
    if len(segments) < 3 or segments[1] != SERVICES[fmt]:
        service = segments[1] if len(segments) > 1 else ""
        return Verdict("other", reason=f"{service or 'AWSLogs'} folder")
    name = segments[-1]
    date = _date(segments[3:6]) if len(segments) >= 7 else None
    hourly = len(segments) == 8 and segments[6].isdigit() and len(segments[6]) == 2 and fmt == "flow_log_file"
    if date is None or not (len(segments) == 7 or hourly):
        return Verdict("undated", reason="not in the YYYY/MM/DD folders of its service, so it has no date")
    if name.endswith(".parquet"):
        return Verdict("unreadable", date, "flow logs in Parquet are not read; deliver them as text (log.gz)")
    if not name.endswith(_SUFFIXES[fmt]) or _NAME_PARTS[fmt] not in name:
        return Verdict("unreadable", date, f"not a {SERVICES[fmt]} log file name (…{_NAME_PARTS[fmt]}…"
                                           f"{_SUFFIXES[fmt][0]})")
    return Verdict("log", date)


def folder_may_hold(folder: str, fmt: str, start: _dt.date, end: _dt.date) -> bool:
    """Whether the folder ``folder`` (``/``-separated, no trailing ``/``) may hold log files
    of format ``fmt`` dated within ``start`` .. ``end``: False for another service's folder
    or a year, month or day folder outside the dates, so a listing need not go there."""
    segments = _segments(folder)
    if segments is None:
        return True  # above AWSLogs/: the prefix the source names
    if len(segments) >= 2 and segments[1] != SERVICES[fmt]:
        return False
    dated = segments[3:6]
    if not dated:
        return True
    if not all(part.isdigit() for part in dated):
        return True  # not a date folder: classify() names what is in it
    low = [start.year, start.month, start.day][: len(dated)]
    high = [end.year, end.month, end.day][: len(dated)]
    value = [int(part) for part in dated]
    return low <= value <= high


def _date(parts: list[str]) -> _dt.date | None:
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or [len(p) for p in parts] != [4, 2, 2]:
        return None
    try:
        return _dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None
