"""The backfill benchmark (``bench/backfill.py``) runs end to end on a tiny archive: its
three ways agree and every figure is there. No timing or memory is asserted (those are
measured by the benchmark itself, in one run, as ratios)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "bench" / "backfill.py").is_file():  # pragma: no cover - an sdist without bench/
    pytest.skip("bench/ is not in this checkout", allow_module_level=True)
sys.path.insert(0, str(ROOT))
from bench import backfill  # noqa: E402


def test_the_backfill_bench_runs_and_its_three_ways_agree(tmp_path):
    result = backfill.run("smoke", workdir=str(tmp_path))
    assert result["agrees"] is True
    assert result["archive"]["events"] > 0 and result["archive"]["datapoints"] > 0
    assert set(result["seconds"]) == {"replay", "backfill_1", "backfill_2"}
    assert result["ratio_2_over_1_workers"] > 0
    big = result["large_object"]
    assert big["file_source"]["events"] == big["streamed"]["events"] > 0
    assert len(backfill.report_lines(result)) == 8
