# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# One watchdog per dispatcher instead of one `timeout` process per agent (an
# exec saved per agent). Spawners register "PID DEADLINE_US INDEX SPAWNER_PID"
# per attempt by appending a line to a registration log (deadline 0 = none);
# the watchdog reads what was appended every 50 ms, so registering costs the
# spawner one write and wakes nobody (a FIFO woke the watchdog per attempt).
# Every 50 ms it:
# - sends TERM at the deadline and KILL CFN_KILL_AFTER seconds later (to the
#   agent's own process, like timeout --foreground; the run's process group
#   stop takes any grandchild);
# - keeps the attempt's raw output from filling the tmpfs: stdout beyond the
#   --max-output bytes the response keeps, and stderr before its last 64 KiB
#   (the error line comes from its end), are punched out of the files
#   (fallocate --punch-hole) once they hold WD_SLACK bytes more than that.
#   The file sizes stay the raw sizes (outputBytes), nothing is killed. An
#   attempt is checked from its second scan on (most have ended by then).
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

WD_SLACK=${CFN_OUTPUT_SLACK:-4194304}
WD_ERR_KEEP=65536
WD_FD=''
WD_PID=''

# wd_start LOG_PATH PARENT_PID...: starts the watchdog; sets WD_FD (the
# registration log, append-only) for spawners. When any PARENT_PID is gone it
# TERMs every registered agent and exits.
wd_start() {
  local log=$1
  shift
  local parents="$*"
  rm -f -- "$log"
  : >"$log" || return 1
  exec {WD_FD}>>"$log"
  { wd__loop "$log" "$parents"; } {WD_FD}>&- &
  WD_PID=$!
}

wd__loop() {
  local log=$1 parents=$2 pid dl idx dpid now kill_after_us fd parent punch=0 line partial=''
  local -A deadline=() killed=() files=() seen=()
  local -a lines=()
  cfn_seconds_us kill_after_us "${CFN_KILL_AFTER:-2}"
  ((CFN_HAVE_STAT)) && command -v fallocate >/dev/null 2>&1 && punch=1
  exec {fd}<"$log"
  while :; do
    # What the spawners appended since the last scan; a line still being
    # written waits for the next one.
    mapfile -u "$fd" lines
    for line in "${lines[@]}"; do
      line=$partial$line partial=''
      if [[ $line != *$'\n' ]]; then
        partial=$line
        continue
      fi
      line=${line%$'\n'}
      pid=${line%% *} line=${line#* }
      dl=${line%% *} line=${line#* }
      idx=${line%% *} dpid=${line#* }
      wd__register
    done
    cfn_now_us now
    for pid in "${!deadline[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        unset "deadline[$pid]" "killed[$pid]" "files[$pid]" "seen[$pid]"
      elif [[ -n ${killed[$pid]:-} ]]; then
        if ((now >= killed[$pid])); then
          kill -KILL "$pid" 2>/dev/null || true
          unset "deadline[$pid]" "killed[$pid]" "files[$pid]" "seen[$pid]"
        fi
      elif ((deadline[$pid] > 0 && now >= deadline[$pid])); then
        kill -TERM "$pid" 2>/dev/null || true
        killed[$pid]=$((now + kill_after_us))
      elif [[ -z ${seen[$pid]:-} ]]; then
        seen[$pid]=1
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
    sleep 0.05
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
