#!/usr/bin/env bash
# The agent spawner (docs/v2-engine.md "Agents"): a lean bash process whose one
# job is to fork agent attempts (at most CONCURRENCY at once), reap them, retry
# failures with backoff (never an exit code of --no-retry: that attempt is
# final at once), and report each final attempt on stdout as one line:
#   R INDEX EXIT_CODE ATTEMPTS DURATION_MS TIMED_OUT(0|1)
# Its dispatcher (lib/agent.sh) writes the responses from those lines.
# Why a process of its own: every fork write-protects the forking process's
# pages, so each page the dispatcher's bookkeeping touched afterwards cost a
# copy-on-write fault; forking from this small process while the dispatcher
# does that work on the other core halved the engine's time.
# No loadable builtins here (smaller and cheaper to fork); no bookkeeping.
set -euo pipefail
CFN_PROG=spawner
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

usage() {
  cat <<'EOF'
Usage: spawner.sh [--no-retry CODES] ROOT QUEUE_FILE CONCURRENCY RETRIES AGENT_TIMEOUT_US WD_FD -- CMD [ARG...]

Internal to the V2 engine (started by lib/agent.sh). Runs the agents whose
indexes QUEUE_FILE lists (one per line): stdin <ROOT>/tasks/<i> (else
<ROOT>/objective.txt), the variables of <ROOT>/task-env/<i> (NAME=VALUE,
each ended by NUL) when present, stdout/stderr ROOT/work/agent-<i>.<pid>.{out,err};
registers each attempt with the watchdog on fd WD_FD; prints one line per
final attempt: R INDEX EXIT_CODE ATTEMPTS DURATION_MS TIMED_OUT.
--no-retry CODES ("2,3"): an attempt ending with one of these exit codes is
final, whatever RETRIES allows.
The shared agent environment (OBJECTIVE_ID, SWARM_ID, ...) is inherited.
EOF
}

# sp_resolve NAME: SP_PROG <- what `exec CMD` runs: a program, never a bash
# builtin (bash's own `true`, `echo`) or function. Empty when missing.
sp_resolve() {
  local path
  SP_PROG=()
  if [[ ${SP_CMD[0]} == */* || $(type -t -- "${SP_CMD[0]}") == file ]]; then
    SP_PROG=("${SP_CMD[@]}")
  elif path=$(type -P -- "${SP_CMD[0]}") && [[ -n $path ]]; then
    SP_PROG=("$path" "${SP_CMD[@]:1}")
  fi
}

# sp_task_env INDEX: exports the agent's own variables from ROOT/task-env/INDEX
# (NAME=VALUE entries, each ended by NUL; read as data, never evaluated). A
# name that is not a variable name or belongs to the engine ends the attempt.
sp_task_env() {
  local kv name
  while IFS= read -r -d '' kv; do
    name=${kv%%=*}
    if [[ $kv != *=* || ! $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ || $name == CFN_* || $name =~ ^(AGENT_ID|AGENT_INDEX|OBJECTIVE_ID|SWARM_ID)$ ]]; then
      printf '%s: task-env/%s: invalid or engine variable name: %q\n' "$CFN_PROG" "$1" "$name" >&2
      exit 126
    fi
    export "$name=${kv#*=}"
  done <"$SP_ROOT/task-env/$1"
}

# sp_child INDEX ATTEMPT DELAY TASK_FILE TASK_FITS: the other path (a retry's
# backoff, a task too large for the environment, per-task variables, a
# missing program, the caller's LC_ALL to give back): a subshell that sleeps,
# exports and execs (exec's own error when the program is missing).
sp_child() {
  [[ $3 == 0.000 ]] || sleep "$3"
  if ((SP_HAVE_ENV)) && [[ -f $SP_ROOT/task-env/$1 ]]; then sp_task_env "$1"; fi
  export AGENT_ID=agent-$1 AGENT_INDEX=$1 CFN_ATTEMPT=$2 CFN_TASK_FILE=$4
  if [[ $4 != "$SP_OBJ_FILE" ]]; then export CFN_TASK=$SP_TASK; fi
  (($5)) || unset CFN_TASK
  if [[ $CFN_ORIG_LC_ALL_SET == 1 ]]; then export LC_ALL=$CFN_ORIG_LC_ALL; fi
  exec "${SP_CMD[@]}"
}

# sp_launch INDEX: forks the next attempt of agent INDEX (after a backoff of
# 100 ms x 2^(attempt-2) from the second attempt on) and registers it.
sp_launch() {
  local i=$1 a delay_us=0 delay now tf=$SP_OBJ_FILE fits=1
  local out=$SP_ROOT/work/agent-$1.$$.out err=$SP_ROOT/work/agent-$1.$$.err
  a=$((${SP_ATT[i]:-0} + 1))
  ((a == 1)) || delay_us=$((100000 << (a - 2)))
  if ((SP_HAVE_TASKS)) && [[ -f $SP_ROOT/tasks/$i ]]; then
    tf=$SP_ROOT/tasks/$i
    cfn_read_file SP_TASK "$tf"
    ((${#SP_TASK} <= CFN_TASK_ENV_MAX)) || fits=0
  else
    # The objective: CFN_TASK and CFN_TASK_FILE were exported once (main).
    SP_TASK='' fits=$SP_OBJ_FITS
  fi
  local own_env=0
  if ((SP_HAVE_ENV)) && [[ -f $SP_ROOT/task-env/$i ]]; then own_env=1; fi
  if ((delay_us == 0 && fits && SP_FAST && !own_env)); then
    # A simple asynchronous command: bash forks straight into exec with these
    # variables in the child's environment only (no subshell running code).
    if [[ $tf == "$SP_OBJ_FILE" ]]; then
      AGENT_ID=agent-$i AGENT_INDEX=$i CFN_ATTEMPT=$a "${SP_PROG[@]}" <"$tf" >"$out" 2>"$err" {SP_WD}>&- &
    else
      # shellcheck disable=SC2097,SC2098 # the assignments are meant for the agent only
      AGENT_ID=agent-$i AGENT_INDEX=$i CFN_ATTEMPT=$a CFN_TASK_FILE=$tf CFN_TASK=$SP_TASK \
        "${SP_PROG[@]}" <"$tf" >"$out" 2>"$err" {SP_WD}>&- &
    fi
  else
    printf -v delay '%d.%03d' "$((delay_us / 1000000))" "$(((delay_us / 1000) % 1000))"
    # shellcheck disable=SC2094 # the child only reads the task file
    { sp_child "$i" "$a" "$delay" "$tf" "$fits"; } <"$tf" >"$out" 2>"$err" {SP_WD}>&- &
  fi
  SP_OF[$!]=$i
  now=${EPOCHREALTIME/./}
  ((a > 1)) || SP_T0[i]=$now
  SP_A0[i]=$((now + delay_us)) SP_ATT[i]=$a
  SP_RUNNING=$((SP_RUNNING + 1))
  printf '%s %s %s %s\n' "$!" "$((SP_LIMIT_US > 0 ? now + delay_us + SP_LIMIT_US : 0))" "$i" "$$" >&"$SP_WD"
}

# sp_reaped PID RC: retries a failed attempt, else reports the agent.
sp_reaped() {
  local i=${SP_OF[$1]} rc=$2 now timed_out=0
  unset "SP_OF[$1]"
  SP_RUNNING=$((SP_RUNNING - 1))
  cfn_now_us now
  ((rc != 0 && SP_LIMIT_US > 0 && now - SP_A0[i] >= SP_LIMIT_US)) && timed_out=1
  if ((rc != 0 && SP_ATT[i] <= SP_RETRIES)) && [[ -z ${SP_NO_RETRY[rc]:-} ]]; then
    sp_launch "$i"
    return 0
  fi
  printf 'R %d %d %d %d %d\n' "$i" "$rc" "${SP_ATT[i]}" "$(((now - SP_T0[i]) / 1000))" "$timed_out"
  unset "SP_ATT[i]" "SP_T0[i]" "SP_A0[i]"
}

main() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
  if [[ ${1:-} == --no-retry ]]; then
    if (($# < 2)) || [[ -z $2 ]] || ! cfn_is_exit_code_list "$2"; then cfn_die 2 "--no-retry needs exit codes 1-255 (\"2,3\")"; fi
    local code
    local -a codes=()
    IFS=, read -r -a codes <<<"$2"
    for code in "${codes[@]}"; do SP_NO_RETRY[10#$code]=1; done
    shift 2
  fi
  if (($# < 8)) || [[ $7 != -- ]]; then cfn_die 2 "usage: see --help"; fi
  SP_ROOT=$1 SP_CONC=$3 SP_RETRIES=$4 SP_LIMIT_US=$5 SP_WD=$6
  local -a queue=()
  mapfile -t queue <"$2"
  shift 7
  SP_CMD=("$@")
  SP_OBJ_FILE=$SP_ROOT/objective.txt
  cfn_read_file SP_TASK "$SP_OBJ_FILE"
  SP_OBJ_FITS=0
  if ((${#SP_TASK} <= CFN_TASK_ENV_MAX)); then SP_OBJ_FITS=1 && export CFN_TASK=$SP_TASK; fi
  export CFN_TASK_FILE=$SP_OBJ_FILE
  SP_HAVE_TASKS=0
  [[ ! -d $SP_ROOT/tasks ]] || SP_HAVE_TASKS=1
  SP_HAVE_ENV=0
  [[ ! -d $SP_ROOT/task-env ]] || SP_HAVE_ENV=1
  sp_resolve
  # The fast path needs the program resolved, and no LC_ALL to give back (the
  # engine's own LC_ALL=C is not exported then).
  SP_FAST=0
  ((${#SP_PROG[@]} == 0)) || [[ $CFN_ORIG_LC_ALL_SET == 1 ]] || SP_FAST=1
  local pos=0 n=${#queue[@]} pid rc
  while :; do
    while ((SP_RUNNING < SP_CONC && pos < n)); do
      sp_launch "${queue[pos]}"
      pos=$((pos + 1))
    done
    ((SP_RUNNING > 0)) || break
    pid='' rc=0
    wait -n -p pid || rc=$?
    if [[ -n ${pid:-} ]]; then
      [[ -z ${SP_OF[pid]:-} ]] || sp_reaped "$pid" "$rc"
    else
      sp_reap_saved
    fi
  done
}

# With no job left to wait for, wait -n -p unsets pid. Children bash reaped
# while forking the next ones leave the job table for its list of saved
# statuses, which `wait -n` does not look at (seen with agents that end within
# microseconds): `wait PID` returns those.
sp_reap_saved() {
  local pid rc n=0
  for pid in "${!SP_OF[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    sp_reaped "$pid" "$rc"
    n=$((n + 1))
  done
  ((n > 0)) || cfn_die 1 "internal: $SP_RUNNING agents counted running but no child left"
}

SP_RUNNING=0 SP_TASK='' SP_PROG=() SP_CMD=() SP_OBJ_FILE='' SP_OBJ_FITS=0 SP_HAVE_TASKS=0 SP_HAVE_ENV=0 SP_FAST=0
declare -a SP_OF=() SP_ATT=() SP_T0=() SP_A0=() SP_NO_RETRY=()
main "$@"
