"""Content negotiation of ``/metrics``: q-values and versions, as scrapers send them."""

from __future__ import annotations

import pytest

from exporter.metrics.registry import TEXT_TYPE, negotiate, wants_gzip

OM = "application/openmetrics-text; version={}; charset=utf-8"

PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "openmetrics", "content_type"),
    [
        (PROMETHEUS_3, True, OM.format("1.0.0")),
        (PROMETHEUS_2, True, OM.format("1.0.0")),
        # scrape_protocols: [PrometheusText0.0.4] in Prometheus 3
        ("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", False, TEXT_TYPE),
        ("text/plain;version=1.0.0", False, "text/plain; version=1.0.0; charset=utf-8"),
        # the text format preferred by q-value although OpenMetrics is listed first
        ("application/openmetrics-text;q=0.2, text/plain;q=0.9", False, TEXT_TYPE),
        ("application/openmetrics-text;version=0.0.1", True, OM.format("0.0.1")),
        # a version not served is refused, and so is q=0
        ("application/openmetrics-text;version=2.0.0, text/plain;q=0.1", False, TEXT_TYPE),
        ("application/openmetrics-text;q=0", False, TEXT_TYPE),
        ("Application/OpenMetrics-Text", True, OM.format("1.0.0")),
        # nothing acceptable, or garbage: the classic format, never an error
        ("", False, TEXT_TYPE),
        ("*/*", False, TEXT_TYPE),
        ("application/json", False, TEXT_TYPE),
        ("application/openmetrics-text;q=high,;;,=", False, TEXT_TYPE),
    ],
)
def test_the_preferred_servable_format_wins(
    accept: str, openmetrics: bool, content_type: str
) -> None:
    assert negotiate(accept) == (openmetrics, content_type)


@pytest.mark.parametrize(
    ("accept_encoding", "gzip"),
    [
        ("gzip", True),  # Prometheus
        ("gzip, deflate, br, zstd", True),  # a browser
        ("deflate;q=1, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=x", False),
    ],
)
def test_gzip_when_accepted_with_a_positive_q(accept_encoding: str, gzip: bool) -> None:
    assert wants_gzip(accept_encoding) is gzip
