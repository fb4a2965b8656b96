"""Cluster access: the official client loads credentials, aiohttp carries the traffic.

The ``kubernetes`` package knows every way a kubeconfig can authenticate (client certificates,
custom CAs, tokens, exec plugins, in-cluster service accounts), but its models cost 10-40x a
plain ``json.loads`` per object. So, as kopf does, we let it fill a ``Configuration`` and then
read only the host, TLS material and the ``Authorization`` header from it.

The header is fetched again for every request: the in-cluster loader re-reads the rotating
service-account token (at most once a minute) and the kubeconfig loader re-runs exec plugins when
their credential expires. Both may block (file reads, subprocesses), so they run in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

_IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
CONNECT_TIMEOUT_SECONDS = 15.0
"""TCP and TLS connection set-up; a request that cannot connect in this time is retried."""


REQUEST_TIMEOUT_SECONDS = 30.0
"""Longest wait for one request on an object the exporter writes."""


class AccessError(Exception):
    """Credentials could not be loaded; the message says what to fix."""


@dataclass(slots=True)
class Connection:
    """What a request needs: base URL, TLS context and a fresh Authorization header."""

    host: str
    ssl_context: ssl.SSLContext | bool
    server_hostname: str | None
    cluster: str
    """Which cluster this is, as far as the credentials tell: the digest of the CA that
    signs the API server's certificate (the server URL when there is none). In-cluster the
    URL is the same everywhere; the CA is not."""
    _config: Any
    """The client's Configuration; kept only to refresh the Authorization header."""

    async def headers(self) -> dict[str, str]:
        """Return request headers with a current token (may run an exec plugin)."""
        token = await asyncio.to_thread(self._authorization)
        headers = {"Accept": "application/json", "User-Agent": "kube-batch-exporter"}
        if token:
            headers["Authorization"] = token
        return headers

    async def request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        limits: aiohttp.ClientTimeout,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> aiohttp.ClientResponse:
        """Send one request with fresh credentials and the TLS name the kubeconfig gives.

        The one place a request is set up, so that the watchers, the shard loop and the state
        writers present the same headers to the same server (``body`` None sends none).
        """
        return await session.request(
            method,
            url,
            params=params,
            json=body,
            headers=await self.headers(),
            server_hostname=self.server_hostname,
            timeout=limits,
        )

    def _authorization(self) -> str | None:
        cfg = self._config
        # v36+ stores the token under "BearerToken", older versions under "authorization".
        token = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
            "authorization"
        )
        if token:
            return str(token)
        basic = cfg.get_basic_auth_token() if cfg.username or cfg.password else None
        return str(basic) if basic else None

    def session(self) -> aiohttp.ClientSession:
        """Make the one HTTP session the watchers share (no connection limit)."""
        connector = aiohttp.TCPConnector(limit=0, ssl=self.ssl_context)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
            # LIST pages of large objects exceed aiohttp's default buffer; watch lines are split
            # by our own reader, never by readline().
            read_bufsize=2**20,
        )


def load_configuration(kubeconfig: str | None, context: str | None) -> Any:
    """The client's Configuration, loaded as kubectl would (may run an exec plugin)."""
    from kubernetes import client, config  # heavy import, done once in a thread

    cfg = client.Configuration()
    explicit = kubeconfig or os.environ.get("KUBECONFIG")
    if not explicit and os.path.exists(_IN_CLUSTER_TOKEN):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        logger.info("using the in-cluster service account")
        return cfg
    path = explicit or os.path.expanduser("~/.kube/config")
    if ":" in path:  # KUBECONFIG may be a list; the first readable file wins, as kubectl merges
        path = next((p for p in path.split(":") if os.path.exists(p)), path.split(":")[0])
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=path, context=context, client_configuration=cfg, persist_config=False
    )
    logger.info("using kubeconfig %s (context %s)", path, context or "current")
    return cfg


def ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    """TLS settings of a Configuration for aiohttp (False for plain HTTP)."""
    if not cfg.host.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """Load credentials as kubectl would and return a :class:`Connection`.

    Raises:
        AccessError: no usable configuration (missing file, unknown context, bad certificate).
    """
    try:
        cfg = await asyncio.to_thread(load_configuration, kubeconfig, context)
        tls = ssl_context(cfg)
        cluster = await asyncio.to_thread(cluster_identity, cfg)
    except Exception as exc:  # the client raises many types: ConfigException, OSError, ...
        raise AccessError(f"cannot load Kubernetes credentials: {exc}") from exc
    return Connection(
        host=cfg.host.rstrip("/"),
        ssl_context=tls,
        server_hostname=getattr(cfg, "tls_server_name", None),
        cluster=cluster,
        _config=cfg,
    )


def cluster_identity(cfg: Any) -> str:
    """A digest naming the cluster: of its CA bundle, else of the server URL."""
    if cfg.ssl_ca_cert:
        with open(cfg.ssl_ca_cert, "rb") as f:
            return "ca:" + hashlib.sha256(f.read()).hexdigest()[:32]
    return "url:" + hashlib.sha256(cfg.host.rstrip("/").encode()).hexdigest()[:32]


class Objects:
    """JSON requests on the few objects the exporter writes: the state ConfigMaps, the Lease.

    One resource in one namespace. A request that fails before an HTTP status raises
    ``error``, saying ``what`` failed.
    """

    def __init__(
        self,
        collection: str,
        session: aiohttp.ClientSession,
        conn: Connection,
        error: type[Exception],
        what: str,
    ) -> None:
        self._collection = f"{conn.host}{collection}"
        self._session, self._conn = session, conn
        self._error, self._what = error, what

    def url(self, name: str | None = None) -> str:
        """The collection, or the object ``name`` in it."""
        return f"{self._collection}/{name}" if name else self._collection

    async def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """The HTTP status and, for a 2xx answer, the decoded body."""
        try:
            limits = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            resp = await self._conn.request(self._session, method, url, limits, body=body)
            async with resp:
                payload = await resp.json(content_type=None) if resp.status < 300 else None
                return resp.status, payload
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            why = exc or type(exc).__name__
            raise self._error(f"{self._what}: {method} failed: {why}") from exc
