#!/usr/bin/env python3
"""Write castlewatch's bundled sample events into CloudWatch Logs log groups (LocalStack, moto or AWS).

    python scripts/put_sample_events.py --endpoint-url http://127.0.0.1:4566

puts ``castlewatch/data/samples/cloudtrail.jsonl`` into the log group
``CloudTrail/DefaultLogGroup`` and ``castlewatch/data/samples/vpc-flow.log`` into
``vpc-flow-logs`` (the seed's setup, ``examples/*.yaml``; ``castlewatch provision`` creates
the log groups), each in a new log stream ``castlewatch-samples-<time>``, with PutLogEvents.

CloudWatch Logs refuses events more than 14 days old or more than 2 hours ahead, and the
samples are older, so their times are moved to now, keeping their order:

- CloudTrail: every record moves by one offset, so that the newest is one minute before
  now (the 39 minutes between the records are kept); its ``eventTime`` is rewritten to the
  new time, which is the log event's timestamp, as CloudTrail delivers it.
- VPC Flow Logs: the sample gathers records written years apart (from the AWS
  documentation), so each distinct ``start`` time gets a minute of its own, in order,
  the last one a minute before now; ``start`` and ``end`` are rewritten (the record's
  duration is kept) and the log event's timestamp is the new ``start`` (the demo's
  ``timestamp: {field: $11, format: epoch_s}``).

Every other byte of a message is the sample's. ``--save-events DIR`` also writes what was
put, one JSON Lines file per log group in the ``aws logs filter-log-events`` event shape
(``timestamp``, ``message``, ``logStreamName``), for a local ``castlewatch replay`` of the
same events (``format: cloudwatch_events``).

Credentials come from the standard AWS chain (for LocalStack and moto any will do, e.g.
``AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test``). Exit status: 0 when every event
was accepted; 66 when a log group does not exist (run ``castlewatch provision`` first);
65 when CloudWatch Logs rejected events (too old, too new, expired); 69 for another AWS
failure; 77 when AWS denied the call.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

CLOUDTRAIL_GROUP = "CloudTrail/DefaultLogGroup"
VPC_GROUP = "vpc-flow-logs"
#: PutLogEvents limits: events per request, bytes per request (each event counts its
#: UTF-8 message plus 26 bytes), and the span of one request's event times.
MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
MAX_SPAN_MS = 24 * 3600 * 1000

Event = tuple[int, str]  # (timestamp ms, message)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloudtrail_events(lines: list[str], now_ms: int) -> list[Event]:
    """The CloudTrail sample's records moved by one offset so that the newest is a minute
    before ``now_ms``; ``eventTime`` rewritten; timestamps in ms."""
    records = [json.loads(line) for line in lines if line.strip()]
    times = [int(dt.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
                 .replace(tzinfo=dt.timezone.utc).timestamp() * 1000) for r in records]
    offset = (now_ms - 60_000) // 1000 * 1000 - max(times)
    out = []
    for record, t in zip(records, times):
        record["eventTime"] = _iso(t + offset)
        out.append((t + offset, json.dumps(record, separators=(",", ":"))))
    return sorted(out, key=lambda e: e[0])


def vpc_flow_events(lines: list[str], now_ms: int) -> list[Event]:
    """The VPC Flow Logs sample's records, each distinct ``start`` a minute of its own in
    order (the last a minute before ``now_ms``); ``start``/``end`` rewritten, duration kept;
    the timestamp is the new ``start``."""
    records = [line.split(" ") for line in lines if line.strip()]
    starts = sorted({int(fields[10]) for fields in records})
    last_minute = (now_ms - 60_000) // 60_000 * 60
    moved = {start: last_minute - 60 * (len(starts) - 1 - i) for i, start in enumerate(starts)}
    out = []
    for fields in records:
        start, end = int(fields[10]), int(fields[11])
        fields = fields[:10] + [str(moved[start]), str(moved[start] + end - start)] + fields[12:]
        out.append((moved[start] * 1000, " ".join(fields)))
    return sorted(out, key=lambda e: e[0])


def sample_events(now_ms: int, cloudtrail_group: str = CLOUDTRAIL_GROUP,
                  vpc_group: str = VPC_GROUP) -> dict[str, list[Event]]:
    """Log group -> the bundled samples' events with times moved to ``now_ms`` (see the
    module docstring), in time order."""
    from castlewatch.samples import read_sample_lines

    return {
        cloudtrail_group: cloudtrail_events(read_sample_lines("cloudtrail"), now_ms),
        vpc_group: vpc_flow_events(read_sample_lines("vpc-flow"), now_ms),
    }


def batches(events: list[Event]) -> list[list[Event]]:
    """``events`` (in time order) cut into PutLogEvents requests within its limits."""
    out: list[list[Event]] = []
    size = 0
    for event in events:
        weight = len(event[1].encode("utf-8")) + 26
        if not out or len(out[-1]) >= MAX_EVENTS or size + weight > MAX_BYTES or event[0] - out[-1][0][0] > MAX_SPAN_MS:
            out.append([])
            size = 0
        out[-1].append(event)
        size += weight
    return out


class PutError(Exception):
    """A PutLogEvents failure; ``status`` is the script's exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def put_events(by_group: dict[str, list[Event]], *, region: str | None = None, profile: str | None = None,
                     endpoint_url: str | None = None, stream: str | None = None) -> dict[str, int]:
    """Put each log group's events into a new log stream ``stream`` (default
    ``castlewatch-samples-<epoch s>``); returns log group -> events accepted.

    Raises:
        PutError: a log group that does not exist (66), events rejected (65), AWS denied
            the call (77) or failed otherwise (69).
    """
    from castlewatch.aws import AwsTarget, RetryPolicy, call, client, describe_error, error_code, is_denied

    stream = stream or f"castlewatch-samples-{int(time.time())}"
    target = AwsTarget(region=region, profile=profile, endpoint_url=endpoint_url)
    accepted: dict[str, int] = {}
    async with client("logs", target) as logs:
        where = f"endpoint {endpoint_url}" if endpoint_url else f"region {logs.meta.region_name}"
        for group, events in by_group.items():
            try:
                await call(logs.create_log_stream, policy=RetryPolicy(), logGroupName=group, logStreamName=stream)
                for batch in batches(events):
                    answer: dict[str, Any] = await call(
                        logs.put_log_events, policy=RetryPolicy(), logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in batch])
                    rejected = answer.get("rejectedLogEventsInfo")
                    if rejected:
                        raise PutError(f"CloudWatch Logs rejected events of log group {group!r} ({where}): "
                                       f"{json.dumps(rejected)}", 65)
                    accepted[group] = accepted.get(group, 0) + len(batch)
            except PutError:
                raise
            except Exception as error:
                if error_code(error) == "ResourceNotFoundException":
                    raise PutError(f"log group {group!r} does not exist ({where}); create it first: "
                                   "castlewatch provision --config examples/...", 66) from None
                raise PutError(f"PutLogEvents into log group {group!r} failed ({where}): {describe_error(error)}",
                               77 if is_denied(error) else 69) from None
    return accepted


def save_events(directory: Path, by_group: dict[str, list[Event]], stream: str) -> dict[str, Path]:
    """Write each log group's events as ``<log group, / as _>.jsonl`` in ``directory``
    (``{"timestamp", "message", "logStreamName"}`` per line); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for group, events in by_group.items():
        path = directory / (group.replace("/", "_") + ".jsonl")
        path.write_text("".join(json.dumps({"timestamp": t, "message": m, "logStreamName": stream}) + "\n"
                                for t, m in events), encoding="utf-8")
        paths[group] = path
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--endpoint-url", help="LocalStack or moto, e.g. http://127.0.0.1:4566 (default: AWS)")
    parser.add_argument("--region", help="AWS Region (default: the standard AWS chain's)")
    parser.add_argument("--profile", help="AWS profile (default: the standard AWS chain's)")
    parser.add_argument("--cloudtrail-log-group", default=CLOUDTRAIL_GROUP, metavar="NAME")
    parser.add_argument("--vpc-log-group", default=VPC_GROUP, metavar="NAME")
    parser.add_argument("--save-events", metavar="DIR", type=Path,
                        help="also write the events put, per log group, as JSON Lines (format: cloudwatch_events)")
    args = parser.parse_args(argv)
    by_group = sample_events(time.time_ns() // 1_000_000, args.cloudtrail_log_group, args.vpc_log_group)
    stream = f"castlewatch-samples-{int(time.time())}"
    try:
        accepted = asyncio.run(put_events(by_group, region=args.region, profile=args.profile,
                                          endpoint_url=args.endpoint_url, stream=stream))
    except PutError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.status
    if args.save_events is not None:
        save_events(args.save_events, by_group, stream)
    for group, n in accepted.items():
        first, last = by_group[group][0][0], by_group[group][-1][0]
        print(f"{group}: {n} events put in log stream {stream} ({_iso(first)} to {_iso(last)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
