#!/usr/bin/env bash
# The dispatcher (the engine's one layout, flat): one coordinator runs every
# agent of its index range through the agent launcher (lib/agent.sh: at most
# --concurrency at once), whose relay publishes each response, and announces
# the results on the root inbox in batches. A swarm larger than one pod is
# split into shards (index ranges), one coordinator each.
set -euo pipefail
CFN_PROG=topology-flat
# shellcheck source=bash/lib/engine-opts.sh
source "${BASH_SOURCE[0]%/*}/lib/engine-opts.sh"

usage() {
  cat <<'EOF'
Usage: topology-flat.sh --root DIR --swarm-id ID --agents N [options] -- CMD [ARG...]

Runs agents START..END-1 of --index-range (default 0..N-1; minus
--completed-indexes and --failed-indexes) with a concurrency limit,
writes each agent's response to <root>/responses/ and announces the results
to <root>/messages/root in `batch` messages (at most 5 ms after an agent ends).

Options:
EOF
  engine_opts_help
}

# flat_dispatch INBOX: runs the agents through the agent launcher and announces each
# final response as it arrives.
flat_dispatch() {
  local inbox=$1 i rc now=0 checked=0
  local -a queue=()
  for ((i = CFN_RANGE_START; i < CFN_RANGE_END; i++)); do
    [[ -n ${CFN_SKIP[$i]:-} ]] || queue+=("$i")
  done
  cfn_agents_start "${queue[@]}"
  while :; do
    rc=0
    cfn_agents_next 1000000 "$now" || rc=$?
    ((rc != 2)) || break
    now=${EPOCHREALTIME/./}
    ((rc != 0)) || cfn_batch_add "$CFN_DONE_INDEX" "$CFN_DONE_STATUS" "$now"
    if cfn_batch_due "$now"; then
      cfn_batch_flush "$inbox" flat || cfn_log "announce of $CFN_BATCH_N results failed ($?): retried with the next"
    fi
    # The parent's liveness, at most every 100 ms.
    if [[ -n $CFN_PARENT_PID ]] && ((now - checked >= 100000)); then
      checked=$now
      cfn_pid_alive "$CFN_PARENT_PID" || cfn_die 143 "parent $CFN_PARENT_PID gone: stopping"
    fi
  done
  cfn_batch_flush "$inbox" flat || cfn_die 1 "announce of the last $CFN_BATCH_N results failed"
}

main() {
  engine_parse_opts "$@"
  engine_prepare
  bus_init "$CFN_ROOT/messages/root"
  flat_dispatch "$CFN_ROOT/messages/root"
}

main "$@"
