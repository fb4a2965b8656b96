"""When checkpoints are written, and how one is applied at start-up (contract §10).

A checkpoint is restored before the first LIST, so the relisted Jobs and Pods meet it: what
it knew is not counted again, what ended while the exporter was away is counted once. It is
written only while every resource is synced (before that the caches are partial and the
previous checkpoint is the truer one), at most every ``--state-interval`` and at SIGTERM.
Nothing about a checkpoint can stop the exporter: one that cannot be read or does not belong
here is logged, counted in ``errors_total{kind="state"}`` and ignored.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from exporter import __version__
from exporter.health.state import ErrorKind, Health
from exporter.metrics.registry import Renderers
from exporter.persist import encoding
from exporter.persist.backends import Backend, StateError
from exporter.track.runs import RETRY_BUCKETS, RunsState, RunTracker
from exporter.track.slots import LAG_BUCKETS, SlotsState, SlotTracker

logger = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = 256 * 2**20
"""Decompressed size beyond which a checkpoint is refused (a bound on a hostile file)."""


class Checkpointer:
    """Writes and restores the checkpoint of one engine's trackers and renderers."""

    def __init__(
        self,
        backend: Backend,
        *,
        cluster: str,
        health: Health,
        runs: RunTracker,
        slots: SlotTracker,
        renderers: Renderers,
        duration_buckets: Sequence[float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self._cluster = cluster
        self._health = health
        self._runs = runs
        self._slots = slots
        self._renderers = renderers
        self._buckets = tuple(duration_buckets)
        self._clock = clock

    def _failed(self, what: str, why: object) -> None:
        self._health.count(ErrorKind.STATE)
        logger.warning("%s the checkpoint in %s: %s", what, self.backend, why)

    async def restore(self) -> bool:
        """Apply the last checkpoint; False (and a fresh start) when there is none to use."""
        started = time.perf_counter()
        try:
            data = await self.backend.read()
        except StateError as exc:
            self._failed("starting fresh: cannot read", exc)
            return False
        if data is None:
            logger.info("no checkpoint in %s yet: starting fresh", self.backend)
            return False
        try:
            decoded = await asyncio.to_thread(self._decode, data)
        except Exception as exc:  # whatever the bytes hold, the exporter starts fresh
            self._failed("starting fresh, ignoring", exc if str(exc) else type(exc).__name__)
            return False
        runs, slots, births, written = decoded
        self._renderers.restore_births(births)
        self._runs.restore(runs)
        self._slots.restore(slots)
        logger.info(
            "restored the checkpoint of %s from %s (%.0fs old, %d bytes) in %.3fs: "
            "%d owners, %d CronJobs, %d active runs",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(written)),
            self.backend,
            max(0.0, self._clock() - written),
            len(data),
            time.perf_counter() - started,
            len(runs.histories),
            len(slots.crons),
            len(runs.active),
        )
        return True

    def _decode(self, data: bytes) -> tuple[RunsState, SlotsState, encoding.Births, float]:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            raw = f.read(MAX_CHECKPOINT_BYTES + 1)
        if len(raw) > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"it decompresses to more than {MAX_CHECKPOINT_BYTES} bytes")
        content = json.loads(raw)
        if not isinstance(content, dict):
            raise ValueError("it is not a checkpoint")
        if content.get("format") != encoding.FORMAT:
            raise ValueError(
                f"it has format {content.get('format')!r}, this exporter reads {encoding.FORMAT}"
            )
        if content.get("cluster") != self._cluster:
            raise ValueError("it was written for another cluster (its API server's CA differs)")
        runs = encoding.read_runs(content["runs"], self._buckets, RETRY_BUCKETS)
        slots = encoding.read_slots(content["slots"], LAG_BUCKETS)
        births = encoding.read_births(content["births"])
        return runs, slots, births, runs.written

    async def save(self) -> bool:
        """Write a checkpoint now, if the caches are whole and this process leads.

        False when none was written: a standby or a deposed leader never overwrites the
        leader's checkpoint.
        """
        if not (self._health.synced and self._health.leading()):
            return False
        started = time.perf_counter()
        content: dict[str, Any] = {
            "format": encoding.FORMAT,
            "exporter": __version__,
            "cluster": self._cluster,
            "runs": encoding.runs(self._runs.snapshot()),
            "slots": encoding.slots(self._slots.snapshot()),
            "births": encoding.births(self._renderers.births()),
        }
        data = await asyncio.to_thread(_compress, content)
        try:
            await self.backend.write(data)
        except StateError as exc:
            self._failed("cannot write", exc)
            return False
        took = time.perf_counter() - started
        self._health.last_checkpoint = (self._clock(), took, len(data))
        logger.debug("checkpoint written to %s: %d bytes in %.3fs", self.backend, len(data), took)
        return True

    async def run(self, interval: float) -> None:
        """Write a checkpoint every ``interval`` seconds (the lifecycle writes the last one)."""
        while True:
            await asyncio.sleep(interval)
            await self.save()


def _compress(content: dict[str, Any]) -> bytes:
    text = json.dumps(content, separators=(",", ":"), allow_nan=True)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)
