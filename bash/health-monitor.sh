#!/usr/bin/env bash
# Preflight checks before a swarm starts, and a heartbeat (health.json every
# second) while it runs, reporting dead coordinator processes.
set -euo pipefail
CFN_PROG=health-monitor
# shellcheck source=bash/lib/health.sh
source "${BASH_SOURCE[0]%/*}/lib/health.sh"

usage() {
  cat <<'EOF'
Usage:
  health-monitor.sh preflight [--shm-path DIR] [--agents N] [--max-output BYTES] [--json]
      Checks the shm path (exists or can be created, writable, free space for
      N agents x max output), bash >= 4, ulimit -n >= 1024, timeout and jq
      (inotifywait optional: polling otherwise). Exit 0 healthy, 3 unhealthy
      with the precise reason as one line on stderr (--json: the report on stdout).
  health-monitor.sh check --root DIR [--json]
      One liveness report of the swarm's processes (pids/*.pid).
  health-monitor.sh heartbeat --root DIR [--interval SECONDS] [--parent-pid PID]
      Writes <root>/health.json atomically every interval (default 1 s) until
      the parent is gone or it is signalled.
EOF
}

cmd_preflight() {
  local shm=${CFN_SHM_PATH:-/dev/shm/cfn} agents=1 max_output=65536 json=0
  while (($#)); do
    case $1 in
      --shm-path) cfn_require_value "$1" $#; shm=$2; shift 2 ;;
      --agents) cfn_require_value "$1" $#; agents=$2; shift 2 ;;
      --max-output) cfn_require_value "$1" $#; max_output=$2; shift 2 ;;
      --json) json=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
  cfn_is_uint "$agents" || cfn_die 2 "--agents must be a number"
  cfn_is_uint "$max_output" || cfn_die 2 "--max-output must be a number"
  local rc=0
  health_preflight "$shm" "$agents" "$max_output" || rc=3
  ((json)) && printf '%s\n' "$HEALTH_JSON"
  ((rc == 0)) || cfn_log "preflight failed: $HEALTH_REASON"
  return "$rc"
}

cmd_check() {
  local root='' json=0 rc=0
  while (($#)); do
    case $1 in
      --root) cfn_require_value "$1" $#; root=$2; shift 2 ;;
      --json) json=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ -d $root ]] || cfn_die 2 "--root must be an existing directory"
  health_liveness "$root" || rc=1
  if ((json)); then printf '%s\n' "$HEALTH_JSON"; elif ((rc)); then cfn_log "$HEALTH_REASON"; fi
  return "$rc"
}

cmd_heartbeat() {
  local root='' interval=1 parent=''
  while (($#)); do
    case $1 in
      --root) cfn_require_value "$1" $#; root=$2; shift 2 ;;
      --interval) cfn_require_value "$1" $#; interval=$2; shift 2 ;;
      --parent-pid) cfn_require_value "$1" $#; parent=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ -d $root ]] || cfn_die 2 "--root must be an existing directory"
  cfn_is_number "$interval" || cfn_die 2 "--interval must be a number of seconds"
  cfn_load_builtins
  # No TERM trap: the default action ends the loop at once, even mid-sleep.
  while :; do
    health_liveness "$root" || true
    [[ -d $root ]] || exit 0
    cfn_write_replace "$root/health.json" "$HEALTH_JSON" 2>/dev/null || true
    if [[ -n $parent ]] && ! cfn_pid_alive "$parent"; then exit 0; fi
    sleep "$interval"
  done
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    preflight) cmd_preflight "$@" ;;
    check) cmd_check "$@" ;;
    heartbeat) cmd_heartbeat "$@" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) cfn_die 2 "unknown command: $cmd (see --help)" ;;
  esac
}

main "$@"
