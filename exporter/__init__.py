"""kube-batch-exporter: Prometheus metrics for Kubernetes Jobs, Pods and CronJobs."""

__version__ = "0.1.0"
