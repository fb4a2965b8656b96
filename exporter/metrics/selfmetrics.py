"""The exporter's own families (contract §6), exposed with client_python's collector protocol.

They are declared as :class:`~exporter.metrics.exposition.Family` data like every other
family, over the one :class:`~exporter.health.state.Health` object. They are few and change
constantly, so instead of pre-rendering them a collector turns them into client_python metric
families when scraped, on a private registry that also carries the standard process metrics.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.health.state import Health, ResourceHealth
from exporter.metrics.exposition import Births, Family, Sample, gauge, histogram_samples


def _per_resource(health: Health, value: Callable[[ResourceHealth], float | None]) -> list[Sample]:
    return [
        ("", (("resource", str(r)),), v)
        for r, h in sorted(health.resources.items())
        if (v := value(h)) is not None
    ]


def _build_info(health: Health) -> Iterable[Sample]:
    return [("", (("version", __version__), ("python_version", platform.python_version())), 1.0)]


def _events(health: Health) -> Iterable[Sample]:
    return [
        ("", (("resource", str(r)), ("type", kind)), n)
        for r, h in sorted(health.resources.items())
        for kind, n in sorted(h.events.items())
    ]


def _restarts(health: Health) -> Iterable[Sample]:
    return [
        ("", (("resource", str(r)), ("reason", str(why))), n)
        for r, h in sorted(health.resources.items())
        for why, n in sorted(h.restarts.items())
    ]


def _requests(health: Health) -> Iterable[Sample]:
    return [
        ("", (("resource", str(r)), ("verb", verb), ("code", code)), n)
        for r, h in sorted(health.resources.items())
        for (verb, code), n in sorted(h.requests.items())
    ]


SELF: tuple[Family[Health], ...] = (
    Family(
        "kube_batch_exporter_build_info",
        "gauge",
        "Version of the exporter and of the Python running it.",
        ("version", "python_version"),
        _build_info,
    ),
    Family(
        "kube_batch_exporter_watch_events_total",
        "counter",
        "Watch events received, by resource and event type.",
        ("resource", "type"),
        _events,
    ),
    Family(
        "kube_batch_exporter_watch_restarts_total",
        "counter",
        "Watch streams restarted, by resource and why.",
        ("resource", "reason"),
        _restarts,
    ),
    Family(
        "kube_batch_exporter_relists_total",
        "counter",
        "Full LISTs after the first one (410 Gone or an error).",
        ("resource",),
        lambda health: _per_resource(health, lambda h: h.relists),
    ),
    Family(
        "kube_batch_exporter_api_requests_total",
        "counter",
        "Requests to the Kubernetes API by resource, verb and HTTP code.",
        ("resource", "verb", "code"),
        _requests,
    ),
    Family(
        "kube_batch_exporter_errors_total",
        "counter",
        "Problems survived, by kind (bad_line, bad_object, bad_annotation, ...).",
        ("kind",),
        lambda health: [("", (("kind", str(k)),), n) for k, n in sorted(health.errors.items())],
    ),
    Family(
        "kube_batch_exporter_owners_dropped_total",
        "counter",
        "Owners not tracked because --max-owners was reached.",
        (),
        lambda health: gauge(health.owners_dropped),
    ),
    Family(
        "kube_batch_exporter_leader",
        "gauge",
        "1 while this process exports the batch series (always without --leader-elect).",
        (),
        lambda health: gauge(float(health.leading())),
    ),
    Family(
        "kube_batch_exporter_shards",
        "gauge",
        "The number of shards, labelled with this replica's (1 and 0 when not sharded).",
        ("shard",),
        lambda health: [("", (("shard", str(health.shard[0])),), float(health.shard[1]))],
    ),
    Family(
        "kube_batch_exporter_objects",
        "gauge",
        "Objects held in the exporter's cache.",
        ("resource",),
        lambda health: _per_resource(health, lambda h: h.objects),
    ),
    Family(
        "kube_batch_exporter_synced",
        "gauge",
        "1 once the first full LIST of the resource completed.",
        ("resource",),
        lambda health: _per_resource(health, lambda h: float(h.synced)),
    ),
    Family(
        "kube_batch_exporter_last_event_timestamp_seconds",
        "gauge",
        "When the last watch event of the resource arrived.",
        ("resource",),
        lambda health: _per_resource(health, lambda h: h.last_event),
    ),
    Family(
        "kube_batch_exporter_last_scrape_duration_seconds",
        "gauge",
        "Time the previous /metrics response took to build.",
        (),
        lambda health: gauge(health.last_scrape[0]),
    ),
    Family(
        "kube_batch_exporter_last_checkpoint_timestamp_seconds",
        "gauge",
        "When the latest checkpoint was written (absent without --state-file/-configmap).",
        (),
        lambda health: gauge(health.last_checkpoint[0] if health.last_checkpoint else None),
    ),
    Family(
        "kube_batch_exporter_last_checkpoint_duration_seconds",
        "gauge",
        "Time the latest checkpoint took to encode, compress and write.",
        (),
        lambda health: gauge(health.last_checkpoint[1] if health.last_checkpoint else None),
    ),
    Family(
        "kube_batch_exporter_last_checkpoint_bytes",
        "gauge",
        "Compressed size of the latest checkpoint.",
        (),
        lambda health: gauge(health.last_checkpoint[2] if health.last_checkpoint else None),
    ),
    Family(
        "kube_batch_exporter_last_scrape_bytes",
        "gauge",
        "Size of the previous /metrics response, as sent (gzipped when asked).",
        (),
        lambda health: gauge(health.last_scrape[1]),
    ),
    Family(
        "kube_batch_exporter_event_loop_lag_seconds",
        "histogram",
        "How late the event loop woke a 100 ms sampler: how long one piece of work kept "
        "probes, scrapes and watch events waiting.",
        (),
        lambda health: histogram_samples(health.loop_lag),
    ),
)


class SelfMetrics(Collector):
    """The :data:`SELF` families of one Health object, for a client_python registry.

    Their counter series are born at zero like the batch series (:class:`Births`); the label
    sets known in advance are created at 0 at start-up by :class:`Health` itself.
    """

    def __init__(self, health: Health, births: Births) -> None:
        self._health = health
        self._births = births

    def collect(self) -> Iterator[Metric]:
        """Yield every self-metric family with its current samples."""
        now = self._births.now()
        for family in SELF:
            samples = family.generate(self._health)
            if family.type == "gauge":
                gauges = GaugeMetricFamily(family.name, family.help, labels=family.labels)
                for _, labels, value in samples:
                    gauges.add_metric([v for _, v in labels], value)
                yield gauges
                continue
            samples, _ = self._births.samples("", family.name, samples, now)
            if family.type == "counter":
                counters = CounterMetricFamily(family.name, family.help, labels=family.labels)
                for _, labels, value in samples:
                    counters.add_metric([v for _, v in labels], value)
                yield counters
            else:  # one unlabelled histogram series, from histogram_samples()
                buckets = [(dict(labels)["le"], v) for s, labels, v in samples if s == "_bucket"]
                total = next(v for s, _, v in samples if s == "_sum")
                histogram = HistogramMetricFamily(family.name, family.help)
                histogram.add_metric([], buckets, total)
                yield histogram


def registry(
    health: Health, new_series_delay: float = 0.0, clock: Callable[[], float] = time.time
) -> CollectorRegistry:
    """A private registry with the self-metrics and the standard process metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SelfMetrics(health, Births(new_series_delay, clock)))
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    return reg
