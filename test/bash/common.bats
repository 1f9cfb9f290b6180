#!/usr/bin/env bats
# lib/common.sh helpers that other tests exercise only by chance.

bats_require_minimum_version 1.5.0
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "regression: cfn_read_line_t never loses or glues a line at a timeout (reports were glued: 'R 622 0 1 110 0R 623 ...')" {
  run bash -c '
    source "$1/lib/common.sh"
    mkfifo "$2/f"
    { for i in $(seq 1 200); do printf "line-%d\n" "$i"; sleep 0.00$((i % 3)); done; } >"$2/f" &
    exec {fd}<"$2/f"
    got=() timeouts=0
    while :; do
      r=0
      cfn_read_line_t line "$fd" 0.001 || r=$?
      if ((r == 142)); then timeouts=$((timeouts + 1)); continue; fi
      ((r == 0)) || break
      got+=("$line")
    done
    printf "%s\n" "${got[@]}" >"$2/got"
    echo "timeouts=$timeouts"
  ' _ "$BIN" "$SHM"
  [ "$status" -eq 0 ]
  [[ $output =~ timeouts=[1-9] ]]
  diff <(seq 1 200 | sed 's/^/line-/') "$SHM/got"
}

@test "cfn_publish_once creates once and never overwrites, with or without loadables, and leaves no staging file" {
  local nl
  for nl in 0 1; do
    mkdir -p "$SHM/p$nl/.tmp"
    run --separate-stderr env CFN_NO_LOADABLES=$nl bash -c '
      source "$1/lib/common.sh"
      cfn_load_builtins
      cfn_publish_once "$2/r.json" first "$2/.tmp" || exit 10
      if cfn_publish_once "$2/r.json" second "$2/.tmp"; then exit 11; fi
      exit 0
    ' _ "$BIN" "$SHM/p$nl"
    [ "$status" -eq 0 ]
    [ "$(cat "$SHM/p$nl/r.json")" = first ]
    [ -z "$(ls -A "$SHM/p$nl/.tmp")" ]
    # A refused second publish is the caller's to report: nothing on stderr.
    [ -z "$stderr" ]
  done
}
