"""Golden exposition text for every state family of contract §2, schedule rows included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as text

from exporter.health.state import Health
from exporter.metrics import state
from exporter.metrics.exposition import Body, RenderedFamilies
from exporter.store.owners import OwnerIndex
from exporter.store.projecting import project_cronjob, project_job
from exporter.store.records import CronJob, Job
from tests.world import World

NOW = 1767225600.0  # 2026-01-01T00:00:00Z


def scrape(renderer: RenderedFamilies[Any]) -> str:
    body = Body()
    asyncio.run(renderer.write(body))
    return body.finish().decode()


def job_renderer(now: float = NOW) -> RenderedFamilies[Job]:
    return RenderedFamilies(state.JOB, Health(), lambda: now)


def cronjob_renderer() -> RenderedFamilies[CronJob]:
    return RenderedFamilies(state.CRONJOB, Health())


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


RUNNING_JOB: dict[str, Any] = {
    "metadata": {
        "uid": "u1",
        "name": "backup-29000000",
        "namespace": "ops",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "ownerReferences": [{"kind": "CronJob", "name": "backup", "controller": True}],
        "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-01-01T00:00:00Z"},
    },
    "spec": {"completions": 10, "parallelism": 3, "backoffLimit": 4, "activeDeadlineSeconds": 600},
    "status": {
        "startTime": "2025-12-31T23:59:00Z",
        "active": 3,
        "ready": 2,
        "succeeded": 4,
        "failed": 1,
        "terminating": 0,
    },
}

ID = 'namespace="ops",job_name="backup-29000000",owner_kind="CronJob",owner_name="backup"'


def test_job_families_golden() -> None:
    renderer = job_renderer()
    renderer.changed(None, project_job(RUNNING_JOB))
    assert series(scrape(renderer)) == [
        f'kube_batch_job_state{{{ID},state="pending"}} 0',
        f'kube_batch_job_state{{{ID},state="running"}} 1',
        f'kube_batch_job_state{{{ID},state="succeeded"}} 0',
        f'kube_batch_job_state{{{ID},state="failed"}} 0',
        f'kube_batch_job_state{{{ID},state="suspended"}} 0',
        f"kube_batch_job_status_active{{{ID}}} 3",
        f"kube_batch_job_status_ready{{{ID}}} 2",
        f"kube_batch_job_status_succeeded{{{ID}}} 4",
        f"kube_batch_job_status_failed{{{ID}}} 1",
        f"kube_batch_job_status_terminating{{{ID}}} 0",
        f"kube_batch_job_spec_completions{{{ID}}} 10",
        f"kube_batch_job_spec_parallelism{{{ID}}} 3",
        f"kube_batch_job_spec_backoff_limit{{{ID}}} 4",
        f"kube_batch_job_spec_active_deadline_seconds{{{ID}}} 600",
        f"kube_batch_job_start_timestamp_seconds{{{ID}}} 1767225540",
        f"kube_batch_job_running_seconds{{{ID}}} 60",
    ]


def test_every_job_family_has_help_and_type_once() -> None:
    text = scrape(job_renderer())
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names)) == 13
    assert all(
        line.split()[3] == "gauge" for line in text.splitlines() if line.startswith("# TYPE")
    )


def test_failed_job_ends_at_failed_condition_and_stops_running() -> None:
    failed = {
        "metadata": {"uid": "u2", "name": "etl", "namespace": "d", "generateName": "etl-"},
        "status": {
            "startTime": "2026-01-01T00:00:00Z",
            "failed": 7,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-01-01T00:10:00Z",
                },
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "lastTransitionTime": "2026-01-01T00:09:00Z",
                },
            ],
        },
    }
    renderer = job_renderer(NOW + 3600)
    renderer.changed(None, project_job(failed))
    lines = series(scrape(renderer))
    ident = 'namespace="d",job_name="etl",owner_kind="Job",owner_name="etl"'
    assert f'kube_batch_job_state{{{ident},state="failed"}} 1' in lines
    assert f"kube_batch_job_end_timestamp_seconds{{{ident}}} 1767226200" in lines
    assert not [line for line in lines if "running_seconds" in line]
    # optional fields absent in the object produce no series at all
    assert not [line for line in lines if "spec_completions" in line or "status_ready" in line]


def test_deleted_job_leaves_no_series() -> None:
    renderer = job_renderer()
    record = project_job(RUNNING_JOB)
    renderer.changed(None, record)
    renderer.changed(record, None)
    assert series(scrape(renderer)) == []


CRONJOB: dict[str, Any] = {
    "metadata": {
        "uid": "c1",
        "name": "backup",
        "namespace": "ops",
        "managedFields": [
            {
                "manager": "kubectl-patch",
                "operation": "Update",
                "time": "2025-12-30T08:00:00Z",
                "fieldsV1": {"f:spec": {"f:suspend": {}}},
            },
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "subresource": "status",
                "time": "2026-01-01T00:00:05Z",
                "fieldsV1": {"f:status": {"f:active": {}}},
            },
        ],
    },
    "spec": {
        "schedule": "*/5 * * * *",
        "timeZone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "suspend": False,
        "startingDeadlineSeconds": 120,
    },
    "status": {
        "active": [{"name": "backup-1"}],
        "lastScheduleTime": "2026-01-01T00:00:00Z",
        "lastSuccessfulTime": "2025-12-31T23:55:30Z",
    },
}


def test_cronjob_families_golden() -> None:
    renderer = cronjob_renderer()
    renderer.changed(None, project_cronjob(CRONJOB))
    cid = 'namespace="ops",cronjob="backup"'
    assert series(scrape(renderer)) == [
        f'kube_batch_cronjob_info{{{cid},schedule="*/5 * * * *",timezone="Europe/Berlin",'
        'concurrency_policy="Forbid"} 1',
        f"kube_batch_cronjob_suspended{{{cid}}} 0",
        f"kube_batch_cronjob_active_jobs{{{cid}}} 1",
        f"kube_batch_cronjob_last_schedule_timestamp_seconds{{{cid}}} 1767225600",
        f"kube_batch_cronjob_starting_deadline_seconds{{{cid}}} 120",
        f"kube_batch_cronjob_schedule_valid{{{cid}}} 1",
        f"kube_batch_cronjob_next_schedule_timestamp_seconds{{{cid}}} 1767225900",
        f"kube_batch_cronjob_schedule_interval_seconds{{{cid}}} 300",
        f"kube_batch_cronjob_suspend_changed_timestamp_seconds{{{cid}}} 1767081600",
    ]


def test_cronjob_with_only_required_fields() -> None:
    renderer = cronjob_renderer()
    renderer.changed(
        None,
        project_cronjob(
            {
                "metadata": {"uid": "c2", "name": "min", "namespace": "x"},
                "spec": {"schedule": "@hourly"},
            }
        ),
    )
    assert series(scrape(renderer)) == [
        'kube_batch_cronjob_info{namespace="x",cronjob="min",schedule="@hourly",timezone="",'
        'concurrency_policy="Allow"} 1',
        'kube_batch_cronjob_suspended{namespace="x",cronjob="min"} 0',
        'kube_batch_cronjob_active_jobs{namespace="x",cronjob="min"} 0',
        'kube_batch_cronjob_schedule_valid{namespace="x",cronjob="min"} 1',
        'kube_batch_cronjob_schedule_interval_seconds{namespace="x",cronjob="min"} 3600',
    ]


def test_finished_retained_counts_per_owner_and_follows_deletions() -> None:
    owners = OwnerIndex(Health())
    retained = RenderedFamilies(state.RETAINED, Health())
    owners.subscribe(retained.changed)

    def job(uid: str, owner: str, finished: bool = True) -> Job:
        status = {"conditions": [{"type": "Complete", "status": "True"}]} if finished else {}
        return project_job(
            {
                "metadata": {
                    "uid": uid,
                    "name": f"{owner}-{uid}",
                    "namespace": "n",
                    "ownerReferences": [{"kind": "CronJob", "name": owner, "controller": True}],
                },
                "status": status,
            }
        )

    a1, a2, b1, b2 = job("1", "a"), job("2", "a"), job("3", "b"), job("4", "b", finished=False)
    for created in (a1, a2, b1, b2):
        owners.job_changed(None, created)
    owners.job_changed(a1, None)
    assert series(scrape(retained)) == [
        'kube_batch_job_finished_retained{namespace="n",owner_kind="CronJob",owner_name="a"} 1',
        'kube_batch_job_finished_retained{namespace="n",owner_kind="CronJob",owner_name="b"} 1',
    ]
    owners.job_changed(b1, None)  # b still has a running Job: no finished one retained
    assert len(series(scrape(retained))) == 1
    assert owners.has_jobs(("n", "CronJob", "b")) and not owners.has_jobs(("n", "CronJob", "x"))
    owners.job_changed(b2, None)
    assert not owners.has_jobs(("n", "CronJob", "b"))


def cronjob(schedule: str, timezone: str = "", suspend: bool = False, **status: str) -> CronJob:
    return project_cronjob(
        {
            "metadata": {
                "uid": "c1",
                "name": "cj",
                "namespace": "ns",
                "creationTimestamp": "2025-12-31T12:00:00Z",
            },
            "spec": {"schedule": schedule, "timeZone": timezone, "suspend": suspend},
            "status": status,
        }
    )


def schedule_values(record: CronJob) -> dict[str, float]:
    renderer = cronjob_renderer()
    renderer.changed(None, record)
    return {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in series(scrape(renderer))
        if "schedule_valid" in line or "next_schedule" in line
    }


NEXT = "kube_batch_cronjob_next_schedule_timestamp_seconds"


def test_next_slot_is_the_controllers_next_after_the_last_schedule_in_its_zone() -> None:
    # 09:00 JST is 00:00Z: the slot after 2026-01-01 09:00 JST is the next day's
    got = schedule_values(
        cronjob("0 9 * * *", "Asia/Tokyo", lastScheduleTime="2026-01-01T00:00:00Z")
    )
    assert got == {"kube_batch_cronjob_schedule_valid": 1, NEXT: NOW + 86400}


def test_next_slot_of_every_follows_the_last_schedule_not_the_clock() -> None:
    # robfig's ConstantDelaySchedule: lastScheduleTime + interval, whatever the time now is
    assert schedule_values(cronjob("@every 90m", lastScheduleTime="2026-01-01T00:00:00Z"))[
        NEXT
    ] == (NOW + 5400)
    # never scheduled: the first slot after creation
    assert schedule_values(cronjob("@every 90m"))[NEXT] == NOW - 12 * 3600 + 5400


def test_next_slot_lies_in_the_past_while_the_controller_is_behind() -> None:
    # last scheduled a day ago on a 5-minute schedule: Next(lastScheduleTime), as the
    # controller and kube-state-metrics compute it, not the next slot after now
    got = schedule_values(cronjob("*/5 * * * *", lastScheduleTime="2025-12-31T00:00:00Z"))
    assert got[NEXT] == NOW - 86400 + 300


@pytest.mark.parametrize(
    ("schedule", "timezone"),
    [("0 0 L * *", ""), ("* * * * * *", ""), ("0 9 * * *", "Mars/Base"), ("0 0 30 2 *", "")],
)
def test_invalid_schedule_or_zone(schedule: str, timezone: str) -> None:
    record = cronjob(schedule, timezone)
    assert record.parsed_schedule is None and record.schedule_error
    assert schedule_values(record) == {"kube_batch_cronjob_schedule_valid": 0}


def test_no_next_slot_while_suspended() -> None:
    assert NEXT not in schedule_values(cronjob("@daily", suspend=True))


def test_a_poisoned_object_never_reaches_a_scrape() -> None:
    # once: a lone surrogate in a namespace failed every scrape until the object went away
    w = World()
    poisoned = {**RUNNING_JOB, "metadata": {**RUNNING_JOB["metadata"], "namespace": "\ud800"}}
    fine = {**RUNNING_JOB, "metadata": {**RUNNING_JOB["metadata"], "uid": "u2"}}
    w.start(jobs=[poisoned, fine])
    for openmetrics, parse in ((False, text), (True, om)):
        body = asyncio.run(w.exporter.exposition.scrape(openmetrics)).decode()
        states = [s for f in parse(body) for s in f.samples if s.name == "kube_batch_job_state"]
        assert {s.labels["namespace"] for s in states} == {"ops"}
