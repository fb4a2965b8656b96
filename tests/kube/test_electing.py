"""Leader election: at most one leader at any instant, takeover after the lease, hangs caught.

The Lease is an in-memory stand-in with the API's optimistic concurrency (a write at a stale
resourceVersion is refused); the real Lease is exercised on the control plane by
tests/e2e/test_failover.py. Durations are a second and less, on real clocks; each
replica can be frozen, which is what SIGSTOP does to a process: its clock keeps running, it
runs no code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from exporter.health.state import ErrorKind, Health
from exporter.kube.electing import Elector, LeaseError, LeaseRecord

LEASE, DEADLINE, RETRY = 1.0, 0.6, 0.2


class MemoryLease:
    """One Lease, shared by the replicas of a test."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.writes: list[str] = []
        """The holder of every successful write, in order."""


class Replica:
    """A lock on the shared Lease that can be frozen (no answers) or broken (errors)."""

    def __init__(self, lease: MemoryLease) -> None:
        self._lease = lease
        self.frozen = asyncio.Event()
        self.frozen.set()  # set = running
        self.broken = False

    def __str__(self) -> str:
        return "Lease test/lease"

    async def _gate(self) -> None:
        await self.frozen.wait()
        if self.broken:
            raise LeaseError("connection refused")

    async def get(self) -> LeaseRecord | None:
        await self._gate()
        return self._lease.record

    async def write(self, spec: dict[str, Any], version: str | None) -> LeaseRecord | None:
        await self._gate()
        current = self._lease.record
        if (current is None) != (version is None) or (current and current.version != version):
            return None  # 409
        self._lease.version += 1
        self._lease.record = LeaseRecord(
            spec["holderIdentity"],
            float(spec["leaseDurationSeconds"]),
            spec["acquireTime"],
            spec["renewTime"],
            spec["leaseTransitions"],
            str(self._lease.version),
        )
        self._lease.writes.append(spec["holderIdentity"])
        return self._lease.record


def elector(lock: Replica, name: str, health: Health | None = None) -> Elector:
    return Elector(
        lock,  # type: ignore[arg-type]
        name,
        lease_duration=LEASE,
        renew_deadline=DEADLINE,
        retry_period=RETRY,
        health=health or Health(),
    )


async def watch(electors: list[Elector], until: Callable[[], bool], timeout: float) -> list[str]:
    """Sample who leads every 5 ms until ``until()``; fail on two leaders at once."""
    deadline = time.monotonic() + timeout
    leaders: list[str] = []
    while not until():
        assert time.monotonic() < deadline, f"timed out; leaders seen: {leaders}"
        now = [e.identity for e in electors if e.leading()]
        assert len(now) <= 1, f"two leaders at once: {now}"
        if now and (not leaders or leaders[-1] != now[0]):
            leaders.append(now[0])
        await asyncio.sleep(0.005)
    return leaders


async def forever() -> None:
    await asyncio.Event().wait()


def test_one_leads_the_other_takes_over_when_it_hangs() -> None:
    async def scenario() -> None:
        lease = MemoryLease()
        locks = [Replica(lease), Replica(lease)]
        a, b = elector(locks[0], "a"), elector(locks[1], "b")
        tasks = [asyncio.create_task(a.run(forever))]
        await watch([a, b], a.leading, 2)
        tasks.append(asyncio.create_task(b.run(forever)))
        await watch([a, b], lambda: lease.writes.count("a") >= 5, 3)  # a renews, b waits
        assert not b.leading()

        locks[0].frozen.clear()  # a hangs: its requests get no answer
        hung = time.monotonic()
        await watch([a, b], lambda: not a.leading(), 2)
        assert time.monotonic() - hung <= DEADLINE + 0.05  # a stopped within its deadline
        await watch([a, b], b.leading, 3)
        took = time.monotonic() - hung
        assert LEASE - RETRY <= took <= LEASE + 2 * RETRY + 0.1, took

        locks[0].frozen.set()  # a wakes: its stale renewal is refused, it stands by
        await watch([a, b], lambda: lease.writes.count("b") >= 5, 3)
        assert not a.leading() and b.leading()
        assert lease.record is not None and lease.record.transitions == 1
        for task in tasks:
            task.cancel()

    asyncio.run(scenario())


def test_a_leader_whose_clock_ran_on_while_it_was_stopped_has_stopped_leading() -> None:
    offset = [0.0]

    async def scenario() -> None:
        lock = Replica(MemoryLease())
        a = Elector(
            lock,  # type: ignore[arg-type]
            "a",
            lease_duration=LEASE,
            renew_deadline=DEADLINE,
            retry_period=RETRY,
            health=Health(),
            clock=lambda: time.monotonic() + offset[0],
        )
        task = asyncio.create_task(a.run(forever))
        await watch([a], a.leading, 2)
        offset[0] = 30.0  # SIGSTOP for 30 s, then SIGCONT: no code ran in between
        assert not a.leading()  # before any of its tasks got to run again
        task.cancel()

    asyncio.run(scenario())


def test_giving_the_lease_back_hands_over_within_a_retry_period() -> None:
    async def scenario() -> None:
        lease = MemoryLease()
        a, b = elector(Replica(lease), "a"), elector(Replica(lease), "b")
        task_a = asyncio.create_task(a.run(forever))
        await watch([a, b], a.leading, 2)
        task_b = asyncio.create_task(b.run(forever))
        await watch([a, b], lambda: lease.writes.count("a") >= 3, 2)
        task_a.cancel()
        await asyncio.gather(task_a, return_exceptions=True)
        await a.release()
        released = time.monotonic()
        assert not a.leading()
        await watch([a, b], b.leading, 2)
        assert time.monotonic() - released <= RETRY * 1.2 + 0.05
        task_b.cancel()

    asyncio.run(scenario())


def test_the_leaders_work_is_cancelled_with_the_term_and_restarted_with_the_next() -> None:
    async def scenario() -> None:
        lease = MemoryLease()
        lock = Replica(lease)
        health = Health()
        a = elector(lock, "a", health)
        terms: list[str] = []

        async def lead() -> None:
            terms.append("started")
            try:
                await forever()
            finally:
                terms.append("ended")

        task = asyncio.create_task(a.run(lead))
        await watch([a], lambda: terms == ["started"], 2)
        lock.broken = True  # the API refuses: no renewal within the deadline
        await watch([a], lambda: terms == ["started", "ended"], 2)
        assert not a.leading()
        assert health.errors[ErrorKind.LEASE] >= 1
        lock.broken = False  # the Lease still names it, unexpired or not: it leads again
        await watch([a], lambda: terms == ["started", "ended", "started"], 2)
        assert a.terms == 2
        task.cancel()

    asyncio.run(scenario())


def test_work_that_crashes_gives_the_lease_back() -> None:
    async def scenario() -> None:
        lease = MemoryLease()
        health = Health()
        a = elector(Replica(lease), "a", health)

        async def crash() -> None:
            raise RuntimeError("a bug")

        task = asyncio.create_task(a.run(crash))
        await watch([a], lambda: lease.record is not None and lease.record.holder == "", 2)
        assert health.errors[ErrorKind.INTERNAL] == 1
        task.cancel()

    asyncio.run(scenario())
