"""Schedule state of each CronJob: is its schedule usable, and when is its next slot.

A CronJob whose schedule or time zone the controller cannot use never runs and says so only
in an event; here it gets ``kube_batch_cronjob_schedule_valid 0``, one warning per change and
``kube_batch_exporter_errors_total{kind="bad_schedule"}``.

The next slot depends on the clock, so it is a live family; each CronJob's next slot is cached
and recomputed only once it has passed, so a scrape costs a dictionary lookup per CronJob, not
a cron search.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from exporter.health import Health
from exporter.projecting import CronJob
from exporter.rendering import Family, LiveFamily, RenderedFamilies
from exporter.scheduling import InvalidSchedule, Schedule, parse
from exporter.statemetrics import cronjob_identity

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4096)
def parse_cached(spec: str, timezone: str) -> Schedule | InvalidSchedule:
    """Parse once per distinct (schedule, zone); the error is returned, not raised."""
    try:
        return parse(spec, timezone)
    except InvalidSchedule as exc:
        return exc


class ScheduleState:
    """Cache subscriber and scrape writer for the schedule rows of contract §2."""

    def __init__(self, health: Health, clock: Callable[[], float] = time.time) -> None:
        self._health = health
        self._next: dict[str, tuple[Schedule, float | None]] = {}
        """CronJob UID -> (its schedule, cached next slot)."""
        self.renderer: RenderedFamilies[CronJob] = RenderedFamilies(
            (
                Family(
                    "kube_batch_cronjob_schedule_valid",
                    "0 when the schedule or time zone cannot be used (the CronJob never runs).",
                    "gauge",
                    lambda cj: [("", (), 0.0 if self.schedule(cj) is None else 1.0)],
                ),
            ),
            (
                LiveFamily(
                    "kube_batch_cronjob_next_schedule_timestamp_seconds",
                    "Next slot of the schedule in its time zone (absent while suspended).",
                    "gauge",
                    self._next_slot,
                    applies=lambda cj: not cj.suspended and self.schedule(cj) is not None,
                ),
            ),
            cronjob_identity,
            clock,
        )

    @staticmethod
    def schedule(cj: CronJob) -> Schedule | None:
        """The parsed schedule, or None when it is invalid."""
        parsed = parse_cached(cj.schedule, cj.timezone)
        return None if isinstance(parsed, InvalidSchedule) else parsed

    def changed(self, old: CronJob | None, new: CronJob | None) -> None:
        """Follow a CronJob (cache subscriber): validate, reset the cached slot, re-render."""
        if new is None:
            if old is not None:
                self._next.pop(old.uid, None)
        elif old is None or (old.schedule, old.timezone) != (new.schedule, new.timezone):
            self._next.pop(new.uid, None)
            parsed = parse_cached(new.schedule, new.timezone)
            if isinstance(parsed, InvalidSchedule):
                self._health.errors["bad_schedule"] += 1
                logger.warning(
                    "CronJob %s/%s: schedule %r (time zone %r) cannot be used: %s",
                    new.namespace,
                    new.name,
                    new.schedule,
                    new.timezone,
                    parsed,
                )
        self.renderer.changed(old, new)

    def _next_slot(self, cj: CronJob, now: float) -> float:
        cached = self._next.get(cj.uid)
        if cached is None or cached[1] is None or cached[1] <= now:
            schedule = self.schedule(cj)
            assert schedule is not None  # guaranteed by applies()
            cached = (schedule, schedule.next(now))
            self._next[cj.uid] = cached
        return cached[1] if cached[1] is not None else float("nan")

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append the schedule families to a scrape."""
        self.renderer.write(out, openmetrics)
