"""Jobs per owner, as they exist now: the one aggregation over the Job cache.

``kube_batch_job_finished_retained`` exports the finished count, and the run tracker asks
whether an owner still has Jobs before it forgets the owner's history. An owner's record
exists while it has at least one Job.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.health.state import Health
from exporter.store.caching import Publisher, Subscriber
from exporter.store.records import ByOwner, Job, OwnerKey


@dataclass(frozen=True, slots=True)
class OwnerJobs(ByOwner):
    """The Jobs one owner (a CronJob or a Job family) has in the cluster now."""

    key: OwnerKey
    jobs: int
    finished: int
    """Finished Jobs still stored (history limits and TTLs remove them)."""


class OwnerIndex:
    """Follows the Job cache and keeps one :class:`OwnerJobs` per owner that has Jobs."""

    def __init__(self, health: Health) -> None:
        self.owners: dict[OwnerKey, OwnerJobs] = {}
        self._changes: Publisher[OwnerJobs] = Publisher("owners", health)

    def subscribe(self, subscriber: Subscriber[OwnerJobs]) -> None:
        """Call ``subscriber(old, new)`` whenever an owner's counts change."""
        self._changes.subscribe(subscriber)

    def has_jobs(self, key: OwnerKey) -> bool:
        """The owner has at least one Job in the cluster now."""
        return key in self.owners

    def job_changed(self, old: Job | None, new: Job | None) -> None:
        """Follow a Job's change (cache subscriber): one update per owner it touched."""
        deltas: dict[OwnerKey, tuple[int, int]] = {}
        for job, sign in ((old, -1), (new, 1)):
            if job is not None:
                jobs, finished = deltas.get(job.owner_key, (0, 0))
                deltas[job.owner_key] = (jobs + sign, finished + (sign if job.finished else 0))
        for key, (jobs, finished) in deltas.items():
            if jobs or finished:
                self._apply(key, jobs, finished)

    def _apply(self, key: OwnerKey, jobs: int, finished: int) -> None:
        before = self.owners.get(key)
        total = (before.jobs if before else 0) + jobs
        after = OwnerJobs(key, total, (before.finished if before else 0) + finished)
        if total > 0:
            self.owners[key] = after
            self._changes.notify(before, after)
        else:
            del self.owners[key]
            self._changes.notify(before, None)
