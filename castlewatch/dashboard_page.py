"""The CloudWatch dashboard as a local HTML page, drawn with plotly.js.

The page draws the dashboard :func:`castlewatch.dashboard.dashboard_body` generates for
the configuration (the body the ``cloudwatch_dashboard`` sink sends to PutDashboard: the
same widgets, in the same log-group sections, the same lines), filled from a
:class:`~castlewatch.dashboard_data.MinuteSums` (the datapoints a file sink wrote, or those
a running daemon closed):

- per log group, its header, then one time-series plot per metric widget, one line per
  dimension value set (per metric array of the widget), the widget's statistic (``Sum``)
  per minute (its ``period``, 60 s) on the y axis with the metric's unit, the minutes in
  UTC on the x axis, every plot over the same time range;
- a table of totals: per line, the Sum and SampleCount over the time range, the minutes
  with a datapoint, the first and last of them;
- the time range covered, where the datapoints came from, and how many are older than
  the minutes kept.

Namespaces are those of the datapoints (no ``namespace_prefix``: the files hold the
namespaces of the metric transformations).

Rendering: a Jinja2 template (``castlewatch/data/dashboard/page.html.j2``) with
autoescaping, so every string from the logs (dimension values such as user names) or the
configuration is text, never markup; the figures travel as JSON made script-safe by Jinja's
``tojson``, and their strings are given to plotly.js with ``&``, ``<`` and ``>`` written as
entities, since plotly.js reads a few tags (``<b>``, ``<br>``) in labels: it shows them as
the characters they are. A Content-Security-Policy lets only the page's own scripts run
(their SHA-256 hashes) and fetch nothing (the file page) or only from the daemon (the live
page). The file page inlines plotly.js (``plotly`` package, about 4.8 MB), so it opens
offline; the live page loads it from the daemon.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from castlewatch.dashboard import dashboard_body, metrics_by_log_group
from castlewatch.dashboard_data import MinuteSums, Series

#: The live page fetches its state this often (milliseconds).
LIVE_REFRESH_MS = 5000


@dataclass
class Page:
    """What the template draws (see the module docstring); made by :func:`page_model`."""

    title: str
    config_name: str
    source: str
    source_kind: str
    generated: str
    live: bool
    max_minutes: int
    outside: int
    version: int
    statistic: str = "Sum"
    statistic_note: str = ""
    range: dict[str, Any] | None = None
    datapoints: int = 0
    notes: list[str] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def structure(self) -> str:
        """The widgets' ids and titles: a live page rebuilds its grid when this changes."""
        return hashlib.sha256(
            "\n".join(f"{g['id']}\t{g['title']}\t{g['lines']}" for s in self.sections for g in s["graphs"]).encode()
        ).hexdigest()[:16]


def plotly_text(text: str) -> str:
    """``text`` for a plotly.js label (trace name, title): ``&``, ``<`` and ``>`` as
    entities, so that plotly.js, which reads a few HTML tags in labels, shows the
    characters themselves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def minute_text(seconds: int) -> str:
    """A minute (epoch seconds) as ``2024-01-01 00:01`` (UTC, no zone: plotly.js draws such
    times as they are, whatever the browser's time zone)."""
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def number_text(value: float) -> str:
    """A statistic as text: an integral value without ``.0`` (``12``), others in Python's
    shortest round-trip form (``30.5``)."""
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _code_spans(markdown: str) -> list[tuple[bool, str]]:
    """A text widget's one-line markdown header as (is code, text) parts: the leading
    ``#`` s dropped, `` `code` `` spans kept apart (the template escapes every part)."""
    text = markdown.strip().lstrip("#").strip()
    return [(i % 2 == 1, part) for i, part in enumerate(text.split("`")) if part]


def _units(config: Any) -> dict[tuple[str, str], list[str]]:
    """(namespace, metric name) -> the units its metric transformations give (``"None"``
    when not set)."""
    units: dict[tuple[str, str], list[str]] = {}
    for f in config.metric_filters:
        for t in f.metric_transformations:
            found = units.setdefault((t.metric_namespace, t.metric_name), [])
            unit = t.unit or "None"
            if unit not in found:
                found.append(unit)
    return units


def _log_groups(config: Any) -> dict[tuple[str, str], str]:
    return {(ns, name): group for group, metrics in metrics_by_log_group(config.metric_filters).items()
            for ns, name, _, _ in metrics}


def _ordered_seen(config: Any, store: MinuteSums) -> dict[tuple[str, str], list]:
    """The store's dimension sets seen, each in its metric transformation's dimension order
    (a file sink may not keep the order: CSV sorts by name), as the sink sees them."""
    order: dict[tuple[str, str], list[str]] = {}
    for f in config.metric_filters:
        for t in f.metric_transformations:
            order.setdefault((t.metric_namespace, t.metric_name), list(t.dimensions or ()))
    seen = {}
    for key, sets in store.seen.items():
        names = order.get(key, [])
        rank = {name: i for i, name in enumerate(names)}
        seen[key] = [tuple(sorted(dims, key=lambda d: (rank.get(d[0], len(rank)), d[0]))) for dims in sets]
    return seen


def page_model(
    config: Any,
    store: MinuteSums,
    *,
    source: str,
    source_kind: str = "file",
    live: bool = False,
    notes: list[str] | None = None,
    now: _dt.datetime | None = None,
) -> Page:
    """The page for ``config`` filled from ``store``.

    Args:
        config: an ``EngineConfig`` (``metric_filters``; ``path`` names it).
        store: the datapoints.
        source: where they came from, in a few words (a file's path, "the running daemon").
        source_kind: ``"file"`` (``source`` is a file holding them all, older ones too),
            ``"run"`` (a replay or run without such a file) or ``"live"``.
        live: the live page of ``run --serve`` (it refreshes itself).
        notes: lines worth showing (a file's incomplete last line).
        now: the time the page is made (default: now).
    """
    path = getattr(config, "path", None)
    config_name = path.name if path is not None else "a configuration"
    generated = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M:%S")
    page = Page(
        title=f"castlewatch dashboard: {config_name}",
        config_name=config_name,
        source=source,
        source_kind=source_kind,
        generated=generated,
        live=live,
        max_minutes=store.max_minutes,
        outside=store.outside,
        version=store.version,
        notes=list(notes or ()),
    )
    body = dashboard_body(config, region="local", seen=_ordered_seen(config, store))
    span = store.minute_range()
    if span is not None:
        first, last = span
        page.range = {"first": minute_text(first), "last": minute_text(last), "minutes": (last - first) // 60 + 1}
        x_range = [minute_text(first - 60) + ":30", minute_text(last) + ":30"]
        x_step = tick_minutes((last - first) // 60 + 1)
    else:
        x_range, x_step = None, 1
    units = _units(config)
    groups = _log_groups(config)
    widgets = body["widgets"]
    if widgets and widgets[0]["type"] == "text" and "left out" in widgets[0]["properties"]["markdown"]:
        page.notes.append(widgets[0]["properties"]["markdown"].rsplit("\n", 1)[-1])
    section: dict[str, Any] | None = None
    statistics = set()
    for index, widget in enumerate(widgets[1:], 1):
        props = widget["properties"]
        if widget["type"] == "text":
            section = {"heading": _code_spans(props["markdown"]), "graphs": []}
            page.sections.append(section)
            continue
        if widget["type"] != "metric" or section is None:  # pragma: no cover - dashboard_body makes no other
            continue
        graph_id = f"widget-{index}"
        stat = props["stat"]
        period = props["period"]
        statistic = f"{stat} per minute" if period == 60 else f"{stat} per {period} s"
        statistics.add(statistic)
        traces, rows, graph_units = [], [], []
        for line in props["metrics"]:
            rendering = line[-1] if isinstance(line[-1], dict) else {}
            parts = line[:-1] if rendering else line
            namespace, name = parts[0], parts[1]
            dims = tuple(zip(parts[2::2], parts[3::2]))
            label = rendering.get("label", name)
            series = store.lookup(namespace, name, dims)
            for unit in (series.units if series else units.get((namespace, name), ["None"])):
                if unit not in graph_units:
                    graph_units.append(unit)
            traces.append(_trace(label, series))
            rows.append(_total_row(groups.get((namespace, name), ""), graph_id, props["title"], namespace, name,
                                   label if dims else "", series, units.get((namespace, name), ["None"])))
        unit_text = ", ".join(graph_units)
        axis = f"{statistic} ({unit_text})" if unit_text != "None" else f"{statistic} (unit: None)"
        layout = _layout(graph_id, axis, x_range, x_step, empty=not any(t["x"] for t in traces))
        values = [y for t in traces for y in t["y"]]
        if values and all(float(y).is_integer() for y in values) and max(values) <= 5:
            layout["yaxis"]["dtick"] = 1  # counts: no tick between two whole numbers
        page.figures[graph_id] = {"data": traces, "layout": layout}
        section["graphs"].append({"id": graph_id, "title": props["title"], "statistic": statistic,
                                  "unit": unit_text, "lines": len(traces)})
        page.totals.extend(rows)
        page.datapoints += sum(len(t["x"]) for t in traces)
    page.statistic = " and ".join(sorted(statistics)) or "Sum per minute"
    page.statistic_note = (
        f"Each plot is a widget of the CloudWatch dashboard castlewatch generates for this configuration: "
        f"the {page.statistic} of a metric, one line per dimension value set, the minutes in UTC. "
        "Late datapoints of a minute and the several datums of a minute are added up, as CloudWatch adds them."
    )
    return page


def _trace(label: str, series: Series | None) -> dict[str, Any]:
    minutes = sorted(series.minutes) if series else []
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": plotly_text(label),
        "x": [minute_text(m) for m in minutes],
        "y": [series.minutes[m].sum for m in minutes] if series else [],
    }


#: Minutes between two ticks of the time axis, the smallest that gives at most 12 ticks.
TICK_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080)


def tick_minutes(span: int) -> int:
    """Minutes between two ticks of a time axis covering ``span`` minutes: whole minutes
    only (a datapoint is a minute), at most 12 ticks up to a week, a week beyond."""
    return next((step for step in TICK_MINUTES if span / step <= 12), TICK_MINUTES[-1])


def _layout(graph_id: str, axis: str, x_range: list[str] | None, x_step: int, empty: bool) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "autosize": True,
        "margin": {"l": 64, "r": 16, "t": 8, "b": 8},
        "xaxis": {"type": "date", "title": {"text": "minute (UTC)"}, "hoverformat": "%Y-%m-%d %H:%M UTC",
                  "automargin": True, "dtick": x_step * 60_000, "tick0": "2000-01-01 00:00",
                  "tickformat": "%H:%M\n%Y-%m-%d"},
        "yaxis": {"title": {"text": plotly_text(axis)}, "rangemode": "tozero", "automargin": True},
        "showlegend": True,
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3},
        "hovermode": "closest",
        "hoverlabel": {"namelength": -1},
        "uirevision": graph_id,
    }
    if x_range is not None:
        layout["xaxis"]["range"] = x_range
    if empty:
        layout["annotations"] = [{"text": "no datapoint in the time range", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return layout


def _total_row(log_group: str, graph_id: str, title: str, namespace: str, name: str, dimensions: str,
               series: Series | None, config_units: list[str]) -> dict[str, Any]:
    cells = [series.minutes[m] for m in sorted(series.minutes)] if series else []
    return {
        "log_group": log_group,
        "widget_id": graph_id,
        "widget_title": title,
        "namespace": namespace,
        "metric_name": name,
        "dimensions": dimensions,
        "unit": ", ".join(series.units if series else config_units),
        "sum": number_text(sum(c.sum for c in cells)),
        "sample_count": number_text(sum(c.sample_count for c in cells)),
        "minutes": len(cells),
        "first": minute_text(min(series.minutes)) if cells else None,
        "last": minute_text(max(series.minutes)) if cells else None,
    }


# ---- rendering --------------------------------------------------------------------------------------


@cache
def _environment() -> Any:
    """The Jinja2 environment of the templates in ``castlewatch/data/dashboard/`` (autoescape on)."""
    import jinja2

    def load(name: str) -> str:
        return resources.files("castlewatch").joinpath("data/dashboard", name).read_text(encoding="utf-8")

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@cache
def page_js() -> str:
    """The page's own script (draws the figures; on the live page, refreshes them)."""
    return resources.files("castlewatch").joinpath("data/dashboard/page.js").read_text(encoding="utf-8")


@cache
def plotly_js() -> str:
    """plotly.js, minified, as the ``plotly`` package ships it.

    Raises:
        RuntimeError: it holds ``</script`` (it could not be inlined in a page).
    """
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if "</script" in js.lower():  # pragma: no cover - checked for every plotly.js release we take
        raise RuntimeError("plotly.js holds '</script': it cannot be inlined")
    return js


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(live: bool) -> str:
    """The page's Content-Security-Policy: only its own scripts run (their hashes; the
    live page also loads plotly.js from the daemon), nothing is fetched (the live page:
    from the daemon only), inline styles and ``data:`` images (plotly.js's) allowed."""
    scripts = [_hash(page_js())]
    if live:
        scripts.insert(0, "'self'")
        connect = "'self'"
    else:
        scripts.insert(0, _hash(plotly_js()))
        connect = "'none'"
    return (f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'unsafe-inline'; img-src data:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'")


def render_page(page: Page, *, plotly_src: str | None = None) -> str:
    """The HTML of ``page``: with plotly.js inlined (one self-contained file), or, given
    ``plotly_src`` (the live page), loaded from that URL."""
    from castlewatch import __version__

    return _environment().get_template("page.html.j2").render(
        page=page,
        figures=page.figures,
        csp=content_security_policy(plotly_src is not None),
        version=__version__,
        refresh_ms=LIVE_REFRESH_MS,
        plotly_js=None if plotly_src is not None else _safe(plotly_js()),
        plotly_src=plotly_src,
        page_js=_safe(page_js()),
    )


def _safe(script: str) -> Any:
    import markupsafe

    return markupsafe.Markup(script)


def live_state(page: Page) -> dict[str, Any]:
    """What the live page fetches (``/dashboard.json``): the figures, the version (the
    page redraws when it differs), the HTML fragments the template renders for the
    header, the totals and (when the widgets changed) the whole page."""
    module = _environment().get_template("macros.html.j2").module
    return {
        "version": page.version,
        "generated": page.generated,
        "structure": page.structure,
        "summary_html": str(module.summary(page)),
        "totals_html": str(module.totals(page)),
        "main_html": str(module.main(page)),
        "figures": page.figures,
    }
