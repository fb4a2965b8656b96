"""High availability on the real control plane: two replicas, SIGKILL and SIGSTOP the leader.

Two exporter processes run with ``--leader-elect`` (the default lease 15 s, renew deadline
10 s, retry period 2 s) and one state ConfigMap, scraped both by a live Prometheus with the
shipped scrape job, while two CronJobs run every minute (one always fails). The leader is
killed with SIGKILL and started again, then the new leader is frozen with SIGSTOP and, once
the other has taken over, thawed with SIGCONT. Asserted:

- the Lease and the ``kube_batch_exporter_leader`` series never show two leaders, and every
  sample of a replica claiming leadership falls in a time the Lease named it;
- the thawed old leader serves no batch series from its first scrape on and stands by;
- every batch counter and histogram, as Prometheus saw it, never went down (``resets()``),
  and the counts equal the oracle of the Jobs and Pods the API showed;
- the takeover times and the longest gap of a batch series, printed for the record, stay
  within what the protocol allows.

Waiting for wall-clock instants is the scenario itself (how long a process stays frozen);
outcomes are awaited by polling. A second test shows, on the real API, that a deposed leader
cannot overwrite its successor's checkpoint.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from exporter.kube.connecting import connect
from exporter.persist.backends import ConfigMapBackend, StateError
from tests.cluster import objects
from tests.cluster.controlplane import free_port
from tests.cluster.kube import Kube
from tests.cluster.monitoring import Prometheus
from tests.e2e.conftest import (
    Cluster,
    Exporter,
    eventually,
    new_namespace,
    pod_template,
    wait_for_clock,
)
from tests.e2e.oracle import Recorder, agree, assert_no_reset, expected, stamp

pytestmark = pytest.mark.timeout(900)

LEASE, DEADLINE, RETRY, SCRAPE = 15.0, 10.0, 2.0, 2.0
"""The election's defaults (not set on the command line) and the test Prometheus' interval."""


class LeaseLog:
    """Every version of the Lease, with the time it was seen (the oracle of leadership)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.versions: list[tuple[float, dict[str, Any]]] = []
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._kube = kube
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self._kube.get(self._path)
                for item in listing["items"]:
                    self._seen(item)
                version = listing["metadata"]["resourceVersion"]
                for event in self._kube.watch(self._path, version, 30):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._seen(event["object"])
            except Exception:  # the watch ended or failed: list again
                self._stop.wait(0.2)

    def _seen(self, lease: dict[str, Any]) -> None:
        versions = [v["metadata"]["resourceVersion"] for _, v in self.versions]
        if lease["metadata"]["resourceVersion"] not in versions:
            self.versions.append((time.time(), lease))

    def holder_at(self, at: float) -> str:
        """Who the Lease named at ``at`` (as far as its watch had told by then)."""
        times = [t for t, _ in self.versions]
        i = bisect.bisect_right(times, at) - 1
        return str(self.versions[i][1]["spec"].get("holderIdentity") or "") if i >= 0 else ""

    def acquired_after(self, at: float, holder: str) -> float:
        """When ``holder`` took the Lease after ``at``, by its acquireTime."""
        for _, lease in self.versions:
            spec = lease["spec"]
            if spec.get("holderIdentity") == holder and stamp(spec["acquireTime"]) > at:
                return stamp(spec["acquireTime"])
        raise AssertionError(f"{holder} never took the Lease after {at}: {self.versions}")

    def close(self) -> None:
        self._stop.set()


def leader(exporter: Exporter) -> float | None:
    try:
        return exporter.own("kube_batch_exporter_leader")
    except OSError:
        return None


def create_workloads(c: Cluster, ns: str) -> None:
    base = f"/apis/batch/v1/namespaces/{ns}/cronjobs"
    fails = objects.cronjob(
        "fails", "* * * * *", pod_template(c, "1s", exit_code=1), {"backoffLimit": 0}
    )
    fails["metadata"]["annotations"] = {"kube-batch-exporter/max-consecutive-failures": "1"}
    c.kube.create(base, fails)
    c.kube.create(base, objects.cronjob("works", "* * * * *", pod_template(c, "3s")))


def runs_so_far(oracle: Recorder) -> int:
    return sum(expected(oracle)["runs"].values())


def test_two_replicas_fail_over_without_a_second_leader_a_reset_or_a_lost_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    ns = new_namespace(cluster, "failover")
    oracle, lease = Recorder(cluster.kube, ns), LeaseLog(cluster.kube, ns)
    ports = {"replica-a": free_port(), "replica-b": free_port()}
    urls = [f"http://127.0.0.1:{port}" for port in ports.values()]
    prometheus = Prometheus(tmp_path, urls, "http://127.0.0.1:1", interval=f"{SCRAPE:.0f}s")
    prometheus.start()
    args = ("--namespaces", ns, "--leader-elect", "--state-configmap", f"{ns}/kbe-state",
            "--state-interval", "2s")  # fmt: skip
    logs = iter(tmp_path / f"exporter-{i}.log" for i in range(1, 10))

    def replica(name: str) -> Exporter:
        return Exporter(cluster.kubeconfig, next(logs), *args, "--pod", name, port=ports[name])

    started = time.time()
    a = replica("replica-a")
    b: Exporter | None = None
    figures: dict[str, float] = {}
    try:
        create_workloads(cluster, ns)
        a.wait_ready()
        eventually(lambda: leader(a) == 1, 30, "replica-a leads")
        b = replica("replica-b")
        b.wait_ready()  # ready while standing by: its caches are warm
        assert leader(b) == 0
        assert b.samples("kube_batch_cronjob_info", ns) == []
        eventually(lambda: runs_so_far(oracle) >= 2, 150, "a first run of each CronJob")
        agree(a, ns, oracle, "before any fault")

        # 1. SIGKILL the leader; start it again, as a standby
        killed = time.time()
        a.kill()
        eventually(lambda: leader(b) == 1, LEASE + 3 * RETRY + 10, "replica-b takes over")
        figures["takeover after SIGKILL"] = lease.acquired_after(killed, "replica-b") - killed
        agree(b, ns, oracle, "after the SIGKILL takeover")
        a = replica("replica-a")
        a.wait_ready()
        assert leader(a) == 0
        before = runs_so_far(oracle)
        eventually(lambda: runs_so_far(oracle) > before, 90, "a run under the new leader")
        agree(b, ns, oracle, "a run after the SIGKILL takeover")

        # 2. SIGSTOP the leader (a hung process), SIGCONT it once the other has taken over
        stopped = time.time()
        os.kill(b.proc.pid, signal.SIGSTOP)
        eventually(lambda: leader(a) == 1, LEASE + 3 * RETRY + 10, "replica-a takes over")
        figures["takeover after SIGSTOP"] = lease.acquired_after(stopped, "replica-a") - stopped
        wait_for_clock(time.time() + 5)  # frozen a while longer
        os.kill(b.proc.pid, signal.SIGCONT)
        _, text = b.get("/metrics")  # its first answer after the thaw
        assert "kube_batch_exporter_leader 0.0" in text
        assert "kube_batch_runs_total" not in text
        eventually(lambda: "no longer leading" in b.log.read_text(), 30, "replica-b stands by")
        assert leader(b) == 0
        _, page = b.get("/")  # its status page sends people to the leader
        assert "stands by" in page and "pod <code>replica-a</code>" in page
        agree(a, ns, oracle, "after the SIGSTOP takeover")
        before = runs_so_far(oracle)
        eventually(lambda: runs_so_far(oracle) > before, 90, "a run after the thaw")
        agree(a, ns, oracle, "a run after the thaw")
        assert leader(b) == 0

        # the end: every run finished and counted once
        for name in ("fails", "works"):
            cluster.kube.patch(
                f"/apis/batch/v1/namespaces/{ns}/cronjobs/{name}", {"spec": {"suspend": True}}
            )
        eventually(lambda: oracle.active() == 0, 60, "every run finished")
        agree(a, ns, oracle, "at the end")
        end = time.time()
        wait_for_clock(end + 2 * SCRAPE)  # the last scrape is in
        assert_no_reset(prometheus, started, end, minimum=20)
        figures |= assert_one_leader_at_a_time(prometheus, lease, ports, started, end)
        figures |= gaps(prometheus, ns, started, end, killed, stopped)
    finally:
        print(f"failover figures (s): { {k: round(v, 1) for k, v in figures.items()} }")
        oracle.close()
        lease.close()
        for exporter in (b, a):  # the standby first, or it would take the Lease given back
            if exporter is not None and exporter.proc.poll() is None:
                os.kill(exporter.proc.pid, signal.SIGCONT)
                assert exporter.stop() == 0, exporter.log.read_text()[-3000:]
        prometheus.stop()
    # the protocol's bounds: a standby waits one lease duration after the last renewal it saw
    # (which it sees up to one retry period late); batch series resume at the next scrape
    for fault in ("SIGKILL", "SIGSTOP"):
        assert LEASE - RETRY <= figures[f"takeover after {fault}"] <= LEASE + 2 * RETRY + 1
    assert figures["longest gap"] <= LEASE + 2 * RETRY + 2 * SCRAPE + 1, figures
    spec = lease.versions[-1][1]["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("", 2)  # given back at stop


def assert_one_leader_at_a_time(
    prometheus: Prometheus, lease: LeaseLog, ports: dict[str, int], start: float, end: float
) -> dict[str, float]:
    """No scrape interval with two leaders, and each claim within a time the Lease agreed."""
    total = prometheus.query_range('sum(kube_batch_exporter_leader{job="kube-batch-exporter"})',
                                   start, end, 1)  # fmt: skip
    assert total and max(float(v) for _, v in total[0]["values"]) == 1
    identity = {f"127.0.0.1:{port}": name for name, port in ports.items()}
    window = f"{int(end - start) + 60}s"
    claims = prometheus.query(f"kube_batch_exporter_leader[{window}]", at=end)
    checked = 0
    for series in claims:
        name = identity[series["metric"]["instance"]]
        for t, v in series["values"]:
            if float(v) == 1:
                checked += 1
                assert lease.holder_at(float(t) + 0.5) == name, (name, t)
    assert checked > 50
    return {"leader samples checked against the Lease": checked}


def gaps(
    prometheus: Prometheus, ns: str, start: float, end: float, killed: float, stopped: float
) -> dict[str, float]:
    """The longest pause between samples of a batch series, and how long each fault hid it."""
    window = f"{int(end - start) + 60}s"
    raw = prometheus.query(f'kube_batch_cronjob_info{{namespace="{ns}",cronjob="works"}}[{window}]',
                           at=end)  # fmt: skip
    assert len(raw) == 1, raw  # one series, whichever replica exported it
    times = [float(t) for t, _ in raw[0]["values"]]
    assert raw[0]["metric"]["instance"] == "kube-batch-exporter"
    return {
        "longest gap": max(b - a for a, b in itertools.pairwise(times)),
        "SIGKILL to the next sample": next(t for t in times if t > killed) - killed,
        "SIGSTOP to the next sample": next(t for t in times if t > stopped) - stopped,
    }


def test_a_deposed_leader_cannot_overwrite_its_successors_checkpoint(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "fencing")

    async def scenario() -> None:
        conn = await connect(str(cluster.kubeconfig), None)
        async with conn.session() as session:
            leads = {"old": True}
            old = ConfigMapBackend(ns, "kbe-state", session, conn, allowed=lambda: leads["old"])
            new = ConfigMapBackend(ns, "kbe-state", session, conn)
            assert await old.read() is None
            await old.write(b"old leader, term 1")
            assert await new.read() == b"old leader, term 1"  # the takeover's restore
            await new.write(b"new leader, term 2")
            with pytest.raises(StateError, match="another replica wrote kbe-state"):
                await old.write(b"old leader, woken up")  # its version is stale: 409
            leads["old"] = False
            with pytest.raises(StateError, match="no longer leads"):
                await old.write(b"old leader, deposed")  # refused before any request
            assert await new.read() == b"new leader, term 2"
            await new.write(b"new leader, again")  # its own version moves on with it
            assert await ConfigMapBackend(ns, "kbe-state", session, conn).read() == (
                b"new leader, again"
            )

    asyncio.run(scenario())
