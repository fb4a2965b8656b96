"""`make demo`, headless: everything comes up, runs are counted, an alert fires in
Alertmanager, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.controlplane import free_port
from tests.cluster.monitoring import ROOT
from tests.e2e.conftest import alive, eventually

pytestmark = pytest.mark.timeout(600)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_demo_shows_runs_and_alerts_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT")}
    env = {
        **os.environ,
        "KBE_DEMO_DIR": str(tmp_path / "demo"),
        **{f"KBE_DEMO_{k}": str(v) for k, v in ports.items()},
    }
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "demo.run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    exporter = f"http://127.0.0.1:{ports['PORT']}"
    alertmanager = f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}"
    try:

        def up(url: str) -> bool:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            try:
                get(url)
                return True
            except OSError:
                return False

        eventually(
            lambda: up(exporter + "/readyz") and up(alertmanager + "/-/ready"),
            180,
            "the demo stack",
        )

        def total(name: str, **labels: str) -> float:
            return sum(
                s.value
                for f in text_string_to_metric_families(get(exporter + "/metrics"))
                for s in f.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            )

        eventually(
            lambda: total("kube_batch_runs_total", owner_kind="CronJob") >= 1,
            180,
            "a CronJob run counted",
        )

        def firing() -> list[str]:
            alerts = json.loads(get(alertmanager + "/api/v2/alerts"))
            return [a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"]

        eventually(lambda: bool(firing()), 240, "an alert firing in Alertmanager")
        print("firing in the demo:", sorted(set(firing())))
        flaky = {"owner_name": "flaky-etl"}
        eventually(
            lambda: total("kube_batch_runs_total", result="succeeded", **flaky) >= 1,
            180,
            "the flaky ETL succeeding on its retry",
        )
        assert total("kube_batch_runs_total", result="failed", **flaky) == 0
        assert total("kube_batch_pod_failures_total", reason="Error", **flaky) >= 1
    finally:
        pid_file = tmp_path / "demo" / "pids"
        started = [
            int(line.split()[0])
            for line in (pid_file.read_text() if pid_file.exists() else "").splitlines()
            if line
        ]
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = demo.wait(timeout=60)
        log.close()
    assert code == 0
    assert len(started) == 7  # etcd, apiserver, controller-manager, kwok, exporter, AM, Prom
    assert [pid for pid in started if alive(pid)] == []
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []
