"""Run history per owner (contract §3 and §5): what kube-state-metrics refuses to keep.

The tracker follows the Job, Pod and CronJob caches and turns *transitions* into per-owner
history (a CronJob, or a family of direct Jobs), which outlives the Jobs themselves:

* A run is counted once, when its Job is seen reaching ``Complete``/``Failed`` (or deleted while
  unfinished). Only transitions count: repeated MODIFIED events, relists and DELETED events of
  finished Jobs change nothing. Jobs already finished when the exporter starts (the first full
  LIST) feed the ``last_*`` gauges only, replayed in end-time order, so a restart never looks
  like a burst of runs.
* The latest run and the failures since the latest success are both ordered by end time (ties
  by arrival), because the Job controller's throttled status writes can deliver two Jobs of one
  owner in the reverse order of their ends: ``last_run_*`` and ``consecutive_failures`` never
  contradict each other.
* A run deleted unfinished is ``Replaced`` only when the CronJob controller did it: under
  ``concurrencyPolicy: Replace`` it deletes the active Job right before it creates the next
  slot's Job. So such a deletion is held for :data:`REPLACE_WINDOW_SECONDS`: the replacement's
  arrival makes it ``Replaced``, anything else ``DeletedWhileActive``.
* A pod attempt is counted when its Pod is seen entering phase ``Failed``; in-place restarts
  (``restartPolicy: OnFailure``) from restartCount increases. Pods that existed at start-up only
  set the baseline.
* Start delay is Job creation to the first container start of the run, observed once per run.

Every change is published as the owner's :class:`History` record (the metrics layer renders it);
the CronJob last-success family has its own small record, :class:`CronJobSuccess`.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.health.histogram import Histogram
from exporter.health.state import ErrorKind, Health
from exporter.store.caching import ObjectCache, Publisher, Subscriber, batches
from exporter.store.owners import OwnerIndex
from exporter.store.records import ByOwner, CronJob, Job, OwnerKey, Pod
from exporter.store.thresholds import NONE, Thresholds

logger = logging.getLogger(__name__)

RETRY_BUCKETS: tuple[float, ...] = (0, 1, 2, 3, 5, 10, 20, 50)
"""Buckets of ``kube_batch_run_retries`` (attempts are small whole numbers; documented)."""
MAX_PARKED_PODS = 10000
"""Pod changes kept while their Job has not arrived yet (the two watches are not ordered);
beyond it they are dropped and counted, which bounds memory if Jobs never arrive."""
FAILURE_ENDS_KEPT = 64
"""End times of the failures since the latest success kept per owner, so that a success that
arrives late still resets only the failures before it; older failures are only counted."""
SUCCESS_SLACK_SECONDS = 5.0
"""A CronJob success this much before a checkpoint may not have reached the exporter yet."""
REPLACE_WINDOW_SECONDS = 10.0
"""How long after an unfinished Job of a Replace CronJob is deleted its replacement may arrive
for the deletion to count as ``Replaced`` (the controller creates it a moment later)."""

CronKey = tuple[str, str]
"""(namespace, cronjob name)."""


class _Deleted(NamedTuple):
    """An unfinished run of a Replace CronJob, deleted, waiting to learn who deleted it."""

    job: Job
    end: float
    seen: float
    """When the deletion was seen (the replacement must follow within the window)."""


@dataclass(frozen=True, slots=True)
class ActiveRun:
    """A run unfinished at the last checkpoint, as much of its Job as counting it needs.

    After a restart it is counted from its Job's status if the Job is still there, or from
    what its CronJob still says if not (contract §10). Its pods' failures and restarts up to
    the checkpoint were counted already: they are the baseline, not news.
    """

    uid: str
    namespace: str
    owner_kind: str
    owner_name: str
    trigger: str
    created: float | None
    started: float | None
    failed: int
    restarts: dict[str, int]
    """Pod UID -> restartCount counted."""
    failed_pods: frozenset[str]
    """Pods whose failure was counted."""
    delay_seen: bool

    @property
    def owner_key(self) -> OwnerKey:
        """(namespace, owner kind, owner name)."""
        return (self.namespace, self.owner_kind, self.owner_name)


Run = Job | ActiveRun
"""What a run is counted from: its Job, or what a checkpoint kept of it."""


@dataclass(frozen=True, slots=True)
class RunsState:
    """Everything the run tracker cannot rebuild from the cluster (a checkpoint's part)."""

    histories: list[History]
    successes: dict[CronKey, float]
    """The observed last success per CronJob."""
    finished: frozenset[str]
    """UIDs of the Jobs seen finished: relisted after a restart, they are not news."""
    active: list[ActiveRun]
    written: float
    """When the checkpoint was taken."""


@dataclass(frozen=True, slots=True)
class RecentRun:
    """One finished run as a person reads it on the status page (contract §12)."""

    job_name: str
    """The Job's name; ``""`` for a run known only from a checkpoint."""
    trigger: str
    start: float | None
    end: float | None
    duration: float | None
    result: str
    reason: str
    pod_failures: tuple[tuple[str, int | None, int], ...] = ()
    """(reason, exit code, attempts) of its failed pods that the exporter saw fail, most
    frequent first."""


@dataclass(slots=True, eq=False)
class History(ByOwner):
    """Everything kept about one owner; mutated in place, then published."""

    key: OwnerKey
    durations: dict[str, Histogram]
    start_delays: Histogram
    retries: Histogram
    runs: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(result, reason, trigger) -> finished runs."""
    pod_failures: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    last_run: float | None = None
    last_duration: float | None = None
    last_success_flag: float | None = None
    last_success: float | None = None
    failure_ends: list[float] = field(default_factory=list)
    """End times of the failed runs after the latest success, oldest first (the newest
    :data:`FAILURE_ENDS_KEPT`)."""
    earlier_failures: int = 0
    """Failed runs after the latest success beyond those in :attr:`failure_ends`."""
    earlier_until: float = float("-inf")
    """The latest end among :attr:`earlier_failures`."""
    thresholds: Thresholds = NONE
    idle_since: float | None = None
    """Since when the owner has had no Job and no CronJob (for forgetting it)."""
    recent: deque[RecentRun] = field(default_factory=deque)
    """The latest runs, oldest first (``--runs-kept``): the runs of the Jobs still listed at
    start-up and those seen since. Not kept in the checkpoint: it is for people, not counters."""

    @property
    def consecutive_failures(self) -> int:
        """Failed runs that ended after the latest success."""
        return self.earlier_failures + len(self.failure_ends)

    def failed(self, end: float) -> None:
        """A failed run ended at ``end``; it counts unless it ended before the latest success."""
        if self.last_success is not None and end < self.last_success:
            return
        bisect.insort(self.failure_ends, end)
        if len(self.failure_ends) > FAILURE_ENDS_KEPT:
            self.earlier_until = self.failure_ends.pop(0)
            self.earlier_failures += 1

    def succeeded(self, end: float) -> None:
        """A successful run ended at ``end``: the failures that ended before it stop counting."""
        self.last_success = max(end, self.last_success or end)
        self.failure_ends = [t for t in self.failure_ends if t > end]
        if end >= self.earlier_until:
            self.earlier_failures = 0


@dataclass(slots=True, eq=False)
class CronJobSuccess:
    """``kube_batch_cronjob_last_success_timestamp_seconds`` of one CronJob (contract §2)."""

    namespace: str
    name: str
    from_status: float | None = None
    """``status.lastSuccessfulTime``: the controller's own runs only."""
    observed: float | None = None
    """The latest success the exporter saw, manual runs included."""

    @property
    def uid(self) -> str:
        """Key for subscribers."""
        return f"{self.namespace}\x00{self.name}"

    @property
    def latest(self) -> float | None:
        """The later of the two, None while neither is known."""
        return max((v for v in (self.from_status, self.observed) if v), default=None)


class CronJobSuccesses:
    """Follows the CronJobs and the observed successes; publishes a record per CronJob."""

    def __init__(self, health: Health) -> None:
        self.records: dict[CronKey, CronJobSuccess] = {}
        self._exists: set[CronKey] = set()
        self._changes: Publisher[CronJobSuccess] = Publisher("cronjob successes", health)

    def subscribe(self, subscriber: Subscriber[CronJobSuccess]) -> None:
        """Call ``subscriber(old, new)`` when a CronJob's last success changes."""
        self._changes.subscribe(subscriber)

    def cronjob_changed(self, old: CronJob | None, new: CronJob | None) -> None:
        """Follow a CronJob (cache subscriber)."""
        if new is None:
            if old is not None:
                key = (old.namespace, old.name)
                record = self.records.pop(key, None)
                if key in self._exists and record is not None:
                    self._changes.notify(record, None)
                self._exists.discard(key)
            return
        key = (new.namespace, new.name)
        record = self.records.setdefault(key, CronJobSuccess(*key))
        record.from_status = new.last_successful
        self._exists.add(key)
        self._changes.notify(None, record)

    def success(self, namespace: str, cronjob: str, at: float) -> None:
        """An observed successful run of a CronJob's Job (published once the CronJob exists)."""
        key = (namespace, cronjob)
        record = self.records.setdefault(key, CronJobSuccess(*key))
        record.observed = max(at, record.observed or at)
        if key in self._exists:
            self._changes.notify(None, record)


class RunTracker:
    """Turns Job, Pod and CronJob changes into per-owner run history."""

    def __init__(
        self,
        health: Health,
        owners: OwnerIndex,
        *,
        duration_buckets: Sequence[float],
        max_owners: int,
        forget_after: float,
        runs_kept: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._health = health
        self._runs_kept = runs_kept
        self._buckets = tuple(duration_buckets)
        self._max_owners = max_owners
        self._forget_after = forget_after
        self._clock = clock
        self.histories: dict[OwnerKey, History] = {}
        self.cronjob_success = CronJobSuccesses(health)
        self._changes: Publisher[History] = Publisher("owners", health)
        self._owners = owners
        self._jobs: Mapping[str, Job] = {}
        """The Job cache's records (set by :meth:`follow`)."""
        self._cronjobs: dict[CronKey, CronJob] = {}
        self._jobs_live = False
        self._pods_live = False
        self._startup_finished: list[Job] = []
        self._restarts: dict[str, dict[str, int]] = {}
        """Job UID -> pod UID -> highest restartCount seen (retries of the run)."""
        self._delay_seen: set[str] = set()
        """Job UIDs whose start delay was observed (or had already passed at start-up)."""
        self._parked: dict[str, list[tuple[Pod | None, Pod, bool]]] = {}
        """Pod changes whose Job has not arrived yet, by Job UID."""
        self._parked_before: set[str] = set()
        self._dropped: set[OwnerKey] = set()
        self._replacing: dict[CronKey, list[_Deleted]] = {}
        """Deleted unfinished runs of Replace CronJobs, not yet decided, by CronJob."""
        self._pods: Mapping[str, Pod] = {}
        self._restored: RunsState | None = None
        """The checkpoint restored at start-up, until the first LISTs have been reconciled
        with it (None without a checkpoint, or after that)."""
        self._baseline: dict[str, ActiveRun] = {}
        """Runs active at the checkpoint, by Job UID, while their pods may still be relisted."""
        self._finished_before: frozenset[str] | None = None
        """Jobs the checkpoint saw finished, while their pods may still be relisted: their pod
        failures are not news, those of every other Job are."""
        self._listed: set[str] = set()
        self._pod_failures: dict[str, Counter[tuple[str, int | None]]] = {}
        """Job UID -> (reason, exit code) of the failed pods counted for the run."""

    def follow(
        self, jobs: ObjectCache[Job], pods: ObjectCache[Pod], cronjobs: ObjectCache[CronJob]
    ) -> None:
        """Subscribe to the three caches."""
        self._jobs = jobs.records
        self._pods = pods.records
        cronjobs.subscribe(self.cronjob_changed)
        cronjobs.subscribe(self.cronjob_success.cronjob_changed)
        jobs.subscribe(self.job_changed)
        pods.subscribe(self.pod_changed)
        jobs.on_synced(self.jobs_synced)
        pods.on_synced(self.pods_synced)
        cronjobs.on_synced(self.cronjobs_synced)

    # -- checkpoints ----------------------------------------------------------------------------
    def snapshot(self) -> RunsState:
        """What a checkpoint keeps; only meaningful once the first LISTs are reconciled."""
        pods: dict[str, list[Pod]] = {}
        for pod in self._pods.values():
            pods.setdefault(pod.job_uid, []).append(pod)
        active = [
            self._active_run(job, pods.get(job.uid, ()))
            for job in self._jobs.values()
            if not job.finished
        ]
        active += [
            self._active_run(d.job, pods.get(d.job.uid, ()))
            for held in self._replacing.values()
            for d in held
        ]
        return RunsState(
            histories=list(self.histories.values()),
            successes={
                k: r.observed for k, r in self.cronjob_success.records.items() if r.observed
            },
            finished=frozenset(uid for uid, job in self._jobs.items() if job.finished),
            active=active,
            written=self._clock(),
        )

    def _active_run(self, job: Job, pods: Sequence[Pod]) -> ActiveRun:
        return ActiveRun(
            job.uid,
            job.namespace,
            job.owner_kind,
            job.owner_name,
            job.trigger,
            job.created,
            job.started,
            job.failed,
            dict(self._restarts.get(job.uid, {})),
            frozenset(p.uid for p in pods if p.phase == "Failed"),
            job.uid in self._delay_seen,
        )

    def restore(self, state: RunsState) -> None:
        """Continue from a checkpoint: before the first LIST, so relisted Jobs meet it."""
        for h in state.histories:
            h.recent = deque(h.recent, maxlen=self._runs_kept)
            self.histories[h.key] = h
            self._changes.notify(None, h)
        for (namespace, cronjob), at in state.successes.items():
            self.cronjob_success.success(namespace, cronjob, at)
        for run in state.active:
            if run.restarts:
                self._restarts[run.uid] = dict(run.restarts)
            if run.delay_seen:
                self._delay_seen.add(run.uid)
        self._baseline = {run.uid: run for run in state.active}
        self._finished_before = state.finished
        self._restored = state

    def _reconcile(self, resource: str) -> None:
        """Once Jobs and CronJobs are listed, count the runs that ended while we were away.

        A run active at the checkpoint whose Job is gone, and a success the CronJob's status
        tells that no Job still explains, are counted from what the cluster still says.
        """
        self._listed.add(resource)
        state = self._restored
        if state is None or self._listed < {"jobs", "cronjobs"}:
            return
        self._restored = None
        gone: dict[CronKey, list[ActiveRun]] = {}
        for run in state.active:
            if run.uid in self._jobs:
                continue
            if run.owner_kind == "CronJob":
                gone.setdefault((run.namespace, run.owner_name), []).append(run)
            else:
                self._finish(run, "deleted", "Unknown", None)
        for key in gone.keys() | self._cronjobs.keys():
            self._count_gone(key, gone.get(key, []), state.written)
        if gone:
            logger.info(
                "counted %d runs that ended and were deleted while away",
                sum(map(len, gone.values())),
            )

    def _count_gone(self, key: CronKey, runs: list[ActiveRun], written: float) -> None:
        """Runs of one CronJob that left no Job: ``status.lastSuccessfulTime`` tells one success.

        The success is news when it is later than both the checkpoint and every success
        counted (the runs still listed were counted just before). It goes to the newest gone
        run created before it, or to a run the exporter never saw; every other gone run is
        ``deleted/Unknown``.
        """
        cronjob = self._cronjobs.get(key)
        at = cronjob.last_successful if cronjob is not None else None
        h = self.histories.get((key[0], "CronJob", key[1]))
        known = h.last_success if h is not None and h.last_success is not None else written
        if at is not None and at > max(known, written - SUCCESS_SLACK_SECONDS):
            before = [r for r in runs if r.created is None or r.created <= at]
            winner = max(before, key=lambda r: r.created or 0.0, default=None)
            if winner is None:
                winner = ActiveRun(
                    "", key[0], "CronJob", key[1], "schedule", None, None, 0, {}, frozenset(), True
                )
                runs = [*runs, winner]
        else:
            winner = None
        for run in runs:
            if run is winner:
                self._finish(run, "succeeded", _usual_success_reason(h), at)
            else:
                self._finish(run, "deleted", "Unknown", None)

    def subscribe(self, subscriber: Subscriber[History]) -> None:
        """Call ``subscriber(old, new)`` whenever an owner's history changes."""
        self._changes.subscribe(subscriber)

    # -- owners -------------------------------------------------------------------------------
    def _history(self, key: OwnerKey) -> History | None:
        h = self.histories.get(key)
        if h is not None:
            return h
        if len(self.histories) >= self._max_owners:
            if key not in self._dropped and len(self._dropped) < 10 * self._max_owners:
                self._dropped.add(key)
                self._health.owners_dropped += 1
                logger.warning(
                    "not tracking %s/%s %s: --max-owners=%d reached",
                    key[0],
                    key[1],
                    key[2],
                    self._max_owners,
                )
            return None
        h = History(
            key=key,
            durations={},
            start_delays=Histogram(self._buckets),
            retries=Histogram(RETRY_BUCKETS),
            recent=deque(maxlen=self._runs_kept),
        )
        self.histories[key] = h
        self._changes.notify(None, h)  # counters start at 0, so increase() sees the first event
        return h

    def _set_thresholds(self, h: History, thresholds: Thresholds, where: str) -> None:
        if thresholds == h.thresholds:
            return
        h.thresholds = thresholds
        for annotation, why in thresholds.problems:
            self._health.count(ErrorKind.BAD_ANNOTATION)
            logger.warning("ignoring annotation %s on %s: %s", annotation, where, why)
        self._changes.notify(None, h)

    def forget_idle(self) -> int:
        """Drop owners that had no Job and no CronJob for ``forget_after``; return how many."""
        now = self._clock()
        gone = []
        for key, h in self.histories.items():
            if self._owners.has_jobs(key) or (
                key[1] == "CronJob" and (key[0], key[2]) in self._cronjobs
            ):
                h.idle_since = None
            elif h.idle_since is None:
                h.idle_since = now
            elif now - h.idle_since >= self._forget_after:
                gone.append(key)
        for key in gone:
            self._changes.notify(self.histories.pop(key), None)
        self._dropped.clear()
        # Pod changes parked for a whole period will never meet their Job (deleted unseen).
        for job_uid in self._parked_before & self._parked.keys():
            del self._parked[job_uid]
        self._parked_before = set(self._parked)
        return len(gone)

    # -- CronJobs -----------------------------------------------------------------------------
    def cronjob_changed(self, old: CronJob | None, new: CronJob | None) -> None:
        """Follow a CronJob: its thresholds and concurrency policy."""
        if new is None:
            if old is not None:
                self._cronjobs.pop((old.namespace, old.name), None)
            return
        self._cronjobs[(new.namespace, new.name)] = new
        h = self._history((new.namespace, "CronJob", new.name))
        if h is not None:
            self._set_thresholds(h, new.thresholds, f"CronJob {new.namespace}/{new.name}")

    # -- Jobs ---------------------------------------------------------------------------------
    async def jobs_synced(self) -> None:
        """Replay Jobs that had finished before we started, oldest end first.

        Without a checkpoint they feed the ``last_*`` gauges only: a restart must not look
        like a burst of runs. After one, those the checkpoint did not know finished while
        the exporter was away, and are counted like any run. It yields to the loop between
        batches (30,000 finished Jobs take about a second); Jobs are live from its first
        line, so no Job joins the replay meanwhile, and a Job listed finished stays finished.

        An owner's history is rendered once, after all its Jobs are replayed, not once per
        Job: at L that was 30,000 renders of 3,000 histories, most of the replay's cost.
        Until then a scrape shows the history as it was before the replay.
        """
        self._jobs_live = True
        restored = self._restored
        by_end = sorted(self._startup_finished, key=lambda j: j.end or j.created or 0.0)
        replayed: dict[OwnerKey, History] = {}
        async for job in batches(by_end):
            with self._health.contained(ErrorKind.SUBSCRIBER, "run start-up", job.uid):
                if restored is not None and job.uid not in restored.finished:
                    self._finish(job, job.outcome, job.reason, job.end)
                    continue
                h = self._history(job.owner_key)
                if h is None:
                    continue
                duration = _duration(job, job.end)
                if restored is None:
                    self._set_last(h, job, job.outcome, job.end, duration)
                self._remember(h, job, job.outcome, job.reason, job.end, duration)
                replayed[h.key] = h
        async for h in batches(replayed.values()):
            if self.histories.get(h.key) is h:  # not forgotten while the replay yielded
                self._changes.notify(None, h)
        self._startup_finished.clear()
        self._reconcile("jobs")
        self._end_baseline()

    def job_changed(self, old: Job | None, new: Job | None) -> None:
        """Count terminal transitions and deletions of unfinished Jobs."""
        if new is None:
            if old is not None:
                self._job_deleted(old)
            return
        key = new.owner_key
        h = self._history(key)  # an owner's series exist from its first Job on
        if old is None:
            for pod_old, pod_new, live in self._parked.pop(new.uid, ()):
                self._pod_changed(pod_old, pod_new, live)
            if self._replacing and new.trigger == "schedule":
                self._replaced_by(new)
        if new.owner_kind == "Job" and h is not None:
            self._set_thresholds(h, new.thresholds, f"Job {new.namespace}/{new.name}")
        if new.finished and (old is None or not old.finished):
            if self._jobs_live:
                self._finish(new, new.outcome, new.reason, new.end)
            else:
                self._startup_finished.append(new)

    def _job_deleted(self, old: Job) -> None:
        held = False
        if not old.finished and self._jobs_live:
            end = old.deleted_at or self._clock()
            cronjob = self._cronjobs.get((old.namespace, old.owner_name))
            if (
                old.owner_kind == "CronJob"
                and old.trigger == "schedule"
                and cronjob is not None
                and cronjob.concurrency_policy == "Replace"
            ):
                key = (old.namespace, old.owner_name)
                self._replacing.setdefault(key, []).append(_Deleted(old, end, self._clock()))
                held = True  # its restarts are counted when it is decided
            else:
                self._finish(old, "deleted", "DeletedWhileActive", end)
        if not held:
            self._restarts.pop(old.uid, None)
            self._pod_failures.pop(old.uid, None)
        self._delay_seen.discard(old.uid)
        self._parked.pop(old.uid, None)

    def _replaced_by(self, new: Job) -> None:
        """A new scheduled Job: the runs its CronJob just deleted unfinished were replaced."""
        since = self._clock() - REPLACE_WINDOW_SECONDS
        self._decide((new.namespace, new.owner_name), "Replaced", lambda d: d.seen >= since)

    def tick(self) -> int:
        """Decide held deletions whose window passed (``DeletedWhileActive``); return how many."""
        before = self._clock() - REPLACE_WINDOW_SECONDS
        return sum(
            self._decide(key, "DeletedWhileActive", lambda d: d.seen < before)
            for key in list(self._replacing)
        )

    def _decide(self, key: CronKey, reason: str, decided: Callable[[_Deleted], bool]) -> int:
        """Count the held deletions of one CronJob that ``decided`` picks, with ``reason``."""
        held = self._replacing.pop(key, [])
        done = [d for d in held if decided(d)]
        if len(done) < len(held):
            self._replacing[key] = [d for d in held if not decided(d)]
        for d in done:
            with self._health.contained(ErrorKind.INTERNAL, "run tracking", d.job.uid):
                self._finish(d.job, "deleted", reason, d.end)
        return len(done)

    def next_due(self) -> float | None:
        """When :meth:`tick` has work next (for the loop that calls it)."""
        seen = [d.seen for held in self._replacing.values() for d in held]
        return min(seen) + REPLACE_WINDOW_SECONDS if seen else None

    def _finish(self, job: Run, result: str, reason: str, end: float | None) -> None:
        h = self._history(job.owner_key)
        restarts = self._restarts.pop(job.uid, {})
        failures = self._pod_failures.pop(job.uid, None)
        if h is None:
            return
        h.runs[(result, reason, job.trigger)] += 1
        duration = _duration(job, end)
        if duration is not None:
            h.durations.setdefault(result, Histogram(self._buckets)).observe(duration)
        h.retries.observe(job.failed + sum(restarts.values()))
        self._set_last(h, job, result, end, duration)
        self._remember(h, job, result, reason, end, duration, failures)
        self._changes.notify(None, h)

    def _remember(
        self,
        h: History,
        job: Run,
        result: str,
        reason: str,
        end: float | None,
        duration: float | None,
        failures: Counter[tuple[str, int | None]] | None = None,
    ) -> None:
        """Keep the run for the status page (the oldest drops out past ``--runs-kept``)."""
        h.recent.append(
            RecentRun(
                job.name if isinstance(job, Job) else "",
                job.trigger,
                job.started,
                end,
                duration,
                result,
                reason,
                tuple((why, code, n) for (why, code), n in failures.most_common())
                if failures
                else (),
            )
        )

    def _set_last(
        self, h: History, job: Run, result: str, end: float | None, duration: float | None
    ) -> None:
        end = end if end is not None else self._clock()
        if h.last_run is None or end >= h.last_run:
            h.last_run, h.last_duration = end, duration
            h.last_success_flag = 1.0 if result == "succeeded" else 0.0
        if result == "succeeded":
            h.succeeded(end)
            if job.owner_kind == "CronJob":
                self.cronjob_success.success(job.namespace, job.owner_name, end)
        elif result == "failed":
            h.failed(end)

    async def cronjobs_synced(self) -> None:
        """The CronJob LIST is done: reconcile with the checkpoint once Jobs are too."""
        self._reconcile("cronjobs")

    # -- Pods ---------------------------------------------------------------------------------
    async def pods_synced(self) -> None:
        """From now on pod failures and restarts are changes we saw happen."""
        self._pods_live = True
        self._end_baseline()

    def _end_baseline(self) -> None:
        """Pods parked for their Job may meet the checkpoint until both LISTs are done."""
        if self._pods_live and self._jobs_live:
            self._baseline = {}
            self._finished_before = None

    def pod_changed(self, old: Pod | None, new: Pod | None) -> None:
        """Count failed attempts, restarts and the run's start delay."""
        if new is not None:
            self._pod_changed(old, new, self._pods_live)

    def _pod_changed(self, old: Pod | None, new: Pod, live: bool) -> None:
        """Count one pod change; ``live`` says it came after the first Pod LIST.

        A parked change keeps the flag it arrived with: a Pod listed at start-up is the
        baseline, whenever its Job arrives.
        """
        if not new.job_uid:
            return
        job = self._jobs.get(new.job_uid)
        if job is None:
            self._park(old, new, live)
            return
        if new.restarts:
            seen = self._restarts.setdefault(job.uid, {})
            seen[new.uid] = max(new.restarts, seen.get(new.uid, 0))
        started_now = new.first_start is not None and (old is None or old.first_start is None)
        resumed = self._finished_before is not None and job.uid not in self._finished_before
        if not live and not resumed:
            if new.first_start is not None:
                self._delay_seen.add(job.uid)  # the run had started before we watched
            return
        h = self._history(job.owner_key)
        if h is None:
            return
        if old is not None:
            was_failed, restarts_before = old.phase == "Failed", old.restarts
        elif (base := self._baseline.get(job.uid)) is not None:  # counted before a restart
            was_failed, restarts_before = new.uid in base.failed_pods, base.restarts.get(new.uid, 0)
        else:
            was_failed, restarts_before = False, 0
        changed = False
        if new.phase == "Failed" and not was_failed:
            h.pod_failures[new.failure_reason] += 1
            failure = (new.failure_reason, new.exit_code)
            self._pod_failures.setdefault(job.uid, Counter())[failure] += 1
            changed = True
        restarted = new.restarts - restarts_before
        if restarted > 0:
            h.restarts += restarted
            changed = True
        if started_now and job.uid not in self._delay_seen and job.created is not None:
            self._delay_seen.add(job.uid)
            h.start_delays.observe(max(0.0, (new.first_start or 0.0) - job.created))
            changed = True
        if changed:
            self._changes.notify(None, h)

    def _park(self, old: Pod | None, new: Pod, live: bool) -> None:
        """Keep a pod change until its Job arrives (the two watches are not ordered)."""
        if sum(len(v) for v in self._parked.values()) >= MAX_PARKED_PODS:
            self._health.count(ErrorKind.PARKED_PODS_DROPPED)
            return
        self._parked.setdefault(new.job_uid, []).append((old, new, live))


def _usual_success_reason(h: History | None) -> str:
    """The reason most of an owner's successes had (``Unknown`` before the first one).

    A success known only from ``lastSuccessfulTime`` may have been counted, with its true
    reason, by the exporter that was killed after its last checkpoint. Counted again under
    another reason, that reason's series would drop by one, which Prometheus reads as a
    counter reset; a CronJob's runs succeed for the same reason, so its usual one continues
    the series instead.
    """
    reasons = Counter[str]()
    for (result, reason, _), n in h.runs.items() if h is not None else ():
        if result == "succeeded":
            reasons[reason] += n
    return reasons.most_common(1)[0][0] if reasons else "Unknown"


def _duration(job: Run, end: float | None) -> float | None:
    if job.started is None or end is None:
        return None
    return max(0.0, end - job.started)
