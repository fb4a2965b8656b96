"""CPU of the initial sync in process: the cluster benchmark's fleet through the production wiring.

``make bench`` measures the sync on a real control plane, where the API server, the other
exporters and the network share the two cores, so a change's effect is hard to see in it. Here
the same objects (``bench/fleet.py``'s bodies and statuses, as the API would list them, without
managedFields) are listed into the caches of ``app.wiring.build`` one resource after another,
CronJobs first as on a cluster, and the CPU of each LIST (projection and commit, with every
subscriber and start-up hook) is reported, then that of one plain scrape. Decoding and HTTP are
left out (``bench.micro`` has decoding).

Run: ``make bench-sync`` (or ``python -m bench.sync --size L``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import fleet
from bench.cluster import SIZES
from exporter.app.settings import Settings
from exporter.app.wiring import build
from exporter.store.caching import ObjectCache


def listed(body: dict[str, Any], namespace: str, uid: str) -> dict[str, Any]:
    """``body`` with what the API adds on create."""
    body["metadata"].update(namespace=namespace, uid=uid, creationTimestamp=fleet.stamp(4000))
    return body


def the_fleet(cronjobs: int, jobs: int, pods: int) -> dict[str, list[dict[str, Any]]]:
    """The objects ``bench.fleet.load`` writes, by resource, as a LIST returns them."""
    made: dict[str, list[dict[str, Any]]] = {"cronjobs": [], "jobs": [], "pods": []}
    for i in range(cronjobs):
        body = listed(fleet.cronjob_body(i), fleet.namespace_of(i), f"cj{i}")
        body["status"] = {
            "lastScheduleTime": fleet.stamp(300),
            "lastSuccessfulTime": fleet.stamp(240),
        }
        made["cronjobs"].append(body)
    per_job = max(1, round(pods / jobs))
    for j in range(jobs):
        owner = made["cronjobs"][j % cronjobs] if j % 10 else None
        job = listed(fleet.job_body(j, owner), fleet.namespace_of(j % cronjobs), f"j{j}")
        job["status"] = fleet.job_status(j, running=j % 20 == 7)
        made["jobs"].append(job)
        for k in range(per_job):
            pod = listed(fleet.pod_body(job, k), job["metadata"]["namespace"], f"p{j}-{k}")
            pod["status"] = fleet.pod_status(fleet.pod_outcome(j, k, per_job))
            made["pods"].append(pod)
    return made


async def sync(objects: dict[str, list[dict[str, Any]]]) -> list[tuple[str, float]]:
    """(what, CPU seconds) of each LIST and of one scrape."""
    exporter = build(Settings(new_series_delay=0.0))
    caches: dict[str, ObjectCache[Any]] = {
        "cronjobs": exporter.cronjobs,
        "jobs": exporter.jobs,
        "pods": exporter.pods,
    }
    rows = []
    for resource, cache in caches.items():
        started = time.process_time()
        listing = cache.relist(None)
        for body in objects[resource]:
            listing.add(body)
        await listing.commit()
        what = f"LIST of {len(objects[resource]):,} {resource}"
        rows.append((what, time.process_time() - started))
    started = time.process_time()
    scraped = await exporter.exposition.scrape(openmetrics=False)
    rows.append((f"one scrape ({len(scraped) / 2**20:.1f} MiB)", time.process_time() - started))
    return rows


def main() -> None:
    """Build the fleet of one size, sync it, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="L", choices=list(SIZES))
    args = parser.parse_args()
    objects = the_fleet(*SIZES[args.size])
    rows = asyncio.run(sync(objects))
    print(f"In-process sync at {args.size}\n\n| step | CPU (s) |\n|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    print(f"| all | {sum(seconds for _, seconds in rows):.2f} |")


if __name__ == "__main__":
    main()
