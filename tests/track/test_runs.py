"""Run history: each counting rule driven by recorded event sequences through real caches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exporter.health.state import ErrorKind
from exporter.metrics import runs
from exporter.store.caching import batches
from exporter.track import runs as tracking
from exporter.track.runs import FAILURE_ENDS_KEPT
from tests.builders import complete, failed, job, pod, running
from tests.world import T0, Series, World, relist, ts

OWNER = ("namespace", "owner_kind", "owner_name")


def world(**settings: Any) -> World:
    """An exporter an hour after T0, with small duration buckets."""
    settings.setdefault("duration_buckets", (10.0, 60.0, 600.0))
    return World(now=3600, **settings)


def history(w: World) -> Series:
    return w.series(runs.HISTORY, identity=OWNER)


def value(w: World, name: str, **labels: str) -> float | None:
    return history(w).get((name, tuple(sorted(labels.items()))))


RUN_OK = (
    "kube_batch_runs_total",
    (("reason", "CompletionsReached"), ("result", "succeeded"), ("trigger", "schedule")),
)


def test_a_run_is_counted_once_when_it_completes() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running())
    assert history(w).get(RUN_OK) is None
    w.jobs.upsert(complete())
    w.jobs.upsert(complete())  # duplicate MODIFIED
    relist(w.jobs, [complete()])  # relist after a 410
    w.jobs.delete(complete())  # history limit removes it
    m = history(w)
    assert m[RUN_OK] == 1
    assert m[("kube_batch_run_duration_seconds_count", (("result", "succeeded"),))] == 1
    assert m[("kube_batch_run_duration_seconds_sum", (("result", "succeeded"),))] == 60
    assert (
        m[("kube_batch_run_duration_seconds_bucket", (("le", "60.0"), ("result", "succeeded")))]
        == 1
    )
    assert m[("kube_batch_last_run_success", ())] == 1
    assert m[("kube_batch_last_run_timestamp_seconds", ())] == T0 + 70
    assert m[("kube_batch_last_run_duration_seconds", ())] == 60
    assert m[("kube_batch_consecutive_failures", ())] == 0


def test_interim_condition_alone_is_not_a_finished_run() -> None:
    w = world()
    w.start()
    body = running()
    body["status"]["conditions"] = [
        {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"}
    ]
    w.jobs.upsert(body)
    assert history(w).get(RUN_OK) is None
    w.jobs.upsert(complete())
    assert history(w).get(RUN_OK) == 1


def test_failed_run_ends_at_the_failed_condition_and_counts_failures_in_a_row() -> None:
    w = world()
    w.start()
    for i, end in enumerate((130, 190)):
        w.jobs.upsert(running(uid=f"f{i}", name=f"b-{i}"))
        w.jobs.upsert(failed(end=end, uid=f"f{i}", name=f"b-{i}"))
    m = history(w)
    assert (
        m[
            (
                "kube_batch_runs_total",
                (("reason", "BackoffLimitExceeded"), ("result", "failed"), ("trigger", "schedule")),
            )
        ]
        == 2
    )
    assert m[("kube_batch_run_duration_seconds_sum", (("result", "failed"),))] == 120 + 180
    assert m[("kube_batch_consecutive_failures", ())] == 2
    assert m[("kube_batch_last_run_success", ())] == 0
    w.jobs.upsert(running(uid="ok", name="b-ok"))
    w.jobs.upsert(complete(end=300, uid="ok", name="b-ok"))
    assert value(w, "kube_batch_consecutive_failures") == 0
    assert value(w, "kube_batch_last_success_timestamp_seconds") == T0 + 300


def finish(w: World, uid: str, outcome: str, end: float) -> None:
    body = (
        complete(end=end, uid=uid, name=uid)
        if outcome == "ok"
        else failed(end=end, uid=uid, name=uid)
    )
    w.jobs.upsert(running(uid=uid, name=uid))
    w.jobs.upsert(body)


def last_and_streak(w: World) -> tuple[float | None, float | None]:
    return value(w, "kube_batch_last_run_success"), value(w, "kube_batch_consecutive_failures")


def test_a_success_seen_late_resets_only_the_failures_that_ended_before_it() -> None:
    # The Job controller stamps end times before its throttled status writes, so Jobs of one
    # owner can arrive out of end-time order: here the success that ended first arrives second.
    w = world()
    w.start()
    finish(w, "f1", "failed", end=160)
    finish(w, "ok", "ok", end=100)
    for i, end in enumerate((220, 280, 340, 400), start=2):
        finish(w, f"f{i}", "failed", end=end)
    assert last_and_streak(w) == (0, 5)  # five failures ended after the success


def test_a_failure_seen_late_does_not_count_after_a_later_success() -> None:
    w = world()
    w.start()
    finish(w, "ok", "ok", end=300)
    finish(w, "f", "failed", end=200)  # ended before the success, arrived after it
    assert last_and_streak(w) == (1, 0)  # the latest run succeeded: no failure streak
    finish(w, "g", "failed", end=300)  # the same second as the success, seen after it
    assert last_and_streak(w) == (0, 1)


def test_a_long_failure_streak_keeps_bounded_state_and_counts_exactly() -> None:
    w = world()
    w.start()
    for i in range(FAILURE_ENDS_KEPT + 20):
        finish(w, f"f{i}", "failed", end=200 + i)
    h = w.runs.histories[("ns", "CronJob", "backup")]
    assert len(h.failure_ends) == FAILURE_ENDS_KEPT
    assert last_and_streak(w) == (0, FAILURE_ENDS_KEPT + 20)
    # a success seen late, while the failures kept span its end time: exact again
    last = 200 + FAILURE_ENDS_KEPT + 19
    finish(w, "ok", "ok", end=last - 30)
    assert value(w, "kube_batch_consecutive_failures") == 30
    finish(w, "ok2", "ok", end=10_000)
    assert last_and_streak(w) == (1, 0)


def test_jobs_finished_before_start_up_feed_last_gauges_only() -> None:
    w = world()
    # listed in an arbitrary order; by end time: fail(100), success(200), fail(300)
    w.start(
        jobs=[
            failed(end=300, uid="c", name="c"),
            complete(end=200, uid="b", name="b"),
            failed(end=100, uid="a", name="a"),
        ]
    )
    m = history(w)
    assert not [
        k for k in m if k[0] in ("kube_batch_runs_total", "kube_batch_run_duration_seconds_count")
    ]
    assert m[("kube_batch_last_run_timestamp_seconds", ())] == T0 + 300
    assert m[("kube_batch_last_run_success", ())] == 0
    assert m[("kube_batch_last_success_timestamp_seconds", ())] == T0 + 200
    assert m[("kube_batch_consecutive_failures", ())] == 1


def test_the_start_up_replay_renders_each_history_once() -> None:
    # rendered once per Job, 30,000 finished Jobs of 3,000 owners were most of the L sync
    w = world()
    renders: list[float | None] = []
    w.runs.subscribe(lambda old, new: renders.append(new.last_run if new else None))
    w.start(jobs=[complete(end=100 * i, uid=f"u{i}", name=f"backup-{i}") for i in range(1, 11)])
    assert renders == [None, T0 + 1000]  # created, then its ten Jobs replayed
    assert value(w, "kube_batch_last_run_timestamp_seconds") == T0 + 1000


def test_an_owner_forgotten_while_the_replay_yields_is_not_rendered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    gone = complete(uid="a", name="a-1", owner="a")
    calls = 0

    async def forgetting(items: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the Jobs are replayed, their histories not yet rendered
            w.jobs.delete(gone)
            w.runs.forget_idle()  # idle from now
            w.now += 7 * 86400
            assert w.runs.forget_idle() == 1
        async for item in batches(items):
            yield item

    monkeypatch.setattr(tracking, "batches", forgetting)
    w.start(jobs=[gone, complete(uid="b", name="b-1", owner="b")])
    owners = {dict(labels)["owner_name"] for _, labels in w.series(runs.HISTORY)}
    assert owners == {"b"}


def test_restart_does_not_count_again() -> None:
    first = world()
    first.start(jobs=[running()])
    first.jobs.upsert(complete())
    assert history(first).get(RUN_OK) == 1
    second = world()  # the exporter restarted: the Job is still stored, already finished
    second.start(jobs=[complete()])
    assert history(second).get(RUN_OK) is None
    assert value(second, "kube_batch_last_run_success") == 1


def test_a_job_that_finished_and_vanished_within_one_event_is_counted() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running())
    w.jobs.delete(complete())  # TTL 0: only the DELETED event shows the final state
    assert history(w).get(RUN_OK) == 1
    assert (
        value(
            w,
            "kube_batch_runs_total",
            reason="DeletedWhileActive",
            result="deleted",
            trigger="schedule",
        )
        is None
    )


def deleted(w: World, reason: str, trigger: str = "schedule") -> float | None:
    return value(w, "kube_batch_runs_total", reason=reason, result="deleted", trigger=trigger)


def with_cronjob(policy: str) -> World:
    w = world()
    cronjob = {
        "metadata": {"name": "backup", "namespace": "ns", "uid": "cj"},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": policy},
    }
    w.start(cronjobs=[cronjob])
    w.jobs.upsert(running())
    return w


def test_a_run_deleted_unfinished_is_counted_once_with_its_duration() -> None:
    w = with_cronjob("Allow")
    w.now = T0 + 40
    relist(w.jobs, [])  # deleted while our watch was broken: the relist diff reports it
    m = history(w)
    assert deleted(w, "DeletedWhileActive") == 1
    assert m[("kube_batch_run_duration_seconds_sum", (("result", "deleted"),))] == 30
    assert m[("kube_batch_consecutive_failures", ())] == 0


def test_replace_counts_replaced_when_the_controller_creates_the_next_run() -> None:
    w = with_cronjob("Replace")
    w.now = T0 + 60
    w.jobs.delete(running())  # the controller deletes the active run at the next slot ...
    assert deleted(w, "Replaced") is None  # ... which is not known yet
    w.at(60.2).jobs.upsert(running(uid="j2", name="backup-2"))  # ... and creates its Job
    assert deleted(w, "Replaced") == 1
    w.at(200)
    assert deleted(w, "DeletedWhileActive") is None


def test_replace_counts_replaced_when_a_relist_shows_both() -> None:
    w = with_cronjob("Replace")
    w.now = T0 + 60
    relist(w.jobs, [running(uid="j2", name="backup-2")])  # both happened during a 410 gap
    assert deleted(w, "Replaced") == 1


def test_replace_a_person_deleting_a_run_is_not_a_replacement() -> None:
    w = with_cronjob("Replace")
    w.at(15).jobs.delete(running())  # kubectl delete, 5 s into the run: no new Job follows
    w.at(25)
    assert deleted(w, "Replaced") is None and deleted(w, "DeletedWhileActive") is None
    w.at(25.1)  # the window has passed
    assert deleted(w, "DeletedWhileActive") == 1
    w.at(60).jobs.upsert(running(uid="j2", name="backup-2"))  # the next slot's run, much later
    assert deleted(w, "Replaced") is None and deleted(w, "DeletedWhileActive") == 1
    assert history(w)[("kube_batch_run_duration_seconds_sum", (("result", "deleted"),))] == 5


def test_replace_never_replaces_a_manual_run() -> None:
    w = with_cronjob("Replace")
    w.jobs.upsert(running(uid="m", name="backup-manual", manual=True))
    w.jobs.delete(running(uid="m", name="backup-manual", manual=True))
    assert deleted(w, "DeletedWhileActive", trigger="manual") == 1


def test_manual_runs_count_for_the_cronjob_and_its_last_success() -> None:
    w = world()
    w.start(
        cronjobs=[
            {
                "metadata": {"name": "backup", "namespace": "ns", "uid": "cj"},
                "spec": {"schedule": "@daily"},
                "status": {"lastSuccessfulTime": ts(5)},
            }
        ]
    )
    w.jobs.upsert(running(name="backup-manual-x", manual=True))
    w.jobs.upsert(complete(end=500, name="backup-manual-x", manual=True))
    assert (
        value(
            w,
            "kube_batch_runs_total",
            reason="CompletionsReached",
            result="succeeded",
            trigger="manual",
        )
        == 1
    )
    assert w.series(runs.CRONJOB_SUCCESS) == {
        (
            "kube_batch_cronjob_last_success_timestamp_seconds",
            (("cronjob", "backup"), ("namespace", "ns")),
        ): 1767226100
    }


def test_pod_failures_restarts_and_retries() -> None:
    w = world()
    w.start(jobs=[running()], pods=[pod("old", phase="Failed", reason="Error")])
    assert value(w, "kube_batch_pod_failures_total", reason="Error") is None  # before start-up
    for uid in ("p1", "p2"):
        w.pods.upsert(pod(uid))
        w.pods.upsert(pod(uid, phase="Failed", reason="OOMKilled"))
        w.pods.upsert(pod(uid, phase="Failed", reason="OOMKilled"))  # duplicate
    w.pods.upsert(pod("p3", restarts=2))
    w.pods.upsert(pod("p3", restarts=3))
    w.pods.delete(pod("p3", restarts=3))
    assert value(w, "kube_batch_pod_failures_total", reason="OOMKilled") == 2
    assert value(w, "kube_batch_container_restarts_total") == 3
    w.jobs.upsert(complete())  # status.failed=0 here, so retries are the restarts
    assert value(w, "kube_batch_run_retries_sum") == 3
    assert value(w, "kube_batch_run_retries_bucket", le="3.0") == 1


def test_pods_listed_before_their_jobs_are_still_the_start_up_baseline() -> None:
    w = world()
    relist(w.cronjobs, [])
    relist(w.pods, [pod("old", phase="Failed", reason="Error", restarts=2)])  # Pod LIST first
    relist(w.jobs, [running()])  # its Job arrives after the Pod LIST completed
    assert value(w, "kube_batch_pod_failures_total", reason="Error") is None
    assert value(w, "kube_batch_container_restarts_total") == 0
    w.pods.upsert(pod("new", phase="Failed", reason="OOMKilled"))
    assert value(w, "kube_batch_pod_failures_total", reason="OOMKilled") == 1


def test_start_delay_is_observed_once_per_run_even_out_of_order() -> None:
    w = world()
    w.start()
    w.pods.upsert(pod("p1", started=None))
    w.pods.upsert(pod("p1", started=7))  # arrives before its Job: parked
    assert value(w, "kube_batch_run_start_delay_seconds_count") is None
    w.jobs.upsert(running())
    w.pods.upsert(pod("p2", started=50))  # a later pod of the same run
    assert value(w, "kube_batch_run_start_delay_seconds_count") == 1
    assert value(w, "kube_batch_run_start_delay_seconds_sum") == 7


def test_owner_cap_and_forgetting() -> None:
    w = world(max_owners=1, forget_owners_after=600)
    w.start()
    w.jobs.upsert(running(uid="a", name="a", owner="first"))
    w.jobs.upsert(running(uid="b", name="b", owner="second"))
    w.jobs.upsert(running(uid="c", name="c", owner="second"))
    assert w.health.owners_dropped == 1
    assert list(w.runs.histories) == [("ns", "CronJob", "first")]
    w.jobs.delete(running(uid="a", name="a", owner="first"))
    assert w.runs.forget_idle() == 0  # idle from now on
    w.now += 599
    assert w.runs.forget_idle() == 0
    w.now += 1
    assert w.runs.forget_idle() == 1
    assert history(w) == {}


def test_thresholds_from_annotations_and_one_warning_per_bad_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world()
    cronjob = {
        "metadata": {
            "name": "backup",
            "namespace": "ns",
            "uid": "cj",
            "annotations": {
                "kube-batch-exporter/max-duration": "45m",
                "kube-batch-exporter/max-consecutive-failures": "three",
                "kube-batch-exporter/alerts": "off",
                "unrelated/secret": "hunter2",
            },
        },
        "spec": {"schedule": "@daily"},
    }
    w.start(cronjobs=[cronjob])
    w.cronjobs.upsert({**cronjob, "status": {"active": [{}]}})  # unrelated change
    m = history(w)
    assert m[("kube_batch_alert_threshold", (("threshold", "max_duration_seconds"),))] == 2700
    assert m[("kube_batch_alert_threshold", (("threshold", "alerts_off"),))] == 1
    assert ("kube_batch_alert_threshold", (("threshold", "max_consecutive_failures"),)) not in m
    assert w.health.errors[ErrorKind.BAD_ANNOTATION] == 1
    assert len([r for r in caplog.records if "max-consecutive-failures" in r.getMessage()]) == 1
    assert "hunter2" not in caplog.text and "three" not in str(m)


def test_counters_render_openmetrics_headers() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running())
    w.jobs.upsert(complete())
    text = asyncio.run(w.exporter.exposition.scrape(openmetrics=True)).decode()
    assert "# TYPE kube_batch_runs counter" in text
    assert "# TYPE kube_batch_run_duration_seconds histogram" in text


def test_duration_excludes_time_suspended_before_the_resume() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running())  # started at +10
    suspended = running()
    suspended["spec"]["suspend"] = True
    w.jobs.upsert(suspended)
    resumed = job(startTime=ts(40), active=1)  # Kubernetes resets startTime on resume
    w.jobs.upsert(resumed)
    w.jobs.upsert(
        complete(end=70) | {"status": {**complete(end=70)["status"], "startTime": ts(40)}}
    )
    assert value(w, "kube_batch_run_duration_seconds_sum", result="succeeded") == 30


def test_jobs_managed_by_another_controller_are_still_counted() -> None:
    w = world()
    w.start()
    body = running(owner=None, name="mk-1")
    body["metadata"]["generateName"] = "mk-"
    body["spec"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    w.jobs.upsert(body)
    done = complete(owner=None, name="mk-1")
    done["metadata"]["generateName"] = "mk-"
    done["spec"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    w.jobs.upsert(done)
    assert (
        value(
            w,
            "kube_batch_runs_total",
            reason="CompletionsReached",
            result="succeeded",
            trigger="direct",
        )
        == 1
    )
    assert list(w.runs.histories) == [("ns", "Job", "mk")]


def test_a_pod_with_an_absurd_restart_count_loses_only_itself() -> None:
    # once: the Pod's OverflowError kept its owner's valid failed run from last_run_success
    w = world()
    w.start()
    w.jobs.upsert(running())
    huge = pod("p1", restarts=int("9" * 401))
    w.pods.upsert(huge)
    w.jobs.upsert(failed())
    assert last_and_streak(w) == (0, 1)
    assert +w.health.errors == {ErrorKind.BAD_OBJECT: 1}


def test_one_job_failing_at_start_up_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = world()
    set_last = w.runs._set_last

    def broken(h: Any, job: Any, *rest: Any) -> None:
        if job.uid == "bad":
            raise RuntimeError("a bug")
        set_last(h, job, *rest)

    monkeypatch.setattr(w.runs, "_set_last", broken)
    w.start(jobs=[failed(end=100, uid="bad", name="bad"), complete(end=200, uid="ok", name="ok")])
    assert value(w, "kube_batch_last_success_timestamp_seconds") == T0 + 200
    assert +w.health.errors == {ErrorKind.SUBSCRIBER: 1}


def test_the_latest_run_names_its_job_and_why_its_pods_failed() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running(name="backup-1", uid="j1"))
    for i, reason in enumerate(("OOMKilled", "OOMKilled", "Error")):
        w.pods.upsert(pod(uid=f"p{i}", job_uid="j1", phase="Failed", reason=reason))
    w.jobs.upsert(failed(end=130, name="backup-1", uid="j1"))
    info = {k: v for k, v in history(w).items() if k[0] == "kube_batch_last_run_info"}
    assert info == {
        (
            "kube_batch_last_run_info",
            (("exit_code", "1"), ("job_name", "backup-1"), ("pod_reason", "OOMKilled"),
             ("reason", "BackoffLimitExceeded"), ("result", "failed")),
        ): 1.0
    }  # fmt: skip
    w.jobs.upsert(running(name="backup-2", uid="j2"))
    w.jobs.upsert(complete(end=200, name="backup-2", uid="j2"))
    (labels,) = [dict(k[1]) for k in history(w) if k[0] == "kube_batch_last_run_info"]
    assert labels == {"exit_code": "", "job_name": "backup-2", "pod_reason": "",
                      "reason": "CompletionsReached", "result": "succeeded"}  # fmt: skip


def test_the_latest_run_counts_its_failed_pod_attempts() -> None:
    w = world()
    w.start()
    w.jobs.upsert(running(name="backup-1", uid="j1"))
    for i in range(3):
        w.pods.upsert(pod(uid=f"p{i}", job_uid="j1", phase="Failed", reason="Error"))
    w.jobs.upsert(failed(end=130, name="backup-1", uid="j1"))
    assert value(w, "kube_batch_last_run_failed_pods") == 3
    w.jobs.upsert(running(name="backup-2", uid="j2"))
    w.jobs.upsert(complete(end=200, name="backup-2", uid="j2"))
    assert value(w, "kube_batch_last_run_failed_pods") == 0
