"""Lifecycle: start the HTTP server, the watchers and the trackers' loops; stop on a signal.

One asyncio task per concern (each watcher, each tracker's clock, owner forgetting), each
supervised so that an unexpected bug restarts that task instead of killing the process
(``errors_total{kind="internal"}``); SIGTERM/SIGINT stop everything within
:data:`SHUTDOWN_SECONDS` plus the server's own second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from aiohttp import web

from exporter import __version__
from exporter.app.securing import WebConfigError, load_web_config
from exporter.app.serving import Service
from exporter.app.settings import Settings
from exporter.app.wiring import Exporter, build
from exporter.cron.durations import format_go_duration
from exporter.health.state import ErrorKind, Health
from exporter.kube.connecting import AccessError, Connection, connect
from exporter.kube.watching import Backoff
from exporter.persist.backends import Backend, ConfigMapBackend, FileBackend
from exporter.persist.checkpointing import Checkpointer
from exporter.track.runs import RunTracker

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 4.0
"""What SIGTERM may take (the contract promises 5 s): a quarter for the tasks, half for the
last checkpoint, a quarter for HTTP."""
TICK_SECONDS = 1.0
"""A tracker's clock loop wakes at least this often: ``overdue_seconds`` and missed slots are
decided to the second."""
FORGET_PERIOD_SECONDS = 60.0
"""How often idle owners are looked for (their retention is ``--forget-owners-after``)."""


class Ticking(Protocol):
    """A tracker with decisions that fall due with time."""

    def tick(self) -> int:
        """Decide what is due now."""

    def next_due(self) -> float | None:
        """When something falls due next."""


async def _tick(tracker: Ticking) -> None:
    """Wake when the tracker's next decision is due, and at least every :data:`TICK_SECONDS`."""
    while True:
        tracker.tick()
        due = tracker.next_due()
        wait = TICK_SECONDS if due is None else min(TICK_SECONDS, max(0.05, due - time.time()))
        await asyncio.sleep(wait)


async def _forget_idle_owners(tracker: RunTracker) -> None:
    """Once a period, drop run history of owners gone for longer than the retention."""
    while True:
        await asyncio.sleep(FORGET_PERIOD_SECONDS)
        if forgotten := tracker.forget_idle():
            logger.info("forgot the run history of %d idle owners", forgotten)


async def _supervise(name: str, run: Callable[[], Awaitable[None]], health: Health) -> None:
    backoff = Backoff(1.0, 60.0)
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            health.count(ErrorKind.INTERNAL)
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
    app = Service(exporter.exposition, exporter.health).app()
    if web_config and web_config.users:
        app.middlewares.append(web_config.middleware())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host, port = settings.listen
    try:
        await web.TCPSite(runner, host, port, ssl_context=tls).start()
    except OSError as exc:
        logger.error("cannot listen on %s: %s", settings.listen, exc)
        await runner.cleanup()
        return 1
    logger.info(
        "kube-batch-exporter %s serving on %s://%s/%s (API server %s)",
        __version__,
        "https" if tls else "http",
        settings.listen,
        " with basic auth" if web_config and web_config.users else "",
        conn.host,
    )
    health = exporter.health
    async with conn.session() as session:
        checkpointer = checkpointing(exporter, session, conn)
        if checkpointer is not None:
            await checkpointer.restore()  # before the first LIST: relisted Jobs meet it
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (f"watcher for {w.endpoint.resource}", w.run) for w in exporter.watchers(session, conn)
        ]
        loops += [
            ("slot tracking", lambda: _tick(exporter.slots)),
            ("run tracking", lambda: _tick(exporter.runs)),
            ("owner forgetting", lambda: _forget_idle_owners(exporter.runs)),
        ]
        if checkpointer is not None:
            writer = checkpointer
            loops.append(("checkpointing", lambda: writer.run(settings.state_interval)))
        tasks = [asyncio.create_task(_supervise(name, run, health)) for name, run in loops]
        await stop.wait()
        logger.info("stopping")
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS / 4)
        if checkpointer is not None:
            try:
                await asyncio.wait_for(checkpointer.save(), SHUTDOWN_SECONDS / 2)
            except TimeoutError:
                health.count(ErrorKind.STATE)
                logger.warning("the last checkpoint took too long and was not written")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS / 4)
    return 0


def checkpointing(
    exporter: Exporter, session: aiohttp.ClientSession, conn: Connection
) -> Checkpointer | None:
    """The checkpointer the settings ask for, if any."""
    s = exporter.settings
    backend: Backend
    if s.state_file:
        backend = FileBackend(s.state_file)
    elif s.state_configmap:
        namespace, _, name = s.state_configmap.partition("/")
        backend = ConfigMapBackend(namespace, name, session, conn)
    else:
        return None
    if s.state_interval >= s.new_series_delay > 0:
        logger.warning(
            "--state-interval %s is not below --new-series-delay %s: a series born just "
            "before a crash may be seen at 0 again after the restart",
            format_go_duration(s.state_interval),
            format_go_duration(s.new_series_delay),
        )
    return Checkpointer(
        backend,
        cluster=conn.cluster,
        health=exporter.health,
        runs=exporter.runs,
        slots=exporter.slots,
        exposition=exporter.exposition,
        duration_buckets=s.duration_buckets,
    )


def run(settings: Settings) -> int:
    """Blocking entry point used by the CLI."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop)

    return asyncio.run(main())
