"""Slot resolution (contract §4): ran, missed and why, overdue, backfill, exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from exporter.health.state import ErrorKind
from exporter.metrics import slots
from exporter.store import caching
from exporter.store.projecting import project_cronjob
from exporter.track.slots import EARLY_KEEP_SECONDS
from tests.builders import cronjob
from tests.world import T0, Series, World, ts

CRONJOB = ("namespace", "cronjob")


def metrics(w: World) -> Series:
    return w.series(slots.SLOTS, identity=CRONJOB)


def missed(w: World) -> dict[str, float]:
    return {
        dict(labels)["reason"]: v
        for (name, labels), v in metrics(w).items()
        if name == "kube_batch_cronjob_missed_schedules_total"
    }


def overdue(w: World) -> float:
    return metrics(w)[("kube_batch_cronjob_overdue_seconds", ())]


def job(
    slot: float,
    created: float | None = None,
    annotate: bool = True,
    manual: bool = False,
    done: float | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "uid": f"job-{slot}",
        "name": f"backup-{int((T0 + slot) // 60)}",
        "namespace": "ns",
        "creationTimestamp": ts(slot + 1 if created is None else created),
        "ownerReferences": [{"kind": "CronJob", "name": "backup", "controller": not manual}],
    }
    if annotate:
        meta["annotations"] = {"batch.kubernetes.io/cronjob-scheduled-timestamp": ts(slot)}
    status: dict[str, Any] = {"active": 1}
    if done is not None:
        status = {
            "completionTime": ts(done),
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    return {"metadata": meta, "status": status}


NONE = {"not_started": 0.0, "concurrency_forbid": 0.0, "suspended": 0.0}


def test_a_slot_with_a_job_ran_and_its_lag_is_observed() -> None:
    w = World()
    w.start([cronjob()])
    w.at(302).jobs.upsert(job(300, created=302))
    assert overdue(w.at(659)) == 0
    w.at(959)
    assert missed(w) == NONE  # slot 600 can still run until 900 + grace
    assert overdue(w) == 959 - 600  # but it is past its grace with no Job
    m = metrics(w)
    assert m[("kube_batch_cronjob_schedule_lag_seconds_count", ())] == 1
    assert m[("kube_batch_cronjob_schedule_lag_seconds_sum", ())] == 2


def test_slots_without_jobs_are_missed_once_the_next_slot_is_due() -> None:
    w = World()
    w.start([cronjob()])
    w.at(659)  # slot 300: its successor (600) is due only at 600 + grace
    assert missed(w) == NONE
    assert overdue(w) == 659 - 300  # past its grace with no Job
    w.at(660)
    assert missed(w)["not_started"] == 1
    w.at(960)
    w.at(960)  # ticking again decides nothing twice
    assert missed(w)["not_started"] == 2
    assert overdue(w) == 960 - 300
    w.jobs.upsert(job(900))  # the controller is back and runs the newest slot
    assert overdue(w) == 0
    w.at(1260)
    assert missed(w)["not_started"] == 2


def test_forbid_skips_while_a_run_is_active() -> None:
    w = World()
    w.start([cronjob(concurrencyPolicy="Forbid")])
    w.at(301).jobs.upsert(job(300))  # runs past the next slots
    w.at(860).jobs.upsert(job(300, done=850))
    w.at(960)
    assert missed(w) == {**NONE, "concurrency_forbid": 1}  # slot 600
    w.at(1260)  # slot 900: the run had ended at 850
    assert missed(w) == {**NONE, "concurrency_forbid": 1, "not_started": 1}


def test_suspended_slots_are_counted_apart_and_not_overdue() -> None:
    w = World()
    w.start([cronjob()])
    w.at(310).cronjobs.upsert(cronjob(suspend=True))
    assert overdue(w) == 0
    w.at(1000).cronjobs.upsert(cronjob(suspend=False))  # slots 600 and 900 were suspended
    w.at(1260)
    assert missed(w) == {**NONE, "not_started": 1, "suspended": 2}
    assert overdue(w) == 1260 - 300  # slot 300 was missed before the suspension


def test_suspended_at_start_up_covers_earlier_slots() -> None:
    w = World(now=1000)
    w.start([cronjob(suspend=True)])
    w.at(1000)
    assert missed(w) == {**NONE, "suspended": 2}  # 300 and 600 decided, 900 pending


def test_starting_deadline_misses_even_the_newest_slot() -> None:
    w = World()
    w.start([cronjob(startingDeadlineSeconds=10)])
    w.at(370)
    assert missed(w) == NONE
    w.at(371)
    assert missed(w)["not_started"] == 1


def test_backfill_after_start_up_is_capped() -> None:
    w = World(now=60 * 1000, max_missed_backfill=5)
    w.start([cronjob("* * * * *", last=0)])
    w.at(60 * 1000)
    assert missed(w)["not_started"] == 3  # the two newest cannot be decided yet
    w.at(60 * 1000 + 120)
    assert missed(w)["not_started"] == 5


def test_nothing_is_exposed_before_both_lists_completed() -> None:
    w = World(now=1000)
    relist = w.cronjobs.relist(None)
    relist.add(cronjob())
    asyncio.run(relist.commit())
    assert metrics(w) == {}  # a restart must not show 0 before the back-fill
    asyncio.run(w.pods.relist(None).commit())
    asyncio.run(w.jobs.relist(None).commit())
    assert missed(w)["not_started"] == 2


def test_jobs_existing_at_start_up_count_as_ran_without_lag() -> None:
    w = World(now=1000)
    w.start([cronjob(last=300)], jobs=[job(600, annotate=False)])  # name suffix fallback
    w.at(1000)
    m = metrics(w)
    assert missed(w) == NONE
    assert ("kube_batch_cronjob_schedule_lag_seconds_count", ()) not in m


def test_manual_runs_do_not_fill_a_slot() -> None:
    w = World()
    w.start([cronjob()])
    w.jobs.upsert(job(300, manual=True))
    w.at(660)
    assert missed(w)["not_started"] == 1


def test_a_schedule_change_rebases_the_cursor() -> None:
    w = World()
    w.start([cronjob("0 * * * *")])
    w.at(1800).cronjobs.upsert(cronjob("*/5 * * * *"))
    w.at(2460)  # slot 2100 (new schedule) is decided; nothing before the change counts
    assert missed(w)["not_started"] == 1


def test_deleted_job_keeps_its_slot_ran() -> None:
    w = World()
    w.start([cronjob()])
    w.jobs.upsert(job(300, done=310))
    w.jobs.delete(job(300, done=310))  # history limit or TTL, before the slot is decided
    w.at(660)
    assert missed(w) == NONE


def test_only_due_cronjobs_are_looked_at() -> None:
    w = World()
    w.start(
        [
            {
                **cronjob(),
                "metadata": {
                    "uid": f"c{i}",
                    "name": f"cj{i}",
                    "namespace": "ns",
                    "creationTimestamp": ts(0),
                },
                "spec": {"schedule": "*/5 * * * *" if i < 10 else "@daily"},
            }
            for i in range(100)
        ]
    )
    w.now = T0 + 660
    assert w.slots.tick() == 10


def test_an_unusable_schedule_is_reported_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = World()
    w.start([cronjob("0 0 L * *")])
    w.cronjobs.upsert(cronjob("0 0 L * *", suspend=True))  # unrelated change: no new warning
    assert +w.health.errors == {ErrorKind.BAD_SCHEDULE: 1}
    w.cronjobs.upsert(cronjob("0 9 * * *", timeZone="Mars/Base"))
    assert +w.health.errors == {ErrorKind.BAD_SCHEDULE: 2}
    warnings = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
    assert warnings == [
        "CronJob ns/backup: schedule '0 0 L * *' (time zone '') cannot be used: "
        "failed to parse int from 'L'",
        "CronJob ns/backup: schedule '0 9 * * *' (time zone 'Mars/Base') cannot be used: "
        "unknown time zone 'Mars/Base'",
    ]
    assert missed(w.at(3600)) == NONE  # an unusable schedule has no slot to miss


@pytest.mark.timeout(10)
def test_a_negative_starting_deadline_neither_hangs_nor_is_trusted() -> None:
    # once: tick() re-queued a due time in the past forever; the process never answered again
    w = World(now=3605)
    w.start([cronjob(startingDeadlineSeconds=-3600, last=3600)])
    assert +w.health.errors == {ErrorKind.BAD_OBJECT: 1}  # the API could never send it
    # and even a record that holds one (whatever the edge lets through) cannot loop
    record = dataclasses.replace(
        project_cronjob(cronjob(last=3600)), uid="other", name="other", starting_deadline=-3600
    )
    w.slots.cronjob_changed(None, record)
    assert w.at(3606).slots.tick() <= 1
    assert w.at(3900).slots.next_due() is not None


def test_one_cronjob_failing_at_start_up_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World(now=1000)
    backfill = w.slots._backfill_cap

    def broken(state: Any, now: float) -> None:
        if state.cj.name == "bad":
            raise RuntimeError("a bug")
        backfill(state, now)

    monkeypatch.setattr(w.slots, "_backfill_cap", broken)
    bad = cronjob()
    bad["metadata"] = {**bad["metadata"], "uid": "b", "name": "bad"}
    w.start([bad, cronjob()])
    series = w.series(slots.SLOTS)
    missed_by = {
        dict(labels)["cronjob"]: v
        for (name, labels), v in series.items()
        if name == "kube_batch_cronjob_missed_schedules_total"
        and dict(labels)["reason"] == "not_started"
    }
    assert missed_by == {"bad": 0, "backup": 2}  # decided, although "bad" failed before it
    assert +w.health.errors == {ErrorKind.SUBSCRIBER: 1}


def test_a_job_seen_before_its_cronjob_counts_but_waits_only_so_long() -> None:
    w = World()
    w.start([])
    w.at(301).jobs.upsert(job(300))  # the two watches are not ordered: the Job comes first,
    w.jobs.delete(job(300, done=302))  # runs and is gone (TTL 0) before its CronJob arrives
    w.at(305).cronjobs.upsert(cronjob())
    assert missed(w.at(660)) == NONE  # slot 300 ran
    # the Jobs of a CronJob that never appears (deleted with --cascade=orphan) are let go
    w.jobs.upsert(orphan(600))
    assert w.slots._early  # waiting for its CronJob (memory is the point of this test)
    w.at(660 + EARLY_KEEP_SECONDS + 60)
    assert not w.slots._early


def orphan(slot: float) -> dict[str, Any]:
    """A Job of the CronJob "gone", which never appears."""
    body = job(slot)
    body["metadata"]["ownerReferences"][0]["name"] = "gone"
    body["metadata"]["name"] = "gone-" + body["metadata"]["name"].split("-")[1]
    return body


def test_jobs_waiting_for_their_cronjob_are_bounded_and_free_their_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("exporter.track.slots.MAX_EARLY_JOBS", 3)
    w = World()
    w.start([])
    for slot in (300, 360, 420, 480):  # the fourth finds no room
        w.at(slot + 1).jobs.upsert(job(slot))
    assert sum(map(len, w.slots._early.values())) == 3
    w.at(490).cronjobs.upsert(cronjob())  # takes its three: their room is free again
    assert not w.slots._early
    for slot in (540, 600, 660):
        w.at(slot + 1).jobs.upsert(orphan(slot))
    assert sum(map(len, w.slots._early.values())) == 3


def test_cronjobs_the_edge_refuses_leave_the_others_their_back_fill() -> None:
    # once: a status.lastScheduleTime of 9999-12-31 (the status subresource does not validate
    # times) raised in the start-up hook, and no CronJob got its missed slots
    year_9999 = cronjob()
    year_9999["metadata"] = {**year_9999["metadata"], "uid": "x", "name": "x"}
    year_9999["status"]["lastScheduleTime"] = "9999-12-31T23:59:59Z"
    digits = cronjob(startingDeadlineSeconds=int("9" * 401))
    digits["metadata"] = {**digits["metadata"], "uid": "y", "name": "y"}
    w = World(now=1000)
    w.start([year_9999, digits, cronjob()])
    assert missed(w)["not_started"] == 2  # "backup": slots 300 and 600
    assert +w.health.errors == {ErrorKind.BAD_OBJECT: 2}


def test_cronjobs_changed_or_deleted_while_the_start_up_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caching, "REPLAY_BATCH", 1)  # a yield after every CronJob
    monkeypatch.setattr(caching, "YIELD_AFTER_SECONDS", 60.0)  # yields by count alone
    w = World(now=60 * 1000)
    bodies = []
    for name in ("a", "b", "c"):
        body = cronjob("* * * * *", last=0)
        body["metadata"] = {**body["metadata"], "name": name, "uid": name}
        bodies.append(body)

    async def scenario() -> None:
        for cache, items in ((w.cronjobs, bodies), (w.pods, [])):
            listing = cache.relist(None)
            for body in items:
                listing.add(body)
            await listing.commit()
        start_up = asyncio.create_task(w.jobs.relist(None).commit())
        await asyncio.sleep(0)  # "a" is started, then the start-up yields
        w.cronjobs.upsert({**bodies[1], "spec": {**bodies[1]["spec"], "suspend": True}})
        w.cronjobs.delete(bodies[2])
        await start_up

    asyncio.run(scenario())
    by_cronjob: dict[str, float] = {}
    for (name, labels), value in w.series(slots.SLOTS, identity=("namespace",)).items():
        if name == "kube_batch_cronjob_missed_schedules_total":
            cron = dict(labels)["cronjob"]
            by_cronjob[cron] = by_cronjob.get(cron, 0) + value
    assert by_cronjob == {"a": 98, "b": 98}  # b capped like a (100, 2 undecided); c unpublished
