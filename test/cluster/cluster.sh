#!/usr/bin/env bash
# A local Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager) on loopback, with generated certificates, RBAC and
# service-account keys. Several named instances on different ports may run.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT
# shellcheck source=test/cluster/lib.sh
source "$SCRIPT_DIR/lib.sh"

readonly DEFAULT_PORT_BASE=17440
readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager)
# Node lifecycle of a multi-node instance, in test time: NotReady after the
# grace period without a heartbeat (kubelets there renew their Lease every
# 2.5 s), pods evicted after the default not-ready/unreachable tolerations.
# A single-node instance keeps Kubernetes' defaults (50 s, 300 s).
readonly NODE_GRACE_S=20
readonly NODE_TOLERATION_S=15

usage() {
  cat <<USAGE
Usage: $(basename "$0") COMMAND [--name NAME] [--port-base N|auto] [--with-node] [--nodes N] [--json]

Commands:
  up        build missing binaries, start the instance, wait for /readyz
  down      stop the instance's processes and delete its state directory
  status    show whether the instance's processes run and /readyz answers
            (exit 0 when ready, 3 otherwise; --json for a machine-readable form)
  kubeconfig  print the instance's admin kubeconfig path

Options:
  --name NAME       instance name ([a-z0-9-], default "default")
  --with-node       (up) also start a real node: containerd, kubelet,
                    kube-scheduler, bridge CNI, local images (node.sh; root)
  --nodes N         (up) N real nodes (implies --with-node): 1 on the host
                    network (default), 2..15 each in its own network
                    namespace; with 2 or more, a lost node is NotReady after
                    ${NODE_GRACE_S}s and its pods evicted ${NODE_TOLERATION_S}s later
  --port-base N     first of 4 loopback ports (apiserver, etcd client, etcd
                    peer, controller-manager); default $DEFAULT_PORT_BASE for
                    "default"; "auto" picks free ports. Stored at "up".

State: \$SWARM_CLUSTER_STATE_DIR (default $REPO_ROOT/.local) /cluster for
"default", /cluster-NAME otherwise; the admin kubeconfig is its "kubeconfig".
\$CFN_APISERVER_PROFILING=true serves the API server's /debug/pprof (off by
default), e.g. kubectl get --raw '/debug/pprof/profile?seconds=15'.
USAGE
}

NAME=default
PORT_BASE=""
UP_OK=1
JSON=0
WITH_NODE=0
NODES=1

state_dir() {
  local root="${SWARM_CLUSTER_STATE_DIR:-$REPO_ROOT/.local}"
  if [[ "$NAME" == default ]]; then
    printf '%s\n' "$root/cluster"
  else
    printf '%s\n' "$root/cluster-$NAME"
  fi
}

port_in_use() {
  [[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]]
}

# First base (step 10) from 20000 whose 4 ports are all free.
auto_port_base() {
  local base p free
  for (( base = 20000; base < 30000; base += 10 )); do
    free=1
    for (( p = base; p < base + 4; p++ )); do
      if port_in_use "$p"; then free=0; break; fi
    done
    (( free )) && { printf '%s\n' "$base"; return; }
  done
  die "no free port range found in 20000-30000"
}

# --- process bookkeeping: pid plus start time, so a recycled pid is never hit.

proc_start_time() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # Field 22 of /proc/PID/stat is the 20th after "comm) state".
  read -r -a fields <<<"$stat"
  # A zombie has exited already (its ports and files are released).
  [[ "${fields[0]}" != Z ]] || return 1
  printf '%s\n' "${fields[19]}"
}

# Prints the pid of component $2 in dir $1 when that exact process still runs.
live_pid() {
  local file="$1/$2.pid" pid started now
  [[ -f "$file" ]] || return 1
  read -r pid started <"$file" || return 1
  now=$(proc_start_time "$pid") || return 1
  [[ "$now" == "$started" ]] || return 1
  printf '%s\n' "$pid"
}

# Starts "$@" in its own session, logging to dir/name.log, recording its pid.
start_component() {
  local dir=$1 name=$2; shift 2
  # fd 8 (the up lock) is closed so the long-lived process does not hold it.
  setsid "$@" >"$dir/$name.log" 2>&1 </dev/null 8>&- &
  local pid=$!
  local started
  started=$(proc_start_time "$pid") || die "$name exited at once: $(tail -n 20 "$dir/$name.log")"
  printf '%s %s\n' "$pid" "$started" >"$dir/$name.pid.tmp"
  command mv -f "$dir/$name.pid.tmp" "$dir/$name.pid"
}

# stop_group DIR COMPONENT...: TERM to all at once, up to 10 s grace, then
# KILL. Only pids recorded by `up` (and still that process) are signalled.
stop_group() {
  local dir=$1 comp pid i running=(); shift
  for comp in "$@"; do
    if pid=$(live_pid "$dir" "$comp"); then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for (( i = 0; i < 150; i++ )); do
    running=()
    for comp in "$@"; do
      if live_pid "$dir" "$comp" >/dev/null; then running+=("$comp"); fi
    done
    (( ${#running[@]} == 0 )) && break
    if (( i == 100 )); then
      for comp in "${running[@]}"; do
        pid=$(live_pid "$dir" "$comp") || continue
        log "$comp (pid $pid) ignored TERM for 10s; killing"
        kill -KILL "$pid" 2>/dev/null || true
      done
    fi
    sleep 0.1
  done
  (( ${#running[@]} == 0 )) || die "could not stop: ${running[*]}"
  for comp in "$@"; do rm -f "$dir/$comp.pid"; done
}

# The API server hangs in shutdown once etcd is gone, so etcd goes last; the
# controller-manager and the API server stop together.
stop_components() {
  stop_group "$1" kube-controller-manager kube-apiserver
  stop_group "$1" etcd
}

# --- certificates (EC P-256: fast to generate, accepted everywhere here)

gen_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# sign_cert DIR NAME SUBJECT EXT: key DIR/NAME.key, cert DIR/NAME.crt by the CA.
sign_cert() {
  local dir=$1 name=$2 subject=$3 ext=$4
  gen_key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

gen_pki() {
  local pki=$1
  mkdir -p "$pki"
  gen_key "$pki/ca.key"
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=swarm-operator-local-ca" -days 365 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/ca.crt" 2>/dev/null
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign_cert "$pki" apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign_cert "$pki" admin "/O=system:masters/CN=swarm-operator-admin" "$client"
  sign_cert "$pki" controller-manager "/CN=system:kube-controller-manager" "$client"
  gen_key "$pki/sa.key"
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

# write_kubeconfig FILE SERVER PKI USER [TLS_SERVER_NAME]: certificates
# embedded, so the file can be copied elsewhere; written to a temp file and
# renamed. TLS_SERVER_NAME: the name to verify the API server's certificate
# against when SERVER is an address it does not list (a node's gateway).
write_kubeconfig() {
  local file=$1 server=$2 pki=$3 user=$4 tls_name=${5:-}
  cat >"$file.tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: swarm-local-$NAME
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")${tls_name:+
    tls-server-name: $tls_name}
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$user.crt")
    client-key-data: $(base64 -w0 <"$pki/$user.key")
contexts:
- name: swarm-local-$NAME
  context:
    cluster: swarm-local-$NAME
    user: $user
    namespace: default
current-context: swarm-local-$NAME
KUBECONFIG
  chmod 600 "$file.tmp"
  command mv -f "$file.tmp" "$file"
}

# --- readiness

# wait_for NAME SECONDS DIR COMPONENT -- curl args...: polls until curl succeeds.
wait_for() {
  local what=$1 timeout=$2 dir=$3 comp=$4; shift 5
  local deadline=$(( SECONDS + timeout ))
  until curl -fsS --max-time 2 "$@" >/dev/null 2>&1; do
    if ! live_pid "$dir" "$comp" >/dev/null; then
      log "$comp exited; last log lines:"
      tail -n 30 "$dir/$comp.log" >&2 || true
      return 1
    fi
    if (( SECONDS >= deadline )); then
      log "$what not ready after ${timeout}s; last $comp log lines:"
      tail -n 30 "$dir/$comp.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

read_ports() {
  local dir=$1
  [[ -f "$dir/ports" ]] || return 1
  read -r API_PORT ETCD_PORT PEER_PORT KCM_PORT <"$dir/ports"
}

# Milliseconds since the start of the epoch (EPOCHREALTIME, locale-proof).
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s\n' "$(( 10#$t / 1000 ))"
}

cmd_up() {
  local dir start
  start=$(now_ms)
  dir=$(state_dir)
  if read_ports "$dir" 2>/dev/null && live_pid "$dir" kube-apiserver >/dev/null; then
    log "instance $NAME already running (apiserver https://127.0.0.1:$API_PORT)"
    local started_for=1
    [[ -f "$dir/nodes" ]] && read -r started_for <"$dir/nodes"
    if (( WITH_NODE )) && (( (started_for > 1) != (NODES > 1) )); then
      die "instance $NAME was started for $started_for node(s), not $NODES: cluster:down --name $NAME first"
    fi
    if (( WITH_NODE )); then bash "$SCRIPT_DIR/node.sh" up --name "$NAME" --nodes "$NODES"; fi
    printf '%s\n' "$dir/kubeconfig"
    return 0
  fi
  # A half-started or crashed instance: clear it first.
  [[ -d "$dir" ]] && cmd_down_quiet
  bash "$SCRIPT_DIR/build.sh" --control-plane >&2
  # Concurrent `up`s (parallel test runs) must not pick the same free ports:
  # one at a time from the port choice until every component listens.
  local root
  root=$(dirname "$dir")
  mkdir -p "$root"
  exec 8>"$root/.cluster-up.lock"
  flock 8
  local base=$PORT_BASE
  if [[ -z "$base" ]]; then
    if [[ "$NAME" == default ]]; then base=$DEFAULT_PORT_BASE; else base=auto; fi
  fi
  [[ "$base" == auto ]] && base=$(auto_port_base)
  if ! [[ "$base" =~ ^[0-9]+$ ]] || (( base < 1024 || base > 65530 )); then
    die "bad --port-base: $base"
  fi
  API_PORT=$base ETCD_PORT=$(( base + 1 )) PEER_PORT=$(( base + 2 )) KCM_PORT=$(( base + 3 ))
  local p
  for p in "$API_PORT" "$ETCD_PORT" "$PEER_PORT" "$KCM_PORT"; do
    port_in_use "$p" && die "port $p is in use (choose another --port-base)"
  done

  mkdir -p "$dir"
  printf '%s %s %s %s\n' "$API_PORT" "$ETCD_PORT" "$PEER_PORT" "$KCM_PORT" >"$dir/ports"
  printf '%s\n' "$NODES" >"$dir/nodes"
  local lifecycle_api=() lifecycle_kcm=()
  if (( NODES > 1 )); then
    lifecycle_api=(--default-not-ready-toleration-seconds "$NODE_TOLERATION_S"
      --default-unreachable-toleration-seconds "$NODE_TOLERATION_S")
    lifecycle_kcm=(--node-monitor-grace-period "${NODE_GRACE_S}s" --node-monitor-period 2s)
  fi
  # From here on any failure or interrupt tears down whatever was started.
  UP_OK=0
  trap '[[ $UP_OK == 1 ]] || { log "up failed; cleaning up"; cmd_down_quiet; }' EXIT
  trap 'exit 130' INT TERM
  local pki="$dir/pki"
  gen_pki "$pki"
  local server="https://127.0.0.1:$API_PORT"
  write_kubeconfig "$dir/kubeconfig" "$server" "$pki" admin
  write_kubeconfig "$dir/controller-manager.kubeconfig" "$server" "$pki" controller-manager

  start_component "$dir" etcd "$(bin_path etcd)" \
    --name "swarm-$NAME" --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "swarm-$NAME=http://127.0.0.1:$PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 1073741824 --log-level warn
  wait_for etcd 30 "$dir" etcd -- "http://127.0.0.1:$ETCD_PORT/health"

  start_component "$dir" kube-apiserver "$(bin_path kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --cert-dir "$dir/apiserver-certs" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --secure-port "$API_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --authorization-mode RBAC --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer "$server" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --profiling="${CFN_APISERVER_PROFILING:-false}" --v=1 \
    --watch-cache-sizes configmaps#0 "${lifecycle_api[@]}"
  wait_for "kube-apiserver /readyz" 60 "$dir" kube-apiserver -- \
    --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz"
  local ready_ms=$(( $(now_ms) - start ))

  start_component "$dir" kube-controller-manager "$(bin_path kube-controller-manager)" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --secure-port "$KCM_PORT" --bind-address 127.0.0.1 \
    --cert-dir "$dir/kcm-certs" --profiling=false --v=1 "${lifecycle_kcm[@]}"
  wait_for "kube-controller-manager /healthz" 60 "$dir" kube-controller-manager -- \
    --cacert "$pki/ca.crt" --insecure "https://127.0.0.1:$KCM_PORT/healthz"
  exec 8>&-
  if (( WITH_NODE )); then bash "$SCRIPT_DIR/node.sh" up --name "$NAME" --nodes "$NODES"; fi
  UP_OK=1
  trap - INT TERM
  log "instance $NAME ready: apiserver /readyz after ${ready_ms} ms, all up after $(( $(now_ms) - start )) ms"
  log "export KUBECONFIG=$dir/kubeconfig"
  printf '%s\n' "$dir/kubeconfig"
}

cmd_down_quiet() {
  local dir
  dir=$(state_dir)
  [[ -d "$dir" ]] || return 0
  # The node (if any) first: its pods and kubelet need the API server to go.
  [[ -d "$dir/node" ]] && bash "$SCRIPT_DIR/node.sh" down --name "$NAME"
  stop_components "$dir"
  rm -rf "$dir"
}

cmd_down() {
  local dir ports=()
  dir=$(state_dir)
  if [[ ! -d "$dir" ]]; then
    log "instance $NAME is not running"
    return 0
  fi
  if read_ports "$dir"; then ports=("$API_PORT" "$ETCD_PORT" "$PEER_PORT" "$KCM_PORT"); fi
  cmd_down_quiet
  local p left=()
  for p in "${ports[@]}"; do
    port_in_use "$p" && left+=("$p")
  done
  (( ${#left[@]} == 0 )) || die "ports still in use after stopping $NAME: ${left[*]}"
  log "instance $NAME stopped; state removed"
}

cmd_status() {
  local dir comp pid ready=false any=0 json_comps=()
  dir=$(state_dir)
  if read_ports "$dir" 2>/dev/null; then
    if curl -fsS --max-time 3 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
      --key "$dir/pki/admin.key" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then
      ready=true
    fi
  else
    API_PORT=0 ETCD_PORT=0 PEER_PORT=0 KCM_PORT=0
  fi
  for comp in "${COMPONENTS[@]}"; do
    pid=$(live_pid "$dir" "$comp") || pid=0
    (( pid > 0 )) && any=1
    json_comps+=("$(jq -cn --arg n "$comp" --argjson p "$pid" '{name: $n, pid: $p, running: ($p > 0)}')")
  done
  if (( JSON )); then
    printf '%s\n' "${json_comps[@]}" | jq -cs --arg name "$NAME" --arg dir "$dir" --argjson ready "$ready" \
      --argjson api "$API_PORT" --argjson etcd "$ETCD_PORT" --argjson peer "$PEER_PORT" --argjson kcm "$KCM_PORT" \
      '{name: $name, dir: $dir, kubeconfig: ($dir + "/kubeconfig"), ready: $ready,
        ports: {apiserver: $api, etcd: $etcd, etcdPeer: $peer, controllerManager: $kcm},
        components: .}'
  else
    printf 'instance %s (%s)\n' "$NAME" "$dir"
    if (( any )); then
      printf '  apiserver https://127.0.0.1:%s  etcd %s/%s  controller-manager %s\n' \
        "$API_PORT" "$ETCD_PORT" "$PEER_PORT" "$KCM_PORT"
    fi
    for comp in "${COMPONENTS[@]}"; do
      if pid=$(live_pid "$dir" "$comp"); then
        printf '  %-24s running (pid %s)\n' "$comp" "$pid"
      else
        printf '  %-24s stopped\n' "$comp"
      fi
    done
    printf '  /readyz                  %s\n' "$([[ $ready == true ]] && echo ok || echo 'not ready')"
    if [[ -d "$dir/node" ]]; then bash "$SCRIPT_DIR/node.sh" status --name "$NAME" || true; fi
    (( any )) && printf '  export KUBECONFIG=%s\n' "$dir/kubeconfig"
  fi
  [[ "$ready" == true ]] || return 3
}

main() {
  (( $# > 0 )) || { usage >&2; exit 2; }
  local cmd=$1; shift
  while (( $# > 0 )); do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --port-base) PORT_BASE=${2:?--port-base needs a value}; shift ;;
      --json) JSON=1 ;;
      --with-node) WITH_NODE=1 ;;
      --nodes) NODES=${2:?--nodes needs a value}; WITH_NODE=1; shift ;;
      -h|--help) usage; return ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || die "bad --name (use [a-z0-9-]): $NAME"
  [[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "bad --nodes: $NODES"
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kubeconfig) printf '%s\n' "$(state_dir)/kubeconfig" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

# Sourced by node.sh for its helpers; run, it is the CLI.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
