"""Where the compressed checkpoint is kept: a file, or ConfigMaps in the exporter's namespace.

Both write so that a crash at any moment leaves the previous checkpoint or the new one, never
a mixture: the file is replaced by a rename, and the ConfigMaps are committed by their head.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from exporter.kube.connecting import Connection, Objects

PART_BYTES = 900_000
"""Compressed bytes per ConfigMap: the API server refuses a ConfigMap over 1 MiB of data."""
MAX_PARTS = 10
"""Most ConfigMaps one checkpoint may take (the head and nine more per generation, the names
the shipped Role lists)."""


class StateError(Exception):
    """The checkpoint could not be read or written; the message says why, in words."""


class Backend(Protocol):
    """Keeps one checkpoint's bytes."""

    def __str__(self) -> str:
        """Where, for log lines."""

    async def read(self) -> bytes | None:
        """The last checkpoint written, or None when there is none yet."""

    async def write(self, data: bytes) -> None:
        """Replace the checkpoint, all at once."""


class FileBackend:
    """A file, replaced by rename after fsync (a PVC, or an emptyDir that outlives restarts)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"file {self.path}"

    async def read(self) -> bytes | None:
        """The file's bytes, None when it does not exist."""
        try:
            return await asyncio.to_thread(self._read)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from exc

    def _read(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    async def write(self, data: bytes) -> None:
        """Write a temporary file next to it, then rename it over the old one."""
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            raise StateError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _write(self, data: bytes) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class ConfigMapBackend:
    """ConfigMaps ``NAME`` (the head) and ``NAME-{a,b}-1..9`` for checkpoints beyond one.

    The head holds the first part, which generation holds the others, how many there are and
    the digest of the whole. The other parts are written first, in the generation the head
    does not point to, and the head last: a crash in between leaves the old checkpoint whole.
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        session: aiohttp.ClientSession,
        conn: Connection,
        allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        self.namespace, self.name = namespace, name
        collection = f"/api/v1/namespaces/{namespace}/configmaps"
        self._api = Objects(collection, session, conn, StateError, str(self))
        self._allowed = allowed
        """Asked before every write: a replica that is no longer the leader stops mid-way."""
        self._generation = "a"
        """The generation the head points to (the next multi-part write uses the other)."""
        self._head_version: str | None = None
        """The head's resourceVersion as this replica last read or wrote it: the head is only
        replaced at that version, so a deposed leader cannot overwrite its successor's."""

    def __str__(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def _get(self, name: str) -> dict[str, Any] | None:
        status, payload = await self._api.call("GET", self._api.url(name))
        if status == 404:
            return None
        if status != 200 or not isinstance(payload, dict):
            raise StateError(f"{self}: reading {name} answered HTTP {status}")
        return payload

    async def read(self) -> bytes | None:
        """Join the parts the head names; a part missing or not matching the digest fails."""
        head = await self._get(self.name)
        self._head_version = _version(head)
        if head is None:
            return None
        data, binary = head.get("data") or {}, head.get("binaryData") or {}
        try:
            parts, generation = int(data["parts"]), str(data["generation"])
            chunks = [base64.b64decode(binary["checkpoint"])]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{self}: the head is not a checkpoint ({exc})") from exc
        if not 1 <= parts <= MAX_PARTS or generation not in ("a", "b"):
            raise StateError(f"{self}: the head names {parts} parts of generation {generation}")
        self._generation = generation
        for i in range(1, parts):
            part = await self._get(self._part(generation, i))
            try:
                chunks.append(base64.b64decode((part or {})["binaryData"]["checkpoint"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(f"{self}: part {i} is missing or unreadable") from exc
        whole = b"".join(chunks)
        if hashlib.sha256(whole).hexdigest() != data.get("sha256"):
            raise StateError(f"{self}: the parts do not match the head's digest")
        return whole

    def _part(self, generation: str, i: int) -> str:
        return f"{self.name}-{generation}-{i}"

    async def write(self, data: bytes) -> None:
        """Write the parts beyond the first in the other generation, then the head."""
        chunks = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
        if len(chunks) > MAX_PARTS:
            raise StateError(
                f"{self}: the checkpoint needs {len(chunks)} ConfigMaps, more than {MAX_PARTS}"
            )
        generation = "b" if self._generation == "a" else "a"
        if len(chunks) == 1:
            generation = self._generation  # nothing outside the head to keep whole
        for i, chunk in enumerate(chunks[1:], start=1):
            await self._put(self._part(generation, i), {}, chunk)
        meta = {
            "parts": str(len(chunks)),
            "generation": generation,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        self._head_version = await self._put(self.name, meta, chunks[0], self._head_version)
        self._generation = generation

    async def _put(
        self, name: str, data: dict[str, str], chunk: bytes, version: str | None = None
    ) -> str | None:
        """Write one ConfigMap (at ``version`` when given); return its new resourceVersion."""
        if not self._allowed():
            raise StateError(f"{self}: not writing {name}: this replica no longer leads")
        metadata = {
            "name": name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/name": "kube-batch-exporter"},
            **({} if version is None else {"resourceVersion": version}),
        }
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": data,
            "binaryData": {"checkpoint": base64.b64encode(chunk).decode()},
        }
        status, payload = await self._api.call("PUT", self._api.url(name), body)
        if status == 404:
            metadata.pop("resourceVersion", None)  # gone: nothing to overwrite
            status, payload = await self._api.call("POST", self._api.url(), body)
        if status == 409:
            raise StateError(f"{self}: another replica wrote {name} since this one read it")
        if status not in (200, 201):
            hint = " (the Role must allow get, create and update on it)" if status == 403 else ""
            raise StateError(f"{self}: writing {name} answered HTTP {status}{hint}")
        return _version(payload)


def _version(obj: Any) -> str | None:
    """``metadata.resourceVersion`` of an object the API returned, if it has one."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None
