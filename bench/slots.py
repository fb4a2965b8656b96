"""CPU cost of schedule tracking at steady state (contract §4; target: < 1 % of one core).

Simulates one hour for N CronJobs with a mix of schedules and zones: each slot gets its Job one
second later (as the controller would create it), a tick runs every simulated second, and only
the tracker's own work (Job events and ticks) is timed; projecting the Jobs is done up front.

Run: ``make bench-slots`` (or ``python -m bench.slots --cronjobs 10000``).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import time
from dataclasses import replace
from typing import Any

from exporter.health.state import Health, Resource
from exporter.store.caching import ObjectCache
from exporter.store.projecting import project_cronjob, project_job
from exporter.store.records import Job
from exporter.track.slots import SlotTracker

T0 = 1767225600.0
ZONES = ["", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]


def schedule_mix(i: int, rng: random.Random) -> str:
    """10 % every minute, 30 % every 5 minutes, 30 % hourly, 30 % daily."""
    roll = i % 10
    if roll == 0:
        return "* * * * *"
    if roll <= 3:
        return "*/5 * * * *"
    if roll <= 6:
        return f"{rng.randint(0, 59)} * * * *"
    return f"{rng.randint(0, 59)} {rng.randint(0, 23)} * * *"


def build_tracker(cronjobs: int, rng: random.Random, clock: dict[str, float]) -> SlotTracker:
    """A tracker following ``cronjobs`` listed CronJobs (mixed schedules and zones), no Jobs."""
    health = Health()
    jobs: ObjectCache[Job] = ObjectCache(Resource.JOBS, project_job, health)
    crons: ObjectCache[Any] = ObjectCache(Resource.CRONJOBS, project_cronjob, health)
    tracker = SlotTracker(health, grace=60.0, max_backfill=100, clock=lambda: clock["now"])
    tracker.follow(jobs, crons)
    relist = crons.relist(None)
    for i in range(cronjobs):
        relist.add(
            {
                "metadata": {
                    "uid": f"cj{i}",
                    "name": f"cj{i}",
                    "namespace": f"ns{i % 50}",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                },
                "spec": {"schedule": schedule_mix(i, rng), "timeZone": rng.choice(ZONES)},
            }
        )
    asyncio.run(relist.commit())
    asyncio.run(jobs.relist(None).commit())
    return tracker


def main() -> None:
    """Simulate, measure, print one markdown row.

    Columns: CronJobs, simulated time, slots without a Job, Job events, decisions taken by
    the heap (not by a Job event), slots counted missed, CPU time, share of one core.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--cronjobs", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument(
        "--missing",
        type=float,
        default=0.0,
        help="fraction of slots that get no Job (1.0: controller down)",
    )
    args = parser.parse_args()
    rng = random.Random(1)
    clock = {"now": T0}
    tracker = build_tracker(args.cronjobs, rng, clock)

    template = project_job(
        {
            "metadata": {
                "uid": "x",
                "name": "x",
                "namespace": "x",
                "ownerReferences": [{"kind": "CronJob", "name": "x", "controller": True}],
            }
        }
    )
    arrivals: list[tuple[float, int, Job]] = []
    for state in tracker.crons.values():
        assert state.schedule is not None
        for n, slot in enumerate(state.schedule.slots(T0, T0 + args.seconds)):
            if rng.random() < args.missing:
                continue
            record = replace(
                template,
                uid=f"{state.cj.uid}-{n}",
                name=f"{state.cj.name}-{n}",
                namespace=state.cj.namespace,
                owner_name=state.cj.name,
                created=slot + 1,
                scheduled=slot,
            )
            arrivals.append((slot + 1, len(arrivals), record))
    heapq.heapify(arrivals)
    job_events = len(arrivals)

    cpu = time.process_time()
    looked = 0
    for second in range(1, args.seconds + 1):
        clock["now"] = T0 + second
        while arrivals and arrivals[0][0] <= clock["now"]:
            tracker.job_changed(None, heapq.heappop(arrivals)[2])
        looked += tracker.tick()
    cpu = time.process_time() - cpu
    missed = sum(sum(s.missed.values()) for s in tracker.crons.values())
    print(
        f"| {args.cronjobs} | {args.seconds} s | {args.missing:.0%} | {job_events} | "
        f"{looked} | {missed} | {cpu:.2f} s | {100 * cpu / args.seconds:.3f} % |"
    )


if __name__ == "__main__":
    main()
