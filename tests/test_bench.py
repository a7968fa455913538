"""The benchmark suite (``bench/``, issue 4) and ``castlewatch bench``.

The suite runs once, in quick mode on a few hundred events per stream; the tests
check that it completes, that every implementation agrees with castlewatch where it
should, that the peers' known disagreements are reported (not hidden), and the shape
of the JSON, chart and command. No timing is asserted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from castlewatch.cli import main
from castlewatch.cli import bench_command as bench_cli
from castlewatch.grammar import literals

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "bench" / "__init__.py").is_file():  # pragma: no cover - an sdist without bench/
    pytest.skip("bench/ is not in this checkout", allow_module_level=True)

bench, report = bench_cli.import_bench()
from bench import generate  # noqa: E402
from bench.naive import NaivePattern  # noqa: E402
from bench.peers import AWS_JSON, MOTO, quote_bare_values  # noqa: E402
from bench.workloads import WORKLOADS  # noqa: E402

OURS = ("castlewatch", "castlewatch_loop", "naive", "grep")
STATUSES = {"met", "missed", "not checked", "not measured"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return bench.run_suite(quick=True, scale=0.005, runs=2, workdir=tmp_path_factory.mktemp("bench"))


def _workload(results: dict, name: str) -> dict:
    return next(w for w in results["workloads"] if w["name"] == name)


def test_every_workload_runs_with_its_baselines(results):
    assert [w["name"] for w in results["workloads"]] == [w.name for w in WORKLOADS]
    for w in results["workloads"]:
        res = w["results"]
        assert {"castlewatch", "floor", "grep"} <= set(res), w["name"]
        if w["kind"] not in ("replay", "e2e"):
            assert "naive" in res, w["name"]
        for entry in res.values():
            assert entry["runs"] == 2
            assert 0 < entry["ev_s"]["min"] <= entry["ev_s"]["median"] <= entry["ev_s"]["max"]
        assert w["results"]["castlewatch"]["matches"] > 0, w["name"]
    assert set(results["streams"]) == {"app", "cloudtrail", "vpc", "vpc-e2e", "vpc-late", "vpc-late-sorted"}
    assert all(100 <= s["events"] <= 1000 for s in results["streams"].values())


def test_castlewatch_naive_and_grep_agree_on_every_workload(results):
    for w in results["workloads"]:
        ours = [d for d in w["disagreements"] if d["implementation"] in OURS]
        assert ours == [], (w["name"], ours)
        for key in ("naive", "castlewatch_loop"):
            if key in w["results"]:
                assert w["results"][key]["agrees"] is True
                assert w["results"][key]["counts"] == w["results"]["castlewatch"]["counts"]
    extract = _workload(results, "vpc-reject-bytes")["results"]
    assert extract["naive"]["value_sum"] == extract["castlewatch"]["value_sum"] > 0


def test_replay_writes_what_the_matchers_find(results):
    for name, baseline in (("replay-cloudtrail", "cis-pack"), ("replay-vpc", "vpc-reject-bytes")):
        w = _workload(results, name)
        assert w["disagreements"] == []
        assert w["results"]["castlewatch"]["counts"] == _workload(results, baseline)["results"]["castlewatch"]["counts"]
        assert "matcher" in w["ratios"]
    sink = _workload(results, "replay-vpc")["results"]["castlewatch"]["sink_totals"]["VPCFlowLogsRejectedBytes"]
    assert sink["sum"] == _workload(results, "vpc-reject-bytes")["results"]["castlewatch"]["value_sum"]


def test_end_to_end_workloads_write_the_reference_datapoints(results):
    """issue 11: `castlewatch replay` in a new process writes, line for line, what the general
    evaluator writes in this process; the late-heavy stream publishes what its in-order copy does."""
    for name, compare in (("e2e-cloudtrail", "orjson"), ("e2e-vpc", "floor"), ("e2e-vpc-late", "in_order")):
        w = _workload(results, name)
        assert w["disagreements"] == [], name
        cw = w["results"]["castlewatch"]
        assert cw["reference"]["events_read"] == w["events"]
        assert cw["reference"]["datums"] > 0 and cw["matches"] > 0
        assert compare in w["ratios"] and w["targets"][0]["ratio"] == compare
    late = _workload(results, "e2e-vpc-late")
    assert late["results"]["castlewatch"]["reference"]["late_events"] > 0.8 * late["events"]
    assert late["results"]["in_order"]["counts"] == late["results"]["castlewatch"]["counts"]
    assert set(_workload(results, "e2e-cloudtrail")["filters"]) >= {"CIS-RootUsage", "ConsoleSignIns"}


def test_late_heavy_stream_is_90_percent_an_hour_behind():
    lines = list(generate.vpc_late_lines(2000))
    newest, behind = 0, 0
    for line in lines:
        start = int(line.split()[10])
        behind += start < newest - 3600
        newest = max(newest, start)
    assert behind == 1800
    ordered = list(generate.vpc_late_lines(2000, in_order=True))
    assert sorted(ordered) == sorted(lines) and ordered == sorted(lines, key=lambda x: int(x.split()[10]))


def test_peers_agree_where_they_implement_the_pattern(results):
    term = _workload(results, "term")["results"]
    assert term[MOTO]["agrees"] is True and term[MOTO]["matches"] == term["castlewatch"]["matches"]
    equality = _workload(results, "json-equality")["results"]
    for key in (AWS_JSON, AWS_JSON + " (parsed once)"):
        assert equality[key]["agrees"] is True
        assert equality[key]["counts"] == equality[key]["castlewatch_counts_on_slice"]
    assert equality[AWS_JSON]["events"] < _workload(results, "json-equality")["events"]  # timed on a slice


def test_known_peer_disagreements_are_reported_not_hidden(results):
    # moto reads '?ERROR ?FATAL' as an unsupported pattern and matches every event
    optional = _workload(results, "term-optional")
    (d,) = [d for d in optional["disagreements"] if d["implementation"] == MOTO]
    assert d[MOTO] == optional["events"] != d["castlewatch"]
    assert d["example"]["castlewatch"] is False and d["example"][MOTO] is True
    assert optional["results"][MOTO]["agrees"] is False
    # aws-json-term-matcher cannot parse NOT EXISTS (CIS-RootUsage)
    pack = _workload(results, "cis-pack")
    rejected = [d for d in pack["disagreements"] if d["implementation"] == AWS_JSON and d["kind"] == "rejected"]
    assert [d["filter"] for d in rejected] == ["CIS-RootUsage"]
    assert "NOT" in rejected[0]["detail"]
    assert pack["results"][AWS_JSON]["agrees"] is False
    assert any("rejected" in note for note in pack["results"][AWS_JSON]["notes"])
    # ... and the table says so
    rows = {row[0]: row for row in report.rows(results)}
    assert rows[optional["title"]][8].startswith("NO: moto")
    assert "ajtm: rejects 1 pattern" in rows[pack["title"]][8]
    assert results["agreement"]["ok"] is False
    assert {d["workload"] for d in results["agreement"]["disagreements"]} >= {"term-optional", "cis-pack"}


def test_targets_and_summary_figures(results):
    assert {t["status"] for t in results["targets"]} <= STATUSES
    names = {(t["workload"], t["ratio"] if "ratio" in t else None) for t in results["targets"]}
    assert ("cis-pack", "naive") in names and ("cis-pack", "peer:" + AWS_JSON) in names
    assert ("term", "floor") in names and ("vpc-reject", "floor") in names
    compile_ = results["compile"]
    assert compile_["patterns"] == 15 and compile_["min_ms"] <= compile_["median_ms"] <= compile_["max_ms"]
    rss = results["rss"]
    assert rss["events"] < 10_000_000 and rss["target"]["status"] == "not checked"
    assert "quick mode" in rss["target"]["note"] and rss["peak_mb"] > 0


def test_checkpoint_cost_is_measured_and_the_daemon_agrees_with_replay(results):
    """bench.checkpoint: the daemon catching up the backlog wrote exactly replay's datapoints,
    saved checkpoints on the way, and the one-minute high-cardinality run wrote every value."""
    c = results["checkpoint"]
    backlog = c["backlog"]
    assert backlog["agrees"] is True
    assert backlog["replay"]["events_read"] == backlog["daemon"]["events_read"] == backlog["events"]
    daemon = backlog["daemon"]
    assert daemon["checkpoint_bytes_max"] > 0 and daemon["writer"]["writes"] >= 1
    assert 0 <= daemon["save_loop_s"]["mean"] <= daemon["save_loop_s"]["max"]
    assert c["ratios"]["daemon_vs_replay"] > 0
    distinct = c["distinct"]
    assert distinct["daemon"]["values_written"] == distinct["values"]
    assert distinct["daemon"]["peak_rss_mb"] >= distinct["daemon"]["after_import_mb"] > 0
    assert c["target"]["status"] == "not checked"  # a backlog this small measures start-up
    assert any(t["workload"] == "checkpoint" for t in results["targets"])
    assert any(line.startswith("checkpoint cost: a daemon catching up") for line in report.summary_lines(results))


def test_json_document_shape(results, tmp_path):
    path = tmp_path / "bench.json"
    report.write_json(results, path)
    doc = json.loads(path.read_text())
    assert doc["schema"] == 1 and doc["mode"] == "quick" and doc["runs"] == 2
    assert {"cpus", "cpu_model", "python"} <= set(doc["machine"])
    assert doc["matcher_backend"] == literals.backend()  # the figures depend on it
    for w in doc["workloads"]:
        assert {"name", "title", "stream", "kind", "events", "bytes", "results", "ratios", "targets",
                "disagreements"} <= set(w)
        for entry in w["results"].values():
            assert {"label", "called_as", "events", "bytes", "runs", "seconds", "ev_s", "mb_s"} <= set(entry)
            assert set(entry["ev_s"]) == {"median", "min", "max"}
    assert set(doc["agreement"]) == {"ok", "disagreements"}


def test_plot_is_a_png(results, tmp_path):
    path = tmp_path / "bench.png"
    report.write_plot(results, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_markdown_table(results):
    text = report.markdown(results)
    assert text.startswith("| workload |")
    assert f"matcher backend {literals.backend()}," in text
    assert text.count("\n| ") == len(WORKLOADS)  # the header, then one row per workload


def test_cli_writes_table_json_plot_and_markdown(results, tmp_path, monkeypatch):
    calls = []

    def fake_run_suite(**kwargs):
        calls.append(kwargs)
        return results

    monkeypatch.setattr(bench, "run_suite", fake_run_suite)
    out = CliRunner().invoke(
        main,
        ["bench", "--quick", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png"),
         "--markdown", str(tmp_path / "b.md"), "--scale", "0.5"],
    )
    assert out.exit_code == 0, out.output
    assert calls[0]["quick"] is True and calls[0]["scale"] == 0.5
    assert "events per second per core" in out.output and "targets:" in out.output
    assert json.loads((tmp_path / "b.json").read_text())["workloads"] == results["workloads"]
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "b.md").read_text().startswith("| workload |")


def test_cli_without_the_checkout_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_cli, "checkout_root", lambda: tmp_path)
    out = CliRunner().invoke(main, ["bench", "--quick"])
    assert out.exit_code == 2
    assert "bench/" in out.output and "pip install -e '.[bench]'" in out.output


def test_a_peer_that_is_not_installed_is_reported_as_such(tmp_path, monkeypatch):
    import bench.peers

    real = bench.peers.version
    monkeypatch.setattr(bench.peers, "version", lambda dist: None if dist == "moto" else real(dist))
    partial = bench.run_suite(quick=True, scale=0.002, runs=1, workdir=tmp_path, only=("term",))
    (term,) = partial["workloads"]
    assert MOTO not in term["results"] and term["disagreements"] == []
    assert any("moto is not installed" in s for s in term["skipped"])
    assert any(line.startswith("not run: moto") for line in report.summary_lines(partial))
    assert partial["rss"] is None and partial["checkpoint"] is None


# ---- the parts on their own -------------------------------------------------------------------


def test_generators_are_deterministic_and_realistic():
    assert list(generate.cloudtrail_events(50, seed=7)) == list(generate.cloudtrail_events(50, seed=7))
    assert list(generate.vpc_flow_lines(50, seed=7)) != list(generate.vpc_flow_lines(50, seed=8))
    trail = list(generate.cloudtrail_events(2000))
    assert 1200 <= sum(map(len, trail)) / len(trail) <= 1800
    import castlewatch
    from bench.workloads import cis_patterns

    cis = [castlewatch.compile_pattern(p) for p in cis_patterns()]
    security = sum(any(p.matches(e) for p in cis) for e in trail) / len(trail)
    assert 0.02 <= security <= 0.06
    flows = list(generate.vpc_flow_lines(5000))
    assert 0.17 <= sum(" REJECT " in f for f in flows) / len(flows) <= 0.23
    assert all(len(f.split()) == 14 for f in flows)


def test_naive_interpreter_agrees_with_the_conformance_cases():
    import castlewatch

    text = (ROOT / "tests" / "conformance" / "cases.jsonl").read_text(encoding="utf-8")
    cases = [json.loads(line) for line in text.splitlines() if line]
    checked = 0
    for case in cases:
        if "transform" in case or case.get("invalid") or "match" not in case:
            continue
        try:
            castlewatch.compile_pattern(case["pattern"])
        except castlewatch.FilterPatternError:
            continue
        got = NaivePattern(case["pattern"]).extract(case["event"])
        assert (got is not None) == case["match"], case["id"]
        if case["match"] and case.get("extracted") is not None:
            assert got == case["extracted"], case["id"]
        checked += 1
    assert checked > 150


def test_bare_values_are_quoted_for_aws_json_term_matcher():
    assert quote_bare_values('{ ($.a = B) && $.c = "d" && $.n = 1 && $.h=s3.amazonaws.com }') == (
        '{ ($.a = "B") && $.c = "d" && $.n = 1 && $.h="s3.amazonaws.com" }'
    )
    assert quote_bare_values("ERROR") == "ERROR"


def test_an_implementation_that_times_itself_is_charged_its_own_time(tmp_path, monkeypatch):
    """The end-to-end runs report the castlewatch process's time: reading its sink afterwards
    (to check the datapoints) is the bench's work, not castlewatch's."""
    from bench import runner

    class TimesItself(runner.Impl):
        key, label = "castlewatch", "a process timed by itself"

        def run(self, path):
            time.sleep(0.05)  # the bench's own checking, after the process ended
            return runner.Outcome({runner.MATCH: 1}, seconds=0.001)

    suite = runner.Suite("quick", 0.0001, 2, tmp_path, 1, lambda _: None, None)
    monkeypatch.setattr(suite, "implementations", lambda w: ([TimesItself(), runner.FloorPython()], []))
    record = suite.run_workload(next(w for w in WORKLOADS if w.name == "term"))
    assert record["results"]["castlewatch"]["seconds"] == {"median": 0.001, "min": 0.001, "max": 0.001}
    assert record["results"]["floor"]["seconds"]["max"] < 0.05  # timed by the runner, as before
