# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Runs agents (docs/v2-engine.md "Agents"). The dispatching process (a
# topology, a sub-coordinator, agent-wrapper.sh) forks each attempt straight
# into the agent command: one fork + exec per attempt, no bash process in
# between. It reaps the attempt (`wait -n -p`), retries it with backoff, and
# writes the response (published once with ln) itself; the caller announces
# it. The task is data (stdin and CFN_TASK), never evaluated.
#
# Globals the caller sets: CFN_ROOT CFN_SWARM_ID CFN_AGENTS_TOTAL CFN_OBJECTIVE
# CFN_CMD (array) CFN_AGENT_TIMEOUT (seconds, 0 = none) CFN_RETRIES
# CFN_MAX_OUTPUT; and the caller runs the watchdog (wd_start: timeouts and
# the raw-output bound).
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/bus.sh"
# shellcheck source=bash/lib/watchdog.sh
source "${BASH_SOURCE[0]%/*}/watchdog.sh"

CFN_KILL_AFTER=${CFN_KILL_AFTER:-2}
# Largest environment string exec accepts (MAX_ARG_STRLEN is 128 KiB).
CFN_TASK_ENV_MAX=131000
# Running attempts: pid -> agent index; per agent: attempts so far, first
# start and this attempt's start (epoch µs).
declare -A CFN_AGENT_OF=() _CFN_ATTEMPTS=() _CFN_T0=() _CFN_A0=()
CFN_AGENTS_RUNNING=0
# Set by cfn_agent_reaped when an agent is final.
CFN_DONE_INDEX='' CFN_DONE_STATUS=''
_CFN_LIMIT_US=''

# cfn__agent_child INDEX ATTEMPT DELAY TASK_FILE: the forked attempt: backoff,
# the agent's own environment, exec. Runs with stdin/stdout/stderr already
# redirected; what all agents share was exported once (cfn__agent_env_once).
cfn__agent_child() {
  local task
  bus_close_inherited
  [[ $3 == 0.000 ]] || sleep "$3"
  if [[ $4 == "$CFN_ROOT/objective.txt" ]]; then
    task=$CFN_OBJECTIVE
  else
    cfn_read_file task "$4"
  fi
  export AGENT_ID=agent-$1 AGENT_INDEX=$1 CFN_ATTEMPT=$2 CFN_TASK_FILE=$4
  if ((${#task} <= CFN_TASK_ENV_MAX)); then export CFN_TASK=$task; else unset CFN_TASK; fi
  # The engine's LC_ALL=C is exported only when the caller had exported one:
  # give the agent the caller's value back.
  if [[ $CFN_ORIG_LC_ALL_SET == 1 ]]; then export LC_ALL=$CFN_ORIG_LC_ALL; fi
  # exec: the agent is the real program, never one of the loadable builtins
  # this shell enabled (sleep, rm, ln, mkdir, ...).
  exec "${CFN_CMD[@]}"
}

# The environment every agent of the swarm shares, exported once in the
# dispatcher rather than in each forked child (fewer copy-on-write faults).
cfn__agent_env_once() {
  _CFN_ENV_DONE=1
  export OBJECTIVE_ID=$CFN_SWARM_ID SWARM_ID=$CFN_SWARM_ID CFN_AGENTS_TOTAL
  if ((${#CFN_OBJECTIVE} <= CFN_TASK_ENV_MAX)); then export CFN_OBJECTIVE; else export -n CFN_OBJECTIVE; fi
}

# cfn_agent_launch INDEX: forks the next attempt of agent INDEX (after a
# backoff of 100 ms x 2^(attempt-2) from the second attempt on) and registers
# its deadline with the watchdog.
cfn_agent_launch() {
  local idx=$1 attempt delay_us=0 delay now pid task_file=$CFN_ROOT/tasks/$1
  local out=$CFN_ROOT/work/agent-$1.$BASHPID.out err=$CFN_ROOT/work/agent-$1.$BASHPID.err
  attempt=$((${_CFN_ATTEMPTS[$idx]:-0} + 1))
  ((attempt == 1)) || delay_us=$((100000 << (attempt - 2)))
  printf -v delay '%d.%03d' "$((delay_us / 1000000))" "$(((delay_us / 1000) % 1000))"
  [[ -f $task_file ]] || task_file=$CFN_ROOT/objective.txt
  [[ -n ${_CFN_ENV_DONE:-} ]] || cfn__agent_env_once
  [[ -n $WD_FD ]] || cfn_die 1 "internal: agents need the watchdog (wd_start)"
  # The child only reads the task file (and is told its path): SC2094 is a false alarm.
  # shellcheck disable=SC2094
  { cfn__agent_child "$idx" "$attempt" "$delay" "$task_file"; } <"$task_file" >"$out" 2>"$err" {WD_FD}>&- &
  pid=$!
  cfn_now_us now
  ((attempt > 1)) || _CFN_T0[$idx]=$now
  _CFN_A0[$idx]=$((now + delay_us))
  _CFN_ATTEMPTS[$idx]=$attempt
  CFN_AGENT_OF[$pid]=$idx
  CFN_AGENTS_RUNNING=$((CFN_AGENTS_RUNNING + 1))
  [[ -n $_CFN_LIMIT_US ]] || cfn_seconds_us _CFN_LIMIT_US "$CFN_AGENT_TIMEOUT"
  printf '%s %s %s %s\n' "$pid" "$((_CFN_LIMIT_US > 0 ? now + delay_us + _CFN_LIMIT_US : 0))" "$idx" "$BASHPID" >&"$WD_FD"
}

# cfn_agent_reaped PID RC: the caller reaped PID (one of CFN_AGENT_OF) with
# exit status RC. Returns 1 when the attempt failed and the next one was
# launched; else writes the response and returns 0 with CFN_DONE_INDEX and
# CFN_DONE_STATUS set.
cfn_agent_reaped() {
  local pid=$1 rc=$2 idx=${CFN_AGENT_OF[$1]} now timed_out=0
  unset "CFN_AGENT_OF[$pid]"
  CFN_AGENTS_RUNNING=$((CFN_AGENTS_RUNNING - 1))
  cfn_now_us now
  ((rc != 0 && _CFN_LIMIT_US > 0 && now - _CFN_A0[$idx] >= _CFN_LIMIT_US)) && timed_out=1
  if ((rc != 0 && _CFN_ATTEMPTS[$idx] <= CFN_RETRIES)); then
    cfn_agent_launch "$idx"
    return 1
  fi
  cfn__agent_finish "$idx" "$rc" "$timed_out" "$now"
}

# cfn_agent_wait_one: waits for any child; reaps and handles it when it is an
# agent attempt. Returns 0 when an agent became final (CFN_DONE_*), 1 when the
# ended child was something else or an attempt was retried, 2 with no child left.
cfn_agent_wait_one() {
  local pid='' rc=0
  wait -n -p pid 2>/dev/null || rc=$?
  # With no child left, wait -n -p unsets pid.
  [[ -n ${pid:-} ]] || return 2
  if [[ -z ${CFN_AGENT_OF[$pid]:-} ]]; then
    [[ $pid != "$CFN_TICK_PID" ]] || CFN_TICK_PID=''
    return 1
  fi
  cfn_agent_reaped "$pid" "$rc"
}

# cfn__agent_output VAR OUT_FILE SIZE: VAR <- JSON string of at most
# CFN_MAX_OUTPUT bytes of the output. Pure bash for printable ASCII; jq for the
# rest (invalid UTF-8 -> U+FFFD, control characters escaped, NUL kept).
cfn__agent_output() {
  local file=$2 size=$3 want data j
  if ((size == 0)); then
    printf -v "$1" '""'
    return 0
  fi
  want=$((size < CFN_MAX_OUTPUT ? size : CFN_MAX_OUTPUT))
  IFS='' read -r -N "$want" data <"$file" || true
  if ((${#data} == want)) && ! [[ $data =~ $_CFN_NONPRINT_RE ]]; then
    cfn_json_str "$1" "$data"
    return 0
  fi
  if ((size > CFN_MAX_OUTPUT)); then
    j=$(head -c "$CFN_MAX_OUTPUT" -- "$file" | jq -Rs .) || j='""'
  else
    j=$(jq -Rs . <"$file") || j='""'
  fi
  printf -v "$1" '%s' "$j"
}

# cfn__agent_error VAR RC ERR_FILE: the last line of stderr, else a description.
cfn__agent_error() {
  local rc=$2 file=$3 timed_out=$4 size=0 last=''
  cfn_file_size size "$file" 2>/dev/null || size=0
  if ((size > 0)); then
    last=$(tail -c 4096 -- "$file" | sed -e '/^[[:space:]]*$/d' | tail -n 1) || last=
  fi
  if ((timed_out)); then
    last="timed out after ${CFN_AGENT_TIMEOUT}s${last:+: $last}"
  fi
  [[ -n $last ]] || last="exit code $rc"
  cfn_json_str "$1" "$last"
}

# cfn_agent_announce INBOX INDEX STATUS: the `result` message for an agent.
cfn_agent_announce() {
  local rc=0
  bus_publish "$1" result "agent-$2" "{\"agentId\":\"agent-$2\",\"index\":$2,\"status\":\"$3\"}" || rc=$?
  return "$rc"
}

# Announcing results in `batch` messages: one per CFN_BATCH_MAX results, or
# CFN_BATCH_DELAY_US after the first unannounced one, whichever comes first.
# One message per agent cost the detector as much CPU as the agent's own exec.
# A tick child (cfn_tick_arm) bounds the delay when no agent ends sooner.
CFN_BATCH='' CFN_BATCH_N=0 CFN_BATCH_T0=0
CFN_BATCH_MAX=64
CFN_BATCH_DELAY_US=5000
# The longest a result waits for its announcement when no agent ends sooner.
CFN_BATCH_TICK_US=10000
CFN_TICK_PID='' CFN_TICK_DUE=0

# cfn_batch_add INDEX STATUS NOW_US
cfn_batch_add() {
  ((CFN_BATCH_N > 0)) || CFN_BATCH_T0=$3
  CFN_BATCH+="${CFN_BATCH:+,}{\"agentId\":\"agent-$1\",\"index\":$1,\"status\":\"$2\"}"
  CFN_BATCH_N=$((CFN_BATCH_N + 1))
}

# cfn_batch_due NOW_US: true when the pending results should be announced now.
cfn_batch_due() {
  ((CFN_BATCH_N >= CFN_BATCH_MAX || (CFN_BATCH_N > 0 && $1 - CFN_BATCH_T0 >= CFN_BATCH_DELAY_US)))
}

# cfn_batch_flush INBOX FROM: announces the pending results; bus_publish's
# status on failure (they stay pending).
cfn_batch_flush() {
  ((CFN_BATCH_N > 0)) || return 0
  bus_publish "$1" batch "$2" "{\"results\":[$CFN_BATCH]}" || return
  CFN_BATCH='' CFN_BATCH_N=0
}

# cfn_tick_arm MICROSECONDS NOW_US: a child that ends after MICROSECONDS, so
# the dispatcher's `wait -n` returns by then at the latest. A running tick due
# later than wanted is replaced (the old one is reaped as a non-agent child).
cfn_tick_arm() {
  local s
  if [[ -n $CFN_TICK_PID ]]; then
    ((CFN_TICK_DUE > $2 + $1)) || return 0
    kill "$CFN_TICK_PID" 2>/dev/null || true
  fi
  printf -v s '%d.%06d' "$(($1 / 1000000))" "$(($1 % 1000000))"
  { sleep "$s"; } {WD_FD}>&- &
  CFN_TICK_PID=$! CFN_TICK_DUE=$(($2 + $1))
}

# cfn_tick_stop: ends and reaps the tick child, if any.
cfn_tick_stop() {
  [[ -n $CFN_TICK_PID ]] || return 0
  kill "$CFN_TICK_PID" 2>/dev/null || true
  wait "$CFN_TICK_PID" 2>/dev/null || true
  CFN_TICK_PID=''
}

# cfn_response_status VAR RESPONSE_FILE: completed|failed from a response file.
cfn_response_status() {
  local line
  IFS='' read -r line <"$2" || true
  if [[ $line =~ ^\{\"agentId\":\"agent-[0-9]+\",\"index\":[0-9]+,\"status\":\"(completed|failed)\" ]]; then
    printf -v "$1" '%s' "${BASH_REMATCH[1]}"
    return 0
  fi
  return 1
}

# cfn__agent_finish INDEX RC TIMED_OUT(0|1) END_US: the response of the
# final attempt, published once; its raw output files are removed.
cfn__agent_finish() {
  local idx=$1 rc=$2 id="agent-$1" root=$CFN_ROOT size=0 status truncated=false
  local output_json error_json=null resp dest existing
  local out=$root/work/$id.$BASHPID.out err=$root/work/$id.$BASHPID.err
  cfn_file_size size "$out" 2>/dev/null || size=0
  ((size > CFN_MAX_OUTPUT)) && truncated=true
  cfn__agent_output output_json "$out" "$size"
  if ((rc == 0)); then
    status=completed
  else
    status=failed
    cfn__agent_error error_json "$rc" "$err" "$3"
  fi
  printf -v resp '{"agentId":"%s","index":%d,"status":"%s","exitCode":%d,"attempts":%d,"durationMs":%d,"output":%s,"outputBytes":%d,"outputTruncated":%s,"error":%s}' \
    "$id" "$idx" "$status" "$rc" "${_CFN_ATTEMPTS[$idx]}" "$((($4 - _CFN_T0[$idx]) / 1000))" "$output_json" "$size" "$truncated" "$error_json"
  unset "_CFN_ATTEMPTS[$idx]" "_CFN_T0[$idx]" "_CFN_A0[$idx]"
  unlink "$out" 2>/dev/null || true
  unlink "$err" 2>/dev/null || true
  dest=$root/responses/$id.json
  if ! cfn_publish_once "$dest" "$resp" "$root/responses/.tmp"; then
    # A response exists (an earlier run, or a re-dispatched twin): keep the
    # first, drop this one, and still announce the one on disk.
    cfn_log "second response for $id dropped"
    cfn_response_status existing "$dest" || existing=$status
    status=$existing
  fi
  CFN_DONE_INDEX=$idx CFN_DONE_STATUS=$status
}

# cfn_agent_run INDEX INBOX_DIR: runs one agent to its final response and
# announces it (agent-wrapper.sh; the topologies run many at once instead).
cfn_agent_run() {
  local rc=0
  cfn_agent_launch "$1"
  while :; do
    rc=0
    cfn_agent_wait_one || rc=$?
    ((rc == 0)) && break
    ((rc == 2)) && return 1
  done
  cfn_agent_announce "$2" "$CFN_DONE_INDEX" "$CFN_DONE_STATUS"
}
