"""Lint of the generated Grafana dashboards (grafana/), and that the committed JSON is current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.build import RUNBOOKS
from grafana.dashboards import DASHBOARDS
from grafana.generate import CONFIGMAP, OUT
from grafana.querying import expand

ROOT = Path(__file__).resolve().parents[1]
MODELS = {path.name: json.loads(path.read_text()) for path in sorted(OUT.glob("*.json"))}


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_committed_files_are_what_the_code_generates() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "grafana.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert set(MODELS) == {"overview.json", "cronjob.json", "exporter.json"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_panel_has_a_unit_thresholds_and_the_datasource_variable(name: str) -> None:
    model = MODELS[name]
    assert "__inputs" not in model
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(model):
        where = f"{name}: {panel['title']}"
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], where
        assert defaults["thresholds"]["steps"][0]["value"] is None, where
        assert panel["description"], where
        assert panel["datasource"]["uid"] == "${datasource}", where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", where
            assert target["expr"].count("(") == target["expr"].count(")"), where


@pytest.mark.parametrize("name", sorted(MODELS))
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in MODELS[name]["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_ids_and_uids_are_unique_and_stable() -> None:
    uids = [m["uid"] for m in MODELS.values()]
    assert sorted(uids) == ["kbe-cronjob", "kbe-exporter", "kbe-overview"]
    for name, model in MODELS.items():
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), name
        titles = [p["title"] for p in panels(model)]
        assert len(titles) == len(set(titles)), f"{name}: two panels with one title"
        assert "kube-batch-exporter" in model["tags"], name


def test_links_go_to_existing_runbooks_and_dashboards() -> None:
    headings = {
        line[3:].strip().lower()
        for line in (ROOT / "docs/runbooks.md").read_text().splitlines()
        if line.startswith("## ")
    }
    alert_base = re.search(r"runbook_url: (\S+)#", (ROOT / "alerts/cronjobs.yaml").read_text())
    assert alert_base and alert_base.group(1) == RUNBOOKS
    uids = {m["uid"] for m in MODELS.values()}
    runbook_links = 0
    for model in MODELS.values():
        for panel in panels(model):
            for link in panel.get("links", []):
                assert link["url"].startswith(RUNBOOKS + "#")
                assert link["url"].rsplit("#", 1)[1] in headings, link
                runbook_links += 1
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                assert re.match(r"/d/([\w-]+)/", link["url"]).group(1) in uids  # type: ignore[union-attr]
                assert "${datasource:queryparam}" in link["url"]
        assert any(link["type"] == "dashboards" for link in model["links"])
    assert runbook_links >= 10


def test_the_configmap_provisions_the_same_json() -> None:
    configmap = yaml.safe_load(CONFIGMAP.read_text())
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert {k: json.loads(v) for k, v in configmap["data"].items()} == MODELS


def test_every_variable_used_is_defined() -> None:
    for dashboard in DASHBOARDS:
        names = {"datasource", *(v.name for v in dashboard.variables)}
        for panel in dashboard.panels():
            for query in panel.queries:
                expanded = expand(query.expr, dict.fromkeys(names, "x"), 60, 15)
                assert "$" not in expanded, (dashboard.uid, panel.title, expanded)


def test_every_rate_spans_grafanas_rate_interval() -> None:
    # a fixed [5m] is too short at a 2m scrape interval and blurs a zoomed-in view
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels():
            for query in panel.queries:
                for window in re.findall(r"\brate\([^[]*\[([^\]]+)\]", query.expr):
                    assert window == "$__rate_interval", (panel.title, query.expr)
