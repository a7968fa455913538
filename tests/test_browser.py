"""The dashboard pages in a real browser: headless Chromium (Debian's ``chromium`` package,
which ``.ci/run`` installs when it is missing) driven by playwright.

The page ``castlewatch dashboard`` writes (the demo replay's, and a job whose user name is
written as markup) and the live page of ``castlewatch run --serve`` are loaded: no
uncaught error and no error in the console, every widget drawn by plotly.js with one line
per dimension value set, every metric name on the page, the user name shown as text (no
element made of it, no dialog opened), nothing fetched but the page itself (the live page:
only from the daemon); the live page redraws when a minute closes. A full-page screenshot
of each is written to ``test-artifacts/`` (ignored by git) for a person to look at.

Skipped only where Chromium is not installed and cannot be (not under CI, where it is
installed: there a missing browser fails).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dashboard_checks import XSS, page_figures, write_job

from castlewatch.engine.config import load_config

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_MS = 30_000


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """One page loaded in a fresh browser context, with what it did: console errors,
    uncaught exceptions, dialogs opened and URLs requested."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)

    def drawn(self, widgets: int) -> list[dict]:
        """Wait for ``widgets`` plots drawn; per widget: its id, its title, the number of lines
        plotly.js drew (its traces) and the legend's texts as shown."""
        self.page.wait_for_function(
            "n => document.querySelectorAll('figure.widget .plot.js-plotly-plot .main-svg').length >= n",
            arg=widgets, timeout=WAIT_MS)
        return self.page.evaluate("""() => Array.from(document.querySelectorAll('figure.widget')).map(f => {
            const plot = f.querySelector('.plot');
            return {id: plot.id, title: f.querySelector('h3').textContent, traces: (plot.data || []).length,
                    legend: Array.from(plot.querySelectorAll('.legendtext')).map(t => t.textContent),
                    drawn: plot.querySelectorAll('.scatterlayer .trace').length};
        })""")

    def text(self) -> str:
        return self.page.inner_text("body")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path

    def close(self) -> None:
        self.context.close()


def check_page(visit: Visit, figures: dict, metric_names: set[str]) -> list[dict]:
    """What every page must show: each widget drawn with its lines, each metric named, no
    error, no dialog, no element made of log content."""
    widgets = visit.drawn(len(figures))
    assert sorted(w["id"] for w in widgets) == sorted(figures)
    for widget in widgets:
        names = [t["name"] for t in figures[widget["id"]]["data"]]
        assert widget["traces"] == widget["drawn"] == len(names), widget
        # plotly.js shows the characters the entities stand for
        assert widget["legend"] == [n.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for n in names]
    text = visit.text()
    missing = {name for name in metric_names if name not in text}
    assert not missing, f"metric names not on the page: {missing}"
    assert "Time range covered:" in text and "Totals over the time range covered" in text
    assert visit.page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert visit.errors == [] and visit.dialogs == []
    return widgets


def castlewatch(*args: str, cwd: Path | None = None) -> None:
    """``castlewatch ARGS`` in a process of its own (playwright's synchronous API keeps an
    event loop running in this thread, where the CLI cannot start its own)."""
    done = subprocess.run([sys.executable, "-m", "castlewatch", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr


def metric_names(config_path: Path) -> set[str]:
    return {t.metric_name for f in load_config(config_path).metric_filters for t in f.metric_transformations}


def test_the_generated_page_opens_offline_and_draws_every_widget(browser, tmp_path):
    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n")
    castlewatch("replay", "--config", str(config))
    page = tmp_path / "dashboard.html"
    castlewatch("dashboard", "--config", str(config), "--out", str(page))
    visit = Visit(browser, page.as_uri())
    try:
        widgets = check_page(visit, page_figures(page.read_text()), metric_names(config))
        assert f"User={XSS}" in widgets[0]["legend"] and f"User={XSS}" in visit.text()
        assert visit.requests == [page.as_uri()]  # nothing else: no script, style, font or image
        visit.screenshot("dashboard-job.png")
    finally:
        visit.close()


def test_the_demo_replay_s_page_draws_all_its_widgets(browser, tmp_path):
    castlewatch("replay", cwd=tmp_path)
    page = tmp_path / "castlewatch-out" / "dashboard.html"
    from castlewatch.cli.engine_commands import demo_config_path

    visit = Visit(browser, page.as_uri())
    try:
        widgets = check_page(visit, page_figures(page.read_text()), metric_names(demo_config_path()))
        assert len(widgets) == 20  # one per metric filter of the demo: cis 15, vpc-flow-logs 4, seed-dashboard 1 more
        assert visit.requests == [page.as_uri()]
        visit.screenshot("dashboard-demo.png")
    finally:
        visit.close()


def test_the_live_page_draws_and_follows_the_minutes_as_they_close(browser, tmp_path):
    from dashboard_checks import WANT
    from test_live import NEXT, Daemon, state, sums, want_by_name

    config = write_job(tmp_path, "  - {type: jsonl, path: out/datapoints.jsonl}\n")
    config.write_text(config.read_text().replace("allowed_lateness_s: 60", "allowed_lateness_s: 1"))
    daemon = Daemon(config, tmp_path, "--serve", "127.0.0.1:0")
    try:
        # every minute of the log closed (1 s of quiet), then the page is loaded
        daemon.wait_for(lambda: sums(state(daemon.url)["figures"]) == want_by_name(WANT))
        visit = Visit(browser, daemon.url)
        try:
            check_page(visit, state(daemon.url)["figures"], metric_names(config))
            version = visit.page.get_attribute("#castlewatch-page", "data-version")
            with open(tmp_path / "app.log", "a") as fh:
                fh.write(json.dumps(NEXT) + "\n")
            # the page fetches its state every few seconds and redraws: the new minute shows
            visit.page.wait_for_function(
                "v => document.getElementById('castlewatch-page').dataset.version !== v"
                " && document.getElementById('widget-3').data[0].x.includes('2024-01-01 10:03')",
                arg=version, timeout=WAIT_MS)
            assert "2024-01-01 10:03" in visit.page.inner_text("#castlewatch-summary")
            assert visit.page.inner_text("#castlewatch-status").startswith("live, updated")
            check_page(visit, state(daemon.url)["figures"], metric_names(config))
            origin = daemon.url.rstrip("/")
            assert visit.requests and all(url.startswith(origin + "/") for url in visit.requests), visit.requests
            visit.screenshot("dashboard-live.png")
        finally:
            visit.close()
        daemon.stop()
    finally:
        daemon.kill()

