"""Instructions per Job event and per scrape, counted by callgrind: repeatable on a busy machine.

Wall-clock micro-benchmarks on our 2-core machines move by tens of percent between runs;
instruction counts do not. The same workload runs three times under ``valgrind
--tool=callgrind`` (nothing; N Jobs created, started and finished through the whole wired
exporter; the same plus K scrapes; the N Jobs on a standby, whose caches feed no engine) and
the differences are the costs, start-up and imports subtracted.

Run: ``make bench-instructions`` (or ``python -m bench.instructions --jobs 2000 --scrapes 5``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from typing import Any


def job(i: int, phase: int) -> dict[str, Any]:
    """Job ``i`` as created (0), started (1) and finished (2), owned by one of 50 CronJobs."""
    status: dict[str, Any] = {}
    if phase == 1:
        status = {"startTime": "2026-01-01T00:00:00Z", "active": 1}
    elif phase == 2:
        status = {
            "startTime": "2026-01-01T00:00:00Z",
            "succeeded": 1,
            "completionTime": "2026-01-01T00:01:00Z",
            "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}],
        }
    owner = f"backup{i % 50}"
    return {
        "metadata": {
            "uid": f"u{i}",
            "name": f"{owner}-{29000000 + i}",
            "namespace": f"ns{i % 20}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "CronJob", "name": owner, "controller": True}],
            "annotations": {
                "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-01-01T00:00:00Z"
            },
        },
        "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6},
        "status": status,
    }


def workload(jobs: int, scrapes: int, standby: int = 0) -> None:
    """What is counted: the events, then the scrapes, through the production wiring.

    ``standby`` = 1 runs the events through a standby's caches, which feed no engine.
    """
    from exporter.app.settings import Settings
    from exporter.app.wiring import build

    exporter = build(Settings(), engine=not standby)
    for cache in (exporter.cronjobs, exporter.jobs, exporter.pods):
        asyncio.run(cache.relist(None).commit())
    bodies = [job(i, phase) for i in range(jobs) for phase in (0, 1, 2)]
    for body in bodies:
        exporter.jobs.upsert(body)
    for _ in range(scrapes):
        asyncio.run(exporter.exposition.scrape(False))


def instructions(jobs: int, scrapes: int, standby: int = 0) -> int:
    """Instructions callgrind counts for one run of :func:`workload`."""
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--run",
            str(jobs),
            str(scrapes),
            str(standby),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", run.stderr)
    assert match, run.stderr[-2000:]
    return int(match.group(1))


def main() -> None:
    """Print the cost of one Job event and of one scrape, as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--run", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        workload(*args.run)
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind not found (Debian package valgrind)")
    base = instructions(0, 0)
    events = instructions(args.jobs, 0)
    scraped = instructions(args.jobs, args.scrapes)
    standby = instructions(args.jobs, 0, standby=1)
    print("| measure | instructions |")
    print("|---|---|")
    per_event = (events - base) / (3 * args.jobs)
    print(f"| one Job event (project, render, index, trackers) | {per_event:,.0f} |")
    per_standby = (standby - base) / (3 * args.jobs)
    print(f"| one Job event on a standby (project, cache) | {per_standby:,.0f} |")
    print(f"| one scrape of {args.jobs:,} Jobs | {(scraped - events) / args.scrapes:,.0f} |")


if __name__ == "__main__":
    main()
