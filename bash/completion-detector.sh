#!/usr/bin/env bash
# Consumes result/batch messages from the root inbox (O(1) per message: an
# assoc array for dedup and counters, no scan of responses/), knows when every
# agent's final response is in or the deadline passed, and writes status.json
# atomically (at most every 100 ms, and at the end). Delivery is completed
# work: deliveryRate = completed / total; a failed agent is final, not delivered.
set -euo pipefail
CFN_PROG=completion-detector
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/lib/bus.sh"

usage() {
  cat <<'EOF'
Usage: completion-detector.sh --root DIR --swarm-id ID --total N [options]

Consumes <root>/messages/root until every agent's final response is in
(completed or failed) or the deadline passed; writes <root>/status.json
(docs/v2-engine.md): deliveryRate = completed agents / total.

Options:
  --root DIR               swarm root (required)
  --swarm-id ID            objective/swarm id (required)
  --total N                number of agents in the swarm (required)
  --index-range START-END  the agents this run holds, START..END-1 (END
                           exclusive; default 0-N): status.json counts them
                           (agents.total = END - START), others are ignored
  --timeout SECONDS        overall deadline from --started-us (0 = none, default)
  --started-us US          start time in epoch microseconds (default now)
  --completed-indexes SPEC agents completed in an earlier run ("0-9,15", inside the range)
  --failed-indexes SPEC    agents that failed finally in an earlier run
  --parent-pid PID         stop (status "stopped") when this process is gone
  -h, --help               this help

Exit: 0 every agent final, 4 deadline passed, 1 engine failure (SIGUSR1),
143 stopped (SIGTERM or parent gone), 2 usage error.
EOF
}

# TOTAL: the agents of the range (END - START); START..END-1 their indexes.
ROOT='' SWARM_ID='' TOTAL='' RANGE_SPEC='' START=0 END=0 TIMEOUT=0 STARTED_US='' COMPLETED_SPEC='' FAILED_SPEC='' PARENT_PID=''
# FINAL: agents whose final response is in (completed + failed).
FINAL=0 COMPLETED=0 FAILED=0 RESUMED=0 RESUMED_COMPLETED=0
DEADLINE_US=0 LAST_WRITE_US=0 DIRTY=1 STOP_REQUEST=''
declare -A SEEN=()

parse_opts() {
  while (($#)); do
    case $1 in
      --root) cfn_require_value "$1" $#; ROOT=$2; shift 2 ;;
      --swarm-id) cfn_require_value "$1" $#; SWARM_ID=$2; shift 2 ;;
      --total) cfn_require_value "$1" $#; TOTAL=$2; shift 2 ;;
      --index-range) cfn_require_value "$1" $#; RANGE_SPEC=$2; shift 2 ;;
      --timeout) cfn_require_value "$1" $#; TIMEOUT=$2; shift 2 ;;
      --started-us) cfn_require_value "$1" $#; STARTED_US=$2; shift 2 ;;
      --completed-indexes) cfn_require_value "$1" $#; COMPLETED_SPEC=$2; shift 2 ;;
      --failed-indexes) cfn_require_value "$1" $#; FAILED_SPEC=$2; shift 2 ;;
      --parent-pid) cfn_require_value "$1" $#; PARENT_PID=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ -n $ROOT && -d $ROOT ]] || cfn_die 2 "--root must be an existing directory"
  [[ $SWARM_ID =~ $CFN_SWARM_ID_RE ]] || cfn_die 2 "--swarm-id must match $CFN_SWARM_ID_RE"
  cfn_is_uint "$TOTAL" || cfn_die 2 "--total must be a number"
  cfn_parse_range START END "$RANGE_SPEC" "$((10#$TOTAL))" || cfn_die 2 "--index-range must be START-END within --total $TOTAL"
  TOTAL=$((END - START))
  cfn_is_number "$TIMEOUT" || cfn_die 2 "--timeout must be a number of seconds"
  [[ -z $STARTED_US ]] && cfn_now_us STARTED_US
  cfn_is_uint "$STARTED_US" || cfn_die 2 "--started-us must be epoch microseconds"
  return 0
}

# Agents final in an earlier run count from the start: completed ones as
# completed, failed ones as failed (an index in both lists is refused).
load_resumed() {
  local -A done_set=() failed_set=()
  cfn_parse_indexes done_set "$COMPLETED_SPEC" "$END" "$START" || exit 2
  cfn_parse_indexes failed_set "$FAILED_SPEC" "$END" "$START" || exit 2
  local i
  for i in "${!done_set[@]}"; do SEEN[$i]=1; done
  for i in "${!failed_set[@]}"; do
    [[ -z ${SEEN[$i]:-} ]] || cfn_die 2 "agent $i is in both --completed-indexes and --failed-indexes"
    SEEN[$i]=1
  done
  COMPLETED=${#done_set[@]} FAILED=${#failed_set[@]}
  RESUMED_COMPLETED=$COMPLETED RESUMED=$((COMPLETED + FAILED)) FINAL=$RESUMED
}

# Message handler (see bus_drain).
on_message() {
  case $1 in
    result)
      [[ -n ${SEEN[$3]:-} ]] && return 0
      (($3 >= START && $3 < END)) || return 0
      SEEN[$3]=1
      FINAL=$((FINAL + 1))
      if [[ $4 == completed ]]; then COMPLETED=$((COMPLETED + 1)); else FAILED=$((FAILED + 1)); fi
      DIRTY=1
      ;;
    results)
      # A whole batch (BUS_BULK): its indexes in b_c (completed) and b_f
      # (failed); duplicates and indexes outside the range are skipped.
      local i k=0
      for i in "${b_c[@]}"; do
        if ((i >= START && i < END)) && [[ -z ${SEEN[$i]:-} ]]; then SEEN[$i]=1 k=$((k + 1)); fi
      done
      COMPLETED=$((COMPLETED + k)) FINAL=$((FINAL + k))
      k=0
      for i in "${b_f[@]}"; do
        if ((i >= START && i < END)) && [[ -z ${SEEN[$i]:-} ]]; then SEEN[$i]=1 k=$((k + 1)); fi
      done
      FAILED=$((FAILED + k)) FINAL=$((FINAL + k)) DIRTY=1
      ;;
  esac
}

# write_status STATE: status.json, atomically. deliveryRate: completed / total
# in percent, truncated to one decimal (never more than is true);
# throughputAgentsPerSec: agents this run completed per second.
write_status() {
  local state=$1 now elapsed_ms rate tput started updated json this_run
  cfn_now_us now
  elapsed_ms=$(((now - STARTED_US) / 1000))
  if ((TOTAL > 0)); then
    rate=$((COMPLETED * 1000 / TOTAL))
  else
    rate=1000
  fi
  printf -v rate '%d.%d' "$((rate / 10))" "$((rate % 10))"
  this_run=$((COMPLETED - RESUMED_COMPLETED))
  if ((elapsed_ms > 0)); then tput=$((this_run * 10000 / elapsed_ms)); else tput=0; fi
  printf -v tput '%d.%d' "$((tput / 10))" "$((tput % 10))"
  cfn_iso started "$STARTED_US"
  cfn_iso updated "$now"
  # Quarantined: malformed messages, and channel records the launchers' relays
  # refused (quarantine/launcher.*: garbage or forgeries, never counted as work).
  local -a refused=("$ROOT"/quarantine/launcher.*)
  [[ -e ${refused[0]} ]] || refused=()
  printf -v json '{"objectiveId":"%s","status":"%s","indexRange":{"start":%d,"end":%d},"agents":{"total":%d,"completed":%d,"failed":%d},"deliveryRate":%s,"coordinationTime":%d,"throughputAgentsPerSec":%s,"startedAt":"%s","updatedAt":"%s","quarantined":%d,"resumed":%d,"pid":%d}' \
    "$SWARM_ID" "$state" "$START" "$END" "$TOTAL" "$COMPLETED" "$FAILED" "$rate" "$elapsed_ms" "$tput" \
    "$started" "$updated" "$((BUS_QUARANTINED + ${#refused[@]}))" "$RESUMED" "$$"
  cfn_write_replace "$ROOT/status.json" "$json"
  LAST_WRITE_US=$now DIRTY=0
}

finish() {
  local state=$1 code=$2
  trap - TERM INT USR1
  bus_drain on_message || true
  if [[ $state != completed ]] && ((FINAL >= TOTAL)); then state=completed code=0; fi
  write_status "$state"
  bus_consumer_close_watch
  exit "$code"
}

main() {
  parse_opts "$@"
  cfn_load_builtins
  load_resumed
  if [[ $TIMEOUT != 0 ]]; then
    local t
    cfn_seconds_us t "$TIMEOUT"
    DEADLINE_US=$((STARTED_US + t))
  fi
  trap 'STOP_REQUEST=stopped' TERM INT
  trap 'STOP_REQUEST=failed' USR1
  BUS_BULK=1
  bus_consumer_open "$ROOT/messages/root" "$ROOT/metrics/latency.us"
  write_status running
  # Consuming now: under coordinator-cli.sh the agents start after this.
  [[ -z ${CFN_CONSUMER_READY:-} ]] || : >"$CFN_CONSUMER_READY"
  local now
  while :; do
    bus_drain on_message
    ((FINAL >= TOTAL)) && finish completed 0
    case $STOP_REQUEST in
      stopped) finish stopped 143 ;;
      failed) finish failed 1 ;;
    esac
    cfn_now_us now
    ((DEADLINE_US > 0 && now >= DEADLINE_US)) && finish timeout 4
    if [[ -n $PARENT_PID ]] && ! cfn_pid_alive "$PARENT_PID"; then finish stopped 143; fi
    if ((DIRTY && now - LAST_WRITE_US >= 100000 || now - LAST_WRITE_US >= 1000000)); then
      write_status running
    fi
    ((BUS_CONSUMED > 0)) || bus_wait 0.1
  done
}

main "$@"
