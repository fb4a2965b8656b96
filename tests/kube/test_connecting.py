"""Credentials: kubeconfig tokens, exec plugins, and the rotating in-cluster token."""

from __future__ import annotations

import datetime as real_datetime
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from exporter.kube import connecting
from exporter.kube.connecting import AccessError, connect


def write_kubeconfig(
    path: Path, user: dict[str, object], server: str = "http://127.0.0.1:1"
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "other",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}, {"name": "nobody", "user": {}}],
                "contexts": [
                    {"name": "ctx", "context": {"cluster": "c", "user": "u"}},
                    {"name": "other", "context": {"cluster": "c", "user": "nobody"}},
                ],
            }
        )
    )
    return path


async def test_exec_plugin_token_is_used(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        "'kind': 'ExecCredential', 'status': {'token': 'from-exec'}}))\n"
    )
    config = write_kubeconfig(
        tmp_path / "kc",
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin)],
                "interactiveMode": "Never",
            }
        },
    )
    conn = await connect(str(config), "ctx")
    assert (await conn.headers())["Authorization"] == "Bearer from-exec"


async def test_context_selects_the_user(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kc", {"token": "t0k"})
    assert (await (await connect(str(config), "ctx")).headers())["Authorization"] == "Bearer t0k"
    assert "Authorization" not in await (await connect(str(config), None)).headers()


async def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AccessError, match="cannot load Kubernetes credentials"):
        await connect(str(tmp_path / "absent"), None)
    config = write_kubeconfig(tmp_path / "kc", {"token": "x"})
    with pytest.raises(AccessError, match="ghost"):
        await connect(str(config), "ghost")


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kbe-test",
            "-days",
            "1",
            "-keyout",
            str(tmp_path / "ca.key"),
            "-out",
            str(tmp_path / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )
    return tmp_path / "ca.crt"


async def test_in_cluster_token_is_reread_after_rotation(
    tmp_path: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.config import incluster_config

    token = tmp_path / "token"
    token.write_text("first")

    class FrozenDatetime:
        current = real_datetime.datetime(2026, 1, 1)

        @classmethod
        def now(cls) -> real_datetime.datetime:
            return cls.current

    monkeypatch.setattr(
        incluster_config,
        "datetime",
        SimpleNamespace(datetime=FrozenDatetime, timedelta=real_datetime.timedelta),
    )
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca_file))
    monkeypatch.setattr(connecting, "_IN_CLUSTER_TOKEN", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)

    conn = await connect(None, None)
    assert conn.host == "https://10.96.0.1:443"
    assert (await conn.headers())["Authorization"].lower() == "bearer first"

    token.write_text("second")  # the kubelet rotates the projected token
    FrozenDatetime.current += real_datetime.timedelta(seconds=61)
    assert (await conn.headers())["Authorization"].lower() == "bearer second"
