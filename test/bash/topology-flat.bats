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
  cat >"$OUT/agent.sh" <<'EOS'
d=$1
: >"$d/running/$AGENT_INDEX"
ls "$d/running" | wc -l >>"$d/peaks"
echo run >>"$d/runs/$AGENT_INDEX"
sleep 0.05
rm -f "$d/running/$AGENT_INDEX"
EOS
  mkdir -p "$OUT/running" "$OUT/runs"
  run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 60 --concurrency 4 -- bash "$OUT/agent.sh" "$OUT"
  [ "$status" -eq 0 ]
  [ "$(sort -n "$OUT/peaks" | tail -1)" -le 4 ]
  [ "$(ls "$OUT/runs" | wc -l)" -eq 60 ]
  [ "$(cat "$OUT"/runs/* | wc -l)" -eq 60 ]
  [ "$(ls "$ROOT/responses" | grep -c '^agent-.*[.]json$')" -eq 60 ]
  # Results are announced in batches: each agent exactly once, in fewer messages.
  [ "$(cat "$ROOT"/messages/root/new/*.json | jq -r 'select(.type == "batch") | (.body.completed + .body.failed)[]' | sort -n | uniq | wc -l)" -eq 60 ]
  [ "$(cat "$ROOT"/messages/root/new/*.json | jq -r '(.body.completed + .body.failed)[]' | wc -l)" -eq 60 ]
}

@test "flat: a result is announced within the batch delay while other agents still run" {
  cat >"$OUT/agent.sh" <<'EOS'
if [ "$AGENT_INDEX" = 0 ]; then exit 0; fi
sleep 3
EOS
  "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 2 --concurrency 2 -- bash "$OUT/agent.sh" &
  local pid=$! t=0
  # agent-0 ends at once; agent-1 runs 3 s: the tick, not agent-1's end, announces agent-0.
  while [ -z "$(ls -A "$ROOT/messages/root/new" 2>/dev/null)" ] && ((t < 100)); do sleep 0.01; t=$((t + 1)); done
  kill -0 "$pid"
  jq -e '.type == "batch" and ([(.body.completed + .body.failed)[]] == [0])' "$ROOT"/messages/root/new/*.json
  wait "$pid"
  [ "$(cat "$ROOT"/messages/root/new/*.json | jq -r '(.body.completed + .body.failed)[]' | sort -n | tr '\n' ' ')" = "0 1 " ]
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

@test "flat: the launcher encodes any output as jq -Rs does (invalid UTF-8 -> U+FFFD, control bytes escaped, bounded)" {
  # Outputs and errors that take each path of the encoder: printable ASCII,
  # valid and invalid UTF-8, control bytes, sequences cut by a line end or by
  # --max-output, lines over jq's 4095-byte pieces, random bytes; timeouts.
  local i
  mkdir -p "$OUT/in"
  for i in 0 1 2 3 4 5; do head -c $((3000 + i * 1500)) /dev/urandom | tr -d '\0' | fold -b -w $((200 + i * 900)) >"$OUT/in/$i"; done
  head -c 70000 /dev/urandom | tr -d '\0' >"$OUT/in/6"
  printf 'hello "world" \\ tab\there\n' >"$OUT/in/7"
  printf '\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ok\n\x7f\x01\xc3\x28\xe2\x82\n\xf0\x9f\n\xed\xa0\x80\xc0\xaf\xf5\r\b\f\n' >"$OUT/in/8"
  { head -c 65535 /dev/zero | tr '\0' x; printf '\xc3\xa9'; } >"$OUT/in/9"
  printf 'no newline at end' >"$OUT/in/10"
  cat >"$OUT/agent.sh" <<'EOS'
f="$1/in/$AGENT_INDEX"
if [ -f "$f" ]; then cat "$f"; fi
case $AGENT_INDEX in
  1 | 3 | 6) head -c 300 "$f" >&2; exit 3 ;;
  8) printf 'err \377 bad\n  \n' >&2; exit 2 ;;
  10) printf 'last line, no newline' >&2; exit 1 ;;
  11) exit 5 ;;
  12) sleep 5 ;;
esac
EOS
  CFN_LAUNCHER_DIR='' run "$BIN/topology-flat.sh" --root "$ROOT" --swarm-id f --agents 13 --concurrency 13 --agent-timeout 0.5 -- bash "$OUT/agent.sh" "$OUT"
  [ "$status" -eq 0 ]
  for i in $(seq 0 10); do
    [ "$(jq -c .output "$ROOT/responses/agent-$i.json")" = "$(head -c 65536 "$OUT/in/$i" | jq -c -Rs .)" ]
  done
  # Nothing of the attempts is left in work/.
  [ -z "$(find "$ROOT/work" -name 'agent-*')" ]
  jq -e '.status == "failed" and .exitCode == 143 and .error == "timed out after 0.5s"' "$ROOT/responses/agent-12.json"
  jq -e '.outputTruncated and .outputBytes > 65536' "$ROOT/responses/agent-6.json"
  jq -e '.error == "err \ufffd bad"' "$ROOT/responses/agent-8.json"
}
