"""Command line: flags of contract §7, each also readable from ``KBE_<FLAG>``.

Env vars make the flags usable from a Deployment's ``env:`` and from Helm values without
templating argument lists; an explicit flag always wins over the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from exporter import __version__
from exporter.parsing import parse_go_duration
from exporter.settings import DEFAULT_DURATION_BUCKETS, Settings


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _duration(text: str) -> float:
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _buckets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers: {text!r}") from None
    if not values or list(values) != sorted(set(values)) or values[0] <= 0:
        raise argparse.ArgumentTypeError("buckets must be positive and strictly increasing")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kube-batch-exporter",
        description="Prometheus metrics for Kubernetes Jobs, Pods and CronJobs. "
        "Every flag can also be set as KBE_<FLAG> (e.g. KBE_MISSED_GRACE=2m).",
    )
    add: Callable[..., object] = p.add_argument
    add("--version", action="version", version=f"%(prog)s {__version__}")
    add(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)",
    )
    add("--context", metavar="NAME", help="kubeconfig context (default: current)")
    add(
        "--listen",
        metavar="HOST:PORT",
        type=_listen,
        default="0.0.0.0:9847",
        help="HTTP address for /metrics, /healthz, /readyz and / (default %(default)s)",
    )
    add(
        "--web-config-file",
        metavar="PATH",
        help="TLS and basic-auth users for the HTTP endpoints, in the Prometheus "
        "exporter-toolkit web config format (default: plain HTTP, no auth)",
    )
    add("--namespaces", metavar="A,B", type=_csv, default="", help="watch only these")
    add("--exclude-namespaces", metavar="A,B", type=_csv, default="", help="never watch these")
    add(
        "--job-family-label",
        metavar="KEY",
        help="label naming the family of Jobs without a CronJob owner",
    )
    add(
        "--missed-grace",
        metavar="DURATION",
        type=_duration,
        default="60s",
        help="grace before a CronJob slot counts as missed (default %(default)s)",
    )
    add(
        "--max-missed-backfill",
        metavar="N",
        type=_positive_int,
        default="100",
        help="most missed slots counted per CronJob after start-up (default %(default)s)",
    )
    add(
        "--max-owners",
        metavar="N",
        type=_positive_int,
        default="20000",
        help="cardinality guard for per-owner series (default %(default)s)",
    )
    add(
        "--duration-buckets",
        metavar="LIST",
        type=_buckets,
        default=",".join(f"{b:g}" for b in DEFAULT_DURATION_BUCKETS),
        help="histogram buckets in seconds (default %(default)s)",
    )
    add(
        "--forget-owners-after",
        metavar="DURATION",
        type=_duration,
        default="24h",
        help="drop the history of owners with no Job and no CronJob for this long "
        "(default %(default)s)",
    )
    add("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    add("--log-format", choices=["text", "json"], default="text")
    add(
        "--list-page-size",
        metavar="N",
        type=_positive_int,
        default="500",
        help="objects per LIST page (default %(default)s)",
    )
    add(
        "--watch-timeout",
        metavar="DURATION",
        type=_duration,
        default="5m",
        help="server-side timeout of one watch request (default %(default)s)",
    )
    add(
        "--pod-label-selector",
        metavar="SELECTOR",
        default="batch.kubernetes.io/controller-uid",
        help="selects the Job-owned Pods to watch (default %(default)s)",
    )
    return p


def _apply_env(parser: argparse.ArgumentParser, environ: dict[str, str]) -> None:
    """Turn each KBE_<FLAG> variable into that flag's default (so a flag still wins)."""
    for action in parser._actions:  # argparse has no public action list
        flags = [o for o in action.option_strings if o.startswith("--")]
        if not flags or action.dest in ("help", "version"):
            continue
        key = "KBE_" + flags[0][2:].upper().replace("-", "_")
        if key in environ:
            action.default = environ[key]


def parse_settings(
    argv: Sequence[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Parse flags and ``KBE_*`` variables into :class:`Settings`; exit 2 on bad input."""
    parser = _parser()
    _apply_env(parser, dict(os.environ) if environ is None else environ)
    ns = parser.parse_args(argv)
    host, port = ns.listen
    return Settings(
        kubeconfig=ns.kubeconfig or None,
        context=ns.context or None,
        listen_host=host,
        listen_port=port,
        web_config_file=ns.web_config_file or None,
        namespaces=ns.namespaces,
        exclude_namespaces=ns.exclude_namespaces,
        job_family_label=ns.job_family_label or None,
        missed_grace_seconds=ns.missed_grace,
        max_missed_backfill=ns.max_missed_backfill,
        max_owners=ns.max_owners,
        duration_buckets=ns.duration_buckets,
        forget_owners_after_seconds=ns.forget_owners_after,
        log_level=ns.log_level,
        log_format=ns.log_format,
        page_size=ns.list_page_size,
        watch_timeout_seconds=ns.watch_timeout,
        pod_label_selector=ns.pod_label_selector,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: parse, configure logging, run until SIGTERM/SIGINT."""
    from exporter import logs, running  # deferred: `--help` should not import aiohttp

    settings = parse_settings(argv)
    logs.configure(settings.log_level, settings.log_format)
    sys.exit(running.run(settings))
