#!/usr/bin/env bash
# Flat topology (2-300 agents, works beyond): one coordinator forks every
# agent attempt straight into the agent command (lib/agent.sh), at most
# --concurrency at once, reaps them (wait -n), writes each response and
# announces the results on the root inbox in batches (lib/agent.sh).
set -euo pipefail
CFN_PROG=topology-flat
# shellcheck source=bash/lib/engine-opts.sh
source "${BASH_SOURCE[0]%/*}/lib/engine-opts.sh"

usage() {
  cat <<'EOF2'
Usage: topology-flat.sh --root DIR --swarm-id ID --agents N [options] -- CMD [ARG...]

Runs agents 0..N-1 (minus --completed-indexes) with a concurrency limit,
writes each agent's response to <root>/responses/ and announces the results
to <root>/messages/root in `batch` messages (at most 10 ms after an agent ends).

Options:
EOF2
  engine_opts_help
}

# flat_dispatch INBOX: launches the agents, at most CFN_CONCURRENCY at once,
# and announces each final response as it is reaped.
flat_dispatch() {
  local inbox=$1 i=0 rc now=0
  while :; do
    while ((CFN_AGENTS_RUNNING < CFN_CONCURRENCY && i < CFN_AGENTS_TOTAL)); do
      [[ -n ${CFN_SKIP[$i]:-} ]] || cfn_agent_launch "$i"
      i=$((i + 1))
    done
    ((CFN_AGENTS_RUNNING > 0)) || break
    ((CFN_BATCH_N == 0)) || cfn_tick_arm "$CFN_BATCH_TICK_US" "$now"
    rc=0
    cfn_agent_wait_one || rc=$?
    cfn_now_us now
    if ((rc == 0)); then
      cfn_batch_add "$CFN_DONE_INDEX" "$CFN_DONE_STATUS" "$now"
    elif ((rc == 2)); then
      cfn_die 1 "internal: $CFN_AGENTS_RUNNING agents counted running but no child left"
    fi
    if cfn_batch_due "$now"; then
      cfn_batch_flush "$inbox" flat || cfn_log "announce of $CFN_BATCH_N results failed ($?): retried with the next"
    fi
    if [[ -n $CFN_PARENT_PID ]] && ! cfn_pid_alive "$CFN_PARENT_PID"; then
      cfn_die 143 "parent $CFN_PARENT_PID gone: stopping"
    fi
  done
  cfn_tick_stop
  cfn_batch_flush "$inbox" flat || cfn_die 1 "announce of the last $CFN_BATCH_N results failed"
}

main() {
  engine_parse_opts "$@"
  engine_prepare
  bus_init "$CFN_ROOT/messages/root"
  wd_start "$CFN_ROOT/work/.watchdog" "$$" ${CFN_PARENT_PID:+"$CFN_PARENT_PID"}
  flat_dispatch "$CFN_ROOT/messages/root"
  wd_stop
}

main "$@"
