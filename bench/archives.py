"""Seeded archives in the layout AWS writes to S3: CloudTrail and VPC Flow Logs objects.

:func:`archive_objects` returns ``{key: bytes}`` for some days: per account and region,
CloudTrail objects (gzip ``{"Records": [...]}``, the records of :mod:`bench.generate`)
delivered every ``every_minutes`` with the events of the minutes before their delivery
(so the first object of a day holds events of the day before, as real ones do), and VPC
Flow Logs objects (gzip text, the header line, then default-format records), plus a
CloudTrail digest object per day (``CloudTrail-Digest/``, not logs). The same arguments
give the same bytes on any machine. :func:`write_folder` and :func:`put_s3` store them.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import random
from pathlib import Path
from typing import Any

import orjson

from bench.generate import _cloudtrail_record, _hex, _ip

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1")
FLOW_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
               "action log-status")
_UTC = _dt.timezone.utc


def _stamp(t: _dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%MZ")


def archive_objects(first: _dt.date, days: int, seed: int = 1, every_minutes: int = 240,
                    events_per_object: int = 40, flow_records_per_object: int = 60,
                    accounts: tuple[str, ...] = ACCOUNTS, regions: tuple[str, ...] = REGIONS) -> dict[str, bytes]:
    """The objects of ``days`` days from ``first`` (see the module docstring); keys are
    relative (``AWSLogs/...``)."""
    rng = random.Random(f"archives:{seed}")
    out: dict[str, bytes] = {}
    start = _dt.datetime(first.year, first.month, first.day, tzinfo=_UTC)
    step = _dt.timedelta(minutes=every_minutes)
    delivery = start + _dt.timedelta(minutes=5)
    end = start + _dt.timedelta(days=days)
    while delivery < end:
        day = delivery.strftime("%Y/%m/%d")
        for account in accounts:
            for region in regions:
                unique = _hex(rng, 16)
                records = []
                for _ in range(events_per_object):
                    t = delivery - step + _dt.timedelta(seconds=rng.randrange(int(step.total_seconds())))
                    record = _cloudtrail_record(rng, t)
                    record["recipientAccountId"], record["awsRegion"] = account, region
                    records.append(record)
                key = (f"AWSLogs/{account}/CloudTrail/{region}/{day}/"
                       f"{account}_CloudTrail_{region}_{_stamp(delivery)}_{unique}.json.gz")
                out[key] = gzip.compress(orjson.dumps({"Records": records}), mtime=0)
                flow_id = f"fl-{_hex(rng, 17)}"
                lines = [FLOW_HEADER] + [_flow_record(rng, account, delivery - step, step)
                                         for _ in range(flow_records_per_object)]
                key = (f"AWSLogs/{account}/vpcflowlogs/{region}/{day}/"
                       f"{account}_vpcflowlogs_{region}_{flow_id}_{_stamp(delivery)}_{_hex(rng, 8)}.log.gz")
                out[key] = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
                if delivery.hour == 0 and delivery.minute == 5:
                    key = (f"AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/"
                           f"{account}_CloudTrail-Digest_{region}_trail_{region}_{_stamp(delivery)}.json.gz")
                    out[key] = gzip.compress(b'{"awsAccountId": "%s", "logFiles": []}' % account.encode(), mtime=0)
        delivery += step
    return out


def _flow_record(rng: random.Random, account: str, since: _dt.datetime, span: _dt.timedelta) -> str:
    start = int(since.timestamp()) + rng.randrange(int(span.total_seconds()))
    eni = f"eni-{_hex(rng, 17)}"
    if rng.random() < 0.02:
        return f"2 {account} {eni} - - - - - - - {start} {start + 60} - NODATA"
    packets = rng.randrange(1, 200)
    action = "REJECT" if rng.random() < 0.2 else "ACCEPT"
    return (f"2 {account} {eni} {_ip(rng)} {_ip(rng)} {rng.randrange(1024, 65536)} "
            f"{rng.choice((22, 80, 443, 3389, 5432))} 6 {packets} {packets * rng.randrange(40, 1500)} "
            f"{start} {start + rng.randrange(1, 60)} {action} OK")


def write_folder(root: str | Path, objects: dict[str, bytes]) -> int:
    """Write ``objects`` under ``root`` (a folder with the bucket's layout); total bytes."""
    root = Path(root)
    for key, data in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sum(map(len, objects.values()))


def put_s3(fs: Any, bucket: str, objects: dict[str, bytes], prefix: str = "") -> None:
    """Put ``objects`` into ``bucket`` (created if missing) through an s3fs filesystem."""
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    fs.pipe({f"{bucket}/{prefix}{key}": data for key, data in objects.items()})
