"""What a castlewatch dashboard page shows, read back from its HTML with the standard
library's parser, to compare with the dashboard body the ``cloudwatch_dashboard`` sink puts.

- :func:`page_widgets`: per widget, in page order, (log group header, title, the names of
  its lines), the line names as the browser shows them (plotly.js turns the entities the
  page writes back into characters);
- :func:`body_widgets`: the same from a dashboard body (``dashboard_body``, GetDashboard);
- :func:`page_figures`: the figures' JSON (``{widget id: {"data": [...], "layout": {...}}}``);
- :func:`page_text`: the page's text without its scripts (what a reader sees besides the plots);
- :func:`outside_scripts`: the HTML with the inline scripts' bodies cut out (what must
  hold no markup from the logs and no URL);
- :func:`write_job`: a small job (a JSON application log: sign-ins per user, bytes,
  sign-outs, one user name written as markup) and :data:`WANT`, its Sum per minute of each
  line worked out by hand from :data:`LOG`.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

XSS = "<img src=x onerror=alert(1)>"
BOB = 'bob & "eve"'

LOG = [
    {"time": "2024-01-01T10:00:05Z", "event": "login", "user": "alice", "bytes": 100},
    {"time": "2024-01-01T10:00:40Z", "event": "login", "user": "alice", "bytes": 50},
    {"time": "2024-01-01T10:01:10Z", "event": "login", "user": XSS, "bytes": 7},
    {"time": "2024-01-01T10:02:00Z", "event": "login", "user": BOB, "bytes": 3},
    {"time": "2024-01-01T10:02:58Z", "event": "logout", "user": "alice"},
    {"time": "2024-01-01T10:02:59Z", "event": "login", "user": "alice", "bytes": 10},
]

# Two log groups read the same log: the second source names it through a symlink.
JOB = """\
metric_filters:
  - filterName: SignInsPerUser
    logGroupName: app
    filterPattern: '{ $.event = "login" }'
    metricTransformations:
      - {metricName: SignIns, metricNamespace: App, metricValue: "1", unit: Count, dimensions: {User: $.user}}
  - filterName: SignInBytes
    logGroupName: app
    filterPattern: '{ $.event = "login" }'
    metricTransformations: [{metricName: SignInBytes, metricNamespace: App, metricValue: $.bytes, unit: Bytes}]
  - filterName: SignOuts
    logGroupName: other
    filterPattern: '{ $.event = "logout" }'
    metricTransformations: [{metricName: SignOuts, metricNamespace: App, metricValue: "1"}]
sources:
  - {type: file, path: app.log, log_group: app, timestamp: {field: $.time, format: iso8601}}
  - {type: file, path: other.log, log_group: other, timestamp: {field: $.time, format: iso8601}}
allowed_lateness_s: 60
"""

#: By hand from LOG: the Sum per minute of each line, (namespace, metric[, dimension, value]) -> {minute: Sum}.
WANT = {
    ("App", "SignIns", "User", "alice"): {"2024-01-01 10:00": 2.0, "2024-01-01 10:02": 1.0},
    ("App", "SignIns", "User", XSS): {"2024-01-01 10:01": 1.0},
    ("App", "SignIns", "User", BOB): {"2024-01-01 10:02": 1.0},
    ("App", "SignInBytes"): {"2024-01-01 10:00": 150.0, "2024-01-01 10:01": 7.0, "2024-01-01 10:02": 13.0},
    ("App", "SignOuts"): {"2024-01-01 10:02": 1.0},
}


def write_job(tmp: Path, sinks: str, name: str = "job.yaml") -> Path:
    """The job of :data:`JOB` in ``tmp`` (its log :data:`LOG` in ``app.log``) with ``sinks``
    (YAML list items); returns the config's path."""
    (tmp / "app.log").write_text("".join(json.dumps(r) + "\n" for r in LOG))
    if not (tmp / "other.log").exists():
        (tmp / "other.log").symlink_to(tmp / "app.log")
    config = tmp / name
    config.write_text(JOB + f"sinks:\n{sinks}")
    return config


_FIGURES = re.compile(r'<script type="application/json" id="castlewatch-figures">(.*?)</script>', re.S)
_SCRIPT = re.compile(r"(<script\b[^>]*>)(.*?)(</script>)", re.S | re.I)


class _Widgets(HTMLParser):
    """Log group headers (``h2``), widget ids (``figure data-widget``) and titles (``h3``)."""

    def __init__(self) -> None:
        super().__init__()
        self.header = ""
        self.widgets: list[tuple[str, str, str]] = []  # header, widget id, title
        self._in: str | None = None
        self._text: list[str] = []
        self._widget: str | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "figure":
            self._widget = dict(attrs).get("data-widget")
        if tag in ("h2", "h3"):
            self._in, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == self._in:
            text = "".join(self._text)
            if tag == "h2":
                self.header = text
            elif self._widget is not None:
                self.widgets.append((self.header, self._widget, text))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None and not self._skip:
            self._text.append(data)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_figures(page: str) -> dict[str, Any]:
    """The figures the page draws, by widget id."""
    match = _FIGURES.search(page)
    assert match is not None, "no figures block"
    return json.loads(match.group(1))


def page_widgets(page: str) -> list[tuple[str, str, list[str]]]:
    """(log group header, widget title, line names) per widget, in page order."""
    parser = _Widgets()
    parser.feed(page)
    figures = page_figures(page)
    return [(header, title, [html.unescape(trace["name"]) for trace in figures[widget]["data"]])
            for header, widget, title in parser.widgets]


def body_widgets(body: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(log group header, widget title, line names) per metric widget of a dashboard body;
    the header as the page shows it (markdown's ``##`` and backquotes dropped)."""
    out, header = [], ""
    for widget in body["widgets"][1:]:
        props = widget["properties"]
        if widget["type"] == "text":
            header = props["markdown"].lstrip("#").strip().replace("`", "")
            continue
        names = []
        for line in props["metrics"]:
            rendering = line[-1] if isinstance(line[-1], dict) else {}
            names.append(rendering.get("label", line[1]))
        out.append((header, props["title"], names))
    return out


def page_text(page: str) -> str:
    """The page's text, scripts and styles left out, entities decoded."""
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


def outside_scripts(page: str) -> str:
    """The page with every inline script's body cut out (its tags kept)."""
    return _SCRIPT.sub(lambda m: m.group(1) + m.group(3), page)
