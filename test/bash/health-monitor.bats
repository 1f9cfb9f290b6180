#!/usr/bin/env bats
# health-monitor.sh: preflight reasons, heartbeat, dead process detection.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "preflight --json on a healthy tmpfs matches the HealthReport shape" {
  run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/cfn" --agents 500 --json
  [ "$status" -eq 0 ]
  jq -e '.healthy == true and .reason == null and (.checks | has("shm") and has("writable") and has("space") and has("nofile") and has("timeout"))' <<<"$output"
  jq -e 'all(.checks[]; .ok == true and (.detail | type) == "string")' <<<"$output"
  [ -d "$SHM/cfn" ]
}

@test "preflight names the agent launcher and where it serves, and fails on one not built or that cannot run here" {
  run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/cfn" --json
  [ "$status" -eq 0 ]
  jq -e --arg p "$BIN/native/launcher" '.checks.launcher == {"ok": true, "detail": ($p + " (local)")}' <<<"$output"
  CFN_LAUNCHER_DIR=/dev/shm/launch run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/cfn" --json
  [ "$status" -eq 0 ]
  jq -e '.checks.launcher.detail | endswith("(served at /dev/shm/launch)")' <<<"$output"
  # A copy of the engine whose launcher is not built, then one that does not run.
  cp -a "$BIN" "$SHM/engine"
  rm -f "$SHM/engine/native/launcher"
  run "$SHM/engine/health-monitor.sh" preflight --shm-path "$SHM/cfn" --json
  [ "$status" -eq 3 ]
  jq -e --arg p "$SHM/engine/native/launcher" '.reason == ("the agent launcher " + $p + " is not built (scripts/build-native.sh needs a C compiler)")' <<<"${lines[0]}"
  printf '\x7fELF not really\n' >"$SHM/engine/native/launcher"
  chmod +x "$SHM/engine/native/launcher"
  run "$SHM/engine/health-monitor.sh" preflight --shm-path "$SHM/cfn" --json
  [ "$status" -eq 3 ]
  jq -e '.checks.launcher.ok == false and (.reason | contains("does not run here"))' <<<"${lines[0]}"
}

@test "preflight: missing path" {
  run "$BIN/health-monitor.sh" preflight --shm-path /nonexistent/deeper/cfn
  [ "$status" -eq 3 ]
  [[ $output == *"preflight failed: /nonexistent/deeper/cfn does not exist"* ]]
}

@test "preflight: read-only tmpfs, with --json reason" {
  mkdir -p "$SHM/mnt"
  mount -t tmpfs -o ro,size=1m tmpfs "$SHM/mnt" || skip "cannot mount tmpfs here"
  run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/mnt" --json
  [ "$status" -eq 3 ]
  jq -e --arg r "$SHM/mnt not writable" '.healthy == false and .reason == $r and .checks.writable.ok == false' <<<"${lines[0]}"
}

@test "preflight: a 64k tmpfs is too small for 10 agents of 64 KiB output" {
  mkdir -p "$SHM/mnt"
  mount -t tmpfs -o size=64k tmpfs "$SHM/mnt" || skip "cannot mount tmpfs here"
  run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/mnt" --agents 10
  [ "$status" -eq 3 ]
  [[ $output == *"not enough space on $SHM/mnt"* ]]
  run "$BIN/health-monitor.sh" preflight --shm-path "$SHM/mnt" --agents 1 --max-output 1024
  [ "$status" -eq 3 ]
}

@test "heartbeat writes health.json every interval and reports a dead sub-coordinator" {
  local root="$SHM/s"
  mkdir -p "$root/pids"
  sleep 60 &
  local alive=$!
  echo "$alive" >"$root/pids/coordinator.pid"
  echo 999999 >"$root/pids/sub-0.pid"
  "$BIN/health-monitor.sh" heartbeat --root "$root" --interval 0.1 &
  local hb=$!
  sleep 0.5
  jq -e '.healthy == false and .checks.coordinator.ok == true and .checks["sub-0"].ok == false and (.reason | test("sub-0 .pid 999999. is dead")) and (.ts | type) == "number"' "$root/health.json"
  : >"$root/pids/sub-0.done"
  sleep 0.3
  jq -e '.healthy == true' "$root/health.json"
  kill "$hb" "$alive"
  # Reaped before the check: a killed child stays a zombie (its pid alive to kill -0) until its parent waits.
  wait "$hb" "$alive" 2>/dev/null || true
  run "$BIN/health-monitor.sh" check --root "$root" --json
  [ "$status" -eq 1 ]
}

@test "commands and options: an unknown one or a missing value is a usage error (2) naming it; help is exit 0" {
  run "$BIN/health-monitor.sh" frobnicate
  [ "$status" -eq 2 ]
  [[ $output == *"unknown command: frobnicate (see --help)"* ]]
  run "$BIN/health-monitor.sh"
  [ "$status" -eq 2 ]
  [[ $output == Usage:* ]]
  run "$BIN/health-monitor.sh" help
  [ "$status" -eq 0 ]
  [[ $output == Usage:* ]]
  local cmd
  for cmd in preflight check heartbeat; do
    run "$BIN/health-monitor.sh" "$cmd" --bogus
    [ "$status" -eq 2 ]
    [[ $output == *"unknown option: --bogus (see --help)"* ]]
  done
  run "$BIN/health-monitor.sh" check --root
  [ "$status" -eq 2 ]
  [[ $output == *"option --root needs a value"* ]]
}
