#!/usr/bin/env bats
# completion-detector.sh: counts from messages, dedup, deadline, status.json.

load helpers

setup() {
  common_setup
  ROOT="$SHM/d"
  mkdir -p "$ROOT/metrics"
  "$TOOLS/message-bus.sh" init --inbox "$ROOT/messages/root"
}
teardown() { common_teardown; }

pub() {
  "$TOOLS/message-bus.sh" publish --inbox "$ROOT/messages/root" "$@" >/dev/null
}
result() { pub --type result --from "agent-$1" --body "{\"agentId\":\"agent-$1\",\"index\":$1,\"status\":\"$2\"}"; }

@test "completes when every agent's final result is in; duplicates are counted once; delivery is completed / total" {
  result 0 completed
  result 1 failed
  result 1 completed
  pub --type batch --from sub-0 --body '{"completed":[2,0],"failed":[]}'
  printf 'junk\n' >"$ROOT/messages/root/new/9-9-9.json"
  # Two channel records a launcher relay refused count as quarantined too.
  mkdir -p "$ROOT/quarantine"
  : >"$ROOT/quarantine/launcher.7.1"
  : >"$ROOT/quarantine/launcher.7.2"
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 3 --timeout 5
  [ "$status" -eq 0 ]
  jq -e '.objectiveId == "d" and .status == "completed" and .agents == {"total":3,"completed":2,"failed":1} and .deliveryRate == 66.6' "$ROOT/status.json"
  jq -e '.quarantined == 3 and (.startedAt | test("Z$")) and .coordinationTime >= 0' "$ROOT/status.json"
  [ "$(wc -l <"$ROOT/metrics/latency.us")" -eq 4 ]
}

@test "the deadline gives status timeout and exit 4 with partial counts" {
  result 0 completed
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 4 --timeout 0.5
  [ "$status" -eq 4 ]
  jq -e '.status == "timeout" and .agents.completed == 1 and .deliveryRate == 25' "$ROOT/status.json"
}

@test "messages arriving while it runs are consumed; resumed completed agents count as completed" {
  "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 5 --timeout 10 --completed-indexes 0-2 &
  local det=$!
  sleep 0.3
  jq -e '.status == "running" and .agents.completed == 3 and .resumed == 3' "$ROOT/status.json"
  result 2 completed
  result 3 completed
  result 4 failed
  wait "$det"
  jq -e '.status == "completed" and .agents.completed == 4 and .agents.failed == 1' "$ROOT/status.json"
}

@test "every agent failing: status completed (all final), delivery 0, throughput 0" {
  local i
  for ((i = 0; i < 10; i++)); do result "$i" failed; done
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 10 --timeout 5
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":10,"completed":0,"failed":10} and .deliveryRate == 0 and .throughputAgentsPerSec == 0' "$ROOT/status.json"
}

@test "--failed-indexes: agents failed in an earlier run count as failed and end the run like any final answer" {
  result 3 completed
  result 4 failed
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 10 --timeout 5 --completed-indexes 0-2,5-7 --failed-indexes 8-9
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":10,"completed":7,"failed":3} and .resumed == 8 and .deliveryRate == 70' "$ROOT/status.json"
  # A result for an index already final counts once.
  [ "$(jq .agents.failed "$ROOT/status.json")" -eq 3 ]
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 10 --timeout 5 --completed-indexes 0-2 --failed-indexes 2-3
  [ "$status" -eq 2 ]
  [[ $output == *"agent 2 is in both --completed-indexes and --failed-indexes"* ]]
}

@test "TERM writes status stopped (exit 143); out-of-range indexes are ignored" {
  result 7 completed
  "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 2 --timeout 10 &
  local det=$! rc=0
  sleep 0.3
  kill -TERM "$det"
  wait "$det" || rc=$?
  [ "$rc" -eq 143 ]
  jq -e '.status == "stopped" and .agents.completed == 0' "$ROOT/status.json"
}

@test "a malformed batch is quarantined whole: none of its results counts (regression for the whole-body batch parser)" {
  local n=0 body
  # Each body would count agent 0 if it were taken in part.
  for body in \
    '{"completed":[0,01],"failed":[]}' \
    '{"completed":[0,],"failed":[]}' \
    '{"completed":[,0],"failed":[]}' \
    '{"completed":[0,,1],"failed":[]}' \
    '{"completed":[0,-1],"failed":[]}' \
    '{"completed":[0,1 1],"failed":[]}' \
    '{"completed":[0,*],"failed":[]}' \
    '{"completed":[0,1234567890],"failed":[]}' \
    '{"completed":[0],"failed":[1],"x":1}' \
    '{"completed":[0]}' \
    '{"completed":[0],"failed":[1]]}' \
    '{"completed":[0],"failed":[],"failed":[1]}' \
    '{"results":[{"agentId":"agent-0","index":0,"status":"completed"}]}' \
    '{"completed":[0],"failed":[1]}x' ; do
    n=$((n + 1))
    printf '{"id":"1-1-%d","type":"batch","from":"sub-0","ts":1,"body":%s}\n' "$n" "$body" >"$ROOT/messages/root/new/1-1-$n.json"
  done
  pub --type batch --from sub-0 --body '{"completed":[10],"failed":[2]}'
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 11 --timeout 1
  [ "$status" -eq 4 ]
  jq -e ".quarantined == $n and .agents.completed == 1 and .agents.failed == 1" "$ROOT/status.json"
}

@test "batches are counted in bulk: duplicates inside and across batches, and indexes out of range, count once or not at all" {
  pub --type batch --from sub-0 --body '{"completed":[0],"failed":[1]}'
  # Regression: a batch whose first item is a duplicate (a replacement
  # sub-coordinator re-announcing) counted one phantom completed and -1 failed.
  pub --type batch --from sub-0 --body '{"completed":[0],"failed":[]}'
  pub --type batch --from sub-0 --body '{"completed":[2,1,9,2],"failed":[2,3]}'
  run "$BIN/completion-detector.sh" --root "$ROOT" --swarm-id d --total 4 --timeout 5
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":4,"completed":2,"failed":2} and .quarantined == 0' "$ROOT/status.json"
}
