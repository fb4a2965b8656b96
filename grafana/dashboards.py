"""The three dashboards, declared as data: batch overview, CronJob detail, exporter health.

Each panel answers one on-call question; its description says which, and says "Empty when
healthy." when no data is the good case (the live test requires data from every other panel).
Per-second rates use ``$__rate_interval``, so they hold at every zoom and scrape interval.
Hourly panels are counts per hour (``increase(...[1h])``), not rates: batch work is lumpy, and
a rate over a few scrape intervals is mostly zero with spikes that say little.
"""

from __future__ import annotations

from grafana.build import (
    BLUE,
    EMPTY_WHEN_HEALTHY,
    GREEN,
    ORANGE,
    RED,
    Dashboard,
    Panel,
    Query,
    Row,
    Variable,
)

NS = 'namespace=~"$namespace"'
CRON = 'namespace="$namespace", cronjob="$cronjob"'
OWNER = 'namespace="$namespace", owner_kind="CronJob", owner_name="$cronjob"'
INSTANCE = 'instance=~"$instance"'
DETAIL_LINK = (
    "/d/kbe-cronjob/kube-batch-exporter-cronjob?${datasource:queryparam}"
    "&var-namespace=${__data.fields.namespace}&var-cronjob=${__data.fields.owner_name}"
)
BAD_IF_ANY = ((None, GREEN), (1, RED))
STATES = (
    ("1", "pending", BLUE),
    ("2", "running", "yellow"),
    ("3", "succeeded", GREEN),
    ("4", "failed", RED),
    ("5", "suspended", "gray"),
)
TABLE = {"showHeader": True, "cellHeight": "sm"}
STAT = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value", "graphMode": "none"}


def _stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    *,
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    runbook: str = "",
    mappings: tuple[tuple[str, str, str], ...] = (),
) -> Panel:
    """A single number now (``lastNotNull`` of an instant query)."""
    query = (Query(expr, instant=True),)
    decimals = 0 if unit == "short" else None
    return Panel(
        "stat", title, description, query, unit, 4, 4, steps, runbook, (), mappings, STAT, decimals
    )


def _series(
    title: str,
    description: str,
    unit: str,
    *queries: Query,
    width: int = 8,
    height: int = 8,
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    runbook: str = "",
) -> Panel:
    """A time series panel; legend as a table so long owner names stay readable."""
    legend = {"displayMode": "table", "placement": "bottom", "calcs": ["max", "lastNotNull"]}
    return Panel(
        "timeseries",
        title,
        description,
        queries,
        unit,
        width,
        height,
        steps,
        runbook,
        options={"legend": legend},
    )


def _increase(metric: str, selector: str, by: str, window: str = "1h") -> str:
    return f"sum by ({by}) (increase({metric}{{{selector}}}[{window}]))"


OVERVIEW = Dashboard(
    uid="kbe-overview",
    title="kube-batch-exporter / Batch overview",
    description="Fleet health of Jobs and CronJobs in the selected namespaces.",
    variables=(
        Variable(
            "namespace",
            "Namespace",
            'label_values({__name__=~"kube_batch_cronjob_info|kube_batch_last_run_timestamp_seconds"}'
            ", namespace)",
            multi=True,
        ),
    ),
    items=(
        Row("Now"),
        _stat(
            "Runs",
            "Runs that ended in the selected time range (succeeded, failed or deleted unfinished).",
            f"sum(increase(kube_batch_runs_total{{{NS}}}[$__range]))",
            "short",
        ),
        _stat(
            "Failed runs",
            "Runs that failed in the selected time range.",
            f'sum(increase(kube_batch_runs_total{{{NS}, result="failed"}}[$__range]))',
            "short",
            steps=BAD_IF_ANY,
            runbook="BatchJobFailed",
        ),
        _stat(
            "Success ratio",
            "Succeeded runs / all runs in the selected time range.",
            f'sum(increase(kube_batch_runs_total{{{NS}, result="succeeded"}}[$__range])) / '
            f"sum(increase(kube_batch_runs_total{{{NS}}}[$__range]))",
            "percentunit",
            steps=((None, RED), (0.9, ORANGE), (0.99, GREEN)),
        ),
        _stat(
            "Missed schedules",
            "Scheduled slots that got no Job in the selected time range (suspensions excluded).",
            "sum(increase(kube_batch_cronjob_missed_schedules_total"
            f'{{{NS}, reason!="suspended"}}[$__range]))',
            "short",
            steps=BAD_IF_ANY,
            runbook="CronJobMissedSchedule",
        ),
        _stat(
            "Overdue CronJobs",
            "CronJobs with a slot past its grace and no Job for it.",
            f"count(kube_batch_cronjob_overdue_seconds{{{NS}}} > 0) or vector(0)",
            "short",
            steps=BAD_IF_ANY,
            runbook="CronJobOverdue",
        ),
        _stat(
            "Running Jobs",
            "Jobs started and not finished (pending ones included).",
            f"count(kube_batch_job_running_seconds{{{NS}}}) or vector(0)",
            "short",
        ),
        Row("Runs"),
        _series(
            "Runs per hour by result",
            "Runs ended in the past hour, by result: watch the failed line.",
            "short",
            Query(_increase("kube_batch_runs_total", NS, "result"), "{{result}}"),
            width=12,
        ),
        _series(
            "Success ratio by owner (1 day)",
            "Per owner: succeeded / all runs over the past day (recording rule).",
            "percentunit",
            Query(
                f"owner:kube_batch_runs:success_ratio_1d{{{NS}}}",
                "{{namespace}}/{{owner_name}}",
            ),
            width=12,
            steps=((None, RED), (0.9, ORANGE), (0.99, GREEN)),
        ),
        Panel(
            "table",
            "Top failing owners",
            f"Owners with failed runs in the selected range, with the reason. {EMPTY_WHEN_HEALTHY} "
            "Click a row for the CronJob dashboard.",
            (
                Query(
                    f"topk(10, sum by (namespace, owner_kind, owner_name, reason) ("
                    f'increase(kube_batch_runs_total{{{NS}, result="failed"}}[$__range]))) > 0',
                    instant=True,
                ),
            ),
            "short",
            width=12,
            steps=BAD_IF_ANY,
            links=(("CronJob detail", DETAIL_LINK),),
            options=TABLE,
        ),
        Panel(
            "bargauge",
            "Longest-running Jobs",
            "Jobs running now, longest first, against the 12 h default of BatchJobTooLong. "
            "Empty when nothing runs.",
            (
                Query(
                    f"topk(10, kube_batch_job_running_seconds{{{NS}}})",
                    "{{namespace}}/{{job_name}}",
                    instant=True,
                ),
            ),
            "s",
            width=12,
            steps=((None, GREEN), (3600, ORANGE), (43200, RED)),
            runbook="BatchJobTooLong",
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        Row("Retries and schedules"),
        _series(
            "Retries per hour by reason",
            "Failed pod attempts by reason (OOMKilled, Error, DeadlineExceeded, Evicted...) "
            "and in-place container restarts.",
            "short",
            Query(_increase("kube_batch_pod_failures_total", NS, "reason"), "{{reason}}"),
            Query(
                f"sum(increase(kube_batch_container_restarts_total{{{NS}}}[1h]))",
                "container restarts",
            ),
            runbook="BatchJobRetrying",
        ),
        _series(
            "Missed schedules per hour by reason",
            "not_started: the controller created no Job; concurrency_forbid: skipped because "
            "the previous run was still active; suspended: CronJob suspended.",
            "short",
            Query(
                _increase("kube_batch_cronjob_missed_schedules_total", NS, "reason"), "{{reason}}"
            ),
            runbook="CronJobMissedSchedule",
        ),
        Panel(
            "table",
            "Firing alerts",
            "Bundled alerts firing now for these namespaces, and the exporter's own. "
            + EMPTY_WHEN_HEALTHY,
            (
                Query(
                    'ALERTS{alertstate="firing", alertname=~"CronJob.+|BatchJob.+", '
                    f"{NS}}} or "
                    'ALERTS{alertstate="firing", alertname=~"KubeBatchExporter.+"}',
                    instant=True,
                ),
            ),
            "short",
            steps=BAD_IF_ANY,
            options=TABLE,
        ),
    ),
)

CRONJOB = Dashboard(
    uid="kbe-cronjob",
    title="kube-batch-exporter / CronJob",
    description="One CronJob: schedule, runs, durations, delays, misses and retries.",
    time_from="now-24h",
    variables=(
        Variable("namespace", "Namespace", "label_values(kube_batch_cronjob_info, namespace)"),
        Variable(
            "cronjob",
            "CronJob",
            'label_values(kube_batch_cronjob_info{namespace="$namespace"}, cronjob)',
        ),
    ),
    items=(
        Row("Now"),
        Panel(
            "stat",
            "Schedule",
            "spec.schedule and spec.timeZone (empty zone: the controller's, UTC here).",
            (
                Query(
                    f"kube_batch_cronjob_info{{{CRON}}}", "{{schedule}} {{timezone}}", instant=True
                ),
            ),
            "none",
            4,
            4,
            options=STAT | {"textMode": "name"},
        ),
        _stat(
            "Next run",
            "The next slot after now; absent while suspended or when the schedule is invalid.",
            f"kube_batch_cronjob_next_schedule_timestamp_seconds{{{CRON}}} * 1000",
            "dateTimeFromNow",
            runbook="CronJobScheduleInvalid",
        ),
        _stat(
            "Last run",
            "Result of the latest run that ended.",
            f"kube_batch_last_run_success{{{OWNER}}}",
            "none",
            steps=((None, RED), (1, GREEN)),
            mappings=(("0", "Failed", RED), ("1", "Succeeded", GREEN)),
            runbook="BatchJobFailed",
        ),
        _stat(
            "Last run duration",
            "How long the latest run took, from startTime to its end.",
            f"kube_batch_last_run_duration_seconds{{{OWNER}}}",
            "s",
        ),
        _stat(
            "Last run ended",
            "When the latest run ended.",
            f"kube_batch_last_run_timestamp_seconds{{{OWNER}}} * 1000",
            "dateTimeFromNow",
        ),
        _stat(
            "Consecutive failures",
            "Failed runs in a row; CronJobFailing fires at the threshold (default 3).",
            f"kube_batch_consecutive_failures{{{OWNER}}}",
            "short",
            steps=((None, GREEN), (1, ORANGE), (3, RED)),
            runbook="CronJobFailing",
        ),
        Row("Runs"),
        Panel(
            "state-timeline",
            "Run timeline",
            "State of each of its Jobs over time (while the Job object exists).",
            (
                Query(
                    "sum by (job_name) ("
                    + " or ".join(
                        f'kube_batch_job_state{{{OWNER}, state="{state}"}} * {value}'
                        for value, state, _ in STATES
                    )
                    + ")",
                    "{{job_name}}",
                ),
            ),
            "none",
            width=24,
            mappings=STATES,
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        ),
        _series(
            "Duration against p95 and max-duration",
            "Latest run's duration and the running Job's age, against the 7-day p95 and the "
            "BatchJobTooLong threshold (annotation, else twice the p95, else 12 h).",
            "s",
            Query(f"kube_batch_last_run_duration_seconds{{{OWNER}}}", "last run"),
            Query(f"max(kube_batch_job_running_seconds{{{OWNER}}})", "running now"),
            Query(f"owner:kube_batch_run_duration_seconds:p95_7d{{{OWNER}}}", "p95 (7d)"),
            Query(f"owner:kube_batch_max_duration_seconds:threshold{{{OWNER}}}", "max-duration"),
            width=12,
            runbook="BatchJobTooLong",
        ),
        Panel(
            "bargauge",
            "Duration distribution",
            "Runs ended in the selected range, by duration bucket (upper bound).",
            (
                Query(
                    "sum by (le) ("
                    f"increase(kube_batch_run_duration_seconds_bucket{{{OWNER}}}[$__range]))",
                    "≤ {{le}} s",
                    instant=True,
                    heatmap=True,
                ),
            ),
            "short",
            width=12,
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        _series(
            "Start delay and schedule lag (p95, 1 h)",
            "Start delay: Job created → first container started. Schedule lag: slot → Job "
            "created by the controller.",
            "s",
            Query(
                "histogram_quantile(0.95, sum by (le) ("
                f"increase(kube_batch_run_start_delay_seconds_bucket{{{OWNER}}}[1h])))",
                "start delay",
            ),
            Query(
                "histogram_quantile(0.95, sum by (le) ("
                f"increase(kube_batch_cronjob_schedule_lag_seconds_bucket{{{CRON}}}[1h])))",
                "schedule lag",
            ),
            width=12,
            runbook="BatchJobStartDelayed",
        ),
        _series(
            "Misses per hour by reason, and overdue",
            "Slots without a Job, by reason; overdue: age of the oldest slot past its grace.",
            "short",
            Query(
                _increase("kube_batch_cronjob_missed_schedules_total", CRON, "reason"), "{{reason}}"
            ),
            Query(f"kube_batch_cronjob_overdue_seconds{{{CRON}}} / 60", "overdue (minutes)"),
            width=12,
            runbook="CronJobMissedSchedule",
        ),
        Row("Failures"),
        _series(
            "Runs per hour by result and reason",
            "Runs ended in the past hour; reason is the Job's Failed condition reason.",
            "short",
            Query(
                _increase("kube_batch_runs_total", OWNER, "result, reason"), "{{result}} {{reason}}"
            ),
            width=8,
        ),
        _series(
            "Retries per hour and pod failure reasons",
            "Failed pod attempts by reason, and in-place container restarts.",
            "short",
            Query(_increase("kube_batch_pod_failures_total", OWNER, "reason"), "{{reason}}"),
            Query(
                f"sum(increase(kube_batch_container_restarts_total{{{OWNER}}}[1h]))",
                "container restarts",
            ),
            width=8,
            runbook="BatchJobRetrying",
        ),
        _series(
            "Consecutive failures over time",
            "Failed runs in a row, against the CronJobFailing threshold.",
            "short",
            Query(f"kube_batch_consecutive_failures{{{OWNER}}}", "in a row"),
            Query(f"owner:kube_batch_max_consecutive_failures:threshold{{{OWNER}}}", "threshold"),
            width=8,
            steps=((None, GREEN), (3, RED)),
            runbook="CronJobFailing",
        ),
    ),
)

EXPORTER = Dashboard(
    uid="kbe-exporter",
    title="kube-batch-exporter / Exporter health",
    description="Is the exporter seeing the cluster, and what does it cost?",
    time_from="now-6h",
    variables=(
        Variable(
            "instance",
            "Instance",
            "label_values(kube_batch_exporter_build_info, instance)",
            multi=True,
        ),
    ),
    items=(
        Row("State"),
        Panel(
            "stat",
            "Version",
            "Exporter version per instance.",
            (Query(f"kube_batch_exporter_build_info{{{INSTANCE}}}", "{{version}}", instant=True),),
            "none",
            4,
            4,
            options=STAT | {"textMode": "name"},
        ),
        _stat(
            "Resources synced",
            "Resources (jobs, cronjobs, pods) whose first LIST completed, on the least-synced "
            "replica.",
            f"min(sum by (instance) (kube_batch_exporter_synced{{{INSTANCE}}}))",
            "short",
            steps=((None, RED), (3, GREEN)),
            runbook="KubeBatchExporterWatchFailing",
        ),
        _stat(
            "Owners dropped",
            "Owners not tracked because --max-owners was reached.",
            f"sum(kube_batch_exporter_owners_dropped_total{{{INSTANCE}}})",
            "short",
            steps=BAD_IF_ANY,
        ),
        _stat(
            "Resident memory",
            "Resident set size of the largest exporter process (each replica holds the caches).",
            f"max(process_resident_memory_bytes{{{INSTANCE}}})",
            "bytes",
            steps=((None, GREEN), (512 * 2**20, ORANGE), (1024 * 2**20, RED)),
        ),
        _stat(
            "Last scrape",
            "Time the exporter took to build its previous /metrics answer.",
            f"max(kube_batch_exporter_last_scrape_duration_seconds{{{INSTANCE}}})",
            "s",
            steps=((None, GREEN), (1, ORANGE), (5, RED)),
        ),
        _stat(
            "Last event",
            "Seconds since the latest watch event of any resource.",
            f"time() - max(kube_batch_exporter_last_event_timestamp_seconds{{{INSTANCE}}})",
            "s",
            steps=((None, GREEN), (600, ORANGE), (3600, RED)),
        ),
        Row("Watching"),
        Panel(
            "state-timeline",
            "Sync state",
            "Per resource: syncing (first LIST not done) or synced.",
            (Query(f"kube_batch_exporter_synced{{{INSTANCE}}}", "{{instance}} {{resource}}"),),
            "none",
            width=12,
            height=6,
            mappings=(("0", "syncing", RED), ("1", "synced", GREEN)),
            options={"showValue": "never", "mergeValues": True},
        ),
        Panel(
            "state-timeline",
            "Leader",
            "Per replica: the leader exports the batch series, a standby keeps its caches warm "
            "(always leader without --leader-elect).",
            (Query(f"kube_batch_exporter_leader{{{INSTANCE}}}", "{{instance}}"),),
            "none",
            width=12,
            height=6,
            mappings=(("0", "standby", BLUE), ("1", "leader", GREEN)),
            options={"showValue": "never", "mergeValues": True},
        ),
        _series(
            "Objects tracked",
            "Objects in the exporter's cache, by resource.",
            "short",
            Query(f"sum by (resource) (kube_batch_exporter_objects{{{INSTANCE}}})", "{{resource}}"),
            width=12,
            height=6,
        ),
        _series(
            "Watch events per second",
            "Watch events by resource and type (ADDED, MODIFIED, DELETED, BOOKMARK).",
            "ops",
            Query(
                "sum by (resource, type) ("
                f"rate(kube_batch_exporter_watch_events_total{{{INSTANCE}}}[$__rate_interval]))",
                "{{resource}} {{type}}",
            ),
        ),
        _series(
            "Watch restarts and relists per hour",
            "Restarts by reason (timeout is normal: the server ends each watch); relists follow "
            "410 Gone or errors.",
            "short",
            Query(
                _increase("kube_batch_exporter_watch_restarts_total", INSTANCE, "resource, reason"),
                "{{resource}} {{reason}}",
            ),
            Query(
                _increase("kube_batch_exporter_relists_total", INSTANCE, "resource"),
                "relist {{resource}}",
            ),
        ),
        _series(
            "API responses per hour by code",
            "Kubernetes API requests by resource, verb and HTTP code.",
            "short",
            Query(
                _increase(
                    "kube_batch_exporter_api_requests_total", INSTANCE, "resource, verb, code"
                ),
                "{{verb}} {{resource}} {{code}}",
            ),
        ),
        Row("Problems and cost"),
        _series(
            "API errors per hour",
            f"Responses other than 2xx and 410 Gone (403 means missing RBAC). {EMPTY_WHEN_HEALTHY}",
            "short",
            Query(
                _increase(
                    "kube_batch_exporter_api_requests_total",
                    f'{INSTANCE}, code!~"2..|410"',
                    "resource, code",
                ),
                "{{resource}} {{code}}",
            ),
            width=12,
            steps=BAD_IF_ANY,
            runbook="KubeBatchExporterWatchFailing",
        ),
        _series(
            "Problems survived per hour",
            "Bad lines, bad objects, bad annotations, torn streams... each also logged. "
            + EMPTY_WHEN_HEALTHY,
            "short",
            Query(_increase("kube_batch_exporter_errors_total", INSTANCE, "kind"), "{{kind}}"),
            width=12,
            steps=BAD_IF_ANY,
        ),
        _series(
            "CPU",
            "CPU used by the exporter; 100 % is one core.",
            "percentunit",
            Query(
                f"rate(process_cpu_seconds_total{{{INSTANCE}}}[$__rate_interval])", "{{instance}}"
            ),
            width=12,
        ),
        _series(
            "Scrape duration",
            "The exporter's own /metrics build time, and the whole scrape as Prometheus saw it.",
            "s",
            Query(
                f"kube_batch_exporter_last_scrape_duration_seconds{{{INSTANCE}}}",
                "build {{instance}}",
            ),
            Query(f"scrape_duration_seconds{{{INSTANCE}}}", "scrape {{instance}}"),
            width=12,
        ),
        _series(
            "Memory",
            "Resident memory of the exporter; it grows with the objects tracked (about 3.5 KiB "
            "per Job and 0.5 KiB per Pod).",
            "bytes",
            Query(f"process_resident_memory_bytes{{{INSTANCE}}}", "RSS {{instance}}"),
            width=12,
        ),
        _series(
            "Scrape size",
            "Bytes of the exporter's previous /metrics answer.",
            "bytes",
            Query(f"kube_batch_exporter_last_scrape_bytes{{{INSTANCE}}}", "{{instance}}"),
            width=12,
        ),
    ),
)

DASHBOARDS = (OVERVIEW, CRONJOB, EXPORTER)
