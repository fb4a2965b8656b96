"""Raw API dicts in, small typed records out: the only place that reads object bodies.

Keeping just the fields the metrics need (in slotted, frozen records) bounds memory per object
and makes every later layer independent of the API's shape. Projection never trusts its input:
a missing or mistyped optional field becomes None/0/"", and only an object without
``metadata.uid`` is rejected (with :class:`BadObject`), because nothing can be keyed without it.
Nothing secret is copied: no env, no command lines, no annotation values beyond the few the
contract names.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from exporter.parsing import parse_timestamp

RawObject = dict[str, Any]
OwnerKey = tuple[str, str, str]
"""(namespace, owner_kind, owner_name): the identity of run-history series."""

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE = "cronjob.kubernetes.io/instantiate"

JOB_STATES = ("pending", "running", "succeeded", "failed", "suspended")

THRESHOLD_PREFIX = "kube-batch-exporter/"
THRESHOLD_KEYS = frozenset(
    THRESHOLD_PREFIX + key
    for key in (
        "max-duration",
        "max-consecutive-failures",
        "missed-grace",
        "max-start-delay",
        "alerts",
    )
)
"""The only annotations whose values the exporter reads (contract §5)."""


class BadObject(ValueError):
    """The object cannot be tracked at all (no UID)."""


def _map(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str:
    # intern: namespaces, owner names and reasons repeat across thousands of objects
    return sys.intern(value) if isinstance(value, str) else ""


def _thresholds(meta: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    annotations = _map(meta.get("annotations"))
    return tuple(
        sorted((k, v) for k, v in annotations.items() if k in THRESHOLD_KEYS and isinstance(v, str))
    )


def _meta(raw: RawObject) -> tuple[dict[str, Any], str]:
    meta = _map(raw.get("metadata"))
    uid = meta.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadObject("object without metadata.uid")
    return meta, uid


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
    thresholds: tuple[tuple[str, str], ...]
    """Raw values of the §5 threshold annotations, sorted by key (nothing else is kept)."""

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


def _owner(
    meta: dict[str, Any],
    name: str,
    family_label: str | None,
) -> tuple[str, str, str]:
    """Return (owner_kind, owner_name, trigger) per contract §1."""
    annotations = _map(meta.get("annotations"))
    for ref in _list(meta.get("ownerReferences")):
        ref = _map(ref)
        if ref.get("kind") == "CronJob" and isinstance(ref.get("name"), str):
            manual = annotations.get(INSTANTIATE) == "manual" or ref.get("controller") is not True
            return "CronJob", _str(ref["name"]), "manual" if manual else "schedule"
    generate_name = meta.get("generateName")
    if isinstance(generate_name, str) and generate_name.rstrip("-"):
        return "Job", _str(generate_name.rstrip("-")), "direct"
    if family_label:
        value = _map(meta.get("labels")).get(family_label)
        if isinstance(value, str) and value:
            return "Job", _str(value), "direct"
    return "Job", name, "direct"


def _terminal(conditions: list[Any]) -> tuple[str, str, float | None, bool]:
    """Return (outcome, reason, failed_at, suspended) from Job conditions.

    Only ``Complete``/``Failed`` with status True are terminal; the interim
    ``SuccessCriteriaMet``/``FailureTarget`` (Kubernetes >= 1.31) are not, and the order of
    conditions is never relied on.
    """
    outcome, reason, failed_at, suspended = "", "", None, False
    for cond in conditions:
        cond = _map(cond)
        if cond.get("status") != "True":
            continue
        kind = cond.get("type")
        if kind == "Complete":
            outcome, reason = "succeeded", _str(cond.get("reason"))
        elif kind == "Failed":
            outcome, reason = "failed", _str(cond.get("reason"))
            failed_at = parse_timestamp(cond.get("lastTransitionTime"))
        elif kind == "Suspended":
            suspended = True
    return outcome, reason, failed_at, suspended


def project_job(raw: RawObject, family_label: str | None = None) -> Job:
    """Project a Job dict into a :class:`Job` record."""
    meta, uid = _meta(raw)
    spec, status = _map(raw.get("spec")), _map(raw.get("status"))
    name = _str(meta.get("name"))
    owner_kind, owner_name, trigger = _owner(meta, name, family_label)
    outcome, reason, failed_at, suspended_cond = _terminal(_list(status.get("conditions")))
    return Job(
        uid=uid,
        namespace=_str(meta.get("namespace")),
        name=name,
        owner_kind=owner_kind,
        owner_name=owner_name,
        trigger=trigger,
        created=parse_timestamp(meta.get("creationTimestamp")),
        started=parse_timestamp(status.get("startTime")),
        completed=parse_timestamp(status.get("completionTime")),
        failed_at=failed_at,
        outcome=outcome,
        reason=reason,
        suspended=spec.get("suspend") is True or suspended_cond,
        active=_int(status.get("active")) or 0,
        ready=_int(status.get("ready")),
        succeeded=_int(status.get("succeeded")) or 0,
        failed=_int(status.get("failed")) or 0,
        terminating=_int(status.get("terminating")),
        completions=_int(spec.get("completions")),
        parallelism=_int(spec.get("parallelism")),
        backoff_limit=_int(spec.get("backoffLimit")),
        active_deadline=_int(spec.get("activeDeadlineSeconds")),
        scheduled=parse_timestamp(_map(meta.get("annotations")).get(SCHEDULED_AT)),
        deleted_at=parse_timestamp(meta.get("deletionTimestamp")),
        thresholds=_thresholds(meta),
    )


@dataclass(frozen=True, slots=True)
class CronJob:
    """What the exporter keeps of a ``batch/v1`` CronJob."""

    uid: str
    namespace: str
    name: str
    schedule: str
    timezone: str
    """``spec.timeZone``; ``""`` when unset."""
    concurrency_policy: str
    suspended: bool
    active: int
    created: float | None
    last_schedule: float | None
    last_successful: float | None
    starting_deadline: int | None
    thresholds: tuple[tuple[str, str], ...]


def project_cronjob(raw: RawObject) -> CronJob:
    """Project a CronJob dict into a :class:`CronJob` record."""
    meta, uid = _meta(raw)
    spec, status = _map(raw.get("spec")), _map(raw.get("status"))
    return CronJob(
        uid=uid,
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        schedule=_str(spec.get("schedule")),
        timezone=_str(spec.get("timeZone")),
        concurrency_policy=_str(spec.get("concurrencyPolicy")) or "Allow",
        suspended=spec.get("suspend") is True,
        active=len(_list(status.get("active"))),
        created=parse_timestamp(meta.get("creationTimestamp")),
        last_schedule=parse_timestamp(status.get("lastScheduleTime")),
        last_successful=parse_timestamp(status.get("lastSuccessfulTime")),
        starting_deadline=_int(spec.get("startingDeadlineSeconds")),
        thresholds=_thresholds(meta),
    )


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


def _failure_reason(status: dict[str, Any]) -> str:
    for cs in _list(status.get("initContainerStatuses")) + _list(status.get("containerStatuses")):
        terminated = _map(_map(_map(cs).get("state")).get("terminated"))
        if terminated and terminated.get("exitCode") != 0 and terminated.get("reason"):
            return _str(terminated["reason"])
    if status.get("reason"):
        return _str(status["reason"])
    for cond in _list(status.get("conditions")):
        cond = _map(cond)
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            return _str(cond.get("reason")) or "Unknown"
    return "Unknown"


def project_pod(raw: RawObject) -> Pod:
    """Project a Pod dict into a :class:`Pod` record."""
    meta, uid = _meta(raw)
    status = _map(raw.get("status"))
    job_uid = ""
    for ref in _list(meta.get("ownerReferences")):
        ref = _map(ref)
        if ref.get("kind") == "Job" and ref.get("controller") is True:
            job_uid = _str(ref.get("uid"))
    starts: list[float] = []
    restarts = 0
    for cs in _list(status.get("initContainerStatuses")) + _list(status.get("containerStatuses")):
        cs = _map(cs)
        restarts += _int(cs.get("restartCount")) or 0
        for state in (_map(cs.get("state")), _map(cs.get("lastState"))):
            for key in ("running", "terminated"):
                ts = parse_timestamp(_map(state.get(key)).get("startedAt"))
                if ts is not None:
                    starts.append(ts)
    phase = _str(status.get("phase"))
    return Pod(
        uid=uid,
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        job_uid=job_uid,
        phase=phase,
        created=parse_timestamp(meta.get("creationTimestamp")),
        first_start=min(starts) if starts else None,
        restarts=restarts,
        failure_reason=_failure_reason(status) if phase == "Failed" else "",
    )
