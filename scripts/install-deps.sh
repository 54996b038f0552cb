#!/usr/bin/env bash
# Installs every Debian package tally needs to build, test and benchmark.
# Used by .ci/run and by the README; safe to run again.
set -euo pipefail
pkgs=(
  build-essential clang libclang-rt-14-dev pkg-config
  zlib1g-dev libxxhash-dev libjansson-dev libcmocka-dev
  libmicrohttpd-dev libcurl4-openssl-dev
  libzookeeper-mt-dev zookeeper default-jre-headless
  python3 time prometheus
  gnuplot-nox stress-ng
  chromium fonts-dejavu-core
)
# The browser test runs playwright-core under node: Debian's nodejs and npm, unless a node with
# its own npm is installed already (NodeSource's nodejs package conflicts with Debian's npm).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
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
