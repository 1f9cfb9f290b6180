# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# One watchdog per dispatcher instead of one `timeout` process per agent (an
# exec saved per agent). Dispatchers register "PID DEADLINE_US INDEX
# DISPATCHER_PID" per attempt on a FIFO (deadline 0 = none). The watchdog:
# - sends TERM at the deadline and KILL CFN_KILL_AFTER seconds later (to the
#   agent's own process, like timeout --foreground; the run's process group
#   stop takes any grandchild);
# - keeps the attempt's raw output from filling the tmpfs: stdout beyond the
#   --max-output bytes the response keeps, and stderr before its last 64 KiB
#   (the error line comes from its end), are punched out of the files
#   (fallocate --punch-hole) once they hold WD_SLACK bytes more than that.
#   The file sizes stay the raw sizes (outputBytes), nothing is killed.
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

WD_SLACK=${CFN_OUTPUT_SLACK:-4194304}
WD_ERR_KEEP=65536
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
  local fifo=$1 parents=$2 pid dl idx dpid now kill_after_us fd parent punch=0
  local -A deadline=() killed=() files=()
  cfn_seconds_us kill_after_us "${CFN_KILL_AFTER:-2}"
  ((CFN_HAVE_STAT)) && command -v fallocate >/dev/null 2>&1 && punch=1
  exec {fd}<>"$fifo"
  # Registrations are read as they come; the scan (deadlines, output bounds,
  # liveness) runs every 50 ms, not per registration: per registration it cost
  # O(running agents) per launch.
  local next=0 wait_s
  while :; do
    cfn_now_us now
    if ((now < next)); then
      printf -v wait_s '0.%06d' "$((next - now))"
      if IFS=' ' read -r -t "$wait_s" -u "$fd" pid dl idx dpid; then wd__register; fi
      continue
    fi
    next=$((now + 50000))
    for pid in "${!deadline[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        unset "deadline[$pid]" "killed[$pid]" "files[$pid]"
      elif [[ -n ${killed[$pid]:-} ]]; then
        if ((now >= killed[$pid])); then
          kill -KILL "$pid" 2>/dev/null || true
          unset "deadline[$pid]" "killed[$pid]" "files[$pid]"
        fi
      elif ((deadline[$pid] > 0 && now >= deadline[$pid])); then
        kill -TERM "$pid" 2>/dev/null || true
        killed[$pid]=$((now + kill_after_us))
      elif ((punch)); then
        wd__bound_output "${files[$pid]}"
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

# Called in wd__loop with pid dl idx dpid just read.
wd__register() {
  [[ "$pid $dl $idx $dpid" == +([0-9])' '+([0-9])' '+([0-9])' '+([0-9]) ]] || return 0
  deadline[$pid]=$dl
  files[$pid]=$CFN_ROOT/work/agent-$idx.$dpid
}

# wd__bound_output PREFIX: punches the raw output of PREFIX.out and PREFIX.err
# down to what the response can use.
wd__bound_output() {
  local -A st=()
  if stat -A st "$1.out" 2>/dev/null && ((st[blocks] * 512 > CFN_MAX_OUTPUT + WD_SLACK)); then
    fallocate --punch-hole --offset "$CFN_MAX_OUTPUT" --length "$((st[size] - CFN_MAX_OUTPUT))" -- "$1.out" 2>/dev/null || true
  fi
  st=()
  if stat -A st "$1.err" 2>/dev/null && ((st[blocks] * 512 > WD_ERR_KEEP + WD_SLACK)); then
    fallocate --punch-hole --offset 0 --length "$((st[size] - WD_ERR_KEEP))" -- "$1.err" 2>/dev/null || true
  fi
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
