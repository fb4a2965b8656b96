#!/usr/bin/env bash
# Build one helper from its published Go module, cached by version; prints its path.
#
#   helm                the chart tests render deploy/helm with it (helm template, helm lint)
#   monitoring-crds     prometheus-operator's ServiceMonitor and PrometheusRule CRDs, generated
#                       by controller-gen from the published API types (the operator's root
#                       module is not served by our proxy), so server dry-runs check our objects
#                       against the real schemas; prints the directory holding them
#   kube-state-metrics  the comparison exporter of `make bench`
#   prometheus          Prometheus 3 and its promtool: the live alert and dashboard tests run
#                       on it, the rule unit tests on it and on Debian's 2.42; prints the
#                       directory holding both
#   alertmanager        the current Alertmanager and amtool (the live alert test, check-config);
#                       prints the directory holding both
#   pint                Cloudflare's rule linter, run by `make lint`
#   kube-score          the manifest checks of the deploy tests
#
# Each gets its own tools module so MVS never mixes its k8s.io/* versions with another's. A
# tools module (require + tool lines, then `go mod tidy`) is used rather than `go install
# pkg@version`, because go install also asks the proxy for the module's version list, which
# the proxy refuses for kube-state-metrics. Prometheus, Alertmanager, pint and kube-score are
# built inside their own downloaded module instead (GOWORK=off: Prometheus' go.work names
# folders its module zip leaves out), so they compile with exactly the versions they release.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
KSM_VERSION=${KSM_VERSION:-v2.18.0}
MONITORING_VERSION=${MONITORING_VERSION:-v0.95.2}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.23.0}
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0}      # Prometheus 3.16.0
ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-v0.35.0}
PINT_VERSION=${PINT_VERSION:-v0.87.0}
KUBE_SCORE_VERSION=${KUBE_SCORE_VERSION:-v1.20.0}

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

# module_dir MODULE@VERSION : the directory of the downloaded (read-only) module.
module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# in_dir DIR RELEASE TAGS PACKAGE... : build these commands of the module in DIR into $out,
# with these build tags.
in_dir() {
  local dir=$1 release=$2 tags=$3; shift 3
  cd "$dir"
  GOWORK=off quietly go build -p "$(nproc)" -trimpath -tags "$tags" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release -X main.version=$release" \
    -o "$out/" "$@"
}

name=${1:?usage: build-tool.sh helm|monitoring-crds|kube-state-metrics|prometheus|alertmanager|pint|kube-score}
case $name in
  helm) version=$HELM_VERSION ;;
  kube-state-metrics) version=$KSM_VERSION ;;
  monitoring-crds) version=$MONITORING_VERSION-$CONTROLLER_TOOLS_VERSION ;;
  prometheus) version=$PROMETHEUS_VERSION ;;
  alertmanager) version=$ALERTMANAGER_VERSION ;;
  pint) version=$PINT_VERSION ;;
  kube-score) version=$KUBE_SCORE_VERSION ;;
  *) say "unknown tool $name"; exit 2 ;;
esac
out="$cache/tools/$name-$version-$(go env GOVERSION)"
# Tools that ship several commands print their directory, the others the command's path.
result() {
  case $name in
    monitoring-crds|prometheus|alertmanager) echo "$out" ;;
    *) echo "$out/$name" ;;
  esac
}
if [[ -f $out/.complete ]]; then
  result
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
  prometheus)
    # 3.x as 0.3xx.y: the Go module's tags; the release is 3.<xx>.<y>.
    release=${PROMETHEUS_VERSION#v0.3}; release=3.$((10#${release%%.*})).${release#*.}
    # remove_all_sd: the tests configure static targets, so only file and http discovery are
    # compiled in (the cloud ones are most of the build). No builtinassets: the web UI needs an
    # npm build (README: the demo keeps Debian's Prometheus for its UI).
    say "prometheus $release: compiling prometheus and promtool (cold: about 6 min on 2 cores)"
    in_dir "$(module_dir "github.com/prometheus/prometheus@$PROMETHEUS_VERSION")" "$release" remove_all_sd \
      ./cmd/prometheus ./cmd/promtool
    ;;
  alertmanager)
    # Its web UI is built by npm into ui/app/dist, which the module zip leaves out and go:embed
    # requires: a writable copy with a one-line page there builds, and the API is whole.
    rm -rf "$mod"; mkdir -p "${mod%/*}"
    cp -r "$(module_dir "github.com/prometheus/alertmanager@$ALERTMANAGER_VERSION")" "$mod"
    chmod -R u+w "$mod"
    for ui in elm mantine; do
      mkdir -p "$mod/ui/app/dist/$ui"
      echo '<p>Web UI not built: kube-batch-exporter builds Alertmanager for its API.</p>' \
        > "$mod/ui/app/dist/$ui/index.html"
    done
    say "alertmanager $ALERTMANAGER_VERSION: compiling alertmanager and amtool (cold: about 2 min)"
    in_dir "$mod" "${ALERTMANAGER_VERSION#v}" "" ./cmd/alertmanager ./cmd/amtool
    ;;
  pint)
    say "pint $PINT_VERSION: compiling (cold: about 2 min)"
    in_dir "$(module_dir "github.com/cloudflare/pint@$PINT_VERSION")" "${PINT_VERSION#v}" "" ./cmd/pint
    ;;
  kube-score)
    say "kube-score $KUBE_SCORE_VERSION: compiling (cold: about 1 min)"
    in_dir "$(module_dir "github.com/zegl/kube-score@$KUBE_SCORE_VERSION")" "${KUBE_SCORE_VERSION#v}" "" \
      ./cmd/kube-score
    ;;
esac
touch "$out/.complete"
say "$name built in $((SECONDS - started))s"
result
