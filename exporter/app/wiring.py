"""Wiring: caches, the owner index, trackers and renderers, subscribed to each other.

:func:`build` makes one :class:`Exporter`; nothing runs until :mod:`exporter.app.lifecycle`
starts its watchers and loops. The subscription order below is the order in which each change
reaches its consumers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from exporter.app.settings import Settings
from exporter.health.state import Health, Resource
from exporter.kube.connecting import Connection
from exporter.kube.watching import Backoff, Endpoint, Watcher
from exporter.metrics import runs, slots, state
from exporter.metrics.registry import Exposition
from exporter.metrics.selfmetrics import registry
from exporter.store.caching import ObjectCache
from exporter.store.owners import OwnerIndex
from exporter.store.projecting import project_cronjob, project_job, project_pod
from exporter.store.records import CronJob, Job, Pod
from exporter.track.runs import RunTracker
from exporter.track.slots import SlotTracker


@dataclass(slots=True)
class Exporter:
    """Everything one exporter process holds, built by :func:`build`."""

    settings: Settings
    health: Health
    jobs: ObjectCache[Job]
    cronjobs: ObjectCache[CronJob]
    pods: ObjectCache[Pod]
    runs: RunTracker
    slots: SlotTracker
    exposition: Exposition

    def watchers(self, session: aiohttp.ClientSession, conn: Connection) -> list[Watcher]:
        """One watcher per resource and namespace scope."""
        s = self.settings
        sinks: list[tuple[Endpoint, ObjectCache[Any]]] = [
            (Endpoint(Resource.JOBS, "/apis/batch/v1"), self.jobs),
            (Endpoint(Resource.CRONJOBS, "/apis/batch/v1"), self.cronjobs),
            (Endpoint(Resource.PODS, "/api/v1", s.pod_label_selector), self.pods),
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
            for scope in s.scopes()
        ]


def build(settings: Settings, clock: Callable[[], float] = time.time) -> Exporter:
    """Create caches, trackers and renderers and subscribe them to each other.

    ``clock`` is what every time-dependent part reads (tests and replays move it by hand).
    """
    health = Health()
    scopes = settings.scopes()
    project = functools.partial(project_job, family_label=settings.job_family_label)
    jobs = ObjectCache(Resource.JOBS, project, health, scopes)
    cronjobs = ObjectCache(Resource.CRONJOBS, project_cronjob, health, scopes)
    pods = ObjectCache(Resource.PODS, project_pod, health, scopes)
    owners = OwnerIndex(health)
    run_tracker = RunTracker(
        health,
        owners,
        duration_buckets=settings.duration_buckets,
        max_owners=settings.max_owners,
        forget_after=settings.forget_owners_after,
        clock=clock,
    )
    slot_tracker = SlotTracker(
        health, grace=settings.missed_grace, max_backfill=settings.max_missed_backfill, clock=clock
    )
    delay = settings.new_series_delay
    exposition = Exposition(registry(health, delay, clock), health, clock, delay)
    rendered = exposition.renderers
    jobs.subscribe(rendered[state.JOB].changed)
    jobs.subscribe(owners.job_changed)
    owners.subscribe(rendered[state.RETAINED].changed)
    cronjobs.subscribe(rendered[state.CRONJOB].changed)
    run_tracker.follow(jobs, pods, cronjobs)
    run_tracker.subscribe(rendered[runs.HISTORY].changed)
    run_tracker.cronjob_success.subscribe(rendered[runs.CRONJOB_SUCCESS].changed)
    slot_tracker.follow(jobs, cronjobs)
    slot_tracker.subscribe(rendered[slots.SLOTS].changed)
    return Exporter(settings, health, jobs, cronjobs, pods, run_tracker, slot_tracker, exposition)
