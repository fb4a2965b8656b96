"""Sharding: which namespaces a shard takes, and how it takes them on and lets them go.

The real split (three shards against one exporter, on a control plane) is
tests/e2e/test_sharding.py; here the shard's namespace loop runs over real caches, with
the watchers it would start recorded instead of run.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.app.settings import Settings
from exporter.app.sharding import Shard, shard_of
from exporter.app.wiring import build
from exporter.kube.connecting import Connection
from tests.builders import running


def test_a_namespace_always_hashes_to_the_same_shard() -> None:
    # pinned: a change would move namespaces between shards on an upgrade
    assert [shard_of(ns, 3) for ns in ("default", "batch", "team-a", "team-b")] == [0, 2, 0, 1]
    spread = collections.Counter(shard_of(f"team-{i}", 4) for i in range(4000))
    assert all(900 < spread[i] < 1100 for i in range(4))


def test_a_shard_waits_for_its_first_namespaces_and_follows_the_rest_live() -> None:
    exporter = build(Settings(total_shards=2, shard=1))
    spawned: list[str] = []

    def spawn(name: str, run: Any) -> asyncio.Task[None]:
        spawned.append(name)
        return asyncio.get_running_loop().create_task(asyncio.sleep(3600))

    conn = Connection("https://api", False, None, "test", None)
    caches = (exporter.jobs, exporter.cronjobs, exporter.pods)
    names = [f"team-{i}" for i in range(6)]
    mine = sorted(n for n in names if shard_of(n, 2) == 1)
    later = next(f"new-{i}" for i in range(99) if shard_of(f"new-{i}", 2) == 1)

    async def scenario() -> None:
        shard = Shard(exporter, None, conn, spawn)  # type: ignore[arg-type]
        assert not exporter.jobs.synced  # nothing is ready before the namespaces are known
        await shard._follow(set(names))
        assert spawned == [
            f"watcher for {r} in {ns}" for ns in mine for r in ("jobs", "cronjobs", "pods")
        ]
        for cache in caches:
            for ns in mine:
                assert not cache.synced
                listing = cache.relist(ns)
                if cache is exporter.jobs:
                    job = running(uid=f"j-{ns}", name=f"j-{ns}")
                    job["metadata"]["namespace"] = ns
                    listing.add(job)
                await listing.commit()
            assert cache.synced
        await shard._follow({*names, later})  # a new namespace: taken on, never waited for
        assert spawned[-1] == f"watcher for pods in {later}" and exporter.jobs.synced
        gone = mine[0]
        await shard._follow(set(names) - {gone})  # deleted: its watchers and records go
        assert sorted(r.namespace for r in exporter.jobs.records.values()) == mine[1:]
        assert exporter.jobs.synced
        stopped = [task for tasks in shard._watching.values() for task in tasks]
        for task in stopped:  # as the loop's own end does, before it is restarted
            task.cancel()
        await asyncio.gather(*stopped, return_exceptions=True)
        before = len(spawned)
        await shard._follow(set(names) - {gone})
        assert len(spawned) == before + 3 * (len(mine) - 1)  # every namespace watched again

    asyncio.run(scenario())


class NoAuth:
    """The client Configuration of a kubeconfig without credentials."""

    username = password = None

    def get_api_key_with_prefix(self, key: str) -> None:
        return None


def test_a_namespace_list_that_fails_is_shown_on_readyz_until_it_works() -> None:
    answers = [web.Response(status=403, text="forbidden"), web.json_response(
        {"metadata": {}, "items": [{"metadata": {"name": "team-0"}}]})]  # fmt: skip

    async def namespaces(request: web.Request) -> web.Response:
        return answers.pop(0)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/namespaces", namespaces)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        exporter = build(Settings(total_shards=2))
        conn = Connection(str(server.make_url("")).rstrip("/"), False, None, "test", NoAuth())
        try:
            async with aiohttp.ClientSession() as session:
                shard = Shard(exporter, session, conn, lambda name, run: None)  # type: ignore[arg-type,return-value]
                assert await shard._namespaces() is None
                assert "jobs: list namespaces: permission denied: sharding needs list on " \
                    "namespaces" in exporter.health.problems()  # fmt: skip
                assert await shard._namespaces() == {"team-0"}
                assert not any("namespaces" in p for p in exporter.health.problems())
        finally:
            await server.close()

    asyncio.run(scenario())
