"""``kube-batch-exporter report``: list once with the service's engine, print, exit.

The same caches, trackers and statuses as the service (no second implementation): the
watchers run until every resource finished its first LIST, the trackers decide what is due,
and the owners' statuses are printed as a table or as the JSON of ``/api/v1/owners``. For a
terminal, a CI step or a cron job without Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from typing import TextIO

from exporter.app.settings import Settings
from exporter.app.wiring import build
from exporter.kube.connecting import AccessError, connect
from exporter.report.owners import as_json, failing, owners
from exporter.report.table import table

logger = logging.getLogger(__name__)

HEALTHY, PROBLEMS, UNREACHABLE = 0, 1, 3
"""Exit codes: every owner fine; an owner failing, overdue or unschedulable; the cluster
could not be listed (2 is the usage error of any bad flag)."""


async def report(settings: Settings, output: str, out: TextIO) -> int:
    """List Jobs, Pods and CronJobs once, print every owner's status; return the exit code."""
    # a report is of the whole cluster: sharding splits the work of a long-running exporter
    unsharded = dataclasses.replace(settings, shard=0, total_shards=1, pod_namespace=None)
    exporter = build(unsharded)
    try:
        conn = await connect(settings.kubeconfig, settings.context)
    except AccessError as exc:
        logger.error("%s", exc)
        return UNREACHABLE
    listed = asyncio.Event()
    caches = (exporter.jobs, exporter.cronjobs, exporter.pods)

    async def all_listed() -> None:
        if all(c.synced for c in caches):
            listed.set()

    for cache in caches:
        cache.on_synced(all_listed)
    async with conn.session() as session:
        tasks = [asyncio.create_task(w.run()) for w in exporter.watchers(session, conn)]
        try:
            await asyncio.wait_for(listed.wait(), settings.list_timeout)
        except TimeoutError:
            why = "; ".join(exporter.health.problems()) or "no answer"
            logger.error("could not list the cluster within %ss: %s", settings.list_timeout, why)
            return UNREACHABLE
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
    exporter.slots.tick()
    exporter.runs.tick()
    now = exporter.clock()
    statuses = owners(exporter.runs, exporter.slots, now)
    if output == "json":
        body = {"time": now, "owners": [as_json(o) for o in statuses]}
        out.write(json.dumps(body, indent=2, allow_nan=False) + "\n")
    else:
        out.write(table(statuses, now, colour=out.isatty()))
    return PROBLEMS if failing(statuses) else HEALTHY


def run(settings: Settings, output: str) -> int:
    """Blocking entry point used by the CLI."""
    return asyncio.run(report(settings, output, sys.stdout))
