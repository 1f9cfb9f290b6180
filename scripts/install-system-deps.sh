#!/usr/bin/env bash
# Installs the Debian packages the V2 engine and the test suite need, when missing.
set -euo pipefail

# command-or-file -> Debian package
declare -A NEEDS=(
  [bats]=bats
  [parallel]=parallel # GNU parallel: bats --jobs
  [shellcheck]=shellcheck
  [inotifywait]=inotify-tools
  [jq]=jq
  # config/argocd health checks, tested under Lua 5.1 as Argo CD (gopher-lua) runs them
  [lua5.1]=lua5.1
  [/usr/lib/bash/ln]=bash-builtins
  # test/cluster (local control plane): certificates, readiness, ports, locks
  [openssl]=openssl
  [curl]=curl
  [ss]=iproute2
  [flock]=util-linux
  # scripts/image (image build without a registry): rootfs, OCI image, import check, pause
  [debootstrap]=debootstrap
  [umoci]=umoci
  [ctr]=containerd
  [gcc]=gcc
  # the agent launcher (scripts/build-native.sh --static): glibc's static libc.a
  [/usr/include/stdio.h]=libc6-dev
  # test/cluster/node.sh (a real node): runtime, bridge CNI, netfilter tools
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [conntrack]=conntrack
  # scripts/image/docker-build.sh: the Dockerfile built by a hand-started dockerd
  [dockerd]=docker.io
  # config/prometheus: promtool checks and tests the alert rules; the e2e suite runs a real Prometheus
  [promtool]=prometheus
)

missing=()
for probe in "${!NEEDS[@]}"; do
  if [[ "$probe" == /* ]]; then
    [[ -e "$probe" ]] || missing+=("${NEEDS[$probe]}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${NEEDS[$probe]}")
  fi
done

((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: please install: ${missing[*]}" >&2
  exit 1
fi
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
