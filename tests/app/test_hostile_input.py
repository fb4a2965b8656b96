"""Hostile input: each bad object loses only itself, never the loop, a watcher or a scrape.

A seeded property-based fuzz test. Realistic Jobs, Pods and CronJobs, each broken by one
mutation the API server could never send, reach the exporter (served in-process) through
paginated LIST pages and watch events, mixed with raw lines and LIST items no JSON decoder
accepts, and with valid control objects whose metrics are known. Whatever hypothesis draws:

- the process keeps serving, and ``/healthz`` answers within a second;
- every scrape parses, as text and as OpenMetrics, with prometheus_client's own parsers;
- the control objects' metrics are exact;
- every bad object is counted once (``bad_object``), every bad line once (``bad_line``), and
  nothing else is counted;
- nothing is logged at ERROR level or with a traceback.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.app.running import all_watching, running_exporter
from tests.fakeapi import FakeApiServer, kubeconfig

T = "2026-01-01T00:00:00Z"
DEEP = b"[" * 5000 + b"]" * 5000

CRONJOB: dict[str, Any] = {
    "metadata": {"name": "nightly", "namespace": "fuzz", "creationTimestamp": T},
    "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "suspend": False},
    "status": {"lastScheduleTime": T, "active": []},
}
JOB: dict[str, Any] = {
    "metadata": {
        "name": "nightly-29000000",
        "namespace": "fuzz",
        "creationTimestamp": T,
        "ownerReferences": [{"kind": "CronJob", "name": "nightly", "controller": True}],
    },
    "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 2, "suspend": False},
    "status": {
        "startTime": T,
        "active": 1,
        "conditions": [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}],
    },
}
POD: dict[str, Any] = {
    "metadata": {
        "name": "nightly-29000000-x",
        "namespace": "fuzz",
        "creationTimestamp": T,
        "ownerReferences": [{"kind": "Job", "uid": "nowhere", "controller": True}],
    },
    "status": {
        "phase": "Failed",
        "containerStatuses": [
            {"restartCount": 0, "state": {"terminated": {"exitCode": 1, "startedAt": T}}}
        ],
    },
}
BASES = {"cronjobs": CRONJOB, "jobs": JOB, "pods": POD}

# What the API server could never send, by field: every one must make its object bad. Only
# fields the exporter reads can (one it ignores cannot hurt it), so the bases above are a
# finished Job and a failed Pod: every field below is read.
COUNTS = st.sampled_from([-1, -9_000_000_000_000_000_000, 2**31, int("9" * 401), True, "3", 1.5])
TIMES = st.sampled_from(["9999-12-31T23:59:59Z", "1969-07-20T20:17:00Z", "yesterday", "", 17])
TEXTS = st.sampled_from(["\ud800", "lone \udfff surrogate", "x" * 2000, 5, ["a"], {"a": 1}])
EXIT_CODES = st.sampled_from([2**31, -(2**31) - 1, True, "3", 1.5])  # negative ones exist
NOT_MAPS = st.sampled_from(["garbage", 7, [1, 2], True])
NOT_LISTS = st.sampled_from(["garbage", 7, {"a": 1}])
FIELDS: dict[str, list[tuple[str, st.SearchStrategy[Any]]]] = {
    "cronjobs": [
        ("metadata.name", TEXTS),
        ("metadata.namespace", TEXTS),
        ("metadata.creationTimestamp", TIMES),
        ("spec", NOT_MAPS),
        ("spec.schedule", TEXTS),
        ("spec.timeZone", st.sampled_from(["A" * 5000, 9, "\ud800"])),
        ("spec.suspend", st.sampled_from(["yes", 1])),
        ("spec.startingDeadlineSeconds", st.sampled_from([-3600, -(2**31), int("9" * 401)])),
        ("status.lastScheduleTime", TIMES),
        ("status.active", NOT_LISTS),
    ],
    "jobs": [
        ("metadata.name", TEXTS),
        ("metadata.ownerReferences", NOT_LISTS),
        ("metadata.ownerReferences[0].name", TEXTS),
        ("spec.completions", COUNTS),
        ("spec.activeDeadlineSeconds", st.sampled_from([-1, int("9" * 401), "1h"])),
        ("status", NOT_MAPS),
        ("status.active", COUNTS),
        ("status.failed", COUNTS),
        ("status.startTime", TIMES),
        ("status.conditions", NOT_LISTS),
        ("status.conditions[0].reason", TEXTS),
    ],
    "pods": [
        ("metadata.namespace", TEXTS),
        ("metadata.ownerReferences[0].uid", TEXTS),
        ("status.phase", TEXTS),
        ("status.containerStatuses", NOT_LISTS),
        ("status.containerStatuses[0].restartCount", COUNTS),
        ("status.containerStatuses[0].state.terminated.exitCode", EXIT_CODES),
        ("status.containerStatuses[0].state.terminated.startedAt", TIMES),
    ],
}


def put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set the field at a dotted path (``[i]`` for a list item) of ``body``."""
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        name, _, index = part.partition("[")
        node = node[name]
        if index:
            node = node[int(index.rstrip("]"))]
    node[last] = value


@dataclass
class Bad:
    """One object broken by one mutation, and how it reaches the exporter."""

    resource: str
    body: dict[str, Any]
    listed: bool
    """In the first LIST; otherwise sent as a watch event."""


@st.composite
def bad_objects(draw: st.DrawFn) -> Bad:
    resource = draw(st.sampled_from(sorted(FIELDS)))
    path, values = draw(st.sampled_from(FIELDS[resource]))
    body = copy.deepcopy(BASES[resource])
    put(body, path, draw(values))
    uid = draw(st.uuids()).hex
    body["metadata"] = {**body["metadata"], "uid": uid} if path != "metadata" else body["metadata"]
    return Bad(resource, body, draw(st.booleans()))


RAW_LINES = [b"this is not json", b'{"type": "ADDED", "object": ' + DEEP + b"}", b'{"type": 5}']
RAW_ITEMS = [b'{"metadata": {"uid": "deep", "labels": ' + DEEP + b"}}", b"{not json}"]


def control(resource: str, name: str, **status: Any) -> dict[str, Any]:
    """A valid object of the control CronJob ``guard`` in namespace ``ok``."""
    body = copy.deepcopy(BASES[resource])
    body["metadata"] = {**body["metadata"], "name": name, "namespace": "ok", "uid": name}
    if resource == "jobs":
        body["metadata"]["ownerReferences"] = [
            {"kind": "CronJob", "name": "guard", "controller": True}
        ]
    if resource == "pods":
        body["metadata"]["ownerReferences"] = [
            {"kind": "Job", "uid": status.pop("job"), "controller": True}
        ]
    body["status"] = {**body["status"], **status}
    return body


class Problems(logging.Handler):
    """Collects what must never be logged: errors and tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


async def scenario(bad: list[Bad], kubeconfig_path: Path) -> None:
    fake = FakeApiServer()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    await asyncio.to_thread(kubeconfig_path.write_text, yaml.safe_dump(kubeconfig(fake.url)))
    problems = Problems()
    logging.getLogger().addHandler(problems)
    try:
        fake.add("cronjobs", control("cronjobs", "guard"))
        for item in (b for b in bad if b.listed):
            fake.add(item.resource, item.body)
        for raw in RAW_ITEMS:
            fake.add_raw("jobs", raw)
        async with running_exporter(kubeconfig_path) as exp:
            await fake.changed.wait_for(lambda: all_watching(fake), timeout=20)
            for item in (b for b in bad if not b.listed):
                fake.add(item.resource, item.body)
            for raw in RAW_LINES:
                fake.send("jobs", raw + b"\n")
            fake.add("jobs", control("jobs", "run", active=1))
            failure = {"exitCode": 1, "reason": "Error", "startedAt": T}
            attempt = [{"restartCount": 0, "state": {"terminated": failure}}]
            pod = control("pods", "attempt", job="run", phase="Failed", containerStatuses=attempt)
            fake.add("pods", pod)
            done = {"type": "Complete", "status": "True", "reason": "CompletionsReached"}
            finished = {"active": 0, "succeeded": 1, "completionTime": T, "conditions": [done]}
            fake.modify("jobs", control("jobs", "run", **finished))
            fake.add("cronjobs", control("cronjobs", "sentinel"))  # the last of each stream

            async def arrived() -> bool:
                _, _, text = await exp.get("/metrics")
                return (
                    'cronjob="sentinel"' in text
                    and 'reason="Error"' in text
                    and ('result="succeeded"' in text)
                )

            deadline = time.monotonic() + 20
            while not await arrived():
                assert time.monotonic() < deadline, "the control objects never arrived"
                await asyncio.sleep(0.05)

            started = time.monotonic()
            assert (await exp.get("/healthz"))[0] == 200
            assert time.monotonic() - started < 1.0
            _, _, text = await exp.get("/metrics")
            _, _, om = await exp.get("/metrics", Accept="application/openmetrics-text")
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            assert om.endswith("# EOF\n") and list(openmetrics_families(om))  # type: ignore[no-untyped-call]

        def value(name: str, **labels: str) -> float | None:
            return samples.get((name, tuple(sorted(labels.items()))))

        owner = {"namespace": "ok", "owner_kind": "CronJob", "owner_name": "guard"}
        run = {"result": "succeeded", "reason": "CompletionsReached", "trigger": "schedule"}
        assert value("kube_batch_runs_total", **owner, **run) == 1
        assert value("kube_batch_pod_failures_total", **owner, reason="Error") == 1
        info = {"schedule": "*/5 * * * *", "timezone": "", "concurrency_policy": "Forbid"}
        assert value("kube_batch_cronjob_info", namespace="ok", cronjob="guard", **info) == 1
        errors = {
            labels[0][1]: v
            for (name, labels), v in samples.items()
            if name == "kube_batch_exporter_errors_total" and v
        }
        assert errors == {"bad_object": len(bad) + len(RAW_ITEMS), "bad_line": len(RAW_LINES)}
        assert not problems.records, [r.getMessage() for r in problems.records]
    finally:
        logging.getLogger().removeHandler(problems)
        for plural in list(fake.streams):
            fake.send(plural, b"")
        await server.close()


EXAMPLES = 40


@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: a failure reproduces
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(bad_objects(), min_size=10, max_size=40, unique_by=lambda b: b.body["metadata"]["uid"])
)
def test_hostile_objects_lose_only_themselves(bad: list[Bad]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(bad, Path(tmp) / "kubeconfig"))
