from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exporter.health.state import ErrorKind, Health, Resource
from exporter.store import caching
from exporter.store.caching import ObjectCache
from exporter.store.projecting import project_job
from tests.conftest import Recorder, cache_with
from tests.fakeapi import job


def raw(name: str, ns: str = "a", uid: str | None = None, **status: Any) -> dict[str, Any]:
    body = job(name, ns, **status)
    body["metadata"]["uid"] = uid or f"{ns}-{name}"
    return body


def test_relist_of_one_scope_only_deletes_in_that_scope(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job, scopes=("a", "b"))
    for scope, names in (("a", ["x", "y"]), ("b", ["z"])):
        relist = cache.relist(scope)
        for name in names:
            relist.add(raw(name, scope))
        asyncio.run(relist.commit())
    assert cache.synced and health[Resource.JOBS].objects == 3

    relist = cache.relist("a")
    relist.add(raw("x", "a"))
    asyncio.run(relist.commit())
    assert recorder.deleted() == ["y"]
    assert sorted(r.name for r in cache.records.values()) == ["x", "z"]


def test_unchanged_objects_do_not_notify(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x"))
    body = raw("x")
    body["metadata"]["resourceVersion"] = "99"  # not projected: no change for subscribers
    cache.upsert(body)
    assert len(recorder.changes) == 1


def test_delete_applies_the_final_state_first(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x", active=1))
    cache.delete(raw("x", conditions=[{"type": "Complete", "status": "True"}]))
    (_, created), (before, final), (last, gone) = recorder.changes
    assert created.state == "pending"
    assert final.state == "succeeded" and before is created
    assert last is final and gone is None


def test_a_failing_subscriber_does_not_starve_the_others(
    recorder: Recorder,
    health: Health,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache: ObjectCache[Any] = ObjectCache(Resource.JOBS, project_job, health)

    def broken(old: Any, new: Any) -> None:
        raise RuntimeError("bug")

    cache.subscribe(broken)
    cache.subscribe(recorder)
    cache.upsert(raw("x"))
    cache.upsert(raw("x", active=1))  # the same object fails again: counted, not logged again
    assert len(recorder.changes) == 2
    assert +health.errors == {ErrorKind.SUBSCRIBER: 2}
    failures = [r for r in caplog.records if "subscriber" in r.getMessage()]
    assert len(failures) == 1
    assert "broken of jobs failed on 'a-x'" in failures[0].getMessage()


def bad(name: str, ns: str = "a") -> dict[str, Any]:
    return raw(name, ns, active=-1)  # a negative count: what the API could never send


def test_a_bad_object_is_reported_once_and_keeps_its_last_good_record(
    recorder: Recorder, health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x", active=1))
    for _ in range(3):  # the same bad object, event after event
        cache.upsert(bad("x"))
    assert +health.errors == {ErrorKind.BAD_OBJECT: 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["skipping jobs a/x: status.active is not a count: -1"]
    assert cache.records["a-x"].active == 1  # not half-trusted, not forgotten
    cache.upsert(raw("x", active=2))  # fine again ...
    cache.upsert(bad("x"))  # ... and bad again: a new problem, reported again
    assert +health.errors == {ErrorKind.BAD_OBJECT: 2}


def test_a_relist_does_not_take_a_listed_bad_object_for_deleted(
    recorder: Recorder, health: Health
) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x", active=1))
    cache.upsert(raw("y", active=1))
    relist = cache.relist(None)
    relist.add(bad("x"))
    asyncio.run(relist.commit())
    assert recorder.deleted() == ["y"]  # only what the list no longer has
    assert sorted(cache.records) == ["a-x"]


def test_deleting_a_bad_object_removes_it(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x", active=1))
    cache.delete(bad("x"))
    assert recorder.deleted() == ["x"] and not cache.records


async def listed(cache: ObjectCache[Any], scope: str | None, *names: str) -> None:
    relist = cache.relist(scope)
    for name in names:
        relist.add(raw(name, scope or "a"))
    await relist.commit()


def late_follower(cache: ObjectCache[Any]) -> tuple[Recorder, list[int]]:
    """A new subscriber (a new leader's) and the number of changes it had seen at each
    on-synced hook."""
    late, hooks = Recorder(), []
    cache.detach()
    cache.subscribe(late)

    async def hook() -> None:
        hooks.append(len(late.changes))

    cache.on_synced(hook)
    return late, hooks


def names(changes: list[tuple[Any, Any]]) -> list[tuple[str | None, str | None]]:
    return [(o.name if o else None, n.name if n else None) for o, n in changes]


def test_a_late_follower_sees_the_cache_as_a_first_list(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job)
    asyncio.run(listed(cache, None, "x", "y", "z"))
    late, hooks = late_follower(cache)
    asyncio.run(cache.replay())
    assert names(late.changes) == [(None, "x"), (None, "y"), (None, "z")]
    assert hooks == [3]  # once, after every record
    cache.upsert(raw("x", active=1))
    assert names(late.changes[3:]) == [("x", "x")] and len(recorder.changes) == 3  # detached


def test_changes_during_a_replay_reach_the_late_follower_once(
    recorder: Recorder, health: Health, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caching, "REPLAY_BATCH", 2)
    monkeypatch.setattr(caching, "YIELD_AFTER_SECONDS", 60.0)  # yields by count alone
    cache = cache_with(recorder, health, project_job)
    asyncio.run(listed(cache, None, *(f"x{i}" for i in range(6))))
    late, hooks = late_follower(cache)

    async def scenario() -> None:
        replay = asyncio.create_task(cache.replay())
        await asyncio.sleep(0)  # the first batch is told, then the replay yields
        assert names(late.changes) == [(None, "x0"), (None, "x1")]
        cache.upsert(raw("x1", active=1))  # told already: a change
        cache.upsert(raw("x4", active=1))  # not yet: its creation, in its new state
        cache.delete(raw("x5"))  # not yet: never told at all
        await replay

    asyncio.run(scenario())
    assert names(late.changes) == [
        (None, "x0"), (None, "x1"), ("x1", "x1"), (None, "x4"), (None, "x2"), (None, "x3"),
    ]  # fmt: skip
    assert late.changes[3][1].active == 1
    assert hooks == [6]


def test_a_first_list_that_completes_during_a_replay_runs_the_hooks_after_it(
    recorder: Recorder, health: Health, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caching, "REPLAY_BATCH", 1)
    monkeypatch.setattr(caching, "YIELD_AFTER_SECONDS", 60.0)  # yields by count alone
    cache = cache_with(recorder, health, project_job, scopes=("a", "b"))
    asyncio.run(listed(cache, "a", "x", "y", "z"))
    late, hooks = late_follower(cache)

    async def scenario() -> None:
        replay = asyncio.create_task(cache.replay())
        await asyncio.sleep(0)
        await listed(cache, "b", "w")  # the last scope's first LIST: synced now
        assert cache.synced and hooks == []  # not while records are still to be told
        await replay

    asyncio.run(scenario())
    assert hooks == [4] and len(late.changes) == 4


def test_a_relist_commit_yields_to_the_loop_between_batches(
    recorder: Recorder, health: Health, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caching, "REPLAY_BATCH", 2)
    monkeypatch.setattr(caching, "YIELD_AFTER_SECONDS", 60.0)  # yields by count alone
    cache = cache_with(recorder, health, project_job, scopes=("a", "b"))
    asyncio.run(listed(cache, "b", "kept"))
    seen: list[int] = []

    async def scenario() -> None:
        commit = asyncio.create_task(listed(cache, "a", *(f"x{i}" for i in range(5))))
        while not commit.done():
            seen.append(len(recorder.changes))
            cache.upsert(raw("kept", "b", active=len(seen)))  # another scope's watcher goes on
            await asyncio.sleep(0)

    asyncio.run(scenario())
    # "kept" listed; then per turn one "kept" change and a batch of 2 listed records; 3 turns
    assert seen == [1, 4, 7]
    assert sorted(r.name for r in cache.records.values()) == ["kept", *(f"x{i}" for i in range(5))]
    assert cache.synced and health[Resource.JOBS].objects == 6
