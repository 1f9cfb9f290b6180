#!/usr/bin/env bash
# Builds the e2e agent image without a registry: one static binary (probe.c)
# and a marker file, nothing else (no shell, no libc), as an OCI archive that
# `ctr -n k8s.io images import` tags REF. Needs gcc, umoci, jq.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

main() {
  local out=${1:?usage: build.sh OUT.oci.tar REF MARKER} ref=${2:?REF} marker=${3:?MARKER}
  local work tag=${ref##*:}
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" EXIT
  mkdir -p "$work/stage"
  gcc -static -O2 -s -Wall -Wextra -Werror -o "$work/stage/probe" "$HERE/probe.c"
  printf '%s\n' "$marker" >"$work/stage/only-here.txt"
  chmod 0755 "$work/stage/probe"
  chmod 0644 "$work/stage/only-here.txt"
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:$tag"
  umoci insert --image "$work/oci:$tag" --history.created_by "probe.c + marker" "$work/stage" /
  umoci config --image "$work/oci:$tag" --config.user 65533:65532 --config.entrypoint /probe --history.created_by "umoci config"
  umoci gc --layout "$work/oci"
  jq --arg n "$ref" '.manifests |= map(.annotations += {"io.containerd.image.name": $n})' "$work/oci/index.json" >"$work/index.json"
  mv "$work/index.json" "$work/oci/index.json"
  tar -C "$work/oci" --sort=name --owner=0 --group=0 --numeric-owner -cf "$out" oci-layout index.json blobs
}

main "$@"
