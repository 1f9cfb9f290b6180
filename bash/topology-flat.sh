#!/usr/bin/env bash
# Flat topology (2-300 agents, works beyond): one coordinator forks every agent
# as a subshell running cfn_agent_run (no extra bash exec per agent), at most
# --concurrency at once (wait -n); results go to the root inbox.
set -euo pipefail
CFN_PROG=topology-flat
# shellcheck source=bash/lib/engine-opts.sh
source "${BASH_SOURCE[0]%/*}/lib/engine-opts.sh"

usage() {
  cat <<'EOF2'
Usage: topology-flat.sh --root DIR --swarm-id ID --agents N [options] -- CMD [ARG...]

Runs agents 0..N-1 (minus --completed-indexes) with a concurrency limit; each
publishes its response and a `result` message to <root>/messages/root.

Options:
EOF2
  engine_opts_help
}

# flat_dispatch INBOX: forks the agents, keeping at most CFN_CONCURRENCY running.
flat_dispatch() {
  local inbox=$1 i running=0
  for ((i = 0; i < CFN_AGENTS_TOTAL; i++)); do
    [[ -n ${CFN_SKIP[$i]:-} ]] && continue
    while ((running >= CFN_CONCURRENCY)); do
      wait -n 2>/dev/null || true
      running=$((running - 1))
    done
    if ((i % 64 == 0)) && [[ -n $CFN_PARENT_PID ]] && ! cfn_pid_alive "$CFN_PARENT_PID"; then
      cfn_die 143 "parent $CFN_PARENT_PID gone: stopping"
    fi
    { cfn_agent_run "$i" "$inbox" || cfn_log "agent $i: engine error $?"; } &
    running=$((running + 1))
  done
  # Not a bare `wait`: the watchdog is a child too and runs until wd_stop.
  while ((running > 0)); do
    wait -n 2>/dev/null || true
    running=$((running - 1))
    if [[ -n $CFN_PARENT_PID ]] && ! cfn_pid_alive "$CFN_PARENT_PID"; then
      cfn_die 143 "parent $CFN_PARENT_PID gone: stopping"
    fi
  done
}

main() {
  engine_parse_opts "$@"
  engine_prepare
  bus_init "$CFN_ROOT/messages/root"
  if [[ $CFN_AGENT_TIMEOUT != 0 ]]; then wd_start "$CFN_ROOT/work/.watchdog" "$$" ${CFN_PARENT_PID:+"$CFN_PARENT_PID"}; fi
  flat_dispatch "$CFN_ROOT/messages/root"
  wd_stop
}

main "$@"
