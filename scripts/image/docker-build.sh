#!/usr/bin/env bash
# Builds the Dockerfile on a machine without a registry: a Node base made
# locally (the cached debootstrap rootfs of build.sh + the Node 22 binary of
# scripts/ensure-node.sh + npm from the npm registry) is `docker import`ed and
# passed as NODE_BASE. Uses a running Docker daemon ($DOCKER_HOST), or starts
# dockerd by hand for the build (root) and stops it after.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
readonly HERE ROOT
readonly NPM_VERSION=10.9.3

usage() {
  cat <<EOF
Usage: scripts/image/docker-build.sh [options]

Builds the Dockerfile with docker from a locally made Node base image.

Options:
  --tag NAME:TAG     image tag (default swarm-operator:<version>-docker)
  --base NAME:TAG    local Node base tag (default swarm-operator-node-base:22)
  --save FILE        also \`docker save\` the image to FILE
  --host-ca          put this machine's CA bundle (/etc/ssl/certs/ca-certificates.crt)
                     in the local base and point NODE_EXTRA_CA_CERTS at it: needed
                     behind a TLS-intercepting proxy; the images then trust what
                     this machine trusts (local use only)
  -h, --help         this help
EOF
}

START=$(date +%s)
log() { printf '[docker-build %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() {
  echo "docker-build.sh: $*" >&2
  exit 1
}

start_dockerd() {
  local dir=$1
  mkdir -p "$CACHE/docker"
  # No bridge, no iptables: builds use the host network.
  dockerd --data-root "$CACHE/docker" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    >"$dir/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$dir/docker.sock"
  local i
  for ((i = 0; i < 150; i++)); do
    docker version >/dev/null 2>&1 && return
    kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: $(tail -5 "$dir/dockerd.log")"
    sleep 0.2
  done
  die "dockerd did not start: $(tail -5 "$dir/dockerd.log")"
}

cleanup() {
  if [[ -n "${DOCKERD_PID:-}" ]]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  if [[ -n "${WORK:-}" ]]; then
    # dockerd leaves its network namespace mounted under its exec root.
    grep -o "${WORK}[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$WORK"
  fi
}

# npm for the base (the official node images ship it in /usr/local/lib).
npm_tarball() {
  local file="$CACHE/npm-$NPM_VERSION.tgz"
  if [[ ! -f "$file" ]]; then
    (cd "$WORK" && PATH="$NODE_DIR:$PATH" npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    mv "$WORK/npm-$NPM_VERSION.tgz" "$file"
  fi
  echo "$file"
}

make_base() {
  local rootfs npm
  rootfs=$(bash "$HERE/build.sh" --print-rootfs)
  npm=$(npm_tarball)
  local stage="$WORK/base"
  cp -a "$rootfs" "$stage"
  mkdir -p "$stage/usr/local/bin" "$stage/usr/local/lib/node_modules/npm"
  install -m 0755 "$NODE_DIR/node" "$stage/usr/local/bin/node"
  tar -xzf "$npm" -C "$stage/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
  local change=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]')
  if ((HOST_CA)); then
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/ca-certificates.crt"
    change+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
  log "base: importing $BASE (rootfs $rootfs + node + npm $NPM_VERSION)"
  tar -C "$stage" -cf "$WORK/base.tar" .
  docker import "${change[@]}" "$WORK/base.tar" "$BASE" >/dev/null
}

main() {
  local version
  version=$(jq -r .version "$ROOT/package.json")
  TAG="swarm-operator:$version-docker" BASE="swarm-operator-node-base:22"
  local save=""
  HOST_CA=0
  while (($#)); do
    case "$1" in
      --tag) TAG=${2:?--tag needs a value}; shift ;;
      --base) BASE=${2:?--base needs a value}; shift ;;
      --save) save=${2:?--save needs a value}; shift ;;
      --host-ca) HOST_CA=1 ;;
      -h | --help) usage; return 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  command -v docker >/dev/null 2>&1 || die "docker is missing: run scripts/install-system-deps.sh"
  CACHE="${SWARM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-operator}/image"
  mkdir -p "$CACHE"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarm-docker.XXXXXX")
  trap cleanup EXIT
  NODE_DIR=$(bash "$ROOT/scripts/ensure-node.sh")
  if ! docker version >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "no Docker daemon answers and starting one needs root"
    log "starting dockerd"
    start_dockerd "$WORK"
  fi
  make_base
  log "docker build --build-arg NODE_BASE=$BASE -t $TAG"
  DOCKER_BUILDKIT=0 docker build --network host --build-arg "NODE_BASE=$BASE" -t "$TAG" "$ROOT" >"$WORK/build.log" 2>&1 ||
    die "docker build failed: $(tail -20 "$WORK/build.log")"
  log "built $TAG: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MiB", $1 / 1048576}')"
  # The image's contract: non-root, cfn entrypoint, the V2 tools, a V2 run.
  [[ $(docker run --rm --entrypoint id "$TAG" -u) == 65532 ]] || die "$TAG does not run as 65532"
  local v
  for v in v2 v1; do
    docker run --rm --read-only --tmpfs /tmp "$TAG" run --version "$v" --no-fallback --agents 3 --json |
      jq -e --arg v "$v" '.status == "completed" and .version == $v and .deliveryRate == 100' >/dev/null || die "a $v run in $TAG failed"
  done
  log "$TAG runs as 65532 and completes a V2 and a V1 swarm"
  if [[ -n "$save" ]]; then
    docker save -o "$save" "$TAG"
    log "saved $save"
  fi
}

main "$@"
