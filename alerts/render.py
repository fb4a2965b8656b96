"""Generate the prometheus-operator PrometheusRule from the rule files in alerts/.

alerts/*.yaml are the single source (plain Prometheus rule files, loadable as they are);
deploy/prometheus-operator/prometheusrule.yaml wraps the same groups in a PrometheusRule, and
the Helm chart gets them as files/prometheusrule-groups.yaml (the spec of its PrometheusRule).
``make prometheusrule`` rewrites it; a test fails when it is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SOURCES = ("recording.yaml", "cronjobs.yaml", "jobs.yaml", "exporter.yaml")
OUTPUT = HERE.parent / "deploy" / "prometheus-operator" / "prometheusrule.yaml"
CHART_RULES = (
    HERE.parent / "deploy" / "helm" / "kube-batch-exporter" / "files" / "prometheusrule-groups.yaml"
)
HEADER = (
    "# Generated from alerts/*.yaml by `make prometheusrule`; do not edit.\n"
    "# kube-prometheus-stack only loads rules that carry its release label: add e.g.\n"
    "# `release: <your release>` to metadata.labels (or set ruleSelectorNilUsesHelmValues).\n"
)


def groups() -> list[dict[str, Any]]:
    """All rule groups, in a fixed order."""
    out: list[dict[str, Any]] = []
    for name in SOURCES:
        out.extend(yaml.safe_load((HERE / name).read_text())["groups"])
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as they are written in alerts/."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    """The PrometheusRule manifest as text."""
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "kube-batch-exporter",
            "labels": {
                "app.kubernetes.io/name": "kube-batch-exporter",
                "app.kubernetes.io/component": "alerting",
            },
        },
        "spec": {"groups": groups()},
    }
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100)


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    chart = "# Generated from alerts/*.yaml by `make prometheusrule`; do not edit.\n" + yaml.dump(
        {"groups": groups()}, Dumper=_Dumper, sort_keys=False, width=100
    )
    return {OUTPUT: render(), CHART_RULES: chart}


def main() -> int:
    """Write the files (or, with --check, fail when one differs)."""
    stale = [
        path for path, text in outputs().items() if not path.exists() or path.read_text() != text
    ]
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path} is out of date: run `make prometheusrule`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
