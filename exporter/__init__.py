"""kube-batch-exporter: Prometheus metrics for Kubernetes Jobs, Pods and CronJobs.

docs/architecture.md describes the layers; "contract §N" in a docstring is section N of
docs/contract.md, the public API.
"""

__version__ = "0.1.0"
