#!/usr/bin/env bats
# topology-flat.sh: every agent once, at most --concurrency at a time.

load helpers

setup() {
  common_setup
  ROOT="$SHM/f"
  mkdir -p "$ROOT"
  printf 'x' >"$ROOT/objective.txt"
}
teardown() { common_teardown; }

@test "flat: runs each agent exactly once and never more than --concurrency at once" {
  mkdir -p "$OUT/running" "$OUT/runs"
  cat >"$OUT/agent.sh" <<'EOS'
d=$1
: >"$d/running/$AGENT_INDEX"
ls "$d/running" | wc -l >>"$d/peaks"
echo run >>"$d/runs/$AGENT_INDEX"
sleep 0.05
rm -f "$d/running/$AGENT_INDEX"
EOS
  run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 60 --concurrency 4 -- bash "$OUT/agent.sh" "$OUT"
  [ "$status" -eq 0 ]
  [ "$(sort -n "$OUT/peaks" | tail -1)" -le 4 ]
  [ "$(ls "$OUT/runs" | wc -l)" -eq 60 ]
  [ "$(cat "$OUT"/runs/* | wc -l)" -eq 60 ]
  [ "$(ls "$ROOT/messages/root/new" | wc -l)" -eq 60 ]
}

@test "flat: --completed-indexes are skipped" {
  run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 10 --completed-indexes 0-8 -- true
  [ "$status" -eq 0 ]
  [ "$(ls "$ROOT/responses" | grep -c agent-)" -eq 1 ]
  [ -f "$ROOT/responses/agent-9.json" ]
}

@test "flat: missing objective or command is a usage error" {
  rm "$ROOT/objective.txt"
  run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 2 -- true
  [ "$status" -eq 2 ]
  run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 2
  [ "$status" -eq 2 ]
}
