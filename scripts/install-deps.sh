#!/usr/bin/env bash
# Installs every Debian package tally needs to build, test and benchmark.
# Used by .ci/run and by the README; safe to run again.
#   scripts/install-deps.sh           everything
#   scripts/install-deps.sh --build   only what `make all` needs (the Containerfile's build stage)
set -euo pipefail
build_pkgs=(
  build-essential pkg-config
  zlib1g-dev libxxhash-dev libjansson-dev
  libmicrohttpd-dev libcurl4-openssl-dev libzookeeper-mt-dev
)
pkgs=("${build_pkgs[@]}"
  clang libclang-rt-14-dev libcmocka-dev
  zookeeper default-jre-headless
  python3 python3-yaml python3-jsonschema time prometheus
  gnuplot-nox stress-ng
  chromium fonts-dejavu-core
)
# The browser test runs playwright-core under node: Debian's nodejs and npm, unless a node with
# its own npm is installed already (NodeSource's nodejs package conflicts with Debian's npm).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
[ "${1:-}" != --build ] || pkgs=("${build_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tests/e2e/k8s.sh renders deploy/k8s with `kubectl kustomize`, which needs kubectl 1.21 or
# newer (kustomize v4+). Debian bookworm's kubernetes-client is 1.20 and cannot render it, so it
# is not installed here: the machine images ship a current kubectl.
if [ "${1:-}" != --build ] && ! command -v kubectl >/dev/null 2>&1; then
  echo "install-deps.sh: warning: no kubectl on PATH; tests/e2e/k8s.sh needs kubectl >= 1.21" >&2
fi
