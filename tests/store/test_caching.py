from __future__ import annotations

from typing import Any

import pytest

from exporter.health.state import ErrorKind, Health, Resource
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
        relist.commit()
    assert cache.synced and health[Resource.JOBS].objects == 3

    relist = cache.relist("a")
    relist.add(raw("x", "a"))
    relist.commit()
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
    relist.commit()
    assert recorder.deleted() == ["y"]  # only what the list no longer has
    assert sorted(cache.records) == ["a-x"]


def test_deleting_a_bad_object_removes_it(recorder: Recorder, health: Health) -> None:
    cache = cache_with(recorder, health, project_job)
    cache.upsert(raw("x", active=1))
    cache.delete(bad("x"))
    assert recorder.deleted() == ["x"] and not cache.records
