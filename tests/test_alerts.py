"""The bundled rules: promtool-clean, unit-tested, complete, and the PrometheusRule current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cluster.controlplane import tool
from tests.cluster.monitoring import debian
from tests.docs import DOCS, code_spans, section, table_rows

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(str(p) for p in ALERTS.glob("*.yaml"))
UNIT_TESTS = ALERTS / "tests/alerts.test.yaml"
# alert name -> severity, from the public contract (docs/contract.md §8)
CONTRACT = {
    code_spans(cells[0])[0]: cells[1] for cells in table_rows(section(DOCS / "contract.md", 8))
}


PROMTOOLS = ("3.x", "2.42")
"""Prometheus 3 (built from its Go module, what users run) and Debian's 2.42, the floor."""


def promtool(release: str = "3.x") -> str:
    if release == "3.x":
        return str(tool("prometheus") / "promtool")
    return str(Path(debian("prometheus")).parent / "promtool")


def alert_rules() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(Path(path).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize("release", PROMTOOLS)
def test_promtool_check_rules(release: str) -> None:
    lint = ["--lint=all"] if release == "3.x" else []
    result = subprocess.run(
        [promtool(release), "check", "rules", *lint, *RULE_FILES], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("release", PROMTOOLS)
def test_promtool_unit_tests_fire_stay_quiet_and_resolve(release: str) -> None:
    result = subprocess.run(
        [promtool(release), "test", "rules", "tests/alerts.test.yaml", "tests/startup.test.yaml"],
        cwd=ALERTS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(UNIT_TESTS.read_text())
    assert {t["interval"] for t in tests["tests"]} == {"1m"} == {tests["evaluation_interval"]}
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    assert tested == set(CONTRACT)


def firing_every_minute(promtool: str, work: Path) -> set[tuple[str, str, str, str]]:
    """(test, alert, minute, labels) of every alert firing at every minute of every test.

    The unit tests rewritten to expect nothing at every minute: promtool then reports, as a
    failure, each alert that fires, with its labels.
    """
    doc = yaml.safe_load(UNIT_TESTS.read_text())
    for test in doc["tests"]:
        checks = test.get("alert_rule_test", [])
        end = max((minutes(c["eval_time"]) for c in checks), default=0) + 3
        names = sorted({c["alertname"] for c in checks})
        test["alert_rule_test"] = [
            {"eval_time": f"{m}m", "alertname": n, "exp_alerts": []}
            for m in range(end + 1)
            for n in names
        ]
        test.pop("promql_expr_test", None)
    doc["rule_files"] = [str(UNIT_TESTS.parent / f) for f in doc["rule_files"]]
    (work / "every-minute.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [promtool, "test", "rules", "every-minute.yaml"], cwd=work, capture_output=True, text=True
    )
    out = result.stdout + result.stderr
    firing = set()
    for block in re.split(r"\n\s*name: ", out)[1:]:
        where = re.search(r"alertname: (\w+), time: (\w+)", block)
        assert where, block
        test = block.split(",\n", 1)[0].strip()
        for labels in re.findall(r"Labels:\{([^}]*)\}", block.split("got:", 1)[1]):
            firing.add((test, where[1], where[2], labels))
    return firing


def minutes(text: str) -> int:
    hours, mins = re.fullmatch(r"(?:(\d+)h)?(\d+)m", text).groups()  # type: ignore[union-attr]
    return int(hours or 0) * 60 + int(mins)


def test_prometheus_2_and_3_differ_only_one_evaluation_at_window_edges(tmp_path: Path) -> None:
    """Every alert at every minute of the unit tests, under both releases.

    Prometheus 3's range selectors are left-open and its lookback excludes its start, so an
    alert whose last input sample is exactly one window old resolves one evaluation earlier.
    These four are all that differ; the unit tests check neither minute.
    """
    three = firing_every_minute(promtool("3.x"), tmp_path)
    two = firing_every_minute(promtool("2.42"), tmp_path)
    assert not three - two, sorted(three - two)
    only_two = {(alert, minute) for _, alert, minute, _ in two - three}
    assert only_two == {
        ("BatchJobRetrying", "30m"),
        ("BatchJobTooLong", "17m"),
        ("CronJobMissedSchedule", "17m"),
        ("KubeBatchExporterWatchFailing", "27m"),
    }, sorted(two - three)
    assert len(three) > 1000  # the rewrite worked: most minutes fire something


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
