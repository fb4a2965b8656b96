"""``make demo``: a local control plane, sample workloads and the exporter, in the foreground.

Ctrl-C (or ``make demo-stop`` from another shell) stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from demo.workloads import WORKLOADS
from tests.cluster.controlplane import LocalCluster, build, log, stop_recorded

STATE = Path(os.environ.get("KBE_DEMO_DIR", ".demo")).resolve()
PORT = int(os.environ.get("KBE_DEMO_PORT", "9847"))


def main() -> int:
    """Start everything, print the URLs, stop everything on Ctrl-C or when the exporter ends."""
    stop_recorded(STATE)  # a previous demo that was not stopped
    log("building the control plane if needed (first time: about 12 minutes)")
    cluster = LocalCluster(STATE, build())
    cluster.start()
    for body in WORKLOADS:
        kind = "cronjobs" if body["kind"] == "CronJob" else "jobs"
        cluster.api("POST", f"/apis/batch/v1/namespaces/default/{kind}", body)
    log(f"created {len(WORKLOADS)} sample workloads in namespace default")
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--listen",
            f"127.0.0.1:{PORT}",
        ],
        start_new_session=True,
    )
    with open(STATE / "pids", "a") as pids:
        pids.write(f"{exporter.pid} exporter\n")
    print(
        f"""
kube-batch-exporter demo is running
  metrics:    http://127.0.0.1:{PORT}/metrics
  status:     http://127.0.0.1:{PORT}/
  kubeconfig: {cluster.kubeconfig}   (kubectl: {cluster.bin / "kubectl"})
Stop with Ctrl-C, or `make demo-stop` from another shell.
""",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and exporter.poll() is None:
        time.sleep(0.5)
    log("stopping the demo")
    stop_recorded(STATE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
