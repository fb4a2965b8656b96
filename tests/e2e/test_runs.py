"""Run history on the real controllers: outcomes, retries, TTL deletion, Replace, restarts.

The workloads of this module are created together by a module fixture so they progress
concurrently; tests then wait for their own outcome in /metrics.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import objects
from tests.e2e.conftest import Cluster, Exporter, eventually, new_namespace, pod_template

FAILING = {"kube-batch-exporter.test/exit-code": "1"}


@pytest.fixture(scope="module")
def runs(cluster: Cluster, exporter: Exporter) -> dict[str, str]:
    kube = cluster.kube
    spaces = {
        name: new_namespace(cluster, name) for name in ("alternating", "oom", "ttl0", "replace")
    }
    failing = pod_template(cluster, "200ms", exit_code=1)
    kube.create(
        f"/apis/batch/v1/namespaces/{spaces['alternating']}/cronjobs",
        {
            "metadata": {"name": "flip"},
            "spec": {
                "schedule": "* * * * *",
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": failing}},
            },
        },
    )
    kube.create(
        f"/apis/batch/v1/namespaces/{spaces['oom']}/jobs",
        {
            "metadata": {"name": "oom-retry"},
            "spec": {"backoffLimit": 3, "template": pod_template(cluster, manual=True)},
        },
    )
    for name, run_for in (("swap", "90s"), ("handdel", "50s")):  # runs outlast a slot, or not
        kube.create(
            f"/apis/batch/v1/namespaces/{spaces['replace']}/cronjobs",
            objects.cronjob(
                name, "* * * * *", pod_template(cluster, run_for), concurrencyPolicy="Replace"
            ),
        )
    kube.create(
        f"/apis/batch/v1/namespaces/{spaces['ttl0']}/jobs",
        {
            "metadata": {"generateName": "ttl-zero-"},
            "spec": {"ttlSecondsAfterFinished": 0, "template": pod_template(cluster, "500ms")},
        },
    )
    return spaces


def run_count(exp: Exporter, ns: str, owner: str, result: str) -> float:
    return sum(
        s.value
        for s in exp.samples("kube_batch_runs_total", ns)
        if s.labels["owner_name"] == owner and s.labels["result"] == result
    )


def test_cronjob_runs_alternating_fail_and_succeed(
    cluster: Cluster, exporter: Exporter, runs: dict[str, str]
) -> None:
    ns, path = runs["alternating"], f"/apis/batch/v1/namespaces/{runs['alternating']}/cronjobs/flip"

    def template(annotations: dict[str, Any]) -> dict[str, Any]:
        return {
            "spec": {
                "jobTemplate": {"spec": {"template": {"metadata": {"annotations": annotations}}}}
            }
        }

    def gauge(name: str) -> float | None:
        return exporter.value(name, ns, owner_name="flip")

    eventually(lambda: run_count(exporter, ns, "flip", "failed") == 1, 150, "first failed run")
    assert (
        exporter.value(
            "kube_batch_runs_total",
            ns,
            owner_name="flip",
            result="failed",
            reason="BackoffLimitExceeded",
            trigger="schedule",
        )
        == 1
    )
    assert (gauge("kube_batch_consecutive_failures"), gauge("kube_batch_last_run_success")) == (
        1,
        0,
    )

    cluster.kube.patch(path, template({"kube-batch-exporter.test/exit-code": None}))
    eventually(lambda: run_count(exporter, ns, "flip", "succeeded") == 1, 150, "a success")
    assert (gauge("kube_batch_consecutive_failures"), gauge("kube_batch_last_run_success")) == (
        0,
        1,
    )
    assert gauge("kube_batch_last_success_timestamp_seconds")

    cluster.kube.patch(path, template(FAILING))
    eventually(lambda: run_count(exporter, ns, "flip", "failed") == 2, 150, "failing again")
    assert (gauge("kube_batch_consecutive_failures"), gauge("kube_batch_last_run_success")) == (
        1,
        0,
    )
    # history limits have deleted older Jobs meanwhile; the counts did not move with them
    assert run_count(exporter, ns, "flip", "succeeded") == 1


def _finish_pod(cluster: Cluster, ns: str, pod: dict[str, Any], oom: bool) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = pod["status"].get("startTime", now)
    terminated = (
        {"exitCode": 137, "reason": "OOMKilled"} if oom else {"exitCode": 0, "reason": "Completed"}
    )
    cluster.kube.patch(
        f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status",
        {
            "status": {
                "phase": "Failed" if oom else "Succeeded",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                "containerStatuses": [
                    {
                        "name": "work",
                        "image": "busybox:1.36",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {**terminated, "startedAt": started, "finishedAt": now}
                        },
                    }
                ],
            }
        },
    )


def test_oom_killed_twice_then_succeeding(
    cluster: Cluster, exporter: Exporter, runs: dict[str, str]
) -> None:
    if not cluster.local:
        pytest.skip(reason="writes pod status as a kubelet would: needs the kwok control plane")
    ns = runs["oom"]
    handled: set[str] = set()
    for attempt in range(3):

        def next_running() -> dict[str, Any] | None:
            pods = cluster.kube.get(
                f"/api/v1/namespaces/{ns}/pods?labelSelector=batch.kubernetes.io/job-name"
                "%3Doom-retry"
            )["items"]
            return next(
                (
                    p
                    for p in pods
                    if p["status"].get("phase") == "Running"
                    and p["metadata"]["name"] not in handled
                ),
                None,
            )

        eventually(lambda: next_running() is not None, 90, f"attempt {attempt + 1} running")
        pod = next_running()
        assert pod is not None
        handled.add(pod["metadata"]["name"])
        _finish_pod(cluster, ns, pod, oom=attempt < 2)

    eventually(
        lambda: run_count(exporter, ns, "oom-retry", "succeeded") == 1, 60, "the run to succeed"
    )
    assert (
        exporter.value(
            "kube_batch_pod_failures_total", ns, owner_name="oom-retry", reason="OOMKilled"
        )
        == 2
    )
    assert exporter.value("kube_batch_run_retries_count", ns, owner_name="oom-retry") == 1
    assert exporter.value("kube_batch_run_retries_sum", ns, owner_name="oom-retry") == 2
    assert (
        exporter.value("kube_batch_run_retries_bucket", ns, owner_name="oom-retry", le="1.0") == 0
    )
    assert (
        exporter.value("kube_batch_run_retries_bucket", ns, owner_name="oom-retry", le="2.0") == 1
    )
    delay = exporter.value("kube_batch_run_start_delay_seconds_count", ns, owner_name="oom-retry")
    assert delay == 1


def test_replace_counts_the_controllers_replacements_not_a_persons_deletion(
    cluster: Cluster, exporter: Exporter, runs: dict[str, str]
) -> None:
    ns = runs["replace"]
    jobs = f"/apis/batch/v1/namespaces/{ns}/jobs"

    def deleted(owner: str, reason: str) -> float:
        return (
            exporter.value(
                "kube_batch_runs_total",
                ns,
                owner_name=owner,
                result="deleted",
                reason=reason,
                trigger="schedule",
            )
            or 0
        )

    def fresh_handdel_run() -> str | None:
        """A running handdel Job created under 20 s ago: its next slot is far away."""
        for job in cluster.kube.get(jobs)["items"]:
            meta = job["metadata"]
            created = datetime.fromisoformat(meta["creationTimestamp"]).timestamp()
            if (
                meta["name"].startswith("handdel-")
                and not job["status"].get("conditions")
                and time.time() - created < 20
            ):
                return str(meta["name"])
        return None

    eventually(lambda: fresh_handdel_run() is not None, 90, "a fresh run of handdel")
    name = fresh_handdel_run()
    assert name is not None
    cluster.kube.delete(f"{jobs}/{name}")  # kubectl delete, a few seconds into the run
    eventually(lambda: deleted("handdel", "DeletedWhileActive") == 1, 30, "the deleted run")
    # swap's runs outlast its schedule: the controller deletes each at the next slot
    eventually(lambda: deleted("swap", "Replaced") >= 1, 150, "a replaced run of swap")
    assert deleted("handdel", "Replaced") == 0
    assert deleted("swap", "DeletedWhileActive") == 0


def test_job_deleted_by_ttl_right_after_finishing_is_counted(
    exporter: Exporter, runs: dict[str, str]
) -> None:
    ns = runs["ttl0"]
    eventually(
        lambda: run_count(exporter, ns, "ttl-zero", "succeeded") == 1,
        90,
        "the TTL'd run to be counted",
    )
    eventually(lambda: not exporter.samples("kube_batch_job_state", ns), 30, "the Job to go")
    assert run_count(exporter, ns, "ttl-zero", "succeeded") == 1
    assert exporter.value("kube_batch_last_run_success", ns, owner_name="ttl-zero") == 1


def test_exporter_restart_does_not_count_again(
    cluster: Cluster, tmp_path: Path, namespace: str
) -> None:
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    body = {
        "metadata": {"generateName": "nightly-"},
        "spec": {"template": pod_template(cluster, "500ms")},
    }
    first = Exporter(cluster.kubeconfig, tmp_path / "first.log", "--namespaces", namespace)
    try:
        first.wait_ready()
        cluster.kube.create(jobs, body)
        eventually(
            lambda: run_count(first, namespace, "nightly", "succeeded") == 1, 60, "the first run"
        )
    finally:
        assert first.stop() == 0
    second = Exporter(cluster.kubeconfig, tmp_path / "second.log", "--namespaces", namespace)
    try:
        second.wait_ready()
        assert run_count(second, namespace, "nightly", "succeeded") == 0
        assert second.value("kube_batch_last_run_success", namespace, owner_name="nightly") == 1
        cluster.kube.create(jobs, body)
        eventually(
            lambda: run_count(second, namespace, "nightly", "succeeded") == 1,
            60,
            "the second run, counted once",
        )
        assert second.value("kube_batch_last_run_success", namespace, owner_name="nightly") == 1
    finally:
        assert second.stop() == 0
