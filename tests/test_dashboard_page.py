"""The dashboard as a local page: ``castlewatch dashboard`` and the ``html_dashboard`` sink.

A small job is replayed (a JSON application log: sign-ins per user, bytes, sign-outs, one
user name written as markup) and its page checked against counts worked out by hand from
the log (``dashboard_checks.LOG``): the widgets the ``cloudwatch_dashboard`` sink would put (same titles, same
log group grouping, same lines), the Sum per minute of each line, the units and statistic
on the axes, the totals, the time range; the page filled from JSON Lines, Avro or CSV is
the same; nothing in it is fetched from elsewhere; strings from the logs are text.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from click.testing import CliRunner
from dashboard_checks import BOB, WANT, XSS, body_widgets, outside_scripts, page_figures, page_text, page_widgets
from dashboard_checks import write_job

from castlewatch.cli import main
from castlewatch.dashboard import dashboard_body
from castlewatch.dashboard_data import DatapointFileError, MinuteSums, read_datapoints
from castlewatch.engine.config import load_config

def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def replayed(tmp_path):
    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n"
                                 "  - {type: avro, path: out/datapoints.avro}\n"
                                 "  - {type: csv, path: out/datapoints.csv}\n"
                                 "  - {type: html_dashboard, path: out/sink.html}\n")
    result = invoke("replay", "--config", str(config))
    assert result.exit_code == 0, result.output
    return config


def lines_by_name(page: str) -> dict[tuple, dict[str, float]]:
    """(namespace, metric[, dimension name, value]) -> {minute: Sum}, read from the figures:
    a trace's name is its dimension label (``User=...``, entities as the page writes them)
    or its metric's name."""
    out = {}
    for figure in page_figures(page).values():
        for trace in figure["data"]:
            name = html.unescape(trace["name"])
            key = ("App", "SignIns", "User", name.removeprefix("User=")) if name.startswith("User=") else ("App", name)
            out[key] = dict(zip(trace["x"], trace["y"]))
    return out


def test_the_page_draws_the_cloudwatch_dashboard_widgets_with_the_sums_worked_out_by_hand(replayed, tmp_path):
    result = invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "dashboard.html"))
    assert result.exit_code == 0, result.output
    assert "Wrote the dashboard to" in result.stderr and "3 widgets, 8 datapoints" in result.stderr
    page = (tmp_path / "dashboard.html").read_text()
    config = load_config(replayed)
    seen = {("App", "SignIns"): [(("User", "alice"),), (("User", XSS),), (("User", BOB),)]}
    body = dashboard_body(config, region="us-east-1", seen=seen)
    assert page_widgets(page) == body_widgets(body) == [
        ("Log group app", "SignIns (SignInsPerUser)", ["User=alice", f"User={XSS}", f"User={BOB}"]),
        ("Log group app", "SignInBytes", ["SignInBytes"]),
        ("Log group other", "SignOuts", ["SignOuts"]),
    ]
    assert lines_by_name(page) == WANT
    figures = page_figures(page)
    axes = [f["layout"]["yaxis"]["title"]["text"] for f in figures.values()]
    assert axes == ["Sum per minute (Count)", "Sum per minute (Bytes)", "Sum per minute (unit: None)"]
    assert all(f["layout"]["xaxis"]["title"]["text"] == "minute (UTC)" and f["layout"]["xaxis"]["type"] == "date"
               for f in figures.values())
    text = " ".join(page_text(page).split())
    assert "Time range covered: 2024-01-01 10:00 to 2024-01-01 10:02 UTC (3 minutes, 8 datapoints drawn)" in text
    assert "Sum per minute, period 60 s; unit: Bytes" in text
    # the totals: Sum, SampleCount, minutes, first and last minute of each line
    rows = re.findall(r"<tr><td>(.*?)</tr>", page, re.S)
    cells = [re.sub(r"<[^>]+>", "", "|".join(re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", "<td>" + row, re.S)))
             for row in rows]
    assert cells == [
        "app|SignIns (SignInsPerUser)|App|SignIns|User=alice|Count|3|3|2|2024-01-01 10:00|2024-01-01 10:02",
        "app|SignIns (SignInsPerUser)|App|SignIns|User=&lt;img src=x onerror=alert(1)&gt;|Count|1|1|1|"
        "2024-01-01 10:01|2024-01-01 10:01",
        "app|SignIns (SignInsPerUser)|App|SignIns|User=bob &amp; &#34;eve&#34;|Count|1|1|1|2024-01-01 10:02|"
        "2024-01-01 10:02",
        "app|SignInBytes|App|SignInBytes|(none)|Bytes|170|5|3|2024-01-01 10:00|2024-01-01 10:02",
        "other|SignOuts|App|SignOuts|(none)|None|1|1|1|2024-01-01 10:02|2024-01-01 10:02",
    ]


def test_the_sink_s_page_and_the_command_s_page_draw_the_same_figures(replayed, tmp_path):
    assert invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "d.html")).exit_code == 0
    assert page_figures((tmp_path / "out" / "sink.html").read_text()) == page_figures((tmp_path / "d.html").read_text())


@pytest.mark.parametrize("kind", ["avro", "csv"])
def test_a_page_from_avro_or_csv_equals_the_page_from_json_lines(replayed, tmp_path, kind):
    assert invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "jsonl.html")).exit_code == 0
    only = write_job(tmp_path, f"  - {{type: {kind}, path: out/datapoints.{kind}}}\n", name=f"{kind}.yaml")
    result = invoke("dashboard", "--config", str(only), "--out", str(tmp_path / f"{kind}.html"))
    assert result.exit_code == 0, result.output
    assert f"datapoints.{kind}" in result.stderr
    want = page_figures((tmp_path / "jsonl.html").read_text())
    assert page_figures((tmp_path / f"{kind}.html").read_text()) == want


def test_log_content_is_text_everywhere_and_nothing_is_fetched(replayed, tmp_path):
    assert invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "d.html")).exit_code == 0
    page = (tmp_path / "d.html").read_text()
    markup = outside_scripts(page)
    assert "<img" not in markup.lower() and "<img" not in page_figures_raw(page)
    assert f"User={XSS}" in page_text(page)  # the table shows the characters
    # plotly.js reads tags in labels: the trace name carries entities, which it shows as characters
    names = [t["name"] for f in page_figures(page).values() for t in f["data"]]
    assert "User=&lt;img src=x onerror=alert(1)&gt;" in names and "User=bob &amp; \"eve\"" in names
    # one file: no element loads anything, no URL outside the inline scripts
    assert not re.search(r"<(link|img|iframe|object|embed)\b", markup, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc=", markup, re.I)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", markup.replace("http-equiv", ""), re.I)
    assert "url(" not in markup and "@import" not in markup
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "'unsafe-eval'" not in csp
    assert page.count("<script") == 3 and "Plotly" in page  # the figures, plotly.js, the page's own


def page_figures_raw(page: str) -> str:
    return re.search(r'id="castlewatch-figures">(.*?)</script>', page, re.S).group(1)


def test_the_demo_replay_writes_the_page_beside_the_datapoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("replay")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "castlewatch-out" / "dashboard.html").read_text()
    widgets = page_widgets(page)
    assert len(widgets) == 20  # cis 15 + vpc-flow-logs 4 + seed-dashboard 1 (its other two are the packs')
    assert ("Log group CloudTrail/DefaultLogGroup", "ConsoleSignIns (ConsoleSignInsPerUser)",
            ["UserArn=arn:aws:iam::111122223333:user/alice", "UserArn=arn:aws:iam::111122223333:user/bob",
             "UserArn=arn:aws:iam::111122223333:root",
             "UserArn=arn:aws:sts::111122223333:assumed-role/ExampleAdminRole/carol@example.com"]) in widgets
    # the command draws the same page again from the datapoints
    again = invoke("dashboard", "--out", str(tmp_path / "again.html"))
    assert again.exit_code == 0, again.output
    assert page_figures((tmp_path / "again.html").read_text()) == page_figures(page)


def test_minutes_older_than_the_kept_range_are_counted_not_drawn(replayed, tmp_path):
    result = invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "d.html"), "--max-minutes", "2")
    assert result.exit_code == 0, result.output
    assert "Note: 2 datapoints older than the last 2 minutes are not drawn" in result.stderr
    page = (tmp_path / "d.html").read_text()
    assert "2024-01-01 10:01 to 2024-01-01 10:02 UTC (2 minutes" in " ".join(page_text(page).split())
    assert {m for line in lines_by_name(page).values() for m in line} == {"2024-01-01 10:01", "2024-01-01 10:02"}


def test_a_config_without_a_file_sink_or_without_its_file_is_refused(tmp_path):
    config = write_job(tmp_path, "  - {type: stdout}\n")
    result = invoke("dashboard", "--config", str(config))
    assert result.exit_code == 2 and "no jsonl, avro or csv sink" in result.stderr
    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n", name="fresh.yaml")
    result = invoke("dashboard", "--config", str(config))
    assert result.exit_code == 66
    assert f"no datapoints file {tmp_path / 'out' / 'datapoints.jsonl'}: run `castlewatch replay --config" in result.stderr
    assert not (tmp_path / "out" / "dashboard.html").exists()


def test_a_line_that_is_not_a_datapoint_is_named(replayed, tmp_path):
    path = tmp_path / "out" / "datapoints.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = '{"Namespace": "App", "MetricName": "X", "Timestamp": "yesterday", "Value": 1}'
    path.write_text("\n".join(lines) + "\n")
    result = invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "d.html"))
    assert result.exit_code == 65
    assert f"{path}:3: not a datapoint" in result.stderr and "'yesterday' is not an ISO 8601 time" in result.stderr
    assert not (tmp_path / "d.html").exists()


def test_an_incomplete_last_line_is_left_out_and_said(replayed, tmp_path):
    path = tmp_path / "out" / "datapoints.jsonl"
    with open(path, "a") as fh:
        fh.write('{"Namespace": "App", "MetricName": "SignOuts", "Timest')
    result = invoke("dashboard", "--config", str(replayed), "--out", str(tmp_path / "d.html"))
    assert result.exit_code == 0, result.output
    assert "the last line is not complete yet (no line end); left out" in result.stderr
    assert lines_by_name((tmp_path / "d.html").read_text()) == WANT


def test_the_page_may_not_overwrite_a_sink_s_or_a_source_s_file(replayed, tmp_path):
    for target in (tmp_path / "out" / "datapoints.csv", tmp_path / "app.log"):
        before = target.read_bytes()
        result = invoke("dashboard", "--config", str(replayed), "--out", str(target))
        assert result.exit_code == 2 and "write the page elsewhere" in result.stderr
        assert target.read_bytes() == before


def test_the_readers_add_up_a_minute_s_datapoints_as_cloudwatch_does(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [
        {"Namespace": "N", "MetricName": "M", "Timestamp": "2024-01-01T00:00:00Z", "Values": [2.0, 5.0],
         "Counts": [3.0, 1.0], "Unit": "Count"},
        # a late datapoint of the same minute, and StatisticValues and Value forms
        {"Namespace": "N", "MetricName": "M", "Timestamp": "2024-01-01T00:00:00Z",
         "StatisticValues": {"Sum": 4.0, "SampleCount": 2.0, "Minimum": 1.0, "Maximum": 3.0}, "Unit": "Count"},
        {"Namespace": "N", "MetricName": "M", "Timestamp": "2024-01-01T00:01:00Z", "Value": 9.5},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = MinuteSums()
    assert read_datapoints("jsonl", path, store) == []
    series = store.lookup("N", "M", ())
    first, second = series.minutes[1704067200], series.minutes[1704067260]
    assert (first.sum, first.sample_count, first.minimum, first.maximum) == (15.0, 6.0, 1.0, 5.0)
    assert (second.sum, second.sample_count) == (9.5, 1.0) and series.units == ["Count", "None"]
    path.write_text('{"Namespace": "N", "MetricName": "M", "Timestamp": "2024-01-01T00:00:00Z"}\n')
    with pytest.raises(DatapointFileError, match=r"d.jsonl:1: .*no Values, StatisticValues or Value"):
        read_datapoints("jsonl", path, MinuteSums())


def test_sinks_put_elsewhere_by_replay_out_are_found_with_sinks_dir_and_the_page_can_go_to_stdout(tmp_path):
    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n")
    elsewhere = tmp_path / "elsewhere"
    assert invoke("replay", "--config", str(config), "--out", str(elsewhere)).exit_code == 0
    result = invoke("dashboard", "--config", str(config), "--sinks-dir", str(elsewhere), "--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    assert "Wrote the dashboard to stdout: 3 widgets, 8 datapoints" in result.stderr
    assert lines_by_name(result.stdout) == WANT
    assert not (tmp_path / "out").exists()
