"""The exporter's configuration: every setting, its default and its meaning, declared once.

Each field of :class:`Settings` is one command-line flag (``--`` plus the field name with
dashes) and one environment variable (``KBE_`` plus the field name in capitals); its
:class:`Flag` says how the value is written, and the docstring under it is the ``--help``
text (its first paragraph; the rest says why). :func:`described` reads those docstrings from
this module's source, as pydantic's ``use_attribute_docstrings`` does, so nothing is written
twice.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple

from exporter.cron.durations import format_go_duration, parse_go_duration

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


class Address(NamedTuple):
    """Where the HTTP server listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """``HOST:PORT``, ``:PORT`` (all interfaces) or ``[::1]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return Address(host.strip("[]") or "0.0.0.0", int(port))


_ORDINAL = re.compile(r"-(\d+)$")
"""A StatefulSet Pod's ordinal: the end of its name."""
_DNS = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def parse_csv(text: str) -> tuple[str, ...]:
    """Comma-separated names; blanks around and between them are ignored."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_positive_int(text: str) -> int:
    """A whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return int(text)


def parse_count(text: str) -> int:
    """A whole number of at least 0."""
    if not text.isdigit():
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(text)


def parse_object_name(text: str) -> str:
    """``NAMESPACE/NAME`` of a namespaced object, both valid DNS labels or subdomains."""
    namespace, sep, name = text.partition("/")
    if not sep or not _DNS.fullmatch(namespace) or not _DNS.fullmatch(name) or len(name) > 240:
        raise ValueError(f"expected NAMESPACE/NAME, got {text!r}")
    return text


def parse_name(text: str) -> str:
    """A valid DNS label or subdomain: the name of a namespace or an object."""
    if not _DNS.fullmatch(text) or len(text) > 253:
        raise ValueError(f"expected a DNS name, got {text!r}")
    return text


def parse_bool(text: str) -> bool:
    """``true`` or ``false`` as Go's flags write them (``1``, ``t``, ``TRUE``, ``0``, ...)."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_buckets(text: str) -> tuple[float, ...]:
    """Comma-separated histogram bounds, positive and strictly increasing."""
    try:
        values = tuple(float(v) for v in parse_csv(text))
    except ValueError:
        raise ValueError(f"expected comma-separated numbers: {text!r}") from None
    if not values or list(values) != sorted(set(values)) or values[0] <= 0:
        raise ValueError("buckets must be positive and strictly increasing")
    return values


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser that accepts exactly one of ``choices``."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


def _show_buckets(buckets: tuple[float, ...]) -> str:
    return ",".join(f"{b:g}" for b in buckets)


@dataclass(frozen=True, slots=True)
class Flag:
    """How a setting is written on the command line and in the environment."""

    metavar: str
    parse: Callable[[str], Any]
    """Text to value; raises ValueError with a message for the user."""
    show: Callable[[Any], str] | None
    """Value to text for ``--help``; None when the default is described in words."""
    bare: str | None = None
    """The value of the flag given alone (``--leader-elect`` means ``--leader-elect=true``)."""


def _setting(
    default: Any,
    metavar: str,
    parse: Callable[[str], Any],
    show: Any = str,
    bare: str | None = None,
) -> Any:
    return field(default=default, metadata={"flag": Flag(metavar, parse, show, bare)})


_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated settings; built by :func:`exporter.cli.parse_settings`."""

    kubeconfig: str | None = _setting(None, "PATH", str, None)
    """kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)."""
    context: str | None = _setting(None, "NAME", str, None)
    """kubeconfig context (default: the file's current context)."""
    listen: Address = _setting(Address("0.0.0.0", 9847), "HOST:PORT", parse_address)
    """HTTP address of /metrics, /healthz, /readyz and the status page /."""
    web_config_file: str | None = _setting(None, "PATH", str, None)
    """TLS and basic-auth users for the HTTP endpoints, in the Prometheus exporter-toolkit
    web config format (default: plain HTTP, no auth)."""
    namespaces: tuple[str, ...] = _setting((), "A,B", parse_csv, None)
    """Watch only these namespaces, one list+watch each (default: all namespaces)."""
    exclude_namespaces: tuple[str, ...] = _setting((), "A,B", parse_csv, None)
    """Never watch these namespaces (dropped server-side with a field selector)."""
    shard: int = _setting(0, "N", parse_count)
    """This replica's shard, from 0 (with --total-shards): it exports the namespaces whose
    name hashes to it, and only lists and watches those."""
    total_shards: int = _setting(1, "N", parse_positive_int)
    """The number of shards the cluster's namespaces are split over (default: 1, no sharding).
    With --pod and without this, the StatefulSet's replicas."""
    pod_namespace: str | None = _setting(None, "NAMESPACE", parse_name, None)
    """The namespace of --pod's StatefulSet: automatic sharding, as kube-state-metrics does
    it, with the Pod's ordinal as the shard (and without --total-shards, the StatefulSet's
    replicas as their number)."""
    job_family_label: str | None = _setting(None, "KEY", str, None)
    """Label whose value names the family of a Job that has no CronJob owner and no
    generateName."""
    missed_grace: float = _setting(60.0, "DURATION", parse_go_duration, format_go_duration)
    """Grace before a CronJob slot without a Job counts as missed."""
    max_missed_backfill: int = _setting(100, "N", parse_positive_int)
    """Most missed slots counted per CronJob for the time before start-up.

    A CronJob that has not run for a year would otherwise cost half a million slot
    computations at start-up.
    """
    max_owners: int = _setting(20000, "N", parse_positive_int)
    """Most owners (CronJobs and Job families) with run-history series: a cardinality guard."""
    runs_kept: int = _setting(20, "N", parse_positive_int)
    """Latest runs kept per owner for the status page and /api/v1/owners."""
    duration_buckets: tuple[float, ...] = _setting(
        DEFAULT_DURATION_BUCKETS, "LIST", parse_buckets, _show_buckets
    )
    """Histogram buckets of run durations and start delays, in seconds."""
    forget_owners_after: float = _setting(
        86400.0, "DURATION", parse_go_duration, format_go_duration
    )
    """Drop the run history of owners with no Job and no CronJob for this long."""
    new_series_delay: float = _setting(60.0, "DURATION", parse_go_duration, format_go_duration)
    """How long a new counter or histogram series is served at 0 before its true value.

    Prometheus' increase() and rate() cannot see a series' first sample, so a series born at
    1 hides its first event (an owner's first failure). Served at 0 for at least one scrape
    interval, the series is exact from its first event. Gauges are never delayed.
    """
    state_file: str | None = _setting(None, "PATH", str, None)
    """Keep the checkpoint in this file (default: no checkpoint, unless --state-configmap).

    On a PVC, or an emptyDir that outlives container restarts: a restarted exporter then
    continues every counter instead of starting over.
    """
    state_configmap: str | None = _setting(None, "NAMESPACE/NAME", parse_object_name, None)
    """Keep the checkpoint in this ConfigMap, compressed, split over NAME, NAME-1, ... when it
    outgrows one (default: none)."""
    state_interval: float = _setting(30.0, "DURATION", parse_go_duration, format_go_duration)
    """Longest time between two checkpoints (one is also written at SIGTERM).

    Keep it below --new-series-delay: a series then reaches a checkpoint before Prometheus
    can see its value, so a restart never shows it at 0 again.
    """
    leader_elect: bool = _setting(False, "BOOL", parse_bool, lambda v: str(v).lower(), "true")
    """Run as one of several replicas: only the holder of a Lease exports the batch series
    and writes the checkpoint, the others stand by with warm caches (needs
    --state-configmap).

    The names and defaults of this flag and the five after it are kube-controller-manager's.
    A new leader continues every counter from the old one's checkpoint, which is why a
    state ConfigMap is required (a file cannot be shared between pods on different nodes).
    """
    leader_elect_resource_name: str = _setting("kube-batch-exporter", "NAME", parse_name)
    """Name of the Lease."""
    leader_elect_resource_namespace: str | None = _setting(None, "NAMESPACE", parse_name, None)
    """Namespace of the Lease (default: that of --state-configmap)."""
    leader_elect_lease_duration: float = _setting(
        15.0, "DURATION", parse_go_duration, format_go_duration
    )
    """How long a standby waits, after the last renewal it saw, before taking the Lease."""
    leader_elect_renew_deadline: float = _setting(
        10.0, "DURATION", parse_go_duration, format_go_duration
    )
    """How long the leader may fail to renew before it stops exporting (below the lease
    duration, so it has stopped before anyone else can start)."""
    leader_elect_retry_period: float = _setting(
        2.0, "DURATION", parse_go_duration, format_go_duration
    )
    """How often the leader renews the Lease and a standby tries to take it."""
    pod: str | None = _setting(None, "NAME", str, None)
    """This replica's Pod: its identity in the Lease (default: the host name, which is the
    pod's name in Kubernetes; the shipped manifests set it from metadata.name) and, with
    --pod-namespace, its shard."""
    log_level: str = _setting("info", "{" + ",".join(_LOG_LEVELS) + "}", one_of(*_LOG_LEVELS))
    """Lowest level logged."""
    log_format: str = _setting("text", "{" + ",".join(_LOG_FORMATS) + "}", one_of(*_LOG_FORMATS))
    """Log lines as text, or as one JSON object per line for log pipelines."""
    list_page_size: int = _setting(500, "N", parse_positive_int)
    """Objects per LIST page.

    Bounds the memory of one response on large clusters: only one page of raw objects is
    held at a time.
    """
    list_timeout: float = _setting(120.0, "DURATION", parse_go_duration, format_go_duration)
    """Longest wait for one LIST page before it is retried."""
    watch_timeout: float = _setting(300.0, "DURATION", parse_go_duration, format_go_duration)
    """Server-side timeout of one watch request (plus up to 10 % jitter).

    The jitter keeps the watches of many exporters, or of many namespaces, from
    reconnecting together.
    """
    watch_inactivity_timeout: float = _setting(
        90.0, "DURATION", parse_go_duration, format_go_duration
    )
    """A watch that sends no byte for this long is re-opened from the last resourceVersion.

    The API server sends a bookmark about every minute, so silence this long means a dead
    connection that TCP did not notice.
    """
    backoff_base: float = _setting(0.5, "DURATION", parse_go_duration, format_go_duration)
    """Delay before retrying a failed request; it doubles per failure up to --backoff-cap.

    Half of each delay is fixed, which bounds the retry rate during an error storm; the other
    half is random, which spreads many watchers apart.
    """
    backoff_cap: float = _setting(30.0, "DURATION", parse_go_duration, format_go_duration)
    """Longest delay between retries of a failed request."""
    pod_label_selector: str = _setting(
        "batch.kubernetes.io/controller-uid", "SELECTOR", str, lambda v: v
    )
    """Selects the Job-owned Pods to watch (the Job controller sets this label, Kubernetes
    >= 1.27)."""

    def __post_init__(self) -> None:
        if self.state_file and self.state_configmap:
            raise ValueError("--state-file and --state-configmap exclude each other: choose one")
        if self.state_interval <= 0:
            raise ValueError("--state-interval must be longer than 0s")
        if self.leader_elect and not self.state_configmap:
            raise ValueError(
                "--leader-elect needs --state-configmap: a new leader continues from the "
                "checkpoint of the one before"
            )
        if not (
            self.leader_elect_lease_duration
            > self.leader_elect_renew_deadline
            > 1.2 * self.leader_elect_retry_period
            > 0
        ):
            raise ValueError(
                "--leader-elect-lease-duration must be longer than --leader-elect-renew-deadline, "
                "which must be longer than 1.2 times --leader-elect-retry-period"
            )
        if self.pod_namespace is not None:
            if self.pod is None or not _ORDINAL.search(self.pod):
                raise ValueError(
                    "--pod-namespace shards by the StatefulSet ordinal of --pod (NAME-N): "
                    f"got --pod {self.pod}"
                )
            if self.shard:
                raise ValueError("--pod-namespace takes the shard from --pod: drop --shard")
        elif not self.shard < self.total_shards:
            raise ValueError(
                f"--shard {self.shard} is not below --total-shards {self.total_shards}"
            )
        if self.namespaces and not self.scopes():
            raise ValueError(
                "every namespace of --namespaces is also in --exclude-namespaces: "
                "there would be nothing to watch"
            )

    def lease(self) -> tuple[str, str]:
        """Namespace and name of the leader-election Lease."""
        namespace = self.leader_elect_resource_namespace
        if namespace is None:
            namespace = (self.state_configmap or "default/").partition("/")[0]
        return namespace, self.leader_elect_resource_name + self.shard_suffix()

    def state_object(self) -> tuple[str, str] | None:
        """Namespace and name of the checkpoint ConfigMap, if any (one per shard)."""
        if not self.state_configmap:
            return None
        namespace, _, name = self.state_configmap.partition("/")
        return namespace, name + self.shard_suffix()

    def shard_suffix(self) -> str:
        """``-shard-N`` when sharded: each shard elects and checkpoints on its own."""
        return f"-shard-{self.shard_index()}" if self.sharded else ""

    @property
    def sharded(self) -> bool:
        """True when this replica exports one shard of the cluster's namespaces."""
        return self.total_shards > 1 or self.pod_namespace is not None

    def shard_index(self) -> int:
        """This replica's shard: --shard, or the ordinal of --pod."""
        found = _ORDINAL.search(self.pod or "") if self.pod_namespace else None
        return int(found.group(1)) if found else self.shard

    def scopes(self) -> list[str | None]:
        """The namespaces to list+watch separately, or ``[None]`` for all namespaces."""
        if not self.namespaces:
            return [None]
        return [ns for ns in self.namespaces if ns not in self.exclude_namespaces]


@dataclass(frozen=True, slots=True)
class Described:
    """One setting as the command line and the docs present it."""

    name: str
    flag: str
    env: str
    metavar: str
    parse: Callable[[str], Any]
    default: str | None
    """The default as the user would write it; None when it is described in words."""
    help: str
    """The first paragraph of the field's docstring, on one line."""
    bare: str | None
    """The value of the flag given alone, if it may be."""


def described() -> list[Described]:
    """Every setting, in declaration order, with its docstring as help text."""
    docs = _field_docs()
    out = []
    for f in fields(Settings):
        flag: Flag = f.metadata["flag"]
        assert f.default is not MISSING
        out.append(
            Described(
                name=f.name,
                flag="--" + f.name.replace("_", "-"),
                env="KBE_" + f.name.upper(),
                metavar=flag.metavar,
                parse=flag.parse,
                default=None if flag.show is None else flag.show(f.default),
                help=docs[f.name],
                bare=flag.bare,
            )
        )
    return out


def _field_docs() -> dict[str, str]:
    """The first paragraph of the docstring under each field of :class:`Settings`."""
    tree = ast.parse(inspect.getsource(sys.modules[__name__]))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    docs: dict[str, str] = {}
    for stmt, following in zip(cls.body, cls.body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            first = inspect.cleandoc(following.value.value).split("\n\n")[0]
            docs[stmt.target.id] = " ".join(first.split())
    return docs
