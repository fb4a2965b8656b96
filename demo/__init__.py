"""`make demo`: a local cluster with sample workloads and the exporter."""
