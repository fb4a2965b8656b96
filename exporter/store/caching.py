"""Per-resource caches of projected records, keyed by UID, that tell subscribers what changed.

A cache is the single owner of "what exists now" for one resource. Watchers feed it raw dicts
(it satisfies kube's ``Sink`` interface without knowing it); it projects them (dropping the
dict at once), keeps the record, and tells every subscriber ``(old, new)``: ``old`` None means
created, ``new`` None means deleted. Subscribers (renderers, the owner index and the
trackers) never see raw objects.

A relist replaces the records of one *scope* (a namespace, or None for all namespaces) and emits
a deletion for every record of that scope that the new list no longer has, which is how objects
deleted while a watch was broken (410 Gone) leave /metrics.

An object the projection refuses (:class:`~exporter.store.projecting.BadObject`) loses only
itself: it is warned about and counted once (``bad_object``) until it is fine again, its last
good record stays, a relist that lists it does not take it for deleted, and its deletion
still removes it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from exporter.health.state import ErrorKind, Health, Resource
from exporter.store.projecting import BadObject, RawObject, uid_of

logger = logging.getLogger(__name__)


class Record(Protocol):
    """What every record that is published has."""

    @property
    def uid(self) -> str:
        """The key subscribers file the record under."""

    @property
    def namespace(self) -> str:
        """``metadata.namespace``: the relist scope."""


REPLAY_BATCH = 500
"""Most records handled between two yields to the event loop by a replay, a relist commit or
a tracker's start-up (the tests make it small to see the yields)."""
YIELD_AFTER_SECONDS = 0.01
"""...and most time: the work per record ranges from 15 us (a Pod) to milliseconds (a
CronJob's capped back-fill at start-up), so a count alone does not bound the stall."""

R = TypeVar("R", bound=Record)
T = TypeVar("T")
Subscriber = Callable[[R | None, R | None], None]
Hook = Callable[[], Awaitable[None]]
"""An on-synced hook: a coroutine, so that long start-up work can yield to the loop."""


async def batches(items: Iterable[T]) -> AsyncIterator[T]:
    """``items``, yielding to the event loop every so many or so long, whichever is first.

    Every :data:`REPLAY_BATCH` items or :data:`YIELD_AFTER_SECONDS`. For loops over every
    record that run in one go (a relist commit, a tracker's start-up): at L a single such
    loop held the loop for seconds.
    """
    since = time.perf_counter()
    for n, item in enumerate(items, 1):
        yield item
        if n % REPLAY_BATCH == 0 or time.perf_counter() - since > YIELD_AFTER_SECONDS:
            await asyncio.sleep(0)
            since = time.perf_counter()


class Publisher(Generic[R]):
    """Tells subscribers that a record was created, changed or deleted.

    A subscriber that raises does not keep the change from the others: the failure is logged
    with the record's UID and counted (``errors_total{kind="subscriber"}``).
    """

    def __init__(self, what: str, health: Health) -> None:
        self._what = what
        self._health = health
        self._subscribers: list[tuple[str, Subscriber[R]]] = []

    def subscribe(self, subscriber: Subscriber[R]) -> None:
        """Call ``subscriber(old, new)`` on every change from now on."""
        name = getattr(subscriber, "__qualname__", type(subscriber).__name__)
        self._subscribers.append((f"subscriber {name} of {self._what}", subscriber))

    def notify(self, old: R | None, new: R | None) -> None:
        """Tell every subscriber about one change."""
        for name, subscriber in self._subscribers:
            try:
                subscriber(old, new)
            except Exception:  # one subscriber's bug must not starve the others
                changed = new if new is not None else old
                uid = changed.uid if changed is not None else "?"
                self._health.survived(ErrorKind.SUBSCRIBER, name, uid)


class ObjectCache(Generic[R]):
    """Records of one resource plus the subscribers that follow its changes."""

    def __init__(
        self,
        resource: Resource,
        project: Callable[[RawObject], R],
        health: Health,
        scopes: Sequence[str | None] = (None,),
    ) -> None:
        self.resource = resource
        self.records: dict[str, R] = {}
        self._changes: Publisher[R] = Publisher(resource, health)
        self._project = project
        self._health = health
        self._state = health[resource]
        self._reported_bad = health.reported.setdefault(ErrorKind.BAD_OBJECT, set())
        """The bad objects reported already (the health's own set, kept at hand)."""
        self._on_synced: list[Hook] = []
        self._pending_scopes = set(scopes)
        self._unreplayed: set[str] = set()
        """UIDs a running :meth:`replay` has yet to tell the subscribers about."""
        self._replaying = False

    @property
    def synced(self) -> bool:
        """True once every scope completed its first LIST."""
        return not self._pending_scopes

    def subscribe(self, subscriber: Subscriber[R]) -> None:
        """Call ``subscriber(old, new)`` on every change from now on."""
        self._changes.subscribe(subscriber)

    def on_synced(self, callback: Hook) -> None:
        """Await ``callback()`` once, right after the first full LIST of every scope.

        Trackers use it to tell objects that existed at start-up (history before we watched)
        from changes they see happen.
        """
        self._on_synced.append(callback)

    async def replay(self) -> None:
        """Tell the subscribers about every record as created, then run the on-synced hooks.

        A follower that starts late (a new leader's trackers, over caches a standby kept
        warm) thereby sees the cache exactly as if its first LIST had just completed; if that
        LIST has not completed yet, the hooks run when it does, as usual. It yields to the
        event loop every :data:`REPLAY_BATCH` records (a replay of 100,000 records would
        otherwise stall probes and Lease renewals for seconds), and the watchers go on
        meanwhile: a change to a record not yet replayed reaches the subscribers as its
        creation (or not at all, if it is a deletion) and is not replayed again.
        """
        order = list(self.records)
        self._unreplayed = set(order)
        self._replaying = True
        try:
            async for uid in batches(order):
                if uid in self._unreplayed:
                    self._unreplayed.discard(uid)
                    self._changes.notify(None, self.records[uid])
        finally:
            self._unreplayed = set()
            self._replaying = False
        if self.synced:
            await self._run_on_synced()

    def detach(self) -> None:
        """Forget every subscriber and on-synced hook (a leader's trackers, at the term's end)."""
        self._changes = Publisher(self.resource, self._health)
        self._on_synced = []
        self._unreplayed = set()
        self._replaying = False

    def _notify(self, old: R | None, new: R | None) -> None:
        """Publish one change, as a creation (or not at all) while it is still to be replayed."""
        if self._unreplayed:
            changed = new if new is not None else old
            if changed is not None and changed.uid in self._unreplayed:
                self._unreplayed.discard(changed.uid)
                if new is None:
                    return
                old = None
        self._changes.notify(old, new)

    def upsert(self, raw: RawObject) -> None:
        """Apply an ADDED or MODIFIED object."""
        new = self._safe_project(raw)
        if new is not None:
            self._put(new)

    def delete(self, raw: RawObject) -> None:
        """Apply a DELETED object: first its final state (if it changed), then the removal."""
        final = self._safe_project(raw)
        uid = final.uid if final is not None else uid_of(raw)
        if uid is None:
            return
        if final is not None and self.records.get(uid) is not None:
            self._put(final)
        self._reported_bad.discard(self._key(uid))
        old = self.records.pop(uid, None)
        if old is not None:
            self._notify(old, None)
            self._state.objects = len(self.records)

    def expect(self, scope: str) -> None:
        """A scope joins (a sharded exporter's new namespace): not synced until it is listed."""
        self._pending_scopes.add(scope)

    async def drop(self, scope: str) -> None:
        """A scope leaves: its records are deleted, and it is no longer waited for."""
        await self.relist(scope).commit()  # an empty LIST of it: everything in it vanished

    def relist(self, scope: str | None) -> Relist[R]:
        """Start replacing the records of ``scope``; apply with :meth:`Relist.commit`."""
        return Relist(self, scope)

    def _safe_project(self, raw: RawObject) -> R | None:
        """The record of ``raw``, or None (reported once per object) when it is bad."""
        try:
            record = self._project(raw)
        except BadObject as exc:
            uid = uid_of(raw)
            if uid is None or self._health.first_report(ErrorKind.BAD_OBJECT, self._key(uid)):
                self._health.count(ErrorKind.BAD_OBJECT)
                logger.warning("skipping %s %s: %s", self.resource, _where(raw), exc)
            return None
        except Exception:  # a bug in projection: only this object is lost
            self._health.survived(ErrorKind.INTERNAL, "projecting", self._key(uid_of(raw)))
            return None
        if self._reported_bad:  # it may have been bad before and be fine now
            self._reported_bad.discard(self._key(record.uid))
        return record

    def _key(self, uid: str | None) -> str:
        return f"{self.resource}/{uid}"

    def _put(self, new: R) -> None:
        old = self.records.get(new.uid)
        if old == new:
            return
        self.records[new.uid] = new
        self._notify(old, new)
        if old is None:
            self._state.objects = len(self.records)

    async def _finish_relist(
        self, scope: str | None, fresh: dict[str, R], listed: set[str]
    ) -> None:
        """Apply a complete LIST, yielding to the loop between batches of records.

        Meanwhile only other resources and other scopes change (this scope's watcher is the
        one awaiting), so what is applied is never overtaken by a newer event of its own; a
        scrape in between sees each record either as it was or as listed.
        """
        vanished = [
            uid
            for uid, rec in self.records.items()
            if uid not in fresh and uid not in listed and (scope is None or rec.namespace == scope)
        ]
        async for uid in batches(vanished):
            if (old := self.records.pop(uid, None)) is not None:
                self._notify(old, None)
        async for record in batches(fresh.values()):
            self._put(record)
        self._state.objects = len(self.records)
        was_synced = self.synced
        self._pending_scopes.discard(scope)
        self._state.synced = self.synced
        if self.synced and not was_synced and not self._replaying:
            await self._run_on_synced()  # during a replay, the replay runs them when it is done
        gc.freeze()  # the records and what the subscribers built from them: see kube.watching
        if vanished:
            logger.info(
                "relist of %s removed %d objects deleted during the gap",
                self.resource,
                len(vanished),
            )

    async def _run_on_synced(self) -> None:
        for callback in self._on_synced:
            name = getattr(callback, "__qualname__", "start-up hook")
            with self._health.contained(ErrorKind.SUBSCRIBER, name, self.resource):
                await callback()


class Relist(Generic[R]):
    """An in-progress LIST: projects pages as they arrive, applies nothing until commit.

    Projecting page by page keeps peak memory at one page of raw dicts, not the whole list.
    """

    def __init__(self, cache: ObjectCache[R], scope: str | None) -> None:
        self._cache = cache
        self._scope = scope
        self._fresh: dict[str, R] = {}
        self._bad: set[str] = set()
        """UIDs listed but refused: they exist, so their last good records are kept."""

    def add(self, raw: RawObject) -> None:
        """Take one listed object."""
        record = self._cache._safe_project(raw)
        if record is not None:
            self._fresh[record.uid] = record
        elif (uid := uid_of(raw)) is not None:
            self._bad.add(uid)

    async def commit(self) -> None:
        """Diff against the cache: deletions for vanished objects, upserts for the rest."""
        await self._cache._finish_relist(self._scope, self._fresh, self._bad)


def _where(raw: object) -> str:
    """``namespace/name`` of a raw object for a log line, printable whatever it holds."""
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    if not isinstance(meta, dict):
        return "?"
    return ascii(f"{meta.get('namespace')}/{meta.get('name')}")[1:-1][:200]
