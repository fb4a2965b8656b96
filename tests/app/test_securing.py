"""TLS and basic auth on the HTTP endpoints, from an exporter-toolkit web config file."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.app.securing import WebConfig, WebConfigError, load_web_config
from tests.certs import self_signed

PASSWORD = "correct horse battery staple"


def write(tmp_path: Path, config: object) -> str:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture
def config(tmp_path: Path) -> WebConfig:
    cert, key = self_signed(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    return load_web_config(
        write(
            tmp_path,
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {"prometheus": hashed},
            },
        )
    )


@pytest.fixture
async def server(config: WebConfig, tmp_path: Path) -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="payload\n")

    app = web.Application(middlewares=[config.middleware()])
    for path in ("/metrics", "/healthz", "/readyz", "/", "/api/v1/owners", "/owners/a/Job/b"):
        app.router.add_get(path, ok)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(ssl=config.ssl_context())
    yield f"https://127.0.0.1:{test_server.port}"
    await test_server.close()


def client_tls(tmp_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))


def auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def get(url: str, tls: ssl.SSLContext, headers: dict[str, str] | None = None) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=tls, headers=headers or {}) as resp,
    ):
        return resp.status


async def test_metrics_need_the_right_password(server: str, tmp_path: Path) -> None:
    tls = client_tls(tmp_path)
    assert await get(f"{server}/metrics", tls) == 401
    assert await get(f"{server}/metrics", tls, auth("prometheus", "wrong")) == 401
    assert await get(f"{server}/metrics", tls, auth("nobody", PASSWORD)) == 401
    assert await get(f"{server}/metrics", tls, {"Authorization": "Basic !!"}) == 401
    assert await get(f"{server}/metrics", tls, auth("prometheus", PASSWORD)) == 200
    assert await get(f"{server}/metrics", tls, auth("prometheus", PASSWORD)) == 200  # cached
    for page in ("/", "/api/v1/owners", "/owners/a/Job/b"):  # the status pages too
        assert await get(f"{server}{page}", tls) == 401
        assert await get(f"{server}{page}", tls, auth("prometheus", PASSWORD)) == 200


async def test_probes_stay_open_for_the_kubelet(server: str, tmp_path: Path) -> None:
    tls = client_tls(tmp_path)
    assert await get(f"{server}/healthz", tls) == 200
    assert await get(f"{server}/readyz", tls) == 200


async def test_plain_http_is_refused_on_a_tls_port(server: str) -> None:
    with pytest.raises(aiohttp.ClientError):
        await get(server.replace("https://", "http://") + "/metrics", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tls_server_config": {"cert_file": "/x"}}, "needs cert_file and key_file"),
        ({"tls_server_config": {"cert_file": "a", "key_file": "b", "bogus": 1}}, "takes only"),
        ({"basic_auth_users": {"alice": "plain-text-secret"}}, "user 'alice' is not a bcrypt"),
        ({"basic_auth_user": {}}, "unknown keys ['basic_auth_user']"),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "SSL3"}},
            "min_version",
        ),
        ([1, 2], "mapping at the top level"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message_and_no_secret(
    tmp_path: Path, config: object, message: str
) -> None:
    with pytest.raises(WebConfigError) as err:
        load_web_config(write(tmp_path, config))
    assert message in str(err.value)
    assert "plain-text-secret" not in str(err.value)


def test_a_missing_certificate_names_the_problem(tmp_path: Path) -> None:
    config = load_web_config(
        write(tmp_path, {"tls_server_config": {"cert_file": "/nope.crt", "key_file": "/nope.key"}})
    )
    with pytest.raises(WebConfigError, match="TLS certificate or key unusable"):
        config.ssl_context()


def test_an_empty_file_means_plain_http(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("")
    config = load_web_config(str(path))
    assert config.ssl_context() is None and not config.users


def test_the_readme_hash_command_makes_a_hash_the_exporter_accepts(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if "bcrypt.hashpw" in line]
    program = command.split(" -c ", 1)[1].strip().strip("'")
    made = subprocess.run(
        [sys.executable, "-c", program],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    config = load_web_config(write(tmp_path, {"basic_auth_users": {"prometheus": made}}))
    assert bcrypt.checkpw(PASSWORD.encode(), config.users["prometheus"])
