"""The shipped deploy files, proven on the real apiserver (RBAC on).

- kustomize (base and overlays) and Helm output (several value sets) pass
  ``kubectl apply --dry-run=server``, with prometheus-operator's CRDs generated from its
  published API types, so ServiceMonitor and PrometheusRule are checked against real schemas.
- The exporter runs with a token of the shipped ServiceAccount under the shipped ClusterRole,
  state Role and Lease Role, with leader election, behind TLS and basic auth: fully
  functional; an unauthenticated scrape is refused; without the binding it reports the
  permission error in its log and on /readyz, and recovers when the binding is back; secret
  values in a Job's env and annotations never appear in /metrics or in its debug log.
- The image's install recipe (wheels-only venv, pip removed) runs as uid 65534 on a
  read-only root filesystem.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.certs import self_signed
from tests.cluster.controlplane import build, tool
from tests.cluster.monitoring import ROOT
from tests.e2e.conftest import Cluster, Exporter, eventually, new_namespace, pod_template

pytestmark = pytest.mark.timeout(600)

CHART = ROOT / "deploy" / "helm" / "kube-batch-exporter"
KUSTOMIZE = ROOT / "deploy" / "kustomize"
PASSWORD = "scrape-" + uuid.uuid4().hex
STATE = "kube-batch-exporter-state"
"""The checkpoint's ConfigMap in the shipped manifests."""
HELM_VALUES = {
    "defaults": [],
    "namespaced, everything on": [
        "--set", "namespaces={team-a,team-b}",
        "--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboards.enabled=true",
        "--set", "webConfig.secretName=kbe-web-config",
        "--set", "extraArgs={--missed-grace=2m}",
        "--set", "nodeSelector.kubernetes\\.io/os=linux",
        "--set", "tolerations[0].key=batch,tolerations[0].operator=Exists",
    ],
    "two replicas": ["--set", "replicas=2"],
    "three shards": ["--set", "shards=3"],
}  # fmt: skip


class Kubectl:
    """kubectl with the admin kubeconfig of the test cluster."""

    def __init__(self, cluster: Cluster) -> None:
        found = str(build() / "kubectl") if cluster.local else shutil.which("kubectl")
        assert found, "kubectl not found"
        self.path, self.kubeconfig = found, str(cluster.kubeconfig)

    def __call__(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [self.path, "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    kubectl = Kubectl(cluster)
    crds = Path(tool("monitoring-crds"))
    for crd in sorted(crds.glob("*.yaml")):
        kubectl("apply", "--server-side", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com")  # fmt: skip
    existing = kubectl("get", "namespaces", "-o", "name").split()
    for ns in ("monitoring", "team-a", "team-b"):
        if f"namespace/{ns}" not in existing:
            kubectl("create", "namespace", ns)
    return kubectl


def dry_run(kubectl: Kubectl, manifests: str) -> list[str]:
    """Server-side dry run of every object; returns the kind/name lines kubectl printed."""
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifests)
    return [line.split()[0] for line in out.splitlines() if "(server dry run)" in line]


def kinds(manifests: str) -> list[str]:
    return sorted(d["kind"] for d in yaml.safe_load_all(manifests) if d)


JUSTIFIED = set(re.findall(r"^- \*\*(.+?)\.?\*\*", (CHART / "README.md").read_text(), re.MULTILINE))
"""The kube-score findings the chart README keeps on purpose, each with its reason."""


def assert_kube_score_finds_only_the_justified(manifests: str) -> None:
    """kube-score's warnings and criticals are only those the chart README justifies."""
    result = subprocess.run(
        [str(tool("kube-score")), "score", "--output-format", "ci", "-"],
        input=manifests,
        capture_output=True,
        text=True,
    )
    findings = {
        re.sub(r"^\([^)]*\) ", "", line.split(": ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith(("[CRITICAL]", "[WARNING]"))
    }
    assert findings, result.stdout + result.stderr  # no CPU limit, on purpose: never empty
    assert findings <= JUSTIFIED, result.stdout


@pytest.mark.parametrize(
    "overlay",
    [
        "base",
        "overlays/namespaced",
        "overlays/prometheus-operator",
        "overlays/ha",
        "overlays/sharded",
    ],
)
def test_kustomize_output_passes_a_server_dry_run(kubectl: Kubectl, overlay: str) -> None:
    manifests = kubectl("kustomize", str(KUSTOMIZE / overlay))
    accepted = dry_run(kubectl, manifests)
    assert len(accepted) == len(kinds(manifests)) > 0
    if overlay == "overlays/namespaced":
        assert "ClusterRole" not in kinds(manifests) and kinds(manifests).count("Role") == 3
    if overlay == "overlays/prometheus-operator":
        assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds(manifests))
    if overlay == "overlays/sharded":
        assert_sharded(manifests, "kube-batch-exporter-state", shards=3)
    else:
        assert_high_availability(manifests, replicas=2 if overlay == "overlays/ha" else 1)
    assert "NetworkPolicy" in kinds(manifests)
    assert_kube_score_finds_only_the_justified(manifests)


def assert_high_availability(manifests: str, replicas: int) -> None:
    """One replica without election; more with it, a PDB, anti-affinity and the Lease Role."""
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert deployment["spec"]["replicas"] == replicas
    assert ("--leader-elect" in args) == (replicas > 1)
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    lease_rules = [
        rule
        for d in docs
        if d["kind"] == "Role"
        for rule in d["rules"]
        if "leases" in rule["resources"]
    ]
    if replicas == 1:
        assert not pdbs and not lease_rules
        return
    assert [p["spec"]["maxUnavailable"] for p in pdbs] == [1]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    named = [r for r in lease_rules if r.get("resourceNames")]
    assert [(r["resourceNames"], sorted(r["verbs"])) for r in named] == [
        ([lease_name(args)], ["get", "update"])
    ]
    assert [r["verbs"] for r in lease_rules if not r.get("resourceNames")] == [["create"]]


def assert_sharded(manifests: str, state: str, shards: int) -> None:
    """A StatefulSet of ``shards`` pods sharding by ordinal, allowed to list namespaces and
    to write every shard's checkpoint, one at a time disrupted, no Deployment, no election."""
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    assert "Deployment" not in kinds(manifests)
    assert [d["spec"]["maxUnavailable"] for d in docs if d["kind"] == "PodDisruptionBudget"] == [1]
    (statefulset,) = [d for d in docs if d["kind"] == "StatefulSet"]
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    assert statefulset["spec"]["replicas"] == shards
    assert f"--total-shards={shards}" in args and "--pod=$(POD_NAME)" in args
    assert any(a.startswith("--pod-namespace=") for a in args) and "--leader-elect" not in args
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert {"resources": ["namespaces"], "verbs": ["list"], "apiGroups": [""]} in cluster_role[
        "rules"
    ]
    names = {
        n
        for d in docs
        if d["kind"] == "Role"
        for r in d["rules"]
        for n in r.get("resourceNames", [])
    }
    assert {f"{state}-shard-{i}" for i in range(shards)} <= names
    assert {f"{state}-shard-{i}-b-9" for i in range(shards)} <= names


def lease_name(args: list[str]) -> str:
    named = [a.split("=", 1)[1] for a in args if a.startswith("--leader-elect-resource-name=")]
    return named[0] if named else "kube-batch-exporter"


@pytest.mark.parametrize("values", sorted(HELM_VALUES))
def test_helm_output_passes_lint_and_a_server_dry_run(kubectl: Kubectl, values: str) -> None:
    helm = tool("helm")
    args = HELM_VALUES[values]
    lint = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *args], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifests = subprocess.run(
        [helm, "template", "kbe", str(CHART), "--namespace", "monitoring", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    accepted = dry_run(kubectl, manifests)
    assert len(accepted) == len(kinds(manifests)) > 0
    if values == "three shards":
        assert_sharded(manifests, "kbe-kube-batch-exporter-state", shards=3)
    else:
        assert_high_availability(manifests, replicas=2 if values == "two replicas" else 1)
    assert "NetworkPolicy" in kinds(manifests)  # on by default
    assert_kube_score_finds_only_the_justified(manifests)
    if values == "namespaced, everything on":
        assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Role"} <= set(kinds(manifests))
        deployment = next(
            d for d in yaml.safe_load_all(manifests) if d and d["kind"] == "Deployment"
        )
        assert (
            "--namespaces=team-a,team-b"
            in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        )


def readme_install_commands() -> list[str]:
    """The shell commands of README.md's "Install in a cluster" section, one per line."""
    section = (ROOT / "README.md").read_text().split("## Install in a cluster")[1]
    section = re.split(r"\n##+ ", section)[0]  # up to the next heading (Securing has its own test)
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                commands.append(" ".join(command.split()))
    return commands


def test_the_readme_install_commands_pass_a_server_dry_run(
    cluster: Cluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    """What a user pastes from the README, with kubectl and helm as built here, dry-run."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "kubectl").symlink_to(kubectl.path)
    (tools / "helm").symlink_to(tool("helm"))
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "KUBECONFIG": kubectl.kubeconfig}
    commands = readme_install_commands()
    assert len(commands) == 6, commands
    for command in commands:
        dry = command.replace("kubectl apply -f -", "kubectl apply --dry-run=server -f -")
        if dry.startswith("kubectl create namespace"):
            dry += " --dry-run=client"  # it exists already; only the syntax is at stake
        assert "--dry-run" in dry, command
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", dry], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert "created" in done.stdout or "configured" in done.stdout, done.stdout


def _shipped_rbac(kubectl: Kubectl) -> str:
    """The ServiceAccount, roles and bindings of the ha overlay: the base's (the checkpoint's
    too) and the Lease's."""
    docs = yaml.safe_load_all(kubectl("kustomize", str(KUSTOMIZE / "overlays/ha")))
    keep = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    return yaml.safe_dump_all([d for d in docs if d["kind"] in keep])


def _token_kubeconfig(cluster: Cluster, kubectl: Kubectl, path: Path) -> Path:
    token = kubectl("create", "token", "kube-batch-exporter", "-n", "monitoring", "--duration=2h")
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "kube-batch-exporter", "user": {"token": token.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": "kube-batch-exporter"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _web_config(work: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = self_signed(work)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = work / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    return web, ssl.create_default_context(cafile=str(cert))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured(
    cluster: Cluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The exporter as deployed: SA token under the shipped ClusterRole, TLS, basic auth."""
    work = tmp_path_factory.mktemp("secured")
    rbac = _shipped_rbac(kubectl)
    kubectl("apply", "-f", "-", stdin=rbac)
    web, tls = _web_config(work)
    exporter = Exporter(
        _token_kubeconfig(cluster, kubectl, work / "sa.kubeconfig"),
        work / "exporter.log",
        "--web-config-file", str(web),
        "--log-level", "debug",
        "--watch-timeout", "10s",
        "--state-configmap", f"monitoring/{STATE}",
        "--state-interval", "2s",
        "--leader-elect", "--pod", "secured-0",  # the Lease Role is enough too
        tls=tls,
        headers=basic("prometheus", PASSWORD),
    )  # fmt: skip
    try:
        exporter.wait_ready()
        yield {"exporter": exporter, "rbac": rbac}
    finally:
        assert exporter.stop() == 0, exporter.log.read_text()[-2000:]
        kubectl("apply", "-f", "-", stdin=rbac)  # leave the binding as the next test expects


def _run_counted(
    cluster: Cluster, exporter: Exporter, ns: str, name: str, job: dict[str, Any]
) -> None:
    cluster.kube.create(f"/apis/batch/v1/namespaces/{ns}/jobs", job)
    eventually(
        lambda: (
            exporter.value("kube_batch_runs_total", ns, owner_name=name, result="succeeded") == 1
        ),
        60,
        f"the run of {name} counted",
    )


def test_the_shipped_role_is_enough_and_secrets_never_leak(
    cluster: Cluster, kubectl: Kubectl, secured: dict[str, Any]
) -> None:
    exporter: Exporter = secured["exporter"]
    ns = new_namespace(cluster, "deploy")
    env_secret, annotation_secret = f"env-{uuid.uuid4().hex}", f"ann-{uuid.uuid4().hex}"
    template = pod_template(cluster, "1s")
    template["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": env_secret}]
    template["metadata"]["annotations"]["vault.example/token"] = annotation_secret
    job = {
        "metadata": {"name": "export", "annotations": {"vault.example/token": annotation_secret}},
        "spec": {"backoffLimit": 0, "template": template},
    }
    _run_counted(cluster, exporter, ns, "export", job)
    assert exporter.own("kube_batch_exporter_leader") == 1  # the Lease Role let it lead
    assert exporter.own("kube_batch_exporter_errors_total", kind="lease") == 0
    status, metrics = exporter.get("/metrics")
    assert status == 200 and 'job_name="export"' in metrics
    assert exporter.value("kube_batch_exporter_synced", "", resource="pods") is None  # no ns label
    log = exporter.log.read_text()
    assert "DEBUG" in log  # the strictest log level was on

    def checkpoint() -> bytes:
        found = json.loads(kubectl("get", "configmap", STATE, "-n", "monitoring", "-o", "json"))
        return gzip.decompress(base64.b64decode(found["binaryData"]["checkpoint"]))

    eventually(lambda: ns.encode() in checkpoint(), 30, "the run in the checkpoint ConfigMap")
    for secret in (env_secret, annotation_secret):
        assert secret not in metrics
        assert secret not in log
        assert secret.encode() not in checkpoint()


def test_scrapes_need_tls_and_the_password(secured: dict[str, Any]) -> None:
    exporter: Exporter = secured["exporter"]
    assert exporter.get("/metrics", headers={})[0] == 401
    assert exporter.get("/metrics", headers=basic("prometheus", "guess"))[0] == 401
    assert exporter.get("/metrics")[0] == 200
    assert exporter.get("/readyz", headers={})[0] == 200  # probes stay open
    with pytest.raises(OSError):
        urllib.request.urlopen(exporter.url.replace("https", "http") + "/metrics", timeout=5)
    assert PASSWORD not in exporter.log.read_text()


def test_a_missing_binding_is_reported_and_recovered_from(
    cluster: Cluster, kubectl: Kubectl, secured: dict[str, Any]
) -> None:
    exporter: Exporter = secured["exporter"]
    kubectl("delete", "clusterrolebinding", "kube-batch-exporter")

    def not_ready_for_permission() -> bool:
        status, body = exporter.get("/readyz")
        return status == 503 and "permission denied" in body

    eventually(not_ready_for_permission, 90, "/readyz reporting the missing permission")
    _, body = exporter.get("/readyz")
    assert "needs list and watch" in body
    assert "permission denied: the exporter's ServiceAccount needs list and watch" in (
        exporter.log.read_text()
    )

    kubectl("apply", "-f", "-", stdin=secured["rbac"])
    eventually(lambda: exporter.get("/readyz")[0] == 200, 90, "recovery once the binding is back")
    ns = new_namespace(cluster, "deploy-back")
    job = {"metadata": {"name": "after"}, "spec": {"template": pod_template(cluster, "1s")}}
    _run_counted(cluster, exporter, ns, "after", job)


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A work dir uid 65534 can reach (pytest's own tmp dirs are 0700 and owned by root)."""
    path = Path(tempfile.mkdtemp(prefix="kbe-image-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_image_recipe_runs_as_nobody_on_a_read_only_root(
    cluster: Cluster, world_readable_dir: Path
) -> None:
    """The Dockerfile's steps without Docker: a wheels-only venv with pip removed, run as
    65534:65534 in a mount namespace where / is read-only (needs root, as CI runs)."""
    python = "/usr/bin/python3"  # Debian's python3-venv: reachable by uid 65534, unlike pyenv's
    if os.geteuid() != 0 or not Path(python).exists():
        pytest.fail("needs root and Debian's python3-venv (make system-deps installs it)")
    work = world_readable_dir
    venv = work / "kbe"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/pip"), "install", "--quiet", "--no-cache-dir", "--only-binary=:all:"]
    subprocess.run([*pip, str(ROOT)], check=True, capture_output=True)
    subprocess.run([str(venv / "bin/pip"), "uninstall", "--quiet", "--yes", "pip"], check=True)
    assert not (venv / "bin/pip").exists()
    # the kubeconfig and its certificates, copied where uid 65534 can read them
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in admin[section]:
            for field in ("certificate-authority", "client-certificate", "client-key"):
                if field in entry[key]:
                    entry[key][field] = shutil.copy(entry[key][field], work)
    (work / "kubeconfig").write_text(yaml.safe_dump(admin))
    subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
    read_only_as_nobody = (
        "mount --bind / / && mount -o bind,remount,ro / && "
        "exec setpriv --reuid 65534 --regid 65534 --clear-groups "
        'env -i PYTHONDONTWRITEBYTECODE=1 HOME=/nonexistent "$0" "$@"'
    )
    exporter = Exporter(
        work / "kubeconfig",
        work / "exporter.log",
        launcher=("unshare", "--mount", "--propagation", "private",
                  "sh", "-c", read_only_as_nobody, str(venv / "bin/kube-batch-exporter")),
    )  # fmt: skip
    try:
        exporter.wait_ready()
        user = subprocess.run(
            ["ps", "-o", "user=", "-p", str(exporter.proc.pid)], capture_output=True, text=True
        ).stdout.strip()
        assert user == "nobody"
        assert exporter.get("/metrics")[0] == 200
    finally:
        assert exporter.stop() == 0, exporter.log.read_text()[-2000:]
    assert "Read-only file system" not in exporter.log.read_text()
