"""Job and Pod objects as the API server sends them, for the unit tests of counting rules.

One run of the tests' owner ``ns/backup`` (a CronJob) unless told otherwise; times are
seconds after :data:`tests.world.T0`.
"""

from __future__ import annotations

from typing import Any

from tests.world import ts


def job(
    name: str = "backup-1",
    uid: str = "j1",
    owner: str | None = "backup",
    manual: bool = False,
    **status: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, "creationTimestamp": ts(0)}
    if owner:
        meta["ownerReferences"] = [{"kind": "CronJob", "name": owner, "controller": not manual}]
    if manual:
        meta["annotations"] = {"cronjob.kubernetes.io/instantiate": "manual"}
    return {"metadata": meta, "spec": {}, "status": status}


def running(**kw: Any) -> dict[str, Any]:
    return job(startTime=ts(10), active=1, **kw)


def complete(end: float = 70, reason: str = "CompletionsReached", **kw: Any) -> dict[str, Any]:
    return job(
        startTime=ts(10),
        succeeded=1,
        completionTime=ts(end),
        conditions=[
            {
                "type": "SuccessCriteriaMet",
                "status": "True",
                "reason": reason,
                "lastTransitionTime": ts(end),
            },
            {"type": "Complete", "status": "True", "reason": reason, "lastTransitionTime": ts(end)},
        ],
        **kw,
    )


def failed(end: float = 130, reason: str = "BackoffLimitExceeded", **kw: Any) -> dict[str, Any]:
    return job(
        startTime=ts(10),
        failed=2,
        conditions=[
            {"type": "Failed", "status": "True", "reason": reason, "lastTransitionTime": ts(end)},
            {
                "type": "FailureTarget",
                "status": "True",
                "reason": reason,
                "lastTransitionTime": ts(end - 1),
            },
        ],
        **kw,
    )


def pod(
    uid: str = "p1",
    job_uid: str = "j1",
    phase: str = "Running",
    restarts: int = 0,
    started: float | None = 5,
    reason: str = "",
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if started is not None:
        key = "terminated" if phase in ("Failed", "Succeeded") else "running"
        state = {
            key: {
                "startedAt": ts(started),
                "reason": reason,
                "exitCode": 1 if phase == "Failed" else 0,
            }
        }
    return {
        "metadata": {
            "name": uid,
            "namespace": "ns",
            "uid": uid,
            "ownerReferences": [{"kind": "Job", "uid": job_uid, "controller": True}],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "c", "restartCount": restarts, "state": state}],
        },
    }


def cronjob(
    schedule: str = "*/5 * * * *",
    created: float = 0,
    last: float | None = None,
    last_success: float | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """CronJob ``ns/backup``; ``last`` and ``last_success`` are its status times."""
    body: dict[str, Any] = {
        "metadata": {
            "uid": "cj",
            "name": "backup",
            "namespace": "ns",
            "creationTimestamp": ts(created),
        },
        "spec": {"schedule": schedule, **spec},
        "status": {},
    }
    if last is not None:
        body["status"]["lastScheduleTime"] = ts(last)
    if last_success is not None:
        body["status"]["lastSuccessfulTime"] = ts(last_success)
    return body
