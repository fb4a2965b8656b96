"""Sample batch workloads for the demo, modelled on the Kubernetes Jobs/CronJobs guide.

Pods are bound to a kwok node (the demo cluster has no scheduler) and annotated with how long
they run and how they exit (see tests/cluster/stages.yaml).
"""

from __future__ import annotations

from typing import Any

from tests.cluster.objects import cronjob, job

NODE = "kwok-node-0"


def _template(
    run_for: str, exit_code: int = 0, reason: str = "Error", fail_attempts: int = 0
) -> dict[str, Any]:
    annotations = {"kube-batch-exporter.test/run-for": run_for}
    if exit_code:
        annotations |= {
            "kube-batch-exporter.test/exit-code": str(exit_code),
            "kube-batch-exporter.test/reason": reason,
        }
    if fail_attempts:
        annotations["kube-batch-exporter.test/fail-attempts"] = str(fail_attempts)
    return {
        "metadata": {"annotations": annotations},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36"}],
        },
    }


WORKLOADS: list[dict[str, Any]] = [
    cronjob("nightly-backup", "* * * * *", _template("20s")),
    cronjob("hourly-sync", "* * * * *", _template("90s"), concurrencyPolicy="Forbid"),
    cronjob(
        "report",
        "* * * * *",
        _template("5s", exit_code=1),
        {"backoffLimit": 0},
        failedJobsHistoryLimit=3,
    ),
    # Fails its first attempt, succeeds on the retry. The per-index backoff makes the Job
    # controller number attempts on the pods, which is what the kwok stages can see.
    cronjob(
        "flaky-etl",
        "*/2 * * * *",
        _template("5s", exit_code=1, fail_attempts=1),
        {"completionMode": "Indexed", "completions": 1, "backoffLimitPerIndex": 2},
    ),
    job("image-resize", _template("2s", exit_code=137, reason="OOMKilled"), backoffLimit=2),
    job("shard-index", _template("3s"), completions=5, parallelism=2, completionMode="Indexed"),
    job("slow-export", _template("10m"), activeDeadlineSeconds=30),
]
