"""Every family ``/metrics`` emits, in scrape order, and the scrape that joins them.

:data:`GROUPS` is the one list of what the exporter renders from records, and :data:`ALL` adds
the self-metrics: docs/metrics.md is checked against it, and a scrape writes the groups in
exactly this order, then the self-metrics and the process metrics from client_python.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.openmetrics import exposition as openmetrics_format

from exporter.health.state import Health
from exporter.metrics import runs, slots, state
from exporter.metrics.exposition import Body, Group, MetricType, RenderedFamilies, SeriesKey
from exporter.metrics.selfmetrics import SELF
from exporter.store.caching import Record

R = TypeVar("R", bound=Record)

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_VERSIONS = {
    "application/openmetrics-text": ("1.0.0", "0.0.1"),
    # 1.0.0 adds quoted UTF-8 names; every name here is a classic one, so the body is the same
    "text/plain": ("0.0.4", "1.0.0"),
}


def negotiate(accept: str) -> tuple[bool, str]:
    """Choose the format for an ``Accept`` header: (OpenMetrics?, the Content-Type to send).

    The media range with the highest q-value that this exporter can serve wins, first listed
    on a tie; the version answered is the one asked for (the first listed when none is).
    A range with ``q=0``, or naming a version not served, is refused. When nothing acceptable
    is asked for (no header, ``*/*``, ``application/json``), the answer is the classic text
    format, as client_python's: a scrape never fails on its headers.
    """
    best: tuple[float, bool, str] | None = None
    for kind, options, q in _acceptable(accept):
        versions = _VERSIONS.get(kind)
        if versions is None:
            continue
        version = options.get("version", versions[0])
        if version not in versions or q > 1:
            continue
        if best is None or q > best[0]:
            best = (q, kind != "text/plain", version)
    if best is None:
        return False, TEXT_TYPE
    _, openmetrics, version = best
    kind = "application/openmetrics-text" if openmetrics else "text/plain"
    return openmetrics, f"{kind}; version={version}; charset=utf-8"


def wants_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` accepts gzip: named (or ``*``) with a q-value above 0.

    Prometheus always sends ``gzip``; a scrape at L is 54 MiB plain, about 5 MiB gzipped.
    """
    return any(name in ("gzip", "x-gzip", "*") for name, _, _ in _acceptable(accept_encoding))


def _acceptable(header: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """The elements of an ``Accept``-style header with a usable q-value above 0.

    Each as (its name in lower case, its parameters, q); a q that is not a number refuses
    the element, as does ``q=0``.
    """
    for element in header.split(","):
        name, *params = (part.strip() for part in element.split(";"))
        options = dict(p.partition("=")[::2] for p in params)
        try:
            q = float(options.get("q", "1"))
        except ValueError:
            continue
        if q > 0:
            yield name.lower(), options, q


GROUPS: tuple[Group[Any], ...] = (
    state.CRONJOB,
    slots.SLOTS,
    state.JOB,
    state.RETAINED,
    runs.HISTORY,
    runs.CRONJOB_SUCCESS,
)


@dataclass(frozen=True, slots=True)
class Declared:
    """What the registry says of one family: the public name, type, help and labels."""

    name: str
    type: MetricType
    help: str
    identity: tuple[str, ...]
    """The identity labels of its group (contract §1); none for the self-metrics."""
    labels: tuple[str, ...]
    """The family's own labels (a histogram's ``le`` is implied)."""


ALL: tuple[Declared, ...] = (
    *(
        Declared(f.name, f.type, f.help, group.identity.labels, f.labels)
        for group in GROUPS
        for f in group.all
    ),
    *(Declared(f.name, f.type, f.help, (), f.labels) for f in SELF),
)


class Renderers:
    """One renderer per group: what one engine (one term of leadership) renders from records.

    The wiring subscribes each renderer to the source of its records; it writes them in
    :data:`GROUPS` order, so the registry and the exposition cannot disagree.
    """

    def __init__(
        self, health: Health, clock: Callable[[], float] = time.time, new_series_delay: float = 0.0
    ) -> None:
        self.by_group: dict[Group[Any], RenderedFamilies[Any]] = {
            group: RenderedFamilies(group, health, clock, new_series_delay) for group in GROUPS
        }

    def __getitem__(self, group: Group[R]) -> RenderedFamilies[R]:
        return self.by_group[group]

    def births(self) -> dict[str, dict[str, dict[SeriesKey, float]]]:
        """When each counter series was born, per group (named by its first family)."""
        return {
            group.families[0].name: renderer.live_births()
            for group, renderer in self.by_group.items()
            if renderer.counting
        }

    def restore_births(self, births: dict[str, dict[str, dict[SeriesKey, float]]]) -> None:
        """Take the births from a checkpoint: those series continue rather than being born."""
        for group, renderer in self.by_group.items():
            renderer.births.born.update(births.get(group.families[0].name, {}))

    async def write(self, body: Body, openmetrics: bool) -> None:
        """Write every group's families."""
        for renderer in self.by_group.values():
            await renderer.write(body, openmetrics)


class Exposition:
    """Builds the ``/metrics`` body: the installed renderers, then the self-metrics registry.

    The batch families are written only while the process leads (``Health.leading``, checked
    at every scrape, so a leader that missed its renewal stops at once) and every resource is
    synced (before that a restored counter may still grow by a relist).
    """

    def __init__(self, registry: CollectorRegistry, health: Health) -> None:
        self.renderers: Renderers | None = None
        self._registry = registry
        self._health = health

    async def scrape(self, openmetrics: bool, compress: bool = False) -> bytes:
        """The whole exposition body in the text format, or OpenMetrics when asked.

        Gzipped when ``compress``: unchanged families reuse their compressed fragments. The
        renderers yield to the loop between families, so leadership and sync are checked once,
        at the start: a term that ends during a scrape (milliseconds) still finishes it.
        """
        started = time.perf_counter()
        out = Body(compress)
        if self.renderers is not None and self._health.synced and self._health.leading():
            await self.renderers.write(out, openmetrics)
        fmt = openmetrics_format if openmetrics else text_format
        out.write(fmt.generate_latest(self._registry))
        body = out.finish()
        self._health.last_scrape = (time.perf_counter() - started, len(body))
        return body
