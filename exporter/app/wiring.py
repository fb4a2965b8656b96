"""Wiring: caches, the owner index, trackers and renderers, subscribed to each other.

:func:`build` makes one :class:`Exporter`: the caches, which live as long as the process, and
an :class:`Engine` (owner index, trackers, renderers), which lives one term of leadership.
Nothing runs until :mod:`exporter.app.lifecycle` starts its watchers and loops.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from exporter.app.settings import Settings
from exporter.health.state import Health, Resource
from exporter.kube.connecting import Connection
from exporter.kube.watching import Backoff, Endpoint, Watcher
from exporter.metrics import runs, slots, state
from exporter.metrics.registry import Exposition, Renderers
from exporter.metrics.selfmetrics import registry
from exporter.persist.backends import Backend
from exporter.persist.checkpointing import Checkpointer
from exporter.store.caching import ObjectCache
from exporter.store.owners import OwnerIndex
from exporter.store.projecting import (
    CronJobShape,
    JobShape,
    PodShape,
    project_cronjob,
    project_job,
    project_pod,
)
from exporter.store.records import CronJob, Job, Pod
from exporter.track.runs import RunTracker
from exporter.track.slots import SlotTracker


@dataclass(slots=True)
class Engine:
    """The trackers and renderers of one term of leadership, over the process's caches.

    A standby keeps only the caches warm; each term builds a fresh engine, restores the last
    checkpoint into it, :meth:`Exporter.attach` subscribes it and :meth:`Exporter.replay`
    replays the caches into it, which is exactly what a restarted exporter's first LISTs would
    do (contract §10).
    """

    owners: OwnerIndex
    runs: RunTracker
    slots: SlotTracker
    renderers: Renderers


@dataclass(slots=True)
class Exporter:
    """Everything one exporter process holds, built by :func:`build`."""

    settings: Settings
    health: Health
    jobs: ObjectCache[Job]
    cronjobs: ObjectCache[CronJob]
    pods: ObjectCache[Pod]
    exposition: Exposition
    clock: Callable[[], float]
    engine: Engine | None = None
    """The attached engine; None between terms (a standby, or a leader that lost its Lease)."""

    @property
    def runs(self) -> RunTracker:
        """The attached engine's run tracker."""
        assert self.engine is not None, "no engine attached"
        return self.engine.runs

    @property
    def slots(self) -> SlotTracker:
        """The attached engine's slot tracker."""
        assert self.engine is not None, "no engine attached"
        return self.engine.slots

    def new_engine(self) -> Engine:
        """Fresh trackers and renderers, not yet fed anything (a checkpoint goes in first)."""
        s, health, clock = self.settings, self.health, self.clock
        owners = OwnerIndex(health)
        run_tracker = RunTracker(
            health,
            owners,
            duration_buckets=s.duration_buckets,
            max_owners=s.max_owners,
            runs_kept=s.runs_kept,
            forget_after=s.forget_owners_after,
            clock=clock,
        )
        slot_tracker = SlotTracker(
            health, grace=s.missed_grace, max_backfill=s.max_missed_backfill, clock=clock
        )
        renderers = Renderers(health, clock, s.new_series_delay)
        return Engine(owners, run_tracker, slot_tracker, renderers)

    def attach(self, engine: Engine) -> None:
        """Subscribe ``engine`` to the caches; :meth:`replay` then tells it what they hold.

        The subscription order below is the order in which each change reaches its consumers.
        """
        self.detach()
        rendered = engine.renderers
        self.jobs.subscribe(rendered[state.JOB].changed)
        engine.owners.follow(self.jobs)
        engine.owners.subscribe(rendered[state.RETAINED].changed)
        self.cronjobs.subscribe(rendered[state.CRONJOB].changed)
        engine.runs.follow(self.jobs, self.pods, self.cronjobs)
        engine.runs.subscribe(rendered[runs.HISTORY].changed)
        engine.runs.cronjob_success.subscribe(rendered[runs.CRONJOB_SUCCESS].changed)
        engine.slots.follow(self.jobs, self.cronjobs)
        engine.slots.subscribe(rendered[slots.SLOTS].changed)
        self.engine = engine

    async def replay(self) -> None:
        """Replay the caches into the attached engine, then serve its renderers.

        Not served before: a scrape in the middle of the replay would see counters below
        the previous leader's, which Prometheus reads as a reset.
        """
        engine = self.engine
        assert engine is not None, "attach an engine first"
        for cache in (self.cronjobs, self.jobs, self.pods):
            await cache.replay()
        self.exposition.renderers = engine.renderers

    def checkpointer(self, engine: Engine, backend: Backend, cluster: str) -> Checkpointer:
        """What writes ``engine``'s state to ``backend`` and restores it from there."""
        return Checkpointer(
            backend,
            cluster=cluster,
            health=self.health,
            runs=engine.runs,
            slots=engine.slots,
            renderers=engine.renderers,
            duration_buckets=self.settings.duration_buckets,
            clock=self.clock,
        )

    def detach(self) -> None:
        """Stop feeding and serving the attached engine (the caches stay warm)."""
        for cache in (self.cronjobs, self.jobs, self.pods):
            cache.detach()
        self.engine = None
        self.exposition.renderers = None

    def watchers(
        self,
        session: aiohttp.ClientSession,
        conn: Connection,
        scopes: Sequence[str | None] | None = None,
    ) -> list[Watcher]:
        """One watcher per resource and namespace scope (default: the settings' scopes)."""
        s = self.settings
        sinks: list[tuple[Endpoint, ObjectCache[Any]]] = [
            (Endpoint(Resource.JOBS, "/apis/batch/v1", shape=JobShape), self.jobs),
            (Endpoint(Resource.CRONJOBS, "/apis/batch/v1", shape=CronJobShape), self.cronjobs),
            (Endpoint(Resource.PODS, "/api/v1", s.pod_label_selector, PodShape), self.pods),
        ]
        excluded = ",".join(f"metadata.namespace!={ns}" for ns in s.exclude_namespaces)
        return [
            Watcher(
                endpoint,
                cache,
                session=session,
                connection=conn,
                health=self.health,
                namespace=scope,
                field_selector=(excluded or None) if scope is None else None,
                page_size=s.list_page_size,
                list_timeout=s.list_timeout,
                watch_timeout=s.watch_timeout,
                inactivity_timeout=s.watch_inactivity_timeout,
                backoff=Backoff(s.backoff_base, s.backoff_cap),
            )
            for endpoint, cache in sinks
            for scope in (s.scopes() if scopes is None else scopes)
        ]


UNLISTED = "(namespaces not listed yet)"
"""The scope a sharded exporter's caches wait for until the shard knows its namespaces
(exporter/app/sharding.py); no namespace has this name, so it never holds a record."""


def build(
    settings: Settings, clock: Callable[[], float] = time.time, *, engine: bool = True
) -> Exporter:
    """Create the caches and the exposition, and attach an engine unless ``engine`` is False.

    ``clock`` is what every time-dependent part reads (tests and replays move it by hand).
    The lifecycle builds without an engine: each term of leadership attaches its own.
    """
    health = Health(shard=(settings.shard_index(), settings.total_shards))
    scopes = [UNLISTED] if settings.sharded else settings.scopes()
    project = functools.partial(project_job, family_label=settings.job_family_label)
    jobs = ObjectCache(Resource.JOBS, project, health, scopes)
    cronjobs = ObjectCache(Resource.CRONJOBS, project_cronjob, health, scopes)
    pods = ObjectCache(Resource.PODS, project_pod, health, scopes)
    delay = settings.new_series_delay
    exposition = Exposition(registry(health, delay, clock), health)
    exporter = Exporter(settings, health, jobs, cronjobs, pods, exposition, clock)
    if engine:  # the caches are empty: there is nothing to replay, it can be served at once
        first = exporter.new_engine()
        exporter.attach(first)
        exposition.renderers = first.renderers
    return exporter
