#!/usr/bin/env bats
# message-bus.sh / lib/bus.sh: ids, atomic publish, claim, quarantine, push back.

load helpers

setup() {
  common_setup
  INBOX="$SHM/inbox"
  "$TOOLS/message-bus.sh" init --inbox "$INBOX"
}

teardown() { common_teardown; }

# publish_many FIRST COUNT [CAPACITY] [PUBLISH_TIMEOUT]: one process, lib/bus.sh sourced.
publish_many() {
  CFN_INBOX_CAPACITY=${3:-4096} CFN_PUBLISH_TIMEOUT=${4:-30} bash -c '
    source "$1/lib/bus.sh"; cfn_load_builtins
    for ((i = $3; i < $3 + $4; i++)); do
      bus_publish "$2" result "agent-$i" "{\"agentId\":\"agent-$i\",\"index\":$i,\"status\":\"completed\"}" || exit $?
    done' _ "$BIN" "$INBOX" "$1" "$2"
}

result_body() { printf '{"agentId":"agent-%d","index":%d,"status":"%s"}' "$1" "$1" "${2:-completed}"; }

@test "publish then consume delivers the message with a well-formed id and records latency" {
  run "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-3 --body "$(result_body 3)"
  [ "$status" -eq 0 ]
  [[ $output =~ ^[0-9]{16}-[0-9]+-1$ ]]
  [ -f "$INBOX/new/$output.json" ]
  jq -e '.type == "result" and .body.index == 3' "$INBOX/new/$output.json"
  [ -z "$(ls -A "$INBOX/tmp")" ]
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --count 1 --latency-file "$SHM/lat"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "result agent-3 3 completed" ]
  [ -z "$(ls -A "$INBOX/new")$(ls -A "$INBOX/claimed")" ]
  [[ $(cat "$SHM/lat") =~ ^[0-9]+$ ]]
}

@test "no id collision at a high rate: 8 parallel publishers x 250 messages" {
  cat >"$SHM/pub.sh" <<EOS
source "$BIN/lib/bus.sh"
cfn_load_builtins
for ((i = 0; i < 250; i++)); do bus_publish "$INBOX" result "agent-\$1" "{\"agentId\":\"agent-\$1\",\"index\":\$1,\"status\":\"completed\"}" || exit 1; done
EOS
  local p pids=()
  for p in 0 1 2 3 4 5 6 7; do bash "$SHM/pub.sh" "$p" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  [ "$(ls "$INBOX/new" | wc -l)" -eq 2000 ]
  [ "$(cat "$INBOX"/new/*.json | jq -r .id | sort -u | wc -l)" -eq 2000 ]
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --count 2000
  [ "$(grep -c '^result' <<<"$output")" -eq 2000 ]
}

@test "a colliding id is refused and the first message is kept (never overwritten)" {
  run bash -c "
    source '$BIN/lib/bus.sh'; cfn_load_builtins
    cfn_now_us() { printf -v \"\$1\" 1764030000000000; }
    bus_publish '$INBOX' result agent-1 '$(result_body 1)' || exit 9
    BUS_SEQ=0
    bus_publish '$INBOX' result agent-2 '$(result_body 2)'"
  [ "$status" -eq 1 ]
  [[ $output == *"collision refused"* ]]
  [ "$(ls "$INBOX/new" | wc -l)" -eq 1 ]
  jq -e '.body.index == 1' "$INBOX"/new/*.json
  [ -z "$(ls -A "$INBOX/tmp")" ]
}

@test "claim is exclusive: 4 concurrent consumers handle each of 600 messages exactly once" {
  local i
  publish_many 0 600
  for i in 1 2 3 4; do
    "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --timeout 3 >"$OUT/c$i" 2>/dev/null &
  done
  wait
  [ "$(cat "$OUT"/c* | wc -l)" -eq 600 ]
  [ "$(cat "$OUT"/c* | sort -u | wc -l)" -eq 600 ]
  [ -z "$(ls -A "$INBOX/new")$(ls -A "$INBOX/claimed")" ]
}

@test "malformed messages are quarantined and counted, never handled" {
  local good='{"id":"1-1-1","type":"result","from":"agent-1","ts":1,"body":{"agentId":"agent-1","index":1,"status":"completed"}}'
  printf '%s\n' "$good" >"$INBOX/new/1-1-1.json"
  printf 'not json\n' >"$INBOX/new/1-1-2.json"
  printf '%s\n' "${good/1-1-1/1-1-3}" | sed 's/"index":1/"index":2/' >"$INBOX/new/1-1-3.json"
  printf '%s\n' "${good/1-1-1/1-1-4}" | sed 's/"status":"completed"/"status":"completed","x":1/' >"$INBOX/new/1-1-4.json"
  printf '%s\n%s\n' "${good/1-1-1/1-1-5}" "${good/1-1-1/1-1-5}" >"$INBOX/new/1-1-5.json"
  printf '%s\n' "$good" >"$INBOX/new/1-1-6.json"
  printf '%s' "${good/1-1-1/1-1-7}" >"$INBOX/new/1-1-7.json"
  printf '%s\n' "${good/1-1-1/1-1-8}" | sed 's/"type":"result"/"type":"evil"/' >"$INBOX/new/1-1-8.json"
  printf '%s\n' "${good/1-1-1/1-1-9}" | sed 's/"agent-1","ts"/"agent 1;rm -rf \/","ts"/' >"$INBOX/new/1-1-9.json"
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --timeout 0.3
  [ "$status" -eq 0 ]
  [ "$(grep -c '^result' <<<"$output")" -eq 1 ]
  [[ $output == *"consumed=1 quarantined=8"* ]]
  [ "$(ls "$INBOX/quarantine" | wc -l)" -eq 8 ]
}

@test "the header parser (fields read by name, rebuilt byte for byte) quarantines headers that only look canonical; a short header never ends the consumer" {
  local body='{"agentId":"agent-1","index":1,"status":"completed"}' n=0 h
  printf '{"id":"1-1-1","type":"result","from":"agent-1","ts":1,"body":%s}\n' "$body" >"$INBOX/new/1-1-1.json"
  for h in \
    '"id":"1-1-2","type":"result","from":"*","ts":1' \
    '"id":"1-1-2","type":"result","from":"","ts":1' \
    '"id":"1-1-2","type":"result","from":"a","x":"y","ts":1' \
    '"id":"1-1-2","type":"result","from":"a","ts":1a' \
    '"id":"1-1-2","type":"result","from":"a","ts":' \
    '"id":"1--2","type":"result","from":"a","ts":1' \
    '"id":"1-1-x","type":"result","from":"a","ts":1' \
    '"id":"1-1-2","type":"result","from":"@(a|b)","ts":1' \
    '"id":"1-1-2","type":"result","from":"a","from":"b","ts":1' \
    '"type":"result","id":"1-1-2","from":"a","ts":1' \
    '"id":"1-1-2","type":"result","from":"a","ts":1,"body":{},"ts":2' \
    '"id":"1-1-2"' \
    '"id":"1-1-2","type":"result","from":"a"' \
    '"id":"1-1-2","type":"result",,"from":"a","ts":1' \
    '"id":"1-1-2","type":"result","from":"a{","ts":1' \
    '"id":"1-1-2","type":"result","from":"a","ts":"1"' \
    '"id":"1-1-2","type":"result","from":"a","ts":1,' \
    '"id":"1-1-2","type":"result","from":"a","ts":1,"ts":1' \
    "\"id\":\"1-1-2\",\"type\":\"result\",\"from\":\"$(printf 'a%.0s' {1..65})\",\"ts\":1" ; do
    n=$((n + 1))
    # Each file is named after its id: the header alone is what is wrong.
    printf '{%s,"body":%s}\n' "${h//1-1-2/1-1-$((n + 1))}" "$body" >"$INBOX/new/1-1-$((n + 1)).json"
  done
  printf '{"id":"1-1-99","type":"result","from":"a","ts":1,"body":[]}\n' >"$INBOX/new/1-1-99.json"
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --timeout 0.3
  [ "$status" -eq 0 ]
  [ "$(grep -c '^result' <<<"$output")" -eq 1 ]
  [[ $output == *"consumed=1 quarantined=$((n + 1))"* ]]
}

@test "a full inbox pushes back: publish waits, then fails with 75 and drops nothing" {
  local i
  for i in 0 1 2 3 4; do
    "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --capacity 5 --type result --from "agent-$i" --body "$(result_body "$i")" >/dev/null
  done
  [ "$("$TOOLS/message-bus.sh" depth --inbox "$INBOX")" -eq 5 ]
  run "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --capacity 5 --publish-timeout 1 --type result --from agent-5 --body "$(result_body 5)"
  [ "$status" -eq 75 ]
  [[ $output == *"inbox"*"full"* ]]
  [ "$("$TOOLS/message-bus.sh" depth --inbox "$INBOX")" -eq 5 ]
  [ -z "$(ls -A "$INBOX/tmp")" ]
}

@test "push back with a live consumer: 200 messages through a 5-message inbox, none lost" {
  "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --count 200 --timeout 10 >"$OUT/c" 2>/dev/null &
  local consumer=$!
  publish_many 0 200 5 10
  wait "$consumer"
  [ "$(sort -u "$OUT/c" | wc -l)" -eq 200 ]
}

@test "polling mode and the no-loadables fallback deliver as well" {
  CFN_BUS_MODE=poll CFN_NO_LOADABLES=1 "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --count 3 --timeout 5 >"$OUT/c" 2>"$OUT/e" &
  local consumer=$!
  sleep 0.2
  CFN_NO_LOADABLES=1 "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-2 --body "$(result_body 2)"
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type batch --from flat --body '{"completed":[3],"failed":[]}'
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type batch --from flat --body '{"completed":[],"failed":[4]}'
  wait "$consumer"
  run cat "$OUT/c"
  [ "${lines[0]}" = "result agent-2 2 completed" ]
  [ "${lines[1]}" = "result flat 3 completed" ]
  [ "${lines[2]}" = "result flat 4 failed" ]
  [ "$(CFN_NO_LOADABLES=1 "$TOOLS/message-bus.sh" depth --inbox "$INBOX")" -eq 0 ]
}

@test "a consumer replays messages left in claimed/ by a crashed consumer" {
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-9 --body "$(result_body 9)" >/dev/null
  local f=("$INBOX"/new/*.json)
  ln "${f[0]}" "$INBOX/claimed/${f[0]##*/}" && rm "${f[0]}"
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --count 1
  [ "${lines[0]}" = "result agent-9 9 completed" ]
  [ -z "$(ls -A "$INBOX/claimed")" ]
}

@test "regression: a live consumer's in-flight claim is never replayed, whoever started first (CI saw 4 consumers handle a message twice)" {
  local f holder
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-1 --body "$(result_body 1)" >/dev/null
  f=("$INBOX"/new/*.json)
  # A live consumer: holds the shared lock and has claimed agent-1's message.
  ln "${f[0]}" "$INBOX/claimed/${f[0]##*/}" && rm "${f[0]}"
  bash -c 'exec 9>>"$1"; flock -s 9; exec sleep 30' _ "$INBOX/.lock" &
  holder=$!
  while flock -n -x "$INBOX/.lock" true; do sleep 0.01; done
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --timeout 0.2
  [ "$status" -eq 0 ]
  [ -z "$(grep '^result' <<<"$output")" ]
  [ "$(ls "$INBOX/claimed")" = "${f[0]##*/}" ]
  # Once that consumer is gone, its claim is a leftover and the next one replays it.
  kill "$holder"
  wait "$holder" || true
  run "$TOOLS/message-bus.sh" consume --inbox "$INBOX" --timeout 0.2
  [ "$status" -eq 0 ]
  [ "$(grep -c '^result agent-1 1 completed' <<<"$output")" -eq 1 ]
  [ -z "$(ls -A "$INBOX/claimed")" ]
}

@test "regression: the replay never takes a claim made after the primary consumer started (4 consumers once handled a message twice)" {
  local f
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-1 --body "$(result_body 1)" >/dev/null
  "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-2 --body "$(result_body 2)" >/dev/null
  f=("$INBOX"/new/*.json)
  # agent-1's message: left in claimed/ by a consumer that crashed earlier.
  ln "${f[0]}" "$INBOX/claimed/${f[0]##*/}" && rm "${f[0]}"
  # The primary opens the inbox (lock + leftovers); then a second consumer
  # claims agent-2's message before the primary's first drain.
  run env BIN="$BIN" INBOX="$INBOX" CLAIMED="${f[1]}" bash -c '
    set -euo pipefail
    source "$BIN/lib/bus.sh"
    CFN_BUS_MODE=poll
    bus_consumer_open "$INBOX"
    ln "$CLAIMED" "$INBOX/claimed/${CLAIMED##*/}" && unlink "$CLAIMED"
    seen() { echo "$*"; }
    bus_drain seen'
  [ "$status" -eq 0 ]
  [ "$output" = "result agent-1 1 completed" ]
  [ "$(ls "$INBOX/claimed")" = "${f[1]##*/}" ]
}

@test "publish refuses an invalid message (usage error 2)" {
  run "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from agent-1 --body '{"agentId":"agent-2","index":1,"status":"completed"}'
  [ "$status" -eq 2 ]
  run "$TOOLS/message-bus.sh" publish --inbox "$INBOX" --type result --from 'a b' --body "$(result_body 1)"
  [ "$status" -eq 2 ]
  [ -z "$(ls -A "$INBOX/new")" ]
}
