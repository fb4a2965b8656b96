"""Lifecycle: start the HTTP server, the watchers and the leader's loops; stop on a signal.

One asyncio task per concern (each watcher, leader election, and while leading each
tracker's clock, owner forgetting and checkpointing), each supervised so that an unexpected
bug restarts that task instead of killing the process (``errors_total{kind="internal"}``);
SIGTERM/SIGINT stop everything within :data:`SHUTDOWN_SECONDS` plus the server's own second.
The watchers run in every replica, so a standby's caches are warm when it takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from aiohttp import web

from exporter import __version__
from exporter.app.securing import WebConfigError, load_web_config
from exporter.app.serving import Service
from exporter.app.settings import Settings
from exporter.app.sharding import Shard
from exporter.app.wiring import Exporter, build
from exporter.cron.durations import format_go_duration
from exporter.health.state import ErrorKind, Health
from exporter.kube.connecting import AccessError, Connection, connect
from exporter.kube.electing import Elector, LeaseLock
from exporter.kube.watching import Backoff
from exporter.persist.backends import Backend, ConfigMapBackend, FileBackend
from exporter.persist.checkpointing import Checkpointer
from exporter.track.runs import RunTracker

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 4.0
"""What SIGTERM may take (the contract promises 5 s): a quarter for the tasks, half for the
last checkpoint, an eighth each for giving the Lease back and for HTTP."""
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


LAG_SAMPLE_SECONDS = 0.1


async def _sample_loop_lag(health: Health) -> None:
    """Sleep a fixed time, again and again, and record how late the loop woke us.

    The lateness is how long some other piece of work held the loop: a stall of one second
    shows as one observation of about a second, so the histogram's top bucket in use is the
    longest stall (issue 18's bar is 50 ms). 10 observations a second cost microseconds.
    """
    while True:
        due = time.monotonic() + LAG_SAMPLE_SECONDS
        await asyncio.sleep(LAG_SAMPLE_SECONDS)
        health.loop_lag.observe(max(0.0, time.monotonic() - due))


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


class Term:
    """What the exporter does while it leads: a fresh engine, continued from the checkpoint.

    :meth:`lead` builds the engine, restores the last checkpoint into it, attaches it to the
    warm caches (which replays them into it, like a restart's first LIST) and then runs the
    trackers' loops and the checkpoint writer until cancelled. Without ``--leader-elect``
    there is one term, as long as the process.
    """

    def __init__(self, exporter: Exporter, backend: Backend | None, cluster: str) -> None:
        self._exporter = exporter
        self._backend = backend
        self._cluster = cluster
        self.checkpointer: Checkpointer | None = None
        """The current term's checkpoint writer (kept after the term for the last write)."""

    async def lead(self) -> None:
        """Lead until cancelled; the engine is detached (not served, not fed) at the end."""
        exporter, settings = self._exporter, self._exporter.settings
        engine = exporter.new_engine()
        self.checkpointer = None
        try:
            if self._backend is not None:
                checkpointer = exporter.checkpointer(engine, self._backend, self._cluster)
                await checkpointer.restore()
                self.checkpointer = checkpointer
            exporter.attach(engine)
            await exporter.replay()
            loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("slot tracking", lambda: _tick(engine.slots)),
                ("run tracking", lambda: _tick(engine.runs)),
                ("owner forgetting", lambda: _forget_idle_owners(engine.runs)),
            ]
            if self.checkpointer is not None:
                writer = self.checkpointer
                loops.append(("checkpointing", lambda: writer.run(settings.state_interval)))
            await asyncio.gather(*(_supervise(name, run, exporter.health) for name, run in loops))
        finally:
            exporter.detach()

    async def last_checkpoint(self) -> None:
        """At SIGTERM, while still the leader: write the term's state once more."""
        if self.checkpointer is None:
            return
        try:
            await asyncio.wait_for(self.checkpointer.save(), SHUTDOWN_SECONDS / 2)
        except TimeoutError:
            self._exporter.health.count(ErrorKind.STATE)
            logger.warning("the last checkpoint took too long and was not written")


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    """Run the exporter until ``stop`` is set; return the process exit code."""
    exporter = build(settings, engine=False)
    try:
        web_config = load_web_config(settings.web_config_file) if settings.web_config_file else None
        tls = web_config.ssl_context() if web_config else None
        conn = await connect(settings.kubeconfig, settings.context)
    except (AccessError, WebConfigError) as exc:
        logger.error("%s", exc)
        return 1
    app = Service(exporter).app()
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
        elector = electing(settings, session, conn, health)
        term = Term(exporter, state_backend(settings, session, conn, health), conn.cluster)
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if settings.sharded:

            def spawn(name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
                return asyncio.create_task(_supervise(name, run, health))

            loops.append(("shard", Shard(exporter, session, conn, spawn).run))
        else:
            watchers = exporter.watchers(session, conn)
            loops += [(f"watcher for {w.endpoint.resource}", w.run) for w in watchers]
        loops.append(("loop-lag sampler", lambda: _sample_loop_lag(health)))
        if elector is None:
            loops.append(("leading", term.lead))
        else:
            loops.append(("leader election", lambda: elector.run(term.lead)))
        tasks = [asyncio.create_task(_supervise(name, run, health)) for name, run in loops]
        await stop.wait()
        logger.info("stopping")
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS / 4)
        await term.last_checkpoint()  # checks that this replica still leads
        if elector is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(elector.release(), SHUTDOWN_SECONDS / 8)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner.cleanup(), SHUTDOWN_SECONDS / 8)
    return 0


def electing(
    settings: Settings, session: aiohttp.ClientSession, conn: Connection, health: Health
) -> Elector | None:
    """The elector ``--leader-elect`` asks for; it answers ``health.leading()`` from now on."""
    if not settings.leader_elect:
        return None
    namespace, name = settings.lease()
    elector = Elector(
        LeaseLock(namespace, name, session, conn),
        settings.pod or socket.gethostname(),
        lease_duration=settings.leader_elect_lease_duration,
        renew_deadline=settings.leader_elect_renew_deadline,
        retry_period=settings.leader_elect_retry_period,
        health=health,
    )
    health.leading = elector.leading
    logger.info(
        "leader election on Lease %s/%s as %s: standing by until it is ours",
        namespace,
        name,
        elector.identity,
    )
    return elector


def state_backend(
    settings: Settings, session: aiohttp.ClientSession, conn: Connection, health: Health
) -> Backend | None:
    """Where the settings ask the checkpoint to be kept, if anywhere."""
    s = settings
    if s.state_interval >= s.new_series_delay > 0 and (s.state_file or s.state_configmap):
        logger.warning(
            "--state-interval %s is not below --new-series-delay %s: a series born just "
            "before a crash may be seen at 0 again after the restart",
            format_go_duration(s.state_interval),
            format_go_duration(s.new_series_delay),
        )
    if s.state_file:
        return FileBackend(s.state_file)
    if (where := s.state_object()) is not None:
        namespace, name = where
        return ConfigMapBackend(namespace, name, session, conn, allowed=lambda: health.leading())
    return None


def run(settings: Settings) -> int:
    """Blocking entry point used by the CLI."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop)

    return asyncio.run(main())
