"""The bundled rules: promtool-clean, unit-tested, complete, and the PrometheusRule current."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.docs import DOCS, code_spans, section, table_rows

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(str(p) for p in ALERTS.glob("*.yaml"))
# alert name -> severity, from the public contract (docs/contract.md §8)
CONTRACT = {
    code_spans(cells[0])[0]: cells[1] for cells in table_rows(section(DOCS / "contract.md", 8))
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    reason = "promtool not found (Debian package 'prometheus'; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def alert_rules() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(Path(path).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", *RULE_FILES], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fire_stay_quiet_and_resolve() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", "tests/alerts.test.yaml"],
        cwd=ALERTS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (ALERTS / "tests/alerts.test.yaml").read_text()))
    assert tested == set(CONTRACT)


def test_every_contract_alert_is_bundled_with_its_annotations() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == set(CONTRACT)
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\w+)$", runbooks, re.MULTILINE)}
    for rule in rules:
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(notes, dict)
        assert labels["severity"] == CONTRACT[str(rule["alert"])]
        assert {"summary", "description", "runbook_url"} <= notes.keys()
        anchor = str(notes["runbook_url"]).rsplit("#", 1)[1]
        assert anchor == str(rule["alert"]).lower() and anchor in anchors
        for part in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**"):
            block = runbooks.split(f"## {rule['alert']}\n", 1)[1].split("\n## ", 1)[0]
            assert part in block, (rule["alert"], part)


def test_prometheusrule_is_generated_from_the_rule_files() -> None:
    result = subprocess.run(
        [sys.executable, str(ALERTS / "render.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_counter_is_read_through_increase_or_rate() -> None:
    # pint's counter check, in short: counters are born at 0 (contract §10), so no rule needs
    # to read one directly, with offset tricks, to see a new series' first count.
    for path in RULE_FILES:
        for group in yaml.safe_load(Path(path).read_text())["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"]
                assert " offset " not in expr, rule
                for m in re.finditer(r"\b\w+_(?:total|bucket|count|sum)\b", expr):
                    before = expr[: m.start()].rstrip()
                    assert before.endswith(("increase(", "rate(")), (rule.get("alert"), m[0])
