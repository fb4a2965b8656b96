"""HTTP: ``/metrics``, the probes, the batch status pages and their JSON (contract §9, §12).

``/metrics`` is the exposition of :mod:`exporter.metrics.registry`, in the text format or in
OpenMetrics when the scraper asks for it; readiness is read from the health state. ``/`` and
``/owners/...`` are the status pages of :mod:`exporter.report.pages`, ``/api/v1/owners`` the
same statuses as JSON, ``/status`` the exporter's own sync state.
"""

from __future__ import annotations

import html
import json

from aiohttp import web

from exporter import __version__
from exporter.app.wiring import Exporter
from exporter.metrics.registry import negotiate, wants_gzip
from exporter.report import pages
from exporter.report.owners import OwnerStatus, as_json, known, owners, status

OWNER = "/{namespace}/{kind}/{name}"


class Service:
    """Builds the aiohttp application over the exporter's exposition, health and engine."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self._exposition = exporter.exposition
        self._health = exporter.health

    def app(self) -> web.Application:
        """The aiohttp application with all routes."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/", self.index)
        app.router.add_get("/owners" + OWNER, self.owner)
        app.router.add_get("/api/v1/owners", self.api_owners)
        app.router.add_get("/api/v1/owners" + OWNER, self.api_owner)
        app.router.add_get("/status", self.status)
        return app

    def _serving(self) -> bool:
        """The batch status is shown only where the batch series are: on the leader, synced."""
        e = self._exporter
        return e.exposition.renderers is not None and e.health.synced and e.health.leading()

    def _statuses(self) -> list[OwnerStatus]:
        engine = self._exporter.engine
        if engine is None or not self._serving():
            return []
        return owners(engine.runs, engine.slots, self._exporter.clock())

    def _one(self, request: web.Request) -> OwnerStatus:
        engine = self._exporter.engine
        info = request.match_info
        key = (info["namespace"], info["kind"], info["name"])
        if engine is None or not self._serving() or not known(engine.runs, engine.slots, key):
            raise web.HTTPNotFound(text="no such owner\n")
        return status(engine.runs, engine.slots, key, self._exporter.clock())

    async def index(self, request: web.Request) -> web.Response:
        """The batch status page: every owner, problems first, filtered by the query."""
        query = request.query
        page = pages.index(
            self._statuses(),
            self._exporter.clock(),
            self._serving(),
            namespace=query.get("namespace", ""),
            only_problems=query.get("problems") == "1",
            leader=self._health.leader,
        )
        return _html(page)

    async def owner(self, request: web.Request) -> web.Response:
        """One owner's page."""
        return _html(pages.detail(self._one(request), self._exporter.clock(), True))

    async def api_owners(self, request: web.Request) -> web.Response:
        """Every owner's status as JSON."""
        body = {
            "time": self._exporter.clock(),
            "leading": self._serving(),
            "owners": [as_json(o) for o in self._statuses()],
        }
        return web.json_response(body, dumps=_dumps)

    async def api_owner(self, request: web.Request) -> web.Response:
        """One owner's status as JSON."""
        return web.json_response(as_json(self._one(request)), dumps=_dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        """Serve the exposition in the format the ``Accept`` header prefers, gzipped if asked."""
        openmetrics, content_type = negotiate(request.headers.get("Accept", ""))
        compress = wants_gzip(request.headers.get("Accept-Encoding", ""))
        response = web.Response(body=await self._exposition.scrape(openmetrics, compress))
        response.headers["Content-Type"] = content_type
        response.headers["Vary"] = "Accept, Accept-Encoding"
        if compress:
            response.headers["Content-Encoding"] = "gzip"
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

    async def status(self, request: web.Request) -> web.Response:
        """The exporter's own state: sync per resource, objects, last errors, links."""
        rows = "".join(
            f"<tr><td>{r}</td><td>{'yes' if h.synced else 'no'}</td><td>{h.objects}</td>"
            f"<td>{html.escape(str(h.failure or ''))}</td></tr>"
            for r, h in self._health.resources.items()
        )
        page = (
            "<!doctype html><title>kube-batch-exporter</title>"
            "<p><a href='/'>batch status</a></p>"
            f"<h1>kube-batch-exporter {__version__}</h1>"
            "<p><a href='/metrics'>/metrics</a> · <a href='/readyz'>/readyz</a> · "
            "<a href='/healthz'>/healthz</a></p>"
            "<table border=1 cellpadding=4><tr><th>resource</th><th>synced</th>"
            f"<th>objects</th><th>last error</th></tr>{rows}</table>"
        )
        return web.Response(text=page, content_type="text/html")


def _html(page: str) -> web.Response:
    response = web.Response(text=page, content_type="text/html")
    response.headers["Content-Security-Policy"] = pages.CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _dumps(body: object) -> str:
    return json.dumps(body, separators=(",", ":"), allow_nan=False)
