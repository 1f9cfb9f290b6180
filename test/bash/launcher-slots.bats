#!/usr/bin/env bats
# The agent launcher's slots (spec.agent.isolation: container; docs/security.md):
# `serve --slot` runs one agent at a time and leaves nothing of it for the
# next (its processes killed, its --wipe directories emptied); the relay and
# the session, given CFN_LAUNCHER_SLOTS=N, hand each slot its next agent only
# once the last one is answered.

load helpers
bats_require_minimum_version 1.5.0

setup() {
  common_setup
  ROOT="$SHM/sp"
  mkdir -p "$ROOT/work" "$ROOT/responses/.tmp"
  printf 'the objective' >"$ROOT/objective.txt"
  L="$BIN/native/launcher"
  [ -x "$L" ] || { echo "the launcher is not built: run npm run build (scripts/build-native.sh)" >&2; return 1; }
  CHAN="$SHM/slots"
  SERVES=()
  export CFN_LAUNCHER_WAIT=10
}

teardown() {
  local p
  for p in "${SERVES[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${SERVES[@]}"; do wait "$p" 2>/dev/null || true; done
  common_teardown
}

# slots N: serves N slots on $CHAN/<k>, each in its working directory
# $SHM/work.<k> with TMPDIR $SHM/tmp.<k>, both emptied between agents.
slots() {
  local k
  for ((k = 0; k < $1; k++)); do
    mkdir -p "$SHM/work.$k" "$SHM/tmp.$k" "$CHAN"
    (cd "$SHM/work.$k" && TMPDIR=$SHM/tmp.$k exec "$L" serve --slot --wipe "$SHM/tmp.$k" --wipe "$SHM/work.$k" "$CHAN/$k") 2>>"$OUT/serve.log" &
    SERVES+=("$!")
  done
}

# relay N SLOTS -- CMD...: agents 0..N-1 over SLOTS slots; reports in $OUT/reports.
relay() {
  local n=$1 s=$2
  shift 3
  seq 0 $((n - 1)) >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN CFN_LAUNCHER_SLOTS=$s "$L" relay "$ROOT" "$ROOT/queue" "$s" 0 0 -- "$@" >"$OUT/reports"
}

@test "slots: each slot runs one agent at a time, in a fresh /tmp and working directory; every agent is answered exactly once" {
  slots 3
  # An agent fails when its slot is busy (another agent holds the slot's
  # mark) or when it finds anything of an earlier agent.
  cat >"$SHM/agent" <<EOF
#!/bin/sh
set -e
[ -z "\$(ls -A "\$TMPDIR")" ] || { echo "a dirty /tmp" >&2; exit 3; }
[ -z "\$(ls -A .)" ] || { echo "a dirty workdir" >&2; exit 4; }
slot=\${TMPDIR##*.}
mkdir "$SHM/busy.\$slot" || { echo "two agents in slot \$slot" >&2; exit 5; }
echo "\$AGENT_INDEX" >"\$TMPDIR/mine"; echo "\$AGENT_INDEX" >mine
echo "\$AGENT_INDEX \$slot" >>"$SHM/ran"
sleep 0.05
rmdir "$SHM/busy.\$slot"
echo "done \$slot"
EOF
  chmod +x "$SHM/agent"
  relay 18 3 -- "$SHM/agent"
  [ "$(grep -c '^W [0-9]* completed$' "$OUT/reports")" -eq 18 ]
  [ "$(cut -d' ' -f2 "$OUT/reports" | sort -n | uniq | wc -l)" -eq 18 ]
  [ "$(wc -l <"$SHM/ran")" -eq 18 ]
  # Every slot ran agents.
  [ "$(cut -d' ' -f2 "$SHM/ran" | sort -u | tr '\n' ' ')" = "0 1 2 " ]
  for ((i = 0; i < 18; i++)); do jq -e '.status == "completed" and (.output | test("^done [012]\n$"))' "$ROOT/responses/agent-$i.json" >/dev/null; done
  # After the last agent the slots are empty again.
  for k in 0 1 2; do [ -z "$(ls -A "$SHM/tmp.$k")$(ls -A "$SHM/work.$k")" ]; done
}

@test "slots: an agent's leftover processes are killed before the next agent; its files go without following a symlink out" {
  slots 1
  mkdir -p "$SHM/outside/dir"
  echo keep >"$SHM/outside/keep"
  echo keep >"$SHM/outside/dir/keep"
  cat >"$SHM/agent" <<EOF
#!/bin/sh
if [ "\$AGENT_INDEX" = 0 ]; then
  # A reader of the next agent's task, in its group and one that left it.
  (while :; do cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep '^CFN_TASK=' >>"$SHM/stolen"; sleep 0.01; done) &
  echo \$! >"$SHM/bg.0"
  setsid sh -c 'echo \$\$ >"$SHM/bg.1"; exec sleep 300' &
  ln -s "$SHM/outside" "\$TMPDIR/link"
  ln -s "$SHM/outside/keep" filelink
  mkdir -p a/b/c; echo x >a/b/c/f; ln -s "$SHM/outside/dir" a/b/dirlink
  chmod 000 a/b; chmod 500 a
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$SHM/bg.1" ] && break; sleep 0.05; done
  exit 0
fi
for p in \$(cat "$SHM/bg.0" "$SHM/bg.1"); do
  if kill -0 "\$p" 2>/dev/null && [ "\$(cut -d' ' -f3 /proc/\$p/stat)" != Z ]; then echo "leftover \$p alive"; exit 6; fi
done
[ -z "\$(ls -A "\$TMPDIR")\$(ls -A .)" ] || { ls -laR "\$TMPDIR" .; exit 7; }
echo clean
EOF
  chmod +x "$SHM/agent"
  mkdir -p "$ROOT/tasks"
  printf 'the secret of agent-1' >"$ROOT/tasks/1"
  relay 2 1 -- "$SHM/agent"
  cat "$OUT/reports" >&2
  jq -e '.status == "completed"' "$ROOT/responses/agent-0.json" >/dev/null
  jq -e '.status == "completed" and .output == "clean\n"' "$ROOT/responses/agent-1.json" >/dev/null
  ! grep -q 'secret' "$SHM/stolen" 2>/dev/null
  # What the symlinks pointed at is untouched.
  [ "$(cat "$SHM/outside/keep")" = keep ]
  [ "$(cat "$SHM/outside/dir/keep")" = keep ]
  for p in $(cat "$SHM/bg.0" "$SHM/bg.1"); do ! kill -0 "$p" 2>/dev/null || [ "$(cut -d' ' -f3 "/proc/$p/stat")" = Z ]; done
}

@test "slots: a retry starts as fresh as a new agent (its attempt before it left nothing)" {
  slots 1
  seq 0 1 >"$ROOT/queue"
  CFN_LAUNCHER_DIR=$CHAN CFN_LAUNCHER_SLOTS=1 "$L" relay "$ROOT" "$ROOT/queue" 1 1 0 -- sh -c '[ -z "$(ls -A "$TMPDIR")$(ls -A .)" ] || exit 9; : >"$TMPDIR/x"; : >y; [ "$CFN_ATTEMPT" = 2 ]' >"$OUT/reports"
  for i in 0 1; do jq -e '.status == "completed" and .attempts == 2' "$ROOT/responses/agent-$i.json" >/dev/null; done
}

@test "slots: a slot's launcher killed mid-agent fails that agent alone, saying so; the others complete" {
  slots 2
  cat >"$SHM/agent" <<EOF
#!/bin/sh
if [ "\$AGENT_INDEX" = 0 ]; then kill -KILL "\$PPID"; sleep 5; fi
echo ok
EOF
  chmod +x "$SHM/agent"
  # A killed slot's request fails; agents left go to the slot still serving.
  relay 6 2 -- "$SHM/agent"
  jq -e '.status == "failed" and .exitCode == null and (.error | test("the launcher ended before agent-0.s final answer"))' "$ROOT/responses/agent-0.json" >/dev/null
  for i in 1 2 3 4 5; do jq -e '.status == "completed"' "$ROOT/responses/agent-$i.json" >/dev/null; done
  [ "$(wc -l <"$OUT/reports")" -eq 6 ]
}

@test "slots: the hub serves each slot's requests at SOCK.<k>; serve refuses --wipe without --slot" {
  slots 2
  "$L" hub --slots 2 "$CHAN" "$SHM/hub" 2>>"$OUT/hub.log" &
  SERVES+=("$!")
  seq 0 5 >"$ROOT/queue"
  CFN_LAUNCHER_HUB=$SHM/hub CFN_LAUNCHER_SLOTS=2 "$L" relay "$ROOT" "$ROOT/queue" 2 0 0 -- sh -c 'echo "$TMPDIR"' >"$OUT/reports"
  [ "$(grep -c completed "$OUT/reports")" -eq 6 ]
  [ "$(cat "$ROOT"/responses/agent-*.json | jq -j .output | sort -u | wc -l)" -eq 2 ]
  run "$L" serve --wipe "$SHM/tmp.0" "$SHM/x"
  [ "$status" -eq 2 ]
  run env CFN_LAUNCHER_DIR=$CHAN CFN_LAUNCHER_SLOTS=0 "$L" relay "$ROOT" "$ROOT/queue" 2 0 0 -- true
  [ "$status" -eq 2 ]
  [[ $output == *"CFN_LAUNCHER_SLOTS must be a slot count"* ]]
}

@test "slots: coordinator-cli.sh run over CFN_LAUNCHER_SLOTS delivers every agent once, each slot one at a time" {
  slots 2
  export CFN_LAUNCHER_DIR=$CHAN CFN_LAUNCHER_SLOTS=2
  run --separate-stderr "$BIN/coordinator-cli.sh" run --swarm-id slots --agents 8 --concurrency 2 --objective x --json -- sh -c 'mkdir "$0/busy.${TMPDIR##*.}" && echo "$AGENT_INDEX" >>"$0/ran" && sleep 0.05 && rmdir "$0/busy.${TMPDIR##*.}"' "$SHM"
  echo "$stderr" >&2
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.status == "completed" and .agents.completed == 8 and .agents.failed == 0' >/dev/null
  [ "$(sort -n "$SHM/ran" | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 " ]
}
