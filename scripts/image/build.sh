#!/usr/bin/env bash
# Builds the swarm-operator image (and a tiny pause image) without pulling any
# image: a Debian rootfs from debootstrap (cached), the Node 22 binary that
# scripts/ensure-node.sh installs, the compiled app, assembled with umoci into
# OCI archives that `ctr -n k8s.io images import` loads. Needs root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
readonly HERE ROOT
# Bump when the rootfs recipe changes (invalidates the cached rootfs).
readonly ROOTFS_RECIPE=3
readonly NONROOT_UID=65532

usage() {
  cat <<EOF
Usage: scripts/image/build.sh [options]

Builds the swarm-operator image and a pause image as OCI archives, without a
registry or image pulls. Prints the archive paths on stdout.

Options:
  --tag NAME:TAG        image reference (default swarm-operator:<package.json version>)
  --pause-tag NAME:TAG  pause image reference (default swarm-operator-pause:<version>)
  --out-dir DIR         where the archives go (default .local/image)
  --suite SUITE         Debian suite (default bookworm)
  --mirror URL          Debian mirror (default: the one of /etc/apt/sources.list(.d))
  --no-pause            skip the pause image
  --pause-only          build only the pause image
  --skip-app-build      use the existing dist/ instead of running npm run build
  --rebuild-rootfs      ignore the cached rootfs
  --print-rootfs        only make (or reuse) the cached rootfs and print its path
  -h, --help            this help

Cache: \${SWARM_OPERATOR_CACHE:-~/.cache/swarm-operator}/image (rootfs, production
node_modules, build-times.tsv).
EOF
}

START=$(date +%s%N)
log() {
  local now
  now=$(date +%s%N)
  printf '[image %7.1fs] %s\n' "$(((now - START) / 1000000))e-3" "$*" >&2
}
die() {
  echo "build.sh: $*" >&2
  exit 1
}

# Mirror of $1 from deb822 .sources files, then the one-line format.
detect_mirror() {
  local suite=$1 f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r "$f" ]] || continue
    uri=$(awk -v s="$suite" '
      BEGIN { RS=""; FS="\n" }
      {
        u=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u=a[1] }
          if ($i ~ /^Suites:/) { n=split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == s) ok=1 }
        }
        if (ok && u != "") { print u; exit }
      }' "$f")
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r "$f" ]] || continue
    uri=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == s) { print $i; exit } }' "$f")
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  echo "http://deb.debian.org/debian"
}

packages() {
  grep -vE '^\s*(#|$)' "$HERE/packages.txt"
}

# The cached, trimmed Debian rootfs with a nonroot user; prints its path.
rootfs() {
  local key dir tmp pkgs
  pkgs=$(packages | paste -sd, -)
  key=$(printf '%s\n' "$ROOTFS_RECIPE" "$SUITE" "$MIRROR" "$pkgs" | sha256sum | cut -c1-12)
  dir="$CACHE/rootfs-$SUITE-$key"
  if [[ -f "$dir.complete" && $REBUILD_ROOTFS -eq 0 ]]; then
    log "rootfs: cached $dir"
    echo "$dir"
    return
  fi
  tmp="$dir.tmp.$$"
  rm -rf "$tmp" "$dir" "$dir.complete"
  log "rootfs: debootstrap --variant=minbase $SUITE from $MIRROR with $pkgs"
  debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $CACHE/debootstrap.log"
  trim_rootfs "$tmp"
  add_nonroot "$tmp"
  mv "$tmp" "$dir"
  touch "$dir.complete"
  log "rootfs: $(du -sh "$dir" | cut -f1) in $dir"
  echo "$dir"
}

trim_rootfs() {
  local r=$1
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
    "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/var/cache/debconf/*-old "$r"/var/log/* "$r"/debootstrap
  # The runtime provides /dev, /proc and /sys.
  find "$r/dev" "$r/proc" "$r/sys" -mindepth 1 -delete 2>/dev/null || true
}

add_nonroot() {
  local r=$1
  grep -q "^nonroot:" "$r/etc/group" || echo "nonroot:x:$NONROOT_UID:" >>"$r/etc/group"
  grep -q "^nonroot:" "$r/etc/passwd" ||
    echo "nonroot:x:$NONROOT_UID:$NONROOT_UID:nonroot:/home/nonroot:/usr/sbin/nologin" >>"$r/etc/passwd"
  install -d -o "$NONROOT_UID" -g "$NONROOT_UID" -m 0750 "$r/home/nonroot"
  # Mount points of the coordinator pod's volumes, writable without them too.
  install -d -o "$NONROOT_UID" -g "$NONROOT_UID" -m 0755 "$r/results" "$r/data"
}

# Production node_modules for package-lock.json, cached; prints its path.
prod_modules() {
  local key dir tmp
  # The lock file pins every production dependency (package.json scripts do not matter).
  key=$(sha256sum <"$ROOT/package-lock.json" | cut -c1-12)
  dir="$CACHE/node_modules-$key"
  if [[ -f "$dir/.complete" ]]; then
    log "node_modules: cached $dir"
    echo "$dir"
    return
  fi
  # Only the current lock's modules are worth keeping.
  find "$CACHE" -maxdepth 1 -name 'node_modules-*' ! -name "node_modules-$key" -exec rm -rf {} +
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$tmp/"
  log "node_modules: npm ci --omit=dev"
  (cd "$tmp" && PATH="$NODE_DIR:$PATH" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -f "$tmp/package.json" "$tmp/package-lock.json"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$dir"
}

# /app (the package as npm would install it) and /usr/local/bin/{node,cfn}.
stage_app() {
  local stage=$1 modules
  if [[ $SKIP_APP_BUILD -eq 0 ]]; then
    log "app: npm run build"
    (cd "$ROOT" && PATH="$NODE_DIR:$ROOT/node_modules/.bin:$PATH" npm run --silent build >&2)
  fi
  [[ -f "$ROOT/dist/operator/cli/main.js" ]] || die "dist/ is missing: run npm run build"
  modules=$(prod_modules)
  mkdir -p "$stage/app/dist" "$stage/usr/local/bin"
  cp -a "$ROOT/package.json" "$ROOT/bin" "$ROOT/bash" "$ROOT/config" "$ROOT/crds" "$stage/app/"
  cp -a "$ROOT/dist/operator" "$stage/app/dist/"
  # Static: the rootfs's libc may differ from this machine's.
  rm -f "$stage/app/bash/native/launcher"
  bash "$ROOT/scripts/build-native.sh" --static --out "$stage/app/bash/native/launcher"
  find "$stage/app/dist" \( -name '*.d.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete
  cp -a "$modules/node_modules" "$stage/app/node_modules"
  # Type declarations and source maps are for editors: ~38 MiB nobody reads in a pod.
  find "$stage/app/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete
  install -m 0755 "$NODE_DIR/node" "$stage/usr/local/bin/node"
  # The npm package's binary carries debug info and symbols: ~18 MiB.
  if command -v strip >/dev/null 2>&1; then strip "$stage/usr/local/bin/node"; fi
  "$stage/usr/local/bin/node" -e 'process.exit(0)' || die "the stripped node binary does not run"
  ln -s /app/bin/cfn.js "$stage/usr/local/bin/cfn"
  chown -R 0:0 "$stage"
  chmod -R go-w "$stage"
}

# containerd reads io.containerd.image.name; others the OCI ref.name (the tag).
normalized_ref() {
  local ref=$1 name=${1%:*}
  if [[ "$name" != */* ]]; then
    echo "docker.io/library/$ref"
  elif [[ "${name%%/*}" != *.* && "${name%%/*}" != *:* && "${name%%/*}" != localhost ]]; then
    echo "docker.io/$ref"
  else
    echo "$ref"
  fi
}

# OCI layout $1 -> archive $2 (tag $3), annotated for ctr import.
export_archive() {
  local layout=$1 out=$2 ref=$3 full
  full=$(normalized_ref "$ref")
  jq --arg n "$full" '.manifests |= map(.annotations += {"io.containerd.image.name": $n})' \
    "$layout/index.json" >"$layout/index.json.tmp"
  mv "$layout/index.json.tmp" "$layout/index.json"
  tar -C "$layout" --sort=name --owner=0 --group=0 --numeric-owner -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
}

# Sum of the compressed layer sizes of the layout's only manifest.
layers_bytes() {
  local layout=$1 digest
  digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
  jq '[.layers[].size] | add' "$layout/blobs/sha256/${digest#sha256:}"
}

check_ref() {
  [[ "$1" =~ ^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]+)?([a-z0-9._/-]*)?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    die "$2: expected NAME:TAG, got '$1'"
  [[ "${1##*:}" != latest ]] || die "$2: use a tag other than latest (kubelet would always pull it)"
}

build_app_image() {
  local work=$1 out=$2 base tag=${TAG##*:}
  local layout="$work/app-oci" stage="$work/app-stage"
  base=$(rootfs)
  stage_app "$stage"
  log "image: umoci layers (base rootfs, then app)"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" --history.created_by "debootstrap $SUITE minbase + $(packages | paste -sd' ' -)" "$base" /
  umoci insert --image "$layout:$tag" --history.created_by "node $("$NODE_DIR/node" --version) + swarm-operator app" "$stage" /
  umoci config --image "$layout:$tag" \
    --config.user "$NONROOT_UID:$NONROOT_UID" \
    --config.entrypoint /usr/local/bin/cfn --config.cmd --help \
    --config.workingdir /app \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env NODE_ENV=production --config.env HOME=/home/nonroot \
    --config.env CFN_MEMORY_PATH=/tmp/cfn-memory.sqlite \
    --config.label "org.opencontainers.image.title=swarm-operator" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --config.exposedports 8080/tcp \
    --history.created_by "umoci config (user, entrypoint cfn)"
  umoci gc --layout "$layout"
  export_archive "$layout" "$out" "$TAG"
  APP_LAYERS=$(layers_bytes "$layout")
  APP_UNPACKED=$(($(du -sb "$base" | cut -f1) + $(du -sb "$stage" | cut -f1)))
}

build_pause_image() {
  local work=$1 out=$2 tag=${PAUSE_TAG##*:}
  local layout="$work/pause-oci" stage="$work/pause-stage"
  mkdir -p "$stage"
  gcc -static -Os -s -Wall -Wextra -Werror -o "$stage/pause" "$HERE/pause.c"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci insert --image "$layout:$tag" --history.created_by "gcc -static pause.c" "$stage/pause" /pause
  umoci config --image "$layout:$tag" --config.user 65535:65535 --config.entrypoint /pause \
    --config.label "org.opencontainers.image.title=swarm-operator-pause" --history.created_by "umoci config"
  umoci gc --layout "$layout"
  export_archive "$layout" "$out" "$PAUSE_TAG"
  log "pause: $(layers_bytes "$layout") bytes of layers -> $out"
}

main() {
  VERSION=$(jq -r .version "$ROOT/package.json")
  TAG="swarm-operator:$VERSION" PAUSE_TAG="swarm-operator-pause:$VERSION"
  OUT_DIR="$ROOT/.local/image" SUITE=bookworm MIRROR=""
  local pause=1 app=1 print_rootfs=0
  SKIP_APP_BUILD=0 REBUILD_ROOTFS=0
  while (($#)); do
    case "$1" in
      --tag) TAG=${2:?--tag needs a value}; shift ;;
      --pause-tag) PAUSE_TAG=${2:?--pause-tag needs a value}; shift ;;
      --out-dir) OUT_DIR=${2:?--out-dir needs a value}; shift ;;
      --suite) SUITE=${2:?--suite needs a value}; shift ;;
      --mirror) MIRROR=${2:?--mirror needs a value}; shift ;;
      --no-pause) pause=0 ;;
      --pause-only) app=0 ;;
      --skip-app-build) SKIP_APP_BUILD=1 ;;
      --rebuild-rootfs) REBUILD_ROOTFS=1 ;;
      --print-rootfs) print_rootfs=1 ;;
      -h | --help) usage; return 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  check_ref "$TAG" --tag
  check_ref "$PAUSE_TAG" --pause-tag
  [[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, file ownership in the layers)"
  local tool
  for tool in debootstrap umoci jq gcc tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/install-system-deps.sh"
  done
  [[ -n "$MIRROR" ]] || MIRROR=$(detect_mirror "$SUITE")
  CACHE="${SWARM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-operator}/image"
  mkdir -p "$CACHE"
  # Concurrent builds (tests, another shell) would race on the cache: one at a time.
  exec 9>"$CACHE/build.lock"
  if ! flock -n 9; then
    log "waiting for another build.sh (lock $CACHE/build.lock)"
    flock 9
  fi
  if ((print_rootfs)); then
    rootfs
    return
  fi
  mkdir -p "$OUT_DIR"
  OUT_DIR=$(cd "$OUT_DIR" && pwd)
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/swarm-image.XXXXXX")
  # shellcheck disable=SC2064 # expand now: work is local
  trap "rm -rf '$work'" EXIT
  local files=() app_out pause_out
  if ((app)); then
    NODE_DIR=$(bash "$ROOT/scripts/ensure-node.sh")
    app_out="$OUT_DIR/${TAG//[\/:]/_}.oci.tar"
    build_app_image "$work" "$app_out"
    local secs=$((($(date +%s%N) - START) / 1000000000))
    log "image $TAG: layers $((APP_LAYERS / 1048576)) MiB compressed, $((APP_UNPACKED / 1048576)) MiB unpacked, archive $(($(stat -c %s "$app_out") / 1048576)) MiB, ${secs}s -> $app_out"
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$TAG" "$secs" "$APP_LAYERS" "$APP_UNPACKED" >>"$CACHE/build-times.tsv"
    files+=("$app_out")
  fi
  if ((pause)); then
    pause_out="$OUT_DIR/${PAUSE_TAG//[\/:]/_}.oci.tar"
    build_pause_image "$work" "$pause_out"
    files+=("$pause_out")
  fi
  printf '%s\n' "${files[@]}"
}

main "$@"
