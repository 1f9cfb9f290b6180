#!/usr/bin/env bash
# Test tool: runs one agent of a swarm through bash/lib/agent.sh (the engine's
# topologies run many at once with the same functions): the command is an argv, the task reaches it on stdin and in
# CFN_TASK byte for byte and is never evaluated; bounded by --agent-timeout
# (TERM, then KILL, by the launcher), retried with backoff;
# the response is written atomically to <root>/responses/agent-<i>.json and
# announced by a `result` message.
set -euo pipefail
CFN_PROG=agent-wrapper
# shellcheck source=bash/lib/engine-opts.sh
source "${BASH_SOURCE[0]%/*}/../../../bash/lib/engine-opts.sh"

INDEX='' INBOX=''

usage() {
  cat <<'EOF'
Usage: agent-wrapper.sh --root DIR --swarm-id ID --agents N --index I [options] -- CMD [ARG...]

Runs agent I once (plus retries) and prints its response JSON on stdout.

Options:
  --index I                the agent's index (required)
  --inbox DIR              where the `result` message goes (default <root>/messages/root)
EOF
  engine_opts_help
}

wrapper_opt() {
  case $1 in
    --index) cfn_require_value "$1" $#; INDEX=$2; return 2 ;;
    --inbox) cfn_require_value "$1" $#; INBOX=$2; return 2 ;;
  esac
  return 0
}

# agent_run INDEX INBOX_DIR: runs one agent to its final response and announces it.
agent_run() {
  local rc=0
  cfn_agents_start "$1"
  cfn_agents_next 86400000000 0 || rc=$?
  ((rc == 0)) || return 1
  cfn_agents_next 86400000000 0 || true
  cfn_agent_announce "$2" "$CFN_DONE_INDEX" "$CFN_DONE_STATUS"
}

main() {
  ENGINE_EXTRA_OPT=wrapper_opt
  engine_parse_opts "$@"
  cfn_is_uint "$INDEX" || cfn_die 2 "--index is required (a number)"
  ((INDEX < CFN_AGENTS_TOTAL)) || cfn_die 2 "--index must be below --agents"
  engine_prepare
  [[ -n $INBOX ]] || INBOX=$CFN_ROOT/messages/root
  bus_init "$INBOX"
  local rc=0 text
  agent_run "$INDEX" "$INBOX" || rc=$?
  cfn_read_file text "$CFN_ROOT/responses/agent-$INDEX.json"
  printf '%s' "$text"
  return "$rc"
}

main "$@"
