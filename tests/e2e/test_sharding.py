"""Sharding on a real control plane: three shards export exactly what one exporter does.

Six namespaces, two hashing to each of three shards, each with a CronJob and two finished
Jobs (one succeeded, one failed). One unsharded exporter and three shards then start at the
same moment, so all four see the same history. The union of the shards' batch series must
equal the unsharded exporter's (names, labels and values; the clock-dependent families are
left out, they move between two scrapes), every namespace must be on exactly the shard its
name hashes to, and each shard must list only its own namespaces' objects (server-side).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app.sharding import shard_of
from exporter.metrics.registry import GROUPS
from tests.cluster.objects import cronjob, job
from tests.e2e.conftest import Cluster, Exporter, eventually, pod_template

SHARDS = 3
LIVE = {f.name for group in GROUPS for f in group.live}
"""Families computed from the clock at each scrape: equal only at the same instant."""
Series = frozenset[tuple[str, tuple[tuple[str, str], ...], float]]


def names_per_shard(per_shard: int) -> list[str]:
    """Namespace names, ``per_shard`` hashing to each shard (so none is left empty)."""
    chosen: dict[int, list[str]] = {i: [] for i in range(SHARDS)}
    while any(len(names) < per_shard for names in chosen.values()):
        name = f"shard-{uuid.uuid4().hex[:6]}"
        if len(found := chosen[shard_of(name, SHARDS)]) < per_shard:
            found.append(name)
    return sorted(n for names in chosen.values() for n in names)


@pytest.fixture(scope="module")
def fleet(cluster: Cluster) -> Iterator[list[str]]:
    namespaces = names_per_shard(2)
    for ns in namespaces:
        cluster.kube.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        jobs = f"/apis/batch/v1/namespaces/{ns}/jobs"
        cluster.kube.create(jobs, job("fine", pod_template(cluster)))
        cluster.kube.create(jobs, job("broken", pod_template(cluster, exit_code=1), backoffLimit=0))
        cluster.kube.create(
            f"/apis/batch/v1/namespaces/{ns}/cronjobs",
            cronjob("nightly", "0 3 * * *", pod_template(cluster)),
        )
    yield namespaces
    for ns in namespaces:
        cluster.kube.delete(f"/api/v1/namespaces/{ns}")


def batch_series(exporter: Exporter, namespaces: list[str]) -> Series:
    """The batch series of ``namespaces`` in one scrape, less the clock-dependent ones."""
    _, text = exporter.get("/metrics")
    return frozenset(
        (s.name, tuple(sorted(s.labels.items())), float(s.value))
        for family in text_string_to_metric_families(text)
        if family.name not in LIVE
        for s in family.samples
        if s.labels.get("namespace") in namespaces
    )


def finished(exporter: Exporter, namespaces: list[str]) -> bool:
    """Both Jobs of every namespace are finished in ``exporter``'s eyes."""
    for ns in namespaces:
        for name, state in (("fine", "succeeded"), ("broken", "failed")):
            if exporter.value("kube_batch_job_state", ns, job_name=name, state=state) != 1:
                return False
    return True


def test_three_shards_export_exactly_what_one_exporter_does(
    cluster: Cluster, fleet: list[str], exporter: Exporter, tmp_path: Path
) -> None:
    eventually(lambda: finished(exporter, fleet), 120, "every Job of the fleet finished")
    whole = Exporter(cluster.kubeconfig, tmp_path / "whole.log")
    shards = [
        Exporter(
            cluster.kubeconfig,
            tmp_path / f"shard-{i}.log",
            *("--total-shards", str(SHARDS), "--shard", str(i)),
        )
        for i in range(SHARDS)
    ]
    try:
        for proc in (whole, *shards):
            proc.wait_ready()
        seen: list[Series] = []

        def same() -> bool:
            seen[:] = [batch_series(shard, fleet) for shard in shards]
            expected = batch_series(whole, fleet)
            assert frozenset().union(*seen) == expected, "the shards differ from one exporter"
            return bool(expected)

        eventually(same, 30, "the shards' series to equal the unsharded exporter's")
        for i, series in enumerate(seen):
            namespaces = {dict(labels)["namespace"] for _, labels, _ in series}
            assert namespaces == {ns for ns in fleet if shard_of(ns, SHARDS) == i}

        def split() -> bool:  # each shard listed its own namespaces' Jobs, and only those
            listed = [shard.own("kube_batch_exporter_objects", resource="jobs") for shard in shards]
            total = whole.own("kube_batch_exporter_objects", resource="jobs")
            return all(listed) and sum(n or 0 for n in listed) == total

        eventually(split, 30, "the shards' Job counts to add up to the unsharded one")
    finally:
        for proc in (whole, *shards):
            assert proc.stop() == 0, proc.log.read_text()[-2000:]
