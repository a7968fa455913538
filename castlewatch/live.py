"""``run --serve``: the live dashboard page and Prometheus's ``/metrics``, served by the daemon.

An aiohttp server on the daemon's own event loop (:func:`start_server`), reading what the engine
has (its counters, and the datapoints it closed, kept by a
:class:`~castlewatch.dashboard_data.MinuteSums` the engine feeds as an observer):

- ``GET /``: the live dashboard (:mod:`castlewatch.dashboard_page`, the widgets of the
  ``cloudwatch_dashboard`` sink over the last :data:`LIVE_MINUTES` minutes); it fetches
  ``/dashboard.json`` every few seconds and redraws what changed, so it follows the
  minutes as they close;
- ``GET /dashboard.json``: that state (figures, HTML fragments, a version);
- ``GET /plotly.min.js``: plotly.js, for the page;
- ``GET /metrics``: :mod:`castlewatch.prometheus` (the text format, or OpenMetrics when asked).

Reading changes nothing: only GET (and HEAD) are served, every other method gets 405, and
a request only reads the engine's state. The server never holds up the evaluation: a
page is drawn once per change of the datapoints (a copy taken on the event loop, drawn and
encoded in a thread) and shared by every request until the next change; a scrape is a
few hundred lines. It binds to the address given (``127.0.0.1`` unless told otherwise).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import orjson

from castlewatch.dashboard_data import MinuteSums, datapoint_file, read_datapoints

#: Minutes the live page and ``/metrics`` keep, counted back from the newest datapoint
#: (the CloudWatch dashboard's default range, ``-PT3H``).
LIVE_MINUTES = 180

_ADDRESS = re.compile(r"^(?:(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):)?(?P<port>[0-9]{1,5})$")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT`` (host ``127.0.0.1``) as (host, port);
    port 0 picks a free port.

    Raises:
        ValueError: not of that form, or a port above 65535.
    """
    match = _ADDRESS.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not HOST:PORT, [IPv6]:PORT or PORT (such as 127.0.0.1:9108)")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"{text!r}: port {port} is above 65535")
    return match["v6"] or match["host"] or "127.0.0.1", port


class LiveDashboard:
    """The live page's and ``/metrics``' view of a running engine.

    Args:
        config: the run's configuration (its metric filters make the widgets).
        max_minutes: minutes kept (:data:`LIVE_MINUTES`).

    Attributes:
        store: the closed datapoints of the last ``max_minutes`` minutes.
        engine: set by :meth:`attach`.
    """

    def __init__(self, config: Any, max_minutes: int = LIVE_MINUTES) -> None:
        self.config = config
        self.store = MinuteSums(max_minutes)
        self.engine: Any = None
        self.notes: list[str] = []
        self._drawn: tuple[int, dict[str, Any], bytes] | None = None  # version, state, page
        self._drawing = asyncio.Lock()

    def attach(self, engine: Any) -> None:
        """Follow ``engine``: its datapoints feed :attr:`store` from now on."""
        self.engine = engine
        engine.observers.append(self.store.add_datapoints)

    async def seed(self, resumed: bool) -> None:
        """A run resuming from a checkpoint: take the recent minutes from the configuration's
        file sink (truncated back to the checkpoint by then), in a thread. Call before the
        run starts."""
        found = datapoint_file(self.config)
        if not resumed or found is None:
            return
        try:
            self.notes = await asyncio.to_thread(read_datapoints, found[0], found[1], self.store)
        except FileNotFoundError:
            pass
        except ValueError as err:
            self.notes = [f"the minutes before this run are not drawn: {err}"]

    async def drawn(self) -> tuple[dict[str, Any], bytes]:
        """(the ``/dashboard.json`` state, the page's HTML) for the datapoints now; drawn
        again only when they changed."""
        async with self._drawing:
            version = self.store.version
            if self._drawn is None or self._drawn[0] != version:
                state, page = await asyncio.to_thread(self._draw, self.store.copy())
                self._drawn = (version, state, page)
            return self._drawn[1], self._drawn[2]

    def _draw(self, store: MinuteSums) -> tuple[dict[str, Any], bytes]:
        from castlewatch.dashboard_page import live_state, page_model, render_page

        page = page_model(self.config, store, source="the running daemon", source_kind="live", live=True,
                          notes=self.notes)
        return live_state(page), render_page(page, plotly_src="plotly.min.js").encode("utf-8")


@dataclass
class Server:
    """A running server: its URL (the port bound, when 0 was asked) and its runner."""

    url: str
    runner: Any

    async def close(self) -> None:
        """Stop listening and close the connections."""
        await self.runner.cleanup()


def make_app(live: LiveDashboard) -> Any:
    """The aiohttp application (the routes of the module docstring)."""
    from aiohttp import web

    from castlewatch.dashboard_page import content_security_policy, plotly_js
    from castlewatch.prometheus import exposition, registry_for

    registry = registry_for(live)
    plotly = plotly_js().encode("utf-8")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

    async def page(request: web.Request) -> web.Response:
        _, html = await live.drawn()
        return web.Response(body=html, content_type="text/html", charset="utf-8",
                            headers={**headers, "Content-Security-Policy": content_security_policy(True)})

    async def state(request: web.Request) -> web.Response:
        current, _ = await live.drawn()
        return web.Response(body=orjson.dumps(current), content_type="application/json", headers=headers)

    async def script(request: web.Request) -> web.Response:
        return web.Response(body=plotly, content_type="application/javascript", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=86400"})

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition(registry, request.headers.get("Accept"))
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/dashboard.json", state)
    app.router.add_get("/plotly.min.js", script)
    app.router.add_get("/metrics", metrics)
    return app


async def start_server(live: LiveDashboard, host: str, port: int) -> Server:
    """Listen on ``host:port`` (port 0: a free one) on the running event loop.

    Raises:
        OSError: the address cannot be bound (in use, not an address of this machine).
    """
    from aiohttp import web

    runner = web.AppRunner(make_app(live), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return Server(url=f"http://{shown}:{bound[1]}/", runner=runner)
