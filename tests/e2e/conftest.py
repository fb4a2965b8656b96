"""Fixtures for the e2e suite: a real control plane, the exporter, fresh namespaces.

The cluster is the module-built local control plane (tests/cluster), started once per
session, or any cluster whose kubeconfig is in ``KBE_E2E_KUBECONFIG``. Without Go the suite
fails loudly under CI (``CI`` set) and skips with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.cluster.controlplane import LocalCluster, build, free_port
from tests.cluster.kube import Kube

pytestmark = pytest.mark.e2e

NEW_SERIES_DELAY = "5s"
"""--new-series-delay of every exporter the e2e tests start."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


class Cluster:
    def __init__(self, kubeconfig: Path, local: bool) -> None:
        self.kubeconfig = kubeconfig
        self.local = local
        """True for the kwok control plane: pods need spec.nodeName (there is no scheduler)."""
        self.kube = Kube(str(kubeconfig))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    external = os.environ.get("KBE_E2E_KUBECONFIG")
    if external:
        yield Cluster(Path(external), local=False)
        return
    if not shutil.which("go"):
        reason = (
            "e2e tests need Go (>= 1.26) to build the local control plane, or a cluster "
            "in KBE_E2E_KUBECONFIG"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), build())
    local.start()
    try:
        yield Cluster(local.kubeconfig, local=True)
    finally:
        local.stop()


class Exporter:
    """The exporter CLI running as a subprocess against the cluster."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        *args: str,
        tls: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None,
        launcher: tuple[str, ...] = (sys.executable, "-m", "exporter"),
        port: int | None = None,
    ) -> None:
        """Start it; ``tls`` and ``headers`` are how the helper reaches a secured endpoint,
        ``launcher`` the command the flags are appended to, ``port`` where it listens (the
        one of a predecessor, for a scraper that must find it again)."""
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.tls, self.headers = tls, headers or {}
        self.log = log
        self._log_file = log.open("wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                *launcher,
                "--kubeconfig",
                str(kubeconfig),
                "--listen",
                f"127.0.0.1:{self.port}",
                # above the test Prometheus' 2 s scrape interval, as the flag asks, and short
                # enough that a run shows within the tests' deadlines
                "--new-series-delay",
                NEW_SERIES_DELAY,
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(
            self.url + path, headers=self.headers if headers is None else headers
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=self.tls) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 60) -> None:
        eventually(lambda: self._ready(), timeout, f"exporter ready (log {self.log})")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"exporter exited: {self.log.read_text()[-2000:]}"
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def samples(self, name: str, namespace: str) -> list[Sample]:
        """Samples named ``name`` (``x_total``, ``x_bucket`` ... included) in ``namespace``."""
        _, text = self.get("/metrics")
        return [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and s.labels.get("namespace") == namespace
        ]

    def own(self, name: str, **labels: str) -> float | None:
        """A self-metric sample (those have no namespace)."""
        _, text = self.get("/metrics")
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def value(self, name: str, namespace: str, **labels: str) -> float | None:
        for sample in self.samples(name, namespace):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        return None

    def kill(self) -> None:
        """SIGKILL: no last checkpoint, no goodbye."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log_file.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            self._log_file.close()


def eventually(check: Any, timeout: float, what: str) -> None:
    """Poll an observable condition until it holds (HTTP has no change notification)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except AssertionError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}") from last


@pytest.fixture(scope="session")
def exporter(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    log = tmp_path_factory.mktemp("exporter") / "exporter.log"
    proc = Exporter(cluster.kubeconfig, log)
    try:
        proc.wait_ready()
        yield proc
    finally:
        assert proc.stop() == 0, log.read_text()[-2000:]


@contextlib.contextmanager
def private_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, name: str
) -> Iterator[tuple[LocalCluster, Cluster]]:
    """A local control plane of a module's own, for scenarios that stop its components."""
    if not cluster.local:
        pytest.skip(reason="stops the controller-manager: needs the local control plane")
    local = LocalCluster(tmp_path_factory.mktemp(name), build())
    local.start()
    try:
        yield local, Cluster(local.kubeconfig, local=True)
    finally:
        local.stop()


def wait_for_clock(instant: float) -> None:
    """Let wall-clock time reach ``instant``: how long a scenario's outage or pause lasts."""
    while time.time() < instant:
        time.sleep(min(1.0, instant - time.time()))


def alive(pid: int) -> bool:
    """The process still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def new_namespace(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    # the serviceaccount controller must create "default" before pods can be admitted
    eventually(lambda: _has_default_sa(cluster, name), 30, f"default SA in {name}")
    return name


def _has_default_sa(cluster: Cluster, namespace: str) -> bool:
    try:
        cluster.kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        return True
    except Exception:
        return False


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = new_namespace(cluster, "e2e")
    yield name
    cluster.kube.delete(f"/api/v1/namespaces/{name}")


def pod_template(
    cluster: Cluster,
    run_for: str = "1s",
    exit_code: int = 0,
    reason: str = "Error",
    manual: bool = False,
) -> dict[str, Any]:
    """A pod that runs ``run_for`` then exits: really (any cluster) and via kwok stages."""
    seconds = int(max(1.0, float(run_for.rstrip("ms")) / (1000 if run_for.endswith("ms") else 1)))
    annotations = {"kube-batch-exporter.test/run-for": run_for}
    if exit_code:
        annotations["kube-batch-exporter.test/exit-code"] = str(exit_code)
        annotations["kube-batch-exporter.test/reason"] = reason
    if manual:  # the test writes each attempt's final status itself
        annotations["kube-batch-exporter.test/manual"] = "true"
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "work",
                "image": "busybox:1.36",
                "command": ["sh", "-c", f"sleep {seconds}; exit {exit_code}"],
            }
        ],
    }
    if cluster.local:
        spec["nodeName"] = "kwok-node-0"
    return {"metadata": {"annotations": annotations}, "spec": spec}
