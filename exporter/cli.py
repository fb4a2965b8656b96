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


def parser() -> argparse.ArgumentParser:
    """The argument parser, one flag per setting (``--help`` is generated from it)."""
    p = argparse.ArgumentParser(
        prog="kube-batch-exporter",
        description="Prometheus metrics for Kubernetes Jobs, Pods and CronJobs. "
        "Every flag can also be set as KBE_<FLAG> (e.g. KBE_MISSED_GRACE=2m).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    environ = os.environ if environ is None else environ
    p = parser()
    given = vars(p.parse_args(argv))
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
    """Console entry point: parse, configure logging, run until SIGTERM/SIGINT."""
    from exporter.app import lifecycle, logs  # deferred: `--help` should not import aiohttp

    settings = parse_settings(argv)
    logs.configure(settings.log_level, settings.log_format)
    sys.exit(lifecycle.run(settings))
