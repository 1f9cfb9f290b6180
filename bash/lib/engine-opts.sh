# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# The dispatcher's options (topology-flat.sh, and the test tool
# agent-wrapper.sh): they fill the globals lib/agent.sh reads. A script adds
# its own options via ENGINE_EXTRA_OPT (a function name: returns the number of
# words consumed, 0 when the option is not its own).
# shellcheck source=bash/lib/agent.sh
source "${BASH_SOURCE[0]%/*}/agent.sh"

CFN_ROOT='' CFN_SWARM_ID='' CFN_AGENTS_TOTAL='' CFN_RANGE_SPEC='' CFN_RANGE_START=0 CFN_RANGE_END=0 CFN_CONCURRENCY=64 CFN_AGENT_TIMEOUT=300
CFN_RETRIES=0 CFN_MAX_OUTPUT=65536 CFN_COMPLETED_SPEC='' CFN_FAILED_SPEC='' CFN_PARENT_PID='' CFN_OBJECTIVE=''
CFN_NO_RETRY_CODES=''
CFN_CMD=()
ENGINE_EXTRA_OPT=

engine_opts_help() {
  cat <<'EOF'
  --root DIR               swarm root (required; created by coordinator-cli.sh)
  --swarm-id ID            swarm id (required)
  --agents N               number of agents in the swarm (required)
  --index-range START-END  run only agents START..END-1 (END exclusive;
                           default 0-N); they keep their indexes
  --concurrency N          agents running at once (default 64)
  --agent-timeout SECONDS  per attempt, TERM then KILL (default 300, 0 = none)
  --retries N              extra attempts after a failure (default 0)
  --no-retry-exit-codes L  exit codes that end an agent at once, never
                           retried ("2,3"; each 1-255)
  --max-output BYTES       stdout kept per agent (default 65536)
  --completed-indexes SPEC agents completed in an earlier run ("0-9,15", inside
                           the index range): not run
  --failed-indexes SPEC    agents that failed finally in an earlier run: not run
  --parent-pid PID         exit when this process is gone
  -- CMD [ARG...]          the agent command (argv, never a shell string)
EOF
}

# engine_parse_opts "$@": parses the shared options and the command after --.
engine_parse_opts() {
  local used
  while (($#)); do
    case $1 in
      --root) cfn_require_value "$1" $#; CFN_ROOT=$2; shift 2 ;;
      --swarm-id) cfn_require_value "$1" $#; CFN_SWARM_ID=$2; shift 2 ;;
      --agents) cfn_require_value "$1" $#; CFN_AGENTS_TOTAL=$2; shift 2 ;;
      --index-range) cfn_require_value "$1" $#; CFN_RANGE_SPEC=$2; shift 2 ;;
      --concurrency) cfn_require_value "$1" $#; CFN_CONCURRENCY=$2; shift 2 ;;
      --agent-timeout) cfn_require_value "$1" $#; CFN_AGENT_TIMEOUT=$2; shift 2 ;;
      --retries) cfn_require_value "$1" $#; CFN_RETRIES=$2; shift 2 ;;
      --max-output) cfn_require_value "$1" $#; CFN_MAX_OUTPUT=$2; shift 2 ;;
      --no-retry-exit-codes) cfn_require_value "$1" $#; CFN_NO_RETRY_CODES=$2; shift 2 ;;
      --completed-indexes) cfn_require_value "$1" $#; CFN_COMPLETED_SPEC=$2; shift 2 ;;
      --failed-indexes) cfn_require_value "$1" $#; CFN_FAILED_SPEC=$2; shift 2 ;;
      --parent-pid) cfn_require_value "$1" $#; CFN_PARENT_PID=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      --) shift; CFN_CMD=("$@"); break ;;
      *)
        used=0
        [[ -n $ENGINE_EXTRA_OPT ]] && { "$ENGINE_EXTRA_OPT" "$@" || used=$?; }
        ((used > 0)) || cfn_die 2 "unknown option: $1 (see --help)"
        shift "$used"
        ;;
    esac
  done
  engine_validate
}

engine_validate() {
  [[ -n $CFN_ROOT && -d $CFN_ROOT ]] || cfn_die 2 "--root must be an existing directory"
  [[ $CFN_SWARM_ID =~ $CFN_SWARM_ID_RE ]] || cfn_die 2 "--swarm-id must match $CFN_SWARM_ID_RE"
  cfn_is_uint "$CFN_AGENTS_TOTAL" || cfn_die 2 "--agents must be a number"
  cfn_parse_range CFN_RANGE_START CFN_RANGE_END "$CFN_RANGE_SPEC" "$((10#$CFN_AGENTS_TOTAL))" || cfn_die 2 "--index-range must be START-END within --agents $CFN_AGENTS_TOTAL"
  cfn_is_pos_int "$CFN_CONCURRENCY" || cfn_die 2 "--concurrency must be >= 1"
  cfn_is_number "$CFN_AGENT_TIMEOUT" || cfn_die 2 "--agent-timeout must be a number of seconds"
  cfn_is_uint "$CFN_RETRIES" || cfn_die 2 "--retries must be a number"
  cfn_is_pos_int "$CFN_MAX_OUTPUT" || cfn_die 2 "--max-output must be >= 1"
  cfn_is_exit_code_list "$CFN_NO_RETRY_CODES" || cfn_die 2 "--no-retry-exit-codes must list exit codes 1-255 (\"2,3\"), got '$CFN_NO_RETRY_CODES'"
  ((${#CFN_CMD[@]} > 0)) || cfn_die 2 "missing agent command after --"
  [[ $CFN_AGENT_TIMEOUT =~ ^0+([.]0*)?$ ]] && CFN_AGENT_TIMEOUT=0
  return 0
}

# engine_prepare: loads builtins, the objective text and the skip set.
# Sets CFN_SKIP (assoc: index -> 1): every agent final in an earlier run.
engine_prepare() {
  cfn_load_builtins
  [[ -f $CFN_ROOT/objective.txt ]] || cfn_die 2 "$CFN_ROOT/objective.txt is missing"
  cfn_read_file CFN_OBJECTIVE "$CFN_ROOT/objective.txt"
  declare -gA CFN_SKIP=()
  cfn_parse_indexes CFN_SKIP "$CFN_COMPLETED_SPEC" "$CFN_RANGE_END" "$CFN_RANGE_START" || exit 2
  cfn_parse_indexes CFN_SKIP "$CFN_FAILED_SPEC" "$CFN_RANGE_END" "$CFN_RANGE_START" || exit 2
  cfn_mkdirs "$CFN_ROOT/work" "$CFN_ROOT/responses/.tmp" "$CFN_ROOT/messages"
}
