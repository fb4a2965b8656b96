"""Typed self-observation: what each resource's sync is doing and what the exporter survived.

The watchers, caches and trackers record here, as they happen, the problems they survived
(:class:`ErrorKind`), why watch streams restarted (:class:`RestartReason`), the API responses
they got and whether each resource is in sync. Nothing is computed until a scrape or a probe
reads it, and there are no locks: the exporter runs one event loop. Readiness is decided from
this explicit state (:meth:`Health.problems`), never from the wording of an error message.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.health.histogram import Histogram

logger = logging.getLogger(__name__)

LOOP_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; 50 ms is the bar for one stall (issue 18), 5 s the default probe timeout."""

REPORTED_KEPT = 10000
"""Objects remembered as already reported, per kind of problem; beyond it the memory is
cleared and a problem may be logged once more (counting is never affected)."""


class Resource(StrEnum):
    """The watched resources; the values are the ``resource`` label of the self-metrics."""

    JOBS = "jobs"
    CRONJOBS = "cronjobs"
    PODS = "pods"


class ErrorKind(StrEnum):
    """Values of ``kube_batch_exporter_errors_total{kind}``: every problem survived."""

    BAD_LINE = "bad_line"
    """A watch line that is not a JSON event (skipped)."""
    BAD_RESPONSE = "bad_response"
    """A LIST response that is not a JSON list (the LIST is retried with backoff)."""
    BAD_OBJECT = "bad_object"
    """An object that cannot be tracked at all (no ``metadata.uid``)."""
    BAD_ANNOTATION = "bad_annotation"
    """A threshold annotation whose value cannot be parsed (ignored)."""
    BAD_SCHEDULE = "bad_schedule"
    """A CronJob schedule or time zone the controller cannot use."""
    TORN_STREAM = "torn_stream"
    """A watch stream that ended inside a line, or sent an oversized line."""
    SUBSCRIBER = "subscriber"
    """A bug in one consumer of a change; the other consumers still saw it."""
    PARKED_PODS_DROPPED = "parked_pods_dropped"
    """A Pod change dropped because too many were waiting for their Job."""
    INTERNAL = "internal"
    """A bug that crashed a whole loop (restarted by its supervisor)."""
    STATE = "state"
    """A checkpoint that could not be read or written, or belongs elsewhere (ignored)."""
    LEASE = "lease"
    """A request on the leader-election Lease that failed (retried every retry period)."""


class RestartReason(StrEnum):
    """Values of ``kube_batch_exporter_watch_restarts_total{reason}``."""

    TIMEOUT = "timeout"
    """The server ended the watch at its timeout (the normal case)."""
    GONE = "gone"
    """410: the resourceVersion expired; a relist follows."""
    INACTIVITY = "inactivity"
    """No byte for the inactivity timeout: a silently dead connection."""
    TORN = "torn"
    """The stream ended inside a line."""
    ERROR = "error"
    """Any other failed request or in-stream ERROR."""


@dataclass(frozen=True, slots=True)
class Failure:
    """The latest failed request of a resource, shown on ``/readyz`` and the status page."""

    verb: str
    """``list`` or ``watch``."""
    message: str
    """In words, never holding a token or an object body."""
    forbidden: bool
    """The API answered 403: the exporter is not ready until a request of it succeeds again."""

    def __str__(self) -> str:
        return f"{self.verb}: {self.message}"


@dataclass(slots=True)
class ResourceHealth:
    """Sync state and counters of one resource (all its namespace scopes together)."""

    events: Counter[str] = field(
        default_factory=lambda: Counter(dict.fromkeys(("ADDED", "MODIFIED", "DELETED"), 0))
    )
    """Watch events received, by event type (the three that carry objects from 0)."""
    restarts: Counter[RestartReason] = field(
        # Every reason from 0, so increase() over them is 0 rather than no data (dashboards
        # and alerts then tell "none" from "not scraped").
        default_factory=lambda: Counter(dict.fromkeys(RestartReason, 0))
    )
    relists: int = 0
    """Full LISTs after the first one."""
    requests: Counter[tuple[str, str]] = field(
        default_factory=lambda: Counter(dict.fromkeys((("list", "200"), ("watch", "200")), 0))
    )
    """API requests by (verb, HTTP code); the successful ones from 0."""
    objects: int = 0
    synced: bool = False
    """True once the first full LIST of every scope completed."""
    last_event: float | None = None
    failure: Failure | None = None
    """The latest failed request, cleared by the next successful one."""


@dataclass(slots=True)
class Health:
    """Everything the exporter knows about itself; one instance per process."""

    resources: dict[Resource, ResourceHealth] = field(
        default_factory=lambda: {r: ResourceHealth() for r in Resource}
    )
    errors: Counter[ErrorKind] = field(default_factory=lambda: Counter(dict.fromkeys(ErrorKind, 0)))
    """Problems survived by kind, every kind from 0 (so the first one is seen by increase())."""
    reported: dict[ErrorKind, set[str]] = field(default_factory=dict)
    """Per kind, the objects whose problem was logged already (it is logged once per object)."""
    owners_dropped: int = 0
    """Distinct owners not tracked because ``--max-owners`` was reached."""
    last_scrape: tuple[float, int] = (0.0, 0)
    """Seconds and bytes of the latest ``/metrics`` response (a scrape reports the one before)."""
    last_checkpoint: tuple[float, float, int] | None = None
    """When the latest checkpoint was written, the seconds it took and its bytes."""
    shard: tuple[int, int] = (0, 1)
    """This replica's shard and the number of shards (``(0, 1)``: not sharded)."""
    leader: str = ""
    """The Lease's holder as last seen (with ``--leader-elect``), for a standby's page."""
    loop_lag: Histogram = field(default_factory=lambda: Histogram(LOOP_LAG_BUCKETS))
    """How late the event loop woke a sampler that asked to sleep a fixed time: the longest
    stretches in which nothing else (probes, scrapes, watch events) could run."""
    leading: Callable[[], bool] = lambda: True
    """Whether this process exports the batch series and writes checkpoints right now:
    always without ``--leader-elect``; with it, the elector answers from its own clock."""

    @property
    def synced(self) -> bool:
        """Every resource finished its first full LIST (the caches hold the whole cluster)."""
        return all(h.synced for h in self.resources.values())

    def __getitem__(self, resource: Resource) -> ResourceHealth:
        return self.resources[resource]

    def count(self, kind: ErrorKind) -> None:
        """One more problem of ``kind`` survived."""
        self.errors[kind] += 1

    def first_report(self, kind: ErrorKind, key: str) -> bool:
        """True the first time ``key`` (an object) has a problem of ``kind``: log it then."""
        seen = self.reported.setdefault(kind, set())
        if key in seen:
            return False
        if len(seen) >= REPORTED_KEPT:
            seen.clear()
        seen.add(key)
        return True

    def survived(self, kind: ErrorKind, what: str, key: str) -> None:
        """Count a bug met in ``what`` on one object (``key``); log it once per object.

        Call it from the ``except`` block, so the log line carries the traceback. Hot paths
        use it directly (a ``try`` costs nothing until something raises); the others use
        :meth:`contained`.
        """
        self.count(kind)
        if self.first_report(kind, f"{what}\x00{key}"):
            logger.exception("%s failed on %s (logged once per object)", what, ascii(key))

    @contextmanager
    def contained(self, kind: ErrorKind, what: str, key: str) -> Iterator[None]:
        """Run work on one object: a bug in it is counted and logged once per object.

        It stops only that object's work, never the loop, the page or the other objects.
        """
        try:
            yield
        except Exception:
            self.survived(kind, what, key)

    def problems(self) -> list[str]:
        """Why the exporter is not ready, in words; empty when it is.

        Ready means every resource finished its first full LIST and no request is being
        refused for lack of permission (a watch that merely reconnects keeps serving the
        cached state, so other failures do not make the exporter unready once synced).
        """
        waiting = [
            f"{r}: waiting for the first full list"
            for r, h in self.resources.items()
            if not h.synced
        ]
        failing = [
            f"{r}: {h.failure}"
            for r, h in sorted(self.resources.items())
            if h.failure is not None and (not h.synced or h.failure.forbidden)
        ]
        return waiting + failing
