"""``make demo``: the whole stack on one machine, in the foreground.

A local control plane with sample workloads, the exporter, Prometheus with the bundled rules
and Alertmanager.

Ctrl-C (or ``make demo-stop`` from another shell) stops everything it started: every process
is recorded in ``.demo/pids``. Ports can be changed with ``KBE_DEMO_PORT`` (exporter, 9847),
``KBE_DEMO_PROMETHEUS_PORT`` (9090) and ``KBE_DEMO_ALERTMANAGER_PORT`` (9093).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from demo.workloads import WORKLOADS
from tests.cluster.controlplane import LocalCluster, build, log, stop_recorded, wait_until
from tests.cluster.monitoring import Alertmanager, Prometheus, debian

STATE = Path(os.environ.get("KBE_DEMO_DIR", ".demo")).resolve()
PORT = int(os.environ.get("KBE_DEMO_PORT", "9847"))
PROMETHEUS_PORT = int(os.environ.get("KBE_DEMO_PROMETHEUS_PORT", "9090"))
ALERTMANAGER_PORT = int(os.environ.get("KBE_DEMO_ALERTMANAGER_PORT", "9093"))


def record(pid: int, name: str) -> None:
    """Note a started process so that Ctrl-C and `make demo-stop` stop it."""
    with open(STATE / "pids", "a") as pids:
        pids.write(f"{pid} {name}\n")


def exporter_ready(url: str) -> bool:
    """The exporter's /readyz answers 200."""
    import urllib.request

    with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
        return resp.status == 200


PARTS = ("etcd", "pki", "logs", "admin.kubeconfig", "pids", "prometheus", "alertmanager")
"""What a demo leaves in its directory; only these are removed by the next one."""


def start_clean() -> None:
    """Stop a previous demo that is still running and remove what it left.

    Its etcd data would otherwise hold the old cluster (creating the kwok nodes again failed
    with 409 Conflict) and Prometheus the old series.
    """
    stop_recorded(STATE)
    left = [STATE / part for part in PARTS if (STATE / part).exists()]
    for path in left:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    if left:
        log(f"starting clean: removed the previous demo's cluster and monitoring data in {STATE}")


def alerts_page(prometheus: str) -> str:
    """Prometheus' alerts page where this build serves it.

    Debian's package has only the classic UI, under ``/classic/``; upstream builds serve the
    new UI at ``/alerts``.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(prometheus + "/alerts", timeout=5):
            return prometheus + "/alerts"
    except urllib.error.HTTPError:
        return prometheus + "/classic/alerts"


def main() -> int:
    """Start everything, print the URLs, stop everything on Ctrl-C or when a part ends."""
    try:
        parts = start()
    except KeyboardInterrupt:  # Ctrl-C before everything was up: no traceback, no leftovers
        log("interrupted while starting: stopping what was started")
        stop_recorded(STATE)
        return 130
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in parts):
        time.sleep(0.5)
    log("stopping the demo")
    stop_recorded(STATE)
    return 0


def start() -> list[subprocess.Popen[bytes]]:
    """Start the cluster, the workloads, the exporter, Alertmanager and Prometheus."""
    start_clean()
    log("building the control plane if needed (first time: about 12 minutes)")
    cluster = LocalCluster(STATE, build())
    cluster.start()
    for body in WORKLOADS:
        kind = "cronjobs" if body["kind"] == "CronJob" else "jobs"
        cluster.api("POST", f"/apis/batch/v1/namespaces/default/{kind}", body)
    log(f"created {len(WORKLOADS)} sample workloads in namespace default")
    url = f"http://127.0.0.1:{PORT}"
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--listen",
            f"127.0.0.1:{PORT}",
            # three of the demo Prometheus' 5 s scrapes: first runs show within seconds
            "--new-series-delay",
            "15s",
        ],
        start_new_session=True,
    )
    record(exporter.pid, "exporter")
    wait_until("exporter", lambda: exporter_ready(url), 60, [exporter], STATE / "logs")
    # Debian's Prometheus and Alertmanager: the tests run Prometheus 3, but its web UI needs
    # an npm build that the Go module does not ship (README, "Two commands")
    alertmanager = Alertmanager(
        STATE, None, ALERTMANAGER_PORT, program=debian("prometheus-alertmanager")
    )
    alertmanager.start()
    assert alertmanager.proc is not None
    record(alertmanager.proc.pid, "alertmanager")
    prometheus = Prometheus(
        STATE, url, alertmanager.url, "5s", PROMETHEUS_PORT, program=debian("prometheus")
    )
    prometheus.start()
    assert prometheus.proc is not None
    record(prometheus.proc.pid, "prometheus")
    # Debian's Alertmanager has no web application (its page says so): its CLI instead
    amtool = shutil.which("amtool") or "amtool"
    print(
        f"""
kube-batch-exporter demo is running
  status:        {url}/   (what fails and why, per CronJob and Job family)
  metrics:       {url}/metrics
  alert rules:   {alerts_page(prometheus.url)}
  alerts:        {amtool} --alertmanager.url={alertmanager.url} alert query
                 (first alerts after 1-3 minutes)
  kubeconfig:    {cluster.kubeconfig}   (kubectl: {cluster.bin / "kubectl"})
Stop with Ctrl-C, or `make demo-stop` from another shell.
""",
        flush=True,
    )
    return [exporter, alertmanager.proc, prometheus.proc]


if __name__ == "__main__":
    sys.exit(main())
