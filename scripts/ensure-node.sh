#!/usr/bin/env bash
# Prints the directory of a Node >= 22.19 binary, installing node@22 from the
# npm registry into a per-user cache when the machine's Node is older.
set -euo pipefail

readonly MIN_MAJOR=22 MIN_MINOR=19
readonly CACHE="${SWARM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-operator}"
readonly PREFIX="$CACHE/node-22"

node_ok() {
  local v
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  (( major > MIN_MAJOR || (major == MIN_MAJOR && minor >= MIN_MINOR) ))
}

main() {
  local sys
  if sys=$(command -v node) && node_ok "$sys"; then
    dirname "$sys"
    return
  fi
  local cached="$PREFIX/node_modules/node/bin/node"
  if [[ ! -x "$cached" ]] || ! node_ok "$cached"; then
    echo "ensure-node: installing node@22 into $PREFIX (machine has $(node --version 2>/dev/null || echo none))" >&2
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error node@22 >&2
  fi
  node_ok "$cached" || { echo "ensure-node: $cached is not Node >= $MIN_MAJOR.$MIN_MINOR" >&2; exit 1; }
  dirname "$cached"
}

main "$@"
