"""A batch fleet written straight into the API server: CronJobs, their Jobs and the Jobs' Pods.

Why not let the controllers make it: creating 30,000 Pods through the Job controller and kwok
on 2 cores takes far longer than the measurement, and the controllers would keep changing the
fleet while it is measured. The benchmark stops kube-controller-manager and writes objects and
their status itself (as the controllers would), so both exporters see the same, fixed fleet;
the churn phase then changes it at a known rate.

Shape: 20 namespaces; mixed schedules; 90 % of Jobs owned by a CronJob, the rest direct; 95 %
finished (one in ten failed), 5 % running; every Job has the same number of Pods, the last one
for a finished Job ending like its Job and the others failed attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import aiohttp
import msgspec

from exporter.kube.connecting import Connection

NAMESPACES = 20
SCHEDULES = ("*/5 * * * *", "0 * * * *", "0 3 * * *", "*/15 * * * *", "30 2 * * 1-5")
MERGE = {"Content-Type": "application/merge-patch+json"}


def stamp(seconds_ago: float) -> str:
    """An RFC 3339 time ``seconds_ago`` before now, as the API writes it."""
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cronjob_body(i: int) -> dict[str, Any]:
    """CronJob number ``i``; suspended so that nothing acts on it if a controller runs."""
    return {
        "metadata": {"name": f"cj-{i}"},
        "spec": {
            "schedule": SCHEDULES[i % len(SCHEDULES)],
            "suspend": True,
            "jobTemplate": {"spec": {"template": _pod_template()}},
        },
    }


def _pod_template() -> dict[str, Any]:
    containers = [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]
    return {"spec": {"restartPolicy": "Never", "containers": containers}}


def job_body(j: int, owner: dict[str, Any] | None) -> dict[str, Any]:
    """Job number ``j``, owned by the CronJob ``owner`` (its created object) or direct."""
    metadata: dict[str, Any] = {"name": f"job-{j}", "labels": {"app": f"family-{j % 50}"}}
    if owner:
        metadata["name"] = f"{owner['metadata']['name']}-{29000000 + j}"
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    return {"metadata": metadata, "spec": {"backoffLimit": 6, "template": _pod_template()}}


def job_status(j: int, running: bool) -> dict[str, Any]:
    """Status as the Job controller writes it: running, complete, or failed (no end time)."""
    if running:
        return {"startTime": stamp(120), "active": 1, "ready": 1}
    started, ended = 600 + j % 3600, 60 + j % 3600
    if j % 10 == 3:
        reason = {"reason": "BackoffLimitExceeded", "message": "Job has reached the backoff"}
        return {
            "startTime": stamp(started),
            "failed": 3,
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": stamp(ended), **reason}
                for t in ("FailureTarget", "Failed")
            ],
        }
    return {
        "startTime": stamp(started),
        "completionTime": stamp(ended),
        "succeeded": 1,
        "failed": 2,
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": stamp(ended)}
            for t in ("SuccessCriteriaMet", "Complete")
        ],
    }


def finished_status() -> dict[str, Any]:
    """A running Job's status patch once its Pod succeeded (startTime stays as it was)."""
    now = stamp(0)
    conditions = [
        {"type": t, "status": "True", "lastTransitionTime": now}
        for t in ("SuccessCriteriaMet", "Complete")
    ]
    return {
        "active": 0,
        "ready": 0,
        "succeeded": 1,
        "completionTime": now,
        "conditions": conditions,
    }


def pod_body(job: dict[str, Any], k: int) -> dict[str, Any]:
    """Attempt ``k`` of ``job`` (its created object); no node, so kwok leaves it alone."""
    uid = job["metadata"]["uid"]
    return {
        "metadata": {
            "name": f"{job['metadata']['name']}-{k}",
            "labels": {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job["metadata"]["name"],
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }


def pod_status(outcome: str) -> dict[str, Any]:
    """Running, Succeeded, or Failed with exit code 1 (reason Error)."""
    if outcome == "Running":
        state: dict[str, Any] = {"running": {"startedAt": stamp(100)}}
    else:
        code = 0 if outcome == "Succeeded" else 1
        reason = "Completed" if code == 0 else "Error"
        state = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": stamp(300),
                "finishedAt": stamp(200),
            }
        }
    return {
        "phase": outcome,
        "startTime": stamp(300),
        "containerStatuses": [
            {
                "name": "main",
                "image": "busybox",
                "imageID": "",
                "ready": outcome == "Running",
                "restartCount": 0,
                "state": state,
            }
        ],
    }


class _Metadata(TypedDict, total=False):
    name: str
    namespace: str
    uid: str


class Made(TypedDict, total=False):
    """What the fleet keeps of a created object: the load and the churn read no more."""

    metadata: _Metadata


_MADE = msgspec.json.Decoder(Made)


@dataclass
class Writer:
    """Creates objects and writes their status with bounded concurrency over keep-alive."""

    conn: Connection
    session: aiohttp.ClientSession
    concurrency: int = 48
    requests: int = 0
    _limit: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.concurrency)

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        extra: dict[str, str] | None = None,
    ) -> Any:
        """One request; retries 429/5xx a few times (the apiserver sheds load under bursts)."""
        headers = await self.conn.headers()
        headers |= {"Content-Type": "application/json", **(extra or {})}
        data = msgspec.json.encode(body) if body is not None else None
        async with self._limit:
            for attempt in itertools.count():
                async with self.session.request(
                    method, self.conn.host + path, data=data, headers=headers
                ) as resp:
                    self.requests += 1
                    if resp.status < 300:
                        # metadata only: a whole Pod back is 3 KiB of JSON per request
                        return _MADE.decode(await resp.read())
                    if resp.status in (429, 500, 503, 504) and attempt < 5:
                        await asyncio.sleep(0.2 * 2**attempt)
                        continue
                    raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")
        raise AssertionError("unreachable")

    async def create(self, path: str, body: dict[str, Any], status: dict[str, Any] | None) -> Any:
        """POST the object, then merge-patch its status subresource."""
        made = await self.call("POST", path, body)
        if status is not None:
            name = made["metadata"]["name"]
            await self.call("PATCH", f"{path}/{name}/status", {"status": status}, MERGE)
        return made


async def gather_in_chunks(tasks: list[Awaitable[Any]], size: int = 2000) -> list[Any]:
    """Await coroutines in chunks, so a big fleet does not hold them all at once."""
    out: list[Any] = []
    for start in range(0, len(tasks), size):
        out.extend(await asyncio.gather(*tasks[start : start + size]))
    return out


def namespace_of(i: int) -> str:
    """The namespace of CronJob ``i`` (and of the Jobs it owns)."""
    return f"bench-{i % NAMESPACES}"


async def load(
    writer: Writer, cronjobs: int, jobs: int, pods: int, progress: Any = print
) -> list[dict[str, Any]]:
    """Create the fleet; return the created Jobs (for the churn phase)."""
    for n in range(NAMESPACES):
        await writer.call("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        # the ServiceAccount controller is stopped with the controller-manager; Pods need it
        sa = {"metadata": {"name": "default"}}
        await writer.call("POST", f"/api/v1/namespaces/bench-{n}/serviceaccounts", sa)
    started = time.monotonic()
    made_cronjobs = await gather_in_chunks(
        [
            writer.create(
                f"/apis/batch/v1/namespaces/{namespace_of(i)}/cronjobs",
                cronjob_body(i),
                {"lastScheduleTime": stamp(300), "lastSuccessfulTime": stamp(240)},
            )
            for i in range(cronjobs)
        ]
    )
    progress(f"  {cronjobs} CronJobs in {time.monotonic() - started:.0f}s")
    per_job = max(1, round(pods / jobs))
    made_jobs: list[dict[str, Any]] = []
    chunk = 1000
    for first in range(0, jobs, chunk):
        batch = range(first, min(jobs, first + chunk))
        owners = [made_cronjobs[j % cronjobs] if j % 10 else None for j in batch]
        created = await gather_in_chunks(
            [
                writer.create(
                    f"/apis/batch/v1/namespaces/{namespace_of(j % cronjobs)}/jobs",
                    job_body(j, owner),
                    job_status(j, running=j % 20 == 7),
                )
                for j, owner in zip(batch, owners, strict=True)
            ]
        )
        await gather_in_chunks(
            [
                writer.create(
                    f"/api/v1/namespaces/{job['metadata']['namespace']}/pods",
                    pod_body(job, k),
                    pod_status(pod_outcome(j, k, per_job)),
                )
                for j, job in zip(batch, created, strict=True)
                for k in range(per_job)
            ]
        )
        made_jobs.extend(created)
        rate = writer.requests / (time.monotonic() - started)
        progress(f"  {len(made_jobs)}/{jobs} Jobs with their Pods ({rate:.0f} requests/s)")
    return made_jobs


def pod_outcome(j: int, k: int, per_job: int) -> str:
    """How attempt ``k`` of Job ``j`` ended: failed attempts, then the last like its Job."""
    if j % 20 == 7:
        return "Running" if k == per_job - 1 else "Failed"
    if k < per_job - 1 or j % 10 == 3:
        return "Failed"
    return "Succeeded"


async def churn(
    writer: Writer, jobs: list[dict[str, Any]], per_second: float, seconds: float, first: int
) -> int:
    """Replace old Jobs by new ones at a steady rate; return how many were replaced.

    Each new Job starts, runs and finishes (Job and Pod status updates) while the oldest one
    is deleted with its Pods.
    """
    interval, done = 1.0 / per_second, 0
    deadline = time.monotonic() + seconds
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int) -> None:
        old = jobs[n % len(jobs)]
        ns = old["metadata"]["namespace"]
        job = await writer.create(
            f"/apis/batch/v1/namespaces/{ns}/jobs", job_body(first + n, None), job_status(n, True)
        )
        pod = await writer.create(
            f"/api/v1/namespaces/{ns}/pods", pod_body(job, 0), pod_status("Running")
        )
        await writer.call(
            "PATCH",
            f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/status",
            {"status": pod_status("Succeeded")},
            MERGE,
        )
        await writer.call(
            "PATCH",
            f"/apis/batch/v1/namespaces/{ns}/jobs/{job['metadata']['name']}/status",
            {"status": finished_status()},
            MERGE,
        )
        # no garbage collector runs: delete the old Job's Pods ourselves, as it would
        await writer.call(
            "DELETE", f"/apis/batch/v1/namespaces/{ns}/jobs/{old['metadata']['name']}", None
        )
        selector = f"batch.kubernetes.io/controller-uid={old['metadata']['uid']}"
        await writer.call("DELETE", f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}", None)
        jobs[n % len(jobs)] = job

    failures: list[BaseException] = []

    def finished(task: asyncio.Task[None]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception():
            failures.append(task.exception())  # type: ignore[arg-type]

    while time.monotonic() < deadline and not failures:
        task = asyncio.create_task(one(done))
        pending.add(task)
        task.add_done_callback(finished)
        done += 1
        await asyncio.sleep(interval)
    await asyncio.gather(*pending, return_exceptions=True)
    if failures:
        raise RuntimeError(f"{len(failures)} churn steps failed") from failures[0]
    return done
