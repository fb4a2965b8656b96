"""HTTP: ``/metrics``, ``/healthz``, ``/readyz`` and a small status page at ``/``.

``/metrics`` is the exposition of :mod:`exporter.metrics.registry`, in the text format or in
OpenMetrics when the scraper asks for it; readiness is read from the health state.
"""

from __future__ import annotations

import html

from aiohttp import web

from exporter import __version__
from exporter.health.state import Health
from exporter.metrics.registry import OPENMETRICS_TYPE, TEXT_TYPE, Exposition


class Service:
    """Builds the aiohttp application over the exposition and the health state."""

    def __init__(self, exposition: Exposition, health: Health) -> None:
        self._exposition = exposition
        self._health = health

    def app(self) -> web.Application:
        """The aiohttp application with all routes."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/", self.index)
        return app

    async def metrics(self, request: web.Request) -> web.Response:
        """Serve the exposition, negotiating OpenMetrics."""
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        body = self._exposition.scrape(openmetrics)
        response = web.Response(body=body)
        response.headers["Content-Type"] = OPENMETRICS_TYPE if openmetrics else TEXT_TYPE
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the process serves."""
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        """200 after every resource's first full list, while no watch lacks permission."""
        problems = self._health.problems()
        if problems:
            return web.Response(status=503, text="not ready\n" + "\n".join(problems) + "\n")
        return web.Response(text="ok\n")

    async def index(self, request: web.Request) -> web.Response:
        """A status page for people: sync state, objects, last errors, links."""
        rows = "".join(
            f"<tr><td>{r}</td><td>{'yes' if h.synced else 'no'}</td><td>{h.objects}</td>"
            f"<td>{html.escape(str(h.failure or ''))}</td></tr>"
            for r, h in self._health.resources.items()
        )
        page = (
            "<!doctype html><title>kube-batch-exporter</title>"
            f"<h1>kube-batch-exporter {__version__}</h1>"
            "<p><a href='/metrics'>/metrics</a> · <a href='/readyz'>/readyz</a> · "
            "<a href='/healthz'>/healthz</a></p>"
            "<table border=1 cellpadding=4><tr><th>resource</th><th>synced</th>"
            f"<th>objects</th><th>last error</th></tr>{rows}</table>"
        )
        return web.Response(text=page, content_type="text/html")
