"""The shipped Alertmanager practice: valid, routed by severity, and muting what it should.

deploy/alertmanager/alertmanager.yaml is checked by amtool (the current release, and Debian's
0.25 as the floor), its routes by ``amtool config routes test``, the kube-prometheus-stack
values against it, and its inhibit rules on a live Alertmanager fed alerts through its API.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import tool
from tests.cluster.monitoring import ALERTMANAGER_CONFIG, ROOT, Alertmanager, debian

KPS_VALUES = ROOT / "deploy/prometheus-operator/kube-prometheus-stack-values.yaml"


def amtools() -> list[str]:
    return [
        str(tool("alertmanager") / "amtool"),
        str(Path(debian("prometheus-alertmanager")).parent / "amtool"),
    ]


def kps_config(tmp_path: Path) -> Path:
    path = tmp_path / "kps.yaml"
    path.write_text(
        yaml.safe_dump(yaml.safe_load(KPS_VALUES.read_text())["alertmanager"]["config"])
    )
    return path


@pytest.mark.parametrize("release", ["current", "Debian"])
def test_amtool_accepts_the_example_and_the_kube_prometheus_stack_values(
    tmp_path: Path, release: str
) -> None:
    amtool = amtools()[release == "Debian"]
    for config in (ALERTMANAGER_CONFIG, kps_config(tmp_path)):
        result = subprocess.run(
            [amtool, "check-config", str(config)], capture_output=True, text=True
        )
        assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=CronJobNotSucceeding", "severity=critical"], "batch-pager"),
        (["alertname=KubeBatchExporterDown", "severity=critical"], "batch-pager"),
        (["alertname=CronJobFailing", "severity=warning"], "batch-tickets"),
        (["alertname=CronJobSuspendedTooLong", "severity=info"], "batch-reports"),
        (["alertname=KubeBatchExporterDownInhibitor", "severity=none"], "null"),
    ],
)
def test_each_severity_reaches_its_receiver(
    tmp_path: Path, labels: list[str], receiver: str
) -> None:
    amtool = amtools()[0]
    for config in (ALERTMANAGER_CONFIG, kps_config(tmp_path)):
        result = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
        )
        assert result.stdout.strip() == receiver, (config, result.stdout + result.stderr)


def test_the_kube_prometheus_stack_values_carry_the_same_practice() -> None:
    plain = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    kps = yaml.safe_load(KPS_VALUES.read_text())["alertmanager"]["config"]
    (batch,) = [r for r in kps["route"]["routes"] if r["receiver"] == plain["route"]["receiver"]]
    assert batch["group_by"] == plain["route"]["group_by"] == ["alertname", "namespace", "cronjob"]
    assert batch["routes"] == plain["route"]["routes"]
    assert all(rule in kps["inhibit_rules"] for rule in plain["inhibit_rules"])
    assert [r for r in kps["receivers"] if r["name"] != "null"] == [
        r for r in plain["receivers"] if r["name"] != "null"
    ]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path, None)
    am.start()
    try:
        yield am
    finally:
        am.stop()


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, **labels}}


def states(am: Alertmanager, alerts: list[dict[str, Any]]) -> dict[str, str]:
    """Post the alerts, then each one's state ("active" or "suppressed") by its labels."""
    body = json.dumps(alerts).encode()
    request = urllib.request.Request(
        am.url + "/api/v2/alerts", body, {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).close()
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(am.url + "/api/v2/alerts", timeout=5) as resp:
            seen = {
                ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k != "severity"): a[
                    "status"
                ]["state"]
                for a in json.load(resp)
            }
        if len(seen) == len(alerts) and "unprocessed" not in seen.values():
            return seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_the_inhibit_rules_mute_what_the_outage_or_the_page_makes_redundant(
    alertmanager: Alertmanager,
) -> None:
    got = states(
        alertmanager,
        [
            alert("KubeBatchExporterDownInhibitor", "none"),
            alert("KubeBatchExporterDown", "critical"),
            alert("CronJobFailing", "warning", namespace="ops", cronjob="backup"),
            alert("BatchJobFailed", "warning", namespace="data", owner_name="etl"),
            alert("KubeBatchExporterWatchFailing", "warning", resource="jobs"),
        ],
    )
    assert got == {
        "alertname=KubeBatchExporterDownInhibitor": "active",
        "alertname=KubeBatchExporterDown": "active",  # the page itself is never muted
        "alertname=CronJobFailing,cronjob=backup,namespace=ops": "suppressed",
        "alertname=BatchJobFailed,namespace=data,owner_name=etl": "suppressed",
        "alertname=KubeBatchExporterWatchFailing,resource=jobs": "active",
    }


def test_a_critical_cronjob_page_mutes_only_its_own_warnings(alertmanager: Alertmanager) -> None:
    got = states(
        alertmanager,
        [
            alert("CronJobNotSucceeding", "critical", namespace="ops", cronjob="backup"),
            alert("CronJobFailing", "warning", namespace="ops", cronjob="backup"),
            alert("CronJobMissedSchedule", "warning", namespace="ops", cronjob="backup"),
            alert("CronJobFailing", "warning", namespace="ops", cronjob="report"),
        ],
    )
    assert got == {
        "alertname=CronJobNotSucceeding,cronjob=backup,namespace=ops": "active",
        "alertname=CronJobFailing,cronjob=backup,namespace=ops": "suppressed",
        "alertname=CronJobMissedSchedule,cronjob=backup,namespace=ops": "suppressed",
        "alertname=CronJobFailing,cronjob=report,namespace=ops": "active",
    }
