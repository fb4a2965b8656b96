"""The exporter as production wires it, fed the way its watchers feed it, on a test's clock.

Tests of the trackers and their families drive this instead of re-wiring parts by hand: the
caches, owner index, trackers and renderers are those of :func:`exporter.app.wiring.build`.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from exporter.app.settings import Settings
from exporter.app.wiring import build
from exporter.metrics.exposition import Group
from exporter.persist.backends import Backend
from exporter.persist.checkpointing import Checkpointer
from exporter.store.caching import ObjectCache
from exporter.track.runs import RunTracker
from exporter.track.slots import SlotTracker

T0 = 1767225600.0  # 2026-01-01T00:00:00Z, a multiple of every schedule the tests use
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def ts(seconds: float) -> str:
    """RFC 3339 for T0 + seconds, as the API server writes it."""
    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """One exporter, its clock at ``T0 + now``; ``settings`` are fields of Settings.

    New series are served at their value at once unless a test sets ``new_series_delay``:
    most tests are about what is counted, and the births have their own tests.
    """

    def __init__(self, now: float = 0.0, standby: bool = False, **settings: Any) -> None:
        """``standby``: caches only, no engine, until :meth:`take_over`."""
        self.now = T0 + now
        settings.setdefault("new_series_delay", 0.0)
        self.exporter = build(Settings(**settings), clock=lambda: self.now, engine=not standby)
        self.health = self.exporter.health
        self.jobs = self.exporter.jobs
        self.pods = self.exporter.pods
        self.cronjobs = self.exporter.cronjobs

    @property
    def runs(self) -> RunTracker:
        return self.exporter.runs

    @property
    def slots(self) -> SlotTracker:
        return self.exporter.slots

    def take_over(self, backend: Backend) -> None:
        """Lead from now on, as the lifecycle's term does: restore, then attach."""
        engine = self.exporter.new_engine()

        async def lead() -> None:
            await self.exporter.checkpointer(engine, backend, "test-cluster").restore()
            self.exporter.attach(engine)
            await self.exporter.replay()

        asyncio.run(lead())

    def start(
        self,
        cronjobs: Sequence[dict[str, Any]] = (),
        jobs: Sequence[dict[str, Any]] = (),
        pods: Sequence[dict[str, Any]] = (),
    ) -> None:
        """The first full LISTs of the three resources."""
        relist(self.cronjobs, cronjobs)
        relist(self.jobs, jobs)
        relist(self.pods, pods)

    def checkpointer(self, backend: Backend, cluster: str = "test-cluster") -> Checkpointer:
        """A checkpointer over this exporter's engine, as the lifecycle makes it."""
        engine = self.exporter.engine
        assert engine is not None
        return self.exporter.checkpointer(engine, backend, cluster)

    def at(self, seconds: float) -> World:
        """Move the clock to T0 + seconds and let the trackers decide what fell due."""
        self.now = T0 + seconds
        self.slots.tick()
        self.runs.tick()
        return self

    def series(self, *groups: Group[Any], identity: Iterable[str] = ()) -> Series:
        """The samples of ``groups`` by (name, labels other than ``identity``)."""
        names = {f.name for group in groups for f in group.all}
        hidden = set(identity)
        text = asyncio.run(self.exporter.exposition.scrape(openmetrics=False)).decode()
        return {
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in hidden))): s.value
            for family in text_string_to_metric_families(text)
            if family.name in names or family.name + "_total" in names
            for s in family.samples
        }


def relist(cache: ObjectCache[Any], items: Iterable[dict[str, Any]]) -> None:
    """A complete LIST of ``items`` (copied: projection must not depend on the dicts)."""
    listing = cache.relist(None)
    for item in items:
        listing.add(copy.deepcopy(item))
    asyncio.run(listing.commit())


def every_family(namespace: str = "n") -> World:
    """A world in which every batch family has a series: a CronJob with thresholds, a
    finished run with a failed pod, and a run going on (``namespace`` may be hostile)."""
    w = World(now=3600)
    owner = [{"kind": "CronJob", "name": "cj", "controller": True}]
    cronjob = {
        "metadata": {
            "uid": "c",
            "name": "cj",
            "namespace": namespace,
            "creationTimestamp": ts(0),
            "annotations": {"kube-batch-exporter/max-duration": "1h"},
        },
        "spec": {"schedule": "*/5 * * * *", "startingDeadlineSeconds": 60},
        "status": {"lastScheduleTime": ts(3300)},
    }
    w.start(cronjobs=[cronjob])
    for uid, slot in (("j1", 3300), ("j2", 3600)):
        w.jobs.upsert(
            {
                "metadata": {
                    "uid": uid,
                    "name": f"cj-{int((T0 + slot) // 60)}",
                    "namespace": namespace,
                    "ownerReferences": owner,
                    "creationTimestamp": ts(slot + 1),
                },
                "spec": {
                    "completions": 1,
                    "parallelism": 1,
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 600,
                },
                "status": {"startTime": ts(slot + 2), "active": 1, "ready": 1, "terminating": 0},
            }
        )
    pod = {
        "metadata": {
            "uid": "p",
            "namespace": namespace,
            "ownerReferences": [{"kind": "Job", "uid": "j1", "controller": True}],
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "restartCount": 1,
                    "state": {
                        "terminated": {"exitCode": 1, "reason": "Error", "startedAt": ts(3303)}
                    },
                }
            ],
        },
    }
    w.pods.upsert(pod)
    w.jobs.upsert(
        {
            "metadata": {"uid": "j1", "name": f"cj-{int((T0 + 3300) // 60)}",
                         "namespace": namespace, "ownerReferences": owner,
                         "creationTimestamp": ts(3301)},
            "status": {"startTime": ts(3302), "succeeded": 1, "completionTime": ts(3350),
                       "conditions": [{"type": "Complete", "status": "True"}]},
        }
    )  # fmt: skip
    return w
