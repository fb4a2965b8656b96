"""README commands not run by any other test: the local control plane's own CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.kube import Kube
from tests.cluster.monitoring import ROOT
from tests.e2e.conftest import alive

pytestmark = pytest.mark.timeout(300)


def readme_controlplane_commands() -> list[list[str]]:
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [
        line.split("#")[0].split() for line in lines if "-m tests.cluster.controlplane" in line
    ]
    return [c for c in commands if c[:1] == [".venv/bin/python"]]


def test_the_control_plane_cli_starts_a_usable_cluster_and_stops_it(tmp_path: Path) -> None:
    up, down = readme_controlplane_commands()
    assert (up[-2], down[-2]) == ("up", "down")
    where = str(tmp_path / "kbe")
    run = [sys.executable, *up[1:-1], where]
    started = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=240)
    pids = [
        int(line.split()[0])
        for line in (tmp_path / "kbe" / "pids").read_text().splitlines()
        if line.strip()
    ]
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        kubeconfig = started.stdout.strip().splitlines()[-1]
        assert os.path.exists(kubeconfig)
        nodes = Kube(kubeconfig).get("/api/v1/nodes")["items"]
        assert len(nodes) == 2
    finally:
        stopped = subprocess.run([sys.executable, *down[1:-1], where], cwd=ROOT, timeout=60)
    assert stopped.returncode == 0
    assert pids and not [pid for pid in pids if alive(pid)]
