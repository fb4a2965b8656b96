"""The checkpoint's content as plain JSON data: written by us, and trusted only after checks.

A checkpoint holds names, counts and times only (owner and Job names and UIDs, counters,
histogram buckets, timestamps): never an annotation value, a label value of a workload, an
environment variable or anything else a Secret could have put into an object. Reading
validates every field and raises :class:`ValueError` on the first one that is not what this
module writes, so a corrupt or foreign checkpoint is refused whole and never half-applied.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from exporter.health.histogram import Histogram
from exporter.metrics.exposition import Labels, SeriesKey
from exporter.track.runs import ActiveRun, History, RunsState
from exporter.track.slots import KeptSlots, SlotsState

FORMAT = 1
"""Bumped whenever the layout changes; a checkpoint of another format is ignored."""

Births = dict[str, dict[str, dict[SeriesKey, float]]]
"""Group name -> record UID -> series -> when it was born."""

T = TypeVar("T")


# -- reading helpers: each raises ValueError naming what it expected -------------------------
def _num(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        raise ValueError(f"expected a number, got {type(x).__name__}")
    return float(x)


def _opt(x: Any) -> float | None:
    return None if x is None else _num(x)


def _count(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError("expected a count")
    return x


def _text(x: Any) -> str:
    if not isinstance(x, str) or len(x) > 1024:
        raise ValueError("expected a name")
    return x


def _list(x: Any, n: int | None = None) -> list[Any]:
    if not isinstance(x, list) or (n is not None and len(x) != n):
        raise ValueError("expected a list" + (f" of {n}" if n is not None else ""))
    return x


def _dict(x: Any) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise ValueError("expected an object")
    return x


def _each(x: Any, read: Callable[[Any], T]) -> list[T]:
    return [read(item) for item in _list(x)]


def _counts(x: Any) -> dict[str, int]:
    return {_text(k): _count(v) for k, v in _dict(x).items()}


# -- histograms ------------------------------------------------------------------------------
def histogram(h: Histogram) -> list[Any]:
    """Bucket counts and the sum."""
    return [list(h.counts), h.total]


def read_histogram(x: Any, buckets: Sequence[float]) -> Histogram:
    """A histogram over ``buckets``; other bounds mean other settings, which is incompatible."""
    counts, total = _list(x, 2)
    h = Histogram(buckets)
    values = _each(counts, _count)
    if len(values) != len(h.counts):
        raise ValueError("histogram buckets differ from this exporter's (--duration-buckets?)")
    h.counts, h.total = values, _num(total)
    return h


# -- run history -----------------------------------------------------------------------------
def runs(state: RunsState) -> dict[str, Any]:
    """The run tracker's part."""
    return {
        "owners": [_history(h) for h in state.histories],
        "successes": [[ns, name, at] for (ns, name), at in state.successes.items()],
        "finished": " ".join(sorted(state.finished)),
        "active": [
            [
                r.uid,
                r.namespace,
                r.owner_kind,
                r.owner_name,
                r.trigger,
                r.created,
                r.started,
                r.failed,
                r.restarts,
                sorted(r.failed_pods),
                r.delay_seen,
            ]
            for r in state.active
        ],
        "written": state.written,
    }


def _history(h: History) -> list[Any]:
    return [
        *h.key,
        {
            "runs": [[*k, n] for k, n in h.runs.items()],
            "durations": {result: histogram(d) for result, d in h.durations.items()},
            "start_delays": histogram(h.start_delays),
            "retries": histogram(h.retries),
            "pod_failures": dict(h.pod_failures),
            "restarts": h.restarts,
            "last": [h.last_run, h.last_duration, h.last_success_flag, h.last_success],
            "failures": [h.failure_ends, h.earlier_failures, h.earlier_until],
            "idle_since": h.idle_since,
        },
    ]


def read_runs(
    x: Any, duration_buckets: Sequence[float], retry_buckets: Sequence[float]
) -> RunsState:
    """The run tracker's part, checked."""
    d = _dict(x)

    def owner(item: Any) -> History:
        ns, kind, name, body = _list(item, 4)
        b = _dict(body)
        last_run, last_duration, flag, last_success = _list(b["last"], 4)
        ends, earlier, until = _list(b["failures"], 3)
        h = History(
            key=(_text(ns), _text(kind), _text(name)),
            durations={
                _text(r): read_histogram(v, duration_buckets)
                for r, v in _dict(b["durations"]).items()
            },
            start_delays=read_histogram(b["start_delays"], duration_buckets),
            retries=read_histogram(b["retries"], retry_buckets),
        )
        for run in _list(b["runs"]):
            result, reason, trigger, n = _list(run, 4)
            h.runs[(_text(result), _text(reason), _text(trigger))] = _count(n)
        h.pod_failures = Counter(_counts(b["pod_failures"]))
        h.restarts = _count(b["restarts"])
        h.last_run, h.last_duration = _opt(last_run), _opt(last_duration)
        h.last_success_flag, h.last_success = _opt(flag), _opt(last_success)
        h.failure_ends = sorted(_each(ends, _num))
        h.earlier_failures, h.earlier_until = _count(earlier), _num(until)
        h.idle_since = _opt(b["idle_since"])
        return h

    def active(item: Any) -> ActiveRun:
        uid, ns, kind, name, trigger, created, started, failed, restarts, pods, seen = _list(
            item, 11
        )
        if not isinstance(seen, bool):
            raise ValueError("expected true or false")
        return ActiveRun(
            _text(uid),
            _text(ns),
            _text(kind),
            _text(name),
            _text(trigger),
            _opt(created),
            _opt(started),
            _count(failed),
            _counts(restarts),
            frozenset(_each(pods, _text)),
            seen,
        )

    def success(item: Any) -> tuple[tuple[str, str], float]:
        ns, name, at = _list(item, 3)
        return (_text(ns), _text(name)), _num(at)

    finished = d["finished"]
    if not isinstance(finished, str):
        raise ValueError("expected the finished Jobs' UIDs")
    return RunsState(
        histories=_each(d["owners"], owner),
        successes=dict(_each(d["successes"], success)),
        finished=frozenset(finished.split()),
        active=_each(d["active"], active),
        written=_num(d["written"]),
    )


# -- slots -----------------------------------------------------------------------------------
def slots(state: SlotsState) -> dict[str, Any]:
    """The slot tracker's part."""
    return {
        "crons": [
            [
                k.namespace,
                k.name,
                k.uid,
                k.schedule,
                k.timezone,
                k.cursor,
                sorted(k.ran),
                {uid: list(run) for uid, run in k.runs.items()},
                [list(s) for s in k.suspensions],
                k.missed,
                histogram(k.lag),
                k.overdue_from,
            ]
            for k in state.crons
        ],
        "written": state.written,
    }


def read_slots(x: Any, lag_buckets: Sequence[float]) -> SlotsState:
    """The slot tracker's part, checked."""
    d = _dict(x)

    def pair(item: Any) -> tuple[float, float | None]:
        start, end = _list(item, 2)
        return _num(start), _opt(end)

    def cron(item: Any) -> KeptSlots:
        ns, name, uid, schedule, tz, cursor, ran, runs_, susp, missed, lag, overdue = _list(
            item, 12
        )
        return KeptSlots(
            _text(ns),
            _text(name),
            _text(uid),
            _text(schedule),
            _text(tz),
            _num(cursor),
            frozenset(_each(ran, _num)),
            {_text(u): pair(r) for u, r in _dict(runs_).items()},
            _each(susp, pair),
            _counts(missed),
            read_histogram(lag, lag_buckets),
            _opt(overdue),
        )

    return SlotsState(_each(d["crons"], cron), _num(d["written"]))


# -- births ----------------------------------------------------------------------------------
def births(b: Births) -> dict[str, Any]:
    """When each counter series was born, per group and record."""
    return {
        group: {
            uid: [[name, [list(p) for p in labels], at] for (name, labels), at in series.items()]
            for uid, series in records.items()
        }
        for group, records in b.items()
    }


def read_births(x: Any) -> Births:
    """The births, checked."""

    def series(item: Any) -> tuple[SeriesKey, float]:
        name, labels, at = _list(item, 3)
        pairs: Labels = tuple((_text(k), _text(v)) for k, v in (_list(p, 2) for p in _list(labels)))
        return (_text(name), pairs), _num(at)

    return {
        _text(group): {_text(uid): dict(_each(s, series)) for uid, s in _dict(records).items()}
        for group, records in _dict(x).items()
    }
