"""Grafana dashboards for kube-batch-exporter, generated from code (see build.py)."""
