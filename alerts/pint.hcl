# pint (github.com/cloudflare/pint), run by `make lint` on the rule files, the PrometheusRule
# and the Helm chart's copy, offline. Zero findings is the bar: every problem is a bug.
parser {
  # the PrometheusRule nests its groups under spec: read it in relaxed mode
  relaxed = ["deploy/prometheus-operator/.*"]
}

rule {
  match {
    kind = "alerting"
  }
  # the severity ladder: critical pages, warning tickets, info reports; none is routed nowhere
  label "severity" {
    severity = "bug"
    required = true
    values   = ["critical", "warning", "info", "none"]
  }
  annotation "summary" {
    severity = "bug"
    required = true
  }
  annotation "description" {
    severity = "bug"
    required = true
  }
  annotation "runbook_url" {
    severity = "bug"
    required = true
    value    = "https://github.com/kube-batch-exporter/kube-batch-exporter/blob/main/docs/runbooks.md#[a-z]+"
  }
}
