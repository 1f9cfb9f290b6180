#!/usr/bin/env bash
# Builds the pinned control-plane binaries from the Go module proxy into a
# per-version cache outside the work tree; a binary already cached is reused.
set -euo pipefail

# shellcheck source=test/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--all] [--s3] [--print-dirs] [--help]

Builds into \$SWARM_OPERATOR_CACHE (default ~/.cache/swarm-operator):
  default     etcd $ETCD_VERSION, ${CORE_K8S_BINS[*]} $K8S_VERSION, helm $HELM_VERSION
  --control-plane  only etcd and ${CORE_K8S_BINS[*]} (what cluster.sh up needs)
  --all       also ${NODE_K8S_BINS[*]} and local-path-provisioner
              $LOCAL_PATH_VERSION (for a real node), and versitygw
  --s3        only versitygw $VERSITYGW_VERSION (the S3-compatible server of the results tests)
  --print-dirs  print the bin directories and exit
Only missing binaries are built. Build times are appended to
$CLUSTER_CACHE/build-times.tsv. Environment: K8S_VERSION, ETCD_VERSION, HELM_VERSION,
LOCAL_PATH_VERSION, VERSITYGW_VERSION.
USAGE
}

# Runs "$@" in the background with a progress line every minute (so CI shows
# life during a long cold build) and records the wall time for binary $1.
timed_build() {
  local name=$1 version=$2; shift 2
  local start=$SECONDS next=$(( SECONDS + 60 )) pid rc=0
  log "building $name $version (cold builds take minutes on 2 cores)"
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS >= next )); then
      log "still building $name ($(( (SECONDS - start) / 60 )) min)"
      (( next += 60 ))
    fi
  done
  wait "$pid" || rc=$?
  (( rc == 0 )) || die "building $name failed (exit $rc)"
  local took=$(( SECONDS - start ))
  log "built $name $version in ${took}s"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$version" "$took" "$(nproc)cpu" \
    >>"$CLUSTER_CACHE/build-times.tsv"
}

# Writes a wrapper module that pins every staging module k8s.io/kubernetes
# replaces with ./staging/... to the matching v0.x.y release, generated from
# the release's own go.mod (never hand-typed).
k8s_wrapper() {
  local dir=$1 minor patch staging_version gomod
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  patch=${K8S_VERSION##*.}
  staging_version="v0.$minor.$patch"
  [[ -f "$dir/go.sum" && -f "$dir/.complete" ]] && return 0
  rm -rf "$dir"; mkdir -p "$dir"
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r '.GoMod // empty')
  [[ -n "$gomod" && -f "$gomod" ]] || die "cannot download k8s.io/kubernetes@$K8S_VERSION"
  local godir godebug
  godir=$(go mod edit -json "$gomod" | jq -r '.Go')
  (
    cd "$dir"
    go mod init swarm-operator.local/k8s-wrapper >/dev/null 2>&1
    go mod edit -go="$godir" -require="k8s.io/kubernetes@$K8S_VERSION"
    # Keep the release's runtime GODEBUG defaults.
    while read -r godebug; do
      [[ -n "$godebug" ]] && go mod edit -godebug="$godebug"
    done < <(go mod edit -json "$gomod" | jq -r '.Godebug // [] | .[] | "\(.Key)=\(.Value)"')
    local args=()
    while IFS=$'\t' read -r old new version; do
      if [[ "$new" == ./staging/* ]]; then
        args+=("-replace=$old=$old@$staging_version")
      elif [[ -n "$version" ]]; then
        args+=("-replace=$old=$new@$version")
      fi
    done < <(go mod edit -json "$gomod" | jq -r '.Replace // [] | .[] | [.Old.Path, .New.Path, (.New.Version // "")] | @tsv')
    (( ${#args[@]} > 0 )) || die "no replace lines found in $gomod"
    go mod edit "${args[@]}"
    log "k8s wrapper: ${#args[@]} replace lines (staging at $staging_version)"
    local pkgs=()
    for b in "${CORE_K8S_BINS[@]}" "${NODE_K8S_BINS[@]}"; do
      pkgs+=("k8s.io/kubernetes/cmd/$b@$K8S_VERSION")
    done
    go get "${pkgs[@]}"
    touch .complete
  )
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%FT%TZ)"
  done
  printf '%s\n' "$flags"
}

build_k8s() {
  local name=$1 out
  out=$(bin_path "$name")
  [[ -x "$out" ]] && return 0
  local wrapper="$CLUSTER_CACHE/k8s/$K8S_VERSION/src"
  k8s_wrapper "$wrapper"
  mkdir -p "$K8S_BIN_DIR"
  # Written under a temporary name and renamed, so a cut build leaves nothing.
  # shellcheck disable=SC2016 # expanded by the inner bash
  timed_build "$name" "$K8S_VERSION" \
    bash -c 'cd "$1" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "$2" -o "$3.tmp" "k8s.io/kubernetes/cmd/$4" && mv -f "$3.tmp" "$3"' \
    _ "$wrapper" "$(k8s_ldflags)" "$out" "$name"
}

build_etcd() {
  local out dir="$CLUSTER_CACHE/etcd/$ETCD_VERSION/src"
  out=$(bin_path etcd)
  [[ -x "$out" ]] && return 0
  if [[ ! -f "$dir/.complete" ]]; then
    rm -rf "$dir"; mkdir -p "$dir"
    (
      cd "$dir"
      go mod init swarm-operator.local/etcd-wrapper >/dev/null 2>&1
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      touch .complete
    )
  fi
  mkdir -p "$ETCD_BIN_DIR"
  # shellcheck disable=SC2016 # expanded by the inner bash
  timed_build etcd "$ETCD_VERSION" \
    bash -c 'cd "$1" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$2.tmp" go.etcd.io/etcd/server/v3 && mv -f "$2.tmp" "$2"' \
    _ "$dir" "$out"
}

# go_install_bin NAME VERSION PACKAGE LDFLAGS: `go install PACKAGE@VERSION`
# (a plain module with no replace lines) into the cache as bin_path NAME,
# written under a temporary directory and moved in whole.
go_install_bin() {
  local name=$1 version=$2 pkg=$3 ldflags=$4 out dir tmp
  out=$(bin_path "$name")
  [[ -x "$out" ]] && return 0
  dir=${out%/*}
  tmp="$dir.tmp"
  rm -rf "$tmp"; mkdir -p "$tmp"
  timed_build "$name" "$version" \
    env GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version"
  mkdir -p "$dir"
  mv -f "$tmp/${pkg##*/}" "$out"
  rm -rf "$tmp"
}

build_helm() {
  go_install_bin helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

# rancher's local-path-provisioner (kind's default StorageClass).
build_local_path() {
  go_install_bin local-path-provisioner "$LOCAL_PATH_VERSION" \
    github.com/rancher/local-path-provisioner "-X main.VERSION=$LOCAL_PATH_VERSION"
}

# Versity's S3 gateway (the module's own main package).
build_versitygw() {
  go_install_bin versitygw "$VERSITYGW_VERSION" \
    github.com/versity/versitygw/cmd/versitygw "-X main.Version=$VERSITYGW_VERSION"
}

# True when every binary of the selection is already cached.
all_cached() {
  local name
  for name in "$@"; do
    [[ -x "$(bin_path "$name")" ]] || return 1
  done
}

main() {
  local all=0 helm=1 s3only=0
  while (( $# > 0 )); do
    case "$1" in
      --all) all=1 ;;
      --control-plane) helm=0 ;;
      --s3) s3only=1 ;;
      --print-dirs) printf '%s\n' "$K8S_BIN_DIR" "$ETCD_BIN_DIR" "$HELM_BIN_DIR" "$LOCAL_PATH_BIN_DIR" "$VERSITYGW_BIN_DIR"; return ;;
      -h|--help) usage; return ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$K8S_VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "K8S_VERSION must look like v1.34.4, not: $K8S_VERSION"
  [[ "$ETCD_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "ETCD_VERSION must look like v3.6.16, not: $ETCD_VERSION"
  [[ "$HELM_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "HELM_VERSION must look like v3.19.5, not: $HELM_VERSION"
  [[ "$LOCAL_PATH_VERSION" =~ ^v0\.0\.[0-9]+$ ]] || die "LOCAL_PATH_VERSION must look like v0.0.30, not: $LOCAL_PATH_VERSION"
  [[ "$VERSITYGW_VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "VERSITYGW_VERSION must look like v1.8.0, not: $VERSITYGW_VERSION"
  local wanted=()
  if (( s3only )); then
    wanted=(versitygw)
  else
    wanted=("${CORE_K8S_BINS[@]}" etcd)
    (( helm )) && wanted+=(helm)
    (( all )) && wanted+=("${NODE_K8S_BINS[@]}" local-path-provisioner versitygw)
  fi
  # Fast path without the lock: a running build of other binaries must not
  # delay a caller whose binaries are all there.
  if all_cached "${wanted[@]}"; then
    log "binaries cached: ${wanted[*]}"
    return 0
  fi
  command -v go >/dev/null || die "go is required (see scripts/install-system-deps.sh)"
  command -v jq >/dev/null || die "jq is required"
  mkdir -p "$CLUSTER_CACHE"
  # One build at a time per cache (jest setup and make may race).
  exec 9>"$CLUSTER_CACHE/build.lock"
  flock 9
  local start=$SECONDS name
  if (( s3only )); then
    build_versitygw
    log "binaries ready in $(( SECONDS - start ))s: $VERSITYGW_BIN_DIR"
    return 0
  fi
  for name in "${CORE_K8S_BINS[@]}"; do build_k8s "$name"; done
  build_etcd
  (( helm )) && build_helm
  if (( all )); then
    for name in "${NODE_K8S_BINS[@]}"; do build_k8s "$name"; done
    build_local_path
    build_versitygw
  fi
  log "binaries ready in $(( SECONDS - start ))s: $K8S_BIN_DIR $ETCD_BIN_DIR $HELM_BIN_DIR"
}

main "$@"
