#!/usr/bin/env bats
# coordinator-cli.sh end to end: real agents, real tmpfs, real signals.

load helpers
bats_require_minimum_version 1.5.0

setup() { common_setup; }
teardown() { common_teardown; }

cli() { "$BIN/coordinator-cli.sh" "$@"; }

@test "1 agent: run prints the final status, writes results and removes the root" {
  run --separate-stderr cli run --swarm-id one --agents 1 --objective 'say hi' --json --results-file "$OUT/r.jsonl" -- cat
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.total == 1 and .agents.completed == 1 and .deliveryRate == 100 and .indexRange == {"start":0,"end":1}' <<<"$output"
  jq -e -s 'length == 1 and .[0].output == "say hi" and .[0].agentId == "agent-0"' "$OUT/r.jsonl"
  [ ! -e "$SHM/one" ]
  [ -z "$(ls -A "$OUT" | grep 'r.jsonl.tmp')" ]
  assert_no_leftovers
}

@test "300 agents flat: 100% delivery, every response valid, no leftovers" {
  run --separate-stderr cli run --swarm-id flat300 --agents 300 --concurrency 32 --objective x --keep --json -- bash -c 'echo "$AGENT_ID"' "$MARK"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.completed == 300 and .deliveryRate == 100' <<<"$output"
  [ "$(ls "$SHM/flat300/responses" | grep -c '^agent-')" -eq 300 ]
  cat "$SHM/flat300"/responses/agent-*.json | jq -s -e 'length == 300 and all(.output == .agentId + "\n")'
  # One latency sample per message; results travel in batches (1..300 messages).
  local msgs
  msgs=$(wc -l <"$SHM/flat300/metrics/latency.us")
  ((msgs >= 1 && msgs <= 300))
  [ -z "$(ls -A "$SHM/flat300/messages/root/new")$(ls -A "$SHM/flat300/messages/root/claimed")" ]
  rm -rf -- "$SHM/flat300"
  assert_no_leftovers
}

@test "1000 agents: 100% delivery" {
  run --separate-stderr cli run --swarm-id big --agents 1000 --objective x --results-file "$OUT/r.jsonl" --json -- true
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.completed == 1000 and .deliveryRate == 100' <<<"$output"
  [ "$(jq -r .index "$OUT/r.jsonl" | sort -un | wc -l)" -eq 1000 ]
  [ ! -e "$SHM/big" ]
  assert_no_leftovers
}

@test "objective full of shell metacharacters arrives byte for byte and never runs" {
  local obj
  obj=$(printf '$(touch %s/pwned) `touch %s/pwned2`; * "q" '"'"'s'"'"' \\n\nnext line ; rm -rf /x &' "$SHM" "$SHM")
  printf '%s' "$obj" >"$OUT/expected"
  run cli run --swarm-id meta --agents 3 --objective "$obj" --keep -- bash -c 'cat >"$0/in.$AGENT_INDEX"; printf %s "$CFN_TASK" >"$0/env.$AGENT_INDEX"' "$OUT"
  [ "$status" -eq 0 ]
  local i
  for i in 0 1 2; do cmp "$OUT/expected" "$OUT/in.$i"; cmp "$OUT/expected" "$OUT/env.$i"; done
  [ ! -e "$SHM/pwned" ] && [ ! -e "$SHM/pwned2" ]
  cmp "$OUT/expected" "$SHM/meta/objective.txt"
}

@test "per-agent tasks from --tasks-dir; agents that fail, hang and flood all get a final response; delivery counts the completed" {
  mkdir -p "$OUT/tasks"
  printf 'ok' >"$OUT/tasks/0"
  printf 'fail' >"$OUT/tasks/1"
  printf 'hang' >"$OUT/tasks/2"
  printf 'flood' >"$OUT/tasks/3"
  printf 'utf8' >"$OUT/tasks/4"
  cat >"$OUT/agent.sh" <<'EOS'
case $(cat) in
  ok) echo fine ;;
  fail) echo "it broke" >&2; exit 3 ;;
  hang) sleep 30 ;;
  flood) head -c 5000000 /dev/zero | tr '\0' z ;;
  utf8) printf 'a\xff\xfe\x00b' ;;
esac
EOS
  run --separate-stderr cli run --swarm-id mix --agents 5 --objective x --tasks-dir "$OUT/tasks" --agent-timeout 1 --max-output 2048 --results-file "$OUT/r.jsonl" --json -- bash "$OUT/agent.sh" "$MARK"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.completed == 3 and .agents.failed == 2 and .deliveryRate == 60' <<<"$output"
  jq -s -e '.[0].output == "fine\n" and .[1].status == "failed" and .[1].exitCode == 3 and .[1].error == "it broke"' "$OUT/r.jsonl"
  jq -s -e '(.[2].error | startswith("timed out")) and .[3].outputBytes == 5000000 and .[3].outputTruncated and (.[3].output | length) == 2048' "$OUT/r.jsonl"
  jq -s -e '.[4].output == "a\ufffd\ufffd\u0000b"' "$OUT/r.jsonl"
  assert_no_leftovers
}

@test "--tasks-file: record i (NUL-ended, hostile bytes) reaches agent i alone, byte for byte, with its --task-env-dir variables; resume keeps index i on task i" {
  mkdir -p "$OUT/env" "$OUT/got"
  printf 'a.sh $(touch pwned)\0multi\nline `x` \xff\xfe\0"q" \x27s\x27 ; | & > <' >"$OUT/tasks"
  printf 'FILE=b.sh\0' >"$OUT/env/1"
  run --separate-stderr cli run --swarm-id tf --agents 3 --objective OBJ --tasks-file "$OUT/tasks" --task-env-dir "$OUT/env" --completed-indexes 0 --json -- \
    bash -c 'cat >"$0/got/$AGENT_INDEX"; printf "%s|%s" "${FILE-unset}" "$CFN_OBJECTIVE" >"$0/got/$AGENT_INDEX.env"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.agents.completed == 3 and .resumed == 1' <<<"$output"
  # Agent 0 completed earlier: never re-run; agents 1 and 2 got records 1 and 2.
  [ ! -e "$OUT/got/0" ]
  cmp <(printf 'multi\nline `x` \xff\xfe') "$OUT/got/1"
  cmp <(printf '"q" \x27s\x27 ; | & > <') "$OUT/got/2"
  [ "$(cat "$OUT/got/1.env")" = "b.sh|OBJ" ] && [ "$(cat "$OUT/got/2.env")" = "unset|OBJ" ]
  [ ! -e pwned ] && [ ! -e "$OUT/pwned" ]
  # A count that is not --agents is a usage error naming both numbers.
  run --separate-stderr cli run --swarm-id tf2 --agents 4 --objective x --tasks-file "$OUT/tasks" -- true
  [ "$status" -eq 2 ]
  [[ $stderr == *"holds 3 tasks but --agents is 4"* ]]
  assert_no_leftovers
}

@test "the overall deadline stops the run with status timeout and exit 4, killing agents" {
  run --separate-stderr cli run --swarm-id late --agents 4 --objective x --timeout 1 --json -- bash -c '(exec -a "$0" sleep 30); :' "$MARK"
  [ "$status" -eq 4 ]
  jq -e '.status == "timeout" and .agents.completed == 0 and .deliveryRate == 0' <<<"$output"
  [ ! -e "$SHM/late" ]
  assert_no_leftovers
}

@test "--completed-indexes: completed agents are counted and not re-run" {
  run --separate-stderr cli run --swarm-id resume --agents 10 --objective x --completed-indexes 0-4,7 --json -- bash -c 'echo "$AGENT_INDEX" >>"$0/ran"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.completed == 10 and .resumed == 6 and .deliveryRate == 100' <<<"$output"
  [ "$(sort -n "$OUT/ran" | tr '\n' ' ')" = "5 6 8 9 " ]
}

@test "--failed-indexes: agents failed finally before are counted failed and never re-run" {
  run --separate-stderr cli run --swarm-id resumef --agents 10 --objective x --completed-indexes 0-4 --failed-indexes 7,9 --json -- bash -c 'echo "$AGENT_INDEX" >>"$0/ran"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":10,"completed":8,"failed":2} and .resumed == 7 and .deliveryRate == 80' <<<"$output"
  [ "$(sort -n "$OUT/ran" | tr '\n' ' ')" = "5 6 8 " ]
}

@test "all agents failing: every response is in, delivery 0%" {
  run --separate-stderr cli run --swarm-id allfail --agents 10 --objective x --retries 0 --json -- false
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":10,"completed":0,"failed":10} and .deliveryRate == 0 and .throughputAgentsPerSec == 0' <<<"$output"
}

@test "10% of agents failing (AGENT_INDEX % 10 == 0): exactly 90% delivery" {
  run --separate-stderr cli run --swarm-id ninety --agents 400 --objective x --retries 0 --json -- \
    sh -c '[ $((AGENT_INDEX % 10)) -ne 0 ]'
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":400,"completed":360,"failed":40} and .deliveryRate == 90' <<<"$output"
}

@test "--no-retry-exit-codes: a listed exit code is final after one attempt, others use every retry" {
  local sp
  for sp in launcher; do
    run --separate-stderr "$BIN/coordinator-cli.sh" run --swarm-id noretry-$sp --agents 3 --objective x --retries 2 \
      --no-retry-exit-codes 7,2 --keep --results-file "$OUT/r-$sp.jsonl" --json -- \
      sh -c 'exit $(( AGENT_INDEX == 0 ? 7 : AGENT_INDEX == 1 ? 3 : 0 ))'
    [ "$status" -eq 0 ]
    jq -e '.agents == {"total":3,"completed":1,"failed":2} and .deliveryRate == 33.3' <<<"$output"
    jq -s -e 'map([.index, .status, .exitCode, .attempts]) == [[0,"failed",7,1],[1,"failed",3,3],[2,"completed",0,1]]' "$OUT/r-$sp.jsonl"
    jq -e '.noRetryExitCodes == [7,2] and .retries == 2' "$SHM/noretry-$sp/meta.json"
    rm -rf -- "$SHM/noretry-$sp"
  done
}

@test "two swarms at once on the same shm root stay apart" {
  cli run --swarm-id twin-a --agents 40 --objective A --keep -- bash -c 'cat; sleep 0.02' >/dev/null &
  local a=$!
  cli run --swarm-id twin-b --agents 40 --objective B --keep -- bash -c 'cat; sleep 0.02' >/dev/null &
  local b=$!
  wait "$a"
  wait "$b"
  cat "$SHM/twin-a"/responses/agent-*.json | jq -s -e 'length == 40 and all(.output == "A")'
  cat "$SHM/twin-b"/responses/agent-*.json | jq -s -e 'length == 40 and all(.output == "B")'
  jq -e '.status == "completed"' "$SHM/twin-a/status.json" "$SHM/twin-b/status.json"
  run cli run --swarm-id twin-a --agents 1 --objective A -- true
  [ "$status" -eq 0 ]
}

@test "a second run of a running swarm is refused (exit 3)" {
  "$BIN/coordinator-cli.sh" run --swarm-id busy --agents 2 --objective x -- bash -c '(exec -a "$0" sleep 30); :' "$MARK" >/dev/null 2>&1 &
  local pid=$! i
  for ((i = 0; i < 100; i++)); do
    [ -s "$SHM/busy/pids/coordinator.pid" ] && break
    sleep 0.05
  done
  run cli run --swarm-id busy --agents 2 --objective x -- true
  [ "$status" -eq 3 ]
  [[ $output == *"already running"* ]]
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 143 ]
  assert_no_leftovers
}

kill_test() {
  local sig=$1 code=$2
  # Job control, so the background run does not start with SIGINT ignored.
  set -m
  "$BIN/coordinator-cli.sh" run --swarm-id "sig$code" --agents 20 --concurrency 8 --objective x -- bash -c '(exec -a "$0" sleep 30); :' "$MARK" 2>/dev/null &
  local pid=$! i
  set +m
  for ((i = 0; i < 100; i++)); do
    # The attempts' raw files: in the run's local launcher channel.
    [ "$(find "$SHM/sig$code" -path '*/work/agent-*' 2>/dev/null | wc -l)" -ge 16 ] && break
    sleep 0.05
  done
  [ -n "$(leftover_pids)" ]
  kill "-$sig" "$pid"
  local rc=0
  wait "$pid" || rc=$?
  echo "exit code $rc" >&2
  [ "$rc" -eq "$code" ]
  [ ! -e "$SHM/sig$code" ]
  assert_no_leftovers
}

@test "TERM of the coordinator leaves no process and no root dir" {
  kill_test TERM 143
}

@test "INT of the coordinator leaves no process and no root dir" {
  kill_test INT 130
}

@test "TERM with --keep: status stopped, the root kept for the caller" {
  "$BIN/coordinator-cli.sh" run --swarm-id bg --agents 6 --objective x --keep -- bash -c '(exec -a "$0" sleep 30); :' "$MARK" >/dev/null 2>&1 &
  local pid=$! i
  for ((i = 0; i < 100; i++)); do
    [ "$(ls "$SHM/bg/work" 2>/dev/null | grep -c out)" -ge 6 ] && break
    sleep 0.05
  done
  jq -e '.status == "running" and .agents.total == 6' "$SHM/bg/status.json"
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 143 ]
  jq -e '.status == "stopped"' "$SHM/bg/status.json"
  assert_no_leftovers
  rm -rf -- "$SHM/bg"
}

@test "usage errors exit 2 with a reason" {
  run cli run --swarm-id 'Bad/Id' --agents 1 --objective x -- true
  [ "$status" -eq 2 ]
  [[ $output == *"invalid --swarm-id"* ]]
  run cli run --swarm-id ok --agents 0 --objective x -- true
  [ "$status" -eq 2 ]
  run cli run --swarm-id ok --agents 2 --objective x
  [ "$status" -eq 2 ]
  run cli run --swarm-id ok --agents 2 -- true
  [ "$status" -eq 2 ]
  [[ $output == *"no objective"* ]]
  [ ! -e "$SHM/ok" ]
  run cli run --swarm-id ok --agents 2 --objective x --completed-indexes 1-5 -- true
  [ "$status" -eq 2 ]
  run cli run --swarm-id ok --agents 2 --objective x --failed-indexes 2 -- true
  [ "$status" -eq 2 ]
  run cli run --swarm-id ok --agents 2 --objective x --completed-indexes 0-1 --failed-indexes 1 -- true
  [ "$status" -eq 2 ]
  [[ $output == *"agent 1 is in both --completed-indexes and --failed-indexes"* ]]
  local bad
  for bad in 0 256 2,,3 2, x -1; do
    run cli run --swarm-id ok --agents 2 --objective x --no-retry-exit-codes "$bad" -- true
    [ "$status" -eq 2 ]
    [[ $output == *"--no-retry-exit-codes must list exit codes 1-255"* ]]
  done
  run cli frobnicate
  [ "$status" -eq 2 ]
  [[ $output == *"unknown command: frobnicate (see --help)"* ]]
  run cli
  [ "$status" -eq 2 ]
  [[ $output == Usage:* ]]
  run cli run --bogus
  [ "$status" -eq 2 ]
  [[ $output == *"unknown option: --bogus (see --help)"* ]]
  run cli run --swarm-id
  [ "$status" -eq 2 ]
  [[ $output == *"option --swarm-id needs a value"* ]]
}

@test "preflight: a missing shm path fails with exit 3 and the precise reason" {
  run cli run --swarm-id p --agents 2 --objective x --shm-path /nonexistent/cfn -- true
  [ "$status" -eq 3 ]
  [[ $output == *"/nonexistent/cfn does not exist"* ]]
}

@test "preflight: a read-only tmpfs fails with exit 3 '<path> not writable'" {
  mkdir -p "$SHM/mnt"
  mount -t tmpfs -o ro,size=1m tmpfs "$SHM/mnt" || skip "cannot mount tmpfs here"
  run cli run --swarm-id p --agents 2 --objective x --shm-path "$SHM/mnt" -- true
  [ "$status" -eq 3 ]
  [[ $output == *"$SHM/mnt not writable"* ]]
}

@test "preflight: a full tmpfs fails with exit 3 and a space reason" {
  mkdir -p "$SHM/mnt"
  mount -t tmpfs -o size=64k tmpfs "$SHM/mnt" || skip "cannot mount tmpfs here"
  run cli run --swarm-id p --agents 10 --objective x --shm-path "$SHM/mnt" -- true
  [ "$status" -eq 3 ]
  [[ $output == *"not enough space on $SHM/mnt"* ]]
}

@test "works without bash loadables and with a polling bus, objective from a file" {
  printf 'from a file\n' >"$OUT/objective"
  run --separate-stderr env CFN_NO_LOADABLES=1 CFN_BUS_MODE=poll "$BIN/coordinator-cli.sh" run --swarm-id nl --agents 40 --objective-file "$OUT/objective" --results-file "$OUT/r.jsonl" --json -- cat
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents.completed == 40' <<<"$output"
  jq -s -e 'length == 40 and all(.output == "from a file\n")' "$OUT/r.jsonl"
  run --separate-stderr env CFN_NO_LOADABLES=1 "$BIN/coordinator-cli.sh" run --swarm-id nl --agents 90 --index-range 30-90 --bus-mode poll --objective x --json -- true
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":60,"completed":60,"failed":0}' <<<"$output"
  assert_no_leftovers
}

@test "kill -9 of the coordinator: its components and agents stop by themselves" {
  "$BIN/coordinator-cli.sh" run --swarm-id orphan --agents 6 --objective x -- bash -c '(exec -a "$0" sleep 30); :' "$MARK" 2>/dev/null &
  local pid=$! i
  for ((i = 0; i < 100; i++)); do
    [ "$(find "$SHM/orphan" -path "*/work/agent-*.out" 2>/dev/null | wc -l)" -ge 6 ] && break
    sleep 0.05
  done
  kill -KILL "$pid"
  for ((i = 0; i < 100; i++)); do
    [ -z "$(leftover_pids)" ] && break
    sleep 0.1
  done
  assert_no_leftovers
  jq -e '.status == "stopped"' "$SHM/orphan/status.json"
  rm -rf -- "$SHM/orphan"
}

@test "every script answers --help with exit 0" {
  local s
  for s in "$BIN"/*.sh; do
    run "$s" --help
    [ "$status" -eq 0 ] || { echo "$s --help: $status" >&2; false; }
    [[ $output == *Usage* ]]
  done
}
