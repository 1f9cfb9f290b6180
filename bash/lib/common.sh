# shellcheck shell=bash disable=SC2034 # globals shared between sourced files
# Shared helpers of the V2 engine: loadable builtins, clock, JSON strings,
# atomic files, index ranges. Sourced by every script; defines functions only
# (plus a few constants), so sourcing it twice is harmless.

[[ -n ${_CFN_COMMON_LOADED:-} ]] && return 0
_CFN_COMMON_LOADED=1
# extglob: message validation uses +(...) / @(...) patterns.
shopt -s extglob
# Swarm state is private to the user running it (dirs 0700, files 0600).
umask 077

# Without a fork (every script sources this): relative to $PWD when relative.
CFN_LIB_DIR=${BASH_SOURCE[0]%/*}
[[ $CFN_LIB_DIR == /* ]] || CFN_LIB_DIR=$PWD/$CFN_LIB_DIR
CFN_BIN_DIR=${CFN_LIB_DIR%/lib}
CFN_BUILTINS_DIR=${CFN_BUILTINS_DIR:-/usr/lib/bash}
CFN_SWARM_ID_RE='^[a-z0-9][a-z0-9._-]{0,62}$'
CFN_HAVE_STAT=0
# Largest environment string exec accepts (MAX_ARG_STRLEN is 128 KiB): a task
# or objective beyond it reaches the agent by stdin and file only.
CFN_TASK_ENV_MAX=131000

# The agents get the caller's locale back; the engine itself works on bytes.
if [[ -v LC_ALL ]]; then CFN_ORIG_LC_ALL=$LC_ALL; else CFN_ORIG_LC_ALL=; fi
CFN_ORIG_LC_ALL_SET=${LC_ALL+1}
LC_ALL=C

# Printable ASCII, tab and newline: anything else takes the slow JSON path.
_CFN_NONPRINT_RE=$'[^\t\n -~]'

cfn_log() { printf '%s: %s\n' "${CFN_PROG:-cfn}" "$*" >&2; }

# cfn_die CODE MESSAGE...
cfn_die() {
  local code=$1
  shift
  cfn_log "$*"
  exit "$code"
}

# mkdir -p that tolerates a concurrent creator: the loadable mkdir builtin's -p
# fails with EEXIST when another process makes the same directory meanwhile.
cfn_mkdirs() {
  mkdir -p "$@" 2>/dev/null || mkdir -p "$@"
}

# Loads Debian's bash-builtins loadables (no fork per ln/unlink/stat/sleep);
# every caller has a fallback on the external command when one is missing.
cfn_load_builtins() {
  CFN_HAVE_STAT=0
  [[ ${CFN_NO_LOADABLES:-0} == 1 ]] && return 0
  local b
  for b in ln unlink mkdir mkfifo sleep rm mktemp; do
    if [[ -r $CFN_BUILTINS_DIR/$b ]]; then
      enable -f "$CFN_BUILTINS_DIR/$b" "$b" 2>/dev/null || true
    fi
  done
  if [[ -r $CFN_BUILTINS_DIR/stat ]] && enable -f "$CFN_BUILTINS_DIR/stat" stat 2>/dev/null; then
    CFN_HAVE_STAT=1
  fi
  return 0
}

# cfn_now_us VAR: wall clock in microseconds, without a fork.
cfn_now_us() {
  local t=$EPOCHREALTIME
  printf -v "$1" '%s' "${t/./}"
}

# cfn_iso VAR MICROSECONDS: ISO-8601 UTC with milliseconds.
cfn_iso() {
  local TZ=UTC us=$2
  printf -v "$1" '%(%Y-%m-%dT%H:%M:%S)T.%03dZ' "$((us / 1000000))" "$(((us / 1000) % 1000))"
}

# cfn_sleep_ms MS
cfn_sleep_ms() {
  local ms=$1 s
  printf -v s '%d.%03d' "$((ms / 1000))" "$((ms % 1000))"
  sleep "$s"
}

# cfn_json_str VAR TEXT: VAR <- TEXT as a JSON string literal. Printable ASCII
# is escaped in pure bash; anything else goes through jq -R, which turns invalid
# UTF-8 into U+FFFD and escapes control characters.
cfn_json_str() {
  local s=$2
  if [[ $s =~ $_CFN_NONPRINT_RE ]]; then
    local j
    j=$(printf '%s' "$s" | jq -Rs .) || j='"<unencodable>"'
    printf -v "$1" '%s' "$j"
    return 0
  fi
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  printf -v "$1" '"%s"' "$s"
}

# cfn_file_size VAR FILE
cfn_file_size() {
  if ((CFN_HAVE_STAT)); then
    local -A _st=()
    stat -A _st "$2" 2>/dev/null || return 1
    printf -v "$1" '%s' "${_st[size]}"
  else
    local n
    n=$(wc -c <"$2") || return 1
    printf -v "$1" '%s' "$((n))"
  fi
}

# cfn_read_line_t VAR FD SECONDS: one line from FD (a pipe or FIFO whose
# writers write whole lines at once) within SECONDS: 0 read, 1 end of file,
# 142 timeout with nothing consumed. Only the first byte waits under the
# timeout: `read -t` on a whole line can report a timeout after it consumed
# the line (a report or registration lost, or glued to the next one).
cfn_read_line_t() {
  local _c='' _rest='' _r=0
  IFS='' read -r -N 1 -t "$3" -u "$2" _c || _r=$?
  if [[ -z $_c ]]; then
    ((_r > 128)) && return 142
    return 1
  fi
  if [[ $_c != $'\n' ]]; then
    IFS='' read -r -u "$2" _rest || true
  fi
  printf -v "$1" '%s' "${_c%$'\n'}$_rest"
}

# cfn_launcher: CFN_LAUNCHER <- the agent launcher (bash/native/launcher, built
# by scripts/build-native.sh). Returns 1 with CFN_LAUNCHER_WHY when it is not
# built or does not run here.
cfn_launcher() {
  CFN_LAUNCHER=$CFN_BIN_DIR/native/launcher CFN_LAUNCHER_WHY=''
  if [[ ! -x $CFN_LAUNCHER ]]; then
    CFN_LAUNCHER_WHY="the agent launcher $CFN_LAUNCHER is not built (scripts/build-native.sh needs a C compiler)"
    return 1
  fi
}

# cfn_read_file VAR FILE: whole file (no NUL bytes) into VAR, without a fork.
cfn_read_file() {
  local _c=
  IFS='' read -r -d '' _c <"$2" || true
  printf -v "$1" '%s' "$_c"
}

# cfn_write_replace PATH CONTENT: atomic replace (temp file in the same dir + rename).
cfn_write_replace() {
  local path=$1 tmp="${1%/*}/.${1##*/}.$BASHPID.tmp"
  printf '%s\n' "$2" >"$tmp" && mv -f -- "$tmp" "$path"
}

# cfn_write_new PATH CONTENT: like cfn_write_replace, without the mv exec when
# PATH does not exist yet (the common case: a file written once at start).
cfn_write_new() {
  cfn_publish_once "$1" "$2" "${1%/*}" 2>/dev/null || cfn_write_replace "$1" "$2"
}

# cfn_publish_once PATH CONTENT TMPDIR: atomic create that never overwrites:
# write a temp file, hard-link it to PATH (fails when PATH exists), unlink it.
cfn_publish_once() {
  local path=$1 tmp="$3/${1##*/}.$BASHPID"
  printf '%s\n' "$2" >"$tmp" || return 1
  # Tested first, so the usual ln needs no stderr redirection (its saving and
  # restoring of fd 2 cost more than the test); a lost race still fails ln.
  if [[ ! -e $path ]] && ln -- "$tmp" "$path"; then
    unlink "$tmp"
    return 0
  fi
  unlink "$tmp"
  return 1
}

# cfn_parse_indexes ASSOC_NAME SPEC END [START]: "0-9,15" -> ASSOC[i]=1; returns
# 1 with a message on a malformed spec or an index outside [START,END) (START
# default 0).
cfn_parse_indexes() {
  local -n _set=$1
  local spec=$2 total=$3 start=${4:-0} part a b i
  [[ -z $spec ]] && return 0
  if ! [[ $spec =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; then
    cfn_log "invalid index list: $spec (expected e.g. 0-9,15)"
    return 1
  fi
  local IFS=,
  for part in $spec; do
    a=${part%-*} b=${part#*-}
    a=$((10#$a)) b=$((10#$b))
    if ((a > b || a < start || b >= total)); then
      cfn_log "index range $part outside $start..$((total - 1))"
      return 1
    fi
    # shellcheck disable=SC2004 # assoc array: the key must be expanded
    for ((i = a; i <= b; i++)); do _set[$i]=1; done
  done
}

# cfn_parse_range START_VAR END_VAR SPEC AGENTS: "START-END" (END exclusive,
# 0 <= START < END <= AGENTS) -> the two variables; an empty SPEC is the whole
# swarm, 0 and AGENTS. Returns 1 with a message on anything else.
cfn_parse_range() {
  local spec=$3 agents=$4 a b
  if [[ -z $spec ]]; then
    a=0 b=$agents
  elif [[ $spec =~ ^([0-9]{1,9})-([0-9]{1,9})$ ]]; then
    a=$((10#${BASH_REMATCH[1]})) b=$((10#${BASH_REMATCH[2]}))
    if ((a >= b || b > agents)); then
      cfn_log "index range $spec: expected START-END with 0 <= START < END <= $agents (END exclusive)"
      return 1
    fi
  else
    cfn_log "invalid index range '$spec' (expected START-END, END exclusive: 100-200 runs agents 100..199)"
    return 1
  fi
  printf -v "$1" '%d' "$a"
  printf -v "$2" '%d' "$b"
}

# cfn_pid_alive PID
cfn_pid_alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# cfn_pid_running PID: alive and not a zombie (an orphan's zombie may wait long
# for a busy or minimal init to reap it).
cfn_pid_running() {
  local stat=''
  cfn_pid_alive "$1" || return 1
  { IFS= read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# cfn_group_alive PGID: true while a live (non-zombie) process is in the group.
# Reads /proc instead of kill -0, which also counts unreaped zombies.
cfn_group_alive() {
  local pgid=$1 f stat rest state
  for f in /proc/[0-9]*/stat; do
    stat=''
    { IFS= read -r stat <"$f"; } 2>/dev/null || continue
    # "pid (comm) state ppid pgrp ...": comm may hold spaces, so cut after ") ".
    rest=${stat##*) }
    state=${rest%% *}
    rest=${rest#* }
    rest=${rest#* }
    [[ ${rest%% *} == "$pgid" && $state != Z ]] && return 0
  done
  return 1
}

# Every CLI parses its options in one shape:
#   while (($#)); do
#     case $1 in
#       --opt) cfn_require_value "$1" $#; VAR=$2; shift 2 ;;
#       --flag) FLAG=1; shift ;;
#       -h | --help) usage; exit 0 ;;
#       *) cfn_die 2 "unknown option: $1 (see --help)" ;;
#     esac
#   done
# then checks each value with `cfn_die 2 "--opt must ..."`. A CLI with
# commands reads the command first: none is the usage on stderr (exit 2), an
# unknown one `cfn_die 2 "unknown command: ..."`.

# cfn_require_value OPTION ARGC: usage error when an option lacks its value.
cfn_require_value() {
  (($2 >= 2)) || cfn_die 2 "option $1 needs a value"
}

# cfn_seconds_us VAR SECONDS: "1.5" -> 1500000.
cfn_seconds_us() {
  local s=$2 frac=0
  if [[ $s == *.* ]]; then
    frac=${s#*.}000000
    frac=$((10#${frac:0:6}))
    s=${s%%.*}
  fi
  printf -v "$1" '%s' "$((10#${s:-0} * 1000000 + frac))"
}

cfn_is_pos_int() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }
cfn_is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
cfn_is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }

# cfn_is_exit_code_list LIST: empty, or exit codes 1-255 separated by commas
# ("2,3"), at most 255 of them.
cfn_is_exit_code_list() {
  [[ -z $1 ]] && return 0
  [[ $1 =~ ^[0-9]{1,3}(,[0-9]{1,3}){0,254}$ ]] || return 1
  local c IFS=,
  for c in $1; do ((10#$c >= 1 && 10#$c <= 255)) || return 1; done
}
