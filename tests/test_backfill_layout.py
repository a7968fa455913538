"""The key layout AWS writes archives in (:mod:`castlewatch.backfill.layout`): an object's
date from its key, what is not a log of the source, and the folders a listing skips."""

from __future__ import annotations

import datetime as dt

import pytest

from castlewatch.backfill.layout import classify, folder_may_hold

CT = "cloudtrail_archive"
FLOW = "flow_log_file"
D = dt.date(2025, 1, 2)


@pytest.mark.parametrize(("key", "fmt", "kind", "date"), [
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/02/123456789012_CloudTrail_us-east-1_20250102T0005Z_a1.json.gz",
     CT, "log", D),
    ("/data/x/AWSLogs/o-aa11bb22cc/123456789012/CloudTrail/eu-west-1/2025/01/02/"
     "123456789012_CloudTrail_eu-west-1_20250102T0005Z_a1.json.gz", CT, "log", D),  # an organization trail
    ("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/01/02/123456789012_CloudTrail-Digest_x.json.gz",
     CT, "other", None),
    ("AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2025/01/02/x_CloudTrail_x.json.gz", CT, "other", None),
    ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/01/02/x_vpcflowlogs_x.log.gz", CT, "other", None),
    ("README.md", CT, "other", None),
    ("AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/02/notes.txt", CT, "unreadable", D),
    ("AWSLogs/123456789012/CloudTrail/us-east-1/2025/13/02/x_CloudTrail_x.json.gz", CT, "undated", None),
    ("AWSLogs/123456789012/CloudTrail/us-east-1/x_CloudTrail_x.json.gz", CT, "undated", None),
    ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/01/02/123456789012_vpcflowlogs_us-east-1_fl-1_20250102T0005Z_h.log.gz",
     FLOW, "log", D),
    ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/01/02/07/123456789012_vpcflowlogs_us-east-1_fl-1_h.log.gz",
     FLOW, "log", D),  # hourly partitions
    ("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2025/month=01/day=02/"
     "hour=07/123456789012_vpcflowlogs_us-east-1_fl-1_h.log.gz", FLOW, "log", D),  # Hive-compatible prefixes
    ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/01/02/123456789012_vpcflowlogs_x.log.parquet",
     FLOW, "unreadable", D),
])
def test_classify(key, fmt, kind, date):
    verdict = classify(key, fmt)
    assert (verdict.kind, verdict.date) == (kind, date)
    if kind == "unreadable" and key.endswith(".parquet"):
        assert "Parquet" in verdict.reason


@pytest.mark.parametrize(("folder", "holds"), [
    ("bkt", True),
    ("bkt/prefix/AWSLogs", True),
    ("bkt/AWSLogs/123456789012", True),
    ("bkt/AWSLogs/o-aa11bb22cc", True),
    ("bkt/AWSLogs/123456789012/CloudTrail", True),
    ("bkt/AWSLogs/123456789012/CloudTrail-Digest", False),
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2024", False),
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2025", True),
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2025/02", False),
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/01", False),
    ("bkt/AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/03", True),
    ("bkt/AWSLogs/o-aa11bb22cc/123456789012/CloudTrail/us-east-1/2025/01/04", False),
])
def test_a_listing_goes_only_into_folders_that_may_hold_the_dates(folder, holds):
    assert folder_may_hold(folder, CT, dt.date(2025, 1, 2), dt.date(2025, 1, 3)) is holds
