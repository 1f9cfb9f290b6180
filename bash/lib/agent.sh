# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Runs agents (docs/v2-engine.md "Who runs an agent"). The dispatching process
# (the dispatcher topology-flat.sh, the test tool agent-wrapper.sh) starts one relay of the
# agent launcher (bash/native/launcher relay) per batch of agents: it hands
# them, through the run's hub (CFN_LAUNCHER_HUB), to the launcher serving
# CFN_LAUNCHER_DIR (the pod's agent container, or the run's local one; without
# either, a launcher of its own), which starts each attempt straight into the agent
# command, reaps it, retries it with backoff and stops it at its timeout. The
# relay validates each response the launcher sends back, publishes it once
# (ln) and reports W INDEX STATUS; the caller announces it. The task is data
# (stdin and CFN_TASK), never evaluated.
#
# Globals the caller sets: CFN_ROOT CFN_SWARM_ID CFN_AGENTS_TOTAL CFN_OBJECTIVE
# CFN_CMD (array) CFN_AGENT_TIMEOUT (seconds, 0 = none) CFN_RETRIES
# CFN_NO_RETRY_CODES ("2,3": exit codes never retried) CFN_MAX_OUTPUT.
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/bus.sh"

export CFN_KILL_AFTER=${CFN_KILL_AFTER:-2}
# Set by cfn_agents_next when an agent is final.
CFN_DONE_INDEX='' CFN_DONE_STATUS=''
# The running relay: pid, the fd its reports arrive on, its queue file.
CFN_SPAWN_PID='' CFN_SPAWN_FD='' CFN_SPAWN_QUEUE=''

# The environment every agent of the swarm shares, exported once in the
# dispatcher rather than in each forked child.
cfn__agent_env_once() {
  _CFN_ENV_DONE=1
  export OBJECTIVE_ID=$CFN_SWARM_ID SWARM_ID=$CFN_SWARM_ID CFN_AGENTS_TOTAL
  if ((${#CFN_OBJECTIVE} <= CFN_TASK_ENV_MAX)); then export CFN_OBJECTIVE; else export -n CFN_OBJECTIVE; fi
}

# cfn_agents_start INDEX...: starts a relay of the launcher on these agents (at most
# CFN_CONCURRENCY at once); cfn_agents_next then hands over each final one.
cfn_agents_start() {
  local fifo limit_us
  [[ -n ${_CFN_ENV_DONE:-} ]] || cfn__agent_env_once
  [[ -z ${CFN_CONSUMER_READY:-} ]] || cfn__await_consumer "$CFN_CONSUMER_READY"
  CFN_SPAWN_PID='' CFN_SPAWN_FD=''
  (($#)) || return 0
  CFN_SPAWN_QUEUE=$CFN_ROOT/work/.queue.$BASHPID
  fifo=$CFN_ROOT/work/.relay.$BASHPID
  printf '%s\n' "$@" >"$CFN_SPAWN_QUEUE"
  rm -f -- "$fifo"
  mkfifo -m 0600 -- "$fifo" || cfn_die 1 "cannot create $fifo"
  cfn_seconds_us limit_us "$CFN_AGENT_TIMEOUT"
  cfn_launcher || cfn_die 2 "$CFN_LAUNCHER_WHY"
  local -a argv=("$CFN_LAUNCHER" relay --max-output "$CFN_MAX_OUTPUT" --timeout-text "$CFN_AGENT_TIMEOUT")
  [[ -z ${CFN_NO_RETRY_CODES:-} ]] || argv+=(--no-retry "$CFN_NO_RETRY_CODES")
  argv+=("$CFN_ROOT" "$CFN_SPAWN_QUEUE" "$CFN_CONCURRENCY" "$CFN_RETRIES" "$limit_us" -- "${CFN_CMD[@]}")
  # With the caller's locale (common.sh records it): agents a relay runs itself get it.
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
# relay ended).
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
  # The relay published the response: W INDEX STATUS.
  if [[ $line == 'W '+([0-9])' '@(completed|failed) ]]; then
    CFN_DONE_INDEX=${line#W } CFN_DONE_STATUS=${line##* }
    CFN_DONE_INDEX=${CFN_DONE_INDEX%% *}
    return 0
  fi
  cfn_die 1 "internal: unexpected launcher report: ${line:0:80}"
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

# The relay's output ended: reap it; its failure is the engine's.
cfn__agents_end() {
  local rc=0
  exec {CFN_SPAWN_FD}<&-
  CFN_SPAWN_FD=''
  wait "$CFN_SPAWN_PID" || rc=$?
  rm -f -- "$CFN_SPAWN_QUEUE"
  ((rc == 0)) || cfn_die 1 "launcher relay (pid $CFN_SPAWN_PID) failed with exit code $rc"
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
