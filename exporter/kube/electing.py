"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Every replica tries to take the Lease each retry period; the holder renews it. Two rules keep
two replicas from leading at once:

- A standby takes the Lease only when its record has not changed for a whole lease duration
  *as measured on the standby's own clock* since it saw the change (no clock is compared
  across machines), and every write carries the resourceVersion it read, so of two racing
  writers one gets 409 Conflict.
- The leader counts itself the leader only until ``renew deadline`` after the start of its
  last successful renewal, on its own monotonic clock (:meth:`Elector.leading`). The deadline
  is shorter than the lease duration, so a leader that hangs (SIGSTOP, a stalled node) has
  stopped before anyone may start, and finds it out at once when it wakes: the clock kept
  running while it was stopped.

The leader's work runs as one task per term, cancelled when the term ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from exporter.health.state import ErrorKind, Health
from exporter.kube.connecting import Connection, Objects
from exporter.kube.watching import Backoff

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
JITTER = 1.2
"""A standby waits a retry period times up to this factor between attempts (client-go's)."""


class LeaseError(Exception):
    """A Lease request failed; the message says why, in words."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What a Lease says, with the resourceVersion a write must carry."""

    holder: str
    duration: float
    acquired: str
    renewed: str
    transitions: int
    version: str


def _micro_time(at: float) -> str:
    """A MicroTime, as the API writes it."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLock:
    """Reads and writes one Lease."""

    def __init__(
        self, namespace: str, name: str, session: aiohttp.ClientSession, conn: Connection
    ) -> None:
        self.namespace, self.name = namespace, name
        collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._api = Objects(collection, session, conn, LeaseError, str(self))

    def __str__(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def _record(self, status: int, payload: Any, doing: str) -> LeaseRecord:
        if not isinstance(payload, dict):
            hint = " (the Role must allow get, create and update on it)" if status == 403 else ""
            raise LeaseError(f"{self}: {doing} answered HTTP {status}{hint}")
        spec = payload.get("spec") or {}
        try:
            return LeaseRecord(
                str(spec.get("holderIdentity") or ""),
                float(spec.get("leaseDurationSeconds") or 0),
                str(spec.get("acquireTime") or ""),
                str(spec.get("renewTime") or ""),
                int(spec.get("leaseTransitions") or 0),
                str(payload["metadata"]["resourceVersion"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LeaseError(f"{self}: {doing} answered something that is not a Lease") from exc

    async def get(self) -> LeaseRecord | None:
        """The Lease, or None when it does not exist yet."""
        status, payload = await self._api.call("GET", self._api.url(self.name))
        return None if status == 404 else self._record(status, payload, "reading it")

    async def write(self, spec: dict[str, Any], version: str | None) -> LeaseRecord | None:
        """Create the Lease (``version`` None) or replace the one read at ``version``.

        None when another writer came first (409 Conflict: it exists already, or changed).
        """
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                **({} if version is None else {"resourceVersion": version}),
            },
            "spec": spec,
        }
        if version is None:
            status, payload = await self._api.call("POST", self._api.url(), body)
        else:
            status, payload = await self._api.call("PUT", self._api.url(self.name), body)
        return None if status == 409 else self._record(status, payload, "writing it")


class Elector:
    """Takes, renews and gives back the Lease for one replica (``identity``)."""

    def __init__(
        self,
        lock: LeaseLock,
        identity: str,
        *,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        health: Health,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.lock, self.identity = lock, identity
        self._lease, self._deadline, self._retry = lease_duration, renew_deadline, retry_period
        self._health = health
        self._clock, self._wall = clock, wall
        self._until = float("-inf")
        """Until when (on :attr:`_clock`) this replica may act as the leader."""
        self._observed: LeaseRecord | None = None
        """The Lease as last read."""
        self._observed_at = 0.0
        """When its holder, renewal or transitions were last seen to change."""
        self._held: LeaseRecord | None = None
        """The Lease as this replica last wrote it, while it may be the holder."""
        self._failing = False
        self.terms = 0
        """Terms led so far (for log lines and tests)."""

    def leading(self) -> bool:
        """True while this replica holds the Lease and renewed it within the renew deadline."""
        return self._clock() < self._until

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: wait for the Lease, run ``lead()`` while it is held, then stand by again.

        ``lead()`` is cancelled the moment a renewal fails for the renew deadline. Should it
        end by itself (a bug), the Lease is given back so that another replica may lead.
        """
        backoff = Backoff(self._retry, 60.0)
        while True:
            await self._acquire()
            self.terms += 1
            logger.info(
                "leading as %s (%s, term %d): exporting the batch series",
                self.identity,
                self.lock,
                self.terms,
            )
            leading = asyncio.create_task(lead())
            holding = asyncio.create_task(self._hold())
            try:
                await asyncio.wait({leading, holding}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (leading, holding):
                    task.cancel()
                await asyncio.gather(leading, holding, return_exceptions=True)
            if holding.done() and not holding.cancelled() and holding.exception() is None:
                logger.warning(
                    "no longer leading (%s not renewed within %.0fs): standing by",
                    self.lock,
                    self._deadline,
                )
                backoff.reset()
                continue
            self._health.count(ErrorKind.INTERNAL)
            error = leading.exception() if not leading.cancelled() else None
            logger.error("the leader's work ended (%r): giving the Lease back", error)
            await self.release()
            await asyncio.sleep(backoff.next())

    async def _acquire(self) -> None:
        """Try every retry period (or when the holder's lease runs out) until it is ours."""
        while True:
            if await self._attempt():
                return
            wait = self._retry * random.uniform(1.0, JITTER)
            seen = self._observed
            if seen is not None and seen.holder not in ("", self.identity):
                expires = self._observed_at + seen.duration - self._clock()
                wait = min(wait, max(0.0, expires) + 0.01)
            await asyncio.sleep(wait)

    async def _hold(self) -> None:
        """Renew every retry period; return once no renewal succeeded for the renew deadline."""
        while True:
            await asyncio.sleep(self._retry)
            while not await self._attempt():
                if not self.leading():
                    return
                await asyncio.sleep(min(self._retry, max(0.0, self._until - self._clock())))
            if not self.leading():
                return

    async def _attempt(self) -> bool:
        """One try to take or renew the Lease; True when this replica holds it now."""
        started = self._clock()
        budget = self._until - started if self.leading() else REQUEST_TIMEOUT_SECONDS
        try:
            held = await asyncio.wait_for(self._take_or_renew(), budget)
        except (LeaseError, TimeoutError) as exc:
            self._health.count(ErrorKind.LEASE)
            if not self._failing:
                logger.warning("cannot take or renew %s: %s", self.lock, exc or "timed out")
            self._failing = True
            return False
        if self._failing:
            logger.info("%s answers again", self.lock)
            self._failing = False
        if held is None:
            self._held = None
            if self.leading():
                self._until = float("-inf")  # someone else holds it: stop at once
            return False
        self._held = held
        self._health.leader = held.holder
        self._until = started + self._deadline
        return True

    async def _take_or_renew(self) -> LeaseRecord | None:
        """The Lease as written by us, or None while another replica holds it."""
        now = _micro_time(self._wall())
        record = await self.lock.get()
        if record is None:
            spec = self._spec(now, now, 0)
            return await self.lock.write(spec, None)
        before = self._observed
        if before is None or _changed(before, record):
            self._observed_at = self._clock()
            if record.holder not in ("", self.identity) and (
                before is None or before.holder != record.holder
            ):
                logger.info("%s is held by %s: standing by", self.lock, record.holder)
        self._observed = record
        self._health.leader = record.holder
        ours = record.holder == self.identity
        if not ours and record.holder and self._clock() < self._observed_at + record.duration:
            return None
        acquired = record.acquired if ours else now
        spec = self._spec(acquired, now, record.transitions + (0 if ours else 1))
        return await self.lock.write(spec, record.version)

    def _spec(self, acquired: str, renewed: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self._lease)),
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    async def release(self) -> None:
        """Give the Lease back (at shutdown), so a standby takes over within a retry period.

        Written over the version this replica last wrote: if anyone changed it since, it is
        not ours to give.
        """
        held, self._held, self._until = self._held, None, float("-inf")
        if held is None or held.holder != self.identity:
            return
        spec = {
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": held.acquired,
            "renewTime": _micro_time(self._wall()),
            "leaseTransitions": held.transitions,
        }
        try:
            if await self.lock.write(spec, held.version) is not None:
                logger.info("gave back %s", self.lock)
        except LeaseError as exc:
            logger.warning("cannot give back %s: %s", self.lock, exc)


def _changed(before: LeaseRecord, after: LeaseRecord) -> bool:
    """The holder renewed, or another took over: its lease duration starts again."""
    return (before.holder, before.renewed, before.transitions) != (
        after.holder,
        after.renewed,
        after.transitions,
    )
