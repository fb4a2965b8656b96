"""A scriptable, fault-injecting fake Kubernetes API server (aiohttp).

It keeps objects per resource with a resourceVersion counter and serves paginated LISTs and
WATCH streams the way kube-apiserver does, plus the faults a real server cannot produce on
demand: HTTP 410/429/5xx on the next request, in-stream ERROR 410, garbage lines, streams torn in
the middle of a line, and objects deleted "during a gap" without any watch event.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PATHS = {"jobs": "/apis/batch/v1", "cronjobs": "/apis/batch/v1", "pods": "/api/v1"}


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


CLOSE = object()  # end the watch stream normally
TEAR = object()  # write half a line, then drop the connection


class Waiter:
    """A condition variable for tests: wait until a predicate holds, without sleeping."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()

    async def notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(predicate)


class FakeApiServer:
    def __init__(self) -> None:
        self.rv = 1000
        self.objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.compacted: dict[str, int] = defaultdict(int)
        self.history: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        self.streams: dict[str, list[asyncio.Queue[Any]]] = defaultdict(list)
        self.faults: dict[tuple[str, str], deque[Fault]] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.raw_items: dict[str, list[bytes]] = defaultdict(list)
        """Items served verbatim in the first LIST page: what no JSON encoder would write."""
        self.changed = Waiter()
        self.url = ""

    # -- test API -------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        for plural, prefix in PATHS.items():
            app.router.add_get(f"{prefix}/{plural}", self._handler(plural))
            app.router.add_get(f"{prefix}/namespaces/{{ns}}/{plural}", self._handler(plural))
        return app

    def add(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("namespace", "default")
        self._store(plural, "ADDED", obj)
        return obj

    def modify(self, plural: str, obj: dict[str, Any]) -> None:
        self._store(plural, "MODIFIED", obj)

    def add_raw(self, plural: str, item: bytes) -> None:
        """Serve ``item`` as it is among the objects of the first LIST page."""
        self.raw_items[plural].append(item)

    def remove(self, plural: str, uid: str) -> None:
        obj = self.objects[plural].pop(uid)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(plural, {"type": "DELETED", "object": obj})

    def remove_silently(self, plural: str, uid: str) -> None:
        """Delete without an event, as if it happened while the watch was down."""
        del self.objects[plural][uid]
        self.rv += 1

    def compact(self, plural: str) -> None:
        """Forget history: watches from older versions now get 410."""
        self.compacted[plural] = self.rv
        self.history[plural].clear()

    def fail_next(self, plural: str, verb: str, *faults: Fault) -> None:
        self.faults[(plural, verb)].extend(faults)

    def send(self, plural: str, item: Any) -> None:
        """Put raw bytes, an event dict, CLOSE or TEAR on every open watch stream."""
        for queue in self.streams[plural]:
            queue.put_nowait(item)

    def bookmark(self, plural: str) -> None:
        self.send(
            plural,
            {
                "type": "BOOKMARK",
                "object": {"kind": "Bookmark", "metadata": {"resourceVersion": str(self.rv)}},
            },
        )

    def count(self, plural: str, verb: str) -> int:
        return sum(1 for p, v, _ in self.requests if (p, v) == (plural, verb))

    def open_streams(self, plural: str) -> int:
        return len(self.streams[plural])

    # -- internals ------------------------------------------------------------------------
    def _store(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[plural][obj["metadata"]["uid"]] = obj
        self._emit(plural, {"type": kind, "object": json.loads(json.dumps(obj))})

    def _emit(self, plural: str, event: dict[str, Any]) -> None:
        self.history[plural].append((self.rv, event))
        self.send(plural, event)

    def _handler(self, plural: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            verb = "watch" if request.query.get("watch") in ("1", "true") else "list"
            self.requests.append((plural, verb, dict(request.query)))
            await self.changed.notify()
            if request.headers.get("Authorization") != "Bearer test-token":
                return web.json_response({"code": 401, "message": "Unauthorized"}, status=401)
            if self.faults[(plural, verb)]:
                fault = self.faults[(plural, verb)].popleft()
                return web.json_response(
                    fault.body or {"code": fault.status}, status=fault.status, headers=fault.headers
                )
            if verb == "list":
                return self._list(plural, request)
            return await self._watch(plural, request)

        return handle

    def _selected(self, plural: str, request: web.Request) -> list[dict[str, Any]]:
        ns = request.match_info.get("ns")
        items = [
            o
            for o in self.objects[plural].values()
            if ns is None or o["metadata"]["namespace"] == ns
        ]
        for clause in filter(None, request.query.get("fieldSelector", "").split(",")):
            key, _, value = clause.partition("!=")
            assert key == "metadata.namespace", clause
            items = [o for o in items if o["metadata"]["namespace"] != value]
        # str(): hostile objects may hold any JSON value where a name belongs
        return sorted(
            items,
            key=lambda o: (str(o["metadata"]["namespace"]), str(o["metadata"].get("name", ""))),
        )

    def _list(self, plural: str, request: web.Request) -> web.Response:
        items = self._selected(plural, request)
        limit = int(request.query.get("limit", "0")) or len(items) or 1
        start = int(request.query.get("continue") or 0)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        parts = [json.dumps(item).encode() for item in page]
        if start == 0:
            parts += self.raw_items[plural]
        body = b'{"kind": "List", "metadata": %s, "items": [%s]}' % (
            json.dumps(meta).encode(),
            b",".join(parts),
        )
        return web.Response(body=body, content_type="application/json")

    async def _watch(self, plural: str, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or 0)
        if since < self.compacted[plural]:
            return web.json_response({"code": 410, "reason": "Expired"}, status=410)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for rv, event in self.history[plural]:
            if rv > since:
                queue.put_nowait(event)
        self.streams[plural].append(queue)
        await self.changed.notify()
        try:
            while True:
                item = await queue.get()
                if item is CLOSE:
                    break
                if item is TEAR:
                    await response.write(b'{"type":"MODIFIED","object":{"metad')
                    assert request.transport is not None
                    request.transport.close()
                    return response
                data = item if isinstance(item, bytes) else json.dumps(item).encode() + b"\n"
                await response.write(data)
        finally:
            self.streams[plural].remove(queue)
            await self.changed.notify()
        await response.write_eof()
        return response


def kubeconfig(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "test-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
    }


def job(name: str, namespace: str = "default", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6},
        "status": status,
    }
