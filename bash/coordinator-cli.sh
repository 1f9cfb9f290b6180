#!/usr/bin/env bash
# Entry point of the V2 engine: runs an objective with N agents (or the index
# range of one shard of them) over the tmpfs message bus (docs/v2-engine.md).
set -euo pipefail
CFN_PROG=coordinator-cli
# shellcheck source=bash/lib/health.sh
source "${BASH_SOURCE[0]%/*}/lib/health.sh"

usage() {
  cat <<'EOF'
Usage:
  coordinator-cli.sh run --swarm-id ID --agents N [options] -- CMD [ARG...]

run    runs the objective in the foreground until every agent's final
       response is in (completed or failed) or the deadline passed.

Options:
  --swarm-id ID            [a-z0-9][a-z0-9._-]{0,62} (required)
  --agents N               number of agents in the swarm (required)
  --index-range START-END  run only agents START..END-1 (END exclusive; one
                           shard of the swarm): they keep their indexes, the
                           status counts END - START (default 0-N)
  --objective TEXT         the objective (else --objective-file, else an
  --objective-file FILE      existing <root>/objective.txt)
  --tasks-dir DIR          per-agent task files DIR/<index> (copied to <root>/tasks)
  --tasks-file FILE        one task per agent, each ended by a NUL byte (the
                           last one's NUL optional); exactly --agents of them
                           (the swarm's, whatever the --index-range)
  --task-env-dir DIR       per-agent variables DIR/<index>: NAME=VALUE entries,
                           each ended by NUL (copied to <root>/task-env)
  --timeout SECONDS        overall deadline (default 3600)
  --agent-timeout SECONDS  per attempt (default 300, 0 = none)
  --retries N              extra attempts after a failure (default 0)
  --no-retry-exit-codes L  exit codes that end an agent at once, never
                           retried ("2,3"; each 1-255)
  --concurrency N          agents running at once (default 64)
  --max-output BYTES       stdout kept per agent (default 65536)
  --shm-path DIR           default $CFN_SHM_PATH or /dev/shm/cfn
  --completed-indexes SPEC agents completed in an earlier run ("0-9,15";
                           inside the index range): counted as completed,
                           not re-run
  --failed-indexes SPEC    agents that failed finally in an earlier run
                           (inside the index range): counted as failed, not re-run
  --inbox-capacity N       messages per inbox before publishers wait (default 4096)
  --publish-timeout S      a publisher waiting longer fails with 75 (default 30)
  --bus-mode M             auto | inotify | poll (default auto; env CFN_BUS_MODE)
  --keep                   leave the root for the caller to remove
  --results-file PATH      write every response as JSONL to PATH (atomic)
  --json                   print the final status.json on stdout
  -h, --help               this help

Exit codes: 0 finished, every agent final (status.json says how many
completed: deliveryRate = completed / total), 1 engine failure,
2 usage error, 3 preflight failed (reason on stderr and in health.json),
4 deadline passed, 130/143 interrupted.
EOF
}

# --- options -----------------------------------------------------------------

O_SWARM='' O_AGENTS='' O_RANGE='' O_START=0 O_END=0 O_OBJECTIVE='' O_OBJECTIVE_SET=0 O_OBJECTIVE_FILE=''
O_TASKS_DIR='' O_TASKS_FILE='' O_TASK_ENV_DIR='' O_TIMEOUT=3600 O_AGENT_TIMEOUT=300 O_RETRIES=0 O_CONCURRENCY=64
O_MAX_OUTPUT=65536 O_SHM=${CFN_SHM_PATH:-/dev/shm/cfn} O_COMPLETED='' O_FAILED='' O_NO_RETRY=''
O_KEEP=0 O_RESULTS='' O_JSON=0 O_CAPACITY=4096 O_PUBLISH_TIMEOUT=30 O_BUS_MODE=${CFN_BUS_MODE:-auto}
O_CMD=()

parse_opts() {
  while (($#)); do
    case $1 in
      --swarm-id) cfn_require_value "$1" $#; O_SWARM=$2; shift 2 ;;
      --agents) cfn_require_value "$1" $#; O_AGENTS=$2; shift 2 ;;
      --index-range) cfn_require_value "$1" $#; O_RANGE=$2; shift 2 ;;
      --objective) cfn_require_value "$1" $#; O_OBJECTIVE=$2; O_OBJECTIVE_SET=1; shift 2 ;;
      --objective-file) cfn_require_value "$1" $#; O_OBJECTIVE_FILE=$2; shift 2 ;;
      --tasks-dir) cfn_require_value "$1" $#; O_TASKS_DIR=$2; shift 2 ;;
      --tasks-file) cfn_require_value "$1" $#; O_TASKS_FILE=$2; shift 2 ;;
      --task-env-dir) cfn_require_value "$1" $#; O_TASK_ENV_DIR=$2; shift 2 ;;
      --timeout) cfn_require_value "$1" $#; O_TIMEOUT=$2; shift 2 ;;
      --agent-timeout) cfn_require_value "$1" $#; O_AGENT_TIMEOUT=$2; shift 2 ;;
      --retries) cfn_require_value "$1" $#; O_RETRIES=$2; shift 2 ;;
      --concurrency) cfn_require_value "$1" $#; O_CONCURRENCY=$2; shift 2 ;;
      --max-output) cfn_require_value "$1" $#; O_MAX_OUTPUT=$2; shift 2 ;;
      --shm-path) cfn_require_value "$1" $#; O_SHM=$2; shift 2 ;;
      --completed-indexes) cfn_require_value "$1" $#; O_COMPLETED=$2; shift 2 ;;
      --failed-indexes) cfn_require_value "$1" $#; O_FAILED=$2; shift 2 ;;
      --no-retry-exit-codes) cfn_require_value "$1" $#; O_NO_RETRY=$2; shift 2 ;;
      --inbox-capacity) cfn_require_value "$1" $#; O_CAPACITY=$2; shift 2 ;;
      --publish-timeout) cfn_require_value "$1" $#; O_PUBLISH_TIMEOUT=$2; shift 2 ;;
      --bus-mode) cfn_require_value "$1" $#; O_BUS_MODE=$2; shift 2 ;;
      --keep) O_KEEP=1; shift ;;
      --results-file) cfn_require_value "$1" $#; O_RESULTS=$2; shift 2 ;;
      --json) O_JSON=1; shift ;;
      -h | --help) usage; exit 0 ;;
      --) shift; O_CMD=("$@"); break ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
}

validate_swarm_id() {
  [[ -n $O_SWARM ]] || cfn_die 2 "--swarm-id is required"
  [[ $O_SWARM =~ $CFN_SWARM_ID_RE ]] || cfn_die 2 "invalid --swarm-id '$O_SWARM' (expected $CFN_SWARM_ID_RE)"
  [[ $O_SHM == /* ]] || cfn_die 2 "--shm-path must be absolute"
  O_SHM=${O_SHM%/}
  ROOT=$O_SHM/$O_SWARM
}

validate_run_opts() {
  validate_swarm_id
  cfn_is_pos_int "$O_AGENTS" || cfn_die 2 "--agents must be >= 1"
  cfn_parse_range O_START O_END "$O_RANGE" "$O_AGENTS" || cfn_die 2 "--index-range must be START-END within --agents $O_AGENTS (got '$O_RANGE')"
  cfn_is_number "$O_TIMEOUT" || cfn_die 2 "--timeout must be a number of seconds"
  cfn_is_number "$O_AGENT_TIMEOUT" || cfn_die 2 "--agent-timeout must be a number of seconds"
  cfn_is_uint "$O_RETRIES" || cfn_die 2 "--retries must be a number"
  cfn_is_pos_int "$O_CONCURRENCY" || cfn_die 2 "--concurrency must be >= 1"
  cfn_is_pos_int "$O_MAX_OUTPUT" || cfn_die 2 "--max-output must be >= 1"
  cfn_is_pos_int "$O_CAPACITY" || cfn_die 2 "--inbox-capacity must be >= 1"
  cfn_is_number "$O_PUBLISH_TIMEOUT" || cfn_die 2 "--publish-timeout must be a number of seconds"
  [[ $O_BUS_MODE == @(auto|inotify|poll) ]] || cfn_die 2 "--bus-mode must be auto, inotify or poll"
  ((${#O_CMD[@]} > 0)) || cfn_die 2 "missing agent command after --"
  ((O_OBJECTIVE_SET == 0)) || [[ -z $O_OBJECTIVE_FILE ]] || cfn_die 2 "--objective and --objective-file are exclusive"
  [[ -z $O_OBJECTIVE_FILE || -r $O_OBJECTIVE_FILE ]] || cfn_die 2 "cannot read --objective-file $O_OBJECTIVE_FILE"
  [[ -z $O_TASKS_DIR || -d $O_TASKS_DIR ]] || cfn_die 2 "--tasks-dir $O_TASKS_DIR is not a directory"
  [[ -z $O_TASKS_DIR || -z $O_TASKS_FILE ]] || cfn_die 2 "--tasks-dir and --tasks-file are exclusive"
  [[ -z $O_TASK_ENV_DIR || -d $O_TASK_ENV_DIR ]] || cfn_die 2 "--task-env-dir $O_TASK_ENV_DIR is not a directory"
  if [[ -n $O_TASKS_FILE ]]; then
    [[ -f $O_TASKS_FILE && -r $O_TASKS_FILE ]] || cfn_die 2 "cannot read --tasks-file $O_TASKS_FILE"
    local n
    n=$(tasks_file_count "$O_TASKS_FILE")
    [[ $n == "$O_AGENTS" ]] || cfn_die 2 "--tasks-file $O_TASKS_FILE holds $n tasks but --agents is $O_AGENTS: give one task per agent"
  fi
  cfn_is_exit_code_list "$O_NO_RETRY" || cfn_die 2 "--no-retry-exit-codes must list exit codes 1-255 (\"2,3\"), got '$O_NO_RETRY'"
  # Canonical decimals ("02" -> 2): meta.json lists them as JSON numbers.
  local -a codes=()
  IFS=, read -r -a codes <<<"$O_NO_RETRY"
  O_NO_RETRY=''
  local c
  for c in "${codes[@]}"; do O_NO_RETRY+=${O_NO_RETRY:+,}$((10#$c)); done
  local -A probe=() probe_failed=()
  cfn_parse_indexes probe "$O_COMPLETED" "$O_END" "$O_START" || cfn_die 2 "--completed-indexes must lie inside the index range $O_START..$((O_END - 1))"
  cfn_parse_indexes probe_failed "$O_FAILED" "$O_END" "$O_START" || cfn_die 2 "--failed-indexes must lie inside the index range $O_START..$((O_END - 1))"
  local i
  for i in "${!probe_failed[@]}"; do
    [[ -z ${probe[$i]:-} ]] || cfn_die 2 "agent $i is in both --completed-indexes and --failed-indexes"
  done
  if [[ -n $O_RESULTS ]]; then
    local dir=.
    [[ $O_RESULTS == */* ]] && dir=${O_RESULTS%/*}
    [[ -d ${dir:-/} ]] || cfn_die 2 "--results-file directory ${dir} does not exist"
  fi
  return 0
}

# running_pid VAR: the pid of a live coordinator of this swarm, if any.
running_pid() {
  local _rp=''
  if [[ -r $ROOT/pids/coordinator.pid ]]; then IFS= read -r _rp <"$ROOT/pids/coordinator.pid" || true; fi
  if [[ $_rp =~ ^[0-9]+$ ]] && ((_rp != $$)) && cfn_pid_running "$_rp"; then
    printf -v "$1" '%s' "$_rp"
    return 0
  fi
  return 1
}

preflight() {
  if ! health_preflight "$O_SHM" "$((O_END - O_START))" "$O_MAX_OUTPUT"; then
    if [[ -d $ROOT ]]; then cfn_write_replace "$ROOT/health.json" "$HEALTH_JSON" 2>/dev/null || true; fi
    cfn_die 3 "preflight failed: $HEALTH_REASON"
  fi
  local pid
  if running_pid pid; then cfn_die 3 "preflight failed: swarm $O_SWARM already running (pid $pid)"; fi
  return 0
}

# --- tasks -----------------------------------------------------------------------

# tasks_file_count FILE: prints the number of NUL-ended records (data, never evaluated).
tasks_file_count() {
  local t n=0
  while IFS= read -r -d '' t || [[ -n $t ]]; do n=$((n + 1)); done <"$1"
  printf '%d\n' "$n"
}

# split_tasks_file FILE DIR: record i of FILE becomes DIR/<i>, byte for byte,
# for the agents of the index range (the others never read theirs).
split_tasks_file() {
  local t i=0
  while IFS= read -r -d '' t || [[ -n $t ]]; do
    if ((i >= O_START && i < O_END)); then
      printf '%s' "$t" >"$2/.$i.tmp"
      mv -f -- "$2/.$i.tmp" "$2/$i"
    fi
    i=$((i + 1))
  done <"$1"
}

# --- run -----------------------------------------------------------------------

ROOT='' STARTED_US=0 INTERRUPTED=0 CLEANED=0
DET_PID='' TOPO_PID='' HB_PID='' LAUNCH_PID='' HUB_PID=''

prepare_root() {
  mkdir -p -- "$ROOT"
  local d
  for d in pids metrics work responses responses/.tmp messages quarantine tasks; do
    [[ -d $ROOT/$d ]] || mkdir -m 0700 -- "$ROOT/$d"
  done
  if ((O_OBJECTIVE_SET)); then
    # Raw bytes (no newline added); ln publishes a first objective without an mv exec.
    printf '%s' "$O_OBJECTIVE" >"$ROOT/.objective.tmp"
    if ln -- "$ROOT/.objective.tmp" "$ROOT/objective.txt" 2>/dev/null; then
      unlink "$ROOT/.objective.tmp"
    else
      mv -f -- "$ROOT/.objective.tmp" "$ROOT/objective.txt"
    fi
  elif [[ -n $O_OBJECTIVE_FILE ]]; then
    cp -- "$O_OBJECTIVE_FILE" "$ROOT/.objective.tmp" && mv -f -- "$ROOT/.objective.tmp" "$ROOT/objective.txt"
  elif [[ ! -f $ROOT/objective.txt ]]; then
    cfn_die 2 "no objective: give --objective, --objective-file or write $ROOT/objective.txt"
  fi
  if [[ -n $O_TASKS_DIR ]]; then
    cp -R -- "$O_TASKS_DIR/." "$ROOT/tasks/"
  elif [[ -n $O_TASKS_FILE ]]; then
    split_tasks_file "$O_TASKS_FILE" "$ROOT/tasks"
  fi
  if [[ -n $O_TASK_ENV_DIR ]]; then
    [[ -d $ROOT/task-env ]] || mkdir -m 0700 -- "$ROOT/task-env"
    cp -R -- "$O_TASK_ENV_DIR/." "$ROOT/task-env/"
  fi
  printf '%s\n' "$$" >"$ROOT/pids/coordinator.pid"
}

write_meta() {
  local cmd_json='' a j iso
  for a in "${O_CMD[@]}"; do
    cfn_json_str j "$a"
    cmd_json+=${cmd_json:+,}$j
  done
  cfn_iso iso "$STARTED_US"
  local meta
  printf -v meta '{"swarmId":"%s","agents":%d,"indexRange":{"start":%d,"end":%d},"concurrency":%d,"agentTimeout":%s,"retries":%d,"noRetryExitCodes":[%s],"maxOutput":%d,"timeout":%s,"completedIndexes":"%s","failedIndexes":"%s","command":[%s],"pid":%d,"startedAt":"%s"}' \
    "$O_SWARM" "$O_AGENTS" "$O_START" "$O_END" "$O_CONCURRENCY" "$O_AGENT_TIMEOUT" "$O_RETRIES" "$O_NO_RETRY" "$O_MAX_OUTPUT" "$O_TIMEOUT" "$O_COMPLETED" "$O_FAILED" "$cmd_json" "$$" "$iso"
  cfn_write_new "$ROOT/meta.json" "$meta"
}

start_components() {
  local bin=$CFN_BIN_DIR
  local -a engine=(--root "$ROOT" --swarm-id "$O_SWARM" --agents "$O_AGENTS" --index-range "$O_START-$O_END" --concurrency "$O_CONCURRENCY"
    --agent-timeout "$O_AGENT_TIMEOUT" --retries "$O_RETRIES" --no-retry-exit-codes "$O_NO_RETRY"
    --max-output "$O_MAX_OUTPUT" --completed-indexes "$O_COMPLETED" --failed-indexes "$O_FAILED" --parent-pid "$$")
  export CFN_BUS_MODE=$O_BUS_MODE CFN_INBOX_CAPACITY=$O_CAPACITY CFN_PUBLISH_TIMEOUT=$O_PUBLISH_TIMEOUT
  # Agents start once the detector consumes (lib/agent.sh): results published
  # before it listened would wait out its start-up and count as latency.
  rm -f -- "$ROOT/pids/detector.ready"
  export CFN_CONSUMER_READY=$ROOT/pids/detector.ready
  # Job control: each component gets its own process group, so stopping one
  # group reaches every agent it forked (timeout --foreground keeps them in it).
  set -m
  start_launcher
  "$bin/completion-detector.sh" --root "$ROOT" --swarm-id "$O_SWARM" --total "$O_AGENTS" \
    --index-range "$O_START-$O_END" --timeout "$O_TIMEOUT" --started-us "$STARTED_US" \
    --completed-indexes "$O_COMPLETED" --failed-indexes "$O_FAILED" --parent-pid "$$" &
  DET_PID=$!
  # The dispatcher and its agents run at a lower priority (CFN_AGENT_NICE,
  # default 15) than the detector, so it gets the CPU the moment a message
  # lands even with every agent runnable (docs/performance.md).
  nice -n "${CFN_AGENT_NICE:-15}" "$bin/topology-flat.sh" "${engine[@]}" -- "${O_CMD[@]}" &
  TOPO_PID=$!
  "$bin/health-monitor.sh" heartbeat --root "$ROOT" --parent-pid "$$" &
  HB_PID=$!
  set +m
  printf '%s\n' "$DET_PID" >"$ROOT/pids/detector.pid"
  printf '%s\n' "$TOPO_PID" >"$ROOT/pids/topology.pid"
}

# The agents' launcher: in a pod the agent container serves CFN_LAUNCHER_DIR;
# a run without one serves its own, a local process over the same channel
# (docs/v2-engine.md "Who runs an agent"), with the caller's locale and the
# agents' priority (CFN_AGENT_NICE). The hub is the run's one connection to
# it: the relays hand it their requests at $ROOT/launcher.hub, a socket only
# the coordinator reaches (CFN_LAUNCHER_HUB). A pod whose agents are isolated
# per slot (CFN_LAUNCHER_SLOTS=N) has N agent containers, slot k serving
# CFN_LAUNCHER_DIR/k: the hub serves each (its requests at CFN_LAUNCHER_HUB.k).
start_launcher() {
  local -a slots=()
  cfn_launcher || cfn_die 3 "preflight failed: $CFN_LAUNCHER_WHY"
  if [[ -z ${CFN_LAUNCHER_DIR:-} ]]; then
    # A local launcher is one: slots are a pod's.
    unset CFN_LAUNCHER_SLOTS
    export CFN_LAUNCHER_DIR=$ROOT/launch
    if [[ $CFN_ORIG_LC_ALL_SET == 1 ]]; then
      LC_ALL=$CFN_ORIG_LC_ALL nice -n "${CFN_AGENT_NICE:-15}" "$CFN_LAUNCHER" serve --parent-pid "$$" "$CFN_LAUNCHER_DIR" 2>>"$ROOT/launcher.log" &
    else
      nice -n "${CFN_AGENT_NICE:-15}" "$CFN_LAUNCHER" serve --parent-pid "$$" "$CFN_LAUNCHER_DIR" 2>>"$ROOT/launcher.log" &
    fi
    LAUNCH_PID=$!
    printf '%s\n' "$LAUNCH_PID" >"$ROOT/pids/launcher.pid"
  fi
  [[ -z ${CFN_LAUNCHER_SLOTS:-} ]] || slots=(--slots "$CFN_LAUNCHER_SLOTS")
  export CFN_LAUNCHER_HUB=$ROOT/launcher.hub
  "$CFN_LAUNCHER" hub --parent-pid "$$" "${slots[@]}" "$CFN_LAUNCHER_DIR" "$CFN_LAUNCHER_HUB" 2>>"$ROOT/launcher.log" &
  HUB_PID=$!
}

# stop_group PGID: TERM the process group, then KILL what is left after 2 s.
# Checks back after 1 ms, doubling to 50 ms: a group that ends at once (the
# usual case at the end of a run) costs a millisecond, not a 50 ms tick.
stop_group() {
  local pgid=$1 waited=0 ms=1
  [[ -n $pgid ]] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  while ((waited < 2000)); do
    cfn_group_alive "$pgid" || return 0
    cfn_sleep_ms "$ms"
    waited=$((waited + ms))
    ((ms < 50)) && ms=$((ms * 2 > 50 ? 50 : ms * 2))
  done
  cfn_log "process group $pgid still alive 2 s after TERM: KILL"
  kill -KILL -- "-$pgid" 2>/dev/null || true
}

# Waits for the detector; a topology that dies with an error makes the run fail.
supervise() {
  local done_pid rc
  while :; do
    done_pid='' rc=0
    wait -n -p done_pid "$DET_PID" ${TOPO_PID:+"$TOPO_PID"} || rc=$?
    if ((INTERRUPTED)); then return 0; fi
    if [[ $done_pid == "$DET_PID" ]]; then
      DET_RC=$rc
      return 0
    fi
    if [[ -n $done_pid && $done_pid == "$TOPO_PID" ]]; then
      TOPO_PID=''
      if ((rc == 0)); then
        : >"$ROOT/pids/topology.done"
      else
        cfn_log "topology exited with $rc"
        kill -USR1 "$DET_PID" 2>/dev/null || true
      fi
    elif [[ -z $done_pid ]]; then
      # Nothing left to wait for (should not happen): treat as engine failure.
      DET_RC=1
      return 0
    fi
  done
}

write_results() {
  [[ -n $O_RESULTS ]] || return 0
  local tmp="$O_RESULTS.tmp.$$" i line fd
  exec {fd}>"$tmp"
  for ((i = O_START; i < O_END; i++)); do
    [[ -f $ROOT/responses/agent-$i.json ]] || continue
    IFS='' read -r line <"$ROOT/responses/agent-$i.json" || true
    printf '%s\n' "$line" >&"$fd"
  done
  exec {fd}>&-
  mv -f -- "$tmp" "$O_RESULTS"
}

print_status() {
  ((O_JSON)) || return 0
  local text=''
  [[ -f $ROOT/status.json ]] && cfn_read_file text "$ROOT/status.json"
  printf '%s' "$text"
}

# Stops every component and removes the root (unless --keep). Idempotent.
cleanup() {
  ((CLEANED)) && return 0
  CLEANED=1
  trap '' INT TERM
  # The heartbeat has no TERM trap and ends at once: reaping it here spares
  # stop_group's /proc scans at the end of every run.
  if [[ -n $HB_PID ]] && kill -TERM -- "-$HB_PID" 2>/dev/null; then wait "$HB_PID" 2>/dev/null || true; fi
  if [[ -n $DET_PID ]] && cfn_pid_alive "$DET_PID"; then
    kill -TERM "$DET_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 400; i++)); do cfn_pid_alive "$DET_PID" || break; sleep 0.005; done
  fi
  stop_group "$TOPO_PID"
  stop_group "$HUB_PID"
  stop_group "$LAUNCH_PID"
  stop_group "$DET_PID"
  stop_group "$HB_PID"
  [[ -n $TOPO_PID$DET_PID$HB_PID$LAUNCH_PID$HUB_PID ]] && { wait 2>/dev/null || true; }
  [[ -z $O_RESULTS ]] || rm -f -- "$O_RESULTS.tmp.$$"
  if [[ -n $ROOT && -d $ROOT ]]; then
    if ((O_KEEP)); then
      unlink "$ROOT/pids/coordinator.pid" 2>/dev/null || rm -f -- "$ROOT/pids/coordinator.pid"
    else
      rm -rf -- "$ROOT"
    fi
  fi
}

on_signal() {
  INTERRUPTED=$1
  trap '' INT TERM
}

cmd_run() {
  parse_opts "$@"
  validate_run_opts
  cfn_load_builtins
  preflight
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM
  trap cleanup EXIT
  cfn_now_us STARTED_US
  prepare_root
  write_meta
  cfn_write_new "$ROOT/health.json" "$HEALTH_JSON"
  DET_RC=1
  start_components
  supervise
  if ((INTERRUPTED)); then
    cleanup_interrupted
    exit "$INTERRUPTED"
  fi
  stop_group "$TOPO_PID"
  TOPO_PID=''
  write_results
  print_status
  case $DET_RC in
    0) exit 0 ;;
    4) exit 4 ;;
    143) exit 143 ;;
    *) exit 1 ;;
  esac
}

# On INT/TERM: the detector records "stopped" in status.json, then everything stops.
cleanup_interrupted() {
  if [[ -n $DET_PID ]] && cfn_pid_alive "$DET_PID"; then
    kill -TERM "$DET_PID" 2>/dev/null || true
    wait "$DET_PID" 2>/dev/null || true
  fi
  stop_group "$TOPO_PID"
  write_results
  print_status
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    run) cmd_run "$@" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) cfn_die 2 "unknown command: $cmd (see --help)" ;;
  esac
}

main "$@"
