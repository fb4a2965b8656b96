"""Run history per owner (contract §3 and §5): what kube-state-metrics refuses to keep.

The tracker follows the Job, Pod and CronJob caches and turns *transitions* into per-owner
history (a CronJob, or a family of direct Jobs), which outlives the Jobs themselves:

* A run is counted once, when its Job is seen reaching ``Complete``/``Failed`` (or deleted while
  unfinished). Only transitions count: repeated MODIFIED events, relists and DELETED events of
  finished Jobs change nothing. Jobs already finished when the exporter starts (the first full
  LIST) feed the ``last_*`` gauges only, replayed in end-time order, so a restart never looks
  like a burst of runs.
* A pod attempt is counted when its Pod is seen entering phase ``Failed``; in-place restarts
  (``restartPolicy: OnFailure``) from restartCount increases. Pods that existed at start-up only
  set the baseline.
* Start delay is Job creation to the first container start of the run, observed once per run.

Every change re-renders that owner's families (the same pre-rendered store as the state
metrics), so a scrape stays a concatenation.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from exporter.caching import ObjectCache
from exporter.health import Health
from exporter.parsing import parse_go_duration
from exporter.projecting import THRESHOLD_PREFIX, CronJob, Job, OwnerKey, Pod
from exporter.rendering import (
    Family,
    Labels,
    RenderedFamilies,
    Sample,
    format_labels,
    format_value,
    header,
    histogram_samples,
)
from exporter.statemetrics import owner_labels

logger = logging.getLogger(__name__)


RETRY_BUCKETS: tuple[float, ...] = (0, 1, 2, 3, 5, 10, 20, 50)
MAX_PARKED_PODS = 10000


class Histogram:
    """Bucket counts of one series: one count per bound plus one above the last bound."""

    __slots__ = ("buckets", "counts", "total")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one value in the first bucket whose bound is >= value."""
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        self.counts[index] += 1
        self.total += value

    def samples(self, labels: Labels = ()) -> list[Sample]:
        """Exposition samples (cumulative buckets, sum, count)."""
        return histogram_samples(self.buckets, self.counts, self.total, labels)


@dataclass(slots=True, eq=False)
class History:
    """Everything kept about one owner; mutated in place, then re-rendered."""

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
    consecutive_failures: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)
    thresholds_raw: tuple[tuple[str, str], ...] = ()
    idle_since: float | None = None
    """Since when the owner has had no Job and no CronJob (for forgetting it)."""

    @property
    def uid(self) -> str:
        """Cache key for the renderer."""
        return "\x00".join(self.key)

    @property
    def namespace(self) -> str:
        """The owner's namespace."""
        return self.key[0]


def _gauge(value: float | None) -> list[Sample]:
    return [] if value is None else [("", (), value)]


def _durations(h: History) -> Iterable[Sample]:
    for result, hist in sorted(h.durations.items()):
        yield from hist.samples((("result", result),))


def _nonempty(hist: Histogram) -> list[Sample]:
    return hist.samples() if any(hist.counts) else []


HISTORY_FAMILIES: tuple[Family[History], ...] = (
    Family(
        "kube_batch_runs_total",
        "Finished runs by result (succeeded, failed, deleted), terminal reason and trigger.",
        "counter",
        lambda h: [
            ("", (("result", r), ("reason", why), ("trigger", t)), n)
            for (r, why, t), n in sorted(h.runs.items())
        ],
    ),
    Family(
        "kube_batch_run_duration_seconds",
        "Run duration from status.startTime to its end, by result.",
        "histogram",
        _durations,
    ),
    Family(
        "kube_batch_run_start_delay_seconds",
        "Job creation to the first container start of the run.",
        "histogram",
        lambda h: _nonempty(h.start_delays),
    ),
    Family(
        "kube_batch_run_retries",
        "Per finished run: failed pods plus container restarts.",
        "histogram",
        lambda h: _nonempty(h.retries),
    ),
    Family(
        "kube_batch_pod_failures_total",
        "Failed pod attempts by reason (OOMKilled, Error, Evicted, DeadlineExceeded, ...).",
        "counter",
        lambda h: [("", (("reason", r),), n) for r, n in sorted(h.pod_failures.items())],
    ),
    Family(
        "kube_batch_container_restarts_total",
        "In-place container restarts of the owner's pods (restartPolicy: OnFailure).",
        "counter",
        lambda h: [("", (), h.restarts)],
    ),
    Family(
        "kube_batch_last_run_timestamp_seconds",
        "End time of the latest finished run.",
        "gauge",
        lambda h: _gauge(h.last_run),
    ),
    Family(
        "kube_batch_last_run_duration_seconds",
        "Duration of the latest finished run.",
        "gauge",
        lambda h: _gauge(h.last_duration),
    ),
    Family(
        "kube_batch_last_run_success",
        "1 if the latest finished run succeeded, else 0.",
        "gauge",
        lambda h: _gauge(h.last_success_flag),
    ),
    Family(
        "kube_batch_last_success_timestamp_seconds",
        "End time of the latest successful run.",
        "gauge",
        lambda h: _gauge(h.last_success),
    ),
    Family(
        "kube_batch_consecutive_failures",
        "Failed runs since the last success (0 after a success).",
        "gauge",
        lambda h: _gauge(float(h.consecutive_failures) if h.last_run is not None else None),
    ),
    Family(
        "kube_batch_alert_threshold",
        "Per-workload alert thresholds from kube-batch-exporter/* annotations.",
        "gauge",
        lambda h: [("", (("threshold", k),), v) for k, v in sorted(h.thresholds.items())],
    ),
)


def _parse_count(text: str) -> float:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return float(value)


def _parse_off(text: str) -> float:
    if text != "off":
        raise ValueError('the only value is "off"')
    return 1.0


THRESHOLD_PARSERS: dict[str, tuple[str, Callable[[str], float]]] = {
    THRESHOLD_PREFIX + "max-duration": ("max_duration_seconds", parse_go_duration),
    THRESHOLD_PREFIX + "max-consecutive-failures": ("max_consecutive_failures", _parse_count),
    THRESHOLD_PREFIX + "missed-grace": ("missed_grace_seconds", parse_go_duration),
    THRESHOLD_PREFIX + "max-start-delay": ("max_start_delay_seconds", parse_go_duration),
    THRESHOLD_PREFIX + "alerts": ("alerts_off", _parse_off),
}


class CronJobLastSuccess:
    """``kube_batch_cronjob_last_success_timestamp_seconds`` (contract §2).

    The later of the CronJob's ``status.lastSuccessfulTime`` and the successes we observed,
    manual runs included, which the controller ignores.
    """

    NAME = "kube_batch_cronjob_last_success_timestamp_seconds"
    HEADER = header(
        NAME,
        "Latest successful completion: status.lastSuccessfulTime or an observed success, "
        "manual runs included.",
        "gauge",
    )

    def __init__(self) -> None:
        self._from_status: dict[tuple[str, str], float | None] = {}
        self._observed: dict[tuple[str, str], float] = {}
        self._lines: dict[tuple[str, str], bytes] = {}

    def cronjob(self, old: CronJob | None, new: CronJob | None) -> None:
        """Follow a CronJob (cache subscriber)."""
        if new is None:
            if old is not None:
                key = (old.namespace, old.name)
                self._from_status.pop(key, None)
                self._observed.pop(key, None)
                self._lines.pop(key, None)
            return
        key = (new.namespace, new.name)
        self._from_status[key] = new.last_successful
        self._render(key)

    def success(self, namespace: str, cronjob: str, at: float) -> None:
        """An observed successful run of a CronJob's Job."""
        key = (namespace, cronjob)
        self._observed[key] = max(at, self._observed.get(key, at))
        if key in self._from_status:
            self._render(key)

    def _render(self, key: tuple[str, str]) -> None:
        values = [v for v in (self._from_status.get(key), self._observed.get(key)) if v]
        if not values:
            self._lines.pop(key, None)
            return
        labels = format_labels((("namespace", key[0]), ("cronjob", key[1])))
        self._lines[key] = f"{self.NAME}{labels} {format_value(max(values))}\n".encode()

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append the family to a scrape."""
        out.append(self.HEADER)
        out.append(b"".join(self._lines.values()))


class RunTracker:
    """Turns Job, Pod and CronJob changes into per-owner run history."""

    def __init__(
        self,
        health: Health,
        *,
        duration_buckets: Sequence[float],
        max_owners: int,
        forget_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._health = health
        self._buckets = tuple(duration_buckets)
        self._max_owners = max_owners
        self._forget_after = forget_after
        self._clock = clock
        self.histories: dict[OwnerKey, History] = {}
        self.renderer: RenderedFamilies[History] = RenderedFamilies(
            HISTORY_FAMILIES, (), lambda h: owner_labels(h.key)
        )
        self.cronjob_success = CronJobLastSuccess()
        self._jobs: dict[str, Job] = {}
        self._cronjobs: dict[tuple[str, str], CronJob] = {}
        self._owner_jobs: Counter[OwnerKey] = Counter()
        self._jobs_live = False
        self._pods_live = False
        self._startup_finished: list[Job] = []
        self._restarts: dict[str, dict[str, int]] = {}
        """Job UID -> pod UID -> highest restartCount seen (retries of the run)."""
        self._delay_seen: set[str] = set()
        """Job UIDs whose start delay was observed (or had already passed at start-up)."""
        self._parked: dict[str, list[tuple[Pod | None, Pod]]] = {}
        """Pod changes whose Job has not arrived yet, by Job UID."""
        self._parked_before: set[str] = set()
        self._dropped: set[OwnerKey] = set()

    def follow(
        self, jobs: ObjectCache[Job], pods: ObjectCache[Pod], cronjobs: ObjectCache[CronJob]
    ) -> None:
        """Subscribe to the three caches."""
        cronjobs.subscribe(self.cronjob_changed)
        cronjobs.subscribe(self.cronjob_success.cronjob)
        jobs.subscribe(self.job_changed)
        pods.subscribe(self.pod_changed)
        jobs.on_synced(self.jobs_synced)
        pods.on_synced(self.pods_synced)

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append the run-history families and the CronJob last-success family."""
        self.renderer.write(out, openmetrics)
        self.cronjob_success.write(out, openmetrics)

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
        )
        self.histories[key] = h
        self._render(h)  # counters start at 0, so increase() sees the first event
        return h

    def _render(self, h: History) -> None:
        self.renderer.changed(None, h)

    def _set_thresholds(self, h: History, raw: tuple[tuple[str, str], ...], where: str) -> None:
        if raw == h.thresholds_raw:
            return
        h.thresholds_raw = raw
        h.thresholds = {}
        for annotation, text in raw:
            name, parse = THRESHOLD_PARSERS[annotation]
            try:
                h.thresholds[name] = parse(text.strip())
            except ValueError as exc:
                self._health.errors["bad_annotation"] += 1
                logger.warning("ignoring annotation %s on %s: %s", annotation, where, exc)
        self._render(h)

    def forget_idle(self) -> int:
        """Drop owners that had no Job and no CronJob for ``forget_after``; return how many."""
        now = self._clock()
        gone = []
        for key, h in self.histories.items():
            if self._owner_jobs[key] or (
                key[1] == "CronJob" and (key[0], key[2]) in self._cronjobs
            ):
                h.idle_since = None
            elif h.idle_since is None:
                h.idle_since = now
            elif now - h.idle_since >= self._forget_after:
                gone.append(key)
        for key in gone:
            self.renderer.changed(self.histories.pop(key), None)
            self._owner_jobs.pop(key, None)
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
    def jobs_synced(self) -> None:
        """Replay Jobs that had finished before we started, oldest end first (last_* only)."""
        self._jobs_live = True
        for job in sorted(self._startup_finished, key=lambda j: j.end or j.created or 0.0):
            h = self._history(job.owner_key)
            if h is not None:
                self._set_last(h, job, job.outcome, job.end, _duration(job, job.end))
                self._render(h)
        self._startup_finished.clear()

    def job_changed(self, old: Job | None, new: Job | None) -> None:
        """Count terminal transitions and deletions of unfinished Jobs."""
        if new is None:
            if old is not None:
                self._job_deleted(old)
            return
        key = new.owner_key
        self._jobs[new.uid] = new
        h = self._history(key)  # an owner's series exist from its first Job on
        if old is None:
            self._owner_jobs[key] += 1
            for pod_old, pod_new in self._parked.pop(new.uid, ()):
                self.pod_changed(pod_old, pod_new)
        if new.owner_kind == "Job" and h is not None:
            self._set_thresholds(h, new.thresholds, f"Job {new.namespace}/{new.name}")
        if new.finished and (old is None or not old.finished):
            if self._jobs_live:
                self._finish(new, new.outcome, new.reason, new.end)
            else:
                self._startup_finished.append(new)

    def _job_deleted(self, old: Job) -> None:
        key = old.owner_key
        self._jobs.pop(old.uid, None)
        self._owner_jobs[key] -= 1
        if self._owner_jobs[key] <= 0:
            del self._owner_jobs[key]
        if not old.finished and self._jobs_live:
            cronjob = self._cronjobs.get((old.namespace, old.owner_name))
            replaced = (
                old.owner_kind == "CronJob"
                and cronjob is not None
                and cronjob.concurrency_policy == "Replace"
            )
            end = old.deleted_at or self._clock()
            self._finish(old, "deleted", "Replaced" if replaced else "DeletedWhileActive", end)
        self._restarts.pop(old.uid, None)
        self._delay_seen.discard(old.uid)
        self._parked.pop(old.uid, None)

    def _finish(self, job: Job, result: str, reason: str, end: float | None) -> None:
        h = self._history(job.owner_key)
        restarts = self._restarts.pop(job.uid, {})
        if h is None:
            return
        h.runs[(result, reason, job.trigger)] += 1
        duration = _duration(job, end)
        if duration is not None:
            h.durations.setdefault(result, Histogram(self._buckets)).observe(duration)
        h.retries.observe(job.failed + sum(restarts.values()))
        self._set_last(h, job, result, end, duration)
        self._render(h)

    def _set_last(
        self, h: History, job: Job, result: str, end: float | None, duration: float | None
    ) -> None:
        end = end if end is not None else self._clock()
        if h.last_run is None or end >= h.last_run:
            h.last_run, h.last_duration = end, duration
            h.last_success_flag = 1.0 if result == "succeeded" else 0.0
        if result == "succeeded":
            h.consecutive_failures = 0
            h.last_success = max(end, h.last_success or end)
            if job.owner_kind == "CronJob":
                self.cronjob_success.success(job.namespace, job.owner_name, end)
        elif result == "failed":
            h.consecutive_failures += 1

    # -- Pods ---------------------------------------------------------------------------------
    def pods_synced(self) -> None:
        """From now on pod failures and restarts are changes we saw happen."""
        self._pods_live = True

    def pod_changed(self, old: Pod | None, new: Pod | None) -> None:
        """Count failed attempts, restarts and the run's start delay."""
        if new is None or not new.job_uid:
            return
        job = self._jobs.get(new.job_uid)
        if job is None:
            self._park(old, new)
            return
        if new.restarts:
            seen = self._restarts.setdefault(job.uid, {})
            seen[new.uid] = max(new.restarts, seen.get(new.uid, 0))
        started_now = new.first_start is not None and (old is None or old.first_start is None)
        if not self._pods_live:
            if new.first_start is not None:
                self._delay_seen.add(job.uid)  # the run had started before we watched
            return
        h = self._history(job.owner_key)
        if h is None:
            return
        changed = False
        if new.phase == "Failed" and (old is None or old.phase != "Failed"):
            h.pod_failures[new.failure_reason] += 1
            changed = True
        restarted = new.restarts - (old.restarts if old is not None else 0)
        if restarted > 0:
            h.restarts += restarted
            changed = True
        if started_now and job.uid not in self._delay_seen and job.created is not None:
            self._delay_seen.add(job.uid)
            h.start_delays.observe(max(0.0, (new.first_start or 0.0) - job.created))
            changed = True
        if changed:
            self._render(h)

    def _park(self, old: Pod | None, new: Pod) -> None:
        """Keep a pod change until its Job arrives (the two watches are not ordered)."""
        if sum(len(v) for v in self._parked.values()) >= MAX_PARKED_PODS:
            self._health.errors["parked_pods_dropped"] += 1
            return
        self._parked.setdefault(new.job_uid, []).append((old, new))


def _duration(job: Job, end: float | None) -> float | None:
    if job.started is None or end is None:
        return None
    return max(0.0, end - job.started)
