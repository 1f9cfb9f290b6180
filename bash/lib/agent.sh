# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Runs one agent (docs/v2-engine.md "Agents"): the agent command is an argv run
# once per attempt with the task on stdin and in CFN_TASK (never evaluated),
# bounded by timeout -k, retried with backoff; its response is published once
# with ln and announced by a `result` message. Meant to run in a subshell
# forked by a topology: `cfn_agent_run 7 "$inbox" &`.
#
# Globals the caller sets: CFN_ROOT CFN_SWARM_ID CFN_AGENTS_TOTAL CFN_OBJECTIVE
# CFN_CMD (array) CFN_AGENT_TIMEOUT (seconds, 0 = none) CFN_RETRIES CFN_MAX_OUTPUT.
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/bus.sh"
# shellcheck source=bash/lib/watchdog.sh
source "${BASH_SOURCE[0]%/*}/watchdog.sh"

CFN_KILL_AFTER=${CFN_KILL_AFTER:-2}
# Largest environment string exec accepts (MAX_ARG_STRLEN is 128 KiB).
CFN_TASK_ENV_MAX=131000

# cfn__agent_exec ATTEMPT TASK_FILE OUT ERR: one attempt; returns its exit code.
cfn__agent_exec() {
  export CFN_ATTEMPT=$1
  if [[ $CFN_ORIG_LC_ALL_SET == 1 ]]; then LC_ALL=$CFN_ORIG_LC_ALL; else unset LC_ALL; fi
  local rc=0 pid now t
  if [[ $CFN_AGENT_TIMEOUT != 0 && -n $WD_FD ]]; then
    # The topology's watchdog enforces the timeout: no timeout exec per agent.
    # exec: the agent is the real program, never one of the loadable builtins
    # this shell enabled (sleep, rm, ln, mkdir, ...).
    { exec "${CFN_CMD[@]}"; } <"$2" >"$3" 2>"$4" {WD_FD}>&- &
    pid=$!
    cfn_now_us now
    cfn_seconds_us t "$CFN_AGENT_TIMEOUT"
    printf '%s %s\n' "$pid" "$((now + t))" >&"$WD_FD"
    wait "$pid" || rc=$?
  elif [[ $CFN_AGENT_TIMEOUT != 0 ]]; then
    timeout --foreground -k "$CFN_KILL_AFTER" "$CFN_AGENT_TIMEOUT" "${CFN_CMD[@]}" <"$2" >"$3" 2>"$4" || rc=$?
    ((rc != 124)) || rc=143
  else
    (exec "${CFN_CMD[@]}") <"$2" >"$3" 2>"$4" || rc=$?
  fi
  LC_ALL=C
  return "$rc"
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

# cfn_agent_run INDEX INBOX_DIR: runs agent INDEX to its final response.
cfn_agent_run() {
  local idx=$1 inbox=$2 id="agent-$1" root=$CFN_ROOT
  local task_file="$root/tasks/$1" task out err
  local attempt=0 max=$((CFN_RETRIES + 1)) rc=0 t0 t1 size=0 status truncated=false
  local output_json error_json=null resp dest existing
  bus_close_inherited
  if [[ -f $task_file ]]; then
    cfn_read_file task "$task_file"
  else
    task_file=$root/objective.txt task=$CFN_OBJECTIVE
  fi
  export AGENT_ID=$id AGENT_INDEX=$idx OBJECTIVE_ID=$CFN_SWARM_ID SWARM_ID=$CFN_SWARM_ID
  export CFN_AGENTS_TOTAL CFN_TASK_FILE=$task_file
  if ((${#CFN_OBJECTIVE} <= CFN_TASK_ENV_MAX)); then export CFN_OBJECTIVE; else unset CFN_OBJECTIVE; fi
  if ((${#task} <= CFN_TASK_ENV_MAX)); then export CFN_TASK=$task; else unset CFN_TASK; fi
  out=$root/work/$id.out err=$root/work/$id.err
  cfn_now_us t0
  local a0 a1 timed_out=0 limit_us
  cfn_seconds_us limit_us "$CFN_AGENT_TIMEOUT"
  while :; do
    attempt=$((attempt + 1))
    rc=0
    cfn_now_us a0
    cfn__agent_exec "$attempt" "$task_file" "$out" "$err" || rc=$?
    cfn_now_us a1
    timed_out=0
    ((rc != 0 && limit_us > 0 && a1 - a0 >= limit_us)) && timed_out=1
    ((rc != 0 && attempt < max)) || break
    cfn_sleep_ms "$((100 << (attempt - 1)))"
  done
  cfn_now_us t1
  cfn_file_size size "$out" 2>/dev/null || size=0
  ((size > CFN_MAX_OUTPUT)) && truncated=true
  cfn__agent_output output_json "$out" "$size"
  if ((rc == 0)); then
    status=completed
  else
    status=failed
    cfn__agent_error error_json "$rc" "$err" "$timed_out"
  fi
  printf -v resp '{"agentId":"%s","index":%d,"status":"%s","exitCode":%d,"attempts":%d,"durationMs":%d,"output":%s,"outputBytes":%d,"outputTruncated":%s,"error":%s}' \
    "$id" "$idx" "$status" "$rc" "$attempt" "$(((t1 - t0) / 1000))" "$output_json" "$size" "$truncated" "$error_json"
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
  cfn_agent_announce "$inbox" "$idx" "$status"
}
