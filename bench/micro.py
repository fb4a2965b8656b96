"""Memory per tracked object and /metrics build time, on synthetic but realistic objects.

Run: ``make bench-micro`` (or ``python -m bench.micro --jobs 6300``). Prints a markdown table;
the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from exporter.app.settings import Settings
from exporter.app.wiring import build
from exporter.kube.decoding import Decoder, decode_page
from exporter.metrics.registry import Exposition
from exporter.store.caching import ObjectCache
from exporter.store.projecting import PodShape


def job_uid(i: int) -> str:
    """Deterministic Job UIDs, so Pods can point at their Job."""
    return f"00000000-0000-4000-8000-{i:012d}"


def job_body(i: int) -> dict[str, Any]:
    """A CronJob-owned, running Job as the controller creates it."""
    cron = f"cron-{i % 500}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{cron}-{29000000 + i}",
            "namespace": f"team-{i % 40}",
            "uid": job_uid(i),
            "resourceVersion": str(1000 + i),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {
                "batch.kubernetes.io/job-name": f"{cron}-{i}",
                "app": "etl",
                "batch.kubernetes.io/controller-uid": str(uuid.uuid4()),
            },
            "annotations": {
                "batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-01-01T00:00:00Z"
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cron,
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                }
            ],
        },
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 6,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "registry.example/etl:1.2.3",
                            "command": ["python", "-m", "etl"],
                            "env": [{"name": "X", "value": "y"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        }
                    ]
                }
            },
        },
        "status": {"startTime": "2026-01-01T00:00:01Z", "active": 1, "ready": 1, "terminating": 0},
    }


def pod_body(i: int) -> dict[str, Any]:
    """A running Job-owned Pod with one container."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"job-{i}-abcde",
            "namespace": f"team-{i % 40}",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "ownerReferences": [
                {"kind": "Job", "name": f"job-{i}", "uid": job_uid(i), "controller": True}
            ],
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "etl:1"}]},
        "status": {
            "phase": "Running",
            "startTime": "2026-01-01T00:00:01Z",
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": 0,
                    "ready": True,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}},
                }
            ],
        },
    }


def served_pod(i: int) -> dict[str, Any]:
    """:func:`pod_body` as the API server serves it: defaulted spec and ``managedFields``."""
    pod = pod_body(i)
    container = {
        "name": "main",
        "image": "registry.example/etl:1.2.3",
        "command": ["python", "-m", "etl"],
        "env": [{"name": f"VAR_{k}", "value": "value"} for k in range(5)],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [
            {
                "name": "kube-api-access",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    pod["spec"] = {
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [
                {"key": "ca.crt", "path": "ca.crt"}]}},
        ]}}],
        "containers": [container],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "nodeName": "node-1",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300} for t in ("not-ready", "unreachable")
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }  # fmt: skip
    pod["metadata"]["labels"] = {
        "batch.kubernetes.io/controller-uid": job_uid(i),
        "batch.kubernetes.io/job-name": f"job-{i}",
        "controller-uid": job_uid(i),
        "job-name": f"job-{i}",
    }
    tree = {
        "f:metadata": {"f:labels": {f"f:{k}": {} for k in pod["metadata"]["labels"]}},
        "f:spec": {"f:containers": {'k:{"name":"main"}': {f"f:{k}": {} for k in container}}},
    }
    status: dict[str, Any] = {
        "f:status": {
            "f:conditions": {
                f'k:{{"type":"{t}"}}': {"f:status": {}, "f:type": {}}
                for t in ("Initialized", "Ready", "PodScheduled")
            },
            "f:phase": {},
        }
    }
    pod["metadata"]["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
         "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": tree},
        {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
         "time": "2026-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": status,
         "subresource": "status"},
    ]  # fmt: skip
    pod["status"]["conditions"] = [
        {"type": t, "status": "True", "lastProbeTime": None,
         "lastTransitionTime": "2026-01-01T00:00:02Z"}
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]  # fmt: skip
    pod["status"]["hostIP"] = pod["status"]["podIP"] = "10.0.0.1"
    pod["status"]["qosClass"] = "Burstable"
    return pod


def decode_seconds(page: bytes, decode: Callable[[bytes], object], repeat: int = 20) -> float:
    """The best of ``repeat`` decodes of one LIST page (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        decode(page)
        best = min(best, time.perf_counter() - started)
    return best


def bytes_per_object(
    make: Callable[[int], dict[str, Any]], cache: ObjectCache[Any], n: int
) -> float:
    """Memory the exporter keeps per object after the raw dicts are gone.

    The objects arrive as one complete LIST, so the resource counts as synced and its
    families are served (a scrape writes none before every resource is). Tracing starts
    before the dicts are made, so strings a record shares with its dict (UIDs, names) are
    counted, and the dicts themselves are freed before the second reading.
    """
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    bodies = [make(i) for i in range(n)]
    listing = cache.relist(None)
    for body in bodies:
        listing.add(body)
    asyncio.run(listing.commit())
    del bodies, listing  # the cache must not keep the raw dicts
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def scrape_times(exposition: Exposition, scrapes: int, compress: bool) -> list[float]:
    """Seconds per scrape body built, over ``scrapes`` scrapes."""
    times = []
    for _ in range(scrapes):
        started = time.perf_counter()
        asyncio.run(exposition.scrape(False, compress))
        times.append(time.perf_counter() - started)
    return times


def client_python_seconds(text: bytes) -> float:
    """Time client_python's exposition of the same series (the approach we avoid)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.parser import text_string_to_metric_families

    families = []
    for parsed in text_string_to_metric_families(text.decode()):
        if not parsed.name.startswith("kube_batch_job"):
            continue
        labels = sorted(parsed.samples[0].labels) if parsed.samples else []
        family = GaugeMetricFamily(parsed.name, parsed.documentation, labels=labels)
        for sample in parsed.samples:
            family.add_metric([sample.labels[k] for k in labels], sample.value)
        families.append(family)

    class Fixed:
        def collect(self) -> Any:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    started = time.perf_counter()
    generate_latest(registry)
    return time.perf_counter() - started


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=6300, help="~16 series per active Job")
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()

    exporter = build(Settings())
    asyncio.run(exporter.cronjobs.relist(None).commit())
    job_bytes = bytes_per_object(job_body, exporter.jobs, args.jobs)
    raw_jobs = [job_body(args.jobs + i) for i in range(2000)]
    pod_bytes = bytes_per_object(pod_body, exporter.pods, args.jobs)

    text = asyncio.run(exporter.exposition.scrape(False))
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    assert series > args.jobs, "the batch families are not served: is every resource synced?"
    times = scrape_times(exporter.exposition, args.scrapes, compress=False)
    first_gzip = time.perf_counter()
    zipped = asyncio.run(exporter.exposition.scrape(False, compress=True))
    first_gzip = time.perf_counter() - first_gzip
    gzip_times = scrape_times(exporter.exposition, args.scrapes, compress=True)
    baseline = client_python_seconds(text)
    update = []
    for body in raw_jobs:
        started = time.perf_counter()
        exporter.jobs.upsert(body)
        update.append(time.perf_counter() - started)

    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{args.jobs} active Jobs, {args.scrapes} scrapes\n"
    )
    print("| measure | value |\n|---|---|")
    print(
        "| memory per tracked Job (record, rendered lines, tracker index) | "
        f"{job_bytes / 1024:.2f} KiB |"
    )
    print(f"| memory per tracked Pod (record, tracker bookkeeping) | {pod_bytes:.0f} B |")
    print(f"| series in /metrics | {series} |")
    print(f"| bytes per scrape | {len(text) / 2**20:.1f} MiB |")
    print(
        f"| scrape build p50 / max | {statistics.median(times) * 1000:.1f} ms / "
        f"{max(times) * 1000:.1f} ms |"
    )
    print(f"| bytes per scrape, gzip | {len(zipped) / 2**20:.2f} MiB |")
    print(f"| gzip scrape, first (every family compressed) | {first_gzip * 1000:.0f} ms |")
    print(
        f"| gzip scrape p50 / max, nothing changed | {statistics.median(gzip_times) * 1000:.1f} ms"
        f" / {max(gzip_times) * 1000:.1f} ms |"
    )
    print(
        f"| same series via client_python generate_latest (for comparison) | "
        f"{baseline * 1000:.0f} ms |"
    )
    print(f"| Job add (project + render) p50 | {statistics.median(update) * 1e6:.0f} µs |")
    pods = [served_pod(i) for i in range(500)]
    page = json.dumps({"kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": pods})
    full = decode_seconds(page.encode(), decode_page)
    typed = decode_seconds(page.encode(), Decoder(PodShape).page)
    each = len(page) / len(pods) / 1024
    print(
        f"| decode a LIST page of 500 Pods ({each:.1f} KiB each), json.loads, per Pod | "
        f"{full / len(pods) * 1e6:.1f} µs |"
    )
    print(f"| the same, msgspec into the fields project_pod reads, per Pod | "
          f"{typed / len(pods) * 1e6:.1f} µs ({full / typed:.1f}x less) |")  # fmt: skip


if __name__ == "__main__":
    main()
