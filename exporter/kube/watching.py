"""The list+watch engine: keeps a :class:`Sink` (an object cache) equal to the cluster.

One :class:`Watcher` per resource and scope, each an endless loop of its own (kopf's
infinite/continuous split): ``run`` lists, then watches until the server says the version is
gone, then lists again. The contract it implements (docs/architecture.md):

* LIST in pages (``limit``/``continue``), keep the list's resourceVersion.
* WATCH from it with ``allowWatchBookmarks``; a server timeout with jitter so many watches don't
  reconnect together, and a client read timeout that detects a silent dead connection.
* ADDED/MODIFIED/DELETED go to the sink; BOOKMARK only moves the resourceVersion.
* ``410 Gone`` as an HTTP status or as an in-stream ERROR means the version expired: relist,
  and the sink's diff deletes what vanished meanwhile.
* 429 waits ``Retry-After``; other failures back off exponentially (jitter, cap); a normal end
  of stream or a read timeout re-watches at once from the last version. A LIST page that is
  not a JSON list is a failed request too, retried the same way.
* A garbage line is logged, counted and skipped; a stream torn mid-line is re-opened.

Lines are split by our own reader, not aiohttp's ``readline`` (whose line limit breaks on large
objects); a single line is capped at :data:`MAX_LINE_BYTES` so one absurd object cannot exhaust
memory.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from exporter.health.state import ErrorKind, Failure, Health, Resource, RestartReason
from exporter.kube.connecting import CONNECT_TIMEOUT_SECONDS, Connection
from exporter.kube.decoding import BadPage, Decoder, Page

logger = logging.getLogger(__name__)

EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})
"""The event types the API sends; any other is a bad line (and never a label value)."""
MAX_LINE_BYTES = 64 * 2**20
"""A memory guard, not a tuning knob: etcd refuses objects above about 1.5 MiB, so no valid
watch line comes near it."""

RawObject = dict[str, Any]
"""An API object as decoded from JSON."""


class Listing(Protocol):
    """One LIST in progress: objects are taken page by page, then applied at once."""

    def add(self, raw: RawObject) -> None:
        """Take one listed object."""

    async def commit(self) -> None:
        """The LIST is complete: apply it (deleting what it no longer has)."""


class Sink(Protocol):
    """Where a watcher writes what the API server says (an object cache)."""

    def relist(self, scope: str | None) -> Listing:
        """Begin replacing every object of ``scope`` (a namespace, or None for all)."""

    def upsert(self, raw: RawObject) -> None:
        """An ADDED or MODIFIED object."""

    def delete(self, raw: RawObject) -> None:
        """A DELETED object, in its final state."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a resource lives in the API and which of its objects we want."""

    resource: Resource
    api: str
    """``/api/v1`` or ``/apis/<group>/<version>``."""
    label_selector: str | None = None
    shape: type[Any] | None = None
    """The fields the sink reads (a TypedDict, see :class:`~exporter.kube.decoding.Decoder`);
    None decodes whole objects."""


class Gone(Exception):
    """The resourceVersion expired (410): the caller must relist."""


class Throttled(Exception):
    """429: wait as long as the server asked."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"throttled, retry after {delay:g}s")
        self.delay = delay


class ApiError(Exception):
    """Any other failed request or in-stream ERROR."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code


class TornStream(Exception):
    """The stream ended in the middle of a line or sent an oversized line."""


class Backoff:
    """Exponential backoff with equal jitter: half fixed, half random, capped.

    The fixed half bounds the retry rate during an error storm; the random half spreads
    many exporters (or many watchers) apart.
    """

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the cap."""
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def reset(self) -> None:
        """Back to the base delay after a success."""
        self.failures = 0


class Watcher:
    """Keeps one sink scope in sync with the API server, forever."""

    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        session: aiohttp.ClientSession,
        connection: Connection,
        health: Health,
        namespace: str | None,
        field_selector: str | None,
        page_size: int,
        list_timeout: float,
        watch_timeout: float,
        inactivity_timeout: float,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,  # tests record, not sleep
    ) -> None:
        self.endpoint = endpoint
        self.namespace = namespace
        self._sink = sink
        self._session = session
        self._conn = connection
        self._health = health
        self._state = health[endpoint.resource]
        self._field_selector = field_selector
        self._page_size = page_size
        self._list_timeout = aiohttp.ClientTimeout(total=list_timeout)
        self._watch_timeout = watch_timeout
        self._read_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=inactivity_timeout
        )
        self._backoff = backoff
        self._sleep = sleep
        self._decoder = Decoder(endpoint.shape)
        plural = endpoint.resource.value
        ns = f"/namespaces/{namespace}" if namespace else ""
        self._url = f"{connection.host}{endpoint.api}{ns}/{plural}"
        self._where = f"{plural} in {namespace or 'all namespaces'}"
        self.version = ""
        """Last resourceVersion seen (list, event or bookmark): where a re-watch resumes."""

    async def run(self) -> None:
        """List, watch until Gone, repeat; never returns except by cancellation."""
        listed_before = False
        while True:
            try:
                if listed_before:
                    self._state.relists += 1
                await self._list()
                listed_before = True
                await self._watch_until_gone()
            except Gone:
                logger.info("%s: resource version expired during LIST, listing again", self._where)
            except (TimeoutError, Throttled, ApiError, TornStream, aiohttp.ClientError) as exc:
                await self._pause(exc, "list")

    async def _pause(self, exc: Exception, verb: str) -> None:
        delay = exc.delay if isinstance(exc, Throttled) else self._backoff.next()
        message = str(exc) or type(exc).__name__
        forbidden = isinstance(exc, ApiError) and exc.code == 403
        if forbidden:
            message = (
                f"permission denied: the exporter's ServiceAccount needs list and watch "
                f"on {self.endpoint.resource} ({message})"
            )
        self._state.failure = Failure(verb, message, forbidden)
        logger.warning("%s: %s failed (%s); retrying in %.1fs", self._where, verb, message, delay)
        await self._sleep(delay)

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.endpoint.label_selector:
            params["labelSelector"] = self.endpoint.label_selector
        if self._field_selector:
            params["fieldSelector"] = self._field_selector
        return params

    async def _request(
        self, verb: str, params: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        resp = await self._conn.request(self._session, "GET", self._url, limits, params)
        self._state.requests[(verb, str(resp.status))] += 1
        if resp.status == 200:
            return resp
        body = (await resp.read())[:300].decode("utf-8", "replace")
        resp.release()
        if resp.status == 410:
            raise Gone()
        if resp.status == 429:
            raise Throttled(_retry_after(resp.headers.get("Retry-After")))
        raise ApiError(resp.status, _status_message(body))

    async def _list(self) -> None:
        listing = self._sink.relist(self.namespace)
        params = {**self._params(), "limit": str(self._page_size)}
        started, pages, objects = time.monotonic(), 0, 0
        while True:
            async with await self._request("list", params, self._list_timeout) as resp:
                page = await self._page(resp)
            pages += 1
            for item in page.items:
                listing.add(item)
            # What a page builds lives as long as its records. Frozen (O(1)), the cyclic
            # collector's full passes no longer rescan every record held (85 ms at M, in one
            # piece on the loop); records hold no cycles, so nothing frozen is kept too long.
            gc.freeze()
            objects += len(page.items)
            if not page.continue_token:
                await listing.commit()
                self._state.failure = None
                self._backoff.reset()
                logger.info(
                    "%s: listed %d objects in %d pages (%.2fs)",
                    self._where,
                    objects,
                    pages,
                    time.monotonic() - started,
                )
                self.version = page.resource_version
                return
            params["continue"] = page.continue_token

    async def _page(self, resp: aiohttp.ClientResponse) -> Page:
        """One LIST page; a body that is not a LIST at all is a failed request."""
        try:
            page = self._decoder.page(await resp.read())
        except BadPage as exc:
            self._health.count(ErrorKind.BAD_RESPONSE)
            raise ApiError(resp.status, f"LIST response is not a JSON list: {exc}") from None
        if page.unreadable:  # each loses only itself; there is no UID to report them by
            self._health.errors[ErrorKind.BAD_OBJECT] += page.unreadable
            logger.warning(
                "%s: skipping %d unreadable objects of a LIST page", self._where, page.unreadable
            )
        return page

    async def _watch_until_gone(self) -> None:
        restarts = self._state.restarts
        while True:
            try:
                await self._watch()
            except Gone:
                restarts[RestartReason.GONE] += 1
                logger.info(
                    "%s: watch version %s expired (410), relisting", self._where, self.version
                )
                return
            except TornStream as exc:
                restarts[RestartReason.TORN] += 1
                self._health.count(ErrorKind.TORN_STREAM)
                await self._pause(exc, "watch")
            except TimeoutError:
                restarts[RestartReason.INACTIVITY] += 1
                logger.info(
                    "%s: no data for %.0fs, re-watching",
                    self._where,
                    self._read_timeout.sock_read or 0,
                )
            except (Throttled, ApiError, aiohttp.ClientError) as exc:
                restarts[RestartReason.ERROR] += 1
                await self._pause(exc, "watch")
            else:
                restarts[RestartReason.TIMEOUT] += 1

    async def _watch(self) -> None:
        """One watch request, resuming from and advancing :attr:`version`."""
        params = {
            **self._params(),
            "watch": "1",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.version,
            "timeoutSeconds": str(int(self._watch_timeout * random.uniform(1.0, 1.1))),
        }
        async with await self._request("watch", params, self._read_timeout) as resp:
            self._state.failure = None
            pending = b""
            async for chunk in resp.content.iter_any():
                pending += chunk
                if b"\n" not in chunk:
                    if len(pending) > MAX_LINE_BYTES:
                        raise TornStream(f"line longer than {MAX_LINE_BYTES} bytes")
                    continue
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._handle(line)
                self._backoff.reset()
            if pending.strip():
                raise TornStream(f"stream ended inside a line ({len(pending)} bytes)")

    def _handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = self._decoder.event(line)
            kind, obj = event["type"], event["object"]
            if not isinstance(obj, dict):
                raise TypeError("object is not a mapping")
            if kind not in EVENT_TYPES:
                raise ValueError(f"unknown event type {ascii(kind)[:40]}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            self._health.count(ErrorKind.BAD_LINE)
            logger.warning(
                "%s: skipping unparseable watch line (%d bytes): %s", self._where, len(line), exc
            )
            return
        self._state.events[str(kind)] += 1
        self._state.last_event = time.time()
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise Gone()
            raise ApiError(
                code if isinstance(code, int) else 500, str(obj.get("message", "watch error"))
            )
        meta = obj.get("metadata")
        new_version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not (isinstance(new_version, str) and new_version.isascii() and len(new_version) < 64):
            new_version = None  # opaque, but always a short string: never resume from junk
        if kind in ("ADDED", "MODIFIED"):
            self._sink.upsert(obj)
        elif kind == "DELETED":
            self._sink.delete(obj)
        if new_version:
            self.version = new_version


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 1), 300.0))
    except ValueError:
        return 1.0


def _status_message(body: str) -> str:
    """The message of an API error body, printable and encodable whatever the body holds."""
    try:
        doc = json.loads(body)
        message = str(doc.get("message") or doc.get("reason") or body)
    except (ValueError, AttributeError, RecursionError):
        message = body or "no body"
    return message.encode("utf-8", "backslashreplace").decode()
