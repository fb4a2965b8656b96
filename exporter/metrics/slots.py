"""Schedule families per CronJob (contract §4), over the slot tracker's records."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.metrics import identity
from exporter.metrics.exposition import Family, Group, LiveFamily, Sample, histogram_samples
from exporter.track.slots import REASONS, CronSlots


def _missed(s: CronSlots) -> Iterable[Sample]:
    return [("", (("reason", r),), float(s.missed[r])) for r in REASONS]


SLOTS: Group[CronSlots] = Group(
    identity.CRONJOB,
    (
        Family(
            "kube_batch_cronjob_missed_schedules_total",
            "counter",
            "Slots that never ran, by reason: not_started, concurrency_forbid, suspended.",
            ("reason",),
            _missed,
        ),
        Family(
            "kube_batch_cronjob_schedule_lag_seconds",
            "histogram",
            "Job creation time minus its slot, for Jobs the controller created.",
            (),
            lambda s: [] if s.lag.empty else histogram_samples(s.lag),
        ),
    ),
    (
        LiveFamily(
            "kube_batch_cronjob_overdue_seconds",
            "gauge",
            "Seconds since the oldest slot after the last run that is past its grace "
            "and has no Job; 0 when none or while suspended.",
            lambda s, now: s.overdue(now),
            applies=lambda s: True,
        ),
    ),
)
