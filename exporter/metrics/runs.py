"""Run-history families per owner (contract §3), thresholds (§5) and the CronJob last success.

Declared as data over the run tracker's records; the tracker publishes a record whenever it
changes and the renderer re-renders only that owner.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.health.histogram import Histogram
from exporter.metrics import identity
from exporter.metrics.exposition import Family, Group, Sample, gauge, histogram_samples
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


def _last_run_info(h: History) -> list[Sample]:
    if not h.recent:
        return []
    run = h.recent[-1]
    why, code, _ = run.pod_failures[0] if run.pod_failures else ("", None, 0)
    labels = (
        ("job_name", run.job_name),
        ("result", run.result),
        ("reason", run.reason),
        ("pod_reason", why),
        ("exit_code", "" if code is None else str(code)),
    )
    return [("", labels, 1.0)]


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
            "kube_batch_last_run_info",
            "gauge",
            "The latest finished run: its Job, result and reason, and its failed pods' most "
            "frequent reason and exit code (one series per owner, replaced by the next run).",
            ("job_name", "result", "reason", "pod_reason", "exit_code"),
            _last_run_info,
        ),
        Family(
            "kube_batch_last_run_failed_pods",
            "gauge",
            "Failed pod attempts of the latest finished run that the exporter saw fail.",
            (),
            lambda h: gauge(sum(n for _, _, n in h.recent[-1].pod_failures) if h.recent else None),
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
