#!/usr/bin/env bash
# make test's last step: the real-node e2e suite (test/e2e) when this machine
# can run it (root, and the node's Debian packages install), otherwise one
# line saying it was skipped and why (never silently). E2E=0 skips it on purpose.
# Then, with the image the suite built, the 3-node e2e tests (test/e2e/nodes:
# shards over nodes, a node lost mid-run) and the 3-node cluster test
# (test/cluster/multinode.bats, 1.5-2 min); MULTINODE=0 skips both on purpose.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

skip() {
  printf 'make test: e2e suite (test/e2e) SKIPPED: %s\n' "$1"
  exit 0
}

main() {
  [[ "${E2E:-1}" != 0 ]] || skip "E2E=0 was set"
  [[ $(id -u) -eq 0 ]] || skip "not root; the real node (containerd, kubelet, bridge CNI, iptables) needs root: run 'sudo make test' or 'sudo npm run test:e2e'"
  local log
  log=$(mktemp)
  # shellcheck disable=SC2064 # expand now: the path is fixed
  trap "rm -f '$log'" EXIT
  if ! bash "$ROOT/scripts/install-system-deps.sh" >"$log" 2>&1; then
    skip "the node's prerequisites did not install (scripts/install-system-deps.sh: $(tail -n 1 "$log"))"
  fi
  printf 'make test: e2e suite (test/e2e) on a real node: image build, cluster + node, chart, tests, teardown\n'
  local t=$SECONDS
  cd "$ROOT"
  npm run --silent test:e2e
  printf 'make test: e2e suite passed in %d s\n' "$(( SECONDS - t ))"
  if [[ "${MULTINODE:-1}" == 0 ]]; then
    printf 'make test: 3-node e2e (test/e2e/nodes) and cluster test (test/cluster/multinode.bats) SKIPPED: MULTINODE=0 was set\n'
    return 0
  fi
  t=$SECONDS
  E2E_SKIP_IMAGE_BUILD=1 E2E_IMAGE_DIR="$ROOT/.local/image-e2e" npm run --silent test:e2e:nodes
  printf 'make test: 3-node e2e passed in %d s\n' "$(( SECONDS - t ))"
  t=$SECONDS
  IMAGE_DIR="$ROOT/.local/image-e2e" bats test/cluster/multinode.bats
  printf 'make test: 3-node cluster test passed in %d s\n' "$(( SECONDS - t ))"
}

main "$@"
