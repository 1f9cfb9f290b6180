#!/usr/bin/env bash
# Hybrid topology (300-1000+ agents): K sub-coordinators x W workers. Each
# sub-coordinator (a forked subshell, no extra exec) runs its slice of agents
# (lib/agent.sh: through its own launcher relay, which publishes their responses), forwards
# their results to the root inbox as `batch` messages and heartbeats. This root
# process watches them: a sub-coordinator whose pid is gone without having
# finished, or whose heartbeat is stale, is replaced; the replacement re-runs
# the slice's agents that have no response file yet (counted in a `reassign`
# message) and re-announces those that do.
set -euo pipefail
CFN_PROG=topology-hybrid
# shellcheck source=bash/lib/engine-opts.sh
source "${BASH_SOURCE[0]%/*}/lib/engine-opts.sh"

WORKERS=100
SUB_CONCURRENCY=
STALE_S=5

usage() {
  cat <<'EOF2'
Usage: topology-hybrid.sh --root DIR --swarm-id ID --agents N [options] -- CMD [ARG...]

Runs agents 0..N-1 through ceil(N/W) sub-coordinators; results reach
<root>/messages/root as `batch` messages.

Options:
  --workers W              agents per sub-coordinator (default 100)
  --sub-concurrency N      agents running at once per sub-coordinator
                           (default ceil(concurrency / sub-coordinators))
  --heartbeat-stale S      replace a sub-coordinator silent for S seconds (default 5)
EOF2
  engine_opts_help
}

hybrid_opt() {
  case $1 in
    --workers) cfn_require_value "$1" $#; WORKERS=$2; return 2 ;;
    --sub-concurrency) cfn_require_value "$1" $#; SUB_CONCURRENCY=$2; return 2 ;;
    --heartbeat-stale) cfn_require_value "$1" $#; STALE_S=$2; return 2 ;;
  esac
  return 0
}

# --- sub-coordinator (runs in a forked subshell) ---------------------------

SUB_K=0 SUB_ROOT_INBOX=''

# sub_flush: announces the pending results to the root; a sub-coordinator that
# cannot reach its root ends (the root re-dispatches what it did not hear of).
sub_flush() {
  local rc=0
  cfn_batch_flush "$SUB_ROOT_INBOX" "sub-$SUB_K" || rc=$?
  ((rc == 0)) || exit "$rc"
}

sub_heartbeat() {
  local now=$1
  printf '%s\n' "$now" >"$CFN_ROOT/pids/sub-$SUB_K.hb"
  bus_publish "$SUB_ROOT_INBOX" heartbeat "sub-$SUB_K" "{\"sub\":$SUB_K}" || true
}

# sub_run K FIRST LAST REPLACEMENT(0|1)
sub_run() {
  SUB_K=$1
  local first=$2 last=$3 replacement=$4 i status now=0 last_hb=0 rc
  local -a queue=()
  SUB_ROOT_INBOX=$CFN_ROOT/messages/root
  CFN_CONCURRENCY=$SUB_CONCURRENCY
  for ((i = first; i <= last; i++)); do
    [[ -n ${CFN_SKIP[$i]:-} ]] && continue
    if ((replacement)) && [[ -e $CFN_ROOT/responses/agent-$i.json ]]; then
      if cfn_response_status status "$CFN_ROOT/responses/agent-$i.json"; then
        cfn_batch_add "$i" "$status" 0
        ((CFN_BATCH_N < CFN_BATCH_MAX)) || sub_flush
      fi
      continue
    fi
    queue+=("$i")
  done
  if ((replacement)); then
    bus_publish "$SUB_ROOT_INBOX" reassign "sub-$SUB_K" "{\"sub\":$SUB_K,\"agents\":${#queue[@]}}" || true
  fi
  # Woken by its relay's reports (an agent final, its response written) or
  # by a read timeout: when pending results are due, else at the heartbeat.
  cfn_agents_start "${queue[@]}"
  while :; do
    cfn_now_us now
    if ((now - last_hb >= 1000000)); then
      sub_heartbeat "$now"
      last_hb=$now
      if [[ -n $CFN_PARENT_PID ]] && ! cfn_pid_alive "$CFN_PARENT_PID"; then exit 143; fi
    fi
    cfn_batch_due "$now" && sub_flush
    rc=0
    cfn_agents_next "$((last_hb + 1000000 - now))" "$now" || rc=$?
    ((rc != 2)) || break
    if ((rc == 0)); then
      cfn_now_us now
      cfn_batch_add "$CFN_DONE_INDEX" "$CFN_DONE_STATUS" "$now"
    fi
  done
  sub_flush
  : >"$CFN_ROOT/pids/sub-$SUB_K.done"
}

# --- root ------------------------------------------------------------------

declare -a SUB_PID=() SUB_FIRST=() SUB_LAST=() SUB_DONE=()

# start_sub K REPLACEMENT
start_sub() {
  local k=$1 now
  # Fresh liveness state: a stale .done/.hb of an earlier run must not count.
  rm -f -- "$CFN_ROOT/pids/sub-$k.done"
  cfn_now_us now
  printf '%s\n' "$now" >"$CFN_ROOT/pids/sub-$k.hb"
  { sub_run "$k" "${SUB_FIRST[k]}" "${SUB_LAST[k]}" "$2"; } &
  SUB_PID[k]=$!
  printf '%s\n' "${SUB_PID[k]}" >"$CFN_ROOT/pids/sub-$k.pid"
}

# A sub-coordinator is lost when its pid is gone without a done file, or its
# heartbeat is older than STALE_S seconds (then it is killed first).
check_sub() {
  local k=$1 now=$2 hb=''
  [[ -n ${SUB_DONE[k]:-} ]] && return 0
  if [[ -e $CFN_ROOT/pids/sub-$k.done ]]; then
    SUB_DONE[k]=1
    return 0
  fi
  if ! cfn_pid_alive "${SUB_PID[k]}"; then
    # It may have finished between the two checks.
    [[ -e $CFN_ROOT/pids/sub-$k.done ]] && { SUB_DONE[k]=1; return 0; }
    cfn_log "sub-coordinator $k (pid ${SUB_PID[k]}) is gone: replacing it"
  else
    if [[ -r $CFN_ROOT/pids/sub-$k.hb ]]; then IFS= read -r hb <"$CFN_ROOT/pids/sub-$k.hb" || true; fi
    [[ $hb =~ ^[0-9]+$ ]] || return 0
    ((now - hb > STALE_S * 1000000)) || return 0
    cfn_log "sub-coordinator $k heartbeat stale: replacing it"
    kill -KILL "${SUB_PID[k]}" 2>/dev/null || true
  fi
  start_sub "$k" 1
}

main() {
  ENGINE_EXTRA_OPT=hybrid_opt
  engine_parse_opts "$@"
  cfn_is_pos_int "$WORKERS" || cfn_die 2 "--workers must be >= 1"
  cfn_is_pos_int "$STALE_S" || cfn_die 2 "--heartbeat-stale must be >= 1"
  engine_prepare
  mkdir -p "$CFN_ROOT/pids"
  bus_init "$CFN_ROOT/messages/root"
  local subs=$(((CFN_AGENTS_TOTAL + WORKERS - 1) / WORKERS)) k now all_done
  ((subs > 0)) || return 0
  [[ -n $SUB_CONCURRENCY ]] || SUB_CONCURRENCY=$(((CFN_CONCURRENCY + subs - 1) / subs))
  cfn_is_pos_int "$SUB_CONCURRENCY" || cfn_die 2 "--sub-concurrency must be >= 1"
  for ((k = 0; k < subs; k++)); do
    SUB_FIRST[k]=$((k * WORKERS))
    SUB_LAST[k]=$((k * WORKERS + WORKERS - 1))
    ((SUB_LAST[k] < CFN_AGENTS_TOTAL)) || SUB_LAST[k]=$((CFN_AGENTS_TOTAL - 1))
    start_sub "$k" 0
  done
  while :; do
    sleep 0.1
    cfn_now_us now
    all_done=1
    for ((k = 0; k < subs; k++)); do
      check_sub "$k" "$now"
      [[ -n ${SUB_DONE[k]:-} ]] || all_done=0
    done
    ((all_done)) && break
    if [[ -n $CFN_PARENT_PID ]] && ! cfn_pid_alive "$CFN_PARENT_PID"; then cfn_die 143 "parent gone: stopping"; fi
  done
  wait || true
}

main "$@"
