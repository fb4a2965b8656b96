"""A small typed builder for Grafana dashboard JSON.

Why not hand-written JSON: three dashboards share a datasource variable, runbook links, units
and thresholds conventions, and the live test must run every query. Declaring panels as data
here keeps those conventions in one place, and the JSON files in grafana/dashboards/ are only
its output (``make dashboards``; a test fails when they are stale).

Why not Grafana's grafana-foundation-sdk (evaluated for issue 19): it would replace only the
render functions below, with one builder class per panel kind whose options are typed per kind
(our six kinds each need their own dispatch), and one timeseries panel took 19 chained lines
against ten here. Its PyPI releases use epoch-stamped versions, so a plain install resolves to
``1769699998!10.1.0``, which writes Grafana 10.1's schema (``schemaVersion`` 36, a deprecated
``style``, ``"options": null``) older than the 39 written here; a newer schema needs an exact
epoch pin such as ``1769699379!11.6.0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAG = "kube-batch-exporter"
RUNBOOKS = "https://github.com/kube-batch-exporter/kube-batch-exporter/blob/main/docs/runbooks.md"
EMPTY_WHEN_HEALTHY = "Empty when healthy."
"""Panels whose description contains this may return no data; the live test skips only them."""

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


@dataclass(frozen=True)
class Query:
    """One PromQL target; ``instant`` for stats and tables that show the value now."""

    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False
    """Cumulative histogram buckets that Grafana turns into per-bucket counts, sorted by le."""


@dataclass(frozen=True)
class Panel:
    """One panel: what it shows, in which unit, and when it turns orange or red."""

    kind: str
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str
    width: int = 8
    height: int = 8
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),)
    """Absolute threshold steps (base first); every panel has them, so colours mean the same."""
    runbook: str = ""
    """Alert name whose runbook the panel links to."""
    links: tuple[tuple[str, str], ...] = ()
    """(title, url) data links, e.g. to another dashboard for the clicked row."""
    mappings: tuple[tuple[str, str, str], ...] = ()
    """(value, text, colour) value mappings for states."""
    options: dict[str, Any] = field(default_factory=dict)
    decimals: int | None = None
    """Fixed decimals; 0 for counts, whose increase() is extrapolated to fractions."""

    def render(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        """The panel's JSON at a grid position."""
        defaults: dict[str, Any] = {
            "unit": self.unit,
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": c, "value": v} for v, c in self.steps],
            },
            "color": {
                "mode": "thresholds" if self.kind in ("stat", "bargauge") else "palette-classic"
            },
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.links:
            defaults["links"] = [{"title": t, "url": u} for t, u in self.links]
        if self.mappings:
            defaults["mappings"] = [
                {
                    "type": "value",
                    "options": {v: {"text": t, "color": c, "index": i}},
                }
                for i, (v, t, c) in enumerate(self.mappings)
            ]
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self.options,
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DATASOURCE,
                    "expr": q.expr,
                    "legendFormat": q.legend or "__auto",
                    "instant": q.instant,
                    "range": not q.instant,
                    **({"format": "table"} if self.kind == "table" else {}),
                    **({"format": "heatmap"} if q.heatmap else {}),
                }
                for i, q in enumerate(self.queries)
            ],
        }
        if self.runbook:
            panel["links"] = [
                {"title": f"Runbook: {self.runbook}", "url": f"{RUNBOOKS}#{self.runbook.lower()}"}
            ]
        return panel


@dataclass(frozen=True)
class Row:
    """A collapsible-free section title; panels after it flow left to right, 24 columns wide."""

    title: str


@dataclass(frozen=True)
class Variable:
    """A query template variable over a label of the exporter's series."""

    name: str
    label: str
    query: str
    multi: bool = False

    def render(self) -> dict[str, Any]:
        """The variable's JSON; multi-value ones include All (a regex over every value)."""
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": self.query, "refId": self.name},
            "definition": self.query,
            "refresh": 2,
            "sort": 1,
            "multi": self.multi,
            "includeAll": self.multi,
            **(
                {"allValue": ".+", "current": {"text": "All", "value": "$__all"}}
                if self.multi
                else {}
            ),
        }


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: identity, variables and a flow of rows and panels."""

    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    items: tuple[Row | Panel, ...]
    time_from: str = "now-6h"

    def panels(self) -> list[Panel]:
        """The panels, in order (rows left out)."""
        return [p for p in self.items if isinstance(p, Panel)]

    def render(self) -> dict[str, Any]:
        """The dashboard JSON model, laid out on Grafana's 24-column grid."""
        out: list[dict[str, Any]] = []
        x = y = row_height = 0
        for item in self.items:
            panel_id = len(out) + 1
            if isinstance(item, Row):
                y += row_height
                x = row_height = 0
                out.append(
                    {
                        "id": panel_id,
                        "type": "row",
                        "title": item.title,
                        "collapsed": False,
                        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                        "panels": [],
                    }
                )
                y += 1
                continue
            if x + item.width > 24:
                y += row_height
                x = row_height = 0
            out.append(item.render(panel_id, x, y))
            x += item.width
            row_height = max(row_height, item.height)
        datasource = {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": [TAG, "batch"],
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "1m",
            "time": {"from": self.time_from, "to": "now"},
            "timezone": "",
            "links": [
                {
                    "type": "dashboards",
                    "tags": [TAG],
                    "title": "kube-batch-exporter",
                    "asDropdown": True,
                    "keepTime": True,
                    "includeVars": False,
                },
                {"type": "link", "title": "Runbooks", "url": RUNBOOKS, "targetBlank": True},
            ],
            "templating": {"list": [datasource, *(v.render() for v in self.variables)]},
            "annotations": {"list": []},
            "panels": out,
        }
