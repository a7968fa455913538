"""Every config in ``examples/`` runs, as the README uses it.

A config that talks to AWS (a ``cloudwatch_logs`` source, a CloudWatch sink) runs against
the tests' moto server instead of LocalStack or a real account (``--endpoint-url`` and
``--region`` over its own settings, as the README says they may be given): ``provision``,
the bundled samples put by ``scripts/put_sample_events.py``, then ``replay``. A config
without AWS is replayed as it is. Each writes its datapoints and, where it has an
``html_dashboard`` sink, the dashboard page, whose widgets are those of the dashboard the
``cloudwatch_dashboard`` sink put (GetDashboard): same titles, same log groups, same lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from click.testing import CliRunner
from dashboard_checks import body_widgets, page_widgets

from castlewatch.cli import main
from castlewatch.engine.config import load_config, talks_to_aws
from castlewatch.engine.sources import cloudwatch_logs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture(autouse=True)
def fast_emulator(monkeypatch):
    """moto has no call quota: CloudWatch Logs' rate limit raised in this process."""
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_TPS", 500.0)
    monkeypatch.setattr(cloudwatch_logs, "LOGS_READ_BURST", 50)


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"moto.yaml", "localstack.yaml", "aws.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_each_example_runs(example, tmp_path, request):
    config = load_config(example)
    sinks = {s.type: s for s in config.sinks}
    out = tmp_path / "out"
    if talks_to_aws(config):
        url = request.getfixturevalue("moto")
        aws = ["--endpoint-url", url, "--region", "us-east-1"]
        invoke("provision", "--config", str(example), *aws)
        from test_seed_walkthrough import put_sample_events

        assert put_sample_events().main(["--endpoint-url", url, "--region", "us-east-1"]) == 0
        invoke("replay", "--config", str(example), "--out", str(out), *aws)
    else:
        url = None
        invoke("replay", "--config", str(example), "--out", str(out))
    datapoints = [p for p in out.iterdir() if p.suffix in (".jsonl", ".csv", ".avro")]
    assert datapoints and all(p.stat().st_size > 0 for p in datapoints)
    if "html_dashboard" in sinks:
        page = (out / Path(sinks["html_dashboard"].path).name).read_text()
        widgets = page_widgets(page)
        assert widgets and all(lines for _, _, lines in widgets)
        if "cloudwatch_dashboard" in sinks and url is not None:
            cw = botocore.session.get_session().create_client("cloudwatch", region_name="us-east-1",
                                                              endpoint_url=url)
            body = json.loads(cw.get_dashboard(DashboardName=sinks["cloudwatch_dashboard"].dashboard_name)
                              ["DashboardBody"])
            cw.close()
            assert widgets == body_widgets(body)
