"""``kube-batch-exporter report`` when the cluster cannot be listed (the rest runs against the
demo's control plane in tests/e2e/test_demo.py)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import yaml

from exporter.app.reporting import UNREACHABLE, report
from exporter.app.settings import Settings
from tests.cluster.controlplane import free_port
from tests.fakeapi import kubeconfig


def test_a_cluster_that_cannot_be_listed_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{free_port()}")))
    settings = Settings(kubeconfig=str(path), list_timeout=1.0, backoff_cap=0.2)
    out = io.StringIO()
    assert asyncio.run(report(settings, "table", out)) == UNREACHABLE
    assert out.getvalue() == ""  # nothing half-listed is printed
