#!/usr/bin/env bash
# A real worker node for a local control plane of cluster.sh: containerd (its
# own config, root, state and socket under the instance's state dir), kubelet
# (cgroupfs, cgroup v1 allowed), bridge CNI from containernetworking-plugins,
# kube-scheduler, and the locally built images imported into containerd.
# Pods reach the API server through one DNAT rule (10.0.0.1:443 -> the
# loopback API port): no kube-proxy, no DNS add-on.
set -euo pipefail

# shellcheck source=test/cluster/cluster.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"
# shellcheck source=test/cluster/local-path.sh
source "$SCRIPT_DIR/local-path.sh"

readonly NODE_COMPONENTS=(kubelet kube-scheduler containerd local-path-provisioner)
# One node at a time on this machine: fixed bridge, subnet and rule comment.
readonly BRIDGE=swarm-cni0
readonly POD_SUBNET=10.244.0.0/24
readonly POD_GATEWAY=10.244.0.1
readonly SERVICE_IP=10.0.0.1
readonly IPT_COMMENT=swarm-operator-node
readonly NODE_NAME=swarm-node

node_usage() {
  cat <<USAGE
Usage: $(basename "$0") up|down|status|images|check-clean [--name NAME] [--image-dir DIR]

Adds a real node ("$NODE_NAME") to a running cluster.sh instance:
containerd + kubelet + kube-scheduler + bridge CNI ($BRIDGE, $POD_SUBNET), and
local-path-provisioner with the default StorageClass $LOCAL_PATH_CLASS
(volumes under the node's state dir).

  up       start containerd, import images, start kubelet and kube-scheduler,
           wait for the node to be Ready (the control plane must be up)
  down     stop them, remove every pod container, mount, the bridge and veths,
           the iptables rules and cgroups they added, and the node's state
  status   exit 0 when the node's processes run and the node is Ready
  images   (re)import the OCI archives of --image-dir into containerd
  check-clean  exit 1 listing anything a node of NAME left behind (mounts,
           bridge, iptables rules, processes, state), 0 when there is none

Options:
  --name NAME       cluster instance (default "default")
  --image-dir DIR   OCI archives to import (default $REPO_ROOT/.local/image;
                    built by scripts/image/build.sh when missing)

Needs root, containerd, runc, /usr/lib/cni (containernetworking-plugins),
iptables, conntrack (scripts/install-system-deps.sh installs them).
USAGE
}

node_dir() { printf '%s/node\n' "$(state_dir)"; }
node_ports() {
  # Beside the control plane's four: kubelet, kubelet healthz, scheduler.
  KUBELET_PORT=$(( API_PORT + 4 )) KUBELET_HEALTHZ_PORT=$(( API_PORT + 5 )) SCHED_PORT=$(( API_PORT + 6 ))
}

kubectl_admin() { "$(bin_path kubectl)" --kubeconfig "$(state_dir)/kubeconfig" "$@"; }
ctr_node() { ctr --address "$(node_dir)/containerd.sock" -n k8s.io "$@"; }

# --- configuration files

write_containerd_config() {
  local n=$1 pause_ref=$2
  mkdir -p "$n/containerd/root" "$n/containerd/state" "$n/cni/net.d" "$n/cni/ipam"
  cat >"$n/containerd.toml.tmp" <<TOML
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$n/containerd.sock"
[ttrpc]
  address = "$n/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$n/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  enable_selinux = false
  # No CAP_SYS_RESOURCE in this sandbox: kubelet's negative oom_score_adj
  # (-998 for sandboxes) fails in runc ("failed to update
  # /proc/self/oom_score_adj: Permission denied"); clamp at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$n/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni/net.d"
    max_conf_num = 1
TOML
  command mv -f "$n/containerd.toml.tmp" "$n/containerd.toml"
  # No ipMasq (pods need only the host): the bridge plugin adds no iptables rules.
  cat >"$n/cni/net.d/10-swarm.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "swarm-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$n/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
JSON
}

write_kubelet_config() {
  local n=$1 pki=$2
  # Pods get no DNS add-on; a resolv.conf with no servers keeps lookups local.
  printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$n/resolv.conf"
  cat >"$n/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The node IP (kubelet refuses a loopback one): the bridge's gateway address.
address: $POD_GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$n/containerd.sock
cgroupDriver: cgroupfs
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
resolvConf: $n/resolv.conf
podLogsDir: $n/pod-logs
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
oomScoreAdj: 0
maxPods: 60
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
volumeStatsAggPeriod: 10s
YAML
}

node_pki() {
  local pki=$1
  [[ -f "$pki/node.crt" ]] && return 0
  sign_cert "$pki" node "/O=system:nodes/CN=system:node:$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign_cert "$pki" kubelet-serving "/CN=$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$POD_GATEWAY,IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME"
  sign_cert "$pki" scheduler "/CN=system:kube-scheduler" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  chmod 600 "$pki"/*.key
}

# --- images

pause_ref_of() { tar -xOf "$1" index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]'; }

# The archives of scripts/image/build.sh in $1 (built when missing).
image_archives() {
  local dir=$1
  if ! compgen -G "$dir/swarm-operator_*.oci.tar" >/dev/null || ! compgen -G "$dir/swarm-operator-pause_*.oci.tar" >/dev/null; then
    log "building the images (scripts/image/build.sh; the first build takes a few minutes)"
    bash "$REPO_ROOT/scripts/image/build.sh" --out-dir "$dir" >&2
  fi
  APP_ARCHIVE=$(compgen -G "$dir/swarm-operator_*.oci.tar" | sort | tail -n 1)
  PAUSE_ARCHIVE=$(compgen -G "$dir/swarm-operator-pause_*.oci.tar" | sort | tail -n 1)
}

import_images() {
  local a
  for a in "$PAUSE_ARCHIVE" "$APP_ARCHIVE"; do
    ctr_node images import "$a" >/dev/null || die "ctr import $a failed"
    log "imported $(pause_ref_of "$a")"
  done
}

# --- networking: the bridge exists before the first pod, so route_localnet
# can be set on it; one DNAT rule plays kube-proxy for the API service.

net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$POD_GATEWAY/${POD_SUBNET#*/}" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  iptables -t nat -C PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443 \
    -m comment --comment "$IPT_COMMENT" -j DNAT --to-destination "127.0.0.1:$API_PORT" 2>/dev/null ||
    iptables -t nat -A PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443 \
      -m comment --comment "$IPT_COMMENT" -j DNAT --to-destination "127.0.0.1:$API_PORT"
}

# Deletes every rule carrying our comment, and the chains kubelet/CNI made.
net_down() {
  local table rule
  for table in nat filter mangle; do
    while rule=$(iptables -t "$table" -S 2>/dev/null | grep -m1 -- "--comment $IPT_COMMENT"); do
      # The -S line is "-A CHAIN args": replay it as -D, word by word (no eval).
      local -a words
      read -r -a words <<<"${rule#-A }"
      iptables -t "$table" -D "${words[@]}" || break
    done
  done
  local veth
  for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# --- cgroups kubelet made (cgroup v1: one tree per controller)

remove_kubepods_cgroups() {
  local ctl
  for ctl in /sys/fs/cgroup/*/; do
    [[ -d "$ctl/kubepods" ]] || continue
    find "$ctl/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# --- lifecycle

wait_node_ready() {
  local deadline=$(( SECONDS + $1 ))
  until [[ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; do
    live_pid "$(node_dir)" kubelet >/dev/null || { log "kubelet exited:"; tail -n 30 "$(node_dir)/kubelet.log" >&2; return 1; }
    if (( SECONDS >= deadline )); then
      log "node not Ready after $1 s; last kubelet log lines:"
      tail -n 30 "$(node_dir)/kubelet.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

wait_socket() {
  local n=$1 i
  for (( i = 0; i < 150; i++ )); do
    [[ -S "$n/containerd.sock" ]] && ctr --address "$n/containerd.sock" version >/dev/null 2>&1 && return 0
    live_pid "$n" containerd >/dev/null || { tail -n 20 "$n/containerd.log" >&2; return 1; }
    sleep 0.2
  done
  return 1
}

node_up() {
  local dir n pki start
  start=$(now_ms)
  dir=$(state_dir)
  n=$(node_dir)
  read_ports "$dir" || die "instance $NAME is not up (run cluster.sh up --name $NAME first)"
  node_ports
  if live_pid "$n" kubelet >/dev/null; then
    log "node of $NAME already running"
    return 0
  fi
  [[ $(id -u) -eq 0 ]] || die "the node needs root"
  local tool
  for tool in containerd runc ctr iptables ip conntrack; do
    command -v "$tool" >/dev/null || die "$tool missing (run scripts/install-system-deps.sh)"
  done
  [[ -x /usr/lib/cni/bridge ]] || die "/usr/lib/cni/bridge missing (run scripts/install-system-deps.sh)"
  if ip link show "$BRIDGE" >/dev/null 2>&1 && [[ ! -d "$n" ]]; then
    die "bridge $BRIDGE exists but this instance has no node: another instance runs a node (one at a time)"
  fi
  bash "$SCRIPT_DIR/build.sh" --all >&2
  image_archives "${IMAGE_DIR:-$REPO_ROOT/.local/image}"
  pki="$dir/pki"
  mkdir -p "$n/kubelet" "$n/pod-logs"
  node_pki "$pki"
  local server="https://127.0.0.1:$API_PORT"
  write_kubeconfig "$n/kubelet.kubeconfig" "$server" "$pki" node
  write_kubeconfig "$n/scheduler.kubeconfig" "$server" "$pki" scheduler
  # The node user may do what kubelets do (RBAC only: no Node authorizer here).
  kubectl_admin create clusterrolebinding swarm-node-kubelet --clusterrole system:node \
    --group system:nodes --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
  write_containerd_config "$n" "$(pause_ref_of "$PAUSE_ARCHIVE")"
  write_kubelet_config "$n" "$pki"
  net_up

  start_component "$n" containerd containerd --config "$n/containerd.toml" --log-level warn
  wait_socket "$n" || die "containerd did not start"
  import_images

  start_component "$n" kube-scheduler "$(bin_path kube-scheduler)" \
    --kubeconfig "$n/scheduler.kubeconfig" \
    --authentication-kubeconfig "$n/scheduler.kubeconfig" --authorization-kubeconfig "$n/scheduler.kubeconfig" \
    --leader-elect=false --secure-port "$SCHED_PORT" --bind-address 127.0.0.1 \
    --cert-dir "$n/scheduler-certs" --profiling=false --v=1
  start_component "$n" kubelet "$(bin_path kubelet)" \
    --config "$n/kubelet.yaml" --kubeconfig "$n/kubelet.kubeconfig" \
    --root-dir "$n/kubelet" --cert-dir "$n/kubelet-certs" \
    --hostname-override "$NODE_NAME" --node-ip "$POD_GATEWAY" --v=1
  wait_node_ready 90
  local_path_up "$n" "$(pause_ref_of "$APP_ARCHIVE")" "$dir/kubeconfig"
  log "node $NODE_NAME Ready after $(( $(now_ms) - start )) ms (kubelet :$KUBELET_PORT, pods $POD_SUBNET on $BRIDGE)"
}

# Removes every pod sandbox/container through CRI before stopping containerd,
# so no shim, mount or veth is left.
remove_pods() {
  local n=$1 ids
  live_pid "$n" containerd >/dev/null || return 0
  ids=$(ctr_node containers ls -q 2>/dev/null) || return 0
  [[ -n "$ids" ]] || return 0
  local id
  for id in $ids; do
    ctr_node tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $ids; do
    local i
    for (( i = 0; i < 50; i++ )); do
      ctr_node tasks delete "$id" >/dev/null 2>&1 && break
      ctr_node tasks ls -q 2>/dev/null | grep -qx "$id" || break
      sleep 0.1
    done
    ctr_node containers delete "$id" >/dev/null 2>&1 || true
  done
}

# Unmounts everything under $1, deepest first.
unmount_under() {
  local root=$1 m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
}

node_down() {
  local n
  n=$(node_dir)
  [[ -d "$n" ]] || return 0
  # The provisioner first (it would start helper pods), then kubelet (it
  # would restart what we remove), then the scheduler.
  local_path_down "$n"
  stop_group "$n" kubelet kube-scheduler
  remove_pods "$n"
  stop_group "$n" containerd
  # Shims outlive containerd; only those serving this instance's socket.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $n/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  unmount_under "$n"
  # Network namespaces CRI made (/var/run/netns/cni-*) for this node's pods.
  local ns
  for ns in /var/run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    if ip netns exec "$(basename "$ns")" ip -o addr 2>/dev/null | grep -q "inet ${POD_SUBNET%.*}\."; then
      umount "$ns" 2>/dev/null || true
      rm -f "$ns"
    fi
  done
  net_down
  remove_kubepods_cgroups
  rm -rf "$n"
  if read_ports "$(state_dir)" 2>/dev/null && live_pid "$(state_dir)" kube-apiserver >/dev/null; then
    kubectl_admin delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
}

# Lists what a node of this instance could leave behind; exit 1 when any is.
node_leftovers() {
  local n left=() pid cmd
  n=$(node_dir)
  if awk -v r="$n/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    left+=("mounts under $n")
  fi
  ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
  if iptables-save 2>/dev/null | grep -q -- "$IPT_COMMENT"; then left+=("iptables rules ($IPT_COMMENT)"); fi
  for pid in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$pid/cmdline") || continue
    [[ "$cmd" == *"$n/"* ]] && left+=("process ${pid#/proc/}: ${cmd:0:80}")
  done
  [[ -e "$n" ]] && left+=("state dir $n")
  local ns
  for ns in /var/run/netns/cni-*; do
    [[ -e "$ns" ]] || continue
    if ip netns exec "$(basename "$ns")" ip -o addr 2>/dev/null | grep -q "inet ${POD_SUBNET%.*}\."; then
      left+=("network namespace $ns")
    fi
  done
  if (( ${#left[@]} )); then
    printf 'left behind: %s\n' "${left[@]}" >&2
    return 1
  fi
  log "nothing left behind by the node of $NAME (mounts, $BRIDGE and veths, pod netns, rules, processes, state)"
}

node_status() {
  local n comp pid ok=0
  n=$(node_dir)
  for comp in "${NODE_COMPONENTS[@]}"; do
    if pid=$(live_pid "$n" "$comp"); then
      printf '  %-24s running (pid %s)\n' "$comp" "$pid"
    else
      printf '  %-24s stopped\n' "$comp"; ok=3
    fi
  done
  local ready
  ready=$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || ready=""
  printf '  node %-19s %s\n' "$NODE_NAME" "${ready:-absent}"
  [[ "$ready" == True ]] || ok=3
  return "$ok"
}

node_main() {
  (( $# > 0 )) || { node_usage >&2; exit 2; }
  local cmd=$1; shift
  while (( $# > 0 )); do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --image-dir) IMAGE_DIR=${2:?--image-dir needs a value}; shift ;;
      -h|--help) node_usage; return ;;
      *) node_usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || die "bad --name (use [a-z0-9-]): $NAME"
  case "$cmd" in
    up) node_up ;;
    down) node_down; log "node of $NAME stopped; containers, mounts, $BRIDGE, rules and state removed" ;;
    status) node_status ;;
    check-clean) node_leftovers ;;
    images)
      read_ports "$(state_dir)" || die "instance $NAME is not up"
      image_archives "${IMAGE_DIR:-$REPO_ROOT/.local/image}"
      import_images ;;
    -h|--help|help) node_usage ;;
    *) node_usage >&2; die "unknown command: $cmd" ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  node_main "$@"
fi
