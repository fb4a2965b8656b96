#!/usr/bin/env bash
# Debian packages the tests and the demo need beyond Python and Go: openssl (the local
# cluster's PKI), prometheus (promtool and the live Prometheus) and prometheus-alertmanager.
# Installs what is missing when run as root with apt-get; otherwise says what to install.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
((${#need[@]})) || exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing Debian packages: ${need[*]} (install them, e.g. with sudo apt-get install)" >&2
  exit 1
fi
