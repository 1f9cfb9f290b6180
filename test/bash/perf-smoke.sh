#!/usr/bin/env bash
# Performance smoke of the V2 engine (not a test: prints numbers). Compares
# whole `coordinator-cli.sh run` wall times with the floor of launching the same
# commands with xargs -P, and reports bus latency percentiles.
#   test/bash/perf-smoke.sh [--sizes N,M,...] [--concurrency C] [--json]
set -euo pipefail

BIN="$(cd "$(dirname "$0")/../../bash" && pwd)"
SIZES=500,1000 CONC=64 JSON=0

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

SHM=$(mktemp -d /dev/shm/cfn-perf.XXXXXX)
trap 'rm -rf "$SHM"' EXIT

# elapsed SECONDS_VAR CMD...: wall seconds of CMD (3 decimals).
elapsed() {
  local -n _out=$1
  shift
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  _out=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

floor_run() { seq "$1" | xargs -P "$CONC" -I{} timeout --foreground -k 2 300 true; }

percentiles() {
  sort -n "$1" | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "null null null"; exit }
    printf "%.2f %.2f %.2f\n", a[int((NR + 1) * 0.5)] / 1000, a[int((NR - 1) * 0.99) + 1] / 1000, a[NR] / 1000 }'
}

engine_run() {
  local n=$1 id="perf-$1"
  "$BIN/coordinator-cli.sh" run --shm-path "$SHM" --swarm-id "$id" --agents "$n" \
    --concurrency "$CONC" --objective perf --keep --json -- true >"$SHM/$id.status"
}

report() {
  local n=$1 wall floor status rate p50 p99 max
  elapsed floor floor_run "$n"
  elapsed wall engine_run "$n"
  status=$(jq -r .status "$SHM/perf-$n.status")
  rate=$(jq -r .deliveryRate "$SHM/perf-$n.status")
  read -r p50 p99 max < <(percentiles "$SHM/perf-$n/metrics/latency.us")
  if ((JSON)); then
    printf '{"agents":%d,"concurrency":%d,"wallSeconds":%s,"floorSeconds":%s,"status":"%s","deliveryRate":%s,"latencyMsP50":%s,"latencyMsP99":%s,"latencyMsMax":%s}\n' \
      "$n" "$CONC" "$wall" "$floor" "$status" "$rate" "$p50" "$p99" "$max"
  else
    printf '%5d agents  wall %6ss  floor(xargs -P%d) %6ss  ratio %5s  %s %s%%  latency ms p50 %s p99 %s max %s\n' \
      "$n" "$wall" "$CONC" "$floor" "$(awk -v a="$wall" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')" \
      "$status" "$rate" "$p50" "$p99" "$max"
  fi
}

IFS=, read -r -a sizes <<<"$SIZES"
for n in "${sizes[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "--sizes: $n is not a positive number" >&2; exit 2; }
  report "$n"
done
