"""Run-history families per owner (contract §3), thresholds (§5) and the CronJob last success.

Declared as data over the run tracker's records; the tracker publishes a record whenever it
changes and the renderer re-renders only that owner.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.metrics import identity
from exporter.metrics.exposition import Family, Group, Sample, gauge, histogram_samples
from exporter.track.histogram import Histogram
from exporter.track.runs import CronJobSuccess, History


def _runs(h: History) -> Iterable[Sample]:
    return [
        ("", (("result", r), ("reason", why), ("trigger", t)), n)
        for (r, why, t), n in sorted(h.runs.items())
    ]


def _durations(h: History) -> Iterable[Sample]:
    for result, hist in sorted(h.durations.items()):
        yield from histogram_samples(hist, (("result", result),))


def _observed(hist: Histogram) -> list[Sample]:
    return [] if hist.empty else histogram_samples(hist)


HISTORY: Group[History] = Group(
    identity.OWNER,
    (
        Family(
            "kube_batch_runs_total",
            "counter",
            "Finished runs by result (succeeded, failed, deleted), terminal reason and trigger.",
            ("result", "reason", "trigger"),
            _runs,
        ),
        Family(
            "kube_batch_run_duration_seconds",
            "histogram",
            "Run duration from status.startTime to its end, by result.",
            ("result",),
            _durations,
        ),
        Family(
            "kube_batch_run_start_delay_seconds",
            "histogram",
            "Job creation to the first container start of the run.",
            (),
            lambda h: _observed(h.start_delays),
        ),
        Family(
            "kube_batch_run_retries",
            "histogram",
            "Per finished run: failed pods plus container restarts.",
            (),
            lambda h: _observed(h.retries),
        ),
        Family(
            "kube_batch_pod_failures_total",
            "counter",
            "Failed pod attempts by reason (OOMKilled, Error, Evicted, DeadlineExceeded, ...).",
            ("reason",),
            lambda h: [("", (("reason", r),), n) for r, n in sorted(h.pod_failures.items())],
        ),
        Family(
            "kube_batch_container_restarts_total",
            "counter",
            "In-place container restarts of the owner's pods (restartPolicy: OnFailure).",
            (),
            lambda h: gauge(h.restarts),
        ),
        Family(
            "kube_batch_last_run_timestamp_seconds",
            "gauge",
            "End time of the latest finished run.",
            (),
            lambda h: gauge(h.last_run),
        ),
        Family(
            "kube_batch_last_run_duration_seconds",
            "gauge",
            "Duration of the latest finished run.",
            (),
            lambda h: gauge(h.last_duration),
        ),
        Family(
            "kube_batch_last_run_success",
            "gauge",
            "1 if the latest finished run succeeded, else 0.",
            (),
            lambda h: gauge(h.last_success_flag),
        ),
        Family(
            "kube_batch_last_success_timestamp_seconds",
            "gauge",
            "End time of the latest successful run.",
            (),
            lambda h: gauge(h.last_success),
        ),
        Family(
            "kube_batch_consecutive_failures",
            "gauge",
            "Failed runs since the last success (0 after a success).",
            (),
            lambda h: gauge(h.consecutive_failures if h.last_run is not None else None),
        ),
        Family(
            "kube_batch_alert_threshold",
            "gauge",
            "Per-workload alert thresholds from kube-batch-exporter/* annotations.",
            ("threshold",),
            lambda h: [("", (("threshold", k),), v) for k, v in h.thresholds.values],
        ),
    ),
)

CRONJOB_SUCCESS: Group[CronJobSuccess] = Group(
    identity.CRONJOB,
    (
        Family(
            "kube_batch_cronjob_last_success_timestamp_seconds",
            "gauge",
            "Latest successful completion: status.lastSuccessfulTime or an observed success, "
            "manual runs included.",
            (),
            lambda s: gauge(s.latest),
        ),
    ),
)
