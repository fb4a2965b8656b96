"""The records every layer above the store works with: what the exporter keeps of an object.

Frozen and slotted, holding only the fields the metrics need, so memory per object is bounded
and equality tells whether a change matters. Nothing secret is kept: no env, no command lines,
no annotation values beyond the thresholds of :mod:`exporter.store.thresholds`.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.cron.schedule import Schedule
from exporter.store.thresholds import Thresholds

OwnerKey = tuple[str, str, str]
"""(namespace, owner_kind, owner_name): the identity of run-history series."""

JOB_STATES = ("pending", "running", "succeeded", "failed", "suspended")


class ByOwner:
    """Keys a record about one owner (its ``key``) the way subscribers file records."""

    __slots__ = ()
    key: OwnerKey

    @property
    def uid(self) -> str:
        """Key for subscribers."""
        return "\x00".join(self.key)

    @property
    def namespace(self) -> str:
        """The owner's namespace."""
        return self.key[0]


@dataclass(frozen=True, slots=True)
class Job:
    """What the exporter keeps of a ``batch/v1`` Job."""

    uid: str
    namespace: str
    name: str
    owner_kind: str
    """``CronJob`` when any ownerReference is a CronJob, else ``Job`` (a Job family)."""
    owner_name: str
    trigger: str
    """``schedule``, ``manual`` or ``direct`` (contract §1)."""
    created: float | None
    started: float | None
    completed: float | None
    """``status.completionTime``: set for successful Jobs only."""
    failed_at: float | None
    """``lastTransitionTime`` of the ``Failed=True`` condition: the end of a failed Job."""
    outcome: str
    """``succeeded`` / ``failed`` once a terminal condition is True, else ``""``."""
    reason: str
    """Reason of the terminal condition (may be ``""`` on Kubernetes < 1.31)."""
    suspended: bool
    active: int
    ready: int | None
    succeeded: int
    failed: int
    terminating: int | None
    completions: int | None
    parallelism: int | None
    backoff_limit: int | None
    active_deadline: int | None
    scheduled: float | None
    """The CronJob slot this Job was created for (annotation), when present."""
    deleted_at: float | None
    """``metadata.deletionTimestamp``: set while a foreground deletion is in progress."""
    thresholds: Thresholds
    """Thresholds from the Job's annotations (used for direct Job families)."""

    @property
    def owner_key(self) -> OwnerKey:
        """The owner this Job's runs are counted for."""
        return (self.namespace, self.owner_kind, self.owner_name)

    @property
    def finished(self) -> bool:
        """True once a terminal condition (Complete/Failed) is True."""
        return bool(self.outcome)

    @property
    def end(self) -> float | None:
        """End of the run: completionTime on success, Failed's transition time on failure."""
        return self.completed if self.outcome == "succeeded" else self.failed_at

    @property
    def state(self) -> str:
        """One of :data:`JOB_STATES`.

        ``running`` once a pod became ready or finished (a Job waiting on its backoff between
        attempts still counts as running); ``pending`` before that.
        """
        if self.outcome:
            return self.outcome
        if self.suspended:
            return "suspended"
        if (self.ready or 0) > 0 or self.succeeded > 0 or self.failed > 0:
            return "running"
        return "pending"


@dataclass(frozen=True, slots=True)
class CronJob:
    """What the exporter keeps of a ``batch/v1`` CronJob."""

    uid: str
    namespace: str
    name: str
    schedule: str
    """``spec.schedule`` as written (the ``schedule`` label of ``kube_batch_cronjob_info``)."""
    timezone: str
    """``spec.timeZone``; ``""`` when unset."""
    parsed_schedule: Schedule | None
    """The schedule as the controller reads it; None when it cannot be used."""
    schedule_error: str
    """Why the schedule or time zone cannot be used; ``""`` when it can."""
    concurrency_policy: str
    suspended: bool
    suspend_changed: float | None
    """When ``spec.suspend`` was last written, else the creation (see ``_suspend_written``)."""
    active: int
    created: float | None
    last_schedule: float | None
    last_successful: float | None
    starting_deadline: int | None
    thresholds: Thresholds


@dataclass(frozen=True, slots=True)
class Pod:
    """What the exporter keeps of a Job-owned ``v1`` Pod (for retries and start delay)."""

    uid: str
    namespace: str
    name: str
    job_uid: str
    """UID of the controlling Job; ``""`` if the Pod has none."""
    phase: str
    created: float | None
    first_start: float | None
    """Earliest container start (running or terminated), the end of the run's start delay."""
    restarts: int
    """Sum of restartCount over init and app containers (in-place retries)."""
    failure_reason: str
    """Why the attempt failed, once phase is Failed (contract §3 order); ``""`` otherwise."""
    exit_code: int | None = None
    """The exit code of the container that failed it, when one did (not for an eviction)."""
