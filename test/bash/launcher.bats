#!/usr/bin/env bats
# The agent launcher (bash/native/launcher, scripts/build-native.sh): every
# agent test runs in both of its forms, `spawn` (the agents run here) and
# the channel (`relay` hands them to `serve` over CFN_LAUNCHER_DIR, as the
# coordinator pod's two containers do), and must give the same responses.

load helpers

setup() {
  common_setup
  ROOT="$SHM/sp"
  mkdir -p "$ROOT/work" "$ROOT/responses/.tmp"
  printf 'the objective' >"$ROOT/objective.txt"
  L="$BIN/native/launcher"
  if [ ! -x "$L" ]; then
    echo "the launcher is not built: run npm run build (scripts/build-native.sh)" >&2
    return 1
  fi
  CHAN="$SHM/chan"
  SERVE_PID=''
}

teardown() {
  [ -z "$SERVE_PID" ] || { kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; }
  common_teardown
}

FORMS=(spawn channel)

# serve: starts the agent side on $CHAN (its log in $OUT/serve.log).
serve() {
  [ -n "$SERVE_PID" ] && return 0
  "$L" serve "$CHAN" 2>>"$OUT/serve.log" &
  SERVE_PID=$!
}

# launch FORM [OPTIONS] N CONCURRENCY RETRIES LIMIT_US -- CMD...: runs agents
# 0..N-1; W reports in $OUT/reports, responses in $ROOT/responses.
launch() {
  local form=$1
  shift
  local -a opts=()
  while [[ $1 == --* ]]; do opts+=("$1" "$2"); shift 2; done
  local n=$1 c=$2 r=$3 l=$4
  shift 5
  seq 0 $((n - 1)) >"$ROOT/queue"
  rm -f "$ROOT"/responses/agent-*.json
  if [ "$form" = spawn ]; then
    "$L" spawn "${opts[@]}" "$ROOT" "$ROOT/queue" "$c" "$r" "$l" -- "$@" >"$OUT/reports"
  else
    serve
    CFN_LAUNCHER_DIR=$CHAN "$L" relay "${opts[@]}" "$ROOT" "$ROOT/queue" "$c" "$r" "$l" -- "$@" >"$OUT/reports"
  fi
}

# resp INDEX FILTER: jq -e FILTER on agent INDEX's response.
resp() { jq -e "$2" "$ROOT/responses/agent-$1.json" >/dev/null; }

@test "3000 agents that end within microseconds are each answered once" {
  local form
  for form in "${FORMS[@]}"; do
    launch "$form" 3000 7 0 0 -- true
    [ "$(grep -c '^W [0-9]* completed$' "$OUT/reports")" -eq 3000 ]
    [ "$(awk '{ print $2 }' "$OUT/reports" | sort -un | wc -l)" -eq 3000 ]
    [ "$(ls "$ROOT/responses" | grep -c '^agent-')" -eq 3000 ]
    [ -z "$(ls -A "$ROOT/work")" ]
  done
  # The channel leaves nothing behind: the request directory is gone.
  [ -z "$(find "$CHAN" -mindepth 2)" ]
}

@test "a failing agent is retried with backoff and answered once with its attempts; --no-retry codes are final at once" {
  local form
  for form in "${FORMS[@]}"; do
    rm -f "$ROOT"/attempts.*
    launch "$form" 2 2 2 0 -- sh -c 'echo "$CFN_ATTEMPT" >>"$0.$AGENT_INDEX"; exit 3' "$ROOT/attempts"
    [ "$(wc -l <"$OUT/reports")" -eq 2 ]
    # 100 ms then 200 ms of backoff: at least 300 ms from the first start.
    resp 0 '.status == "failed" and .exitCode == 3 and .attempts == 3 and .durationMs >= 300 and .error == "exit code 3"'
    [ "$(cat "$ROOT/attempts.0")" = "$(printf '1\n2\n3')" ]
    launch "$form" --no-retry 2,7 3 3 3 0 -- sh -c 'exit $(( AGENT_INDEX == 0 ? 7 : AGENT_INDEX == 1 ? 3 : 0 ))'
    resp 0 '.exitCode == 7 and .attempts == 1'
    resp 1 '.exitCode == 3 and .attempts == 4'
    resp 2 '.status == "completed" and .exitCode == 0 and .attempts == 1 and .error == null'
  done
  local bad
  for bad in 0 256 2, ,2 2,,3 x ''; do
    run "$L" spawn --no-retry "$bad" "$ROOT" "$ROOT/queue" 3 3 0 -- true
    [ "$status" -eq 2 ]
  done
}

@test "the task reaches the agent byte-for-byte on stdin and in CFN_TASK, with its identity; never evaluated" {
  local form task big
  task=$'$(touch pwned) `touch pwned2`; "quoted" \'single\' \\back\nsecond line\n'
  mkdir -p "$ROOT/tasks"
  printf '%s' "$task" >"$ROOT/tasks/1"
  # Beyond what exec takes in one environment string: stdin and the file only.
  big=$(head -c 140000 /dev/zero | tr '\0' 'x')
  printf '%s' "$big" >"$ROOT/tasks/2"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
printf '%s|%s|%s|%s|%s|' "$AGENT_ID" "$AGENT_INDEX" "$CFN_ATTEMPT" "$SWARM_ID" "${CFN_TASK-unset}" >"$0.$AGENT_INDEX.env"
cat "$CFN_TASK_FILE" >"$0.$AGENT_INDEX.file"
cat >"$0.$AGENT_INDEX.stdin"
AGENT
  chmod +x "$ROOT/agent"
  for form in "${FORMS[@]}"; do
    SWARM_ID=s1 launch "$form" 3 3 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 3 ]
    # Agent 0 has no task file: the objective.
    [ "$(cat "$ROOT/agent.0.env")" = "agent-0|0|1|s1|the objective|" ]
    [ "$(cat "$ROOT/agent.0.stdin")" = "the objective" ]
    [ "$(cat "$ROOT/agent.0.file")" = "the objective" ]
    cmp <(printf '%s' "agent-1|1|1|s1|$task|") "$ROOT/agent.1.env"
    cmp "$ROOT/tasks/1" "$ROOT/agent.1.stdin"
    cmp "$ROOT/tasks/1" "$ROOT/agent.1.file"
    [ "$(cat "$ROOT/agent.2.env")" = "agent-2|2|1|s1|unset|" ]
    cmp "$ROOT/tasks/2" "$ROOT/agent.2.stdin"
    [ ! -e "$ROOT/pwned" ] && [ ! -e "$ROOT/pwned2" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.*
  done
}

@test "hostile task bytes (invalid UTF-8, NUL, a CR, metacharacters) reach stdin byte for byte; CFN_TASK holds them up to the first NUL" {
  local form
  mkdir -p "$ROOT/tasks"
  printf 'bad \xff\xfe utf8 \xc3\x28 $(touch pwned) \r\nline2' >"$ROOT/tasks/0"
  printf 'before\0after `touch pwned2`' >"$ROOT/tasks/1"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
cat >"$0.$AGENT_INDEX.stdin"
printf '%s' "${CFN_TASK-unset}" >"$0.$AGENT_INDEX.env"
AGENT
  chmod +x "$ROOT/agent"
  for form in "${FORMS[@]}"; do
    launch "$form" 2 2 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 2 ]
    cmp "$ROOT/tasks/0" "$ROOT/agent.0.stdin"
    cmp "$ROOT/tasks/0" "$ROOT/agent.0.env"
    cmp "$ROOT/tasks/1" "$ROOT/agent.1.stdin"
    # An environment string ends at NUL: the variable holds the bytes before it.
    cmp <(printf 'before') "$ROOT/agent.1.env"
    [ ! -e "$ROOT/pwned" ] && [ ! -e "$ROOT/pwned2" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.*
  done
}

@test "task-env/<i>: agent i alone gets its own variables (data, never evaluated), over the shared ones; an engine name fails the attempt" {
  local form
  mkdir -p "$ROOT/tasks" "$ROOT/task-env"
  for i in 0 1 2; do printf 'task %s' "$i" >"$ROOT/tasks/$i"; done
  printf 'FILE=a.sh\0SHARED=mine\0ODD=$(touch pwned) `x`\nline2 \xff\0' >"$ROOT/task-env/0"
  printf 'CFN_TASK=forged\0' >"$ROOT/task-env/2"
  cat >"$ROOT/agent" <<'AGENT'
#!/bin/sh
printf '%s|%s|%s|%s|%s' "${FILE-unset}" "$SHARED" "${ODD-unset}" "$CFN_TASK" "$AGENT_INDEX" >"$0.$AGENT_INDEX.env"
AGENT
  chmod +x "$ROOT/agent"
  # The agent side's own environment (the agent container's) is the shared one.
  SHARED=shared serve
  for form in "${FORMS[@]}"; do
    SHARED=shared launch "$form" 3 3 0 0 -- "$ROOT/agent"
    [ "$(wc -l <"$OUT/reports")" -eq 3 ]
    cmp <(printf 'a.sh|mine|$(touch pwned) `x`\nline2 \xff|task 0|0') "$ROOT/agent.0.env"
    [ "$(cat "$ROOT/agent.1.env")" = "unset|shared|unset|task 1|1" ]
    # Agent 2 never ran: a forged engine variable is refused, exit 126, with the reason.
    [ ! -e "$ROOT/agent.2.env" ]
    resp 2 '.status == "failed" and .exitCode == 126 and (.error | test("task-env/2: invalid or engine variable name"))'
    [ ! -e "$ROOT/pwned" ] && [ ! -e pwned ]
    rm -f "$ROOT"/agent.*.*
  done
}

@test "the agent runs the program exec would run; a missing one is exit code 127 with the reason; a script without #! runs with sh" {
  local bin="$SHM/bin" form
  mkdir -p "$bin"
  printf '#!/bin/sh\necho "program $0 $*"\n' >"$bin/true"
  chmod +x "$bin/true"
  printf 'echo "no shebang $1"\n' >"$ROOT/plain"
  chmod +x "$ROOT/plain"
  PATH="$bin:$PATH" serve
  for form in "${FORMS[@]}"; do
    PATH="$bin:$PATH" launch "$form" 1 1 0 0 -- true a
    resp 0 '.output == "program '"$bin"'/true a\n"'
    launch "$form" 1 1 1 0 -- no-such-agent-program
    resp 0 '.status == "failed" and .exitCode == 127 and .attempts == 2 and .error == "launcher: no-such-agent-program: command not found"'
    launch "$form" 1 1 0 0 -- "$ROOT/plain" x
    resp 0 '.output == "no shebang x\n"'
  done
}

@test "an agent killed by a signal is 128+N; one past its limit gets TERM, then KILL --kill-after later, and says it timed out" {
  local form
  for form in "${FORMS[@]}"; do
    launch "$form" 1 1 0 0 -- sh -c 'kill -KILL $$'
    resp 0 '.exitCode == 137 and .error == "exit code 137"'
    launch "$form" 2 2 0 100000 -- sh -c '[ "$AGENT_INDEX" = 0 ] || exit 0; echo started >&2; sleep 3; exit 1'
    resp 0 '.exitCode == 143 and .error == "timed out after 0s: started" and .durationMs < 2000'
    resp 1 '.status == "completed"'
    # An agent that ignores TERM is killed --kill-after seconds later.
    launch "$form" --timeout-text 0.1 --kill-after 0.3 1 1 0 100000 -- sh -c 'trap "" TERM; sleep 3'
    resp 0 '.exitCode == 137 and .error == "timed out after 0.1s" and .durationMs >= 400 and .durationMs < 2500'
  done
}

@test "the agent inherits no fd of the launcher, and its environment" {
  local form
  SP_MARK=inherited serve
  for form in "${FORMS[@]}"; do
    # Past 0-2, only what the caller of the test passed down: nothing of the
    # launcher's (its channel, queue, signalfd, inotify, the task files).
    SP_MARK=inherited launch "$form" 1 1 0 0 -- sh -c 'for f in /proc/self/fd/*; do n=${f##*/}; [ "$n" -le 2 ] || readlink "$f"; done; echo "mark=$SP_MARK"'
    jq -r .output "$ROOT/responses/agent-0.json" >"$OUT/fds"
    ! grep -E "$SHM|anon_inode|inotify" "$OUT/fds"
    grep -qx 'mark=inherited' "$OUT/fds"
  done
}

@test "usage errors exit 2; --help exits 0; relay needs an absolute channel path" {
  run "$L"
  [ "$status" -eq 2 ]
  run "$L" spawn "$ROOT"
  [ "$status" -eq 2 ]
  run "$L" bogus
  [ "$status" -eq 2 ]
  run "$L" --help
  [ "$status" -eq 0 ]
  [[ $output == Usage:* ]]
  seq 0 1 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=relative run "$L" relay "$ROOT" "$ROOT/queue" 1 0 0 -- true
  [ "$status" -eq 2 ]
  run "$L" spawn --max-output 0 "$ROOT" "$ROOT/queue" 1 0 0 -- true
  [ "$status" -eq 2 ]
}

@test "scripts/build-native.sh builds the launcher (static too); without a compiler it says so" {
  local script="$BIN/../scripts/build-native.sh"
  run bash "$script" --out "$OUT/l" --static
  [ "$status" -eq 0 ]
  run file "$OUT/l"
  [[ $output == *"statically linked"* ]] || ! command -v file
  run "$OUT/l" --help
  [ "$status" -eq 0 ]
  [[ $output == Usage:* ]]
  CC=no-such-cc run bash "$script" --out "$OUT/none"
  [ "$status" -eq 1 ]
  [[ $output == *"no C compiler (no-such-cc)"* ]]
  [ ! -e "$OUT/none" ]
  run bash "$script" --bogus
  [ "$status" -eq 2 ]
}

@test "spawn publishes each response once and reports W INDEX STATUS; a response already there wins" {
  printf '{"agentId":"agent-1","index":1,"status":"failed","exitCode":9}\n' >"$ROOT/responses/agent-1.json"
  seq 0 2 >"$ROOT/queue"
  run "$L" spawn --max-output 65536 --timeout-text 60 "$ROOT" "$ROOT/queue" 3 0 0 -- sh -c 'echo "out $AGENT_INDEX"; [ "$AGENT_INDEX" != 2 ] || { echo boom >&2; exit 4; }'
  [ "$status" -eq 0 ]
  [[ $output == *"launcher: second response for agent-1 dropped"* ]]
  [ "$(grep '^W ' <<<"$output" | sort)" = "$(printf 'W 0 completed\nW 1 failed\nW 2 failed')" ]
  resp 0 '.agentId == "agent-0" and .status == "completed" and .output == "out 0\n" and .outputBytes == 6 and .error == null and .attempts == 1'
  resp 1 '.exitCode == 9'
  resp 2 '.status == "failed" and .exitCode == 4 and .error == "boom"'
  [ -z "$(ls -A "$ROOT/work")" ] && [ -z "$(ls -A "$ROOT/responses/.tmp")" ]
}

@test "channel: a launcher killed mid-run fails only the agents it was running, saying so; the next request runs" {
  serve
  seq 0 3 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN "$L" relay "$ROOT" "$ROOT/queue" 4 0 0 -- sh -c 'echo "$$" >"$0.$AGENT_INDEX"; [ "$AGENT_INDEX" = 0 ] || exec sleep 5' "$ROOT/pid" >"$OUT/reports" &
  local relay=$! child='' i
  for ((i = 0; i < 100; i++)); do
    child=$(pgrep -P "$SERVE_PID" | head -1)
    [ -n "$child" ] && [ -e "$ROOT/responses/agent-0.json" ] && break
    sleep 0.05
  done
  kill -KILL "$child"
  wait "$relay"
  resp 0 '.status == "completed"'
  for i in 1 2 3; do
    resp "$i" '.status == "failed" and .exitCode == null and (.error | test("the launcher ended before agent-[0-9]+.s final answer"))'
  done
  [ "$(grep -c '^W' "$OUT/reports")" -eq 4 ]
  # Its agents outlive it (orphans): they are no longer anyone's to answer for.
  for i in 1 2 3; do kill -KILL "$(cat "$ROOT/pid.$i")" 2>/dev/null || true; done
  launch channel 2 2 0 0 -- true
  resp 1 '.status == "completed"'
}

@test "channel: records without the nonce, for agents not asked for or answered, or not that agent's response are quarantined, never published" {
  # A stand-in for a subverted launcher side: it takes the request and sends
  # garbage and forgeries around one true response.
  cc -O1 -o "$OUT/fake-launcher" "$TOOLS/fake-launcher.c"
  mkdir -p "$CHAN"
  cat >"$OUT/records" <<'RECORDS'
NONCE H
garbage
0000000000000000deadbeefdeadbeef W 0 {"agentId":"agent-0","index":0,"status":"completed","exitCode":0}
NONCE W 0 {"agentId":"agent-0","index":0,"status":"completed","exitCode":0,"attempts":1,"durationMs":1,"output":"true","outputBytes":4,"outputTruncated":false,"error":null}
NONCE W 0 {"agentId":"agent-0","index":0,"status":"failed","exitCode":1,"attempts":1,"durationMs":1,"output":"","outputBytes":0,"outputTruncated":false,"error":null}
NONCE W 7 {"agentId":"agent-7","index":7,"status":"completed","exitCode":0}
NONCE W 1 {"agentId":"agent-2","index":2,"status":"completed","exitCode":0}
NONCE W 1 {"agentId":"agent-1","index":1,"status":"completed","exitCode":3,"attempts":1}
RECORDS
  "$OUT/fake-launcher" "$CHAN" "$OUT/records" &
  local fake=$!
  seq 0 2 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN "$L" relay "$ROOT" "$ROOT/queue" 3 0 0 -- true >"$OUT/reports" 2>"$OUT/relay.err"
  wait "$fake"
  resp 0 '.status == "completed" and .output == "true"'
  resp 1 '.status == "failed" and .exitCode == null'
  resp 2 '.status == "failed" and .exitCode == null'
  [ "$(ls "$ROOT/quarantine" | wc -l)" -eq 6 ]
  [ "$(grep -c 'quarantined a launcher record' "$OUT/relay.err")" -eq 6 ]
  [ "$(sort "$OUT/reports" | tr '\n' ';')" = "W 0 completed;W 1 failed;W 2 failed;" ]
}

@test "channel: TERM to the relay stops the launcher's agents; none is answered (not final), each is traced as interrupted" {
  serve
  seq 0 1 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN "$L" relay "$ROOT" "$ROOT/queue" 2 0 0 -- sh -c 'echo "$$" >"$0.$AGENT_INDEX"; exec sleep 30' "$ROOT/pid" >"$OUT/reports" &
  local relay=$! i rc=0
  for ((i = 0; i < 100; i++)); do [ -s "$ROOT/pid.1" ] && [ -s "$ROOT/pid.0" ] && break; sleep 0.05; done
  kill -TERM "$relay"
  wait "$relay" || rc=$?
  [ "$rc" -eq 143 ]
  [ ! -s "$OUT/reports" ]
  [ -z "$(ls "$ROOT/responses" | grep agent-)" ]
  # Each attempt the stop cut short leaves its trace in the swarm's work/ (the
  # coordinator reports them interrupted).
  [ "$(ls "$ROOT/work" | grep -cE '^agent-[01][.][0-9]+[.]out$')" -eq 2 ]
  ! kill -0 "$(cat "$ROOT/pid.0")" 2>/dev/null
  ! kill -0 "$(cat "$ROOT/pid.1")" 2>/dev/null
}

# serve_as_agent_user: serve as the pod's agent container runs it, as uid
# 65533 in the coordinator's group 65532; the agents run as that user too.
serve_as_agent_user() {
  [ "$(id -u)" -eq 0 ] || skip "the launcher runs as another user here (as in the pod): needs root"
  mkdir -p "$CHAN" "$SHM/agent"
  chown 65533:65532 "$CHAN"
  chmod 0770 "$CHAN"
  # The coordinator's own files (in the pod: another container's tmpfs).
  chmod 0700 "$ROOT"
  # Copies the other user can run wherever the checkout is (a home directory may be 0700).
  cp "$TOOLS/isolation-probe.sh" "$SHM/agent/probe"
  cp "$L" "$SHM/agent/launcher"
  chmod 0755 "$SHM/agent" "$SHM/agent/probe" "$SHM/agent/launcher"
  setpriv --reuid 65533 --regid 65532 --clear-groups "$SHM/agent/launcher" serve "$CHAN" 2>>"$OUT/serve.log" &
  SERVE_PID=$!
}

@test "isolation: an agent finds nothing in the channel, no other agent's task (queued or answered), no way into the launcher's memory or descriptors" {
  serve_as_agent_user
  mkdir -p "$ROOT/tasks"
  for i in 0 1 2; do printf 'secret-look-task-of-agent-%s' "$i" >"$ROOT/tasks/$i"; done
  seq 0 2 >"$ROOT/queue"
  # One at a time: while agent i looks, the others' tasks are queued or answered.
  CFN_LAUNCHER_DIR=$CHAN "$L" relay "$ROOT" "$ROOT/queue" 1 0 0 -- "$SHM/agent/probe" look "$CHAN" >"$OUT/reports"
  [ "$(grep -c completed "$OUT/reports")" -eq 3 ]
  for i in 0 1 2; do
    jq -r .output "$ROOT/responses/agent-$i.json" >"$OUT/seen.$i"
    cat "$OUT/seen.$i" >&2
    ! grep -q ALLOWED "$OUT/seen.$i"
    [ "$(grep -c ': denied$' "$OUT/seen.$i")" -eq 10 ]
    grep -qx "another agent's task: none" "$OUT/seen.$i"
    grep -qx "my task: secret-look-task-of-agent-$i" "$OUT/seen.$i"
  done
  # Nothing of the requests rests in the channel (serve listens again: its socket only).
  [ -z "$(find "$CHAN" -mindepth 1 ! -name launcher.sock)" ]
}

@test "isolation (the residual risk docs/security.md names): a sibling running at the same time, the same user, shows its task in its /proc entries" {
  serve_as_agent_user
  mkdir -p "$ROOT/tasks" "$SHM/shared"
  chmod 1777 "$SHM/shared"
  for i in 0 1; do printf 'secret-sibling-task-of-agent-%s' "$i" >"$ROOT/tasks/$i"; done
  seq 0 1 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN "$L" relay "$ROOT" "$ROOT/queue" 2 0 0 -- "$SHM/agent/probe" sibling "$SHM/shared" >"$OUT/reports"
  resp 0 '.output == "a running sibling'"'"'s task: secret-sibling-task-of-agent-1\n"'
}
