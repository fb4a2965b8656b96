from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from exporter.health.state import Health, Resource
from exporter.kube.connecting import Connection, connect
from exporter.store.caching import ObjectCache
from tests.fakeapi import FakeApiServer, Waiter, kubeconfig


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    for plural in list(fake.streams):
        fake.send(plural, b"")  # wake streams so close() does not wait on them
    await server.close()


@pytest.fixture
def kubeconfig_path(fake_api: FakeApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(fake_api.url)))
    return path


@pytest.fixture
async def connection(kubeconfig_path: Path) -> Connection:
    return await connect(str(kubeconfig_path), None)


class Recorder:
    """A cache subscriber that remembers every change and lets tests wait for one."""

    def __init__(self) -> None:
        self.changes: list[tuple[Any, Any]] = []
        self.waiter = Waiter()

    def __call__(self, old: Any, new: Any) -> None:
        self.changes.append((old, new))
        with contextlib.suppress(RuntimeError):  # a synchronous test: nobody can be waiting
            asyncio.get_running_loop().create_task(self.waiter.notify())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await self.waiter.wait_for(predicate, timeout)

    def deleted(self) -> list[str]:
        return [old.name for old, new in self.changes if new is None]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def health() -> Health:
    return Health()


def cache_with(
    recorder: Recorder,
    health: Health,
    project: Callable[[Any], Any],
    resource: Resource = Resource.JOBS,
    scopes: tuple[str | None, ...] = (None,),
) -> ObjectCache[Any]:
    cache: ObjectCache[Any] = ObjectCache(resource, project, health, scopes)
    cache.subscribe(recorder)
    return cache
