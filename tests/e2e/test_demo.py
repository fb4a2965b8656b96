"""`make demo`, headless: everything comes up, runs are counted, an alert fires in
Alertmanager, every printed link opens in a real browser (headless Chromium) and the status
page shows what fails, Ctrl-C leaves no process behind, and a second `make demo` starts
clean."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.workloads import WORKLOADS
from tests.cluster import browser
from tests.cluster.controlplane import free_port
from tests.cluster.monitoring import ROOT
from tests.e2e.conftest import alive, eventually

pytestmark = pytest.mark.timeout(600)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


class Demo:
    """``python -m demo.run`` in the background, as ``make demo`` runs it."""

    def __init__(self, tmp_path: Path, ports: dict[str, int], name: str) -> None:
        self.dir = tmp_path / "demo"
        env = {
            **os.environ,
            "KBE_DEMO_DIR": str(self.dir),
            **{f"KBE_DEMO_{k}": str(v) for k, v in ports.items()},
        }
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "demo.run"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.exporter = f"http://127.0.0.1:{ports['PORT']}"
        self.alertmanager = f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}"

    def up(self, url: str) -> bool:
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
        try:
            get(url)
            return True
        except OSError:
            return False

    def wait_up(self) -> None:
        """Until it prints its URLs, which it does once every part answers."""
        eventually(
            lambda: (
                self.up(self.exporter + "/readyz")
                and "demo is running" in self.log_path.read_text()
            ),
            180,
            "the demo stack",
        )

    def total(self, name: str, **labels: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(get(self.exporter + "/metrics"))
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def stop(self) -> None:
        """Ctrl-C; then nothing it started may be left running."""
        pid_file = self.dir / "pids"
        started = [
            int(line.split()[0])
            for line in (pid_file.read_text() if pid_file.exists() else "").splitlines()
            if line
        ]
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = self.proc.wait(timeout=60)
        self._log.close()
        assert code == 0, self.log_path.read_text()[-3000:]
        assert len(started) == 7  # etcd, apiserver, controller-manager, kwok, exporter, AM, Prom
        assert [pid for pid in started if alive(pid)] == []
        leftovers = subprocess.run(
            ["pgrep", "-f", str(self.dir)], capture_output=True, text=True
        ).stdout.split()
        assert leftovers == []


def rows(dom: str) -> dict[str, str]:
    """The status page's rows by owner link."""
    found = {}
    for row in dom.split("<tr>")[1:]:
        link = re.search(r'href="/owners/([^"]+)"', row)
        if link:
            found[link.group(1)] = row
    return found


def status_shows_what_fails(demo: Demo) -> bool:
    """In a real browser: ``report`` failing, ``nightly-backup`` healthy, runs drawn."""
    dom, _ = browser.render(demo.exporter + "/")
    shown = rows(dom)
    report = shown.get("default/CronJob/report", "")
    backup = shown.get("default/CronJob/nightly-backup", "")
    assert {"default/CronJob/hourly-sync", "default/Job/image-resize"} <= shown.keys(), shown
    return "failing" in report and "healthy" in backup and "<rect" in report


def report_says_what_fails(kubeconfig: str) -> None:
    """``kube-batch-exporter report`` against the demo cluster: the table, exit 1; the JSON."""
    command = [sys.executable, "-m", "exporter", "report", "--kubeconfig", kubeconfig]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    (report,) = [line for line in lines if " report " in line]
    (backup,) = [line for line in lines if " nightly-backup " in line]
    assert report.startswith("failing") and backup.startswith("healthy"), done.stdout
    assert lines[0].startswith("STATUS") and lines[-1].endswith("owners with problems")
    done = subprocess.run([*command, "--output", "json"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    owners = {o["name"]: o for o in json.loads(done.stdout)["owners"]}
    assert done.returncode == 1 and "failing" in owners["report"]["problems"]
    assert owners["report"]["recent"][0]["result"] == "failed"


def test_demo_shows_runs_and_alerts_stops_cleanly_and_runs_again(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT")}
    demo = Demo(tmp_path, ports, "first")
    try:
        demo.wait_up()
        eventually(
            lambda: demo.total("kube_batch_runs_total", owner_kind="CronJob") >= 1,
            180,
            "a CronJob run counted",
        )

        def firing() -> list[str]:
            alerts = json.loads(get(demo.alertmanager + "/api/v2/alerts"))
            return [a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"]

        eventually(lambda: bool(firing()), 240, "an alert firing in Alertmanager")
        print("firing in the demo:", sorted(set(firing())))
        flaky = {"owner_name": "flaky-etl"}
        eventually(
            lambda: demo.total("kube_batch_runs_total", result="succeeded", **flaky) >= 1,
            180,
            "the flaky ETL succeeding on its retry",
        )
        assert demo.total("kube_batch_runs_total", result="failed", **flaky) == 0
        assert demo.total("kube_batch_pod_failures_total", reason="Error", **flaky) >= 1
        printed = demo.log_path.read_text().split("demo is running", 1)[1]
        urls = re.findall(r"(http://127\.0\.0\.1:\d+/\S*)", printed)
        assert urls[0] == demo.exporter + "/", urls  # the status page first
        for url in urls:
            get(url)  # raises on 404
            dom, console = browser.render(url)
            assert "does not include a web application" not in dom, url
            assert "404 page not found" not in dom, url
            assert "Content Security Policy" not in console, (url, console[-2000:])
        eventually(lambda: status_shows_what_fails(demo), 180, "report failing on the page")
        (kubeconfig,) = re.findall(r"kubeconfig:\s+(\S+)", printed)
        report_says_what_fails(kubeconfig)
        alerts_dom, _ = browser.render(urls[2])
        assert "firing" in alerts_dom.lower() and "CronJobFailing" in alerts_dom
        (command,) = re.findall(r"(\S*amtool --alertmanager\.url=\S+ alert query)", printed)
        listed = subprocess.run(command.split(), capture_output=True, text=True, check=True)
        missing = [name for name in set(firing()) if name not in listed.stdout]
        assert not missing, listed.stdout  # the printed command shows what fires
    finally:
        demo.stop()

    # the same checkout again: the old cluster's data must not get in the way (it did: 409)
    again = Demo(tmp_path, ports, "second")
    try:
        again.wait_up()
        assert "starting clean" in again.log_path.read_text()
        cronjobs = {
            s.labels["cronjob"]
            for f in text_string_to_metric_families(get(again.exporter + "/metrics"))
            for s in f.samples
            if s.name == "kube_batch_cronjob_info"
        }
        assert {body["metadata"]["name"] for body in WORKLOADS if body["kind"] == "CronJob"} == (
            cronjobs
        )
    finally:
        again.stop()
