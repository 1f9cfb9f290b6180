#!/usr/bin/env bash
# Brings up (or reuses) a local cluster with a real node, the project image
# built and imported, and the operator installed by the Helm chart. Prints the
# admin kubeconfig path on stdout; progress goes to stderr.
# Used by the e2e jest project (test/e2e/global-setup.ts) and scripts/demo.sh.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly REPO_ROOT
# shellcheck source=test/cluster/lib.sh
source "$REPO_ROOT/test/cluster/lib.sh"

NAME=e2e
NODES=1
BUILD_IMAGE=1
RELEASE=swarm-operator
RELEASE_NS=swarm-system

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--name NAME] [--nodes N] [--skip-image-build] [--image-dir DIR] [--down]

Without --down: builds the image (scripts/image/build.sh, into
.local/image-NAME), starts cluster instance NAME with a real node (or reuses
it, re-importing the image), installs or upgrades the chart
charts/swarm-operator as release $RELEASE in namespace $RELEASE_NS, waits for
the operator to be ready, and prints the kubeconfig path.
With --down: stops the instance (node included) and removes its state.

Options:
  --name NAME          cluster instance (default e2e)
  --nodes N            real nodes (default 1; 2..15 each in its own network
                       namespace: test/cluster/README.md)
  --skip-image-build   reuse the archives in the image directory when present
  --image-dir DIR      the image archives' directory (default .local/image-NAME)
  --down               tear the instance down instead
Needs root (the node: containerd, kubelet, bridge CNI, iptables).
USAGE
}

image_version() { jq -r .version "$REPO_ROOT/package.json"; }

build_image() {
  local dir=$1
  if (( ! BUILD_IMAGE )) && compgen -G "$dir/swarm-operator_*.oci.tar" >/dev/null; then
    log "reusing the image archives in $dir"
    return 0
  fi
  log "building the project image into $dir (scripts/image/build.sh)"
  local t=$SECONDS
  bash "$REPO_ROOT/scripts/image/build.sh" --out-dir "$dir" >/dev/null
  log "image built in $(( SECONDS - t )) s"
}

install_chart() {
  local kubeconfig=$1 tag=$2 helm kubectl
  helm=$(bin_path helm)
  kubectl=$(bin_path kubectl)
  local existed=0
  "$helm" --kubeconfig "$kubeconfig" status "$RELEASE" -n "$RELEASE_NS" >/dev/null 2>&1 && existed=1
  log "helm upgrade --install $RELEASE charts/swarm-operator (image swarm-operator:$tag)"
  "$helm" --kubeconfig "$kubeconfig" upgrade --install "$RELEASE" "$REPO_ROOT/charts/swarm-operator" \
    -n "$RELEASE_NS" --create-namespace \
    --set image.repository=swarm-operator --set image.tag="$tag" --set image.pullPolicy=IfNotPresent \
    --wait --timeout 5m >/dev/null
  if (( existed )); then
    # Same tag, new image content: restart so the operator runs what was just imported.
    "$kubectl" --kubeconfig "$kubeconfig" -n "$RELEASE_NS" rollout restart "deployment/$RELEASE" >/dev/null
  fi
  "$kubectl" --kubeconfig "$kubeconfig" -n "$RELEASE_NS" rollout status "deployment/$RELEASE" --timeout 180s >&2
}

main() {
  local down=0 image_dir=''
  while (( $# > 0 )); do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --nodes) NODES=${2:?--nodes needs a value}; shift ;;
      --skip-image-build) BUILD_IMAGE=0 ;;
      --image-dir) image_dir=${2:?--image-dir needs a value}; shift ;;
      --down) down=1 ;;
      -h|--help) usage; return ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || die "bad --name (use [a-z0-9-]): $NAME"
  if (( down )); then
    bash "$REPO_ROOT/test/cluster/cluster.sh" down --name "$NAME"
    return
  fi
  [[ $(id -u) -eq 0 ]] || die "the local node needs root"
  bash "$REPO_ROOT/scripts/install-system-deps.sh"
  [[ -n "$image_dir" ]] || image_dir="$REPO_ROOT/.local/image-$NAME"
  local kubeconfig running=0
  build_image "$image_dir"
  bash "$REPO_ROOT/test/cluster/cluster.sh" status --name "$NAME" >/dev/null 2>&1 && running=1
  kubeconfig=$(IMAGE_DIR="$image_dir" bash "$REPO_ROOT/test/cluster/cluster.sh" up --name "$NAME" --port-base auto --nodes "$NODES")
  if (( running )); then
    bash "$REPO_ROOT/test/cluster/node.sh" images --name "$NAME" --image-dir "$image_dir"
  fi
  install_chart "$kubeconfig" "$(image_version)"
  printf '%s\n' "$kubeconfig"
}

main "$@"
