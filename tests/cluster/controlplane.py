"""Start and stop a local control plane: etcd, kube-apiserver, kube-controller-manager, kwok.

Everything runs on free loopback ports inside one work directory that holds the PKI, the
admin kubeconfig, logs and a ``pids`` file, so ``down`` can stop a cluster another process
started. Start-up waits on each component's readiness (etcd ``/health``, apiserver
``/readyz``, the controller-manager creating the ``default`` ServiceAccount, kwok marking the
nodes Ready), never on fixed sleeps.

Usage: ``python -m tests.cluster.controlplane up DIR [--nodes N]`` / ``down DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = HERE / "stages.yaml"
CONTROLLERS = ",".join(
    [
        "job-controller",
        "cronjob-controller",
        "ttl-after-finished-controller",
        "garbage-collector-controller",
        "serviceaccount-controller",
        "namespace-controller",
    ]
)


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build() -> Path:
    """Build (or find cached) binaries; return their directory."""
    out = subprocess.run(
        ["bash", str(HERE / "build.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def tool(name: str) -> Path:
    """A helper built from its Go module (build-tool.sh, cached by version): its path, or the
    directory of its commands (prometheus, alertmanager, monitoring-crds)."""
    out = subprocess.run(
        ["bash", str(HERE / "build-tool.sh"), name], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    procs: list[subprocess.Popen[bytes]],
    logs: Path,
) -> None:
    """Poll a readiness check; fail fast with the log tail if a process died meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{command_name(proc)} exited with {proc.returncode} while waiting "
                    f"for {what}; see {logs}"
                )
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s; see {logs}")
        time.sleep(0.1)


class LocalCluster:
    """One control plane in ``workdir``; :meth:`start`, then :meth:`stop`."""

    def __init__(
        self, workdir: Path, bin_dir: Path, nodes: int = 2, env: Mapping[str, str] | None = None
    ) -> None:
        """``env``: added to the components' environment (the benchmark bounds Go's heap)."""
        self.dir = workdir
        self.env = {**os.environ, **(env or {})}
        self.bin = bin_dir
        self.nodes = [f"kwok-node-{i}" for i in range(nodes)]
        self.pki = workdir / "pki"
        self.logs = workdir / "logs"
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server = ""
        self._args: dict[str, tuple[str, ...]] = {}

    # -- PKI and kubeconfig -----------------------------------------------------------------
    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.pki)

    def _make_pki(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        self._openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=kbe-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        )
        sans = "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
        (self.pki / "san.ext").write_text(sans + "\n")
        for name, subject, ext in (
            ("apiserver", "/CN=kube-apiserver", ["-extfile", "san.ext"]),
            ("admin", "/O=system:masters/CN=kbe-admin", []),
        ):
            self._openssl(
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                f"{name}.key",
                "-out",
                f"{name}.csr",
            )
            self._openssl(
                "x509",
                "-req",
                "-in",
                f"{name}.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "365",
                "-out",
                f"{name}.crt",
                *ext,
            )
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")

    def _write_kubeconfig(self) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "kbe-local",
            "clusters": [
                {
                    "name": "kbe-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki / "admin.crt"),
                        "client-key": str(self.pki / "admin.key"),
                    },
                }
            ],
            "contexts": [
                {"name": "kbe-local", "context": {"cluster": "kbe-local", "user": "admin"}}
            ],
        }
        self.kubeconfig.write_text(json.dumps(doc, indent=2))

    # -- API helper -----------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One admin request to the apiserver; returns the decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, context=self._ssl(), timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    # -- processes ------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._args[name] = args
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            [str(self.bin / name), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env,
        )
        self.procs.append(proc)
        with open(self.dir / "pids", "a") as pids:
            pids.write(f"{proc.pid} {name}\n")
        return proc

    def start(self) -> None:
        """Bring the whole control plane up; raises with a pointer to logs on failure."""
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "pids").write_text("")
        self._make_pki()
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig()
        try:
            self._start_processes(etcd_port, peer_port, api_port)
        except BaseException:
            self.stop()
            raise
        log(
            f"control plane ready in {time.monotonic() - started:.1f}s at {self.server} "
            f"(kubeconfig {self.kubeconfig})"
        )

    def _start_processes(self, etcd_port: int, peer_port: int, api_port: int) -> None:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            "--data-dir",
            str(self.dir / "etcd"),
            "--name",
            "kbe",
            "--listen-client-urls",
            etcd_url,
            "--advertise-client-urls",
            etcd_url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"kbe=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
        )
        wait_until("etcd", lambda: _http_ok(etcd_url + "/health"), 30, self.procs, self.logs)
        log("etcd ready")
        p = self.pki
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
        )
        wait_until("kube-apiserver", lambda: self._readyz(), 120, self.procs, self.logs)
        log("kube-apiserver ready")
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            f"--controllers={CONTROLLERS}",
        )
        wait_until(
            "kube-controller-manager (default ServiceAccount)",
            lambda: bool(self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")),
            120,
            self.procs,
            self.logs,
        )
        log("kube-controller-manager ready")
        self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=true",
            f"--config={STAGES}",
            "--cidr=10.244.0.0/16",
            f"--server-address=127.0.0.1:{free_port()}",
        )
        for node in self.nodes:
            self.api(
                "POST",
                "/api/v1/nodes",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node,
                        "labels": {"type": "kwok"},
                        "annotations": {"kwok.x-k8s.io/node": "fake"},
                    },
                },
            )
        wait_until("kwok nodes", self._nodes_ready, 60, self.procs, self.logs)
        log(f"kwok ready with {len(self.nodes)} nodes")

    def _readyz(self) -> bool:
        req = urllib.request.Request(self.server + "/readyz")
        try:
            with urllib.request.urlopen(req, context=self._ssl(), timeout=2) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError:
            return False

    def _nodes_ready(self) -> bool:
        items = self.api("GET", "/api/v1/nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return ready >= set(self.nodes)

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. to simulate a controller-manager outage)."""
        for proc in [p for p in self.procs if command_name(p) == name]:
            proc.terminate()
            proc.wait(timeout=15)
            self.procs.remove(proc)
        log(f"{name} stopped")

    def start_component(self, name: str) -> None:
        """Start a component stopped by :meth:`stop_component` again, with the same flags."""
        self._spawn(name, *self._args[name])
        log(f"{name} started again")

    def stop(self) -> None:
        """Stop every recorded process (reverse start order)."""
        stop_recorded(self.dir)
        self.procs.clear()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def command_name(proc: subprocess.Popen[bytes]) -> str:
    """The program a process was started from, e.g. ``kube-apiserver``."""
    args = proc.args
    first = args[0] if isinstance(args, list | tuple) else args
    return Path(str(first)).name


def stop_recorded(workdir: Path, grace: float = 10.0) -> None:
    """SIGTERM the PIDs in ``workdir/pids``, newest first; SIGKILL what outlives ``grace``."""
    pid_file = workdir / "pids"
    if not pid_file.exists():
        return
    pids = [int(line.split()[0]) for line in pid_file.read_text().splitlines() if line.strip()]
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file.write_text("")


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to a signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.controlplane")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build if needed and start a cluster in DIR")
    up.add_argument("dir", type=Path)
    up.add_argument("--nodes", type=int, default=2)
    down = sub.add_parser("down", help="stop the cluster recorded in DIR")
    down.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "down":
        stop_recorded(args.dir)
        return 0
    cluster = LocalCluster(args.dir.resolve(), build(), args.nodes)
    cluster.start()
    print(cluster.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
