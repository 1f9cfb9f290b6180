# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# One agent-timeout watchdog per topology instead of one `timeout` process per
# agent (an exec saved per agent). Agents register "PID DEADLINE_US" on a FIFO;
# the watchdog sends TERM at the deadline and KILL CFN_KILL_AFTER seconds later
# (to the agent's own process, like timeout --foreground; the run's process
# group stop takes any grandchild).
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

WD_FD=''
WD_PID=''

# wd_start FIFO_PATH PARENT_PID...: starts the watchdog; sets WD_FD for agents.
# When any PARENT_PID is gone it TERMs every registered agent and exits.
wd_start() {
  local fifo=$1
  shift
  local parents="$*"
  rm -f -- "$fifo"
  mkfifo -m 0600 -- "$fifo" || return 1
  { wd__loop "$fifo" "$parents"; } &
  WD_PID=$!
  exec {WD_FD}<>"$fifo"
}

wd__loop() {
  local fifo=$1 parents=$2 pid dl now kill_after_us fd parent
  local -A deadline=() killed=()
  cfn_seconds_us kill_after_us "${CFN_KILL_AFTER:-2}"
  exec {fd}<>"$fifo"
  while :; do
    if IFS=' ' read -r -t 0.05 -u "$fd" pid dl; then
      [[ $pid =~ ^[0-9]+$ && $dl =~ ^[0-9]+$ ]] && deadline[$pid]=$dl
      while IFS=' ' read -r -t 0 -u "$fd" 2>/dev/null && IFS=' ' read -r -u "$fd" pid dl; do
        [[ $pid =~ ^[0-9]+$ && $dl =~ ^[0-9]+$ ]] && deadline[$pid]=$dl
      done
    fi
    cfn_now_us now
    for pid in "${!deadline[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        unset "deadline[$pid]" "killed[$pid]"
      elif [[ -n ${killed[$pid]:-} ]]; then
        if ((now >= killed[$pid])); then
          kill -KILL "$pid" 2>/dev/null || true
          unset "deadline[$pid]" "killed[$pid]"
        fi
      elif ((now >= deadline[$pid])); then
        kill -TERM "$pid" 2>/dev/null || true
        killed[$pid]=$((now + kill_after_us))
      fi
    done
    for parent in $parents; do
      if ! kill -0 "$parent" 2>/dev/null; then
        for pid in "${!deadline[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        wd__stop_own_group
        exit 0
      fi
    done
  done
}

# When the topology leads its own process group (as coordinator-cli.sh starts
# it), an orphaned run takes its agents' children down too: TERM the group.
wd__stop_own_group() {
  local stat=''
  { IFS= read -r stat </proc/$BASHPID/stat; } 2>/dev/null || return 0
  stat=${stat##*) }
  stat=${stat#* }
  stat=${stat#* }
  [[ ${stat%% *} == "$$" ]] || return 0
  trap '' TERM
  kill -TERM 0 2>/dev/null || true
}

# wd_stop: ends the watchdog (all agents done).
wd_stop() {
  [[ -n $WD_PID ]] || return 0
  kill "$WD_PID" 2>/dev/null || true
  wait "$WD_PID" 2>/dev/null || true
  WD_PID=''
}
