"""Write grafana/dashboards/*.json, the provisioning ConfigMap and the Helm chart's copies.

``make dashboards`` runs it; ``--check`` exits 1 when a committed file differs from what the
code generates (a test runs that), so the JSON never drifts from its source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from grafana.dashboards import DASHBOARDS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "grafana" / "dashboards"
CONFIGMAP = ROOT / "deploy" / "prometheus-operator" / "grafana-dashboards.yaml"
CHART = ROOT / "deploy" / "helm" / "kube-batch-exporter" / "files" / "dashboards"
HEADER = (
    "# Generated from grafana/dashboards.py by `make dashboards`; do not edit.\n"
    "# Grafana's dashboard sidecar (e.g. kube-prometheus-stack) loads ConfigMaps labelled\n"
    '# grafana_dashboard: "1"; the folder annotation is read by sidecars that support it.\n'
)


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    models = {
        f"{d.uid.removeprefix('kbe-')}.json": json.dumps(d.render(), indent=2) + "\n"
        for d in DASHBOARDS
    }
    files = {OUT / name: text for name, text in models.items()}
    files |= {CHART / name: text for name, text in models.items()}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kube-batch-exporter-dashboards",
            "labels": {
                "grafana_dashboard": "1",
                "app.kubernetes.io/name": "kube-batch-exporter",
                "app.kubernetes.io/component": "dashboards",
            },
            "annotations": {"grafana_folder": "Batch"},
        },
        "data": models,
    }
    files[CONFIGMAP] = HEADER + yaml.safe_dump(configmap, sort_keys=False, width=100)
    return files


def main() -> int:
    """Write the files, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args()
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        verb = "out of date (run `make dashboards`)" if args.check else "written"
        print(f"{path.relative_to(ROOT)}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
