"""Smoke e2e: scenarios from the Kubernetes Jobs/CronJobs guide on a real control plane.

All scenarios are created at once by a module fixture, each in its own namespace, so they
run concurrently in the cluster; each test then waits for its own outcome in /metrics.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.objects import cronjob, job
from tests.e2e.conftest import Cluster, Exporter, eventually, new_namespace, pod_template

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


def scenario_bodies(cluster: Cluster) -> dict[str, dict[str, Any]]:
    t = pod_template
    return {
        "oneshot": job("oneshot", t(cluster)),
        "parallel": job("parallel", t(cluster, "500ms"), completions=10, parallelism=3),
        "indexed": job(
            "indexed", t(cluster, "500ms"), completions=5, parallelism=5, completionMode="Indexed"
        ),
        "backoff": job("backoff", t(cluster, "200ms", exit_code=1), backoffLimit=1),
        "deadline": job("deadline", t(cluster, "300s"), activeDeadlineSeconds=3),
    }


@pytest.fixture(scope="module")
def scenarios(cluster: Cluster, exporter: Exporter) -> dict[str, str]:
    """Create every scenario now; return scenario name -> namespace."""
    namespaces: dict[str, str] = {}
    for name, body in scenario_bodies(cluster).items():
        ns = namespaces[name] = new_namespace(cluster, name)
        cluster.kube.create(JOBS.format(ns=ns), body)
    ns = namespaces["cronjob"] = new_namespace(cluster, "cronjob")
    cluster.kube.create(
        f"/apis/batch/v1/namespaces/{ns}/cronjobs",
        cronjob("every-minute", "* * * * *", pod_template(cluster), successfulJobsHistoryLimit=3),
    )
    return namespaces


def wait_state(
    exporter: Exporter,
    ns: str,
    job_name: str,
    state: str,
    timeout: float = 90,
) -> None:
    eventually(
        lambda: exporter.value("kube_batch_job_state", ns, job_name=job_name, state=state) == 1,
        timeout,
        f"{ns}/{job_name} {state}",
    )


def test_oneshot_job_succeeds(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["oneshot"]
    wait_state(exporter, ns, "oneshot", "succeeded")

    def v(name: str) -> float | None:
        return exporter.value(name, ns, job_name="oneshot")

    assert v("kube_batch_job_status_succeeded") == 1
    assert v("kube_batch_job_status_active") == 0
    assert v("kube_batch_job_spec_completions") == 1
    start, end = (
        v("kube_batch_job_start_timestamp_seconds"),
        v("kube_batch_job_end_timestamp_seconds"),
    )
    assert start is not None and end is not None and end >= start
    assert v("kube_batch_job_running_seconds") is None
    assert (
        exporter.value(
            "kube_batch_job_finished_retained", ns, owner_kind="Job", owner_name="oneshot"
        )
        == 1
    )


def test_parallel_job_completes_ten(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["parallel"]
    wait_state(exporter, ns, "parallel", "succeeded")
    assert exporter.value("kube_batch_job_status_succeeded", ns, job_name="parallel") == 10
    assert exporter.value("kube_batch_job_spec_parallelism", ns, job_name="parallel") == 3
    assert exporter.value("kube_batch_job_spec_completions", ns, job_name="parallel") == 10


def test_indexed_job_completes_five(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["indexed"]
    wait_state(exporter, ns, "indexed", "succeeded")
    assert exporter.value("kube_batch_job_status_succeeded", ns, job_name="indexed") == 5


def test_backoff_limit_exceeded(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["backoff"]
    wait_state(exporter, ns, "backoff", "failed", timeout=120)
    assert exporter.value("kube_batch_job_status_failed", ns, job_name="backoff") == 2
    assert exporter.value("kube_batch_job_spec_backoff_limit", ns, job_name="backoff") == 1
    assert exporter.value("kube_batch_job_end_timestamp_seconds", ns, job_name="backoff")


def test_deadline_exceeded(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["deadline"]
    wait_state(exporter, ns, "deadline", "failed")
    assert (
        exporter.value("kube_batch_job_spec_active_deadline_seconds", ns, job_name="deadline") == 3
    )
    start = exporter.value("kube_batch_job_start_timestamp_seconds", ns, job_name="deadline")
    end = exporter.value("kube_batch_job_end_timestamp_seconds", ns, job_name="deadline")
    assert start is not None and end is not None and end - start >= 3


def test_ttl_job_disappears_with_its_series(
    cluster: Cluster, exporter: Exporter, namespace: str
) -> None:
    # Created here, not with the other scenarios: the exporter must be watched seeing it
    # succeed before the TTL controller deletes it.
    ns = namespace
    cluster.kube.create(
        JOBS.format(ns=ns), job("ttl", pod_template(cluster), ttlSecondsAfterFinished=8)
    )
    wait_state(exporter, ns, "ttl", "succeeded")
    eventually(
        lambda: not exporter.samples("kube_batch_job_state", ns),
        60,
        "the TTL controller to delete the Job and its series to vanish",
    )
    assert not exporter.samples("kube_batch_job_finished_retained", ns)


def test_pod_without_a_node_stays_pending(
    cluster: Cluster, exporter: Exporter, namespace: str
) -> None:
    template = pod_template(cluster)
    template["spec"].pop("nodeName", None)
    template["spec"]["nodeSelector"] = {"no-such-node": "true"}  # unschedulable anywhere
    cluster.kube.create(JOBS.format(ns=namespace), job("stuck", template))
    wait_state(exporter, namespace, "stuck", "pending")
    pods = cluster.kube.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
    assert [p["status"].get("phase") for p in pods] == ["Pending"]
    assert exporter.value("kube_batch_job_status_active", namespace, job_name="stuck") == 1
    assert exporter.value("kube_batch_job_running_seconds", namespace, job_name="stuck") is not None


def test_cronjob_every_minute_runs_twice(exporter: Exporter, scenarios: dict[str, str]) -> None:
    ns = scenarios["cronjob"]
    info = exporter.samples("kube_batch_cronjob_info", ns)
    assert [s.labels["schedule"] for s in info] == ["* * * * *"]

    def succeeded_runs() -> int:
        return sum(
            1
            for s in exporter.samples("kube_batch_job_state", ns)
            if s.labels["state"] == "succeeded"
            and s.value == 1
            and s.labels["owner_kind"] == "CronJob"
            and s.labels["owner_name"] == "every-minute"
        )

    eventually(lambda: succeeded_runs() >= 2, 200, "two successful runs of the CronJob")
    last = exporter.value(
        "kube_batch_cronjob_last_schedule_timestamp_seconds", ns, cronjob="every-minute"
    )
    assert last is not None and last % 60 == 0
    assert exporter.value("kube_batch_cronjob_schedule_valid", ns, cronjob="every-minute") == 1
    upcoming = exporter.value(
        "kube_batch_cronjob_next_schedule_timestamp_seconds", ns, cronjob="every-minute"
    )
    assert upcoming is not None and upcoming % 60 == 0 and upcoming > last
    assert exporter.value(
        "kube_batch_cronjob_last_success_timestamp_seconds", ns, cronjob="every-minute"
    )
    assert (
        exporter.value(
            "kube_batch_job_finished_retained", ns, owner_kind="CronJob", owner_name="every-minute"
        )
        or 0
    ) >= 2
