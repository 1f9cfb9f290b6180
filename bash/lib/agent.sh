# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Runs agents (docs/v2-engine.md "Agents"). The dispatching process (the
# flat topology or a hybrid sub-coordinator) starts one spawner (cfn_spawner
# picks it: the native bash/native/spawner when built, else lib/spawner.sh),
# which starts each attempt straight into the agent command (no bash process
# in between), reaps it and retries it with backoff. The response of each
# final attempt is published once (ln): written by the native spawner itself
# (its W report), else by the dispatcher from the bash spawner's R report
# (cfn__agent_finish); the caller announces it. The task is data (stdin and
# CFN_TASK), never evaluated.
#
# Globals the caller sets: CFN_ROOT CFN_SWARM_ID CFN_AGENTS_TOTAL CFN_OBJECTIVE
# CFN_CMD (array) CFN_AGENT_TIMEOUT (seconds, 0 = none) CFN_RETRIES
# CFN_NO_RETRY_CODES ("2,3": exit codes never retried) CFN_MAX_OUTPUT; and the caller runs the watchdog (wd_start: timeouts and
# the raw-output bound).
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/bus.sh"
# shellcheck source=bash/lib/watchdog.sh
source "${BASH_SOURCE[0]%/*}/watchdog.sh"

CFN_KILL_AFTER=${CFN_KILL_AFTER:-2}
# Set by cfn_agents_next when an agent is final.
CFN_DONE_INDEX='' CFN_DONE_STATUS=''
# The running spawner (native or lib/spawner.sh): pid, the fd its reports
# arrive on, its queue file.
CFN_SPAWN_PID='' CFN_SPAWN_FD='' CFN_SPAWN_QUEUE=''

# The environment every agent of the swarm shares, exported once in the
# dispatcher rather than in each forked child.
cfn__agent_env_once() {
  _CFN_ENV_DONE=1
  export OBJECTIVE_ID=$CFN_SWARM_ID SWARM_ID=$CFN_SWARM_ID CFN_AGENTS_TOTAL
  if ((${#CFN_OBJECTIVE} <= CFN_TASK_ENV_MAX)); then export CFN_OBJECTIVE; else export -n CFN_OBJECTIVE; fi
}

# cfn_agents_start INDEX...: starts the spawner on these agents (at most
# CFN_CONCURRENCY at once); cfn_agents_next then hands over each final one.
cfn_agents_start() {
  local fifo limit_us
  [[ -n ${_CFN_ENV_DONE:-} ]] || cfn__agent_env_once
  [[ -n $WD_FD ]] || cfn_die 1 "internal: agents need the watchdog (wd_start)"
  [[ -z ${CFN_CONSUMER_READY:-} ]] || cfn__await_consumer "$CFN_CONSUMER_READY"
  CFN_SPAWN_PID='' CFN_SPAWN_FD=''
  (($#)) || return 0
  CFN_SPAWN_QUEUE=$CFN_ROOT/work/.queue.$BASHPID
  fifo=$CFN_ROOT/work/.spawner.$BASHPID
  printf '%s\n' "$@" >"$CFN_SPAWN_QUEUE"
  rm -f -- "$fifo"
  mkfifo -m 0600 -- "$fifo" || cfn_die 1 "cannot create $fifo"
  cfn_seconds_us limit_us "$CFN_AGENT_TIMEOUT"
  cfn_spawner || cfn_die 2 "$CFN_SPAWNER_WHY"
  local -a argv=("${CFN_SPAWNER_ARGV[@]}")
  # The native spawner writes the responses too (the same bytes as
  # cfn__agent_finish, without its bash work per agent).
  [[ ${argv[0]} == "$BASH" ]] || argv+=(--responses "$CFN_MAX_OUTPUT" "$CFN_AGENT_TIMEOUT")
  [[ -z ${CFN_NO_RETRY_CODES:-} ]] || argv+=(--no-retry "$CFN_NO_RETRY_CODES")
  argv+=("$CFN_ROOT" "$CFN_SPAWN_QUEUE" "$CFN_CONCURRENCY" "$CFN_RETRIES" "$limit_us" "$WD_FD" -- "${CFN_CMD[@]}")
  # The spawner starts with the caller's locale (common.sh records it there).
  if [[ $CFN_ORIG_LC_ALL_SET == 1 ]]; then
    LC_ALL=$CFN_ORIG_LC_ALL "${argv[@]}" </dev/null >"$fifo" &
  else
    "${argv[@]}" </dev/null >"$fifo" &
  fi
  CFN_SPAWN_PID=$!
  exec {CFN_SPAWN_FD}<"$fifo"
  rm -f -- "$fifo"
}

# cfn_agents_next IDLE_US NOW_US: 0 when an agent became final (its response
# is written; CFN_DONE_INDEX/STATUS set), 1 when nothing came before the
# pending batch was due (else within IDLE_US), 2 when every agent is done (the
# spawner ended).
cfn_agents_next() {
  local line r=0 t
  [[ -n $CFN_SPAWN_FD ]] || return 2
  # Poll first: with a report waiting, a plain read (no timer to arm).
  if IFS='' read -r -t 0 -u "$CFN_SPAWN_FD" _; then
    IFS='' read -r -u "$CFN_SPAWN_FD" line || r=$?
    ((r == 0)) || [[ -z $line ]] || r=0
  else
    cfn_agents_timeout t "$1" "$2"
    cfn_read_line_t line "$CFN_SPAWN_FD" "$t" || r=$?
  fi
  ((r != 142)) || return 1
  if ((r != 0)); then
    cfn__agents_end
    return 2
  fi
  # The native spawner wrote the response: W INDEX STATUS.
  if [[ $line == 'W '+([0-9])' '@(completed|failed) ]]; then
    CFN_DONE_INDEX=${line#W } CFN_DONE_STATUS=${line##* }
    CFN_DONE_INDEX=${CFN_DONE_INDEX%% *}
    return 0
  fi
  # One split instead of a cut per field: R and five numbers, nothing else.
  [[ $line == 'R '* && ${line:1} != *[!0-9\ ]* ]] || cfn_die 1 "internal: unexpected spawner report: ${line:0:80}"
  # shellcheck disable=SC2206 # split on spaces on purpose: digits only, no glob
  local -a f=($line)
  [[ ${#f[@]} == 6 && ${f[5]} == [01] ]] || cfn_die 1 "internal: unexpected spawner report: ${line:0:80}"
  cfn__agent_finish "${f[1]}" "${f[2]}" "${f[5]}" "${f[3]}" "${f[4]}"
}

# cfn__await_consumer FILE: waits (1 ms steps, at most 2 s) until the
# consumer of the results says it listens, then goes on either way.
cfn__await_consumer() {
  local i
  for ((i = 0; i < 2000; i++)); do
    [[ ! -e $1 ]] || return 0
    cfn_sleep_ms 1
  done
  cfn_log "no ready consumer after 2 s ($1): starting the agents anyway"
}

# The spawner's output ended: reap it; its failure is the engine's.
cfn__agents_end() {
  local rc=0
  exec {CFN_SPAWN_FD}<&-
  CFN_SPAWN_FD=''
  wait "$CFN_SPAWN_PID" || rc=$?
  rm -f -- "$CFN_SPAWN_QUEUE"
  ((rc == 0)) || cfn_die 1 "agent spawner (pid $CFN_SPAWN_PID) failed with exit code $rc"
}

# cfn_agents_timeout VAR IDLE_US NOW_US: VAR <- seconds for cfn_agents_next:
# until the pending batch is due, else IDLE_US.
cfn_agents_timeout() {
  local us=$2
  if ((CFN_BATCH_N > 0 && CFN_BATCH_T0 + CFN_BATCH_DELAY_US - $3 < us)); then
    us=$((CFN_BATCH_T0 + CFN_BATCH_DELAY_US - $3))
  fi
  ((us > 1000)) || us=1000
  printf -v "$1" '%d.%06d' "$((us / 1000000))" "$((us % 1000000))"
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

# cfn__agent_error VAR RC ERR_FILE TIMED_OUT(0|1): the last line of stderr
# (after "timed out after <s>s" when the attempt timed out), else "exit code RC".
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
# CFN_BATCH_DELAY_US after the first unannounced one, whichever comes first:
# fewer messages for the detector to handle, while a small batch keeps the
# publish-to-handled latency low (docs/performance.md, "Result batches").
# The dispatcher's read timeout (cfn_agents_timeout) bounds the delay when no
# agent ends sooner.
CFN_BATCH_C='' CFN_BATCH_F='' CFN_BATCH_N=0 CFN_BATCH_T0=0
CFN_BATCH_MAX=16
CFN_BATCH_DELAY_US=5000

# cfn_batch_add INDEX STATUS NOW_US
cfn_batch_add() {
  ((CFN_BATCH_N > 0)) || CFN_BATCH_T0=$3
  if [[ $2 == completed ]]; then CFN_BATCH_C+=",$1"; else CFN_BATCH_F+=",$1"; fi
  CFN_BATCH_N=$((CFN_BATCH_N + 1))
}

# cfn_batch_due NOW_US: true when the pending results should be announced now.
cfn_batch_due() {
  ((CFN_BATCH_N >= CFN_BATCH_MAX || (CFN_BATCH_N > 0 && $1 - CFN_BATCH_T0 >= CFN_BATCH_DELAY_US)))
}

# cfn_batch_flush INBOX FROM: announces the pending results as one `batch`
# message, {"completed":[I,...],"failed":[I,...]}; bus_publish's status on
# failure (they stay pending).
cfn_batch_flush() {
  ((CFN_BATCH_N > 0)) || return 0
  bus_publish "$1" batch "$2" "{\"completed\":[${CFN_BATCH_C#,}],\"failed\":[${CFN_BATCH_F#,}]}" || return
  CFN_BATCH_C='' CFN_BATCH_F='' CFN_BATCH_N=0
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

# cfn__agent_finish INDEX RC TIMED_OUT(0|1) ATTEMPTS DURATION_MS: the
# response of the final attempt, published once; its raw output files are removed.
cfn__agent_finish() {
  local idx=$1 rc=$2 id="agent-$1" root=$CFN_ROOT size=0 status truncated=false
  local output_json error_json=null resp dest existing
  local out=$root/work/$id.$CFN_SPAWN_PID.out err=$root/work/$id.$CFN_SPAWN_PID.err
  # Most agents print little or nothing: test for empty first (a stat and
  # its assoc array cost 5x the test).
  if [[ -s $out ]]; then
    cfn_file_size size "$out" || size=0
    ((size <= CFN_MAX_OUTPUT)) || truncated=true
    cfn__agent_output output_json "$out" "$size"
  else
    output_json='""'
  fi
  if ((rc == 0)); then
    status=completed
  else
    status=failed
    cfn__agent_error error_json "$rc" "$err" "$3"
  fi
  printf -v resp '{"agentId":"%s","index":%d,"status":"%s","exitCode":%d,"attempts":%d,"durationMs":%d,"output":%s,"outputBytes":%d,"outputTruncated":%s,"error":%s}' \
    "$id" "$idx" "$status" "$rc" "$4" "$5" "$output_json" "$size" "$truncated" "$error_json"
  rm -f -- "$out" "$err"
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
