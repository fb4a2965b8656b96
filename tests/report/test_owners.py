"""Owner statuses (contract §12): from the records the metrics come from, problems first."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from exporter.cron.words import describe
from exporter.metrics import runs, slots
from exporter.report.owners import OwnerStatus, as_json, failing, known, owners
from tests.builders import complete, cronjob, failed, job, pod, running
from tests.world import World

OWNER = ("namespace", "owner_kind", "owner_name")


def statuses(w: World) -> list[OwnerStatus]:
    return owners(w.runs, w.slots, w.now)


def fail(i: int, end: float, **kw: Any) -> dict[str, Any]:
    return failed(end=end, name=f"backup-{i}", uid=f"f{i}", **kw)


def test_every_value_is_the_one_the_metrics_show() -> None:
    w = World(now=0)
    w.start([cronjob("* * * * *")])
    for i in range(3):
        w.jobs.upsert(running(name=f"backup-{i}", uid=f"f{i}"))
        w.pods.upsert(pod(uid=f"p{i}", job_uid=f"f{i}", phase="Failed", reason="OOMKilled"))
        w.jobs.upsert(fail(i, end=100 + i))
    w.jobs.upsert(job(name="adhoc-1", uid="a1", owner=None, **complete()["status"]))
    w.at(400)  # minutes pass with no Job: slots missed, overdue
    (cron,) = [o for o in statuses(w) if o.kind == "CronJob"]
    series = w.series(runs.HISTORY, slots.SLOTS)

    def metric(name: str, **labels: str) -> float:
        return sum(
            v for (n, ls), v in series.items() if n == name and labels.items() <= dict(ls).items()
        )

    assert cron.consecutive_failures == metric("kube_batch_consecutive_failures") == 3
    assert cron.runs == {"failed": 3}
    assert cron.runs["failed"] == metric("kube_batch_runs_total", owner_name="backup")
    missed = metric("kube_batch_cronjob_missed_schedules_total", cronjob="backup")
    assert sum(cron.missed.values()) == missed > 0
    assert cron.overdue_seconds == metric("kube_batch_cronjob_overdue_seconds") > 0
    assert cron.problems == ("failing", "overdue", "last run failed")
    assert [r.pod_failures for r in cron.recent] == [(("OOMKilled", 1, 1),)] * 3  # exit 1
    assert [r.job_name for r in cron.recent] == ["backup-2", "backup-1", "backup-0"]  # newest first
    assert cron.schedule_in_words == "every minute" and cron.time_zone == "UTC"
    assert cron.next_run == w.now // 60 * 60 + 60
    assert failing(statuses(w)) == [cron]


def test_problems_come_first_and_healthy_owners_are_not_failing() -> None:
    w = World(now=0)
    w.start([cronjob()])
    w.jobs.upsert(job(name="adhoc-1", uid="a1", owner=None, **complete()["status"]))
    w.jobs.upsert(fail(1, end=100))
    ordered = statuses(w)
    assert [(o.kind, o.name, o.problems) for o in ordered] == [
        ("CronJob", "backup", ("last run failed",)),  # one failure of three allowed
        ("Job", "adhoc-1", ()),
    ]
    assert failing(ordered) == []  # a last failure alone does not fail `report`
    assert ordered[1].schedule is None and ordered[1].next_run is None


def test_the_latest_runs_are_bounded_and_survive_a_restart_from_the_cluster() -> None:
    w = World(now=0, runs_kept=3)
    w.start([cronjob()])
    for i in range(5):
        w.jobs.upsert(running(name=f"backup-{i}", uid=f"f{i}"))
        w.jobs.upsert(fail(i, end=100 + i))
    (cron,) = statuses(w)
    assert [r.job_name for r in cron.recent] == ["backup-4", "backup-3", "backup-2"]

    fresh = World(now=200)  # a restart without a checkpoint: the Jobs still listed
    fresh.start([cronjob()], jobs=[fail(3, end=103), fail(4, end=104)])
    (again,) = statuses(fresh)
    assert [r.job_name for r in again.recent] == ["backup-4", "backup-3"]
    assert again.runs == {}  # shown, not counted


def test_schedules_in_words_only_for_the_forms_it_knows() -> None:
    assert describe("*/15 * * * *") == "every 15 minutes"
    assert describe("5 * * * *") == "hourly at :05"
    assert describe("30 2 * * *") == "daily at 02:30"
    assert describe("0 9 * * 1") == "Mondays at 09:00"
    assert describe("@daily") == "daily"
    assert describe("0 9 1 * *") == "0 9 1 * *"  # not paraphrased: shown as written
    assert describe("0 9-17 * * 1-5") == "0 9-17 * * 1-5"


def test_the_json_is_every_field_of_the_status() -> None:
    w = World(now=0)
    w.start([cronjob()])
    w.jobs.upsert(running(name="backup-1", uid="f1"))
    w.pods.upsert(pod(uid="p1", job_uid="f1", phase="Failed", reason="OOMKilled"))
    w.jobs.upsert(fail(1, end=100))
    (cron,) = statuses(w)
    data = as_json(cron)
    assert json.dumps(data) == json.dumps(dataclasses.asdict(cron))  # the same JSON
    assert json.loads(json.dumps(data))["recent"][0]["pod_failures"] == [["OOMKilled", 1, 1]]


def test_missed_slots_are_those_counted_in_the_last_24_hours() -> None:
    w = World(now=0)
    w.start([cronjob("0 12 * * *")])
    w.at(2 * 86400)  # day 0's noon is missed once day 1's has passed
    w.at(3 * 86400 + 3600)  # and day 1's, once day 2's has
    (cron,) = statuses(w)
    total = w.series(slots.SLOTS).get(
        ("kube_batch_cronjob_missed_schedules_total", (("cronjob", "backup"), ("namespace", "ns"),
                                                       ("reason", "not_started")))
    )  # fmt: skip
    assert total == 2 and cron.missed == {"not_started": 1}  # the metric counts both


def test_known_is_exactly_the_owners_listed() -> None:
    w = World(now=0)
    w.start([cronjob("* * * * *")])  # ns/backup, no run yet
    w.jobs.upsert(job(name="adhoc-1", uid="a1", owner=None, **complete()["status"]))
    listed = {(o.namespace, o.kind, o.name) for o in statuses(w)}
    assert listed == {("ns", "CronJob", "backup"), ("ns", "Job", "adhoc-1")}
    assert all(known(w.runs, w.slots, key) for key in listed)
    unknown = [
        ("ns", "Job", "backup"),
        ("ns", "CronJob", "adhoc-1"),
        ("other", "CronJob", "backup"),
        ("ns", "Deployment", "backup"),
    ]
    for key in unknown:
        assert not known(w.runs, w.slots, key), key
