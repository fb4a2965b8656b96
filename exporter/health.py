"""The exporter's own metrics (contract §6), exposed with client_python's collector protocol.

Counters are plain dicts updated inline by the watchers (no locks: one event loop) and turned
into metric families only when scraped, on a private registry, so nothing here costs anything
between scrapes and tests can read the numbers directly.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__

RESOURCES = ("jobs", "cronjobs", "pods")
RESTART_REASONS = ("timeout", "gone", "inactivity", "torn", "error")


class Health(Collector):
    """Self-metrics of the exporter; one instance per process."""

    def __init__(self) -> None:
        self.watch_events: Counter[tuple[str, str]] = Counter()
        # Restarts and relists start at 0 per resource, so increase() over them is 0 rather
        # than no data (dashboards and alerts then tell "none" from "not scraped").
        self.watch_restarts: Counter[tuple[str, str]] = Counter(
            dict.fromkeys(((r, why) for r in RESOURCES for why in RESTART_REASONS), 0)
        )
        self.relists: Counter[str] = Counter(dict.fromkeys(RESOURCES, 0))
        self.api_requests: Counter[tuple[str, str, str]] = Counter()
        self.errors: Counter[str] = Counter()
        self.owners_dropped = 0
        self.objects: dict[str, int] = dict.fromkeys(RESOURCES, 0)
        self.synced: dict[str, bool] = dict.fromkeys(RESOURCES, False)
        self.last_event: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        """Latest failure per resource in words, shown on /readyz and / (never a token)."""
        self.last_scrape: tuple[float, int] = (0.0, 0)
        """Seconds and bytes of the latest scrape (it reports on the one before it)."""
        self.extra: list[Callable[[], Iterator[Metric]]] = []
        """More self-metric producers (trackers register theirs here)."""

    def collect(self) -> Iterator[Metric]:
        """Yield the §6 families from the current counters."""
        info = GaugeMetricFamily(
            "kube_batch_exporter_build_info",
            "Version of the exporter and of the Python running it.",
            labels=["version", "python_version"],
        )
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield _counter(
            "kube_batch_exporter_watch_events_total",
            "Watch events received, by resource and event type.",
            ["resource", "type"],
            self.watch_events,
        )
        yield _counter(
            "kube_batch_exporter_watch_restarts_total",
            "Watch streams restarted, by resource and why.",
            ["resource", "reason"],
            self.watch_restarts,
        )
        yield _counter(
            "kube_batch_exporter_relists_total",
            "Full LISTs after the first one (410 Gone or an error).",
            ["resource"],
            {(k,): v for k, v in self.relists.items()},
        )
        yield _counter(
            "kube_batch_exporter_api_requests_total",
            "Requests to the Kubernetes API by resource, verb and HTTP code.",
            ["resource", "verb", "code"],
            self.api_requests,
        )
        yield _counter(
            "kube_batch_exporter_errors_total",
            "Problems survived, by kind (bad_line, bad_object, bad_annotation, ...).",
            ["kind"],
            {(k,): v for k, v in self.errors.items()},
        )
        dropped = CounterMetricFamily(
            "kube_batch_exporter_owners_dropped_total",
            "Owners not tracked because --max-owners was reached.",
        )
        dropped.add_metric([], self.owners_dropped)
        yield dropped
        yield _gauge(
            "kube_batch_exporter_objects", "Objects held in the exporter's cache.", self.objects
        )
        yield _gauge(
            "kube_batch_exporter_synced",
            "1 once the first full LIST of the resource completed.",
            {k: float(v) for k, v in self.synced.items()},
        )
        yield _gauge(
            "kube_batch_exporter_last_event_timestamp_seconds",
            "When the last watch event of the resource arrived.",
            self.last_event,
        )
        seconds, size = self.last_scrape
        yield GaugeMetricFamily(
            "kube_batch_exporter_last_scrape_duration_seconds",
            "Time the previous /metrics response took to build.",
            seconds,
        )
        yield GaugeMetricFamily(
            "kube_batch_exporter_last_scrape_bytes", "Size of the previous /metrics response.", size
        )
        for produce in self.extra:
            yield from produce()


def _counter(
    name: str,
    doc: str,
    labels: list[str],
    values: dict[tuple[str, ...], int] | Counter[tuple[str, str]] | Counter[tuple[str, str, str]],
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, doc: str, values: dict[str, float] | dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["resource"])
    for resource, value in sorted(values.items()):
        family.add_metric([resource], value)
    return family


def registry(health: Health) -> CollectorRegistry:
    """A private registry with the health collector and the standard process metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(health)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    return reg
