#!/usr/bin/env bash
# Shared settings for the local control plane scripts: pinned versions and the
# per-version binary cache (outside the work tree, never committed).
# Sourced, not run; the variables are used by the scripts that source it.
# shellcheck disable=SC2034

# 1.34 is the last kubelet that starts on cgroup v1 by default.
: "${K8S_VERSION:=v1.34.4}"
: "${ETCD_VERSION:=v3.6.16}"
: "${HELM_VERSION:=v3.19.5}"
# kind's default StorageClass: dynamic host-path volumes on the node.
: "${LOCAL_PATH_VERSION:=v0.0.30}"
# The S3-compatible server the results tests store into (Versity's gateway, posix backend).
: "${VERSITYGW_VERSION:=v1.8.0}"

CLUSTER_CACHE="${SWARM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-operator}"
K8S_BIN_DIR="$CLUSTER_CACHE/k8s/$K8S_VERSION/bin"
ETCD_BIN_DIR="$CLUSTER_CACHE/etcd/$ETCD_VERSION/bin"
HELM_BIN_DIR="$CLUSTER_CACHE/helm/$HELM_VERSION/bin"
LOCAL_PATH_BIN_DIR="$CLUSTER_CACHE/local-path-provisioner/$LOCAL_PATH_VERSION/bin"
VERSITYGW_BIN_DIR="$CLUSTER_CACHE/versitygw/$VERSITYGW_VERSION/bin"

# Binaries the control plane needs (cluster:up) and the ones a later real-node
# issue needs (built by `build.sh --all`).
CORE_K8S_BINS=(kube-apiserver kube-controller-manager)
NODE_K8S_BINS=(kube-scheduler kubelet kubectl)

log() { printf '[cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Path of a built binary by name (empty when it is not a known binary).
bin_path() {
  case "$1" in
    etcd) printf '%s\n' "$ETCD_BIN_DIR/etcd" ;;
    helm) printf '%s\n' "$HELM_BIN_DIR/helm" ;;
    local-path-provisioner) printf '%s\n' "$LOCAL_PATH_BIN_DIR/local-path-provisioner" ;;
    versitygw) printf '%s\n' "$VERSITYGW_BIN_DIR/versitygw" ;;
    *) printf '%s\n' "$K8S_BIN_DIR/$1" ;;
  esac
}
