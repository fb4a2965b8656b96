"""Each clause of the list+watch contract, proven against the fault-injecting fake server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from exporter.app.settings import Settings
from exporter.health.state import ErrorKind, Health, Resource, RestartReason
from exporter.kube.connecting import Connection
from exporter.kube.watching import Backoff, Endpoint, Watcher
from exporter.store.caching import ObjectCache
from exporter.store.projecting import project_job
from tests.conftest import Recorder, cache_with
from tests.fakeapi import CLOSE, TEAR, FakeApiServer, Fault, job

JOBS = Endpoint(Resource.JOBS, "/apis/batch/v1")
DEFAULTS = Settings()


class Sleeps:
    """Replaces asyncio.sleep in the watcher: records each requested delay, sleeps none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def run_watcher(connection: Connection, health: Health) -> AsyncIterator[Callable[..., Any]]:
    tasks: list[asyncio.Task[None]] = []
    sessions = []

    async def start(cache: ObjectCache[Any], endpoint: Endpoint = JOBS, **kw: Any) -> Watcher:
        session = connection.session()
        sessions.append(session)
        options: dict[str, Any] = {
            "namespace": None,
            "field_selector": None,
            "page_size": 3,
            "list_timeout": DEFAULTS.list_timeout,
            "watch_timeout": DEFAULTS.watch_timeout,
            "inactivity_timeout": DEFAULTS.watch_inactivity_timeout,
            "backoff": Backoff(DEFAULTS.backoff_base, DEFAULTS.backoff_cap),
        }
        watcher = Watcher(
            endpoint,
            cache,
            session=session,
            connection=connection,
            health=health,
            **(options | kw),
        )
        tasks.append(asyncio.create_task(watcher.run()))
        return watcher

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for session in sessions:
        await session.close()


@pytest.fixture
def watched(
    fake_api: FakeApiServer, run_watcher: Any, recorder: Recorder, health: Health
) -> Callable[..., Awaitable[ObjectCache[Any]]]:
    """Start a jobs watcher on a fresh cache and wait until its watch stream is open."""

    async def start(**kw: Any) -> ObjectCache[Any]:
        cache = cache_with(recorder, health, project_job)
        await run_watcher(cache, **kw)
        await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 1)
        return cache

    return start


def names(cache: ObjectCache[Any]) -> set[str]:
    return {r.name for r in cache.records.values()}


async def test_paginated_list_then_watch_from_list_version(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    for i in range(7):
        fake_api.add("jobs", job(f"j{i}"))
    list_version = str(fake_api.rv)
    cache = await watched()

    lists = [q for p, v, q in fake_api.requests if v == "list"]
    assert [q.get("continue") for q in lists] == [None, "3", "6"]
    assert all(q["limit"] == "3" for q in lists)
    watch = next(q for p, v, q in fake_api.requests if v == "watch")
    assert watch["resourceVersion"] == list_version
    assert watch["allowWatchBookmarks"] == "true"
    assert 300 <= int(watch["timeoutSeconds"]) <= 330
    assert names(cache) == {f"j{i}" for i in range(7)}
    assert cache.synced and health[Resource.JOBS].synced

    fake_api.add("jobs", job("late"))
    await recorder.wait_for(lambda: "late" in names(cache))


async def test_bookmark_moves_version_only(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    fake_api.add("jobs", job("a"))
    await watched()
    changes = len(recorder.changes)

    fake_api.rv += 50  # other resources moved on
    fake_api.bookmark("jobs")
    fake_api.send("jobs", CLOSE)  # the server ends the watch: re-watch from the bookmark
    await fake_api.changed.wait_for(lambda: fake_api.count("jobs", "watch") == 2)

    second = [q for p, v, q in fake_api.requests if v == "watch"][1]
    assert second["resourceVersion"] == str(fake_api.rv)
    assert len(recorder.changes) == changes
    assert fake_api.count("jobs", "list") == 1  # a normal end is not a relist
    assert health[Resource.JOBS].events["BOOKMARK"] == 1


@pytest.mark.parametrize("how", ["http-status", "in-stream-error"])
async def test_410_relists_and_deletes_what_vanished_in_the_gap(
    how: str, fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    keep = fake_api.add("jobs", job("keep"))
    gone = fake_api.add("jobs", job("gone"))
    cache = await watched()

    fake_api.remove_silently("jobs", gone["metadata"]["uid"])
    keep["status"] = {"active": 1}
    fake_api.objects["jobs"][keep["metadata"]["uid"]] = keep
    fake_api.compact("jobs")
    if how == "http-status":
        fake_api.send("jobs", CLOSE)  # re-watch from an old version -> HTTP 410
    else:
        fake_api.send(
            "jobs",
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 410,
                    "reason": "Expired",
                    "message": "too old",
                },
            },
        )

    await recorder.wait_for(lambda: "gone" in recorder.deleted())
    assert names(cache) == {"keep"}
    assert next(iter(cache.records.values())).active == 1  # relist also updated survivors
    assert fake_api.count("jobs", "list") == 2
    assert health[Resource.JOBS].relists == 1
    assert health[Resource.JOBS].restarts[RestartReason.GONE] == 1


async def test_expired_continue_token_restarts_the_list(
    fake_api: FakeApiServer, run_watcher: Any, recorder: Recorder, health: Health
) -> None:
    for i in range(5):
        fake_api.add("jobs", job(f"j{i}"))
    cache = cache_with(recorder, health, project_job)

    # The first page succeeds, the continuation is refused with 410: list again from scratch.
    original = fake_api._list
    calls = {"n": 0}

    def flaky(plural: str, request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            from aiohttp import web

            return web.json_response({"code": 410, "reason": "Expired"}, status=410)
        return original(plural, request)

    fake_api._list = flaky  # type: ignore[method-assign]
    await run_watcher(cache)
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 1)
    continues = [q.get("continue") for p, v, q in fake_api.requests if v == "list"]
    assert continues == [None, "3", None, "3"]
    assert names(cache) == {f"j{i}" for i in range(5)}


async def test_a_list_body_that_is_not_json_is_a_failed_request(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    fake_api.add("jobs", job("a"))
    original = fake_api._list
    calls = {"n": 0}

    def garbage_once(plural: str, request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            from aiohttp import web

            return web.Response(text='{"items": [', content_type="application/json")
        return original(plural, request)

    fake_api._list = garbage_once  # type: ignore[method-assign]
    sleeps = Sleeps()
    cache = await watched(sleep=sleeps)
    assert names(cache) == {"a"}
    assert len(sleeps.delays) == 1  # backed off and listed again, like any failed request
    assert +health.errors == {ErrorKind.BAD_RESPONSE: 1}  # not "internal": no crash


async def test_torn_stream_is_reopened_from_last_version(
    fake_api: FakeApiServer, run_watcher: Any, recorder: Recorder, health: Health
) -> None:
    cache = cache_with(recorder, health, project_job)
    sleeps = Sleeps()
    await run_watcher(cache, sleep=sleeps)
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 1)
    fake_api.add("jobs", job("before"))
    await recorder.wait_for(lambda: "before" in names(cache))
    version = str(fake_api.rv)

    fake_api.send("jobs", TEAR)
    await fake_api.changed.wait_for(lambda: fake_api.count("jobs", "watch") == 2)
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 1)
    assert [q for p, v, q in fake_api.requests if v == "watch"][1]["resourceVersion"] == version
    assert fake_api.count("jobs", "list") == 1
    restarts = health[Resource.JOBS].restarts
    # one restart, not a relist (aiohttp may see the tear as a broken chunk: reason "error")
    assert restarts.total() == 1 and restarts[RestartReason.GONE] == 0

    fake_api.add("jobs", job("after"))
    await recorder.wait_for(lambda: "after" in names(cache))


async def test_garbage_line_is_counted_and_skipped(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    cache = await watched()
    fake_api.send("jobs", b"this is not json\n")
    fake_api.send("jobs", b'{"type": "ADDED"}\n')  # no object
    fake_api.send("jobs", b'{"type": "ADDED", "object": {"metadata": {}}}\n')  # no uid
    fake_api.add("jobs", job("fine"))
    await recorder.wait_for(lambda: "fine" in names(cache))
    assert +health.errors == {ErrorKind.BAD_LINE: 2, ErrorKind.BAD_OBJECT: 1}
    assert fake_api.count("jobs", "watch") == 1  # the stream survived


DEEP = b"[" * 5000 + b"]" * 5000  # json.loads raises RecursionError on it


async def test_a_line_nested_too_deep_or_of_an_unknown_type_is_a_bad_line(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    cache = await watched()
    fake_api.send("jobs", b'{"type": "ADDED", "object": {"metadata": ' + DEEP + b"}}\n")
    fake_api.send("jobs", b'{"type": "\\ud800", "object": {}}\n')  # and never a label value
    fake_api.add("jobs", job("fine"))
    await recorder.wait_for(lambda: "fine" in names(cache))
    assert +health.errors == {ErrorKind.BAD_LINE: 2}
    assert set(+health[Resource.JOBS].events) == {"ADDED"}
    assert fake_api.count("jobs", "watch") == 1  # once: the watcher crashed and restarted


async def test_one_unreadable_object_in_a_list_page_loses_only_itself(
    fake_api: FakeApiServer, watched: Any, health: Health
) -> None:
    for i in range(4):
        fake_api.add("jobs", job(f"j{i}"))
    fake_api.add_raw("jobs", b'{"metadata": {"uid": "deep", "labels": ' + DEEP + b"}}")
    fake_api.add_raw("jobs", b"{not json at all}")
    cache = await watched(page_size=10)  # one page: the four Jobs and the two others
    assert names(cache) == {f"j{i}" for i in range(4)}
    assert cache.synced and fake_api.count("jobs", "list") == 1  # not retried, not lost
    assert +health.errors == {ErrorKind.BAD_OBJECT: 2}


async def test_large_object_split_over_many_chunks(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    cache = await watched()
    big = job("big")
    big["metadata"]["annotations"] = {"blob": "x" * 3_000_000}  # far above aiohttp's 128 KiB
    fake_api.add("jobs", big)
    await recorder.wait_for(lambda: "big" in names(cache))
    assert not +health.errors


async def test_oversized_line_is_dropped_and_the_watch_reopened(
    fake_api: FakeApiServer,
    watched: Any,
    recorder: Recorder,
    health: Health,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("exporter.kube.watching.MAX_LINE_BYTES", 1000)
    await watched(sleep=Sleeps())
    fake_api.send("jobs", b'{"type": "ADDED", "object": "' + b"y" * 5000)
    await fake_api.changed.wait_for(lambda: fake_api.count("jobs", "watch") == 2)
    assert +health.errors == {ErrorKind.TORN_STREAM: 1}


async def test_429_waits_for_retry_after(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    fake_api.fail_next(
        "jobs", "list", Fault(429, {"Retry-After": "7"}), Fault(429, {"Retry-After": "2"})
    )
    fake_api.add("jobs", job("a"))
    sleeps = Sleeps()
    await watched(sleep=sleeps)
    assert sleeps.delays == [7.0, 2.0]
    requests = health[Resource.JOBS].requests
    assert (requests[("list", "429")], requests[("list", "200")]) == (2, 1)


async def test_500_storm_backs_off_exponentially_with_a_cap(
    fake_api: FakeApiServer, watched: Any, recorder: Recorder, health: Health
) -> None:
    fake_api.fail_next("jobs", "list", *[Fault(500, body={"message": "etcd down"})] * 12)
    sleeps = Sleeps()
    cache = await watched(sleep=sleeps, backoff=Backoff(0.5, 8.0))
    assert cache.synced

    assert len(sleeps.delays) == 12
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(12)]
    for delay, ceiling in zip(sleeps.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # bounded retry rate: once capped, at least cap/2 between attempts
    assert min(sleeps.delays[5:]) >= 4.0
    assert health[Resource.JOBS].requests[("list", "500")] == 12


async def test_permission_denied_is_reported_in_words_and_recovers(
    fake_api: FakeApiServer,
    watched: Any,
    recorder: Recorder,
    health: Health,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_api.fail_next(
        "jobs",
        "list",
        Fault(
            403, body={"message": 'jobs.batch is forbidden: User "x" cannot list resource "jobs"'}
        ),
    )
    fake_api.fail_next("jobs", "watch", Fault(403, body={"message": "forbidden"}))
    sleeps = Sleeps()
    cache = await watched(sleep=sleeps)
    denied = [r.getMessage() for r in caplog.records if "permission denied" in r.getMessage()]
    assert len(denied) == 2
    assert "needs list and watch on jobs" in denied[0]
    requests = health[Resource.JOBS].requests
    assert requests[("list", "403")] == requests[("watch", "403")] == 1
    assert len(sleeps.delays) == 2
    fake_api.add("jobs", job("seen"))  # once the client has read an event, it is watching
    await recorder.wait_for(lambda: "seen" in names(cache))
    assert health[Resource.JOBS].failure is None


async def test_namespaces_and_exclusions_reach_the_server(
    fake_api: FakeApiServer, run_watcher: Any, recorder: Recorder, health: Health
) -> None:
    fake_api.add("jobs", job("a", "team-a"))
    fake_api.add("jobs", job("b", "team-b"))
    fake_api.add("jobs", job("s", "kube-system"))
    everywhere = cache_with(recorder, health, project_job)
    await run_watcher(everywhere, field_selector="metadata.namespace!=kube-system")
    scoped = cache_with(Recorder(), health, project_job, scopes=("team-b",))
    await run_watcher(scoped, namespace="team-b")
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 2)
    assert names(everywhere) == {"a", "b"}
    assert names(scoped) == {"b"}


async def test_pods_are_selected_by_the_job_controller_label(
    fake_api: FakeApiServer, run_watcher: Any, recorder: Recorder, health: Health
) -> None:
    from exporter.store.projecting import project_pod

    pods = cache_with(recorder, health, project_pod, Resource.PODS)
    await run_watcher(
        pods, Endpoint(Resource.PODS, "/api/v1", "batch.kubernetes.io/controller-uid")
    )
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("pods") == 1)
    sent = [q for p, v, q in fake_api.requests if p == "pods"]
    assert {q["labelSelector"] for q in sent} == {"batch.kubernetes.io/controller-uid"}
