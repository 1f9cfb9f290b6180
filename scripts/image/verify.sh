#!/usr/bin/env bash
# Checks the archives of build.sh with a real containerd (started here, on a
# private socket and root, stopped at exit): `ctr -n k8s.io images import`
# loads them under the tag kubelet asks for, and the image runs: non-root,
# the V2 engine's tools present, `cfn` answering, a V2 swarm on /dev/shm and a
# V1 swarm with SQLite.
set -euo pipefail

usage() {
  cat <<EOF2
Usage: scripts/image/verify.sh APP-ARCHIVE [PAUSE-ARCHIVE]

Imports the OCI archives into a throwaway containerd (namespace k8s.io) and
runs checks in the app image. Needs root, containerd, ctr, runc.
EOF2
}

log() { printf '[verify %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Reference containerd stores an archive under (its io.containerd.image.name).
archive_ref() {
  tar -xOf "$1" index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]'
}

start_containerd() {
  local dir=$1
  cat >"$dir/config.toml" <<EOF2
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
EOF2
  containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S "$dir/containerd.sock" ]] && ctr --address "$dir/containerd.sock" version >/dev/null 2>&1 && return
    kill -0 "$CONTAINERD_PID" 2>/dev/null || die "containerd exited: $(tail -5 "$dir/containerd.log")"
    sleep 0.1
  done
  die "containerd did not start: $(tail -5 "$dir/containerd.log")"
}

cleanup() {
  if [[ -n "${CONTAINERD_PID:-}" ]]; then
    kill "$CONTAINERD_PID" 2>/dev/null || true
    wait "$CONTAINERD_PID" 2>/dev/null || true
  fi
  # Snapshots may still be mounted if a run was interrupted.
  if [[ -n "${WORK:-}" ]]; then
    grep -o "${WORK}[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
  fi
}

run_in() {
  local ref=$1 id=$2
  shift 2
  # Like the pods: read-only root, a writable /tmp.
  ctr --address "$SOCK" -n k8s.io run --rm --read-only --mount "type=tmpfs,src=tmpfs,dst=/tmp,options=rw" "$ref" "$id" "$@"
}

# run_out VAR REF ID CMD...: VAR <- the stdout of run_in. ctr sometimes loses
# the output of a container that exits at once (containerd/containerd#770;
# seen here as `id -u` printing nothing once in CI): an empty answer is asked
# again, twice at most, under a fresh container id, and each retry is logged.
run_out() {
  local -n _out=$1
  local ref=$2 id=$3 try
  shift 3
  for try in 1 2 3; do
    _out=$(run_in "$ref" "$id-$try" "$@")
    [[ -n "$_out" ]] && return 0
    log "ctr returned no output from $id (try $try of 3)"
  done
  return 0
}

main() {
  case "${1:-}" in -h | --help) usage; return 0 ;; "") usage >&2; exit 2 ;; esac
  local app=$1 pause=${2:-}
  [[ -r "$app" ]] || die "cannot read $app"
  [[ $(id -u) -eq 0 ]] || die "needs root"
  WORK=$(mktemp -d /tmp/swarm-verify.XXXXXX)
  trap cleanup EXIT
  start_containerd "$WORK"
  SOCK="$WORK/containerd.sock"
  local ref
  ref=$(archive_ref "$app")
  ctr --address "$SOCK" -n k8s.io images import "$app" >&2
  ctr --address "$SOCK" -n k8s.io images ls -q | grep -qx "$ref" || die "$ref not imported"
  log "imported $ref"
  local out
  run_out out "$ref" t-id id -u
  [[ "$out" == 65532 ]] || die "runs as uid '$out', want 65532"
  if run_in "$ref" t-ro touch /app/written 2>/dev/null; then die "the root filesystem is writable"; fi
  run_in "$ref" t-tools bash -c 'jq --version && command -v inotifywait flock setsid timeout && test -r /usr/lib/bash/stat && node --version' >&2
  run_out out "$ref" t-help /usr/local/bin/cfn operator --help
  grep -q 'Usage: cfn operator' <<<"$out" || die "cfn operator --help failed"
  run_out out "$ref" t-coord /usr/local/bin/cfn coordinate --help
  grep -q 'Usage: cfn coordinate' <<<"$out" || die "cfn coordinate --help failed"
  # Both coordinators for real: V2 on the container's /dev/shm, V1 with SQLite on /tmp.
  run_out out "$ref" t-v2 /usr/local/bin/cfn run --version v2 --no-fallback --agents 5 --json --shm-path /dev/shm/cfn
  jq -e '.status == "completed" and .version == "v2" and .agents.completed == 5 and .deliveryRate == 100' <<<"$out" >/dev/null ||
    die "V2 run in the image did not deliver: $out"
  log "V2 run in the image: $(jq -c '{version, deliveryRate}' <<<"$out")"
  # No --memory-path: the image's CFN_MEMORY_PATH puts it on /tmp (the root is read-only).
  run_out out "$ref" t-v1 /usr/local/bin/cfn run --version v1 --agents 5 --json
  jq -e '.status == "completed" and .version == "v1" and .agents.completed == 5 and .deliveryRate == 100' <<<"$out" >/dev/null ||
    die "V1 run in the image did not deliver: $out"
  log "V1 run in the image: $(jq -c '{version, deliveryRate}' <<<"$out")"
  if [[ -n "$pause" ]]; then
    ref=$(archive_ref "$pause")
    ctr --address "$SOCK" -n k8s.io images import "$pause" >&2
    ctr --address "$SOCK" -n k8s.io run -d "$ref" t-pause >/dev/null
    sleep 0.3
    ctr --address "$SOCK" -n k8s.io task ls | grep -q 't-pause.*RUNNING' || die "pause is not running"
    ctr --address "$SOCK" -n k8s.io task kill -s SIGTERM t-pause
    local i
    for ((i = 0; i < 50; i++)); do
      ctr --address "$SOCK" -n k8s.io task ls | grep -q 't-pause.*STOPPED' && break
      sleep 0.1
    done
    ctr --address "$SOCK" -n k8s.io task ls | grep -q 't-pause.*STOPPED' || die "pause did not stop on SIGTERM"
    ctr --address "$SOCK" -n k8s.io task rm t-pause >/dev/null
    ctr --address "$SOCK" -n k8s.io container rm t-pause
    log "pause $ref runs and stops on SIGTERM"
  fi
  log "ok"
}

main "$@"
