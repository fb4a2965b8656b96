#!/usr/bin/env bash
# Debian packages the tests and the demo need beyond Python and Go: openssl (the local
# cluster's PKI), prometheus (promtool and the live Prometheus), prometheus-alertmanager, and
# python3-venv (the image-recipe test runs a venv as uid 65534, which cannot reach a Python
# installed under /root), with util-linux's unshare and setpriv, and chromium (the demo test
# opens the status page in a real browser, headless).
# Installs what is missing when run as root with apt-get; otherwise says what to install.
set -euo pipefail
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v setpriv >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
command -v chromium >/dev/null || need+=(chromium)
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
