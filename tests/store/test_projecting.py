"""Projection of raw objects: owner and trigger rules, terminal states, hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.store.projecting import (
    BadObject,
    parse_timestamp,
    project_cronjob,
    project_job,
    project_pod,
)


def meta(**kw: Any) -> dict[str, Any]:
    return {"uid": "u", "name": "n", "namespace": "ns", **kw}


CRON_REF = {"kind": "CronJob", "name": "nightly", "controller": True}


@pytest.mark.parametrize(
    ("metadata", "family_label", "expected"),
    [
        (meta(ownerReferences=[CRON_REF]), None, ("CronJob", "nightly", "schedule")),
        (
            meta(ownerReferences=[{**CRON_REF, "controller": False}]),
            None,
            ("CronJob", "nightly", "manual"),
        ),
        (
            meta(
                ownerReferences=[{"kind": "CronJob", "name": "nightly"}],
                annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            ),
            None,
            ("CronJob", "nightly", "manual"),
        ),
        (
            meta(
                ownerReferences=[CRON_REF],
                annotations={"cronjob.kubernetes.io/instantiate": "manual"},
            ),
            None,
            ("CronJob", "nightly", "manual"),
        ),
        (
            meta(
                ownerReferences=[{"kind": "Workflow", "name": "wf", "controller": True}],
                generateName="report-",
            ),
            None,
            ("Job", "report", "direct"),
        ),
        (meta(labels={"app": "etl"}), "app", ("Job", "etl", "direct")),
        (meta(labels={"other": "x"}), "app", ("Job", "n", "direct")),
        (meta(generateName="-"), None, ("Job", "n", "direct")),
    ],
)
def test_owner_and_trigger(
    metadata: dict[str, Any], family_label: str | None, expected: tuple[str, str, str]
) -> None:
    job = project_job({"metadata": metadata}, family_label)
    assert (job.owner_kind, job.owner_name, job.trigger) == expected


def test_interim_conditions_are_not_terminal() -> None:
    job = project_job(
        {
            "metadata": meta(),
            "status": {
                "ready": 0,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"}
                ],
            },
        }
    )
    assert job.outcome == "" and not job.finished


@pytest.mark.parametrize("order", [1, -1])
def test_terminal_condition_found_in_any_order(order: int) -> None:
    conditions = [
        {
            "type": "FailureTarget",
            "status": "True",
            "reason": "DeadlineExceeded",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "Failed",
            "status": "True",
            "reason": "DeadlineExceeded",
            "lastTransitionTime": "2026-01-01T00:00:05Z",
        },
    ][::order]
    job = project_job({"metadata": meta(), "status": {"conditions": conditions}})
    assert (job.outcome, job.reason, job.end) == ("failed", "DeadlineExceeded", 1767225605.0)
    assert job.completed is None  # failed Jobs have no completionTime


def test_old_clusters_complete_without_reason() -> None:
    job = project_job(
        {
            "metadata": meta(),
            "status": {
                "completionTime": "2026-01-01T00:01:00Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            },
        }
    )
    assert (job.state, job.reason, job.end) == ("succeeded", "", 1767225660.0)


def test_suspended_and_pending_states() -> None:
    assert project_job({"metadata": meta(), "spec": {"suspend": True}}).state == "suspended"
    assert project_job({"metadata": meta(), "status": {"active": 1, "ready": 0}}).state == "pending"


def job_with(path: str, value: Any) -> dict[str, Any]:
    """A valid Job with the field at a dotted ``path`` (``[i]`` for list items) set."""
    body: dict[str, Any] = {
        "metadata": meta(creationTimestamp="2026-01-01T00:00:00Z"),
        "spec": {"completions": 1},
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "active": 0},
    }
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        name, _, index = part.partition("[")
        node = node.setdefault(name, {})
        if index:
            node = node[int(index.rstrip("]"))]
    node[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("status", "garbage"),  # a container of the wrong type
        ("metadata.ownerReferences", "nope"),
        ("status.conditions[0].status", 1),
        ("status.active", "3"),  # a scalar of the wrong type
        ("status.ready", True),
        ("status.failed", -9_000_000_000_000_000_000),  # a negative count
        ("status.succeeded", 2**31),  # beyond int32
        ("spec.activeDeadlineSeconds", int("9" * 401)),
        ("status.startTime", "not a time"),
        ("status.startTime", "9999-12-31T23:59:59Z"),  # later than any cluster
        ("metadata.creationTimestamp", "1969-12-31T23:59:59Z"),
        ("metadata.name", 5),  # a label value that is not a string
        ("metadata.namespace", "a\ud800"),  # not valid Unicode
        ("metadata.name", "x" * 254),  # longer than any object name
        ("status.conditions[0].reason", "R" * 1025),
        ("spec.suspend", "yes"),
    ],
)
def test_what_the_api_could_never_send_makes_the_object_bad(path: str, value: Any) -> None:
    field = path.replace("[0]", "").split(".")[-1]
    with pytest.raises(BadObject, match=field):
        project_job(job_with(path, value))


def test_absent_optional_fields_are_fine() -> None:
    job = project_job({"metadata": meta(), "spec": None, "status": None})
    assert (job.active, job.ready, job.started, job.outcome, job.created) == (
        0,
        None,
        None,
        "",
        None,
    )


def test_people_write_annotations_so_a_bad_one_never_drops_the_object() -> None:
    job = project_job(
        job_with(
            "metadata.annotations",
            {
                "batch.kubernetes.io/cronjob-scheduled-timestamp": "not a time",
                "kube-batch-exporter/max-duration": "soon",
                "other": ["any", "thing"],
            },
        )
    )
    assert job.scheduled is None
    assert job.thresholds.problems == (
        ("kube-batch-exporter/max-duration", "not a Go duration: 'soon'"),
    )


def test_object_without_uid_is_rejected() -> None:
    with pytest.raises(BadObject):
        project_job({"metadata": {"name": "x"}})
    with pytest.raises(BadObject):
        project_cronjob({})


def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": meta(ownerReferences=[{"kind": "Job", "uid": "job-uid", "controller": True}]),
        "status": {"phase": phase, **status},
    }


@pytest.mark.parametrize(
    ("status", "reason", "exit_code"),
    [
        (
            {
                "containerStatuses": [
                    {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
                ]
            },
            "OOMKilled",
            137,
        ),
        (
            {
                "reason": "Evicted",
                "containerStatuses": [{"state": {"terminated": {"exitCode": 0}}}],
            },
            "Evicted",
            None,
        ),
        (
            {
                "conditions": [
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "PreemptionByScheduler",
                    }
                ]
            },
            "PreemptionByScheduler",
            None,
        ),
        ({}, "Unknown", None),
    ],
)
def test_pod_failure_reason_order(
    status: dict[str, Any], reason: str, exit_code: int | None
) -> None:
    record = project_pod(pod("Failed", **status))
    assert (record.failure_reason, record.exit_code) == (reason, exit_code)


def test_pod_start_and_restarts() -> None:
    record = project_pod(
        pod(
            "Running",
            containerStatuses=[
                {
                    "restartCount": 2,
                    "state": {"running": {"startedAt": "2026-01-01T00:02:00Z"}},
                    "lastState": {
                        "terminated": {"startedAt": "2026-01-01T00:01:00Z", "exitCode": 1}
                    },
                },
                {"restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        )
    )
    assert (record.job_uid, record.restarts, record.first_start, record.failure_reason) == (
        "job-uid",
        3,
        1767225660.0,
        "",
    )


def _written(manager: str, at: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {"manager": manager, "time": at, "fieldsV1": fields, **extra}


SUSPEND: dict[str, Any] = {"f:spec": {"f:suspend": {}}}


@pytest.mark.parametrize(
    ("managed", "expected"),
    [
        # the latest of the managers owning spec.suspend
        (
            [
                _written("kubectl-client-side-apply", "2026-01-01T00:00:00Z", SUSPEND),
                _written("kubectl-patch", "2026-01-03T00:00:00Z", SUSPEND),
            ],
            "2026-01-03T00:00:00Z",
        ),
        # the controller's status writes and other spec fields do not count
        (
            [
                _written("a", "2026-01-02T00:00:00Z", SUSPEND),
                _written("b", "2026-01-05T00:00:00Z", {"f:spec": {"f:schedule": {}}}),
                _written("kcm", "2026-01-06T00:00:00Z", SUSPEND, subresource="status"),
            ],
            "2026-01-02T00:00:00Z",
        ),
        # no owner of the field, or entries not as the API writes them: the creation
        ([_written("b", "2026-01-05T00:00:00Z", {"f:spec": {}})], "2025-12-01T00:00:00Z"),
        ([None, {"fieldsV1": "x"}, _written("c", "garbage", SUSPEND)], "2025-12-01T00:00:00Z"),
        ("not a list", "2025-12-01T00:00:00Z"),
    ],
)
def test_suspend_changed_is_the_latest_write_of_spec_suspend(
    managed: object, expected: str
) -> None:
    cronjob = project_cronjob(
        {
            "metadata": {
                **meta(),
                "creationTimestamp": "2025-12-01T00:00:00Z",
                "managedFields": managed,
            },
            "spec": {"schedule": "@daily", "suspend": True},
        }
    )
    assert cronjob.suspend_changed == parse_timestamp(expected)
