"""Command line: one flag per setting, each also readable from ``KBE_<SETTING>``.

The flags are generated from :class:`~exporter.app.settings.Settings`, so a setting cannot
exist without its flag, its variable and its help. Env vars make the flags usable from a
Deployment's ``env:`` and from Helm values without templating argument lists; an explicit
flag always wins over the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exporter import __version__
from exporter.app.settings import Settings, described


def _for_argparse(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn ValueError into ArgumentTypeError, whose message argparse prints as it is."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def parser(report: bool = False) -> argparse.ArgumentParser:
    """The argument parser, one flag per setting (``--help`` is generated from it).

    ``report``: the one-shot ``report`` command's, which adds ``--output``.
    """
    p = argparse.ArgumentParser(
        prog="kube-batch-exporter report" if report else "kube-batch-exporter",
        description=(
            "List Jobs, Pods and CronJobs once and print every owner's status; exit 1 when "
            "one is failing, overdue or has an unusable schedule, 3 when the cluster cannot "
            "be listed."
            if report
            else "Prometheus metrics for Kubernetes Jobs, Pods and CronJobs "
            "('kube-batch-exporter report --help' for the one-shot status report)."
        )
        + " Every flag can also be set as KBE_<FLAG> (e.g. KBE_MISSED_GRACE=2m).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if report:
        p.add_argument(
            "--output",
            choices=("table", "json"),
            default="table",
            help="a table (coloured on a terminal) or the JSON of /api/v1/owners (default: table).",
        )
    for s in described():
        text = (
            s.help if s.default is None else f"{s.help.removesuffix('.')} (default: {s.default})."
        )
        p.add_argument(
            s.flag,
            dest=s.name,
            metavar=s.metavar,
            type=_for_argparse(s.parse),
            help=text.replace("%", "%%"),
            **({} if s.bare is None else {"nargs": "?", "const": s.parse(s.bare)}),
        )
    return p


def parse_settings(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Parse flags and ``KBE_*`` variables into :class:`Settings`; exit 2 on bad input."""
    p = parser()
    return _settings(p, vars(p.parse_args(argv)), os.environ if environ is None else environ)


def parse_report(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Settings, str]:
    """The settings and ``--output`` of ``report``'s arguments (after the word report)."""
    p = parser(report=True)
    given = vars(p.parse_args(argv))
    output = given.pop("output")
    return _settings(p, given, os.environ if environ is None else environ), output


def _settings(
    p: argparse.ArgumentParser, given: dict[str, Any], environ: Mapping[str, str]
) -> Settings:
    values: dict[str, Any] = {}
    for s in described():
        value = given[s.name]
        if value is None and s.env in environ:
            try:
                value = s.parse(environ[s.env])
            except ValueError as exc:
                p.error(f"argument {s.flag} (from {s.env}): {exc}")
        if value is not None:
            values[s.name] = value
    try:
        return Settings(**values)
    except ValueError as exc:
        p.error(str(exc))


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: parse, configure logging, run until SIGTERM (``report``: once)."""
    args = list(sys.argv[1:] if argv is None else argv)
    # the app is imported after parsing: `--help` and a usage error need no aiohttp
    if args[:1] == ["report"]:
        settings, output = parse_report(args[1:])
        from exporter.app import logs, reporting

        quiet = "warning" if settings.log_level == "info" else settings.log_level
        logs.configure(quiet, settings.log_format)  # the table is the output, not the log
        sys.exit(reporting.run(settings, output))
    settings = parse_settings(args)
    from exporter.app import lifecycle, logs

    logs.configure(settings.log_level, settings.log_format)
    sys.exit(lifecycle.run(settings))
