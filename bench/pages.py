"""The status page's cost at a fleet size: render time, size, and memory per owner (§12).

Run: ``make bench-pages`` (or ``python -m bench.pages --cronjobs 1500 --jobs 15000 --pods
45000``: 3,000 owners, the CronJobs and as many Job families). The fleet is the cluster
benchmark's, fed into the caches as in ``bench/checkpoint.py`` (every owner ran once more
while watched). Prints a markdown table; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
import tracemalloc
from collections import deque

from bench.checkpoint import fill
from exporter.app.settings import Settings
from exporter.app.wiring import build
from exporter.report import pages
from exporter.report.owners import as_json, owners
from exporter.track.runs import RecentRun


def recent_bytes(runs_kept: int, samples: int = 500) -> float:
    """Memory one owner's ``recent`` takes when full: realistic names, traced by tracemalloc."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for i in range(samples):
        runs: deque[RecentRun] = deque(maxlen=runs_kept)
        for j in range(runs_kept):
            name = f"nightly-backup-{i:05d}-{29000000 + j}"
            runs.append(RecentRun(name, "schedule", 1e9 + j, 1e9 + j + 60, 60.0 + j, "failed",
                                  "BackoffLimitExceeded", (("Error", 1),)))  # fmt: skip
        kept.append(runs)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / samples


def main() -> None:
    """Load the fleet, build and render the statuses ``--repeat`` times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cronjobs", type=int, default=1500)
    parser.add_argument("--jobs", type=int, default=15000)
    parser.add_argument("--pods", type=int, default=45000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    e = build(Settings())
    fill(e, args.cronjobs, args.jobs, args.pods)
    now = e.clock()
    builds, renders, jsons = [], [], []
    for _ in range(args.repeat):
        began = time.perf_counter()
        statuses = owners(e.runs, e.slots, now)
        built = time.perf_counter()
        page = pages.index(statuses, now, True)
        rendered = time.perf_counter()
        body = json.dumps([as_json(o) for o in statuses])
        builds.append(built - began)
        renders.append(rendered - built)
        jsons.append(time.perf_counter() - rendered)
    print(
        "| owners | statuses | HTML page | its size (gzip) | /api/v1/owners | its size "
        "| memory per owner for 20 latest runs |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {len(statuses):,} | {statistics.median(builds) * 1000:.0f} ms "
        f"| {statistics.median(renders) * 1000:.0f} ms "
        f"| {len(page) / 1e6:.2f} MB ({len(gzip.compress(page.encode())) / 1e3:.0f} kB) "
        f"| {statistics.median(jsons) * 1000:.0f} ms | {len(body) / 1e6:.2f} MB "
        f"| {recent_bytes(Settings().runs_kept) / 1024:.1f} KiB |"
    )


if __name__ == "__main__":
    main()
