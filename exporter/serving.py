"""HTTP: ``/metrics``, ``/healthz``, ``/readyz`` and a small status page at ``/``.

A scrape concatenates the pre-rendered object families and appends the self-metrics from the
private client_python registry, in the text format or in OpenMetrics when the scraper asks for
it (object families are gauges, identical in both formats).
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.openmetrics import exposition as openmetrics_format

from exporter import __version__
from exporter.health import RESOURCES, Health

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Writer(Protocol):
    """Anything that appends exposition bytes to a scrape."""

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append this writer's families to ``out``."""


class Service:
    """Builds the aiohttp application over the writers and the health state."""

    def __init__(
        self, writers: Sequence[Writer], registry: CollectorRegistry, health: Health
    ) -> None:
        self._writers = writers
        self._registry = registry
        self._health = health

    def app(self) -> web.Application:
        """The aiohttp application with all routes."""
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/", self.index)
        return app

    def scrape(self, openmetrics: bool) -> bytes:
        """The whole exposition body."""
        started = time.perf_counter()
        out: list[bytes] = []
        for writer in self._writers:
            writer.write(out, openmetrics)
        fmt = openmetrics_format if openmetrics else text_format
        out.append(fmt.generate_latest(self._registry))
        body = b"".join(out)
        self._health.last_scrape = (time.perf_counter() - started, len(body))
        return body

    async def metrics(self, request: web.Request) -> web.Response:
        """Serve the exposition, negotiating OpenMetrics."""
        openmetrics = "application/openmetrics-text" in request.headers.get("Accept", "")
        body = self.scrape(openmetrics)
        response = web.Response(body=body)
        response.headers["Content-Type"] = OPENMETRICS_TYPE if openmetrics else TEXT_TYPE
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the process serves."""
        return web.Response(text="ok\n")

    def problems(self) -> list[str]:
        """Why the exporter is not ready, in words (empty when ready)."""
        out = [
            f"{r}: waiting for the first full list" for r in RESOURCES if not self._health.synced[r]
        ]
        out += [
            f"{r}: {msg}"
            for r, msg in sorted(self._health.last_error.items())
            if self._health.synced[r] is False or "permission denied" in msg
        ]
        return out

    async def readyz(self, request: web.Request) -> web.Response:
        """200 after every resource's first full list, while no watch lacks permission."""
        problems = self.problems()
        if problems:
            return web.Response(status=503, text="not ready\n" + "\n".join(problems) + "\n")
        return web.Response(text="ok\n")

    async def index(self, request: web.Request) -> web.Response:
        """A status page for people: sync state, objects, last errors, links."""
        h = self._health
        rows = "".join(
            f"<tr><td>{r}</td><td>{'yes' if h.synced[r] else 'no'}</td><td>{h.objects[r]}</td>"
            f"<td>{html.escape(h.last_error.get(r, ''))}</td></tr>"
            for r in RESOURCES
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
