"""Raw API dicts in, records out: the only place that reads object bodies.

Projection never trusts its input: a missing or mistyped optional field becomes None/0/"", and
only an object without ``metadata.uid`` is rejected (with :class:`BadObject`), because nothing
can be keyed without it. Values that need parsing are parsed here, once per change of the
object: timestamps, threshold annotations and the CronJob's schedule.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from exporter.cron.grammar import parse_cached
from exporter.cron.schedule import InvalidSchedule
from exporter.store.records import CronJob, Job, Pod
from exporter.store.thresholds import read_thresholds

RawObject = dict[str, Any]
"""An API object as decoded from JSON."""

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE = "cronjob.kubernetes.io/instantiate"


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


def parse_timestamp(text: object) -> float | None:
    """Return Unix seconds for an RFC 3339 timestamp, or None when absent or malformed.

    Malformed timestamps are treated like absent ones: a metric without a series is better than
    a crash or a wrong value, and the API server never sends them in practice.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _meta(raw: RawObject) -> tuple[dict[str, Any], str]:
    meta = _map(raw.get("metadata"))
    uid = meta.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadObject("object without metadata.uid")
    return meta, uid


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
    annotations = _map(meta.get("annotations"))
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
        scheduled=parse_timestamp(annotations.get(SCHEDULED_AT)),
        deleted_at=parse_timestamp(meta.get("deletionTimestamp")),
        thresholds=read_thresholds(annotations),
    )


def project_cronjob(raw: RawObject) -> CronJob:
    """Project a CronJob dict into a :class:`CronJob` record."""
    meta, uid = _meta(raw)
    spec, status = _map(raw.get("spec")), _map(raw.get("status"))
    schedule, timezone = _str(spec.get("schedule")), _str(spec.get("timeZone"))
    parsed = parse_cached(schedule, timezone)
    return CronJob(
        uid=uid,
        namespace=_str(meta.get("namespace")),
        name=_str(meta.get("name")),
        schedule=schedule,
        timezone=timezone,
        parsed_schedule=None if isinstance(parsed, InvalidSchedule) else parsed,
        schedule_error=str(parsed) if isinstance(parsed, InvalidSchedule) else "",
        concurrency_policy=_str(spec.get("concurrencyPolicy")) or "Allow",
        suspended=spec.get("suspend") is True,
        active=len(_list(status.get("active"))),
        created=parse_timestamp(meta.get("creationTimestamp")),
        last_schedule=parse_timestamp(status.get("lastScheduleTime")),
        last_successful=parse_timestamp(status.get("lastSuccessfulTime")),
        starting_deadline=_int(spec.get("startingDeadlineSeconds")),
        thresholds=read_thresholds(_map(meta.get("annotations"))),
    )


def _containers(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The status of every init and app container, in that order."""
    both = _list(status.get("initContainerStatuses")) + _list(status.get("containerStatuses"))
    return [_map(cs) for cs in both]


def _failure_reason(status: dict[str, Any]) -> str:
    for cs in _containers(status):
        terminated = _map(_map(cs.get("state")).get("terminated"))
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
    for cs in _containers(status):
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
