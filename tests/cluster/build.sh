#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager, kubectl),
# etcd and kwok from published Go modules, with nothing fetched but from the Go module proxy.
#
# Why a generated tools module: k8s.io/kubernetes requires its staging modules at v0.0.0 and maps
# them with replace directives that consumers ignore, so `go install ...@v1.x` cannot work. We
# create a consumer module per pin, generate one `replace k8s.io/X => k8s.io/X v0.<minor>.<patch>`
# line for every staging module listed in the published go.mod, and build from there. Each
# component gets its own module so MVS never mixes the k8s.io/* versions of the three projects.
#
# Idempotent and cached by version: binaries land in $KBE_CACHE/bin/<pins-hash>/ with a stamp, so
# a second run with warm caches only checks the stamp. Prints the directory on the last line.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.34.10}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
cache=${KBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-batch-exporter}
pins="kube=${KUBE_VERSION} etcd=${ETCD_VERSION} kwok=${KWOK_VERSION} go=$(go env GOVERSION)"
key=$(printf '%s' "$pins" | sha256sum | cut -c1-12)
bin="$cache/bin/$key"
stamp="$bin/.complete"

say() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Module resolution prints hundreds of "go: downloading" lines; keep them for failures only.
quietly() {
  local out
  if ! out=$("$@" 2>&1); then printf '%s\n' "$out" >&2; return 1; fi
}

if [[ -f $stamp ]]; then
  say "cached: $pins"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { say "Go toolchain not found on PATH; install Go >= 1.26"; exit 3; }
mkdir -p "$bin" "$cache/mods"
started=$SECONDS

build_kube() {
  local mod="$cache/mods/kube-$KUBE_VERSION" staging="v0.${KUBE_VERSION#v1.}"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init kbe.invalid/kubetools >/dev/null 2>&1
  # Keep the GODEBUG defaults the Kubernetes code was released with (dependency godebug lines
  # are ignored, only the main module's count).
  go mod edit -godebug=default=go1.24
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local n=0
  while read -r m; do
    go mod edit -replace="$m=$m@$staging"; n=$((n + 1))
  done < <(go mod edit -json "$gomod" | python3 -c '
import json, sys
mod = json.load(sys.stdin)
for r in mod.get("Require") or []:
    if r["Version"] == "v0.0.0":
        print(r["Path"])
for r in mod.get("Replace") or []:
    if not r["New"]["Path"].startswith("./"):
        sys.exit("unexpected non-staging replace in k8s.io/kubernetes go.mod: %r" % r)
')
  say "kube: $n staging replaces generated (-> $staging); resolving modules"
  quietly go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBE_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION"
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  say "kube: compiling kube-apiserver, kube-controller-manager, kubectl (cold: about 8 min on 2 cores)"
  go build -p "$(nproc)" -trimpath -tags selinux,notest -ldflags "$ld" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  local mod="$cache/mods/etcd-$ETCD_VERSION"
  rm -rf "$mod"; mkdir -p "$mod"; cd "$mod"
  go mod init kbe.invalid/etcdtools >/dev/null 2>&1
  say "etcd: resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  quietly go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  say "etcd: compiling"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  say "kwok: compiling sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  GOBIN="$bin" quietly go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

say "building $pins into $bin"
( build_etcd ); say "etcd done ($((SECONDS - started))s)"
( build_kwok ); say "kwok done ($((SECONDS - started))s)"
( build_kube ); say "kube done ($((SECONDS - started))s)"
for b in etcd kwok kube-apiserver kube-controller-manager kubectl; do
  [[ -x $bin/$b ]] || { say "missing $bin/$b after build"; exit 1; }
done
printf '%s\n' "$pins" > "$stamp"
say "all built in $((SECONDS - started))s"
echo "$bin"
