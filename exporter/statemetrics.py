"""State metrics of contract §2: what the Job and CronJob objects say right now.

Each family is declared once, as data, next to the small function that computes it; the series
of an object vanish with the object. Timestamps and optional spec fields produce no series when
absent (never a misleading 0).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from exporter.projecting import JOB_STATES, CronJob, Job, OwnerKey
from exporter.rendering import (
    Family,
    Labels,
    LiveFamily,
    RenderedFamilies,
    Sample,
    format_labels,
    format_value,
    header,
)


def job_identity(job: Job) -> Labels:
    """Identity labels of every Job series (contract §1)."""
    return (
        ("namespace", job.namespace),
        ("job_name", job.name),
        ("owner_kind", job.owner_kind),
        ("owner_name", job.owner_name),
    )


def cronjob_identity(cj: CronJob) -> Labels:
    """Identity labels of every CronJob series (contract §1)."""
    return (("namespace", cj.namespace), ("cronjob", cj.name))


def _value(v: float | None) -> Iterable[Sample]:
    return () if v is None else (("", (), float(v)),)


def _field(getter: Callable[[Job], float | None]) -> Callable[[Job], Iterable[Sample]]:
    return lambda job: _value(getter(job))


def _cj_field(getter: Callable[[CronJob], float | None]) -> Callable[[CronJob], Iterable[Sample]]:
    return lambda cj: _value(getter(cj))


def _job_state(job: Job) -> Iterable[Sample]:
    current = job.state
    return [("", (("state", s),), 1.0 if s == current else 0.0) for s in JOB_STATES]


def _running_seconds(job: Job, now: float) -> float:
    return max(0.0, now - (job.started or now))


JOB_FAMILIES: tuple[Family[Job], ...] = (
    Family(
        "kube_batch_job_state",
        "One-hot state of the Job: pending, running, succeeded, failed, suspended.",
        "gauge",
        _job_state,
    ),
    Family(
        "kube_batch_job_status_active",
        "Pending or running pods of the Job (status.active).",
        "gauge",
        _field(lambda j: j.active),
    ),
    Family(
        "kube_batch_job_status_ready",
        "Ready pods of the Job (status.ready).",
        "gauge",
        _field(lambda j: j.ready),
    ),
    Family(
        "kube_batch_job_status_succeeded",
        "Pods of the Job that succeeded (status.succeeded).",
        "gauge",
        _field(lambda j: j.succeeded),
    ),
    Family(
        "kube_batch_job_status_failed",
        "Pods of the Job that failed (status.failed).",
        "gauge",
        _field(lambda j: j.failed),
    ),
    Family(
        "kube_batch_job_status_terminating",
        "Pods of the Job being terminated (status.terminating).",
        "gauge",
        _field(lambda j: j.terminating),
    ),
    Family(
        "kube_batch_job_spec_completions",
        "Desired successful pods (spec.completions).",
        "gauge",
        _field(lambda j: j.completions),
    ),
    Family(
        "kube_batch_job_spec_parallelism",
        "Maximum pods running at once (spec.parallelism).",
        "gauge",
        _field(lambda j: j.parallelism),
    ),
    Family(
        "kube_batch_job_spec_backoff_limit",
        "Retries before the Job fails (spec.backoffLimit).",
        "gauge",
        _field(lambda j: j.backoff_limit),
    ),
    Family(
        "kube_batch_job_spec_active_deadline_seconds",
        "Deadline of the Job (activeDeadlineSeconds).",
        "gauge",
        _field(lambda j: j.active_deadline),
    ),
    Family(
        "kube_batch_job_start_timestamp_seconds",
        "When the Job started (status.startTime).",
        "gauge",
        _field(lambda j: j.started),
    ),
    Family(
        "kube_batch_job_end_timestamp_seconds",
        "When the Job finished: completionTime, or the Failed condition's lastTransitionTime.",
        "gauge",
        _field(lambda j: j.end),
    ),
)
JOB_LIVE_FAMILIES: tuple[LiveFamily[Job], ...] = (
    LiveFamily(
        "kube_batch_job_running_seconds",
        "Seconds since status.startTime while the Job is active.",
        "gauge",
        _running_seconds,
        applies=lambda j: j.started is not None and not j.finished and not j.suspended,
    ),
)

CRONJOB_FAMILIES: tuple[Family[CronJob], ...] = (
    Family(
        "kube_batch_cronjob_info",
        "One series per CronJob with its schedule, time zone (empty when unset) "
        "and concurrency policy.",
        "gauge",
        lambda cj: [
            (
                "",
                (
                    ("schedule", cj.schedule),
                    ("timezone", cj.timezone),
                    ("concurrency_policy", cj.concurrency_policy),
                ),
                1.0,
            )
        ],
    ),
    Family(
        "kube_batch_cronjob_suspended",
        "1 when spec.suspend is true.",
        "gauge",
        lambda cj: [("", (), 1.0 if cj.suspended else 0.0)],
    ),
    Family(
        "kube_batch_cronjob_active_jobs",
        "Jobs of the CronJob that are running (len(status.active)).",
        "gauge",
        _cj_field(lambda cj: cj.active),
    ),
    Family(
        "kube_batch_cronjob_last_schedule_timestamp_seconds",
        "Slot of the last Job the controller created (status.lastScheduleTime).",
        "gauge",
        _cj_field(lambda cj: cj.last_schedule),
    ),
    Family(
        "kube_batch_cronjob_starting_deadline_seconds",
        "spec.startingDeadlineSeconds, when set.",
        "gauge",
        _cj_field(lambda cj: cj.starting_deadline),
    ),
)


def job_renderer(clock: Callable[[], float] = time.time) -> RenderedFamilies[Job]:
    """The pre-rendered store for every per-Job family."""
    return RenderedFamilies(JOB_FAMILIES, JOB_LIVE_FAMILIES, job_identity, clock)


def cronjob_renderer() -> RenderedFamilies[CronJob]:
    """The pre-rendered store for the per-CronJob state families."""
    return RenderedFamilies(CRONJOB_FAMILIES, (), cronjob_identity)


class RetainedJobs:
    """``kube_batch_job_finished_retained``: finished Jobs still stored, per owner.

    Aggregated per owner (not per Job) so it stays one series per CronJob or Job family; the
    count follows history limits and TTL deletions as they happen.
    """

    NAME = "kube_batch_job_finished_retained"
    HEADER = header(NAME, "Finished Jobs still stored in the cluster, per owner.", "gauge")

    def __init__(self) -> None:
        self.counts: Counter[OwnerKey] = Counter()

    def changed(self, old: Job | None, new: Job | None) -> None:
        """Follow a Job's change (cache subscriber)."""
        for job, delta in ((old, -1), (new, 1)):
            if job is not None and job.finished:
                key = job.owner_key
                self.counts[key] += delta
                if self.counts[key] <= 0:
                    del self.counts[key]

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append the family to a scrape."""
        out.append(self.HEADER)
        out.extend(
            f"{self.NAME}{format_labels(owner_labels(key))} {format_value(n)}\n".encode()
            for key, n in self.counts.items()
        )


def owner_labels(key: OwnerKey) -> Labels:
    """Identity labels of every per-owner series (contract §1)."""
    return (("namespace", key[0]), ("owner_kind", key[1]), ("owner_name", key[2]))
