"""Raw API dicts in, records out: the only place that reads object bodies, and its checks.

This is the exporter's edge, so it is where input is validated, once. A field it reads that
holds what the API server could never send makes the whole object *bad* (:class:`BadObject`,
whose message names the field): a scalar of the wrong JSON type, an integer outside its Go
type or a negative count, a timestamp outside 1970-3000, a string that is too long or not
valid Unicode, a container of the wrong type. A bad object is skipped whole rather than
half-trusted: every layer behind the edge can rely on its records (counts are small and
non-negative, times are sane, every string encodes). Absent optional fields are fine and
become None/0/"".

Each projection declares the fields it reads as a *shape* (:class:`JobShape`, :class:`PodShape`,
:class:`CronJobShape`): nested TypedDicts the watchers hand to msgspec, so a LIST page or watch
event is decoded into dicts of those fields only and the rest (a Pod's spec, most of
``managedFields``) is skipped in C, never built as Python objects. Leaves are ``Any``: the checks
stay here, in one place, with their messages. A body that does not fit a shape is decoded in
full and projected as usual, so a shape only ever changes speed, never a record or a verdict
(tests/store/test_projecting.py holds both paths equal).

Annotations are the exception: people write them, so an unusable threshold or scheduled-time
annotation is ignored (thresholds are reported as ``bad_annotation``), never a reason to drop
the object. Values that need parsing are parsed here, once per change of the object:
timestamps, threshold annotations and the CronJob's schedule.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, TypedDict

from exporter.cron.grammar import parse_cached
from exporter.cron.schedule import InvalidSchedule
from exporter.store.records import CronJob, Job, Pod
from exporter.store.thresholds import read_thresholds

RawObject = dict[str, Any]
"""An API object as decoded from JSON."""

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE = "cronjob.kubernetes.io/instantiate"

INT32 = 2**31 - 1
"""Counts and sizes are Go int32 in the API."""
INT64 = 2**63 - 1
"""Deadlines in seconds are Go int64."""
MAX_NAME = 253
"""Object names and UIDs: a DNS subdomain at most."""
MAX_TEXT = 1024
"""Other strings that become label values (reasons, schedules, phases)."""
LATEST = 32503680000.0
"""3000-01-01T00:00:00Z: no later timestamp can come from a running cluster."""


class _OwnerReference(TypedDict, total=False):
    kind: Any
    name: Any
    uid: Any
    controller: Any


_SuspendField = TypedDict("_SuspendField", {"f:suspend": Any}, total=False)
_SpecFields = TypedDict("_SpecFields", {"f:spec": _SuspendField}, total=False)


class _ManagedFields(TypedDict, total=False):
    subresource: Any
    time: Any
    fieldsV1: _SpecFields


class _Metadata(TypedDict, total=False):
    uid: Any
    name: Any
    namespace: Any
    generateName: Any
    creationTimestamp: Any
    deletionTimestamp: Any
    resourceVersion: Any
    """Not projected: where a watch resumes (kube.watching reads it)."""
    ownerReferences: list[_OwnerReference]


class _WorkloadMetadata(_Metadata, total=False):
    labels: dict[str, Any]
    annotations: dict[str, Any]
    managedFields: list[_ManagedFields]


class _Condition(TypedDict, total=False):
    type: Any
    status: Any
    reason: Any
    lastTransitionTime: Any


class _JobSpec(TypedDict, total=False):
    suspend: Any
    completions: Any
    parallelism: Any
    backoffLimit: Any
    activeDeadlineSeconds: Any


class _JobStatus(TypedDict, total=False):
    conditions: list[_Condition]
    startTime: Any
    completionTime: Any
    active: Any
    ready: Any
    succeeded: Any
    failed: Any
    terminating: Any


class JobShape(TypedDict, total=False):
    """The fields of a Job that :func:`project_job` reads."""

    metadata: _WorkloadMetadata
    spec: _JobSpec
    status: _JobStatus


class _CronJobSpec(TypedDict, total=False):
    schedule: Any
    timeZone: Any
    concurrencyPolicy: Any
    suspend: Any
    startingDeadlineSeconds: Any


class _CronJobStatus(TypedDict, total=False):
    active: Any
    lastScheduleTime: Any
    lastSuccessfulTime: Any


class CronJobShape(TypedDict, total=False):
    """The fields of a CronJob that :func:`project_cronjob` reads."""

    metadata: _WorkloadMetadata
    spec: _CronJobSpec
    status: _CronJobStatus


class _Started(TypedDict, total=False):
    startedAt: Any


class _Terminated(_Started, total=False):
    exitCode: Any
    reason: Any


class _ContainerState(TypedDict, total=False):
    running: _Started
    terminated: _Terminated


class _ContainerStatus(TypedDict, total=False):
    restartCount: Any
    state: _ContainerState
    lastState: _ContainerState


class _PodStatus(TypedDict, total=False):
    phase: Any
    reason: Any
    conditions: list[_Condition]
    initContainerStatuses: list[_ContainerStatus]
    containerStatuses: list[_ContainerStatus]


class PodShape(TypedDict, total=False):
    """The fields of a Pod that :func:`project_pod` reads."""

    metadata: _Metadata
    status: _PodStatus


class BadObject(ValueError):
    """The object holds what the API could never send; the message names the field."""


def _show(value: object) -> str:
    """A short, printable rendering of a bad value for the message (never the whole value)."""
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bad(where: str, what: str, value: object) -> BadObject:
    return BadObject(f"{where} is not {what}: {_show(value)}")


# Each check takes the field's path as one constant string (``[]`` for any list item), so a
# valid object pays nothing for the words of an error it does not have.


def _map(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, "an object", value)
    return value


def _maps(value: object, where: str) -> list[dict[str, Any]]:
    """A list of objects (``where`` names the list)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(where, "a list", value)
    for item in value:
        if not isinstance(item, dict):
            raise _bad(where + "[]", "an object", item)
    return value


def _count(value: object, where: str, limit: int = INT32) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise _bad(where, "a count", value)
    return value


def _int32(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -INT32 - 1 <= value <= INT32:
        raise _bad(where, "an int32", value)
    return value


def _flag(value: object, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(where, "a boolean", value)
    return value


def _text(value: object, where: str, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(where, f"a string of at most {limit} characters", value)
    if not value.isascii():  # names, reasons and schedules almost always are
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _bad(where, "valid Unicode", value) from None
    # intern: namespaces, owner names and reasons repeat across thousands of objects
    return sys.intern(value)


def parse_timestamp(text: object) -> float | None:
    """Unix seconds of an RFC 3339 timestamp between 1970 and 3000, else None."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    try:
        seconds = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds < LATEST else None


def _time(value: object, where: str) -> float | None:
    if value is None:
        return None
    seconds = parse_timestamp(value)
    if seconds is None:
        raise _bad(where, "a time between 1970 and 3000", value)
    return seconds


def uid_of(raw: object) -> str | None:
    """The object's UID when it is a usable one, even if the rest of the object is bad."""
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    uid = meta.get("uid") if isinstance(meta, dict) else None
    if isinstance(uid, str) and 0 < len(uid) <= MAX_NAME and uid.isprintable():
        return uid
    return None


def _meta(raw: RawObject) -> tuple[dict[str, Any], str]:
    if not isinstance(raw, dict):
        raise BadObject("not an object")
    meta = _map(raw.get("metadata"), "metadata")
    uid = _text(meta.get("uid"), "metadata.uid", limit=MAX_NAME)
    if not uid:
        raise BadObject("object without metadata.uid")
    return meta, uid


def _owner(
    meta: dict[str, Any],
    name: str,
    family_label: str | None,
) -> tuple[str, str, str]:
    """Return (owner_kind, owner_name, trigger) per contract §1."""
    annotations = _map(meta.get("annotations"), "metadata.annotations")
    for ref in _maps(meta.get("ownerReferences"), "metadata.ownerReferences"):
        if _text(ref.get("kind"), "metadata.ownerReferences[].kind") == "CronJob":
            owner = _text(ref.get("name"), "metadata.ownerReferences[].name", limit=MAX_NAME)
            controller = _flag(ref.get("controller"), "metadata.ownerReferences[].controller")
            manual = annotations.get(INSTANTIATE) == "manual" or not controller
            return "CronJob", owner, "manual" if manual else "schedule"
    generate_name = _text(meta.get("generateName"), "metadata.generateName", limit=MAX_NAME)
    if generate_name.rstrip("-"):
        return "Job", sys.intern(generate_name.rstrip("-")), "direct"
    if family_label:
        labels = _map(meta.get("labels"), "metadata.labels")
        value = _text(labels.get(family_label), "metadata.labels[--job-family-label]")
        if value:
            return "Job", value, "direct"
    return "Job", name, "direct"


def _terminal(status: dict[str, Any]) -> tuple[str, str, float | None, bool]:
    """Return (outcome, reason, failed_at, suspended) from Job conditions.

    Only ``Complete``/``Failed`` with status True are terminal; the interim
    ``SuccessCriteriaMet``/``FailureTarget`` (Kubernetes >= 1.31) are not, and the order of
    conditions is never relied on.
    """
    outcome, reason, failed_at, suspended = "", "", None, False
    for cond in _maps(status.get("conditions"), "status.conditions"):
        if _text(cond.get("status"), "status.conditions[].status") != "True":
            continue
        kind = _text(cond.get("type"), "status.conditions[].type")
        if kind == "Complete":
            outcome, reason = "succeeded", _text(cond.get("reason"), "status.conditions[].reason")
        elif kind == "Failed":
            outcome, reason = "failed", _text(cond.get("reason"), "status.conditions[].reason")
            failed_at = _time(
                cond.get("lastTransitionTime"), "status.conditions[].lastTransitionTime"
            )
        elif kind == "Suspended":
            suspended = True
    return outcome, reason, failed_at, suspended


def project_job(raw: RawObject, family_label: str | None = None) -> Job:
    """Project a Job dict into a :class:`Job` record."""
    meta, uid = _meta(raw)
    spec, status = _map(raw.get("spec"), "spec"), _map(raw.get("status"), "status")
    annotations = _map(meta.get("annotations"), "metadata.annotations")
    name = _text(meta.get("name"), "metadata.name", limit=MAX_NAME)
    owner_kind, owner_name, trigger = _owner(meta, name, family_label)
    outcome, reason, failed_at, suspended_cond = _terminal(status)
    return Job(
        uid=uid,
        namespace=_text(meta.get("namespace"), "metadata.namespace", limit=MAX_NAME),
        name=name,
        owner_kind=owner_kind,
        owner_name=owner_name,
        trigger=trigger,
        created=_time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        started=_time(status.get("startTime"), "status.startTime"),
        completed=_time(status.get("completionTime"), "status.completionTime"),
        failed_at=failed_at,
        outcome=outcome,
        reason=reason,
        suspended=_flag(spec.get("suspend"), "spec.suspend") or suspended_cond,
        active=_count(status.get("active"), "status.active") or 0,
        ready=_count(status.get("ready"), "status.ready"),
        succeeded=_count(status.get("succeeded"), "status.succeeded") or 0,
        failed=_count(status.get("failed"), "status.failed") or 0,
        terminating=_count(status.get("terminating"), "status.terminating"),
        completions=_count(spec.get("completions"), "spec.completions"),
        parallelism=_count(spec.get("parallelism"), "spec.parallelism"),
        backoff_limit=_count(spec.get("backoffLimit"), "spec.backoffLimit"),
        active_deadline=_count(
            spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds", limit=INT64
        ),
        scheduled=parse_timestamp(annotations.get(SCHEDULED_AT)),
        deleted_at=_time(meta.get("deletionTimestamp"), "metadata.deletionTimestamp"),
        thresholds=read_thresholds(annotations),
    )


def project_cronjob(raw: RawObject) -> CronJob:
    """Project a CronJob dict into a :class:`CronJob` record."""
    meta, uid = _meta(raw)
    spec, status = _map(raw.get("spec"), "spec"), _map(raw.get("status"), "status")
    schedule = _text(spec.get("schedule"), "spec.schedule")
    timezone = _text(spec.get("timeZone"), "spec.timeZone", limit=MAX_NAME)
    policy = _text(spec.get("concurrencyPolicy"), "spec.concurrencyPolicy")
    active = status.get("active")
    if active is not None and not isinstance(active, list):
        raise _bad("status.active", "a list", active)
    parsed = parse_cached(schedule, timezone)
    created = _time(meta.get("creationTimestamp"), "metadata.creationTimestamp")
    return CronJob(
        uid=uid,
        namespace=_text(meta.get("namespace"), "metadata.namespace", limit=MAX_NAME),
        name=_text(meta.get("name"), "metadata.name", limit=MAX_NAME),
        schedule=schedule,
        timezone=timezone,
        parsed_schedule=None if isinstance(parsed, InvalidSchedule) else parsed,
        schedule_error=str(parsed) if isinstance(parsed, InvalidSchedule) else "",
        concurrency_policy=policy or "Allow",
        suspended=_flag(spec.get("suspend"), "spec.suspend"),
        suspend_changed=_suspend_written(meta.get("managedFields")) or created,
        active=len(active or ()),
        created=created,
        last_schedule=_time(status.get("lastScheduleTime"), "status.lastScheduleTime"),
        last_successful=_time(status.get("lastSuccessfulTime"), "status.lastSuccessfulTime"),
        starting_deadline=_count(
            spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds", limit=INT64
        ),
        thresholds=read_thresholds(_map(meta.get("annotations"), "metadata.annotations")),
    )


def _suspend_written(managed: object) -> float | None:
    """The latest ``managedFields`` time of a field manager that owns ``spec.suspend``.

    Kubernetes records no "suspended since", but every write stamps the time on the entry of
    the manager that made it, and that entry lists the fields it owns. The time is at or after
    the write that last set the field (a later write by the same manager moves it on), so an
    age computed from it is never too long: a "suspended too long" alert may be late, never
    early, and needs no state to survive a restart or a failover. Status writes (the
    controller's) own no spec field. Entries that are not as the API writes them are skipped:
    this is a hint, not worth losing the object over.
    """
    latest: float | None = None
    for entry in managed if isinstance(managed, list) else ():
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1")
        spec = fields.get("f:spec") if isinstance(fields, dict) else None
        if isinstance(spec, dict) and "f:suspend" in spec:
            written = parse_timestamp(entry.get("time"))
            if written is not None and (latest is None or written > latest):
                latest = written
    return latest


def _containers(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The status of every init and app container, in that order."""
    init = _maps(status.get("initContainerStatuses"), "status.initContainerStatuses")
    return init + _maps(status.get("containerStatuses"), "status.containerStatuses")


def _failure(status: dict[str, Any]) -> tuple[str, int | None]:
    """Why a failed Pod failed (contract §3 order), and the exit code of that container."""
    for cs in _containers(status):
        state = _map(cs.get("state"), "status.containerStatuses[].state")
        terminated = _map(state.get("terminated"), "status.containerStatuses[].state.terminated")
        exit_code = _int32(terminated.get("exitCode"), "status.containerStatuses[].exitCode")
        reason = _text(terminated.get("reason"), "status.containerStatuses[].reason")
        if terminated and exit_code != 0 and reason:
            return reason, exit_code
    if reason := _text(status.get("reason"), "status.reason"):
        return reason, None
    for cond in _maps(status.get("conditions"), "status.conditions"):
        disruption = _text(cond.get("type"), "status.conditions[].type") == "DisruptionTarget"
        if disruption and _text(cond.get("status"), "status.conditions[].status") == "True":
            return _text(cond.get("reason"), "status.conditions[].reason") or "Unknown", None
    return "Unknown", None


def project_pod(raw: RawObject) -> Pod:
    """Project a Pod dict into a :class:`Pod` record."""
    meta, uid = _meta(raw)
    status = _map(raw.get("status"), "status")
    job_uid = ""
    for ref in _maps(meta.get("ownerReferences"), "metadata.ownerReferences"):
        kind = _text(ref.get("kind"), "metadata.ownerReferences[].kind")
        if kind == "Job" and _flag(ref.get("controller"), "metadata.ownerReferences[].controller"):
            job_uid = _text(ref.get("uid"), "metadata.ownerReferences[].uid", limit=MAX_NAME)
    starts: list[float] = []
    restarts = 0
    for cs in _containers(status):
        restarts += _count(cs.get("restartCount"), "status.containerStatuses[].restartCount") or 0
        for part in ("state", "lastState"):
            state = _map(cs.get(part), "status.containerStatuses[].state")
            for key in ("running", "terminated"):
                started = _map(state.get(key), "status.containerStatuses[].state").get("startedAt")
                at = _time(started, "status.containerStatuses[].startedAt")
                if at is not None:
                    starts.append(at)
    phase = _text(status.get("phase"), "status.phase")
    reason, exit_code = _failure(status) if phase == "Failed" else ("", None)
    return Pod(
        uid=uid,
        namespace=_text(meta.get("namespace"), "metadata.namespace", limit=MAX_NAME),
        name=_text(meta.get("name"), "metadata.name", limit=MAX_NAME),
        job_uid=job_uid,
        phase=phase,
        created=_time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        first_start=min(starts) if starts else None,
        restarts=restarts,
        failure_reason=reason,
        exit_code=exit_code,
    )
