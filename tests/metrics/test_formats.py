"""Both exposition formats, checked by Prometheus 3's own tools.

A scrape with every family present and a hostile label value (quote, backslash, newline) is
fed to ``promtool check metrics`` (the text format's linter) and, for OpenMetrics, to
Prometheus' OpenMetrics parser through ``promtool tsdb create-blocks-from openmetrics``,
which needs a timestamp on every sample, so one is appended for the check.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from tests.cluster.controlplane import tool
from tests.world import every_family

HOSTILE = 'a"b\\c\nd'


def promtool() -> str:
    return str(tool("prometheus") / "promtool")


def scrape(openmetrics: bool) -> bytes:
    return asyncio.run(every_family(HOSTILE).exporter.exposition.scrape(openmetrics))


def test_promtool_finds_nothing_to_lint_in_the_text_format() -> None:
    body = scrape(False)
    assert b'namespace="a\\"b\\\\c\\nd"' in body  # the hostile value is in it, escaped
    result = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip() and not result.stderr.strip()


def test_openmetrics_passes_prometheus_parser_and_the_linter_up_to_counter_names() -> None:
    body = scrape(True)
    assert body.endswith(b"# EOF\n")
    # check metrics reads OpenMetrics with the text parser, so it misses the HELP of every
    # counter (OpenMetrics names the family without _total, as it must): that, only
    result = subprocess.run([promtool(), "check", "metrics"], input=body, capture_output=True)
    complaints = set(result.stdout.decode().splitlines() + result.stderr.decode().splitlines())
    counters = set(re.findall(rb"^# TYPE (\S+) counter$", body, re.MULTILINE))
    assert complaints == {f"{c.decode()}_total no help text" for c in counters}


def test_openmetrics_parses_as_prometheus_3_reads_it(tmp_path: Path) -> None:
    lines = scrape(True).decode().splitlines()
    stamped = [line if line.startswith("#") else f"{line} 1767225600" for line in lines]
    (tmp_path / "scrape.om").write_text("\n".join(stamped) + "\n")
    result = subprocess.run(
        [promtool(), "tsdb", "create-blocks-from", "openmetrics", "scrape.om", "blocks"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Wrote block" in result.stdout + result.stderr or list((tmp_path / "blocks").iterdir())
