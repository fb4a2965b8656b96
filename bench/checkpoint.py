"""Checkpoint size, write, restore and takeover time at a fleet size (contract §10, §11).

Run: ``make bench-checkpoint`` (or ``python -m bench.checkpoint --cronjobs 3000 --jobs 30000
--pods 90000``). The fleet is the cluster benchmark's (``bench/fleet.py``), fed straight into
the exporter's caches, then every CronJob and Job family runs once more while the exporter
watches, so every owner has counters, histograms and series births to keep. A takeover is
what a standby does when it gets the Lease: restore into a fresh engine, then replay its warm
caches into it. Prints a markdown table; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bench import fleet
from exporter.app.settings import Settings
from exporter.app.wiring import Exporter, build
from exporter.persist.backends import FileBackend
from exporter.persist.checkpointing import Checkpointer


def made(body: dict[str, Any], namespace: str, status: dict[str, Any] | None) -> dict[str, Any]:
    """``body`` as the API server returns it once created (and its status written)."""
    meta = body["metadata"]
    meta |= {
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "creationTimestamp": fleet.stamp(900),
    }
    return {**body, "status": status or {}}


def fill(e: Exporter, cronjobs: int, jobs: int, pods: int) -> None:
    """The fleet as the first LISTs deliver it, then one more run per owner, seen live."""
    crons = [
        made(fleet.cronjob_body(i), fleet.namespace_of(i), {"lastScheduleTime": fleet.stamp(300)})
        for i in range(cronjobs)
    ]
    listed = []
    for j in range(jobs):
        owner = crons[j % cronjobs] if j % 10 else None
        body = fleet.job_body(j, owner)
        listed.append(
            made(body, fleet.namespace_of(j % cronjobs), fleet.job_status(j, j % 20 == 7))
        )
    per_job = max(1, round(pods / jobs))
    pod_objects = [
        made(fleet.pod_body(job, k), job["metadata"]["namespace"], fleet.pod_status("Failed"))
        for job in listed
        for k in range(per_job)
    ]
    for cache, items in ((e.cronjobs, crons), (e.jobs, listed), (e.pods, pod_objects)):
        listing = cache.relist(None)
        for item in items:
            listing.add(item)
        asyncio.run(listing.commit())
    for j, job in enumerate(listed):  # the running ones finish
        if j % 20 == 7:
            e.jobs.upsert({**job, "status": fleet.finished_status()})
    for i, cron in enumerate(crons):  # and every CronJob runs once more
        body = fleet.job_body(jobs + i, cron)
        again = made(body, cron["metadata"]["namespace"], fleet.job_status(i, running=True))
        e.jobs.upsert(again)
        e.jobs.upsert({**again, "status": fleet.finished_status()})


def checkpointer(e: Exporter, path: Path) -> Checkpointer:
    """A checkpointer over ``e``'s engine writing to ``path``, as the lifecycle makes one."""
    assert e.engine is not None
    return e.checkpointer(e.engine, FileBackend(str(path)), "bench")


async def longest_stall(work: Coroutine[Any, Any, None]) -> tuple[float, float]:
    """Run ``work`` while a sampler measures the event loop's longest stall: both seconds."""
    longest = 0.0

    async def sample() -> None:
        nonlocal longest
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.001)
            longest = max(longest, time.perf_counter() - began - 0.001)

    sampler = asyncio.create_task(sample())
    await asyncio.sleep(0)
    began = time.perf_counter()
    await work
    took = time.perf_counter() - began
    sampler.cancel()
    return took, longest


def main() -> None:
    """Load the fleet, write the checkpoint ``--repeat`` times, restore it as often."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cronjobs", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=30000)
    parser.add_argument("--pods", type=int, default=90000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    e = build(Settings())
    started = time.perf_counter()
    fill(e, args.cronjobs, args.jobs, args.pods)
    print(f"fleet loaded in {time.perf_counter() - started:.1f}s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "state"
        writes = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            assert asyncio.run(checkpointer(e, path).save())
            writes.append(time.perf_counter() - began)
        size = path.stat().st_size
        restores = []
        for _ in range(args.repeat):
            fresh = build(Settings())
            began = time.perf_counter()
            assert asyncio.run(checkpointer(fresh, path).restore())
            restores.append(time.perf_counter() - began)
        owners = len(e.runs.histories)
        replays = []
        for _ in range(args.repeat):
            engine = e.new_engine()
            assert asyncio.run(e.checkpointer(engine, FileBackend(str(path)), "bench").restore())
            e.attach(engine)
            replays.append(asyncio.run(longest_stall(e.replay())))
            assert len(engine.runs.histories) == owners
    print(
        f"| fleet | owners | checkpoint (gzip) | write (median of {args.repeat}) | restore "
        "| takeover's replay of the caches |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.cronjobs:,} CronJobs, {args.jobs:,} Jobs, {args.pods:,} Pods | {owners:,} "
        f"| {size / 1e6:.2f} MB | {statistics.median(writes):.2f} s "
        f"| {statistics.median(restores):.2f} s "
        f"| {statistics.median(t for t, _ in replays):.2f} s, longest stall "
        f"{max(s for _, s in replays) * 1000:.0f} ms |"
    )


if __name__ == "__main__":
    main()
