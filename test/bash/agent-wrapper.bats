#!/usr/bin/env bats
# agent-wrapper.sh / lib/agent.sh: env and stdin, escaping, timeouts, retries, bounds.

load helpers

setup() {
  common_setup
  ROOT="$SHM/s1"
  mkdir -p "$ROOT"
  printf 'the objective' >"$ROOT/objective.txt"
}

teardown() { common_teardown; }

wrap() { "$TOOLS/agent-wrapper.sh" --root "$ROOT" --swarm-id s1 --agents 4 "$@"; }

@test "task text full of shell metacharacters reaches stdin and CFN_TASK byte for byte and never runs" {
  mkdir -p "$ROOT/tasks"
  printf '$(touch %s/pwned1) `touch %s/pwned2` "dq" '"'"'sq'"'"' ; * \\ \n line2\t$HOME %%s\n\n' "$SHM" "$SHM" >"$ROOT/tasks/2"
  run wrap --index 2 -- bash -c 'cat >"$0/stdin.bin"; printf %s "$CFN_TASK" >"$0/env.bin"; printf %s "$AGENT_ID $AGENT_INDEX $SWARM_ID $OBJECTIVE_ID $CFN_ATTEMPT $CFN_AGENTS_TOTAL" >"$0/vars"' "$SHM"
  [ "$status" -eq 0 ]
  cmp "$ROOT/tasks/2" "$SHM/stdin.bin"
  cmp "$ROOT/tasks/2" "$SHM/env.bin"
  [ "$(cat "$SHM/vars")" = "agent-2 2 s1 s1 1 4" ]
  [ ! -e "$SHM/pwned1" ] && [ ! -e "$SHM/pwned2" ]
  jq -e '.agentId == "agent-2" and .status == "completed" and .exitCode == 0' "$ROOT/responses/agent-2.json"
}

@test "without a task file the agent gets the objective; output with quotes and backslashes is escaped" {
  run wrap --index 0 -- bash -c 'cat; printf "\n\"q\" \\\\ \t tab"'
  [ "$status" -eq 0 ]
  [ "$(jq -r .output "$ROOT/responses/agent-0.json")" = "$(printf 'the objective\n"q" \\ \t tab')" ]
  jq -e '.outputBytes == (.output | utf8bytelength) and .outputTruncated == false and .error == null' "$ROOT/responses/agent-0.json"
  # one response line, published atomically, no temp or work files left
  [ "$(wc -l <"$ROOT/responses/agent-0.json")" -eq 1 ]
  [ -z "$(ls -A "$ROOT/responses/.tmp")$(ls -A "$ROOT/work")" ]
}

@test "invalid UTF-8 and control characters still give valid JSON (U+FFFD)" {
  run wrap --index 1 -- printf 'ok \xff\xfe bad \x01\x1b[31m red \xc3\xa9 end'
  [ "$status" -eq 0 ]
  jq -e . "$ROOT/responses/agent-1.json"
  [ "$(jq -r .output "$ROOT/responses/agent-1.json")" = "$(printf 'ok \xef\xbf\xbd\xef\xbf\xbd bad \x01\x1b[31m red \xc3\xa9 end')" ]
}

@test "a failing agent is retried with backoff and reports the last stderr line" {
  run wrap --index 3 --retries 2 -- bash -c 'echo "attempt $CFN_ATTEMPT" >>"$0/log"; echo "boom $CFN_ATTEMPT" >&2; echo; exit 7' "$SHM"
  [ "$status" -eq 0 ]
  [ "$(wc -l <"$SHM/log")" -eq 3 ]
  jq -e '.status == "failed" and .exitCode == 7 and .attempts == 3 and .error == "boom 3"' "$ROOT/responses/agent-3.json"
  # backoff 100 ms + 200 ms
  jq -e '.durationMs >= 300' "$ROOT/responses/agent-3.json"
}

@test "an agent that recovers on a retry completes" {
  run wrap --index 3 --retries 3 -- bash -c '[ "$CFN_ATTEMPT" -ge 2 ] && echo fine || exit 1'
  jq -e '.status == "completed" and .attempts == 2 and .output == "fine\n"' "$ROOT/responses/agent-3.json"
}

@test "an agent hanging past --agent-timeout is killed (TERM, then KILL) and fails" {
  local start=$SECONDS
  run wrap --index 0 --agent-timeout 0.5 -- bash -c 'trap "" TERM; sleep 30' "$MARK"
  [ "$status" -eq 0 ]
  [ $((SECONDS - start)) -lt 10 ]
  jq -e '.status == "failed" and (.error | startswith("timed out after 0.5s"))' "$ROOT/responses/agent-0.json"
  assert_no_leftovers
}

@test "megabytes of output are bounded by --max-output; outputBytes is the raw size" {
  run wrap --index 2 --max-output 1000 -- bash -c 'head -c 3000000 /dev/zero | tr "\0" a'
  [ "$status" -eq 0 ]
  jq -e '.outputBytes == 3000000 and .outputTruncated == true and (.output | length) == 1000' "$ROOT/responses/agent-2.json"
}

@test "an agent printing 200 MB on a 32 MiB tmpfs completes: raw output beyond --max-output is punched out as it runs" {
  mkdir -p "$SHM/mnt"
  mount -t tmpfs -o size=32m tmpfs "$SHM/mnt" || skip "cannot mount tmpfs here"
  ROOT="$SHM/mnt/s1"
  mkdir -p "$ROOT"
  printf 'x' >"$ROOT/objective.txt"
  # 200 x 1 MB at about 100 MB/s: the launcher's tick sees a few MB at a time.
  run wrap --index 3 --max-output 1000 -- bash -c 'for ((i = 0; i < 200; i++)); do head -c 1000000 /dev/zero | tr "\0" b; sleep 0.01; done; echo done >&2'
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .outputBytes == 200000000 and .outputTruncated == true and .output == ("b" * 1000)' "$ROOT/responses/agent-3.json"
  [ -z "$(ls -A "$ROOT/work")" ]
}

@test "binary megabytes (NUL, invalid UTF-8) stay valid JSON when truncated" {
  run wrap --index 2 --max-output 4096 -- head -c 2000000 /dev/urandom
  [ "$status" -eq 0 ]
  jq -e '.outputBytes == 2000000 and .outputTruncated == true' "$ROOT/responses/agent-2.json"
}

@test "a second response for the same agent is dropped, the first is kept and announced" {
  wrap --index 1 -- echo first >/dev/null
  run wrap --index 1 -- echo second
  [[ $output == *'"output":"first\n"'* ]]
  [ "$(jq -r .output "$ROOT/responses/agent-1.json")" = first ]
  [ "$(ls "$ROOT/messages/root/new" | wc -l)" -eq 2 ]
}

@test "a missing command fails the agent, not the wrapper" {
  run wrap --index 0 -- /nonexistent/agent
  [ "$status" -eq 0 ]
  jq -e '.status == "failed" and .exitCode == 127' "$ROOT/responses/agent-0.json"
}

@test "usage errors exit 2" {
  run wrap --index 9 -- true
  [ "$status" -eq 2 ]
  run wrap --index 0
  [ "$status" -eq 2 ]
  run "$TOOLS/agent-wrapper.sh" --help
  [ "$status" -eq 0 ]
}

@test "the agent gets the caller's LC_ALL back, and none when the caller had none" {
  LC_ALL=C.UTF-8 wrap --index 0 -- sh -c 'printf "%s" "${LC_ALL-unset}"' >/dev/null
  [ "$(jq -r .output "$ROOT/responses/agent-0.json")" = C.UTF-8 ]
  (unset LC_ALL; wrap --index 1 -- sh -c 'printf "%s" "${LC_ALL-unset}"' >/dev/null)
  [ "$(jq -r .output "$ROOT/responses/agent-1.json")" = unset ]
}
