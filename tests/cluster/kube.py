"""A minimal synchronous Kubernetes client for tests: create, get, delete, list.

It loads credentials the way the exporter does (the official client's loaders), so the e2e
suite works against the local control plane and any cluster given by ``KBE_E2E_KUBECONFIG``.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from exporter.kube.connecting import load_configuration, ssl_context


class KubeError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class Kube:
    def __init__(self, kubeconfig: str) -> None:
        self._config = load_configuration(kubeconfig, None)
        self.host = self._config.host.rstrip("/")
        tls = ssl_context(self._config)
        self._ssl = tls if isinstance(tls, ssl.SSLContext) else None

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        req = urllib.request.Request(
            self.host + path,
            method=method,
            headers=self._headers(content_type),
            data=json.dumps(body).encode() if body else None,
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, exc.read().decode(errors="replace")) from None

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        token = self._config.get_api_key_with_prefix("BearerToken")
        if token:
            headers["Authorization"] = token
        return headers

    def watch(self, path: str, resource_version: str, seconds: int) -> Iterator[dict[str, Any]]:
        """The events of one watch request (it ends after ``seconds``, or on an error)."""
        query = f"?watch=1&resourceVersion={resource_version}&timeoutSeconds={seconds}"
        req = urllib.request.Request(self.host + path + query, headers=self._headers())
        with urllib.request.urlopen(req, context=self._ssl, timeout=seconds + 30) as resp:
            for line in resp:
                yield json.loads(line)

    def create(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        """A JSON merge patch (RFC 7386)."""
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path, {"propagationPolicy": "Background"})
