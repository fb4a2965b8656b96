"""One status per owner (CronJob or Job family), problems first (contract §12).

Built on request from the engine's own records (run histories and CronJob slot states), the
same the metrics are rendered from, so the status page, ``/api/v1/owners`` and ``report``
cannot disagree with ``/metrics``. Nothing is stored here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from exporter.cron.words import describe
from exporter.store.records import OwnerKey
from exporter.track.runs import RecentRun, RunTracker
from exporter.track.slots import CronSlots, SlotTracker

DAY = 86400.0
FAILING_AFTER = {"CronJob": 3, "Job": 1}
"""Consecutive failures that make an owner failing without a ``max-consecutive-failures``
annotation: the bundled alerts' defaults (CronJobFailing; BatchJobFailed on the first)."""


@dataclass(frozen=True, slots=True)
class OwnerStatus:
    """Everything the page shows of one owner; the JSON of ``/api/v1/owners`` field by field."""

    namespace: str
    kind: str
    """``CronJob``, or ``Job`` for a Job family."""
    name: str
    problems: tuple[str, ...]
    """``failing``, ``overdue``, ``invalid schedule``, ``last run failed``: empty when healthy."""
    schedule: str | None
    schedule_in_words: str | None
    time_zone: str | None
    schedule_error: str
    suspended: bool
    alerts_off: bool
    next_run: float | None
    overdue_seconds: float
    consecutive_failures: int
    failing_after: int
    missed: dict[str, int]
    """Slots counted missed in the last 24 hours (by this process), by reason."""
    runs: dict[str, int]
    """Finished runs counted, by result."""
    thresholds: dict[str, float]
    recent: tuple[RecentRun, ...]
    """The latest runs, newest first."""

    @property
    def last(self) -> RecentRun | None:
        """The latest run, if any is known."""
        return self.recent[0] if self.recent else None


def owners(runs: RunTracker, slots: SlotTracker, now: float) -> list[OwnerStatus]:
    """Every owner the engine knows, problems first, then by namespace, kind and name."""
    keys: set[OwnerKey] = set(runs.histories)
    keys |= {(ns, "CronJob", name) for ns, name in slots.crons}
    found = (status(runs, slots, key, now) for key in keys)
    return sorted(found, key=lambda o: (not o.problems, o.namespace, o.kind, o.name))


def known(runs: RunTracker, slots: SlotTracker, key: OwnerKey) -> bool:
    """Whether :func:`owners` lists this owner: it has run history, or is a CronJob."""
    namespace, kind, name = key
    return key in runs.histories or (kind == "CronJob" and (namespace, name) in slots.crons)


def status(runs: RunTracker, slots: SlotTracker, key: OwnerKey, now: float) -> OwnerStatus:
    """The status of one owner (it need not exist: then everything is empty)."""
    namespace, kind, name = key
    h = runs.histories.get(key)
    cron: CronSlots | None = slots.crons.get((namespace, name)) if kind == "CronJob" else None
    thresholds = cron.cj.thresholds if cron is not None else h.thresholds if h else None
    values = dict(thresholds.values) if thresholds is not None else {}
    failing_after = int(values.get("max_consecutive_failures", FAILING_AFTER.get(kind, 1)))
    streak = h.consecutive_failures if h is not None else 0
    recent = tuple(reversed(h.recent)) if h is not None else ()
    overdue = cron.overdue(now) if cron is not None else 0.0
    problems = [
        what
        for what, present in (
            ("failing", streak >= failing_after),
            ("overdue", overdue > 0),
            ("invalid schedule", cron is not None and bool(cron.cj.schedule_error)),
            ("last run failed", bool(recent) and recent[0].result == "failed"),
        )
        if present
    ]
    runs_by_result: dict[str, int] = {}
    for (result, _, _), n in h.runs.items() if h is not None else ():
        runs_by_result[result] = runs_by_result.get(result, 0) + n
    return OwnerStatus(
        namespace=namespace,
        kind=kind,
        name=name,
        problems=tuple(problems),
        schedule=cron.cj.schedule if cron else None,
        schedule_in_words=describe(cron.cj.schedule) if cron else None,
        time_zone=(cron.cj.timezone or "UTC") if cron else None,
        schedule_error=cron.cj.schedule_error if cron else "",
        suspended=bool(cron and cron.cj.suspended),
        alerts_off=bool(values.get("alerts_off")),
        next_run=_next_run(cron, now),
        overdue_seconds=overdue,
        consecutive_failures=streak,
        failing_after=failing_after,
        missed=_missed_since(cron, now - DAY) if cron else {},
        runs=dict(sorted(runs_by_result.items())),
        thresholds=values,
        recent=recent,
    )


def _missed_since(cron: CronSlots, since: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for decided, reason in cron.missed_slots:
        if decided >= since:
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))


def _next_run(cron: CronSlots | None, now: float) -> float | None:
    if cron is None or cron.schedule is None or cron.cj.suspended:
        return None
    return cron.schedule.next(now)


def failing(statuses: Iterable[OwnerStatus]) -> list[OwnerStatus]:
    """The owners ``report`` exits non-zero for: failing, overdue or unschedulable."""
    bad = {"failing", "overdue", "invalid schedule"}
    return [o for o in statuses if bad & set(o.problems)]


_STATUS_FIELDS = tuple(f.name for f in fields(OwnerStatus) if f.name != "recent")
_RUN_FIELDS = tuple(f.name for f in fields(RecentRun))


def as_json(o: OwnerStatus) -> dict[str, object]:
    """The status as JSON-ready data (``dataclasses.asdict`` deep-copies: ten times slower)."""
    data: dict[str, object] = {name: getattr(o, name) for name in _STATUS_FIELDS}
    data["recent"] = [{name: getattr(r, name) for name in _RUN_FIELDS} for r in o.recent]
    return data
