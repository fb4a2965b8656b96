"""A real Prometheus and Alertmanager for tests and the demo.

The tests run Prometheus 3 and the current Alertmanager, built from their Go modules
(build-tool.sh); the demo passes Debian's packages instead, whose web UIs are built (see
README). Prometheus scrapes the exporter as scrape job ``kube-batch-exporter`` and loads the
bundled rules from alerts/; Alertmanager runs the shipped example configuration
(deploy/alertmanager/) with its receivers pointed at a webhook. Both run on free loopback ports
in a work directory and start up waiting on their ``/-/ready`` endpoints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.controlplane import free_port, log, tool, wait_until

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "alerts").glob("*.yaml"))
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yaml"
SCRAPE_JOB = yaml.safe_load((ROOT / "deploy/prometheus/scrape-config.yaml").read_text())[
    "scrape_configs"
][0]
"""The shipped scrape job; its target discovery is replaced by static targets here."""


def debian(program: str) -> str:
    """A program of a Debian package of the same name (the demo's, for their web UIs)."""
    path = shutil.which(program)
    if not path:
        raise FileNotFoundError(f"{program} not found: install the Debian package {program!r}")
    return path


def _start(workdir: Path, url: str, program: str, args: list[str]) -> subprocess.Popen[bytes]:
    """Start a program, wait for its ``/-/ready``."""
    out = open(workdir / "log", "wb")  # noqa: SIM115 - lives as long as the child
    proc = subprocess.Popen([program, *args], stdout=out, stderr=subprocess.STDOUT)
    name = Path(program).name
    wait_until(name, lambda: _ready(url), 60, [proc], workdir / "log")
    log(f"{name} ready at {url}")
    return proc


def alertmanager_config(webhook_url: str | None) -> dict[str, Any]:
    """The shipped example, every receiver sending to ``webhook_url`` (or nowhere), fast.

    The routes, grouping and inhibit rules stay as shipped, so the live tests exercise them;
    only the delivery and the waits (30 s, 5 min: seconds here) change.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.pop("webhook_configs", []):
            if webhook_url:
                receiver.setdefault("webhook_configs", []).append({**hook, "url": webhook_url})
    config["route"].update(group_wait="1s", group_interval="1s")
    return config


class Alertmanager:
    """Alertmanager on the shipped configuration; the receivers send to a webhook, or nowhere."""

    def __init__(
        self,
        workdir: Path,
        webhook_url: str | None,
        port: int | None = None,
        program: str | None = None,
    ) -> None:
        self.dir = workdir / "alertmanager"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.program = program or str(tool("alertmanager") / "alertmanager")
        config = alertmanager_config(webhook_url)
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = _start(
            self.dir,
            self.url,
            self.program,
            [
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
        )

    def stop(self) -> None:
        _stop(self.proc)


class Prometheus:
    """Prometheus scraping the exporter (every replica) and evaluating the bundled rules."""

    def __init__(
        self,
        workdir: Path,
        exporter_url: str | list[str],
        alertmanager_url: str,
        interval: str = "2s",
        port: int | None = None,
        program: str | None = None,
    ) -> None:
        self.dir = workdir / "prometheus"
        self.program = program or str(tool("prometheus") / "prometheus")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        urls = [exporter_url] if isinstance(exporter_url, str) else exporter_url
        job = {
            "job_name": SCRAPE_JOB["job_name"],
            "static_configs": [{"targets": [url.removeprefix("http://") for url in urls]}],
            "metric_relabel_configs": SCRAPE_JOB["metric_relabel_configs"],
        }
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in RULES],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
                ]
            },
            "scrape_configs": [job],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = _start(
            self.dir,
            self.url,
            self.program,
            [
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
        )

    def _api(self, path: str, params: dict[str, str]) -> list[Any]:
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns the result vector."""
        return self._api("query", {"query": promql, **({"time": str(at)} if at else {})})

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Any]:
        """A range query; returns the result matrix."""
        params = {"query": promql, "start": str(start), "end": str(end), "step": str(step)}
        return self._api("query_range", params)

    def stop(self) -> None:
        _stop(self.proc)


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
        return bool(resp.status == 200)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
