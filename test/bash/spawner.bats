#!/usr/bin/env bats
# lib/spawner.sh: forks, reaps and reports agents for a dispatcher.

load helpers

setup() {
  common_setup
  ROOT="$SHM/sp"
  mkdir -p "$ROOT/work"
  printf 'the objective' >"$ROOT/objective.txt"
}

teardown() { common_teardown; }

# spawn N CONCURRENCY RETRIES -- CMD...: runs agents 0..N-1; reports in $OUT/reports.
spawn() {
  local n=$1 c=$2 r=$3
  shift 4
  seq 0 $((n - 1)) >"$ROOT/queue"
  "$BIN/lib/spawner.sh" "$ROOT" "$ROOT/queue" "$c" "$r" 0 9 -- "$@" 9>>"$ROOT/wd.reg" >"$OUT/reports"
}

@test "regression: agents that end before wait -n are still reported (a spawner saw 7 running and no child left)" {
  # Agents ending within microseconds at a low concurrency: bash reaps some
  # while forking the next, and `wait -n` no longer sees them.
  spawn 3000 7 0 -- true
  [ "$(wc -l <"$OUT/reports")" -eq 3000 ]
  [ "$(awk '$1 == "R" && $3 == 0 && $4 == 1 { print $2 }' "$OUT/reports" | sort -un | wc -l)" -eq 3000 ]
  # Every attempt was registered with the watchdog: PID DEADLINE INDEX SPAWNER_PID.
  [ "$(grep -cE '^[0-9]+ 0 [0-9]+ [0-9]+$' "$ROOT/wd.reg")" -eq 3000 ]
}

@test "a failing agent is retried with backoff and reported once with its attempts" {
  spawn 2 2 2 -- sh -c 'exit 3'
  [ "$(wc -l <"$OUT/reports")" -eq 2 ]
  awk '$1 == "R" && $3 == 3 && $4 == 3 && $5 >= 300 && $6 == 0 { n++ } END { exit n == 2 ? 0 : 1 }' "$OUT/reports"
}

@test "the agent runs the program exec would run, never a bash builtin or an engine function" {
  local bin="$SHM/bin"
  mkdir -p "$bin"
  printf '#!/bin/sh\necho "program $0 $*"\n' >"$bin/true"
  cp "$bin/true" "$bin/sp_launch"
  chmod +x "$bin/true" "$bin/sp_launch"
  PATH="$bin:$PATH" spawn 1 1 0 -- true a
  [ "$(cat "$ROOT"/work/agent-0.*.out)" = "program $bin/true a" ]
  rm -f "$ROOT"/work/agent-0.*
  PATH="$bin:$PATH" spawn 1 1 0 -- sp_launch b
  [ "$(cat "$ROOT"/work/agent-0.*.out)" = "program $bin/sp_launch b" ]
}

@test "usage errors exit 2; --help exits 0" {
  run "$BIN/lib/spawner.sh" "$ROOT"
  [ "$status" -eq 2 ]
  run "$BIN/lib/spawner.sh" --help
  [ "$status" -eq 0 ]
  [[ $output == Usage:* ]]
}
