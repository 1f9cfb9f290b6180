# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Preflight checks and liveness reports (health.json), shared by
# health-monitor.sh and coordinator-cli.sh. Output shape: HealthReport in
# operator/coordination/types.ts: {"healthy","reason","checks":{name:{ok,detail}}}.
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

HEALTH_REASON=''
HEALTH_JSON=''
declare -a _HEALTH_CHECKS=()

# health__check NAME OK(0|1) DETAIL: records one check; the first failure is the reason.
health__check() {
  local name=$1 ok=$2 detail=$3 dj
  cfn_json_str dj "$detail"
  if ((ok)); then
    _HEALTH_CHECKS+=("\"$name\":{\"ok\":true,\"detail\":$dj}")
  else
    _HEALTH_CHECKS+=("\"$name\":{\"ok\":false,\"detail\":$dj}")
    [[ -n $HEALTH_REASON ]] || HEALTH_REASON=$detail
  fi
}

# health__fs_type VAR DIR: the file system type DIR is on (no fork).
health__fs_type() {
  local dir=$2 mnt type best=-1 _fst=unknown
  while read -r _ mnt type _; do
    if [[ $dir == "$mnt" || $dir == "$mnt"/* || $mnt == / ]] && ((${#mnt} > best)); then
      best=${#mnt} _fst=$type
    fi
  done </proc/self/mounts
  printf -v "$1" '%s' "$_fst"
}

# health_preflight SHM AGENTS MAX_OUTPUT: 0 when healthy; sets HEALTH_REASON
# (one line, e.g. "/dev/shm/cfn not writable") and HEALTH_JSON.
health_preflight() {
  local shm=${1%/} agents=$2 max_output=$3 probe avail need fstype nofile tool
  HEALTH_REASON='' _HEALTH_CHECKS=()
  if ((BASH_VERSINFO[0] >= 4)); then
    health__check bash 1 "bash $BASH_VERSION"
  else
    health__check bash 0 "bash >= 4 required, found $BASH_VERSION"
  fi
  if [[ ! -d $shm ]]; then
    if [[ -d ${shm%/*} || ${shm%/*} == '' ]] && mkdir -m 0700 -- "$shm" 2>/dev/null; then
      health__check shm 1 "$shm created"
    elif [[ -e $shm ]]; then
      health__check shm 0 "$shm is not a directory"
    elif [[ -d ${shm%/*} ]]; then
      health__check shm 0 "$shm does not exist and cannot be created (${shm%/*} not writable)"
    else
      health__check shm 0 "$shm does not exist"
    fi
  else
    health__fs_type fstype "$shm"
    health__check shm 1 "$shm ($fstype)"
  fi
  if [[ -d $shm ]]; then
    probe=$shm/.cfn-probe.$$
    if { printf 'x' >"$probe"; } 2>/dev/null && { unlink "$probe" 2>/dev/null || rm -f -- "$probe"; }; then
      health__check writable 1 "$shm writable"
    else
      rm -f -- "$probe" 2>/dev/null || true
      health__check writable 0 "$shm not writable"
    fi
    # Estimate: each agent's response (max output, escaped) plus its raw output while it runs.
    need=$((agents * (max_output + 2048) / 1024 + 1024))
    avail=$(df -Pk -- "$shm" 2>/dev/null | { read -r _; read -r _ _ _ a _ && printf '%s' "$a"; }) || avail=
    if [[ $avail =~ ^[0-9]+$ ]]; then
      if ((avail >= need)); then
        health__check space 1 "$avail KiB free on $shm, about $need KiB needed"
      else
        health__check space 0 "not enough space on $shm: about $need KiB needed for $agents agents, $avail KiB free"
      fi
    else
      health__check space 1 "free space on $shm unknown"
    fi
  fi
  nofile=$(ulimit -n)
  if [[ $nofile == unlimited ]] || ((nofile >= 1024)); then
    health__check nofile 1 "ulimit -n $nofile"
  else
    health__check nofile 0 "ulimit -n is $nofile, at least 1024 needed"
  fi
  for tool in timeout jq; do
    if command -v "$tool" >/dev/null 2>&1; then
      health__check "$tool" 1 "$(command -v "$tool")"
    else
      health__check "$tool" 0 "$tool not found in PATH"
    fi
  done
  if command -v inotifywait >/dev/null 2>&1; then
    health__check inotifywait 1 "inotify wake-up"
  else
    health__check inotifywait 1 "inotifywait missing: the bus polls every 10 ms"
  fi
  health__launcher
  health__render
  [[ -z $HEALTH_REASON ]]
}

# The agent launcher (cfn_launcher) must run here: its relay side runs in
# the coordinator; the agents' side serves CFN_LAUNCHER_DIR (the pod's agent
# container) or runs locally.
health__launcher() {
  local where=local
  [[ -z ${CFN_LAUNCHER_DIR:-} ]] || where="served at $CFN_LAUNCHER_DIR"
  if ! cfn_launcher; then
    health__check launcher 0 "$CFN_LAUNCHER_WHY"
  elif "$CFN_LAUNCHER" --help >/dev/null 2>&1; then
    health__check launcher 1 "$CFN_LAUNCHER ($where)"
  else
    health__check launcher 0 "the agent launcher $CFN_LAUNCHER does not run here (rebuild it: scripts/build-native.sh)"
  fi
}

health__render() {
  local IFS=, reason=null
  [[ -n $HEALTH_REASON ]] && cfn_json_str reason "$HEALTH_REASON"
  if [[ -z $HEALTH_REASON ]]; then
    HEALTH_JSON="{\"healthy\":true,\"reason\":null,\"checks\":{${_HEALTH_CHECKS[*]}}}"
  else
    HEALTH_JSON="{\"healthy\":false,\"reason\":$reason,\"checks\":{${_HEALTH_CHECKS[*]}}}"
  fi
}

# health_liveness ROOT: checks the pids in ROOT/pids (coordinator, detector,
# dispatcher, launcher); a pid that is gone without its
# done file is reported dead. Sets HEALTH_JSON (with ts/heartbeat) and HEALTH_REASON.
health_liveness() {
  local root=$1 f name pid now iso
  HEALTH_REASON='' _HEALTH_CHECKS=()
  for f in "$root"/pids/*.pid; do
    [[ -e $f ]] || continue
    name=${f##*/}
    name=${name%.pid}
    pid=''
    IFS='' read -r pid <"$f" || true
    if cfn_pid_alive "$pid"; then
      health__check "$name" 1 "pid $pid alive"
    elif [[ -e $root/pids/$name.done ]]; then
      health__check "$name" 1 "pid $pid finished"
    else
      health__check "$name" 0 "$name (pid $pid) is dead"
    fi
  done
  health__render
  cfn_now_us now
  cfn_iso iso "$now"
  HEALTH_JSON="${HEALTH_JSON%\}},\"ts\":$now,\"heartbeat\":\"$iso\"}"
  [[ -z $HEALTH_REASON ]]
}
