#!/usr/bin/env bats
# The agent spawners: lib/spawner.sh and its native twin bash/native/spawner
# (scripts/build-native.sh) fork, reap and report agents for a dispatcher
# under one contract, so every test here runs against both.

load helpers

setup() {
  common_setup
  ROOT="$SHM/sp"
  mkdir -p "$ROOT/work"
  printf 'the objective' >"$ROOT/objective.txt"
  if [ ! -x "$BIN/native/spawner" ]; then
    echo "the native spawner is not built: run npm run build (scripts/build-native.sh)" >&2
    return 1
  fi
}

teardown() { common_teardown; }

SPAWNERS=(bash native)

# spawner_argv IMPL: the command of one spawner.
spawner_argv() {
  if [ "$1" = native ]; then SP=("$BIN/native/spawner"); else SP=(bash "$BIN/lib/spawner.sh"); fi
}

# spawn IMPL N CONCURRENCY RETRIES LIMIT_US -- CMD...: runs agents 0..N-1;
# reports in $OUT/reports, registrations in $ROOT/wd.reg.
spawn() {
  local impl=$1 n=$2 c=$3 r=$4 l=$5
  shift 6
  spawner_argv "$impl"
  seq 0 $((n - 1)) >"$ROOT/queue"
  : >"$ROOT/wd.reg"
  "${SP[@]}" "$ROOT" "$ROOT/queue" "$c" "$r" "$l" 9 -- "$@" 9>>"$ROOT/wd.reg" >"$OUT/reports"
}

# out_of INDEX: the stdout file of agent INDEX's last attempt.
out_of() { cat "$ROOT"/work/agent-"$1".*.out; }
err_of() { cat "$ROOT"/work/agent-"$1".*.err; }

@test "regression: agents that end before wait -n are still reported (a spawner saw 7 running and no child left)" {
  # Agents ending within microseconds at a low concurrency: bash reaps some
  # while forking the next, and `wait -n` no longer sees them.
  local impl
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 3000 7 0 0 -- true
    [ "$(wc -l <"$OUT/reports")" -eq 3000 ]
    [ "$(awk '$1 == "R" && $3 == 0 && $4 == 1 { print $2 }' "$OUT/reports" | sort -un | wc -l)" -eq 3000 ]
    # Every attempt was registered with the watchdog: PID DEADLINE INDEX SPAWNER_PID.
    [ "$(grep -cE '^[0-9]+ 0 [0-9]+ [0-9]+$' "$ROOT/wd.reg")" -eq 3000 ]
    rm -f "$ROOT"/work/agent-*
  done
}

@test "a failing agent is retried with backoff and reported once with its attempts" {
  local impl
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 2 2 2 0 -- sh -c 'echo "$CFN_ATTEMPT" >>"$0.$AGENT_INDEX"; exit 3' "$ROOT/attempts"
    [ "$(wc -l <"$OUT/reports")" -eq 2 ]
    # 100 ms then 200 ms of backoff: at least 300 ms from the first start.
    awk '$1 == "R" && $3 == 3 && $4 == 3 && $5 >= 300 && $6 == 0 { n++ } END { exit n == 2 ? 0 : 1 }' "$OUT/reports"
    [ "$(cat "$ROOT/attempts.0")" = "$(printf '1\n2\n3')" ]
    [ "$(wc -l <"$ROOT/wd.reg")" -eq 6 ]
    rm -f "$ROOT"/attempts.* "$ROOT"/work/agent-*
  done
}

@test "--no-retry: an attempt ending with a listed exit code is final at once; other failures use every retry" {
  local impl
  for impl in "${SPAWNERS[@]}"; do
    spawner_argv "$impl"
    seq 0 2 >"$ROOT/queue"
    : >"$ROOT/wd.reg"
    "${SP[@]}" --no-retry 2,7 "$ROOT" "$ROOT/queue" 3 3 0 9 -- \
      sh -c 'echo "$CFN_ATTEMPT" >>"$0.$AGENT_INDEX"; exit $(( AGENT_INDEX == 0 ? 7 : AGENT_INDEX == 1 ? 3 : 0 ))' "$ROOT/attempts" \
      9>>"$ROOT/wd.reg" >"$OUT/reports"
    [ "$(sort "$OUT/reports" | awk '{ print $1, $2, $3, $4 }' | tr '\n' ';')" = "R 0 7 1;R 1 3 4;R 2 0 1;" ]
    [ "$(cat "$ROOT/attempts.0")" = 1 ]
    [ "$(wc -l <"$ROOT/attempts.1")" -eq 4 ]
    rm -f "$ROOT"/attempts.* "$ROOT"/work/agent-*
    local bad
    for bad in 0 256 2, ,2 2,,3 x ''; do
      run "${SP[@]}" --no-retry "$bad" "$ROOT" "$ROOT/queue" 3 3 0 9 -- true
      [ "$status" -eq 2 ]
    done
  done
  # The native spawner takes it after --responses too, and its responses say the attempts.
  mkdir -p "$ROOT/responses/.tmp"
  seq 0 1 >"$ROOT/queue"
  "$BIN/native/spawner" --responses 65536 30 --no-retry 5 "$ROOT" "$ROOT/queue" 2 2 0 9 -- sh -c 'exit $((AGENT_INDEX == 0 ? 5 : 6))' 9>>"$ROOT/wd.reg" >"$OUT/reports"
  jq -e '.status == "failed" and .exitCode == 5 and .attempts == 1' "$ROOT/responses/agent-0.json"
  jq -e '.status == "failed" and .exitCode == 6 and .attempts == 3' "$ROOT/responses/agent-1.json"
}

@test "the task reaches the agent byte-for-byte on stdin and in CFN_TASK, with its identity; never evaluated" {
  local impl task big
  task=$'$(touch pwned) `touch pwned2`; "quoted" \'single\' \\back\nsecond line\n'
  mkdir -p "$ROOT/tasks"
  printf '%s' "$task" >"$ROOT/tasks/1"
  # Beyond what exec takes in one environment string: stdin and the file only.
  big=$(head -c 140000 /dev/zero | tr '\0' 'x')
  printf '%s' "$big" >"$ROOT/tasks/2"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
printf '%s|%s|%s|%s|%s|' "$AGENT_ID" "$AGENT_INDEX" "$CFN_ATTEMPT" "$CFN_TASK_FILE" "${CFN_TASK-unset}" >"$0.$AGENT_INDEX.env"
cat >"$0.$AGENT_INDEX.stdin"
AGENT
  chmod +x "$ROOT/agent"
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 3 3 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 3 ]
    # Agent 0 has no task file: the objective.
    [ "$(cat "$ROOT/agent.0.env")" = "agent-0|0|1|$ROOT/objective.txt|the objective|" ]
    [ "$(cat "$ROOT/agent.0.stdin")" = "the objective" ]
    cmp <(printf '%s' "agent-1|1|1|$ROOT/tasks/1|$task|") "$ROOT/agent.1.env"
    cmp "$ROOT/tasks/1" "$ROOT/agent.1.stdin"
    [ "$(cat "$ROOT/agent.2.env")" = "agent-2|2|1|$ROOT/tasks/2|unset|" ]
    cmp "$ROOT/tasks/2" "$ROOT/agent.2.stdin"
    [ ! -e "$ROOT/pwned" ] && [ ! -e "$ROOT/pwned2" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.* "$ROOT"/work/agent-*
  done
}

@test "the agent runs the program exec would run, never a bash builtin or an engine function" {
  local bin="$SHM/bin" impl
  mkdir -p "$bin"
  printf '#!/bin/sh\necho "program $0 $*"\n' >"$bin/true"
  cp "$bin/true" "$bin/sp_launch"
  chmod +x "$bin/true" "$bin/sp_launch"
  for impl in "${SPAWNERS[@]}"; do
    PATH="$bin:$PATH" spawn "$impl" 1 1 0 0 -- true a
    [ "$(out_of 0)" = "program $bin/true a" ]
    rm -f "$ROOT"/work/agent-0.*
    PATH="$bin:$PATH" spawn "$impl" 1 1 0 0 -- sp_launch b
    [ "$(out_of 0)" = "program $bin/sp_launch b" ]
    rm -f "$ROOT"/work/agent-0.*
  done
}

@test "a missing program is exit code 127 with the reason on stderr; a script without #! runs with sh" {
  local impl
  printf 'echo "no shebang $1"\n' >"$ROOT/plain"
  chmod +x "$ROOT/plain"
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 1 1 1 0 -- no-such-agent-program
    awk '$1 == "R" && $2 == 0 && $3 == 127 && $4 == 2 { ok = 1 } END { exit !ok }' "$OUT/reports"
    [[ $(err_of 0) == *"no-such-agent-program: "*"not found"* ]]
    rm -f "$ROOT"/work/agent-0.*
    spawn "$impl" 1 1 0 0 -- "$ROOT/plain" x
    [ "$(out_of 0)" = "no shebang x" ]
    rm -f "$ROOT"/work/agent-0.*
  done
}

@test "an agent killed by a signal is 128+N; an attempt past its limit is reported timed out and registered with its deadline" {
  local impl
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 1 1 0 0 -- sh -c 'kill -KILL $$'
    awk '$1 == "R" && $3 == 137 && $6 == 0 { ok = 1 } END { exit !ok }' "$OUT/reports"
    spawn "$impl" 2 2 0 100000 -- sh -c '[ "$AGENT_INDEX" = 0 ] || exit 0; sleep 0.3; exit 1'
    awk '$1 == "R" && $2 == 0 && $3 == 1 && $6 == 1 { a = 1 } $1 == "R" && $2 == 1 && $3 == 0 && $6 == 0 { b = 1 } END { exit !(a && b) }' "$OUT/reports"
    # The deadline is the attempt's start plus the limit, in epoch microseconds.
    awk -v now="$(date +%s%6N)" '$2 < now - 60000000 || $2 > now { bad = 1 } END { exit bad || NR != 2 }' "$ROOT/wd.reg"
    rm -f "$ROOT"/work/agent-*
  done
}

@test "the agent inherits neither the watchdog log's fd nor anything of the spawner but its environment" {
  local impl
  for impl in "${SPAWNERS[@]}"; do
    SP_MARK=inherited spawn "$impl" 1 1 0 0 -- sh -c 'ls /proc/self/fd; echo "mark=$SP_MARK"'
    [[ $(out_of 0) != *$'\n9\n'* ]]
    [[ $(out_of 0) == *"mark=inherited"* ]]
    rm -f "$ROOT"/work/agent-*
  done
}

@test "usage errors exit 2; --help exits 0" {
  local impl
  for impl in "${SPAWNERS[@]}"; do
    spawner_argv "$impl"
    run "${SP[@]}" "$ROOT"
    [ "$status" -eq 2 ]
    run "${SP[@]}" --help
    [ "$status" -eq 0 ]
    [[ $output == Usage:* ]]
  done
}

@test "scripts/build-native.sh builds the native spawner (static too); without a compiler it says so and exits 0" {
  local script="$BIN/../scripts/build-native.sh"
  run bash "$script" --out "$OUT/sp" --static
  [ "$status" -eq 0 ]
  run "$OUT/sp" --help
  [ "$status" -eq 0 ]
  [[ $output == Usage:* ]]
  CC=no-such-cc run bash "$script" --out "$OUT/none"
  [ "$status" -eq 0 ]
  [[ $output == *"no C compiler (no-such-cc)"*"forked by bash/lib/spawner.sh"* ]]
  [ ! -e "$OUT/none" ]
  run bash "$script" --bogus
  [ "$status" -eq 2 ]
}

@test "--responses: the native spawner writes each response and reports W INDEX STATUS; a response already there wins" {
  mkdir -p "$ROOT/responses/.tmp"
  printf '{"agentId":"agent-1","index":1,"status":"failed","exitCode":9}\n' >"$ROOT/responses/agent-1.json"
  seq 0 2 >"$ROOT/queue"
  run "$BIN/native/spawner" --responses 65536 60 "$ROOT" "$ROOT/queue" 3 0 0 9 -- sh -c 'echo "out $AGENT_INDEX"; [ "$AGENT_INDEX" != 2 ] || { echo boom >&2; exit 4; }' 9>>"$ROOT/wd.reg"
  [ "$status" -eq 0 ]
  [[ $output == *"spawner: second response for agent-1 dropped"* ]]
  [ "$(grep '^W ' <<<"$output" | sort)" = "$(printf 'W 0 completed\nW 1 failed\nW 2 failed')" ]
  jq -e '.agentId == "agent-0" and .status == "completed" and .output == "out 0\n" and .outputBytes == 6 and .error == null and .attempts == 1' "$ROOT/responses/agent-0.json"
  jq -e '.exitCode == 9' "$ROOT/responses/agent-1.json"
  jq -e '.status == "failed" and .exitCode == 4 and .error == "boom"' "$ROOT/responses/agent-2.json"
  [ -z "$(ls -A "$ROOT/work")" ] && [ -z "$(ls -A "$ROOT/responses/.tmp")" ]
  run "$BIN/native/spawner" --responses 0 60 "$ROOT" "$ROOT/queue" 3 0 0 9 -- true
  [ "$status" -eq 2 ]
}

@test "hostile task bytes (invalid UTF-8, NUL, a CR, metacharacters) reach stdin byte for byte; CFN_TASK holds them up to the first NUL" {
  local impl
  mkdir -p "$ROOT/tasks"
  printf 'bad \xff\xfe utf8 \xc3\x28 $(touch pwned) \r\nline2' >"$ROOT/tasks/0"
  printf 'before\0after `touch pwned2`' >"$ROOT/tasks/1"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
cat >"$0.$AGENT_INDEX.stdin"
printf '%s' "${CFN_TASK-unset}" >"$0.$AGENT_INDEX.env"
AGENT
  chmod +x "$ROOT/agent"
  for impl in "${SPAWNERS[@]}"; do
    spawn "$impl" 2 2 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 2 ]
    cmp "$ROOT/tasks/0" "$ROOT/agent.0.stdin"
    cmp "$ROOT/tasks/0" "$ROOT/agent.0.env"
    cmp "$ROOT/tasks/1" "$ROOT/agent.1.stdin"
    # An environment string ends at NUL: the variable holds the bytes before it.
    cmp <(printf 'before') "$ROOT/agent.1.env"
    [ ! -e "$ROOT/pwned" ] && [ ! -e "$ROOT/pwned2" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.* "$ROOT"/work/agent-*
  done
}

@test "task-env/<i>: agent i alone gets its own variables (data, never evaluated), over the shared ones; an engine name fails the attempt" {
  local impl
  mkdir -p "$ROOT/tasks" "$ROOT/task-env"
  for i in 0 1 2; do printf 'task %s' "$i" >"$ROOT/tasks/$i"; done
  printf 'FILE=a.sh\0SHARED=mine\0ODD=$(touch pwned) `x`\nline2 \xff\0' >"$ROOT/task-env/0"
  printf 'CFN_TASK=forged\0' >"$ROOT/task-env/2"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
printf '%s|%s|%s|%s|%s' "${FILE-unset}" "$SHARED" "${ODD-unset}" "$CFN_TASK" "$AGENT_INDEX" >"$0.$AGENT_INDEX.env"
AGENT
  chmod +x "$ROOT/agent"
  for impl in "${SPAWNERS[@]}"; do
    SHARED=shared spawn "$impl" 3 3 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 3 ]
    cmp <(printf 'a.sh|mine|$(touch pwned) `x`\nline2 \xff|task 0|0') "$ROOT/agent.0.env"
    [ "$(cat "$ROOT/agent.1.env")" = "unset|shared|unset|task 1|1" ]
    # Agent 2 never ran: a forged engine variable is refused, exit 126, with the reason.
    [ ! -e "$ROOT/agent.2.env" ]
    grep -q '^R 2 126 1 ' "$OUT/reports"
    err_of 2 | grep -q 'task-env/2: invalid or engine variable name'
    [ ! -e "$ROOT/pwned" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.* "$ROOT"/work/agent-*
  done
}
