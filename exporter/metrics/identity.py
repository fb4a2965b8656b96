"""The identity labels every series carries (contract §1), one declaration per subject."""

from __future__ import annotations

from typing import Protocol

from exporter.metrics.exposition import Identity
from exporter.store.records import Job, OwnerKey


class Named(Protocol):
    """A record about one CronJob."""

    @property
    def namespace(self) -> str:
        """The CronJob's namespace."""

    @property
    def name(self) -> str:
        """The CronJob's name."""


class Owned(Protocol):
    """A record about one owner (a CronJob or a Job family)."""

    @property
    def key(self) -> OwnerKey:
        """(namespace, owner_kind, owner_name)."""


JOB: Identity[Job] = Identity(
    ("namespace", "job_name", "owner_kind", "owner_name"),
    lambda job: (job.namespace, job.name, job.owner_kind, job.owner_name),
)
CRONJOB: Identity[Named] = Identity(("namespace", "cronjob"), lambda cj: (cj.namespace, cj.name))
OWNER: Identity[Owned] = Identity(("namespace", "owner_kind", "owner_name"), lambda o: o.key)
