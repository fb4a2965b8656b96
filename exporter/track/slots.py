"""Missed, late and overdue CronJob slots (contract §4): what the controller never reports.

The CronJob controller starts only the newest missed slot, never emits ``MissSchedule``, and
leaves no trace of slots skipped by ``concurrencyPolicy: Forbid`` or a suspension. So the
exporter walks each CronJob's schedule itself, from a *cursor*:

* On first sight the cursor is the later of ``status.lastScheduleTime`` and the creation
  time. Every slot after it is resolved exactly once, in order, and the cursor moves past it.
* A slot **ran** when a Job for it is seen (its ``cronjob-scheduled-timestamp`` annotation, or
  the name ``<cronjob>-<minutes since epoch>``). Ran slots are remembered even after the Job
  is deleted, so history limits and TTLs cannot turn them into misses.
* A slot is **missed** once it can no longer run: the next slot is due (``now >= next +
  grace``), or ``now > slot + startingDeadlineSeconds + grace``. Its reason is ``suspended``
  if the CronJob was suspended at the slot (the state at start-up for earlier slots),
  ``concurrency_forbid`` if the policy is Forbid and a run was active at the slot, else
  ``not_started``.
* After start-up at most ``--max-missed-backfill`` slots per CronJob are counted; a schedule
  or time-zone change moves the cursor to the time of the change.

Nothing here scans every CronJob on a timer: a heap holds the next time each CronJob's
pending slot can be decided, and Job events decide slots as they arrive.

A CronJob whose schedule or time zone the controller cannot use never runs and says so only in
an event; here it gets one warning per change and ``errors_total{kind="bad_schedule"}``.
"""

from __future__ import annotations

import functools
import heapq
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.cron.schedule import Schedule
from exporter.health.histogram import Histogram
from exporter.health.state import ErrorKind, Health
from exporter.store.caching import ObjectCache, Publisher, Subscriber, batches
from exporter.store.records import CronJob, Job
from exporter.store.thresholds import MISSED_GRACE

logger = logging.getLogger(__name__)

REASONS = ("not_started", "concurrency_forbid", "suspended")
MAX_EARLY_JOBS = 10000
"""Jobs kept while their CronJob has not been seen (a memory bound, like the run tracker's
parked Pods)."""
EARLY_KEEP_SECONDS = 600.0
"""How long a Job waits for its CronJob's event; it comes within seconds when it comes."""
LAG_BUCKETS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
"""Buckets of ``kube_batch_cronjob_schedule_lag_seconds`` (documented in docs/metrics.md)."""
_NAME_SUFFIX = re.compile(r"-(\d{6,12})$")

CronKey = tuple[str, str]
"""(namespace, cronjob name)."""


@dataclass(slots=True, eq=False)
class CronSlots:
    """Slot bookkeeping of one CronJob, published to subscribers (keyed by its ``uid``)."""

    cj: CronJob
    schedule: Schedule | None
    cursor: float
    grace: float
    """Seconds a slot may be late; from the annotation or the flag, set when the CronJob changes."""
    pending: float | None = None
    """The first slot after the cursor, once computed."""
    following: float | None = None
    """The slot after ``pending``: when it is due, ``pending`` can no longer run."""
    ran: set[float] = field(default_factory=set)
    runs: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    """Controller-made Jobs: UID -> (created, ended), for the Forbid rule."""
    suspensions: list[tuple[float, float | None]] = field(default_factory=list)
    missed: Counter[str] = field(default_factory=Counter)
    missed_slots: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=1440))
    """(when it was decided, reason) of the latest missed slots, for the status page's last
    24 hours: a slot is decided missed only once the next one is due, so a daily schedule's
    miss would never fall in a day by its own time (not in the checkpoint)."""
    lag: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    overdue_from: float | None = None
    due: float | None = None
    """When the heap should look at this CronJob again."""

    @property
    def uid(self) -> str:
        """The CronJob's UID (subscriber key)."""
        return self.cj.uid

    @property
    def namespace(self) -> str:
        """The CronJob's namespace."""
        return self.cj.namespace

    @property
    def name(self) -> str:
        """The CronJob's name."""
        return self.cj.name

    def overdue(self, now: float) -> float:
        """Seconds since the oldest slot past its grace without a Job (0: none, or suspended)."""
        if self.cj.suspended or self.schedule is None:
            return 0.0
        since = self.overdue_from
        t = self.pending
        if t is not None and t not in self.ran and now >= t + self.grace:
            since = t if since is None else min(since, t)
        return max(0.0, now - since) if since is not None else 0.0


@dataclass(frozen=True, slots=True)
class KeptSlots:
    """What a checkpoint keeps of one CronJob's slots: enough to resolve each slot once."""

    namespace: str
    name: str
    uid: str
    """A CronJob recreated under the same name starts afresh."""
    schedule: str
    timezone: str
    cursor: float
    ran: frozenset[float]
    runs: dict[str, tuple[float, float | None]]
    suspensions: list[tuple[float, float | None]]
    missed: dict[str, int]
    lag: Histogram
    overdue_from: float | None


@dataclass(frozen=True, slots=True)
class SlotsState:
    """The slot tracker's part of a checkpoint."""

    crons: list[KeptSlots]
    written: float


def _kept_runs(
    runs: dict[str, tuple[float, float | None]],
) -> dict[str, tuple[float, float | None]]:
    """The run intervals a checkpoint keeps, finished ones under short keys.

    A finished run's UID is never looked up again (only its interval matters to the Forbid
    rule): a short key compresses, 36 random characters do not.
    """
    return {
        (uid if end is None else f"~{i}"): (created, end)
        for i, (uid, (created, end)) in enumerate(runs.items())
    }


def slot_of(job: Job) -> float | None:
    """The slot a controller-made Job belongs to: annotation, else the name suffix."""
    if job.scheduled is not None:
        return job.scheduled
    if job.name.startswith(job.owner_name + "-"):
        m = _NAME_SUFFIX.search(job.name)
        if m and len(job.name) == len(job.owner_name) + len(m.group(0)):
            return int(m.group(1)) * 60.0
    return None


class SlotTracker:
    """Resolves every CronJob slot once: ran or missed, and why."""

    def __init__(
        self,
        health: Health,
        *,
        grace: float,
        max_backfill: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._health = health
        self._default_grace = grace
        self._max_backfill = max_backfill
        self._clock = clock
        self._started = clock()
        self.crons: dict[CronKey, CronSlots] = {}
        self._early: dict[CronKey, dict[str, tuple[float, Job]]] = {}
        """Jobs seen before their CronJob, by UID, with when they were seen (the two watches
        are not ordered). A Job stays even if deleted (its slot ran) but only for
        :data:`EARLY_KEEP_SECONDS`: the Jobs of a CronJob that never appears (deleted with
        ``--cascade=orphan``) must not make it grow forever."""
        self._early_jobs = 0
        """How many Jobs ``_early`` holds, kept as it changes: summed on every Job event it
        was a quarter of a 30,000-Job commit that arrived before its CronJobs."""
        self._next_prune = 0.0
        self._heap: list[tuple[float, int, CronKey]] = []
        self._seq = 0
        self._live = False
        self._synced: set[str] = set()
        self._unstarted: set[CronKey] = set()
        """CronJobs the yielding start-up has yet to reach; a change reaching one first starts
        it (see :meth:`_start`)."""
        self._changes: Publisher[CronSlots] = Publisher("cronjob slots", health)
        self._kept: dict[CronKey, KeptSlots] = {}
        """Restored from a checkpoint, until the CronJob is listed."""
        self._kept_written = 0.0

    # -- checkpoints ----------------------------------------------------------------------------
    def snapshot(self) -> SlotsState:
        """What a checkpoint keeps (the cursor and what was decided around it)."""
        return SlotsState(
            [
                KeptSlots(
                    s.cj.namespace,
                    s.cj.name,
                    s.cj.uid,
                    s.cj.schedule,
                    s.cj.timezone,
                    s.cursor,
                    frozenset(s.ran),
                    _kept_runs(s.runs),
                    list(s.suspensions),
                    dict(s.missed),
                    s.lag,
                    s.overdue_from,
                )
                for s in self.crons.values()
            ],
            self._clock(),
        )

    def restore(self, state: SlotsState) -> None:
        """Continue from a checkpoint: the slots after its cursors are resolved once."""
        self._kept = {(k.namespace, k.name): k for k in state.crons}
        self._kept_written = state.written

    def _resume(self, new: CronJob, kept: KeptSlots, now: float) -> CronSlots:
        """The slot state of a CronJob as the checkpoint left it, updated by what it says now.

        What changed while the exporter was away has no time: a schedule change re-bases the
        cursor to now, a suspension counts from the checkpoint and a resumption ends now
        (slots in doubt are ``suspended``, never a false miss). ``status.lastScheduleTime``
        tells the newest slot that ran, even if its Job is gone already.
        """
        state = CronSlots(new, self._schedule(new), kept.cursor, self._grace(new))
        state.ran = set(kept.ran)
        state.runs = dict(kept.runs)
        state.suspensions = list(kept.suspensions)
        state.missed = Counter(kept.missed)
        state.lag = kept.lag
        state.overdue_from = kept.overdue_from
        if (kept.schedule, kept.timezone) != (new.schedule, new.timezone):
            state.cursor = max(state.cursor, now)
            state.ran = set()
        open_now = bool(state.suspensions) and state.suspensions[-1][1] is None
        if new.suspended and not open_now:
            state.suspensions.append((self._kept_written, None))
        elif open_now and not new.suspended:
            state.suspensions[-1] = (state.suspensions[-1][0], now)
        if new.last_schedule is not None and new.last_schedule > state.cursor:
            state.ran.add(new.last_schedule)
        return state

    def follow(self, jobs: ObjectCache[Job], cronjobs: ObjectCache[CronJob]) -> None:
        """Subscribe to the Job and CronJob caches; decide slots once both are listed."""
        cronjobs.subscribe(self.cronjob_changed)
        jobs.subscribe(self.job_changed)
        jobs.on_synced(functools.partial(self._listed, "jobs"))
        cronjobs.on_synced(functools.partial(self._listed, "cronjobs"))

    def subscribe(self, subscriber: Subscriber[CronSlots]) -> None:
        """Call ``subscriber(old, new)`` when a CronJob's slot state changes.

        A CronJob is first published only once both LISTs are complete: a scrape between the
        CronJob and Job LISTs would otherwise show the missed counters at 0 and then at their
        back-filled value, which Prometheus reads as a reset.
        """
        self._changes.subscribe(subscriber)

    # -- events -----------------------------------------------------------------------------
    async def _listed(self, resource: str) -> None:
        """Once Jobs and CronJobs are listed, decide every CronJob's slots and publish it.

        It yields to the loop between batches and is live from its first line: a change to
        a CronJob it has yet to reach starts that CronJob first (:meth:`_start`), one deleted
        meanwhile is skipped, one created meanwhile is new, as after start-up.
        """
        self._synced.add(resource)
        if self._synced == {"jobs", "cronjobs"} and not self._live:
            self._live = True
            self._early.clear()  # Jobs whose CronJob is gone: no slot to credit
            self._early_jobs = 0
            self._kept.clear()  # CronJobs deleted while the exporter was away
            now = self._clock()
            order = list(self.crons)
            self._unstarted = set(order)
            async for key in batches(order):
                if key in self._unstarted:
                    self._start(key, self.crons[key], now)
            missed = sum(sum(s.missed.values()) for s in self.crons.values())
            logger.info(
                "schedule tracking started: %d CronJobs, %d slots missed since their last schedule",
                len(self.crons),
                missed,
            )

    def _start(self, key: CronKey, state: CronSlots, now: float) -> None:
        """Start-up for one CronJob: cap its backfill, decide its slots, publish it."""
        self._unstarted.discard(key)
        with self._health.contained(ErrorKind.SUBSCRIBER, "slot start-up", "/".join(key)):
            self._backfill_cap(state, now)
            self._resolve(key, state, now)
        self._changes.notify(None, state)

    def cronjob_changed(self, old: CronJob | None, new: CronJob | None) -> None:
        """Create, update (suspension, schedule change) or drop a CronJob's slot state."""
        now = self._clock()
        if new is None:
            if old is not None:
                self._unstarted.discard((old.namespace, old.name))
                state = self.crons.pop((old.namespace, old.name), None)
                if state is not None:
                    self._changes.notify(state, None)
            return
        key = (new.namespace, new.name)
        state = self.crons.get(key)
        if state is None:
            kept = self._kept.pop(key, None)
            if kept is not None and kept.uid == new.uid:
                state = self._resume(new, kept, now)
            else:
                state = self._first_sight(new, now)
            self.crons[key] = state
            waited = self._early.pop(key, {})
            self._early_jobs -= len(waited)
            for _, job in waited.values():
                self._add_job(state, job, observe_lag=False)
            if self._live:  # first seen after start-up (created now, or after a relist)
                self._backfill_cap(state, now)
        else:
            if state.cj.suspended != new.suspended:
                self._suspend(state, new.suspended, now)
            if (state.cj.schedule, state.cj.timezone) != (new.schedule, new.timezone):
                state.schedule = self._schedule(new)
                state.cursor = max(state.cursor, now)  # a schedule change re-bases the cursor
                state.pending = state.following = None
                state.ran = {t for t in state.ran if t > state.cursor}
            if state.cj.thresholds != new.thresholds:
                state.grace = self._grace(new)
            state.cj = new
        if self._live:
            if key in self._unstarted:
                self._start(key, state, now)
            self._resolve(key, state, now)
            # not before: see subscribe()
            self._changes.notify(None, state)

    def _first_sight(self, new: CronJob, now: float) -> CronSlots:
        """The slot state of a CronJob the exporter knows nothing of."""
        cursor = max(t for t in (new.last_schedule, new.created, 0.0) if t is not None)
        if not new.last_schedule and not new.created:
            cursor = now
        state = CronSlots(new, self._schedule(new), cursor, self._grace(new))
        if new.suspended:  # before start-up, slots take the state at start-up
            state.suspensions.append((float("-inf") if not self._live else now, None))
        return state

    def job_changed(self, old: Job | None, new: Job | None) -> None:
        """Record ran slots and run intervals of controller-made Jobs."""
        job = new if new is not None else old
        if job is None or job.owner_kind != "CronJob" or job.trigger != "schedule":
            return
        key = (job.namespace, job.owner_name)
        state = self.crons.get(key)
        if state is None:
            if new is not None and old is None and self._early_jobs < MAX_EARLY_JOBS:
                waiting = self._early.setdefault(key, {})
                self._early_jobs += new.uid not in waiting
                waiting[new.uid] = (self._clock(), new)
            return
        now = self._clock()
        if old is None and new is not None:
            self._add_job(state, new, observe_lag=self._live)
        elif new is None or (new.finished and job.uid in state.runs):
            created, _ = state.runs.get(job.uid, (job.created or now, None))
            state.runs[job.uid] = (created, job.end or now)
        if self._live:
            if key in self._unstarted:
                self._start(key, state, now)
            self._resolve(key, state, now)

    def _add_job(self, state: CronSlots, job: Job, observe_lag: bool) -> None:
        slot = slot_of(job)
        created = job.created if job.created is not None else self._clock()
        state.runs[job.uid] = (created, job.end if job.finished else None)
        if slot is None:
            return
        if slot > state.cursor:
            state.ran.add(slot)
        if observe_lag:
            state.lag.observe(max(0.0, created - slot))
            self._changes.notify(None, state)

    def _suspend(self, state: CronSlots, suspended: bool, now: float) -> None:
        if suspended:
            state.suspensions.append((now, None))
        elif state.suspensions and state.suspensions[-1][1] is None:
            state.suspensions[-1] = (state.suspensions[-1][0], now)

    # -- resolution ---------------------------------------------------------------------------
    def _schedule(self, cj: CronJob) -> Schedule | None:
        """The CronJob's schedule; an unusable one is reported once per change of it."""
        if cj.parsed_schedule is None:
            self._health.count(ErrorKind.BAD_SCHEDULE)
            logger.warning(
                "CronJob %s/%s: schedule %r (time zone %r) cannot be used: %s",
                cj.namespace,
                cj.name,
                cj.schedule,
                cj.timezone,
                cj.schedule_error,
            )
        return cj.parsed_schedule

    def _grace(self, cj: CronJob) -> float:
        grace = cj.thresholds.get(MISSED_GRACE)
        return self._default_grace if grace is None else grace

    def _backfill_cap(self, state: CronSlots, now: float) -> None:
        """Count at most the newest ``max_backfill`` slots missed before start-up.

        The window grows back from now until it holds enough slots or reaches the cursor, so
        a CronJob stuck for a year costs a few hundred slot computations, not half a million.
        """
        if state.schedule is None:
            return
        span = 3600.0
        while True:
            start = max(state.cursor, now - span)
            window = state.schedule.slots(start, now)
            if len(window) >= self._max_backfill or start == state.cursor:
                break
            span *= 4
        if len(window) > self._max_backfill:
            state.cursor = window[-self._max_backfill] - 1e-3
            logger.debug(
                "CronJob %s/%s: counting only the newest %d of the slots since its last schedule",
                state.cj.namespace,
                state.cj.name,
                self._max_backfill,
            )
        state.pending = state.following = None

    def _resolve(self, key: CronKey, state: CronSlots, now: float) -> None:
        schedule = state.schedule
        if schedule is None:
            return
        grace = state.grace
        changed = False
        while True:
            if state.pending is None:
                state.pending = schedule.next(state.cursor)
                state.following = schedule.next(state.pending) if state.pending else None
            t = state.pending
            if t is None or t > now:
                break
            if t in state.ran:
                state.ran.discard(t)
                state.overdue_from = None
            else:
                deadline = state.cj.starting_deadline
                gone = (state.following is not None and now >= state.following + grace) or (
                    deadline is not None and now > t + deadline + grace
                )
                if not gone:
                    break
                reason = self._reason(state, t)
                state.missed[reason] += 1
                state.missed_slots.append((now, reason))
                changed = True
                if reason != "suspended" and state.overdue_from is None:
                    state.overdue_from = t
                logger.log(
                    logging.INFO if t > self._started else logging.DEBUG,  # backfill: summary
                    "CronJob %s/%s missed its slot %s (%s)",
                    key[0],
                    key[1],
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
                    reason,
                )
            state.cursor = t
            state.pending, state.following = state.following, None
            if state.pending is not None:
                state.following = schedule.next(state.pending)
            self._prune(state)
        self._schedule_check(key, state, grace, now)
        if changed:
            self._changes.notify(None, state)

    def _reason(self, state: CronSlots, t: float) -> str:
        if any(start <= t and (end is None or t < end) for start, end in state.suspensions):
            return "suspended"
        if state.cj.concurrency_policy == "Forbid" and any(
            created <= t and (end is None or t < end) for created, end in state.runs.values()
        ):
            return "concurrency_forbid"
        return "not_started"

    def _prune(self, state: CronSlots) -> None:
        cursor = state.cursor
        state.ran = {t for t in state.ran if t > cursor}
        state.runs = {u: r for u, r in state.runs.items() if r[1] is None or r[1] > cursor}
        state.suspensions = [s for s in state.suspensions if s[1] is None or s[1] > cursor]

    def _schedule_check(self, key: CronKey, state: CronSlots, grace: float, now: float) -> None:
        """Put the time the pending slot can next be decided on the heap.

        Never earlier than a second from now: a due time in the past would be popped and
        pushed again by the same :meth:`tick` forever (whatever a record holds).
        """
        t = state.pending
        if t is None:
            state.due = None
            return
        candidates = [state.following + grace] if state.following is not None else []
        if state.cj.starting_deadline is not None:
            candidates.append(t + state.cj.starting_deadline + grace + 1e-3)
        due = max(min(candidates), now + 1.0) if candidates else None
        if due is not None and due != state.due:
            state.due = due
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, key))

    def tick(self) -> int:
        """Decide every slot whose time has come; return how many CronJobs were looked at."""
        if not self._live:
            return 0
        now = self._clock()
        if self._early and now >= self._next_prune:
            self._prune_early(now)
        looked = 0
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            state = self.crons.get(key)
            if state is None or state.due != due:
                continue  # deleted, or superseded by a newer entry
            state.due = None
            with self._health.contained(ErrorKind.INTERNAL, "slot tracking", "/".join(key)):
                self._resolve(key, state, now)
            looked += 1
        return looked

    def _prune_early(self, now: float) -> None:
        """Forget Jobs that waited longer than :data:`EARLY_KEEP_SECONDS` for their CronJob."""
        for key in list(self._early):
            kept = {u: e for u, e in self._early[key].items() if e[0] > now - EARLY_KEEP_SECONDS}
            if kept:
                self._early[key] = kept
            else:
                del self._early[key]
        self._early_jobs = sum(map(len, self._early.values()))
        self._next_prune = now + 60.0

    def next_due(self) -> float | None:
        """When :meth:`tick` has work next (for the loop that calls it)."""
        return self._heap[0][0] if self._heap else None
