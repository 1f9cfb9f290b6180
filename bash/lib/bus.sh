# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# File message bus on tmpfs (docs/v2-engine.md "Messages"): collision-free ids,
# publish by hard link (never overwrite), bounded inboxes with push back,
# exclusive claim + per-message ack, strict validation with quarantine,
# inotify wake-up with a polling fallback. One consumer inbox per process.
# shellcheck source=bash/lib/common.sh
source "${BASH_SOURCE[0]%/*}/common.sh"

BUS_SEQ=${BUS_SEQ:-0}
BUS_CAPACITY=${CFN_INBOX_CAPACITY:-4096}
BUS_PUBLISH_TIMEOUT=${CFN_PUBLISH_TIMEOUT:-30}
BUS_POLL_S=0.01
BUS_DEPTH_FAST=${BUS_DEPTH_FAST:-}
# Consumer state.
BUS_DIR=''
BUS_WATCH_FD=''
BUS_WATCH_PID=''
BUS_LAT_FD='' BUS_LAT_BUF=''
BUS_LOCK_FD=''
BUS_LEFTOVERS=()
BUS_QUARANTINED=0
BUS_CONSUMED=0
# 1: a batch is handed over in one call, `HANDLER results FROM`, with its
# indexes in the arrays b_c (completed) and b_f (failed) (bash's dynamic
# scope): one call per batch, not one per result.
BUS_BULK=${BUS_BULK:-0}


# bus_init INBOX_DIR: creates the inbox layout (idempotent).
bus_init() {
  cfn_mkdirs "$1/tmp" "$1/new" "$1/claimed" "$1/quarantine"
  # Probe once here, in the parent, rather than in every forked agent.
  [[ -n $BUS_DEPTH_FAST ]] || bus__probe_depth "$1/new"
}

# Decides once per process tree whether a directory's st_size gives its entry
# count (tmpfs: (entries + 2) * 20), which makes depth O(1) without a fork.
bus__probe_depth() {
  BUS_DEPTH_FAST=0
  ((CFN_HAVE_STAT)) || return 0
  local dir=$1 mnt type best=-1 fstype=
  while read -r _ mnt type _; do
    if [[ $dir == "$mnt" || $dir == "$mnt"/* || $mnt == / ]] && ((${#mnt} > best)); then
      best=${#mnt} fstype=$type
    fi
  done </proc/self/mounts
  [[ $fstype == tmpfs ]] && BUS_DEPTH_FAST=1
  return 0
}

# bus_depth VAR INBOX_DIR: number of messages waiting in new/.
bus_depth() {
  local dir=$2/new
  [[ -n $BUS_DEPTH_FAST ]] || bus__probe_depth "$dir"
  if ((BUS_DEPTH_FAST)); then
    local -A _st=()
    stat -A _st "$dir" 2>/dev/null || return 1
    printf -v "$1" '%s' "$((_st[size] / 20 - 2))"
    return 0
  fi
  local -a _f=("$dir"/*)
  [[ -e ${_f[0]} ]] || _f=()
  printf -v "$1" '%s' "${#_f[@]}"
}

# Push back: waits (1 ms doubling to 50 ms) while the inbox is full; returns 75
# after BUS_PUBLISH_TIMEOUT seconds rather than dropping anything.
bus__wait_capacity() {
  local dir=$1 depth start now ms=1
  bus_depth depth "$dir" || return 1
  ((depth < BUS_CAPACITY)) && return 0
  cfn_now_us start
  while ((depth >= BUS_CAPACITY)); do
    cfn_now_us now
    if (((now - start) / 1000000 >= ${BUS_PUBLISH_TIMEOUT%.*})); then
      cfn_log "publish timed out: inbox $dir full ($depth >= $BUS_CAPACITY)"
      return 75
    fi
    cfn_sleep_ms "$ms"
    ((ms < 50)) && ms=$((ms * 2))
    bus_depth depth "$dir" || return 1
  done
  return 0
}

# bus_publish INBOX_DIR TYPE FROM BODY_JSON: 0, 1 (error/collision) or 75 (full).
bus_publish() {
  local dir=$1 type=$2 from=$3 body=$4 now id msg tmp rc=0
  bus__wait_capacity "$dir" || rc=$?
  ((rc == 0)) || return "$rc"
  cfn_now_us now
  BUS_SEQ=$((BUS_SEQ + 1))
  id="$now-$BASHPID-$BUS_SEQ"
  printf -v msg '{"id":"%s","type":"%s","from":"%s","ts":%s,"body":%s}' "$id" "$type" "$from" "$now" "$body"
  tmp=$dir/tmp/$id
  printf '%s\n' "$msg" >"$tmp" || return 1
  if ! ln -- "$tmp" "$dir/new/$id.json" 2>/dev/null; then
    unlink "$tmp" 2>/dev/null || true
    cfn_log "message id collision refused: $id in $dir"
    return 1
  fi
  unlink "$tmp" 2>/dev/null || true
  BUS_LAST_ID=$id
}

# bus_consumer_open INBOX_DIR [LATENCY_FILE]: become the consumer of an inbox.
bus_consumer_open() {
  BUS_DIR=$1
  bus_init "$BUS_DIR"
  if [[ -n ${2:-} ]]; then
    exec {BUS_LAT_FD}>>"$2"
  fi
  bus__watch_start
  bus__lock
}

# Replay of claimed/ leftovers (messages a crashed consumer claimed but never
# acked) must never take a live consumer's in-flight claim. Every consumer holds
# a shared flock on inbox/.lock for its life; a consumer replays only when it
# gets the lock exclusively, i.e. no other consumer is alive, snapshots
# claimed/ then, and steps down to shared once it replayed them. Consumers that
# start meanwhile wait for the shared lock before claiming, so the snapshot
# holds dead claims only.
# (A primary that merely held the lock first once replayed the in-flight claim
# of a consumer that started before it: 4 concurrent consumers handled a
# message twice.) The lock dies with its holder (agents forked later close it).
bus__lock() {
  BUS_LEFTOVERS=()
  if command -v flock >/dev/null 2>&1; then
    exec {BUS_LOCK_FD}>>"$BUS_DIR/.lock"
    if ! flock -n -x "$BUS_LOCK_FD"; then
      flock -s -w 30 "$BUS_LOCK_FD" || cfn_log "no shared lock on $BUS_DIR/.lock after 30 s: consuming without it"
      return 0
    fi
  fi
  BUS_LEFTOVERS=("$BUS_DIR"/claimed/*.json)
  [[ -e ${BUS_LEFTOVERS[0]} ]] || BUS_LEFTOVERS=()
  # With leftovers, the lock stays exclusive until bus_drain has replayed them:
  # flock's step-down is not atomic, and a consumer that took the lock in that
  # gap would snapshot (and replay) the same leftovers.
  ((${#BUS_LEFTOVERS[@]})) || bus__lock_shared
  return 0
}

bus__lock_shared() {
  if [[ -n $BUS_LOCK_FD ]]; then flock -s "$BUS_LOCK_FD"; fi
  return 0
}

# Starts inotifywait -m on new/ (CFN_BUS_MODE=auto|inotify|poll) and waits
# until its watch is in place, so no event between start and first scan is lost.
bus__watch_start() {
  local mode=${CFN_BUS_MODE:-auto} line
  BUS_WATCH_FD='' BUS_WATCH_PID=''
  [[ $mode == poll ]] && return 0
  if ! command -v inotifywait >/dev/null 2>&1; then
    [[ $mode == inotify ]] && cfn_log "CFN_BUS_MODE=inotify but inotifywait is missing: polling"
    return 0
  fi
  coproc BUSW { exec inotifywait -m -e create -e moved_to --format x "$BUS_DIR/new" 2>&1; }
  BUS_WATCH_FD=${BUSW[0]}
  BUS_WATCH_PID=$BUSW_PID
  while IFS= read -r -t 5 -u "$BUS_WATCH_FD" line; do
    [[ $line == 'Watches established.' ]] && return 0
  done
  cfn_log "inotifywait did not start: polling"
  bus_consumer_close_watch
}

bus_consumer_close_watch() {
  if [[ -n $BUS_WATCH_PID ]]; then
    kill "$BUS_WATCH_PID" 2>/dev/null || true
    wait "$BUS_WATCH_PID" 2>/dev/null || true
  fi
  if [[ -n $BUS_WATCH_FD ]]; then exec {BUS_WATCH_FD}<&- || true; fi
  BUS_WATCH_FD='' BUS_WATCH_PID=''
}

# bus_wait SECONDS: returns when a message may have arrived or after SECONDS.
bus_wait() {
  local t=$1 rc=0 _x
  if [[ -z $BUS_WATCH_FD ]]; then
    sleep "$BUS_POLL_S"
    return 0
  fi
  IFS='' read -r -t "$t" -u "$BUS_WATCH_FD" _x || rc=$?
  if ((rc > 0 && rc <= 128)); then
    cfn_log "inotifywait ended: polling"
    bus_consumer_close_watch
    return 0
  fi
  while IFS= read -r -t 0 -u "$BUS_WATCH_FD" _x 2>/dev/null && IFS= read -r -u "$BUS_WATCH_FD" _x; do :; done
  return 0
}

# bus_drain HANDLER: claims, validates and handles every message in new/ (the
# first call also replays claimed/ leftovers of a crashed consumer). HANDLER is
# called as: HANDLER result FROM INDEX STATUS (a batch calls it once per
# result, or once as `results FROM` with BUS_BULK=1).
bus_drain() {
  local handler=$1 f name
  BUS_CONSUMED=0
  if ((${#BUS_LEFTOVERS[@]})); then
    for f in "${BUS_LEFTOVERS[@]}"; do
      [[ -e $f ]] && bus__handle "$f" "$handler"
    done
    BUS_LEFTOVERS=()
    bus__lock_shared
  fi
  for f in "$BUS_DIR"/new/*.json; do
    [[ -e $f ]] || continue
    name=${f##*/}
    ln -- "$f" "$BUS_DIR/claimed/$name" 2>/dev/null || continue
    unlink "$f" 2>/dev/null || true
    bus__handle "$BUS_DIR/claimed/$name" "$handler"
  done
  # Latencies in one write per drain, not one redirection per message.
  if [[ -n $BUS_LAT_BUF ]]; then
    printf '%s' "$BUS_LAT_BUF" >&"$BUS_LAT_FD"
    BUS_LAT_BUF=''
  fi
}

bus__quarantine() {
  local path=$1
  ln -- "$path" "$BUS_DIR/quarantine/${path##*/}" 2>/dev/null || true
  unlink "$path" 2>/dev/null || true
  BUS_QUARANTINED=$((BUS_QUARANTINED + 1))
  cfn_log "quarantined malformed message ${path##*/}"
}

# bus__parse TEXT: strict parse of one canonical message line into MSG_ID
# MSG_TYPE MSG_FROM MSG_TS MSG_BODY; returns 1 on any deviation. Each header
# field is read by its name, and the header must then be rebuilt byte for
# byte from the four values: a field missing, repeated, unknown or out of
# order, a stray quote or brace, fails that.
bus__parse() {
  local h=${1%%,\"body\":*} c kv IFS=,
  # Only header characters: no glob, no extglob opener, before it is split.
  [[ $h != "$1" && $h != *[!A-Za-z0-9._:,{}\"-]* ]] || return 1
  MSG_ID='' MSG_TYPE='' MSG_FROM='' MSG_TS=''
  # Without its quotes and brace the header is name:value,...
  # shellcheck disable=SC2086 # split on commas on purpose; no glob character
  for kv in ${h//[\"\{]/}; do
    case $kv in
      id:*) MSG_ID=${kv#id:} ;;
      type:*) MSG_TYPE=${kv#type:} ;;
      from:*) MSG_FROM=${kv#from:} ;;
      ts:*) MSG_TS=${kv#ts:} ;;
      *) return 1 ;;
    esac
  done
  printf -v c '{"id":"%s","type":"%s","from":"%s","ts":%s' "$MSG_ID" "$MSG_TYPE" "$MSG_FROM" "$MSG_TS"
  [[ $c == "$h" && $MSG_ID == +([0-9])-+([0-9])-+([0-9]) && $MSG_TYPE == @(result|batch) &&
    -n $MSG_FROM && ${#MSG_FROM} -le 64 && $MSG_FROM != *[!A-Za-z0-9._:-]* &&
    -n $MSG_TS && ${#MSG_TS} -le 20 && $MSG_TS != *[!0-9]* ]] || return 1
  MSG_BODY=${1#"$h,\"body\":"}
  [[ $MSG_BODY == '{'*'}}' ]] || return 1
  MSG_BODY=${MSG_BODY%\}}
}

# bus__result_fields BODY: one result object -> R_INDEX R_STATUS (1 if malformed
# or agentId and index disagree). Plain expansions and [!0-9] tests, cheaper
# than an extglob pattern over the whole object.
bus__result_fields() {
  local b=$1 a
  [[ $b == '{"agentId":"agent-'*'"}' ]] || return 1
  b=${b:18}
  a=${b%%\"*}
  b=${b:${#a}}
  [[ $b == '","index":'* ]] || return 1
  b=${b:10}
  R_INDEX=${b%%,*}
  b=${b:${#R_INDEX}}
  [[ $b == ',"status":"'* ]] || return 1
  R_STATUS=${b:11:${#b}-13}
  [[ ($R_STATUS == completed || $R_STATUS == failed) && $a == "$R_INDEX" && -n $a && $a != *[!0-9]* &&
    ($a == 0 || $a != 0*) && ${#a} -le 9 ]]
}

# bus__batch_fields BODY: a batch body, {"completed":[I,...],"failed":[I,...]},
# -> b_c and b_f (the caller's arrays); 1 if malformed. A bash operation costs
# about the same whatever its size, so the whole body is checked in a few: the
# canonical body rebuilt from the two lists must give it back byte for byte,
# and the lists may hold only indexes (digits, no leading zero, at most 9,
# no empty item).
bus__batch_fields() {
  local b=$1 c f s IFS=,
  [[ $b == '{"completed":['*'],"failed":['*']}' ]] || return 1
  c=${b:14}
  c=${c%%]*}
  f=${b:26+${#c}}
  f=${f%']}'}
  s=${c:+,$c}${f:+,$f},
  [[ $b == "{\"completed\":[$c],\"failed\":[$f]}" && $s != *[!0-9,]* && $s != *,,* && $s != *,0[0-9]* &&
    $s != *[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]* ]] || return 1
  # shellcheck disable=SC2206 # split on commas on purpose: digits only, no glob
  b_c+=($c) b_f+=($f)
}

bus__handle() {
  local path=$1 handler=$2 text body item now
  cfn_read_file text "$path"
  if [[ $text != *$'\n' ]] || ! bus__parse "${text%$'\n'}" || [[ ${path##*/} != "$MSG_ID.json" ]]; then
    bus__quarantine "$path"
    return 0
  fi
  body=$MSG_BODY
  case $MSG_TYPE in
    result)
      if ! bus__result_fields "$body"; then
        bus__quarantine "$path"
        return 0
      fi
      "$handler" result "$MSG_FROM" "$R_INDEX" "$R_STATUS"
      ;;
    batch)
      # Validated whole before any result is handled: all or nothing.
      local -a b_c=() b_f=()
      if ! bus__batch_fields "$body"; then
        bus__quarantine "$path"
        return 0
      fi
      if ((BUS_BULK)); then
        "$handler" results "$MSG_FROM"
      else
        for item in "${b_c[@]}"; do "$handler" result "$MSG_FROM" "$item" completed; done
        for item in "${b_f[@]}"; do "$handler" result "$MSG_FROM" "$item" failed; done
      fi
      ;;
  esac
  if [[ -n $BUS_LAT_FD ]]; then
    now=${EPOCHREALTIME/./}
    BUS_LAT_BUF+="$((now - MSG_TS))"$'\n'
  fi
  BUS_CONSUMED=$((BUS_CONSUMED + 1))
  unlink "$path" 2>/dev/null || true
}
