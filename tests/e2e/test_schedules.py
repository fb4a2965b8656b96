"""Schedule tracking on the real CronJob controller (contract §4).

Minute-granular scenarios, all started by one module fixture so they run concurrently:

* on the shared cluster: Forbid with a run longer than two slots; a CronJob suspended for
  three minutes;
* on a cluster of their own (its controller-manager is stopped for three minutes): an outage
  without a starting deadline, one with ``startingDeadlineSeconds: 10``, and an exporter
  restarted in the middle of the outage.

Waiting for a wall-clock instant below is the scenario itself (how long an outage or a
suspension lasts), not synchronisation; outcomes are always awaited on /metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import objects
from tests.cluster.controlplane import LocalCluster
from tests.e2e.conftest import (
    Cluster,
    Exporter,
    eventually,
    new_namespace,
    pod_template,
    private_cluster,
    wait_for_clock,
)

GRACE = {"kube-batch-exporter/missed-grace": "10s"}
# The outage scenario lasts about five minutes by design.
pytestmark = pytest.mark.timeout(600)


def cronjob(cluster: Cluster, name: str, run_for: str = "1s", **spec: Any) -> dict[str, Any]:
    body = objects.cronjob(
        name, "* * * * *", pod_template(cluster, run_for), successfulJobsHistoryLimit=10, **spec
    )
    body["metadata"]["annotations"] = GRACE
    return body


def missed(exp: Exporter, ns: str, name: str, reason: str) -> float:
    return (
        exp.value("kube_batch_cronjob_missed_schedules_total", ns, cronjob=name, reason=reason)
        or 0.0
    )


def job_slots(cluster: Cluster, ns: str) -> list[float]:
    from datetime import datetime

    items = cluster.kube.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    return sorted(
        datetime.fromisoformat(
            j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        ).timestamp()
        for j in items
    )


@pytest.fixture(scope="module")
def shared(cluster: Cluster, exporter: Exporter) -> Iterator[dict[str, str]]:
    """Forbid and suspension scenarios on the shared cluster."""
    spaces = {"forbid": new_namespace(cluster, "forbid"), "suspend": new_namespace(cluster, "sus")}
    cluster.kube.create(
        f"/apis/batch/v1/namespaces/{spaces['forbid']}/cronjobs",
        cronjob(cluster, "forbid", "150s", concurrencyPolicy="Forbid"),
    )
    path = f"/apis/batch/v1/namespaces/{spaces['suspend']}/cronjobs"
    cluster.kube.create(path, cronjob(cluster, "paused", suspend=True))
    resume = threading.Timer(
        180, lambda: cluster.kube.patch(f"{path}/paused", {"spec": {"suspend": False}})
    )
    resume.start()
    yield spaces
    resume.cancel()


@pytest.fixture(scope="module")
def outage_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster
) -> Iterator[tuple[LocalCluster, Cluster]]:
    with private_cluster(tmp_path_factory, cluster, "outage") as both:
        yield both


def test_outage_deadline_and_exporter_restart(
    shared: dict[str, str], outage_cluster: tuple[LocalCluster, Cluster], tmp_path: Path
) -> None:
    local, other = outage_cluster
    ns = new_namespace(other, "outage")
    base = f"/apis/batch/v1/namespaces/{ns}/cronjobs"
    other.kube.create(base, cronjob(other, "plain"))
    other.kube.create(base, cronjob(other, "deadline", startingDeadlineSeconds=10))
    first = Exporter(other.kubeconfig, tmp_path / "first.log")
    first.wait_ready()
    try:
        eventually(lambda: len(job_slots(other, ns)) >= 2, 90, "both CronJobs' first runs")
        m1 = max(job_slots(other, ns))
        local.stop_component("kube-controller-manager")
        m3, m4 = m1 + 120, m1 + 180  # m2 = m1 + 60 is missed during the outage

        eventually(
            lambda: (
                (first.value("kube_batch_cronjob_overdue_seconds", ns, cronjob="plain") or 0) > 0
            ),
            90,
            "plain to be overdue",
        )
        # m2 is decided at m3 + grace; m3 only at m4 + grace, after the restart below
        eventually(lambda: missed(first, ns, "plain", "not_started") == 1, 120, "m2 missed")
        wait_for_clock(m3 + 15)  # restart the exporter in the middle of the outage
        assert missed(first, ns, "plain", "not_started") == 1
    finally:
        assert first.stop() == 0
    second = Exporter(other.kubeconfig, tmp_path / "second.log")
    try:
        second.wait_ready()
        wait_for_clock(m4 + 30)  # past m4 + startingDeadlineSeconds: "deadline" cannot run m4
        local.start_component("kube-controller-manager")

        # "plain" catches up with its newest slot only; m2 and m3 are missed, once each
        eventually(lambda: m4 in job_slots(other, ns), 60, "the catch-up run of m4")
        eventually(
            lambda: second.value("kube_batch_cronjob_overdue_seconds", ns, cronjob="plain") == 0,
            30,
            "plain no longer overdue",
        )
        eventually(lambda: missed(second, ns, "plain", "not_started") == 2, 30, "plain: 2")
        # "deadline" misses even its newest slot
        eventually(
            lambda: missed(second, ns, "deadline", "not_started") == 3,
            30,
            "deadline: m2, m3 and m4 missed",
        )
        assert job_slots(other, ns).count(m4) == 1
        for name in ("plain", "deadline"):
            for reason in ("concurrency_forbid", "suspended"):
                assert missed(second, ns, name, reason) == 0

        def lag() -> float:  # a series born with the catch-up run: at 0 for its first seconds
            return (
                second.value("kube_batch_cronjob_schedule_lag_seconds_sum", ns, cronjob="plain")
                or 0.0
            )

        eventually(lambda: lag() >= 25, 30, "m4's lag observed (it was created ~30 s late)")
    finally:
        assert second.stop() == 0


def test_forbid_skips_are_counted_and_the_late_run_lag_observed(
    exporter: Exporter, shared: dict[str, str]
) -> None:
    ns = shared["forbid"]
    eventually(
        lambda: missed(exporter, ns, "forbid", "concurrency_forbid") >= 1,
        300,
        "a slot skipped because a run was active",
    )
    assert missed(exporter, ns, "forbid", "not_started") == 0

    def late_run_seen() -> bool:
        count = (
            exporter.value("kube_batch_cronjob_schedule_lag_seconds_count", ns, cronjob="forbid")
            or 0
        )
        prompt = (
            exporter.value(
                "kube_batch_cronjob_schedule_lag_seconds_bucket", ns, cronjob="forbid", le="10.0"
            )
            or 0
        )
        return count > prompt

    eventually(late_run_seen, 240, "a run started late once the previous one finished")


def test_suspension_counts_only_suspended_misses(
    exporter: Exporter, shared: dict[str, str]
) -> None:
    ns = shared["suspend"]
    eventually(
        lambda: (
            (
                exporter.value(
                    "kube_batch_runs_total",
                    ns,
                    owner_name="paused",
                    result="succeeded",
                    reason="CompletionsReached",
                    trigger="schedule",
                )
                or 0
            )
            >= 1
        ),
        330,
        "a run after the CronJob was resumed",
    )
    assert missed(exporter, ns, "paused", "suspended") >= 1
    assert missed(exporter, ns, "paused", "not_started") == 0
    assert exporter.value("kube_batch_cronjob_overdue_seconds", ns, cronjob="paused") == 0
