#!/usr/bin/env bats
# topology-hybrid.sh: sub-coordinators, batches, re-dispatch of a dead slice.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# run_hybrid ROOT N WORKERS SUBCONC -- CMD...: detector + topology, like the CLI does.
start_hybrid() {
  local root=$1 n=$2 workers=$3 subconc=$4
  shift 5
  mkdir -p "$root/metrics"
  printf 'x' >"$root/objective.txt"
  "$BIN/completion-detector.sh" --root "$root" --swarm-id h --total "$n" --topology hybrid --timeout 60 &
  DET=$!
  "$BIN/topology-hybrid.sh" --root "$root" --swarm-id h --agents "$n" --workers "$workers" \
    --sub-concurrency "$subconc" --heartbeat-stale 2 -- "$@" &
  TOPO=$!
}

@test "hybrid: results reach the root as batches from every sub-coordinator" {
  local root="$SHM/h"
  start_hybrid "$root" 250 60 8 -- true
  wait "$TOPO"
  wait "$DET"
  jq -e '.status == "completed" and .agents.completed == 250 and .topology == "hybrid"' "$root/status.json"
  [ "$(ls "$root/pids"/sub-*.done | wc -l)" -eq 5 ]
  # Sub-coordinators reap their agents themselves: no per-sub inbox, one hop.
  [ -z "$(ls "$root/messages" | grep -v '^root$')" ]
  [ "$(ls "$root/responses" | grep -c '^agent-')" -eq 250 ]
}

@test "hybrid: kill -9 of a sub-coordinator re-dispatches its undelivered agents; none that delivered runs twice" {
  local root="$SHM/h"
  mkdir -p "$OUT/runs"
  start_hybrid "$root" 200 50 5 -- bash -c 'echo run >>"$0/$AGENT_INDEX"; sleep 0.2' "$OUT/runs"
  local i pid=''
  for ((i = 0; i < 100; i++)); do
    [ -s "$root/pids/sub-0.pid" ] && [ "$(ls "$root/responses" | grep -c '^agent-[0-9]\.json\|^agent-[1-4][0-9]\.json')" -ge 8 ] && break
    sleep 0.05
  done
  pid=$(cat "$root/pids/sub-0.pid")
  kill -9 "$pid"
  # What slice 0 had delivered when its coordinator died.
  ls "$root/responses" | grep -E '^agent-([0-9]|[1-4][0-9])\.json$' | sed 's/agent-//; s/\.json//' >"$OUT/delivered-before"
  wait "$TOPO"
  wait "$DET"
  jq -e '.status == "completed" and .agents.completed == 200 and .deliveryRate == 100 and .reassigned > 0' "$root/status.json"
  [ "$(cat "$root/pids/sub-0.pid")" != "$pid" ]
  local idx
  while read -r idx; do
    [ "$(wc -l <"$OUT/runs/$idx")" -eq 1 ] || { echo "agent $idx ran again after it delivered" >&2; false; }
  done <"$OUT/delivered-before"
  [ "$(wc -l <"$OUT/delivered-before")" -ge 5 ]
  [ "$(ls "$OUT/runs" | wc -l)" -eq 200 ]
  [ "$(ls "$root/responses" | grep -c '^agent-')" -eq 200 ]
}

@test "hybrid: a sub-coordinator with a stale heartbeat is replaced" {
  local root="$SHM/h"
  # Its slice takes 4 s (10 agents of 0.8 s, 2 at once): it is replaced
  # (stale after 2 s) with agents still to run. Its launcher is not stopped:
  # it still writes the responses of the agents it started.
  start_hybrid "$root" 20 10 2 -- bash -c 'sleep 0.8'
  local i
  for ((i = 0; i < 100; i++)); do [ -s "$root/pids/sub-1.pid" ] && break; sleep 0.05; done
  local pid
  pid=$(cat "$root/pids/sub-1.pid")
  kill -STOP "$pid"
  wait "$TOPO"
  wait "$DET"
  jq -e '.status == "completed" and .agents.completed == 20 and .reassigned > 0' "$root/status.json"
  kill -KILL "$pid" 2>/dev/null || true
}

@test "hybrid: an agent killed by a signal is a failed response with its exit status; the swarm still completes" {
  local root="$SHM/h"
  start_hybrid "$root" 20 10 2 -- sleep 0.7
  local i sub='' victim=''
  for ((i = 0; i < 100; i++)); do [ -s "$root/pids/sub-0.pid" ] && break; sleep 0.05; done
  sub=$(cat "$root/pids/sub-0.pid")
  # The agent is a child of the launcher the sub-coordinator's relay forked
  # (run here: no CFN_LAUNCHER_DIR), started straight into `sleep 0.7`.
  for ((i = 0; i < 100; i++)); do
    victim=$(ps -eo pid=,ppid=,args= | awk -v s="$sub" '
      $3 ~ /native[/]launcher$/ { parent[$1] = $2 }
      $3 == "sleep" && $4 == "0.7" { cand[$1] = $2 }
      END { for (p in cand) if (parent[cand[p]] in parent && parent[parent[cand[p]]] == s) { print p; exit } }')
    [ -n "$victim" ] && break
    sleep 0.05
  done
  [ -n "$victim" ]
  kill -KILL "$victim"
  wait "$TOPO"
  wait "$DET"
  jq -e '.status == "completed" and .agents.total == 20 and .agents.failed == 1 and .deliveryRate == 95' "$root/status.json"
  [ "$(cat "$root"/responses/agent-*.json | jq -s '[.[] | select(.status == "failed" and .exitCode == 137 and .error == "exit code 137")] | length')" -eq 1 ]
}
