"""Wiring and lifecycle: caches, renderers, watchers, the HTTP server, signals.

One asyncio task per watcher (one loop per concern), supervised so that an unexpected bug in
one restarts that watcher instead of killing the process; SIGTERM/SIGINT stop everything within
a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from exporter import __version__, health
from exporter.caching import ObjectCache
from exporter.connecting import AccessError, Connection, connect
from exporter.projecting import CronJob, Job, Pod, project_cronjob, project_job, project_pod
from exporter.schedules import ScheduleState
from exporter.securing import WebConfigError, load_web_config
from exporter.serving import Service
from exporter.settings import Settings
from exporter.slots import SlotTracker
from exporter.statemetrics import RetainedJobs, cronjob_renderer, job_renderer
from exporter.tracking import RunTracker
from exporter.watching import Backoff, Resource, Watcher

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 4.0


@dataclass(slots=True)
class Exporter:
    """Everything one exporter process holds, built by :func:`build`."""

    settings: Settings
    health: health.Health
    jobs: ObjectCache[Job]
    cronjobs: ObjectCache[CronJob]
    pods: ObjectCache[Pod]
    tracker: RunTracker
    slots: SlotTracker
    service: Service

    def watchers(self, session: aiohttp.ClientSession, conn: Connection) -> list[Watcher]:
        """One watcher per resource and namespace scope."""
        s = self.settings
        resources: list[tuple[Resource, ObjectCache[Any]]] = [
            (Resource("jobs", "/apis/batch/v1"), self.jobs),
            (Resource("cronjobs", "/apis/batch/v1"), self.cronjobs),
            (Resource("pods", "/api/v1", s.pod_label_selector), self.pods),
        ]
        excluded = ",".join(f"metadata.namespace!={ns}" for ns in s.exclude_namespaces)
        return [
            Watcher(
                resource,
                cache,
                session=session,
                connection=conn,
                health=self.health,
                namespace=scope,
                field_selector=(excluded or None) if scope is None else None,
                page_size=s.page_size,
                watch_timeout=s.watch_timeout_seconds,
                inactivity_timeout=s.inactivity_timeout_seconds,
                backoff=Backoff(s.backoff_base_seconds, s.backoff_cap_seconds),
            )
            for resource, cache in resources
            for scope in scopes(s)
        ]


def scopes(settings: Settings) -> list[str | None]:
    """The namespaces to list+watch separately, or ``[None]`` for all namespaces."""
    chosen = [ns for ns in settings.namespaces if ns not in settings.exclude_namespaces]
    return list(chosen) if settings.namespaces else [None]


def build(settings: Settings) -> Exporter:
    """Create caches and renderers and subscribe them to each other."""
    h = health.Health()
    scope_list = scopes(settings)
    jobs = ObjectCache(
        "jobs",
        functools.partial(project_job, family_label=settings.job_family_label),
        h,
        scope_list,
    )
    cronjobs = ObjectCache("cronjobs", project_cronjob, h, scope_list)
    pods = ObjectCache("pods", project_pod, h, scope_list)
    job_metrics, cronjob_metrics, retained = job_renderer(), cronjob_renderer(), RetainedJobs()
    jobs.subscribe(job_metrics.changed)
    jobs.subscribe(retained.changed)
    cronjobs.subscribe(cronjob_metrics.changed)
    schedules = ScheduleState(h)
    cronjobs.subscribe(schedules.changed)
    tracker = RunTracker(
        h,
        duration_buckets=settings.duration_buckets,
        max_owners=settings.max_owners,
        forget_after=settings.forget_owners_after_seconds,
    )
    tracker.follow(jobs, pods, cronjobs)
    slots = SlotTracker(
        h, grace=settings.missed_grace_seconds, max_backfill=settings.max_missed_backfill
    )
    slots.follow(jobs, cronjobs)
    service = Service(
        [cronjob_metrics, schedules, slots, job_metrics, retained, tracker],
        health.registry(h),
        h,
    )
    return Exporter(settings, h, jobs, cronjobs, pods, tracker, slots, service)


async def _decide_slots(slots: SlotTracker) -> None:
    """Wake when the earliest pending slot can be decided (at least once a second)."""
    while True:
        slots.tick()
        due = slots.next_due()
        await asyncio.sleep(1.0 if due is None else min(1.0, max(0.05, due - time.time())))


async def _forget_idle_owners(tracker: RunTracker, period: float) -> None:
    """Once a period, drop run history of owners gone for longer than the retention."""
    while True:
        await asyncio.sleep(period)
        if forgotten := tracker.forget_idle():
            logger.info("forgot the run history of %d idle owners", forgotten)


async def _supervise(name: str, run: Callable[[], Awaitable[None]], h: health.Health) -> None:
    backoff = Backoff(1.0, 60.0)
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            h.errors["internal"] += 1
            delay = backoff.next()
            logger.exception("%s crashed; restarting in %.1fs", name, delay)
            await asyncio.sleep(delay)


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Run the exporter until ``stop`` is set; return the process exit code."""
    exporter = build(settings)
    try:
        web_config = load_web_config(settings.web_config_file) if settings.web_config_file else None
        tls = web_config.ssl_context() if web_config else None
        conn = await connect(settings.kubeconfig, settings.context)
    except (AccessError, WebConfigError) as exc:
        logger.error("%s", exc)
        return 1
    app = exporter.service.app()
    if web_config and web_config.users:
        app.middlewares.append(web_config.middleware())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(
            runner, settings.listen_host, settings.listen_port, ssl_context=tls
        ).start()
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", settings.listen_host, settings.listen_port, exc)
        await runner.cleanup()
        return 1
    logger.info(
        "kube-batch-exporter %s serving on %s://%s:%d/%s (API server %s)",
        __version__,
        "https" if tls else "http",
        settings.listen_host,
        settings.listen_port,
        " with basic auth" if web_config and web_config.users else "",
        conn.host,
    )
    async with conn.session() as session:
        tasks = [
            asyncio.create_task(
                _supervise(f"watcher for {w.resource.plural}", w.run, exporter.health)
            )
            for w in exporter.watchers(session, conn)
        ]
        forget = functools.partial(_forget_idle_owners, exporter.tracker, 60.0)
        tasks.append(asyncio.create_task(_supervise("owner forgetting", forget, exporter.health)))
        decide = functools.partial(_decide_slots, exporter.slots)
        tasks.append(asyncio.create_task(_supervise("slot tracking", decide, exporter.health)))
        await stop.wait()
        logger.info("stopping")
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS / 2)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS / 2)
    return 0


def run(settings: Settings) -> int:
    """Blocking entry point used by the CLI."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop)

    return asyncio.run(main())
