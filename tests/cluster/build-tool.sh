#!/usr/bin/env bash
# Build one helper from its published Go module, cached by version; prints its path.
#
#   helm                the chart tests render deploy/helm with it (helm template, helm lint)
#   monitoring-crds     prometheus-operator's ServiceMonitor and PrometheusRule CRDs, generated
#                       by controller-gen from the published API types (the operator's root
#                       module is not served by our proxy), so server dry-runs check our objects
#                       against the real schemas; prints the directory holding them
#   kube-state-metrics  the comparison exporter of `make bench`
#
# Each gets its own tools module so MVS never mixes its k8s.io/* versions with another's. A
# tools module (require + tool lines, then `go mod tidy`) is used rather than `go install
# pkg@version`, because go install also asks the proxy for the module's version list, which
# the proxy refuses for kube-state-metrics.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
KSM_VERSION=${KSM_VERSION:-v2.18.0}
MONITORING_VERSION=${MONITORING_VERSION:-v0.95.2}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.23.0}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
cache=${KBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-batch-exporter}
say() { printf '[build-tool %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
quietly() {
  local out
  if ! out=$("$@" 2>&1); then printf '%s\n' "$out" >&2; return 1; fi
}

# tools_module DIR MODULE@VERSION... : a module in DIR requiring these, ready to build.
tools_module() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  go mod init kbe.invalid/tools >/dev/null 2>&1
  local req
  for req in "$@"; do go mod edit -require="$req"; done
}

name=${1:?usage: build-tool.sh helm|monitoring-crds|kube-state-metrics}
case $name in
  helm) version=$HELM_VERSION ;;
  kube-state-metrics) version=$KSM_VERSION ;;
  monitoring-crds) version=$MONITORING_VERSION-$CONTROLLER_TOOLS_VERSION ;;
  *) say "unknown tool $name"; exit 2 ;;
esac
out="$cache/tools/$name-$version-$(go env GOVERSION)"
if [[ -f $out/.complete ]]; then
  [[ $name == monitoring-crds ]] && echo "$out" || echo "$out/$name"
  exit 0
fi
command -v go >/dev/null || { say "Go toolchain not found on PATH; install Go >= 1.26"; exit 3; }
started=$SECONDS
mkdir -p "$out"
mod="$cache/mods/$name-$version"
case $name in
  helm)
    tools_module "$mod" "helm.sh/helm/v3@$HELM_VERSION"
    go mod edit -tool=helm.sh/helm/v3/cmd/helm
    say "helm $HELM_VERSION: resolving and compiling (cold: about 2 min)"
    quietly go mod tidy
    go build -trimpath -ldflags "-s -w" -o "$out/helm" helm.sh/helm/v3/cmd/helm
    ;;
  kube-state-metrics)
    tools_module "$mod" "k8s.io/kube-state-metrics/v2@$KSM_VERSION"
    go mod edit -tool=k8s.io/kube-state-metrics/v2
    say "kube-state-metrics $KSM_VERSION: resolving and compiling (cold: about 2 min)"
    quietly go mod tidy
    go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${KSM_VERSION#v}" \
      -o "$out/kube-state-metrics" k8s.io/kube-state-metrics/v2
    ;;
  monitoring-crds)
    api=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
    tools_module "$mod" "$api@$MONITORING_VERSION" "sigs.k8s.io/controller-tools@$CONTROLLER_TOOLS_VERSION"
    go mod edit -tool=sigs.k8s.io/controller-tools/cmd/controller-gen
    printf 'package tools\n\nimport _ "%s/v1"\n' "$api" > deps.go
    say "monitoring CRDs $MONITORING_VERSION: building controller-gen $CONTROLLER_TOOLS_VERSION"
    quietly go mod tidy
    go build -o "$mod/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
    "$mod/controller-gen" crd:crdVersions=v1,maxDescLen=0 paths="$api/v1" output:crd:dir="$mod/crds"
    cp "$mod/crds/monitoring.coreos.com_servicemonitors.yaml" \
      "$mod/crds/monitoring.coreos.com_prometheusrules.yaml" "$out/"
    ;;
esac
touch "$out/.complete"
say "$name built in $((SECONDS - started))s"
[[ $name == monitoring-crds ]] && echo "$out" || echo "$out/$name"
