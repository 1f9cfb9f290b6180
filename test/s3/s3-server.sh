#!/usr/bin/env bash
# A real S3-compatible server for the results tests: Versity's S3 gateway
# (built by test/cluster/build.sh --s3) over a posix directory, with its own
# access/secret keys and buckets. `down` stops it and deletes its directory.
set -euo pipefail

S3_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly S3_SCRIPT_DIR
# Process bookkeeping (pid + start time, TERM then KILL) and port checks.
# shellcheck source=test/cluster/cluster.sh
source "$S3_SCRIPT_DIR/../cluster/cluster.sh"

readonly S3_COMPONENT=versitygw
readonly S3_REGION=us-east-1
readonly S3_AUTO_PORT_FIRST=19300
# SHA-256 of an empty body: the payload hash S3 wants signed (curl adds no x-amz-content-sha256).
readonly S3_EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

s3_usage() {
  cat <<USAGE
Usage: $(basename "$0") up|down|status --dir DIR [options]

  up      build the server if missing, start it on ADDRESS:PORT with a posix
          backend in DIR/data, wait until it answers a signed request, create
          the buckets; prints one JSON line: endpoint, region, accessKeyId,
          secretAccessKey, buckets, dir, pid
  down    stop the server (TERM, then KILL after 10 s) and delete DIR
  status  exit 0 when the server of DIR runs and answers, 3 otherwise

Options (up):
  --address ADDR     listen address (default 127.0.0.1; pods on the local node
                     reach the host at the bridge's gateway, 10.244.0.1)
  --port N|auto      port (default auto: the first free one from $S3_AUTO_PORT_FIRST)
  --bucket NAME      a bucket to create (repeatable; default "results")
  --access-key KEY   access key id (default: random)
  --secret-key KEY   secret access key (default: random)
State in DIR: data/ (the buckets), versitygw.pid, versitygw.log, server.json.
USAGE
}

# The first free port from $S3_AUTO_PORT_FIRST.
s3_free_port() {
  local p
  for (( p = S3_AUTO_PORT_FIRST; p < S3_AUTO_PORT_FIRST + 500; p++ )); do
    port_in_use "$p" || { printf '%s\n' "$p"; return; }
  done
  die "no free port in $S3_AUTO_PORT_FIRST-$(( S3_AUTO_PORT_FIRST + 499 ))"
}

# s3_request ACCESS SECRET METHOD URL: a SigV4-signed request without a body;
# prints the HTTP code.
s3_request() {
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "x-amz-content-sha256: $S3_EMPTY_SHA256" \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$1:$2" -X "$3" "$4"
}

# Returns 1 (with the reason logged) when the server exits or stays silent.
s3_wait_ready() {
  local dir=$1 endpoint=$2 access=$3 secret=$4 deadline=$(( SECONDS + 30 )) code=""
  until code=$(s3_request "$access" "$secret" GET "$endpoint/" 2>/dev/null) && [[ "$code" == 200 ]]; do
    if ! live_pid "$dir" "$S3_COMPONENT" >/dev/null; then
      log "versitygw exited: $(tail -n 20 "$dir/$S3_COMPONENT.log")"
      return 1
    fi
    if (( SECONDS >= deadline )); then
      log "versitygw did not answer a signed ListBuckets at $endpoint within 30 s (last HTTP code ${code:-none})"
      return 1
    fi
    sleep 0.2
  done
}

s3_create_buckets() {
  local endpoint=$1 access=$2 secret=$3 bucket code; shift 3
  for bucket in "$@"; do
    code=$(s3_request "$access" "$secret" PUT "$endpoint/$bucket") || code=none
    if [[ "$code" != 200 ]]; then
      log "creating bucket $bucket at $endpoint: HTTP $code"
      return 1
    fi
  done
}

s3_up() {
  local dir=$1 address=$2 port=$3 access=$4 secret=$5; shift 5
  local buckets=("$@") bin endpoint
  live_pid "$dir" "$S3_COMPONENT" >/dev/null && die "a server already runs for $dir (run down first)"
  bash "$S3_SCRIPT_DIR/../cluster/build.sh" --s3
  bin=$(bin_path versitygw)
  [[ "$port" == auto ]] && port=$(s3_free_port)
  port_in_use "$port" && die "port $port is in use"
  mkdir -p "$dir/data"
  endpoint="http://$address:$port"
  # The keys go through the environment, never the command line (ps shows that).
  ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
    start_component "$dir" "$S3_COMPONENT" "$bin" --port "$address:$port" --region "$S3_REGION" --quiet posix "$dir/data"
  # A server that started but is not usable is stopped and its directory removed: nothing left behind.
  if ! s3_wait_ready "$dir" "$endpoint" "$access" "$secret" || ! s3_create_buckets "$endpoint" "$access" "$secret" "${buckets[@]}"; then
    s3_down "$dir"
    die "versitygw at $endpoint did not come up (stopped, $dir removed)"
  fi
  jq -cn --arg endpoint "$endpoint" --arg region "$S3_REGION" --arg access "$access" --arg secret "$secret" \
    --arg dir "$dir" --argjson pid "$(live_pid "$dir" "$S3_COMPONENT")" \
    --args '{endpoint: $endpoint, region: $region, accessKeyId: $access, secretAccessKey: $secret, buckets: $ARGS.positional, dir: $dir, pid: $pid}' \
    "${buckets[@]}" | tee "$dir/server.json"
  log "versitygw $VERSITYGW_VERSION serves $endpoint (data in $dir/data)"
}

s3_down() {
  local dir=$1
  [[ -d "$dir" ]] || return 0
  stop_group "$dir" "$S3_COMPONENT"
  rm -rf "$dir"
}

s3_status() {
  local dir=$1 endpoint access secret code
  live_pid "$dir" "$S3_COMPONENT" >/dev/null || return 3
  endpoint=$(jq -r .endpoint "$dir/server.json") || return 3
  access=$(jq -r .accessKeyId "$dir/server.json")
  secret=$(jq -r .secretAccessKey "$dir/server.json")
  code=$(s3_request "$access" "$secret" GET "$endpoint/" 2>/dev/null) || return 3
  [[ "$code" == 200 ]] || return 3
  printf 'versitygw serves %s\n' "$endpoint"
}

s3_main() {
  local cmd=${1:-} dir="" address=127.0.0.1 port=auto access="" secret="" buckets=()
  (( $# > 0 )) && shift
  while (( $# > 0 )); do
    case "$1" in
      --dir) dir=${2:?--dir needs a value}; shift ;;
      --address) address=${2:?--address needs a value}; shift ;;
      --port) port=${2:?--port needs a value}; shift ;;
      --bucket) buckets+=("${2:?--bucket needs a value}"); shift ;;
      --access-key) access=${2:?--access-key needs a value}; shift ;;
      --secret-key) secret=${2:?--secret-key needs a value}; shift ;;
      -h|--help) s3_usage; return ;;
      *) s3_usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ -n "$dir" ]] || { s3_usage >&2; die "--dir is required"; }
  [[ "$port" == auto || "$port" =~ ^[0-9]+$ ]] || die "--port must be a number or auto, not: $port"
  dir=$(realpath -m "$dir")
  case "$cmd" in
    up)
      (( ${#buckets[@]} > 0 )) || buckets=(results)
      [[ -n "$access" ]] || access="AK$(openssl rand -hex 9 | tr 'a-f' 'A-F')"
      [[ -n "$secret" ]] || secret=$(openssl rand -hex 20)
      s3_up "$dir" "$address" "$port" "$access" "$secret" "${buckets[@]}"
      ;;
    down) s3_down "$dir" ;;
    status) s3_status "$dir" ;;
    -h|--help|"") s3_usage ;;
    *) s3_usage >&2; die "unknown command: $cmd" ;;
  esac
}

s3_main "$@"
