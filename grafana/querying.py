"""Run a dashboard's panel queries against a Prometheus, as Grafana would.

Used by the live test (every query must parse, and every panel show data unless it says it
may be empty) and by ``make dashboard-pictures``. Only the variables our dashboards use are
expanded: ``$__range``, ``$__rate_interval`` and the dashboard's own template variables.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from grafana.build import Dashboard, Panel, Query


@dataclass(frozen=True)
class Result:
    """What one target returned: the Prometheus result list, or the error in words."""

    panel: Panel
    query: Query
    expr: str
    series: list[dict[str, Any]]
    error: str = ""


SCRAPE_INTERVAL = 15
"""Grafana's default "scrape interval" of a Prometheus data source, in seconds."""


def expand(expr: str, variables: dict[str, str], range_seconds: int, step: int) -> str:
    """Substitute the variables as Grafana does (longest names first).

    ``$__rate_interval`` is Grafana's: the larger of the step plus one scrape interval and
    four scrape intervals, so a rate always spans enough samples.
    """
    rate_interval = max(step + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL)
    out = expr.replace("$__rate_interval", f"{rate_interval}s")
    out = out.replace("$__range", f"{range_seconds}s")
    for name in sorted(variables, key=len, reverse=True):
        out = re.sub(rf"\${name}\b", variables[name], out)
    return out


def _get(url: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    full = f"{url}{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(full, timeout=30) as resp:
            body: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as err:  # 400/422: the query did not parse or evaluate
        body = json.load(err)
    return body


def run(
    prometheus: str,
    dashboard: Dashboard,
    variables: dict[str, str],
    start: float,
    end: float,
    step: int = 15,
) -> list[Result]:
    """Every target of every panel: instant ones at ``end``, the others over the range."""
    results = []
    range_seconds = int(end - start)
    for panel in dashboard.panels():
        for query in panel.queries:
            expr = expand(query.expr, variables, range_seconds, step)
            if query.instant:
                body = _get(prometheus, "/api/v1/query", {"query": expr, "time": str(end)})
            else:
                params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
                body = _get(prometheus, "/api/v1/query_range", params)
            ok = body.get("status") == "success"
            results.append(
                Result(
                    panel,
                    query,
                    expr,
                    body["data"]["result"] if ok else [],
                    "" if ok else str(body.get("error", body)),
                )
            )
    return results
