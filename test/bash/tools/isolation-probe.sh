#!/bin/sh
# An agent that tries what docs/security.md says it cannot do (test/bash/launcher.bats):
# one line per try, "<what>: denied" or "<what>: ALLOWED".
#   isolation-probe.sh look CHAN       the channel, the launcher's /proc entries,
#                                       other agents' tasks wherever this user reaches
#   isolation-probe.sh sibling SHARED  agent 0 looks for a sibling's task in its
#                                       /proc entries while the sibling runs (the
#                                       residual risk the document names)
mode=$1 dir=$2
launcher=$PPID
serve=$(cut -d' ' -f4 "/proc/$launcher/stat")

try() {
  what=$1
  shift
  if "$@" >/dev/null 2>&1; then echo "$what: ALLOWED"; else echo "$what: denied"; fi
}

# Tasks of the other agents of this run (PREFIX-<index>, PREFIX from this
# agent's own task: agents of other tests run beside it as the same user) this
# user can read in /proc: environments, command lines and the regular files
# (memfds) processes hold open.
prefix=${CFN_TASK%-*}
others() {
  {
    cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
    for f in /proc/[0-9]*/fd/*; do [ -f "$f" ] && cat "$f"; done
  } 2>/dev/null | tr '\0' '\n' | grep -aoE "$prefix-[0-9]+" | sort -u | grep -vx "$prefix-$AGENT_INDEX"
}

if [ "$mode" = look ]; then
  # shellcheck disable=SC2016 # the inner sh expands it
  try "list anything in the channel" sh -c '[ -n "$(ls -A "$1")" ]' _ "$dir"
  try "find the launcher's socket" test -e "$dir/launcher.sock"
  for p in "$launcher" "$serve"; do
    try "read the launcher's descriptors" ls "/proc/$p/fd"
    try "read the launcher's environment" cat "/proc/$p/environ"
    # shellcheck disable=SC2016 # the inner sh expands it
    try "open the launcher's memory" sh -c 'exec 3<"$1"' _ "/proc/$p/mem"
    try "read the launcher's memory map" cat "/proc/$p/maps"
  done
  found=$(others)
  echo "another agent's task: ${found:-none}"
  echo "my task: $(cat)"
  exit 0
fi

# sibling: agent 1 waits (its task in its environment and on its stdin) until agent 0 has looked.
if [ "$AGENT_INDEX" = 1 ]; then
  i=0
  while [ ! -e "$dir/looked" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  exit 0
fi
i=0 found=''
while [ -z "$found" ] && [ "$i" -lt 100 ]; do found=$(others); [ -n "$found" ] || sleep 0.05; i=$((i + 1)); done
: >"$dir/looked"
echo "a running sibling's task: ${found:-none}"
