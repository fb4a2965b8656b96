"""Optional TLS and basic authentication on the HTTP endpoints (``--web-config-file``).

The file uses the Prometheus exporter-toolkit format, so one file format serves every exporter
a team runs::

    tls_server_config:
      cert_file: /etc/kbe/tls.crt
      key_file: /etc/kbe/tls.key
      client_ca_file: /etc/kbe/ca.crt          # optional
      client_auth_type: RequireAndVerifyClientCert  # optional
      min_version: TLS12                        # optional
    basic_auth_users:
      prometheus: $2y$10$...                    # bcrypt hash (htpasswd -nBC 10 "")

``/healthz`` and ``/readyz`` stay open so kubelet probes need no credentials; they reveal
only readiness. Passwords are checked with bcrypt in a worker thread (a check costs tens of
milliseconds by design) and successful checks are cached in memory by a SHA-256 of the
credentials, so a scrape every few seconds does not pay bcrypt each time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebConfigError(ValueError):
    """The web config file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class WebConfig:
    """What the web config file asks for: TLS settings and bcrypt-hashed users."""

    tls: dict[str, str] = field(default_factory=dict)
    users: dict[str, bytes] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server context when TLS is configured; errors name the file that failed."""
        if not self.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = VERSIONS[self.tls.get("min_version", "TLS12")]
        try:
            context.load_cert_chain(self.tls["cert_file"], self.tls["key_file"])
            if "client_ca_file" in self.tls:
                context.load_verify_locations(self.tls["client_ca_file"])
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"TLS certificate or key unusable: {exc}") from exc
        context.verify_mode = CLIENT_AUTH[self.tls.get("client_auth_type", "NoClientCert")]
        return context

    def middleware(self) -> Middleware:
        """An aiohttp middleware that asks for basic auth on all but the probe paths."""
        verified: set[bytes] = set()

        async def check(username: str, password: str) -> bool:
            key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
            if key in verified:
                return True
            hashed = self.users.get(username)
            if hashed is None:
                return False
            ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed)
            if ok:
                verified.add(key)
            return ok

        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in OPEN_PATHS:
                return await handler(request)
            credentials = _credentials(request.headers.get("Authorization", ""))
            if credentials and await check(*credentials):
                return await handler(request)
            return web.Response(
                status=401,
                text="unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="kube-batch-exporter"'},
            )

        return basic_auth


def _credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def load_web_config(path: str) -> WebConfig:
    """Read and check a web config file; unknown keys are errors, as in exporter-toolkit."""
    try:
        raw: Any = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WebConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise WebConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(raw) - {"tls_server_config", "basic_auth_users"}
    if unknown:
        raise WebConfigError(f"{path}: unknown keys {sorted(unknown)}")
    tls = raw.get("tls_server_config") or {}
    if not isinstance(tls, dict) or set(tls) - TLS_KEYS:
        raise WebConfigError(f"{path}: tls_server_config takes only {sorted(TLS_KEYS)}")
    if tls and not {"cert_file", "key_file"} <= set(tls):
        raise WebConfigError(f"{path}: tls_server_config needs cert_file and key_file")
    if tls.get("client_auth_type", "NoClientCert") not in CLIENT_AUTH:
        raise WebConfigError(f"{path}: client_auth_type must be one of {sorted(CLIENT_AUTH)}")
    if tls.get("min_version", "TLS12") not in VERSIONS:
        raise WebConfigError(f"{path}: min_version must be one of {sorted(VERSIONS)}")
    users = raw.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise WebConfigError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not str(hashed).startswith(("$2a$", "$2b$", "$2y$")):
            # the value is a secret (or a mistake holding one): name the user only
            raise WebConfigError(f"{path}: the password of user {user!r} is not a bcrypt hash")
    return WebConfig(
        tls={k: str(v) for k, v in tls.items()},
        users={str(u): str(h).encode() for u, h in users.items()},
    )
