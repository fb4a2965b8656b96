"""The exporter's configuration as one immutable record.

Everything that tunes behaviour lives here with its default and a comment on why, so the CLI,
the tests and the docs read the same table (see docs/configuration in README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1200,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings; built by :func:`exporter.cli.parse_settings`."""

    kubeconfig: str | None = None
    """Path to a kubeconfig; None means in-cluster, else $KUBECONFIG, else ~/.kube/config."""
    context: str | None = None
    """Kubeconfig context; None means the file's current context."""
    listen_host: str = "0.0.0.0"
    listen_port: int = 9847
    web_config_file: str | None = None
    """Exporter-toolkit web config: TLS and basic auth on the HTTP endpoints (securing.py)."""
    namespaces: tuple[str, ...] = ()
    """Watch only these namespaces (one list+watch per namespace); empty means all."""
    exclude_namespaces: tuple[str, ...] = ()
    """Namespaces dropped server-side with a field selector when watching all namespaces."""
    job_family_label: str | None = None
    """Label whose value names the family of a Job that has no CronJob owner."""
    missed_grace_seconds: float = 60.0
    max_missed_backfill: int = 100
    max_owners: int = 20000
    duration_buckets: tuple[float, ...] = DEFAULT_DURATION_BUCKETS
    forget_owners_after_seconds: float = 86400.0
    """An owner with no Job and no CronJob for this long loses its run history series."""
    log_level: str = "info"
    log_format: str = "text"
    page_size: int = 500
    """LIST page size: bounds the memory of one response on large clusters."""
    watch_timeout_seconds: float = 300.0
    """Server-side watch timeout; each request adds up to 10 % jitter so watches don't align."""
    inactivity_timeout_seconds: float = 90.0
    """No byte for this long on a watch (bookmarks arrive about every minute) means a dead
    connection: re-watch from the last resourceVersion."""
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    pod_label_selector: str = "batch.kubernetes.io/controller-uid"
    """Only Pods the Job controller made carry this label (Kubernetes >= 1.27)."""
