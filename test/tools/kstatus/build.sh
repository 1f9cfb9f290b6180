#!/usr/bin/env bash
# Builds the kstatus helper (main.go: the verdict of sigs.k8s.io/cli-utils'
# kstatus for objects read on stdin) from the Go module proxy, cached under
# $SWARM_OPERATOR_CACHE/tools/kstatus/<digest of its sources>; prints its path.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster/lib.sh
source "$here/../../cluster/lib.sh"

# A digest of everything the binary is built from: a changed source builds anew.
sources_digest() {
  cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-16
}

main() {
  # The machine's Go, where it is not on PATH.
  command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH="/usr/local/go/bin:$PATH"
  command -v go >/dev/null || die "go is required to build the kstatus helper"
  local dir out
  dir="$CLUSTER_CACHE/tools/kstatus/$(sources_digest)"
  out="$dir/kstatus"
  if [[ ! -x "$out" ]]; then
    mkdir -p "$dir"
    log "building the kstatus helper (sigs.k8s.io/cli-utils) into $dir"
    # Written under a temporary name and renamed, so a cut build leaves nothing.
    (cd "$here" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$out.tmp" .)
    mv -f "$out.tmp" "$out"
  fi
  printf '%s\n' "$out"
}

main "$@"
