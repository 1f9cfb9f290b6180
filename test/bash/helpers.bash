# shellcheck shell=bash disable=SC2034 # BIN, OUT, MARK are used by the .bats files
# Shared bats helpers: a private shm root per test, and checks that a run
# leaves no process or directory behind.

BIN="$(cd "${BATS_TEST_DIRNAME}/../../bash" && pwd)"
# Test-only commands over the engine's libraries (agent-wrapper.sh, message-bus.sh).
TOOLS="${BATS_TEST_DIRNAME}/tools"

common_setup() {
  # A unique marker in paths and agent argv, to find leftovers of this test only.
  MARK="cfnbats-$$-${BATS_TEST_NUMBER}-${RANDOM}"
  SHM="/dev/shm/$MARK"
  mkdir -p "$SHM"
  export CFN_SHM_PATH="$SHM"
  OUT="$BATS_TEST_TMPDIR"
}

common_teardown() {
  local p
  for p in $(leftover_pids); do kill -KILL "$p" 2>/dev/null || true; done
  if mountpoint -q "$SHM/mnt" 2>/dev/null; then umount "$SHM/mnt" || true; fi
  rm -rf "$SHM"
}

# Pids of live (non-zombie) processes whose argv mentions this test's marker.
leftover_pids() {
  local f pid state cmd
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
    [[ $cmd == *"$MARK"* ]] || continue
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || continue
    [[ $state == Z ]] && continue
    echo "$pid"
  done
}

assert_no_leftovers() {
  local left
  left=$(leftover_pids)
  if [[ -n $left ]]; then
    echo "leftover processes:" >&2
    for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline" >&2; echo >&2; done
    return 1
  fi
}

# json_field FILE FILTER
jqf() { jq -r "$2" "$1"; }
