"""State families (contract §2): what the Job and CronJob objects say right now.

Each family is declared once, as data, next to the small function that computes it; the series
of an object vanish with the object. Timestamps and optional spec fields produce no series when
absent (never a misleading 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from exporter.cron.schedule import interval
from exporter.metrics import identity
from exporter.metrics.exposition import Family, Group, LiveFamily, Sample, gauge
from exporter.store.owners import FinishedJobs
from exporter.store.records import JOB_STATES, CronJob, Job


def _job(getter: Callable[[Job], float | None]) -> Callable[[Job], Iterable[Sample]]:
    return lambda job: gauge(getter(job))


def _cronjob(getter: Callable[[CronJob], float | None]) -> Callable[[CronJob], Iterable[Sample]]:
    return lambda cj: gauge(getter(cj))


def _job_state(job: Job) -> Iterable[Sample]:
    current = job.state
    return [("", (("state", s),), 1.0 if s == current else 0.0) for s in JOB_STATES]


def _running_seconds(job: Job, now: float) -> float:
    return max(0.0, now - (job.started or now))


def _cronjob_info(cj: CronJob) -> Iterable[Sample]:
    labels = (
        ("schedule", cj.schedule),
        ("timezone", cj.timezone),
        ("concurrency_policy", cj.concurrency_policy),
    )
    return [("", labels, 1.0)]


def _next_schedule(cj: CronJob) -> float | None:
    """The controller's next slot: the first after ``lastScheduleTime``, else after creation.

    It lies in the past while the controller is behind (a Forbid skip, an outage), exactly as
    kube-state-metrics' ``kube_cronjob_next_schedule_time``, which is what makes it useful.
    """
    since = cj.last_schedule or cj.created
    if cj.suspended or cj.parsed_schedule is None or since is None:
        return None
    return cj.parsed_schedule.next(since)


def _interval(cj: CronJob) -> float | None:
    return None if cj.parsed_schedule is None else interval(cj.parsed_schedule)


JOB: Group[Job] = Group(
    identity.JOB,
    (
        Family(
            "kube_batch_job_state",
            "gauge",
            "One-hot state of the Job: pending, running, succeeded, failed, suspended.",
            ("state",),
            _job_state,
        ),
        Family(
            "kube_batch_job_status_active",
            "gauge",
            "Pending or running pods of the Job (status.active).",
            (),
            _job(lambda j: j.active),
        ),
        Family(
            "kube_batch_job_status_ready",
            "gauge",
            "Ready pods of the Job (status.ready).",
            (),
            _job(lambda j: j.ready),
        ),
        Family(
            "kube_batch_job_status_succeeded",
            "gauge",
            "Pods of the Job that succeeded (status.succeeded).",
            (),
            _job(lambda j: j.succeeded),
        ),
        Family(
            "kube_batch_job_status_failed",
            "gauge",
            "Pods of the Job that failed (status.failed).",
            (),
            _job(lambda j: j.failed),
        ),
        Family(
            "kube_batch_job_status_terminating",
            "gauge",
            "Pods of the Job being terminated (status.terminating).",
            (),
            _job(lambda j: j.terminating),
        ),
        Family(
            "kube_batch_job_spec_completions",
            "gauge",
            "Desired successful pods (spec.completions).",
            (),
            _job(lambda j: j.completions),
        ),
        Family(
            "kube_batch_job_spec_parallelism",
            "gauge",
            "Maximum pods running at once (spec.parallelism).",
            (),
            _job(lambda j: j.parallelism),
        ),
        Family(
            "kube_batch_job_spec_backoff_limit",
            "gauge",
            "Retries before the Job fails (spec.backoffLimit).",
            (),
            _job(lambda j: j.backoff_limit),
        ),
        Family(
            "kube_batch_job_spec_active_deadline_seconds",
            "gauge",
            "Deadline of the Job (activeDeadlineSeconds).",
            (),
            _job(lambda j: j.active_deadline),
        ),
        Family(
            "kube_batch_job_start_timestamp_seconds",
            "gauge",
            "When the Job started (status.startTime).",
            (),
            _job(lambda j: j.started),
        ),
        Family(
            "kube_batch_job_end_timestamp_seconds",
            "gauge",
            "When the Job finished: completionTime, or the Failed condition's lastTransitionTime.",
            (),
            _job(lambda j: j.end),
        ),
    ),
    (
        LiveFamily(
            "kube_batch_job_running_seconds",
            "gauge",
            "Seconds since status.startTime while the Job is active.",
            _running_seconds,
            applies=lambda j: j.started is not None and not j.finished and not j.suspended,
        ),
    ),
)

CRONJOB: Group[CronJob] = Group(
    identity.CRONJOB,
    (
        Family(
            "kube_batch_cronjob_info",
            "gauge",
            "One series per CronJob with its schedule, time zone (empty when unset) "
            "and concurrency policy.",
            ("schedule", "timezone", "concurrency_policy"),
            _cronjob_info,
        ),
        Family(
            "kube_batch_cronjob_suspended",
            "gauge",
            "1 when spec.suspend is true.",
            (),
            lambda cj: gauge(1.0 if cj.suspended else 0.0),
        ),
        Family(
            "kube_batch_cronjob_active_jobs",
            "gauge",
            "Jobs of the CronJob that are running (len(status.active)).",
            (),
            _cronjob(lambda cj: cj.active),
        ),
        Family(
            "kube_batch_cronjob_last_schedule_timestamp_seconds",
            "gauge",
            "Slot of the last Job the controller created (status.lastScheduleTime).",
            (),
            _cronjob(lambda cj: cj.last_schedule),
        ),
        Family(
            "kube_batch_cronjob_starting_deadline_seconds",
            "gauge",
            "spec.startingDeadlineSeconds, when set.",
            (),
            _cronjob(lambda cj: cj.starting_deadline),
        ),
        Family(
            "kube_batch_cronjob_schedule_valid",
            "gauge",
            "0 when the schedule or time zone cannot be used (the CronJob never runs).",
            (),
            lambda cj: gauge(0.0 if cj.parsed_schedule is None else 1.0),
        ),
        Family(
            "kube_batch_cronjob_next_schedule_timestamp_seconds",
            "gauge",
            "The controller's next slot: the first after status.lastScheduleTime (or creation), "
            "in the schedule's time zone; absent while suspended.",
            (),
            _cronjob(_next_schedule),
        ),
        Family(
            "kube_batch_cronjob_schedule_interval_seconds",
            "gauge",
            "The longest gap between two consecutive slots of the schedule (the night or the "
            "weekend of a business-hours schedule); absent when the schedule cannot be used.",
            (),
            _cronjob(_interval),
        ),
        Family(
            "kube_batch_cronjob_suspend_changed_timestamp_seconds",
            "gauge",
            "When spec.suspend was last written (the managedFields time of the manager "
            "owning it), else the creation: suspended or resumed since then.",
            (),
            _cronjob(lambda cj: cj.suspend_changed),
        ),
    ),
)

RETAINED: Group[FinishedJobs] = Group(
    identity.OWNER,
    (
        Family(
            "kube_batch_job_finished_retained",
            "gauge",
            "Finished Jobs still stored in the cluster, per owner.",
            (),
            lambda finished: gauge(finished.count),
        ),
    ),
)
