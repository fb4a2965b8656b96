"""Jobs per owner, as they exist now: the one aggregation over the Job cache.

The run tracker asks whether an owner still has Jobs before it forgets the owner's history,
and ``kube_batch_job_finished_retained`` exports how many finished Jobs an owner still has
stored. Only that second number is published: a Job being created or deleted while it runs
changes nothing a subscriber shows, so it reaches no subscriber. While the first LIST (or a
new leader's replay) is applied, nothing is published until it is complete: then once per
owner, not once per Job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from exporter.health.state import Health
from exporter.store.caching import ObjectCache, Publisher, Subscriber, batches
from exporter.store.records import ByOwner, Job, OwnerKey


@dataclass(frozen=True, slots=True)
class FinishedJobs(ByOwner):
    """The finished Jobs one owner still has stored (history limits and TTLs remove them)."""

    key: OwnerKey
    count: int


class OwnerIndex:
    """Follows the Job cache: Jobs per owner, and a published record of its finished ones."""

    def __init__(self, health: Health) -> None:
        self._jobs: Counter[OwnerKey] = Counter()
        self._finished: dict[OwnerKey, FinishedJobs] = {}
        self._changes: Publisher[FinishedJobs] = Publisher("owners", health)
        self._publishing = True
        """False from :meth:`follow` until the Job cache's first LIST is complete."""

    def follow(self, jobs: ObjectCache[Job]) -> None:
        """Subscribe to the Job cache; publish its counts once its first LIST is complete."""
        self._publishing = False
        jobs.subscribe(self.job_changed)
        jobs.on_synced(self._synced)

    async def _synced(self) -> None:
        # by key, and the record current when reached: a change while this yields is
        # published at once, and must not be overtaken by an older count
        self._publishing = True
        async for key in batches(list(self._finished)):
            record = self._finished.get(key)
            if record is not None:
                self._changes.notify(None, record)

    def subscribe(self, subscriber: Subscriber[FinishedJobs]) -> None:
        """Call ``subscriber(old, new)`` whenever an owner's count of finished Jobs changes."""
        self._changes.subscribe(subscriber)

    def has_jobs(self, key: OwnerKey) -> bool:
        """The owner has at least one Job in the cluster now."""
        return self._jobs[key] > 0

    def job_changed(self, old: Job | None, new: Job | None) -> None:
        """Follow a Job's change (cache subscriber)."""
        if old is not None and new is not None and old.owner_key == new.owner_key:
            if old.finished != new.finished:
                self._count_finished(new.owner_key, 1 if new.finished else -1)
            return
        for job, sign in ((old, -1), (new, 1)):
            if job is not None:
                self._jobs[job.owner_key] += sign
                if self._jobs[job.owner_key] <= 0:
                    del self._jobs[job.owner_key]
                if job.finished:
                    self._count_finished(job.owner_key, sign)

    def _count_finished(self, key: OwnerKey, delta: int) -> None:
        before = self._finished.get(key)
        count = (before.count if before else 0) + delta
        after = FinishedJobs(key, count) if count > 0 else None
        if after is None:
            self._finished.pop(key, None)
        else:
            self._finished[key] = after
        if self._publishing:
            self._changes.notify(before, after)
