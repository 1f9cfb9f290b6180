#!/usr/bin/env bash
# Test tool: the file message bus of the V2 engine (bash/lib/bus.sh, which the
# engine sources) as a command: init an inbox, publish, consume, depth.
set -euo pipefail
CFN_PROG=message-bus
# shellcheck source=bash/lib/bus.sh
source "${BASH_SOURCE[0]%/*}/../../../bash/lib/bus.sh"

usage() {
  cat <<'EOF'
Usage:
  message-bus.sh init    --inbox DIR
  message-bus.sh publish --inbox DIR --type result|batch
                         --from NAME --body JSON [--capacity N] [--publish-timeout S]
      Prints the message id. Exit 0, 1 (id collision or I/O error), 2 (invalid
      message), 75 (inbox full for longer than --publish-timeout: nothing dropped).
  message-bus.sh consume --inbox DIR [--count N] [--timeout S] [--latency-file F]
      Claims, validates and acks messages; prints one line per result
      ("result FROM INDEX STATUS", a batch gives one per item). Stops
      after N events or S seconds of silence (default 1). Malformed messages go
      to quarantine/; the counts are printed on stderr at the end.
  message-bus.sh depth   --inbox DIR
      Messages waiting in new/.

Environment: CFN_BUS_MODE=auto|inotify|poll (wake-up), CFN_NO_LOADABLES=1
(use external commands instead of bash loadable builtins).
EOF
}

INBOX='' TYPE='' FROM='' BODY='' COUNT=0 TIMEOUT=1 LATENCY_FILE=''

parse_opts() {
  while (($#)); do
    case $1 in
      --inbox) cfn_require_value "$1" $#; INBOX=$2; shift 2 ;;
      --type) cfn_require_value "$1" $#; TYPE=$2; shift 2 ;;
      --from) cfn_require_value "$1" $#; FROM=$2; shift 2 ;;
      --body) cfn_require_value "$1" $#; BODY=$2; shift 2 ;;
      --capacity) cfn_require_value "$1" $#; BUS_CAPACITY=$2; shift 2 ;;
      --publish-timeout) cfn_require_value "$1" $#; BUS_PUBLISH_TIMEOUT=$2; shift 2 ;;
      --count) cfn_require_value "$1" $#; COUNT=$2; shift 2 ;;
      --timeout) cfn_require_value "$1" $#; TIMEOUT=$2; shift 2 ;;
      --latency-file) cfn_require_value "$1" $#; LATENCY_FILE=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) cfn_die 2 "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ -n $INBOX ]] || cfn_die 2 "--inbox is required"
  cfn_is_pos_int "$BUS_CAPACITY" || cfn_die 2 "--capacity must be >= 1"
  cfn_is_number "$BUS_PUBLISH_TIMEOUT" || cfn_die 2 "--publish-timeout must be a number of seconds"
  cfn_is_uint "$COUNT" || cfn_die 2 "--count must be a number"
  cfn_is_number "$TIMEOUT" || cfn_die 2 "--timeout must be a number of seconds"
}

# The writer checks what it sends with the reader's own parser.
validate_outgoing() {
  local probe
  printf -v probe '{"id":"1-1-1","type":"%s","from":"%s","ts":1,"body":%s}' "$TYPE" "$FROM" "$BODY"
  bus__parse "$probe" || return 1
  case $TYPE in
    result) bus__result_fields "$BODY" ;;
    batch) local -a b_c=() b_f=() && bus__batch_fields "$BODY" ;;
  esac
}

cmd_publish() {
  validate_outgoing || cfn_die 2 "invalid message: type '$TYPE', from '$FROM', body '$BODY'"
  [[ -d $INBOX/new && -d $INBOX/tmp ]] || cfn_die 1 "$INBOX is not an inbox (run init)"
  local rc=0
  bus_publish "$INBOX" "$TYPE" "$FROM" "$BODY" || rc=$?
  ((rc == 0)) || exit "$rc"
  printf '%s\n' "$BUS_LAST_ID"
}

EVENTS=0
print_event() {
  printf '%s\n' "$*"
  EVENTS=$((EVENTS + 1))
}

cmd_consume() {
  local idle_us=0 start now limit_us
  cfn_seconds_us limit_us "$TIMEOUT"
  bus_consumer_open "$INBOX" "$LATENCY_FILE"
  cfn_now_us start
  while :; do
    bus_drain print_event
    ((COUNT > 0 && EVENTS >= COUNT)) && break
    cfn_now_us now
    if ((BUS_CONSUMED > 0)); then
      start=$now
      continue
    fi
    idle_us=$((now - start))
    ((idle_us >= limit_us)) && break
    bus_wait 0.05
  done
  bus_consumer_close_watch
  cfn_log "consumed=$EVENTS quarantined=$BUS_QUARANTINED"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    -h | --help) usage; exit 0 ;;
    init | publish | consume | depth) ;;
    '') usage >&2; exit 2 ;;
    *) cfn_die 2 "unknown command: $cmd (see --help)" ;;
  esac
  parse_opts "$@"
  cfn_load_builtins
  case $cmd in
    init) bus_init "$INBOX" ;;
    publish) cmd_publish ;;
    consume) cmd_consume ;;
    depth)
      local d
      bus_depth d "$INBOX"
      printf '%s\n' "$d"
      ;;
  esac
}

main "$@"
