"""Continuity on the real control plane (contract §10): SIGKILL at three moments, exact counts.

One scenario on a control plane of its own (its controller-manager is stopped on purpose):
four CronJobs every minute (one always failing, one succeeding, one with
``ttlSecondsAfterFinished: 0``, one Forbid whose runs outlast a slot) while the exporter,
keeping its checkpoint in a file, is killed with SIGKILL three times:

1. **mid-run**: a Forbid run is active while the others come and go;
2. **mid-list at start-up**: the next exporter is killed while it pages through a LIST of a
   hundred Jobs, before it ever wrote a checkpoint;
3. **during a kube-controller-manager outage**, and started again while the controller is
   still down.

The oracle is every Job and Pod the test saw through its own watches. After each restart and
at the end (CronJobs suspended, every run finished, every slot decided) the exporter's
counts equal the oracle's, and a live Prometheus that scraped each exporter in turn sees no
counter reset and ``CronJobFailing`` firing without a gap from the first failure on.

Waiting for wall-clock instants is the scenario itself (how long a process stays dead, how
long an outage lasts); outcomes are awaited by polling.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.kube.connecting import connect
from exporter.persist.backends import ConfigMapBackend, StateError
from tests.cluster import objects
from tests.cluster.controlplane import LocalCluster, free_port
from tests.cluster.monitoring import Prometheus
from tests.e2e.conftest import (
    Cluster,
    Exporter,
    eventually,
    new_namespace,
    pod_template,
    private_cluster,
    wait_for_clock,
)
from tests.e2e.oracle import Recorder, agree, assert_no_reset, expected, next_minute, stamp

pytestmark = pytest.mark.timeout(900)

ANNOTATIONS = {"kube-batch-exporter/missed-grace": "10s"}
CRONJOBS = ("fails", "works", "ttl0", "forbid")


@pytest.fixture(scope="module")
def own_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster
) -> Iterator[tuple[LocalCluster, Cluster]]:
    with private_cluster(tmp_path_factory, cluster, "continuity") as both:
        yield both


def create_workloads(c: Cluster, ns: str) -> None:
    base = f"/apis/batch/v1/namespaces/{ns}/cronjobs"

    def cron(name: str, template: dict[str, Any], job: dict[str, Any], **spec: Any) -> None:
        body = objects.cronjob(name, "* * * * *", template, job, **spec)
        body["metadata"]["annotations"] = dict(ANNOTATIONS)
        if name == "fails":
            body["metadata"]["annotations"]["kube-batch-exporter/max-consecutive-failures"] = "1"
        c.kube.create(base, body)

    cron("fails", pod_template(c, "1s", exit_code=1), {"backoffLimit": 0}, failedJobsHistoryLimit=1)
    cron("works", pod_template(c, "1s"), {}, successfulJobsHistoryLimit=1)
    cron("ttl0", pod_template(c, "2s"), {"ttlSecondsAfterFinished": 0})
    cron("forbid", pod_template(c, "75s"), {}, concurrencyPolicy="Forbid")
    for i in range(120):  # pages for the mid-list kill: suspended Jobs never run
        body = objects.job(f"filler-{i}", pod_template(c, "1s"), suspend=True)
        c.kube.create(f"/apis/batch/v1/namespaces/{ns}/jobs", body)


def test_sigkill_at_three_moments_loses_and_doubles_nothing(
    own_cluster: tuple[LocalCluster, Cluster], tmp_path: Path
) -> None:
    local, c = own_cluster
    ns = new_namespace(c, "continuity")
    oracle = Recorder(c.kube, ns)
    port = free_port()
    state = tmp_path / "state"
    args = ("--namespaces", ns, "--state-file", str(state), "--state-interval", "2s")
    logs = iter(tmp_path / f"exporter-{i}.log" for i in range(1, 10))
    prometheus = Prometheus(tmp_path, f"http://127.0.0.1:{port}", "http://127.0.0.1:1")
    prometheus.start()
    started = time.time()
    exporter = Exporter(c.kubeconfig, next(logs), *args, port=port)
    try:
        create_workloads(c, ns)
        exporter.wait_ready()
        eventually(
            lambda: (
                expected(oracle)["runs"][("fails", "failed")] >= 1
                and exporter.value("kube_batch_job_running_seconds", ns, owner_name="forbid")
            ),
            150,
            "a failure, and the Forbid run active",
        )
        agree(exporter, ns, oracle, "before any restart")
        eventually(lambda: state.exists(), 10, "a checkpoint")

        # 1. mid-run
        exporter.kill()
        wait_for_clock(time.time() + 8)

        # 2. mid-list at start-up: at least one LIST page fetched, the Job LIST not complete
        exporter = Exporter(
            c.kubeconfig, next(logs), *args, "--list-page-size", "1",
            "--new-series-delay", "0s", port=port,
        )  # fmt: skip
        kill_mid_list(exporter)
        wait_for_clock(time.time() + 5)

        exporter = Exporter(c.kubeconfig, next(logs), *args, port=port)
        exporter.wait_ready()
        agree(exporter, ns, oracle, "after the mid-run and mid-list kills")

        # 3. a controller-manager outage over two slots, the exporter killed in the middle
        outage = next_minute(time.time(), 15)
        wait_for_clock(outage)
        local.stop_component("kube-controller-manager")
        wait_for_clock(outage + 60)  # one slot passed without the controller
        exporter.kill()
        wait_for_clock(time.time() + 8)
        exporter = Exporter(c.kubeconfig, next(logs), *args, port=port)
        exporter.wait_ready()
        wait_for_clock(outage + 120)  # a second slot passes while the controller is down
        local.start_component("kube-controller-manager")
        agree(exporter, ns, oracle, "after the kill during the outage")

        # the end: suspend everything mid-minute, let every run finish and every slot decide
        wait_for_clock(next_minute(time.time(), 30))
        for name in CRONJOBS:
            c.kube.patch(
                f"/apis/batch/v1/namespaces/{ns}/cronjobs/{name}", {"spec": {"suspend": True}}
            )
        suspended = time.time()
        eventually(lambda: oracle.active() == 0, 120, "every run finished")
        agree(exporter, ns, oracle, "at the end")
        created = {
            cj["metadata"]["name"]: stamp(cj["metadata"]["creationTimestamp"])
            for cj in c.kube.get(f"/apis/batch/v1/namespaces/{ns}/cronjobs")["items"]
        }
        wait_for_clock(next_minute(suspended, 12))  # the last slot before it is decided
        for name in CRONJOBS:
            slots = {float(m) for m in range(int(created[name] // 60 + 1) * 60, int(suspended), 60)}
            want = len(slots - oracle.ran_slots(name))
            eventually(
                lambda name=name, want=want: missed(exporter, ns, name) == want,
                30,
                f"{name}: {want} slots missed ({sorted(slots - oracle.ran_slots(name))})",
            )
        end = time.time()
        assert_no_reset_and_no_gap(prometheus, started, end)
    finally:
        oracle.close()
        if exporter.proc.poll() is None:
            assert exporter.stop() == 0, exporter.log.read_text()[-3000:]
        prometheus.stop()


def kill_mid_list(exporter: Exporter, timeout: float = 30) -> None:
    """SIGKILL once the exporter has fetched a page of its Job LIST and not finished it.

    Polled without pause: the LIST of 120 one-object pages takes well under a second.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert exporter.proc.poll() is None, exporter.log.read_text()[-2000:]
        try:
            _, text = exporter.get("/metrics")
        except OSError:
            continue
        self = {
            (s.name, s.labels.get("resource"), s.labels.get("verb")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        pages = self.get(("kube_batch_exporter_api_requests_total", "jobs", "list"), 0)
        synced = self.get(("kube_batch_exporter_synced", "jobs", None))
        assert synced != 1, "the Job LIST completed before the kill"
        if pages >= 1:
            exporter.kill()
            return
    raise AssertionError("the exporter never started its Job LIST")


def missed(exporter: Exporter, ns: str, cronjob: str) -> float:
    return sum(
        s.value
        for s in exporter.samples("kube_batch_cronjob_missed_schedules_total", ns)
        if s.labels["cronjob"] == cronjob and s.labels["reason"] != "suspended"
    )


def assert_no_reset_and_no_gap(prometheus: Prometheus, start: float, end: float) -> None:
    assert_no_reset(prometheus, start, end)
    firing = prometheus.query_range(
        'ALERTS{alertname="CronJobFailing", cronjob="fails", alertstate="firing"}', start, end, 2
    )
    assert len(firing) == 1, firing
    times = [float(t) for t, _ in firing[0]["values"]]
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a > 2]
    assert not gaps, f"CronJobFailing stopped firing for {gaps} s"
    assert end - times[-1] < 10  # and it still fires


def test_a_corrupt_or_foreign_checkpoint_means_a_clean_start(
    cluster: Cluster, own_cluster: tuple[LocalCluster, Cluster], tmp_path: Path
) -> None:
    _, other = own_cluster
    ns = new_namespace(cluster, "fresh")
    state = tmp_path / "state"
    keep = ("--state-file", str(state), "--state-interval", "1s")
    body = {"metadata": {"generateName": "once-"}, "spec": {"template": pod_template(cluster)}}
    cluster.kube.create(f"/apis/batch/v1/namespaces/{ns}/jobs", body)

    def starts_fresh(c: Cluster, name: str, why: str) -> Exporter:
        exporter = Exporter(c.kubeconfig, tmp_path / f"{name}.log", "--namespaces", ns, *keep)
        exporter.wait_ready()
        eventually(lambda: exporter.own("kube_batch_exporter_errors_total", kind="state") == 1,
                   30, f"{name}: the unusable checkpoint counted")  # fmt: skip
        assert why in exporter.log.read_text()
        return exporter

    first = Exporter(cluster.kubeconfig, tmp_path / "first.log", "--namespaces", ns, *keep)
    first.wait_ready()
    counted = ("kube_batch_runs_total", ns)
    eventually(lambda: first.value(*counted, owner_name="once", result="succeeded") == 1, 60,
               "the run counted")  # fmt: skip
    assert first.stop() == 0  # SIGTERM writes the last checkpoint
    assert state.exists()

    foreign = starts_fresh(other, "foreign", "written for another cluster")
    assert foreign.stop() == 0  # and replaces it with its own

    state.write_bytes(b"\x1f\x8b\x08 not gzip after all")
    corrupt = starts_fresh(cluster, "corrupt", "starting fresh, ignoring the checkpoint")
    try:  # a fresh start: the finished Job feeds the last-run gauges, no counter
        assert corrupt.value(*counted, owner_name="once", result="succeeded") is None
        assert corrupt.value("kube_batch_last_run_success", ns, owner_name="once") == 1
    finally:
        assert corrupt.stop() == 0


def test_the_configmap_backend_splits_and_commits_whole(cluster: Cluster) -> None:
    ns = new_namespace(cluster, "state")

    async def scenario() -> None:
        conn = await connect(str(cluster.kubeconfig), None)
        async with conn.session() as session:
            backend = ConfigMapBackend(ns, "kbe-state", session, conn)
            assert await backend.read() is None
            big = os.urandom(2_500_000)  # three ConfigMaps' worth
            await backend.write(big)
            assert await ConfigMapBackend(ns, "kbe-state", session, conn).read() == big
            await backend.write(b"small")
            assert await ConfigMapBackend(ns, "kbe-state", session, conn).read() == b"small"
            await backend.write(big)  # into the other generation than the first big one
            reader = ConfigMapBackend(ns, "kbe-state", session, conn)
            assert await reader.read() == big
            names = {
                cm["metadata"]["name"]
                for cm in cluster.kube.get(f"/api/v1/namespaces/{ns}/configmaps")["items"]
            }
            assert {"kbe-state", "kbe-state-a-1", "kbe-state-a-2", "kbe-state-b-1"} <= names
            # a part overwritten behind the head's back is caught by the digest
            head = cluster.kube.get(f"/api/v1/namespaces/{ns}/configmaps/kbe-state")
            part = f"/api/v1/namespaces/{ns}/configmaps/kbe-state-{head['data']['generation']}-1"
            cluster.kube.patch(part, {"binaryData": {"checkpoint": "AAAA"}})
            with pytest.raises(StateError, match="digest"):
                await ConfigMapBackend(ns, "kbe-state", session, conn).read()

    asyncio.run(scenario())
