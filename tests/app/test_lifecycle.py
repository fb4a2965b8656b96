"""The assembled exporter against the fake API server: every §2 family, readiness, 410 gaps."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.app.lifecycle import serve
from exporter.cli import parse_settings
from tests.app.running import Exporter, all_watching, eventually, running_exporter
from tests.cluster.controlplane import free_port
from tests.fakeapi import CLOSE, FakeApiServer, Fault, job

NS = ("team-a", "team-b", "team-c")


def populate(fake: FakeApiServer) -> list[dict[str, Any]]:
    """3 CronJobs, 10 Jobs (6 owned by the CronJobs, 4 direct), 20 Pods."""
    for i in range(3):
        fake.add(
            "cronjobs",
            {
                "metadata": {"name": f"cj{i}", "namespace": NS[i]},
                "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid"},
                "status": {"lastScheduleTime": "2026-01-01T00:00:00Z"},
            },
        )
    jobs = []
    for i in range(10):
        body = job(f"job{i}", NS[i % 3], startTime="2026-01-01T00:00:00Z", active=1, ready=1)
        if i < 6:
            body["metadata"]["ownerReferences"] = [
                {"kind": "CronJob", "name": f"cj{i % 3}", "controller": True}
            ]
        jobs.append(fake.add("jobs", body))
    for i in range(20):
        j = jobs[i % 10]
        fake.add(
            "pods",
            {
                "metadata": {
                    "name": f"pod{i}",
                    "namespace": j["metadata"]["namespace"],
                    "labels": {"batch.kubernetes.io/controller-uid": j["metadata"]["uid"]},
                    "ownerReferences": [
                        {"kind": "Job", "uid": j["metadata"]["uid"], "controller": True}
                    ],
                },
                "status": {"phase": "Running"},
            },
        )
    return jobs


@pytest.fixture
async def exporter(fake_api: FakeApiServer, kubeconfig_path: Path) -> AsyncIterator[Exporter]:
    async with running_exporter(kubeconfig_path) as exp:
        await fake_api.changed.wait_for(lambda: all_watching(fake_api))
        yield exp


async def test_serves_every_state_family_with_correct_values(
    fake_api: FakeApiServer, kubeconfig_path: Path
) -> None:
    populate(fake_api)  # before start: the state comes from the paginated LISTs
    async with running_exporter(kubeconfig_path) as exp:
        await fake_api.changed.wait_for(lambda: all_watching(fake_api))
        assert (await exp.get("/readyz"))[0] == 200
        fams = await exp.families()
        states = [s for s in fams["kube_batch_job_state"].samples if s.value == 1]
        assert len(states) == 10 and {s.labels["state"] for s in states} == {"running"}
        owners = {(s.labels["owner_kind"], s.labels["owner_name"]) for s in states}
        assert owners == {
            ("CronJob", "cj0"),
            ("CronJob", "cj1"),
            ("CronJob", "cj2"),
            ("Job", "job6"),
            ("Job", "job7"),
            ("Job", "job8"),
            ("Job", "job9"),
        }
        for name in ("active", "ready"):
            values = [s.value for s in fams[f"kube_batch_job_status_{name}"].samples]
            assert values == [1.0] * 10
        assert {s.value for s in fams["kube_batch_job_spec_completions"].samples} == {1.0}
        assert {s.value for s in fams["kube_batch_job_spec_backoff_limit"].samples} == {6.0}
        assert {s.value for s in fams["kube_batch_job_start_timestamp_seconds"].samples} == {
            1767225600.0
        }
        assert len(fams["kube_batch_job_running_seconds"].samples) == 10
        assert {
            (s.labels["cronjob"], s.labels["concurrency_policy"])
            for s in fams["kube_batch_cronjob_info"].samples
        } == {("cj0", "Forbid"), ("cj1", "Forbid"), ("cj2", "Forbid")}
        assert len(fams["kube_batch_cronjob_last_schedule_timestamp_seconds"].samples) == 3
        objects = {
            s.labels["resource"]: s.value for s in fams["kube_batch_exporter_objects"].samples
        }
        assert objects == {"jobs": 10, "cronjobs": 3, "pods": 20}
        assert {s.value for s in fams["kube_batch_exporter_synced"].samples} == {1.0}


async def test_job_deleted_during_a_forced_410_vanishes(
    fake_api: FakeApiServer, exporter: Exporter
) -> None:
    jobs = populate(fake_api)
    victim = jobs[3]

    async def job_names() -> set[str]:
        return {s["job_name"] for s in await exporter.series("kube_batch_job_state")}

    async def all_seen() -> bool:  # they were added while the exporter was watching
        return len(await job_names()) == 10

    await eventually(all_seen)

    fake_api.remove_silently("jobs", victim["metadata"]["uid"])
    fake_api.compact("jobs")
    fake_api.send("jobs", CLOSE)
    await fake_api.changed.wait_for(lambda: fake_api.count("jobs", "list") == 2)
    await fake_api.changed.wait_for(lambda: fake_api.open_streams("jobs") == 1)

    async def victim_gone() -> bool:
        return "job3" not in await job_names()

    await eventually(victim_gone)
    assert await job_names() == {f"job{i}" for i in range(10)} - {"job3"}
    relists = {
        s.labels["resource"]: s.value
        for s in (await exporter.families())["kube_batch_exporter_relists"].samples
        if s.name.endswith("_total")
    }
    assert relists == {"jobs": 1, "cronjobs": 0, "pods": 0}


async def test_openmetrics_is_served_when_asked(exporter: Exporter) -> None:
    status, ctype, text = await exporter.get(
        "/metrics", Accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    status, ctype, text = await exporter.get("/metrics")
    assert ctype.startswith("text/plain; version=0.0.4") and "# EOF" not in text


async def test_metrics_are_gzipped_when_asked_and_only_then(exporter: Exporter) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in r.headers["Vary"]
            zipped = gzip.decompress(await r.read())
        plain_headers = {"Accept-Encoding": "identity"}
        async with session.get(exporter.url + "/metrics", headers=plain_headers) as r:
            assert "Content-Encoding" not in r.headers
            plain = await r.read()

    def names(body: bytes) -> set[bytes]:
        lines = body.splitlines()
        return {line.split(b" ")[0].split(b"{")[0] for line in lines if line.startswith(b"kube_")}

    assert names(zipped) == names(plain) and b"kube_batch_exporter_leader" in names(plain)


async def test_a_stalled_event_loop_shows_in_the_lag_histogram(exporter: Exporter) -> None:
    async def stalls_over(seconds: str) -> float:
        fams = await exporter.families()
        samples = fams["kube_batch_exporter_event_loop_lag_seconds"].samples
        buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
        return float(buckets["+Inf"] - buckets[seconds])

    before = await stalls_over("0.25")
    # the stimulus: hold the loop, as a long synchronous piece of work would
    time.sleep(0.4)  # noqa: ASYNC251

    async def seen() -> bool:
        return await stalls_over("0.25") > before

    await eventually(seen)


async def test_health_and_the_status_pages(exporter: Exporter) -> None:
    assert (await exporter.get("/healthz"))[0] == 200
    status, ctype, page = await exporter.get("/status")
    assert status == 200 and "text/html" in ctype and "/metrics" in page


async def test_the_status_pages_list_every_owner(
    fake_api: FakeApiServer, kubeconfig_path: Path
) -> None:
    populate(fake_api)
    async with running_exporter(kubeconfig_path) as exporter:
        await fake_api.changed.wait_for(lambda: all_watching(fake_api))
        await eventually(lambda: _ready(exporter))
        status, ctype, page = await exporter.get("/")
        assert status == 200 and "text/html" in ctype and "cj0" in page  # a CronJob, by name
        status, ctype, body = await exporter.get("/api/v1/owners")
        listed = json.loads(body)
        assert status == 200 and ctype.startswith("application/json") and listed["leading"]
        cronjobs = {o["name"] for o in listed["owners"] if o["kind"] == "CronJob"}
        assert cronjobs == {"cj0", "cj1", "cj2"}
        status, _, body = await exporter.get("/api/v1/owners/team-a/CronJob/cj0")
        assert status == 200 and json.loads(body)["schedule"] == "*/5 * * * *"
        assert (await exporter.get("/api/v1/owners/team-a/CronJob/nope"))[0] == 404
        assert (await exporter.get("/owners/team-a/Deployment/cj0"))[0] == 404


async def _ready(exporter: Exporter) -> bool:
    return (await exporter.get("/readyz"))[0] == 200


async def test_readyz_waits_for_every_resource(
    fake_api: FakeApiServer, kubeconfig_path: Path
) -> None:
    fake_api.fail_next("pods", "list", *[Fault(500)] * 3)
    async with running_exporter(kubeconfig_path) as exp:
        await fake_api.changed.wait_for(
            lambda: fake_api.open_streams("jobs") == 1 and fake_api.open_streams("cronjobs") == 1
        )
        status, _, text = await exp.get("/readyz")
        assert status == 503 and "pods: waiting for the first full list" in text
        await fake_api.changed.wait_for(lambda: fake_api.open_streams("pods") == 1, timeout=20)
        assert (await exp.get("/readyz"))[0] == 200


async def test_cli_exits_cleanly_on_sigterm_within_5s(
    fake_api: FakeApiServer, kubeconfig_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "KBE_LISTEN": f"127.0.0.1:{port}", "KBE_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        "--kubeconfig",
        str(kubeconfig_path),
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        exp = Exporter(f"http://127.0.0.1:{port}")

        async def ready() -> bool:
            try:
                return (await exp.get("/readyz"))[0] == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, timeout=20)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 5) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.stderr is not None
    log = (await proc.stderr.read()).decode()
    assert '"msg": "stopping"' in log


async def test_an_unusable_web_config_stops_start_up_with_a_clear_error(
    kubeconfig_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: not-a-hash-but-a-secret\n")
    settings = parse_settings(
        ["--kubeconfig", str(kubeconfig_path), "--web-config-file", str(web)], environ={}
    )
    assert await serve(settings, asyncio.Event()) == 1
    assert "the password of user 'prometheus' is not a bcrypt hash" in caplog.text
    assert "not-a-hash-but-a-secret" not in caplog.text
