"""Checkpoints (contract §10): a restart continues every count, and nothing is counted twice.

Each test runs one exporter, takes a checkpoint, changes the cluster as it may change while
no exporter watches, and starts a second exporter from the checkpoint and the new LISTs.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest

from exporter.health.state import ErrorKind
from exporter.metrics import runs, slots
from tests.builders import complete, cronjob, failed, pod, running
from tests.world import Series, World

OWNER = ("namespace", "owner_kind", "owner_name")


class Memory:
    """A backend in memory: what a file or the ConfigMaps would hold."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data

    def __str__(self) -> str:
        return "memory"

    async def read(self) -> bytes | None:
        return self.data

    async def write(self, data: bytes) -> None:
        self.data = data


def exporter(now: float, **settings: Any) -> World:
    settings.setdefault("duration_buckets", (10.0, 60.0, 600.0))
    return World(now=now, **settings)


def checkpoint(w: World, backend: Memory) -> None:
    assert asyncio.run(w.checkpointer(backend).save())


def restart(backend: Memory, now: float, cluster: str = "test-cluster", **kw: Any) -> World:
    w = exporter(now, **kw)
    asyncio.run(w.checkpointer(backend, cluster).restore())
    return w


def history(w: World) -> Series:
    return w.series(runs.HISTORY, identity=OWNER)


def counted(w: World, result: str, reason: str) -> float | None:
    labels = (("reason", reason), ("result", result), ("trigger", "schedule"))
    return history(w).get(("kube_batch_runs_total", labels))


def streak(w: World) -> float | None:
    return history(w).get(("kube_batch_consecutive_failures", ()))


def fail(uid: str, end: float) -> dict[str, Any]:
    return failed(end=end, name=f"backup-{uid}", uid=uid)


def test_a_restart_keeps_the_failure_streak_the_cluster_no_longer_shows() -> None:
    first = exporter(now=1000)
    first.start([cronjob()])
    for i in range(4):
        first.jobs.upsert(running(name=f"backup-f{i}", uid=f"f{i}"))
        first.jobs.upsert(fail(f"f{i}", end=200 + i * 100))
        if i:
            first.jobs.delete(fail(f"f{i - 1}", end=100 + i * 100))  # failedJobsHistoryLimit 1
    assert (counted(first, "failed", "BackoffLimitExceeded"), streak(first)) == (4, 4)
    backend = Memory()
    checkpoint(first, backend)

    second = restart(backend, now=1100)
    second.start([cronjob()], jobs=[fail("f3", end=500)])
    assert (counted(second, "failed", "BackoffLimitExceeded"), streak(second)) == (4, 4)
    assert history(second) == history(first)


def test_runs_that_ended_while_away_are_counted_once_from_what_the_cluster_says() -> None:
    first = exporter(now=1000)
    first.start(
        [cronjob()],
        jobs=[
            complete(end=100, name="backup-old", uid="old"),
            running(name="backup-a", uid="a"),  # finishes while away, still listed
            running(name="backup-b", uid="b"),  # finishes and is deleted while away
            running(name="backup-c", uid="c"),  # deleted, and nothing tells how it ended
        ],
    )
    backend = Memory()
    checkpoint(first, backend)
    assert counted(first, "succeeded", "CompletionsReached") is None  # "old" was before us

    second = restart(backend, now=1200)
    second.start(
        [cronjob(last_success=1150)],
        jobs=[
            complete(end=100, name="backup-old", uid="old"),
            failed(end=1100, name="backup-a", uid="a"),
        ],
    )
    assert counted(second, "failed", "BackoffLimitExceeded") == 1  # a, from its status
    assert counted(second, "succeeded", "Unknown") == 1  # b or c, from lastSuccessfulTime
    assert counted(second, "deleted", "Unknown") == 1  # the other: nothing tells more
    assert counted(second, "succeeded", "CompletionsReached") is None  # old: not news


def test_a_success_known_only_from_the_cronjob_continues_its_usual_reason() -> None:
    # counted by the exporter that was killed after its last checkpoint, then deleted (TTL 0):
    # counted again under "Unknown", the CompletionsReached series would drop, a reset
    first = exporter(now=1000)
    first.start([cronjob()], jobs=[running(name="backup-a", uid="a")])
    first.jobs.upsert(complete(end=990, name="backup-a", uid="a"))
    first.jobs.upsert(running(name="backup-b", uid="b"))
    backend = Memory()
    checkpoint(first, backend)
    first.now += 20
    first.jobs.upsert(complete(end=1010, name="backup-b", uid="b"))
    first.jobs.delete(complete(end=1010, name="backup-b", uid="b"))  # killed right after
    before = history(first)

    second = restart(backend, now=1060)
    second.start([cronjob(last_success=1010)], jobs=[complete(end=990, name="backup-a", uid="a")])
    assert counted(second, "succeeded", "CompletionsReached") == 2
    assert counted(second, "succeeded", "Unknown") is None
    assert {k: v for k, v in history(second).items() if k[0] == "kube_batch_runs_total"} == {
        k: v for k, v in before.items() if k[0] == "kube_batch_runs_total"
    }
    assert streak(second) == 0  # a failed at 1100, before the success at 1150


def test_a_run_counted_after_the_last_checkpoint_is_not_counted_again() -> None:
    first = exporter(now=1000)
    first.start([cronjob()], jobs=[running(name="backup-a", uid="a")])
    backend = Memory()
    checkpoint(first, backend)
    first.now += 20
    first.jobs.upsert(complete(end=1010, name="backup-a", uid="a"))  # then killed: no checkpoint
    before = history(first)

    second = restart(backend, now=1060)
    second.start([cronjob()], jobs=[complete(end=1010, name="backup-a", uid="a")])
    assert history(second) == before
    assert counted(second, "succeeded", "CompletionsReached") == 1


def test_pod_failures_and_restarts_before_the_checkpoint_are_the_baseline() -> None:
    first = exporter(now=1000)
    first.start([cronjob()], jobs=[running(uid="j1")], pods=[pod("p1", phase="Failed")])
    first.pods.upsert(pod("p2", restarts=1))
    first.pods.upsert(pod("p2", restarts=2))
    backend = Memory()
    checkpoint(first, backend)
    live = history(first)
    assert live[("kube_batch_container_restarts_total", ())] == 2

    second = restart(backend, now=1100)
    second.start(
        [cronjob()],
        jobs=[running(uid="j1"), running(name="backup-2", uid="j2")],
        pods=[
            pod("p1", phase="Failed"),  # counted before: not again
            pod("p2", restarts=3),  # one restart while away
            pod("p3", phase="Failed", reason="OOMKilled"),  # failed while away
            pod("p4", job_uid="j2", phase="Failed", reason="OOMKilled"),  # a new Job's pod
        ],
    )
    h = history(second)
    assert h[("kube_batch_container_restarts_total", ())] == 3
    assert h[("kube_batch_pod_failures_total", (("reason", "OOMKilled"),))] == 2
    assert h.get(("kube_batch_pod_failures_total", (("reason", "Error"),))) is None
    assert h.get(("kube_batch_pod_failures_total", (("reason", ""),))) == live.get(
        ("kube_batch_pod_failures_total", (("reason", ""),))
    )


def missed(w: World) -> dict[str, float]:
    return {
        dict(labels)["reason"]: v
        for (name, labels), v in w.series(slots.SLOTS, identity=("namespace", "cronjob")).items()
        if name == "kube_batch_cronjob_missed_schedules_total"
    }


def test_slots_missed_while_away_are_counted_once_from_the_restored_cursor() -> None:
    first = exporter(now=0)
    first.start([cronjob()])
    first.at(660)  # the slots at 300 and 600 had no Job: 300 is missed by now
    assert missed(first)["not_started"] == 1
    backend = Memory()
    checkpoint(first, backend)

    second = restart(backend, now=1560)  # away for 15 minutes: 600, 900, 1200 missed
    second.start([cronjob()])
    second.at(1560)
    assert missed(second)["not_started"] == 4  # without the cursor: 100 back-filled, or 5


def test_the_newest_slot_the_controller_ran_while_away_is_not_missed() -> None:
    first = exporter(now=0)
    first.start([cronjob()])
    backend = Memory()
    checkpoint(first, backend)
    second = restart(backend, now=700)
    second.start([cronjob(last=600)])  # the Job of 600 ran and was deleted while away
    second.at(960)
    assert missed(second)["not_started"] == 1  # 300 only


def test_a_new_series_is_served_at_zero_first_and_a_restored_one_continues() -> None:
    first = exporter(now=1000, new_series_delay=60.0)
    first.start([cronjob()], jobs=[running(uid="a")])
    first.jobs.upsert(complete(end=990, uid="a"))
    assert counted(first, "succeeded", "CompletionsReached") == 0  # born: 0 first
    first.at(1030)
    backend = Memory()
    checkpoint(first, backend)  # the series is 30 s old: still young
    first.at(1060)
    assert counted(first, "succeeded", "CompletionsReached") == 1

    young = restart(backend, now=1040, new_series_delay=60.0)
    young.start([cronjob()], jobs=[complete(end=990, uid="a")])
    assert counted(young, "succeeded", "CompletionsReached") == 0  # young still, not reborn
    young.at(1060)
    assert counted(young, "succeeded", "CompletionsReached") == 1

    checkpoint(first, backend)
    adult = restart(backend, now=1070, new_series_delay=60.0)
    adult.start([cronjob()], jobs=[complete(end=990, uid="a")])
    assert counted(adult, "succeeded", "CompletionsReached") == 1  # at once: no false reset


def test_nothing_is_written_before_every_resource_is_listed() -> None:
    w = exporter(now=1000)
    backend = Memory()
    assert not asyncio.run(w.checkpointer(backend).save())
    assert backend.data is None


def test_a_checkpoint_holds_no_annotation_value() -> None:
    w = exporter(now=1000)
    secretive = running(uid="a")
    secretive["metadata"]["annotations"] = {"kube-batch-exporter/max-duration": "s3cr3t-v4lue"}
    w.start([cronjob()], jobs=[secretive])
    backend = Memory()
    checkpoint(w, backend)
    assert backend.data is not None
    assert b"s3cr3t" not in gzip.decompress(backend.data)


def _content(backend: Memory) -> dict[str, Any]:
    assert backend.data is not None
    content: dict[str, Any] = json.loads(gzip.decompress(backend.data))
    return content


def _pack(content: Any) -> bytes:
    return gzip.compress(json.dumps(content).encode())


@pytest.mark.parametrize(
    ("damage", "cluster"),
    [
        (lambda good: b"garbage", "test-cluster"),
        (lambda good: good[: len(good) // 2], "test-cluster"),  # torn write
        (lambda good: _pack([1, 2, 3]), "test-cluster"),
        (lambda good: _pack({**json.loads(gzip.decompress(good)), "format": 99}), "test-cluster"),
        (lambda good: good, "another-cluster"),
        (
            lambda good: _pack(
                {**json.loads(gzip.decompress(good)), "runs": {"owners": [["ns", 1]]}}
            ),
            "test-cluster",
        ),
        (lambda good: gzip.compress(b"[" * 100000), "test-cluster"),
    ],
    ids=["not-gzip", "torn", "not-an-object", "other-format", "other-cluster", "bad-field", "deep"],
)
def test_an_unusable_checkpoint_is_counted_and_ignored(damage: Any, cluster: str) -> None:
    first = exporter(now=1000)
    first.start([cronjob()], jobs=[running(uid="a")])
    first.jobs.upsert(complete(end=990, uid="a"))
    backend = Memory()
    checkpoint(first, backend)
    assert backend.data is not None
    backend.data = damage(backend.data)

    second = restart(backend, now=1100, cluster=cluster)
    assert second.health.errors[ErrorKind.STATE] == 1
    second.start([cronjob()], jobs=[complete(end=990, uid="a")])
    assert counted(second, "succeeded", "CompletionsReached") is None  # a fresh start
    assert history(second)[("kube_batch_last_run_success", ())] == 1
