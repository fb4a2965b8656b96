"""The exporter served in-process against the fake API server, and a client for it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from exporter.app.lifecycle import serve
from exporter.cli import parse_settings
from tests.cluster.controlplane import free_port
from tests.fakeapi import FakeApiServer


class Exporter:
    def __init__(self, url: str) -> None:
        self.url = url

    async def get(self, path: str, **headers: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as s, s.get(self.url + path, headers=headers) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.text()

    async def families(self) -> dict[str, Any]:
        _, _, text = await self.get("/metrics")
        return {f.name: f for f in text_string_to_metric_families(text)}

    async def series(self, name: str) -> list[dict[str, str]]:
        fams = await self.families()
        return [s.labels for s in fams[name].samples] if name in fams else []


@contextlib.asynccontextmanager
async def running_exporter(kubeconfig_path: Path) -> AsyncIterator[Exporter]:
    """The exporter served in-process on a free port; it must stop cleanly within 5 s.

    New series show their value at once: these tests are about what is counted (the births
    of series have their own tests).
    """
    port = free_port()
    args = ["--kubeconfig", str(kubeconfig_path), "--listen", f"127.0.0.1:{port}"]
    settings = parse_settings([*args, "--new-series-delay", "0s"], environ={})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        yield Exporter(f"http://127.0.0.1:{port}")
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 5) == 0


def all_watching(fake: FakeApiServer) -> bool:
    return all(fake.open_streams(r) for r in ("jobs", "cronjobs", "pods"))


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    """Poll an observable condition (an HTTP endpoint has no change notification)."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.02)
