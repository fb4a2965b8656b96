"""The bundled alerts end to end: exporter → Prometheus → Alertmanager → webhook.

Prometheus 3 (built from its Go module) scrapes the session's exporter every 2 s and
evaluates the rules of alerts/ as they are; Alertmanager (the current release, on the shipped
deploy/alertmanager/ configuration) sends to a webhook served by this test. Scenarios,
started together: a CronJob failing three times in a row (CronJobFailing fires, then resolves
once it is fixed), a Forbid CronJob whose slots are skipped (CronJobMissedSchedule fires), and
one that never succeeds (CronJobNotSucceeding pages). Last, every panel query of the Grafana
dashboards runs against this Prometheus over the scenarios' window.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from grafana.build import EMPTY_WHEN_HEALTHY
from grafana.dashboards import CRONJOB, EXPORTER, OVERVIEW
from grafana.querying import Result, run
from tests.cluster.controlplane import free_port
from tests.cluster.monitoring import ROOT, Alertmanager, Prometheus
from tests.e2e.conftest import Cluster, Exporter, eventually, new_namespace, pod_template

pytestmark = pytest.mark.timeout(600)


class Webhook:
    """Alertmanager's webhook receiver: keeps every alert of every notification."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.extend(body["alerts"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first(self, name: str, status: str, timeout: float, **labels: str) -> dict[str, Any]:
        """The first notification of this alert in this status, waiting up to ``timeout``."""
        eventually(lambda: self.seen(name, status, **labels), timeout, f"{name} {status}")
        return self.seen(name, status, **labels)[0]

    def seen(self, name: str, status: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts
            if a["labels"].get("alertname") == name
            and a["status"] == status
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]


@pytest.fixture(scope="module")
def stack(
    cluster: Cluster, exporter: Exporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("monitoring")
    webhook = Webhook()
    alertmanager = Alertmanager(work, webhook.url)
    alertmanager.start()
    prometheus = Prometheus(work, exporter.url, alertmanager.url)
    try:
        prometheus.start()
        failing_ns, forbid_ns, once_ns, stale_ns = (
            new_namespace(cluster, "alert-fail"),
            new_namespace(cluster, "alert-miss"),
            new_namespace(cluster, "alert-once"),
            new_namespace(cluster, "alert-stale"),
        )
        cluster.kube.create(  # a new Job family whose first and only run fails
            f"/apis/batch/v1/namespaces/{once_ns}/jobs",
            {
                "metadata": {"generateName": "once-"},
                "spec": {"backoffLimit": 0, "template": pod_template(cluster, "1s", exit_code=1)},
            },
        )
        # never succeeds, and may take no longer than a minute: CronJobNotSucceeding pages
        # after two intervals plus one (3 minutes)
        cluster.kube.create(
            f"/apis/batch/v1/namespaces/{stale_ns}/cronjobs",
            {
                "metadata": {"name": "export"},
                "spec": {
                    "schedule": "* * * * *",
                    "jobTemplate": {
                        "spec": {
                            "backoffLimit": 0,
                            "template": pod_template(cluster, "200ms", exit_code=1),
                        }
                    },
                },
            },
        )
        # the two below may take an hour (or 10 minutes) per run: CronJobNotSucceeding stays
        # out of their way, so only the alerts their tests are about can fire
        cluster.kube.create(
            f"/apis/batch/v1/namespaces/{failing_ns}/cronjobs",
            {
                "metadata": {
                    "name": "nightly",
                    "annotations": {"kube-batch-exporter/max-duration": "1h"},
                },
                "spec": {
                    "schedule": "* * * * *",
                    "failedJobsHistoryLimit": 5,
                    "jobTemplate": {
                        "spec": {
                            "backoffLimit": 0,
                            "template": pod_template(cluster, "200ms", exit_code=1),
                        }
                    },
                },
            },
        )
        cluster.kube.create(
            f"/apis/batch/v1/namespaces/{forbid_ns}/cronjobs",
            {
                "metadata": {
                    "name": "hourly-sync",
                    "annotations": {
                        "kube-batch-exporter/missed-grace": "10s",
                        "kube-batch-exporter/max-duration": "10m",
                    },
                },
                "spec": {
                    "schedule": "* * * * *",
                    "concurrencyPolicy": "Forbid",
                    "jobTemplate": {"spec": {"template": pod_template(cluster, "150s")}},
                },
            },
        )
        yield {
            "started": time.time(),
            "webhook": webhook,
            "prometheus": prometheus,
            "failing": failing_ns,
            "forbid": forbid_ns,
            "once": once_ns,
            "stale": stale_ns,
        }
    finally:
        prometheus.stop()
        alertmanager.stop()
        webhook.server.shutdown()


def test_prometheus_scrapes_the_exporter(stack: dict[str, Any]) -> None:
    prometheus: Prometheus = stack["prometheus"]
    eventually(
        lambda: [r["value"][1] for r in prometheus.query('up{job="kube-batch-exporter"}')] == ["1"],
        30,
        "a successful scrape",
    )
    assert prometheus.query("kube_batch_exporter_build_info")


def test_cronjob_failing_pages_then_resolves_when_fixed(
    cluster: Cluster, stack: dict[str, Any]
) -> None:
    webhook: Webhook = stack["webhook"]
    ns = stack["failing"]
    started = time.monotonic()
    fired = webhook.first("CronJobFailing", "firing", 300, namespace=ns, cronjob="nightly")
    assert fired["labels"]["severity"] == "warning"
    assert "job" not in fired["labels"] and "instance" not in fired["labels"]
    url = fired["annotations"]["runbook_url"]
    anchor = url.rsplit("#", 1)[1]
    assert url.endswith("docs/runbooks.md#cronjobfailing")
    assert f"## {fired['labels']['alertname']}" in (ROOT / "docs/runbooks.md").read_text()
    assert anchor == "cronjobfailing"
    description = fired["annotations"]["description"]
    assert "The last 3 runs" in description
    # the failure context, from kube_batch_last_run_info: which Job, why, what to type next
    job = re.search(rf"kubectl -n {ns} logs job/(nightly-\d+)\.", description)
    assert (
        job
        and (
            f"The latest, Job {job.group(1)}, ended BackoffLimitExceeded after 1 failed attempt "
            "(pods: Error, exit code 1)."
        )
        in description
    )
    assert f"kubectl -n {ns} describe job/{job.group(1)};" in description
    print("CronJobFailing as the webhook received it:", description)

    cluster.kube.patch(
        f"/apis/batch/v1/namespaces/{ns}/cronjobs/nightly",
        {
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "metadata": {
                                "annotations": {"kube-batch-exporter.test/exit-code": None}
                            }
                        }
                    }
                }
            }
        },
    )
    webhook.first("CronJobFailing", "resolved", 150, namespace=ns, cronjob="nightly")
    print(f"CronJobFailing fired and resolved in {time.monotonic() - started:.0f}s")


def test_a_new_familys_first_failure_is_one_failed_run_on_the_dashboard(
    stack: dict[str, Any],
) -> None:
    """The series is born at 0, so plain increase() over the window sees its first run."""
    (panel,) = [p for p in OVERVIEW.panels() if p.title == "Failed runs"]
    start = stack["started"]
    state: dict[str, Any] = {}

    def failed_runs() -> bool:
        alone = dataclasses.replace(OVERVIEW, items=(panel,))
        (result,) = run(
            stack["prometheus"].url, alone, {"namespace": stack["once"]}, start, time.time()
        )
        state["result"] = result
        values = [float(s["value"][1]) for s in result.series]
        return len(values) == 1 and abs(values[0] - 1) < 0.05

    eventually(failed_runs, 90, "the Failed runs panel at 1")
    assert not state["result"].error


def test_skipped_slots_page_as_missed_schedule(stack: dict[str, Any]) -> None:
    webhook: Webhook = stack["webhook"]
    ns = stack["forbid"]
    alert = webhook.first(
        "CronJobMissedSchedule", "firing", 300, namespace=ns, cronjob="hourly-sync"
    )
    assert alert["annotations"]["runbook_url"].endswith("#cronjobmissedschedule")


def test_a_cronjob_that_never_succeeds_pages_critical(stack: dict[str, Any]) -> None:
    webhook: Webhook = stack["webhook"]
    ns = stack["stale"]
    alert = webhook.first("CronJobNotSucceeding", "firing", 300, namespace=ns, cronjob="export")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#cronjobnotsucceeding")
    # timed from its creation, since it never succeeded: at least the 3-minute threshold
    age = re.search(r"no successful run for (\d+)m (\d+)s", alert["annotations"]["description"])
    assert age and int(age.group(1)) * 60 + int(age.group(2)) >= 180, alert["annotations"]


def test_no_unexpected_alert_for_these_workloads_or_the_exporter(stack: dict[str, Any]) -> None:
    webhook: Webhook = stack["webhook"]
    mine = {stack["failing"], stack["forbid"]}
    expected = {"CronJobFailing", "CronJobMissedSchedule", "BatchJobRetrying", "CronJobOverdue"}
    unexpected = {
        a["labels"]["alertname"] for a in webhook.alerts if a["labels"].get("namespace") in mine
    } - expected
    assert not unexpected, unexpected
    paged_stale = {
        a["labels"]["alertname"]
        for a in webhook.alerts
        if a["labels"].get("namespace") == stack["stale"]
    }
    assert paged_stale <= {"CronJobNotSucceeding", "CronJobFailing", "BatchJobRetrying"}
    assert not webhook.seen("KubeBatchExporterDown", "firing")
    assert not webhook.seen("KubeBatchExporterWatchFailing", "firing")


def test_every_dashboard_panel_query_parses_and_returns_data(stack: dict[str, Any]) -> None:
    """Range queries over the scenarios' window; "Empty when healthy." panels may be empty.

    The CronJob dashboard runs once per scenario CronJob: a panel passes when either has data
    (the failing one never misses a slot, the Forbid one never fails).
    """
    url = stack["prometheus"].url
    start, end = stack["started"], time.time()
    results: list[Result] = [
        *run(url, OVERVIEW, {"namespace": f"{stack['failing']}|{stack['forbid']}"}, start, end),
        *run(url, EXPORTER, {"instance": ".+"}, start, end),
    ]
    errors = [f"{r.panel.title}: {r.error} in {r.expr}" for r in results if r.error]
    per_cronjob = [
        run(url, CRONJOB, {"namespace": ns, "cronjob": name}, start, end)
        for ns, name in ((stack["failing"], "nightly"), (stack["forbid"], "hourly-sync"))
    ]
    errors += [f"{r.panel.title}: {r.error}" for rs in per_cronjob for r in rs if r.error]
    assert not errors, errors
    # A panel shows data when any of its targets does, for either CronJob of the detail board.
    with_data = {r.panel.title for r in results if r.series}
    with_data |= {r.panel.title for rs in per_cronjob for r in rs if r.series}
    panels = [*OVERVIEW.panels(), *EXPORTER.panels(), *CRONJOB.panels()]
    empty = [
        p.title
        for p in panels
        if p.title not in with_data and EMPTY_WHEN_HEALTHY not in p.description
    ]
    assert not empty, f"no data from: {empty}"
    quiet = [p.title for p in panels if p.title not in with_data]
    print(f"{len(panels)} dashboard panels; empty (allowed): {quiet}")
