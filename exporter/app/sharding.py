"""Sharding: each replica lists and watches only the namespaces whose name hashes to it.

kube-state-metrics shards by object UID, so every replica still decodes every object of the
cluster and drops most of them. We shard by *namespace* instead, because a namespace can be
filtered on the server: a shard runs one list+watch per resource in each of its namespaces
and never receives another shard's objects. A namespace holds whole owners (a CronJob, its
Jobs, their Pods; a Job family), so an owner, its runs and its slots are always on exactly
one shard, and the bundled alerts and dashboards, which aggregate by namespace and owner,
work unchanged over the union of the shards.

The price: a namespace is the unit, so one namespace holding most of the cluster's batch
work lands on one shard, whatever the number of shards (``kube_batch_exporter_objects`` per
replica shows the imbalance). Such a cluster is better served by one unsharded replica per
big namespace (``--namespaces``), which the same flags allow.

The namespaces are polled (every :data:`POLL_SECONDS`) rather than watched: they change
rarely, a LIST of their names is small, and a Job in a namespace first seen late is still
listed whole when its watch starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import aiohttp

from exporter.app.wiring import UNLISTED, Exporter
from exporter.health.state import Failure, Resource
from exporter.kube.connecting import Connection
from exporter.kube.decoding import BadPage, Decoder
from exporter.store.caching import ObjectCache

logger = logging.getLogger(__name__)

POLL_SECONDS = 30.0
"""How often the namespace list is read again (a new namespace waits at most this long)."""

NAMESPACE_LIST = "list namespaces"
"""The verb of a failed namespace list, as /readyz shows it."""
Spawn = Callable[[str, Callable[[], Awaitable[None]]], "asyncio.Task[None]"]
"""Starts a supervised loop under a name (the lifecycle's)."""


class _Name(TypedDict, total=False):
    name: str


class _Namespace(TypedDict, total=False):
    metadata: _Name


def shard_of(namespace: str, total: int) -> int:
    """The shard that exports ``namespace``: a stable hash of its name, modulo ``total``."""
    digest = hashlib.blake2b(namespace.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total


class ShardError(Exception):
    """The shard cannot be worked out (the StatefulSet is missing or unreadable)."""


class Shard:
    """The loop that keeps a list+watch per resource in each namespace of this shard.

    It starts with every cache waiting for :data:`UNLISTED` (so nothing is ready or served
    before the shard's namespaces are known), and then for each namespace it takes on, until
    that namespace's first LIST; a namespace that leaves (deleted) takes its records along.
    """

    def __init__(
        self, exporter: Exporter, session: aiohttp.ClientSession, conn: Connection, spawn: Spawn
    ) -> None:
        self._exporter = exporter
        self._settings = exporter.settings
        self._session = session
        self._conn = conn
        self._spawn = spawn
        self._caches: tuple[ObjectCache[Any], ...] = (
            exporter.jobs,
            exporter.cronjobs,
            exporter.pods,
        )
        self._watching: dict[str, list[asyncio.Task[None]]] = {}
        self._followed = False
        self._decoder = Decoder(_Namespace)
        self.index = self._settings.shard_index()
        self.total = self._settings.total_shards

    async def run(self) -> None:
        """Work out the shard, then follow its namespaces; never returns except by cancel."""
        try:
            while self._settings.pod_namespace is not None and self.total == 1:
                try:
                    self.total = await self._replicas()
                except ShardError as exc:
                    logger.error("%s; retrying in %.0fs", exc, POLL_SECONDS)
                    await asyncio.sleep(POLL_SECONDS)
            self._exporter.health.shard = (self.index, self.total)
            logger.info("exporting shard %d of %d (by namespace)", self.index, self.total)
            while True:
                names = await self._namespaces()
                if names is not None:
                    await self._follow(names)
                await asyncio.sleep(POLL_SECONDS)
        finally:  # a restarted run starts these watchers again (each relists, nothing is lost)
            for tasks in self._watching.values():
                for task in tasks:
                    task.cancel()

    def mine(self, names: set[str]) -> set[str]:
        """The namespaces of ``names`` this shard exports (--exclude-namespaces left out)."""
        excluded = set(self._settings.exclude_namespaces)
        return {n for n in names - excluded if shard_of(n, self.total) == self.index}

    async def _follow(self, names: set[str]) -> None:
        """Watch the namespaces of ``names`` that are ours, stop watching those gone.

        Only the namespaces of the first list are waited for: one created later is taken on
        live (its LIST brings its objects as creations, and it ran after start-up), so a new
        namespace never makes the exporter unready or hides the batch series meanwhile.
        """
        mine = self.mine(names)
        first = not self._followed
        self._followed = True
        stopped = {ns for ns, tasks in self._watching.items() if all(t.done() for t in tasks)}
        for namespace in sorted(mine - (self._watching.keys() - stopped)):
            if first:
                for cache in self._caches:
                    cache.expect(namespace)
            self._watching[namespace] = [
                self._spawn(f"watcher for {w.endpoint.resource} in {namespace}", w.run)
                for w in self._exporter.watchers(self._session, self._conn, [namespace])
            ]
        for namespace in sorted(self._watching.keys() - mine):
            logger.info("namespace %s is gone: dropping its objects", namespace)
            for task in self._watching.pop(namespace):
                task.cancel()
            for cache in self._caches:
                await cache.drop(namespace)
        if first:
            for cache in self._caches:
                await cache.drop(UNLISTED)  # the namespaces are known

    async def _get(self, path: str, params: dict[str, str] | None = None) -> bytes:
        limits = aiohttp.ClientTimeout(total=self._settings.list_timeout)
        url = f"{self._conn.host}{path}"
        resp = await self._conn.request(self._session, "GET", url, limits, params)
        async with resp:
            body = await resp.read()
            if resp.status != 200:
                message = body[:200].decode("ascii", "replace")
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=message
                )
            return body

    async def _namespaces(self) -> set[str] | None:
        """Every namespace name of the cluster (or of --namespaces), None when unreadable."""
        if self._settings.namespaces:
            return set(self._settings.namespaces)
        names: set[str] = set()
        params = {"limit": str(self._settings.list_page_size)}
        try:
            while True:
                page = self._decoder.page(await self._get("/api/v1/namespaces", params))
                names.update(str(item.get("metadata", {}).get("name") or "") for item in page.items)
                if not page.continue_token:
                    break
                params["continue"] = page.continue_token
        except (aiohttp.ClientError, TimeoutError, BadPage) as exc:
            logger.warning("cannot list namespaces (retrying in %.0fs): %s", POLL_SECONDS, exc)
            forbidden = isinstance(exc, aiohttp.ClientResponseError) and exc.status == 403
            why = "permission denied: sharding needs list on namespaces" if forbidden else str(exc)
            self._failed(Failure(NAMESPACE_LIST, why, forbidden))
            return None
        self._failed(None)
        names.discard("")
        return names

    def _failed(self, failure: Failure | None) -> None:
        """Show a failed namespace list on /readyz (for every resource: all wait on it)."""
        for resource in Resource:
            state = self._exporter.health[resource]
            if failure is not None or (state.failure and state.failure.verb == NAMESPACE_LIST):
                state.failure = failure

    async def _replicas(self) -> int:
        """The replicas of this Pod's StatefulSet: the number of shards."""
        pod, namespace = self._settings.pod or "", self._settings.pod_namespace
        statefulset = pod.rsplit("-", 1)[0]
        path = f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{statefulset}"
        try:
            doc = json.loads(await self._get(path))
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError) as exc:
            raise ShardError(f"cannot read StatefulSet {namespace}/{statefulset}: {exc}") from exc
        replicas = doc.get("spec", {}).get("replicas") if isinstance(doc, dict) else None
        if not isinstance(replicas, int) or replicas < 1 or self.index >= replicas:
            raise ShardError(
                f"StatefulSet {namespace}/{statefulset} has replicas {replicas!r}: "
                f"Pod {pod} cannot be shard {self.index}"
            )
        return replicas
