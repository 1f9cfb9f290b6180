#!/usr/bin/env bats
# --index-range: one shard of a swarm runs exactly its agents, with the swarm's
# indexes, and its status counts the range only.

load helpers
bats_require_minimum_version 1.5.0

setup() { common_setup; }
teardown() { common_teardown; }

cli() { "$BIN/coordinator-cli.sh" "$@"; }

@test "a range runs exactly its agents; indexes, tasks and CFN_AGENTS_TOTAL stay the swarm's; status counts the range" {
  local i
  for ((i = 0; i < 10; i++)); do printf 'task %d\0' "$i"; done >"$OUT/tasks"
  run --separate-stderr cli run --swarm-id shard --agents 10 --index-range 3-7 --tasks-file "$OUT/tasks" --objective x \
    --results-file "$OUT/r.jsonl" --keep --json -- \
    bash -c 'printf "%s %s %s|%s" "$AGENT_INDEX" "$AGENT_ID" "$CFN_AGENTS_TOTAL" "$(cat)" >"$0/ran.$AGENT_INDEX"; printf %s "$CFN_TASK"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":4,"completed":4,"failed":0} and .deliveryRate == 100 and .indexRange == {"start":3,"end":7}' <<<"$output"
  # Exactly agents 3..6 ran, each with its own (global) index, task and the swarm's total.
  [ "$(cd "$OUT" && ls ran.* | sort -t. -k2 -n | tr '\n' ' ')" = "ran.3 ran.4 ran.5 ran.6 " ]
  for i in 3 4 5 6; do
    [ "$(cat "$OUT/ran.$i")" = "$i agent-$i 10|task $i" ]
  done
  jq -s -e 'map([.index, .agentId, .status, .output]) == [[3,"agent-3","completed","task 3"],[4,"agent-4","completed","task 4"],[5,"agent-5","completed","task 5"],[6,"agent-6","completed","task 6"]]' "$OUT/r.jsonl"
  # Only the range's tasks were written into the root.
  [ "$(ls "$SHM/shard/tasks" | sort -n | tr '\n' ' ')" = "3 4 5 6 " ]
  rm -rf -- "$SHM/shard"
  assert_no_leftovers
}

@test "failures inside a range: delivery is completed / (END - START)" {
  run --separate-stderr cli run --swarm-id half --agents 100 --index-range 50-60 --objective x --retries 0 --keep --json -- \
    sh -c '[ $((AGENT_INDEX % 2)) -eq 0 ]'
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":10,"completed":5,"failed":5} and .deliveryRate == 50' <<<"$output"
  jq -e '.agents == 100 and .indexRange == {"start":50,"end":60}' "$SHM/half/meta.json"
  [ "$(ls "$SHM/half/responses" | grep -c '^agent-')" -eq 10 ]
  [ "$(ls "$SHM/half/responses" | grep '^agent-' | sed 's/agent-//; s/.json//' | sort -n | head -1)" -eq 50 ]
  [ "$(ls "$SHM/half/responses" | grep '^agent-' | sed 's/agent-//; s/.json//' | sort -n | tail -1)" -eq 59 ]
}

@test "resume inside a range: completed and failed indexes are counted, only the rest runs" {
  run --separate-stderr cli run --swarm-id again --agents 20 --index-range 10-15 --completed-indexes 10-11 --failed-indexes 13 \
    --objective x --json -- bash -c ': >"$0/ran.$AGENT_INDEX"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":5,"completed":4,"failed":1} and .deliveryRate == 80' <<<"$output"
  [ "$(cd "$OUT" && ls ran.* | sort | tr '\n' ' ')" = "ran.12 ran.14 " ]
}

@test "a range whose agents are all final already completes at once without running anything" {
  run --separate-stderr cli run --swarm-id done --agents 8 --index-range 4-8 --completed-indexes 4-7 --objective x --json -- \
    bash -c ': >"$0/ran.$AGENT_INDEX"' "$OUT"
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":4,"completed":4,"failed":0}' <<<"$output"
  [ -z "$(cd "$OUT" && ls ran.* 2>/dev/null)" ]
}

@test "bad ranges and indexes outside the range are usage errors (exit 2) that name the problem" {
  local bad
  for bad in 5-5 7-3 0-11 abc 3:5 -1-4 3- 1-2-3 ' 1-2'; do
    run --separate-stderr cli run --swarm-id bad --agents 10 --index-range "$bad" --objective x -- true
    [ "$status" -eq 2 ]
    [[ $stderr == *"--index-range must be START-END within --agents 10"* ]]
    [[ $stderr == *"index range"* ]]
  done
  run --separate-stderr cli run --swarm-id bad --agents 10 --index-range 2-5 --completed-indexes 1-3 --objective x -- true
  [ "$status" -eq 2 ]
  [[ $stderr == *"--completed-indexes must lie inside the index range 2..4"* ]]
  run --separate-stderr cli run --swarm-id bad --agents 10 --index-range 2-5 --failed-indexes 5 --objective x -- true
  [ "$status" -eq 2 ]
  [[ $stderr == *"--failed-indexes must lie inside the index range 2..4"* ]]
  run --separate-stderr cli run --swarm-id bad --agents 10 --index-range
  [ "$status" -eq 2 ]
  [ ! -e "$SHM/bad" ]
}

@test "the dispatcher alone runs only its range; the detector ignores results outside it" {
  local root="$SHM/parts"
  mkdir -p "$root/metrics"
  printf 'x' >"$root/objective.txt"
  run "$BIN/topology-flat.sh" --root "$root" --swarm-id parts --agents 30 --index-range 25-30 --concurrency 2 -- true
  [ "$status" -eq 0 ]
  [ "$(ls "$root/responses" | grep '^agent-' | sort -V | tr '\n' ' ')" = "agent-25.json agent-26.json agent-27.json agent-28.json agent-29.json " ]
  # A result for agent 3 (outside 25..29) is not counted.
  "$TOOLS/message-bus.sh" publish --inbox "$root/messages/root" --type batch --from stray --body '{"completed":[3],"failed":[]}' >/dev/null
  run "$BIN/completion-detector.sh" --root "$root" --swarm-id parts --total 30 --index-range 25-30 --timeout 5
  [ "$status" -eq 0 ]
  jq -e '.status == "completed" and .agents == {"total":5,"completed":5,"failed":0} and .indexRange == {"start":25,"end":30}' "$root/status.json"
  run --separate-stderr "$BIN/completion-detector.sh" --root "$root" --swarm-id parts --total 30 --index-range 25-31
  [ "$status" -eq 2 ]
  [[ $stderr == *"--index-range must be START-END within --total 30"* ]]
}
