#!/usr/bin/env bash
# Builds the agent launcher (bash/native/launcher.c and response.c;
# docs/v2-engine.md "Who runs an agent"): V2 and V1 start every agent with it.
# --static for the image: the launcher is copied into agent images whose libc
# (if any) is not this machine's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT SRC_DIR="$ROOT/bash/native"

usage() {
  cat <<'EOF_USAGE'
Usage: scripts/build-native.sh [--out PATH] [--static]

Compiles bash/native/*.c with $CC (default cc) into bash/native/launcher
(or PATH), unless that is newer than the source. --static links it statically
(for an image whose libc may differ from this machine's).
EOF_USAGE
}

main() {
  local out=$ROOT/bash/native/launcher static=() cc=${CC:-cc}
  while (($#)); do
    case $1 in
      --out) [[ $# -ge 2 ]] || { echo "build-native: --out needs a path" >&2; exit 2; }; out=$2; shift 2 ;;
      --static) static=(-static -s); shift ;;
      -h | --help) usage; exit 0 ;;
      *) echo "build-native: unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "build-native: no C compiler ($cc): the agent launcher cannot be built (scripts/install-system-deps.sh installs gcc)" >&2
    exit 1
  fi
  local -a src=("$SRC_DIR"/*.c)
  local f fresh=1
  for f in "${src[@]}" "$SRC_DIR"/*.h; do [[ $out -nt $f ]] || fresh=0; done
  [[ ${#static[@]} -eq 0 && $fresh -eq 1 ]] && exit 0
  TMP=$out.tmp.$$
  trap 'rm -f -- "$TMP"' EXIT
  "$cc" -O2 -std=c11 -Wall -Wextra -Werror "${static[@]}" -o "$TMP" "${src[@]}"
  mv -f -- "$TMP" "$out"
}

TMP=''

main "$@"
