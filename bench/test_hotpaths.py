"""Micro-benchmarks of the hot paths (pytest-benchmark; run by `make bench`, not by the tests).

- a Job watch event: projection of the raw object, re-render of its pre-rendered families and
  the run tracker's bookkeeping (``ObjectCache.upsert``);
- a full scrape with 6,300 active Jobs and their Pods (~95k series);
- one tick of the schedule tracker following 10,000 CronJobs, the clock one second further
  each time and no Job arriving (the controller-down case: every due slot is decided).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from bench.micro import job_body, pod_body
from bench.slots import T0, build_tracker
from exporter.app.settings import Settings
from exporter.app.wiring import Exporter, build

JOBS = 6300


@pytest.fixture(scope="module")
def loaded() -> Exporter:
    """An exporter holding 6,300 active Jobs and a Pod each, listed (so they are served)."""
    exporter = build(Settings())
    jobs, pods = [job_body(i) for i in range(JOBS)], [pod_body(i) for i in range(JOBS)]
    for cache, bodies in ((exporter.jobs, jobs), (exporter.pods, pods), (exporter.cronjobs, [])):
        listing = cache.relist(None)
        for body in bodies:
            listing.add(body)
        asyncio.run(listing.commit())
    return exporter


def test_job_event_projection_and_render(benchmark: Any, loaded: Exporter) -> None:
    """A MODIFIED event of an existing Job (its resourceVersion moves on each round)."""
    bodies = [job_body(i) for i in range(200)]
    version = iter(range(10**9))

    def event() -> None:
        body = bodies[next(version) % len(bodies)]
        body["metadata"]["resourceVersion"] = str(next(version))
        loaded.jobs.upsert(body)

    benchmark(event)


def test_full_scrape(benchmark: Any, loaded: Exporter) -> None:
    """The whole /metrics body in the text format."""
    loop = asyncio.new_event_loop()  # one loop: asyncio.run's set-up is not the scrape
    try:
        body = benchmark(lambda: loop.run_until_complete(loaded.exposition.scrape(False)))
    finally:
        loop.close()
    assert body.count(b"\nkube_batch_job_state{") >= JOBS * 5 - 1


def test_schedule_tracker_tick(benchmark: Any) -> None:
    """Worst case per tick: every slot that comes due is decided as missed."""
    clock = {"now": T0}
    tracker = build_tracker(10000, random.Random(1), clock)

    def tick() -> int:
        clock["now"] += 1
        return tracker.tick()

    benchmark(tick)
