"""How a backfill cuts its objects into partitions (:func:`castlewatch.backfill.executor.task_sizes`
and :func:`~castlewatch.backfill.executor.plan`): every object exactly once, in key order
within its source, large partitions first and smaller ones towards the end."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castlewatch.backfill.executor import MAX_OBJECTS_PER_TASK, TASKS_PER_THREAD, plan, task_sizes
from castlewatch.backfill.storage import Location
from castlewatch.backfill.task import SourceJob
from castlewatch.engine.config import SourceConfig


@given(st.integers(0, 5000), st.integers(1, 64))
def test_the_sizes_cover_the_objects_and_shrink_towards_the_end(total, threads):
    sizes = task_sizes(total, threads)
    assert sum(sizes[:-1]) < total <= sum(sizes) or total == 0 == len(sizes)
    assert sizes == sorted(sizes, reverse=True)
    if total:
        most = min(MAX_OBJECTS_PER_TASK, math.ceil(total / (TASKS_PER_THREAD * threads)))
        assert sizes[0] == most and sizes[-1] >= max(1, most // 8)


def test_a_run_for_two_threads_ends_with_small_partitions():
    sizes = task_sizes(384, 2)
    assert sizes[:9] == [24] * 9 and sizes[-1] == 3 and len(sizes) < 384 / 3


@pytest.mark.parametrize("total, per_task, expected", [(7, 3, [3, 3, 3]), (6, 3, [3, 3]), (0, 3, [3])])
def test_objects_per_task_fixes_the_size(total, per_task, expected):
    assert task_sizes(total, 2, per_task) == expected


def _folder(root, counts: dict[str, int]) -> list[SourceJob]:
    jobs = []
    for index, (service, n) in enumerate(counts.items()):
        fmt = "cloudtrail_archive" if service == "CloudTrail" else "flow_log_file"
        tail = "_20250102T0000Z_x.json.gz" if service == "CloudTrail" else "_fl-1_20250102T0000Z_x.log.gz"
        for i in range(n):
            name = f"111122223333_{service}_us-east-1{tail}".replace("_x.", f"_{i:04d}.")
            path = root / service / f"AWSLogs/111122223333/{service}/us-east-1/2025/01/02/{name}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * (i + 1))
        spec = SourceConfig(type="file", log_group=service, path=str(root / service), format=fmt)
        jobs.append(SourceJob.make(index, spec, Location(str(root / service)), ()))
    return jobs


@pytest.mark.parametrize("counts, threads", [({"CloudTrail": 100, "vpcflowlogs": 37}, 2),
                                             ({"CloudTrail": 1, "vpcflowlogs": 250}, 3),
                                             ({"vpcflowlogs": 5}, 8)])
def test_every_object_is_in_one_partition_in_key_order(tmp_path, counts, threads):
    jobs = _folder(tmp_path, counts)
    day = dt.date(2025, 1, 2)
    the_plan = plan(jobs, day, day, threads)
    for job, listing in zip(the_plan.jobs, the_plan.listings):
        mine = [o for p in the_plan.partitions if p.source == job.index for o in p.objects]
        assert mine == [(i, key) for i, (key, _) in enumerate(listing.logs)]
    sizes = [len(p.objects) for p in the_plan.partitions]
    assert the_plan.objects == sum(counts.values()) and max(sizes) >= sizes[-1]
