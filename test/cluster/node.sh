#!/usr/bin/env bash
# Real worker nodes for a local control plane of cluster.sh: containerd (its
# own config, root, state and socket under the instance's state dir), kubelet
# (cgroupfs, cgroup v1 allowed), bridge CNI from containernetworking-plugins,
# kube-scheduler, the locally built images imported into containerd, and one
# local-path-provisioner for the cluster (the default StorageClass).
#
# One node (the default) runs on the host network: pods reach the API server
# through one DNAT rule (10.0.0.1:443 -> the loopback API port). With
# --nodes N (2..15) every node runs in its own network namespace, joined to a
# host bridge by a veth pair, with its own pod subnet, cgroup root and routes
# to the other nodes' pods. No kube-proxy, no DNS add-on.
set -euo pipefail

# shellcheck source=test/cluster/cluster.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"
# shellcheck source=test/cluster/local-path.sh
source "$SCRIPT_DIR/local-path.sh"

readonly NODE_COMPONENTS=(kubelet containerd)
readonly SERVICE_IP=10.0.0.1
# The single node: host network, fixed bridge, subnet and rule comment (one
# such node per machine).
readonly SINGLE_NODE_NAME=swarm-node
readonly SINGLE_BRIDGE=swarm-cni0
readonly SINGLE_SUBNET=10.244.0.0/24
readonly SINGLE_GATEWAY=10.244.0.1
readonly IPT_COMMENT=swarm-operator-node
# Several nodes: names swarm-node-1..N; each node's pod bridge lives in its
# own network namespace, so every node uses the same name for it.
readonly MAX_NODES=15
readonly MULTI_NODE_PREFIX=swarm-node-
readonly NODE_POD_BRIDGE=cni0
readonly NETNS_DIR=/var/run/netns

NODES=""
NODE_ARG=""
CUT=0

node_usage() {
  cat <<USAGE
Usage: $(basename "$0") COMMAND [--name NAME] [--nodes N] [--image-dir DIR] [--node NODE] [--cut]

Adds real nodes to a running cluster.sh instance: containerd + kubelet per
node, one kube-scheduler, bridge CNI, the local images, and one
local-path-provisioner with the default StorageClass $LOCAL_PATH_CLASS
(volumes under the nodes' state dir, reachable from every node).

  up       start the node(s), import the images, start kube-scheduler, wait
           until every node is Ready (the control plane must be up)
  down     stop them, remove every pod container, mount, bridge, veth, network
           namespace, iptables rule and cgroup they added, and their state
  status   exit 0 when every node's processes run and every node is Ready
  images   (re)import the OCI archives of --image-dir into every node
  check-clean  exit 1 listing anything the nodes of NAME left behind (mounts,
           bridges, veths, network namespaces, iptables rules, cgroups,
           processes, state), 0 when there is none
  lose     lose node --node (name or number; several nodes only): by default
           its kubelet, containerd, shims and every process of its pods are
           killed (a machine that died); --cut sets its veth down instead (a
           network partition: everything keeps running, unreachable)
  restore  bring a lost node back (start containerd and kubelet again, or set
           its veth up)

Options:
  --name NAME       cluster instance (default "default")
  --nodes N         (up) 1 (default): node "$SINGLE_NODE_NAME" on the host network
                    ($SINGLE_BRIDGE, $SINGLE_SUBNET; one per machine); 2..$MAX_NODES: nodes
                    ${MULTI_NODE_PREFIX}1..N, each in its own network namespace
  --image-dir DIR   OCI archives to import (default $REPO_ROOT/.local/image;
                    built by scripts/image/build.sh when missing)

Needs root, containerd, runc, /usr/lib/cni (containernetworking-plugins),
iptables, conntrack, nsenter (scripts/install-system-deps.sh installs them).
USAGE
}

node_dir() { printf '%s/node\n' "$(state_dir)"; }
node_ports() {
  # Beside the control plane's four: kubelet, kubelet healthz, scheduler.
  KUBELET_PORT=$(( API_PORT + 4 )) KUBELET_HEALTHZ_PORT=$(( API_PORT + 5 )) SCHED_PORT=$(( API_PORT + 6 ))
}

kubectl_admin() { "$(bin_path kubectl)" --kubeconfig "$(state_dir)/kubeconfig" "$@"; }
ctr_node() { ctr --address "$N_DIR/containerd.sock" -n k8s.io "$@"; }

# --- layout: which nodes the instance has

# The node numbers of the instance: "0" for the single host-network node,
# "1 … N" for several (recorded in node/nodes at `up`).
node_numbers() {
  local file count
  file="$(node_dir)/nodes"
  if [[ -f "$file" ]]; then
    read -r count <"$file"
    seq 1 "$count"
  else
    printf '0\n'
  fi
}

# The instance's network for several nodes, derived from its name alone (so
# check-clean finds everything after the state is gone): a /20 in
# 10.160.0.0/11 whose first /24 links the nodes to the host bridge (host .1,
# node i .10+i) and whose /24 number i holds node i's pods. Two instances
# whose names map to the same /20 cannot run at once (`up` says so).
multi_network() {
  local crc slot
  crc=$(cksum <<<"$NAME")
  crc=${crc%% *}
  slot=$(( crc % 512 ))
  MN_OCTET2=$(( 160 + slot / 16 ))
  MN_OCTET3=$(( (slot % 16) * 16 ))
  MN_BRIDGE=$(printf 'swm%08x' "$crc")
  MN_COMMENT="swarm-operator-mn-$NAME"
}

# mn_net J: the first three octets of /24 number J of the instance's network.
mn_net() { printf '10.%s.%s\n' "$MN_OCTET2" "$(( MN_OCTET3 + $1 ))"; }

# Sets the per-node globals for node $1 (0: the single host-network node).
use_node() {
  local i=$1
  NODE_INDEX=$i
  if (( i == 0 )); then
    NODE_NAME=$SINGLE_NODE_NAME N_DIR=$(node_dir) NETNS="" BRIDGE=$SINGLE_BRIDGE
    POD_SUBNET=$SINGLE_SUBNET POD_GATEWAY=$SINGLE_GATEWAY NODE_IP=$SINGLE_GATEWAY
    API_HOST=127.0.0.1 CGROUP_ROOT="" HOST_VETH="" NODE_CERT=node SERVING_CERT=kubelet-serving
    return
  fi
  multi_network
  NODE_NAME="$MULTI_NODE_PREFIX$i" NETNS="swarm-$NAME-$i" BRIDGE=$NODE_POD_BRIDGE
  N_DIR="$(node_dir)/$NODE_NAME"
  POD_SUBNET="$(mn_net "$i").0/24" POD_GATEWAY="$(mn_net "$i").1"
  NODE_IP="$(mn_net 0).$(( 10 + i ))" API_HOST="$(mn_net 0).1"
  CGROUP_ROOT="swarm-$NAME-node-$i" HOST_VETH="${MN_BRIDGE}n$i"
  NODE_CERT=$NODE_NAME SERVING_CERT="$NODE_NAME-serving"
}

# --node NODE (a name or a number) of a multi-node instance -> its number.
node_number_of() {
  local arg=$1 i
  for i in $(node_numbers); do
    (( i > 0 )) || break
    if [[ "$arg" == "$i" || "$arg" == "$MULTI_NODE_PREFIX$i" ]]; then
      printf '%s\n' "$i"
      return 0
    fi
  done
  die "no node $arg in instance $NAME (lose/restore need a multi-node instance: up --nodes N)"
}

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
  # No ipMasq (pods need only the host and each other): the bridge plugin adds
  # no iptables rules.
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
# The node IP (kubelet refuses a loopback one): the bridge's gateway address
# for the host-network node, the node's veth address in its own namespace.
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/$SERVING_CERT.crt
tlsPrivateKeyFile: $pki/$SERVING_CERT.key
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
  if [[ -n "$CGROUP_ROOT" ]]; then
    # Its own cgroup tree (kubepods below it), and a Lease renewed every 2.5 s
    # so the short node-monitor grace period of a multi-node control plane
    # (cluster.sh) only fires for a node that is really gone.
    cat >>"$n/kubelet.yaml" <<YAML
cgroupRoot: /$CGROUP_ROOT
nodeLeaseDurationSeconds: 10
YAML
  fi
}

# sign_if_missing PKI NAME SUBJECT EXT
sign_if_missing() {
  [[ -f "$1/$2.crt" ]] || sign_cert "$@"
}

node_pki() {
  local pki=$1
  sign_if_missing "$pki" "$NODE_CERT" "/O=system:nodes/CN=system:node:$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  sign_if_missing "$pki" "$SERVING_CERT" "/CN=$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME"
  chmod 600 "$pki"/*.key
}

scheduler_pki() {
  sign_if_missing "$1" scheduler "/CN=system:kube-scheduler" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  chmod 600 "$1"/*.key
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

# Imports the archives into the current node's containerd.
import_images() {
  local a
  for a in "$PAUSE_ARCHIVE" "$APP_ARCHIVE"; do
    ctr_node images import "$a" >/dev/null || die "ctr import $a into $NODE_NAME failed"
    log "$NODE_NAME: imported $(pause_ref_of "$a")"
  done
}

# --- networking of the single node: the bridge exists before the first pod,
# so route_localnet can be set on it; one DNAT rule plays kube-proxy for the
# API service.

single_net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$POD_GATEWAY/${POD_SUBNET#*/}" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
  ensure_rule nat PREROUTING -i "$BRIDGE" -d "$SERVICE_IP/32" -p tcp --dport 443 \
    -m comment --comment "$IPT_COMMENT" -j DNAT --to-destination "127.0.0.1:$API_PORT"
}

# containerd pins each pod's network namespace by mounting it on a file in
# /run/netns. If that directory is not a mount point yet, the first later
# `ip netns add` (any tool on the machine) bind-mounts it over itself and hides
# the pins beneath: those sandboxes can no longer be removed (EBUSY) and their
# pods stay Terminating. Make it the shared mount point `ip netns` expects first.
netns_dir_up() {
  mkdir -p /run/netns
  mountpoint -q /run/netns || mount --bind /run/netns /run/netns
  mount --make-shared /run/netns
}

# ensure_rule TABLE CHAIN RULE...: appends the rule unless it is there.
ensure_rule() {
  local table=$1 chain=$2; shift 2
  iptables -t "$table" -C "$chain" "$@" 2>/dev/null || iptables -t "$table" -A "$chain" "$@"
}

# Deletes every host rule carrying comment $1.
delete_rules() {
  local comment=$1 table rule
  for table in nat filter mangle; do
    while rule=$(iptables -t "$table" -S 2>/dev/null | grep -m1 -- "--comment $comment\( \|$\)"); do
      # The -S line is "-A CHAIN args": replay it as -D, word by word (no eval).
      local -a words
      read -r -a words <<<"${rule#-A }"
      iptables -t "$table" -D "${words[@]}" || break
    done
  done
}

single_net_down() {
  delete_rules "$IPT_COMMENT"
  local veth
  for veth in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}

# --- networking of several nodes. Host: bridge MN_BRIDGE (.1 of /24 0),
# a route to each node's pod /24 via that node, and one DNAT rule taking the
# nodes' API traffic (gateway:API port) to the loopback API server. Node i:
# network namespace swarm-NAME-i, its veth end eth0 (.10+i), a default route
# to the host, a route to every other node's pods via that node, and the
# service-IP DNAT (10.0.0.1:443 -> gateway:API port) for its pods.

cluster_net_up() {
  multi_network
  local gw
  gw="$(mn_net 0).1"
  if ! ip link show "$MN_BRIDGE" >/dev/null 2>&1; then
    if ip -4 route show to "$(mn_net 0).0/24" | grep -q .; then
      die "network $(mn_net 0).0/20 of instance $NAME is in use by another instance (names mapping to the same network cannot run together: choose another --name)"
    fi
    ip link add "$MN_BRIDGE" type bridge
    ip link set "$MN_BRIDGE" alias "swarm-operator instance $NAME"
    ip addr add "$gw/24" dev "$MN_BRIDGE"
    ip link set "$MN_BRIDGE" up
  fi
  sysctl -qw "net.ipv4.conf.$MN_BRIDGE.route_localnet=1"
  ensure_rule nat PREROUTING -i "$MN_BRIDGE" -d "$gw/32" -p tcp --dport "$API_PORT" \
    -m comment --comment "$MN_COMMENT" -j DNAT --to-destination "127.0.0.1:$API_PORT"
}

cluster_net_down() {
  multi_network
  delete_rules "$MN_COMMENT"
  ip link del "$MN_BRIDGE" 2>/dev/null || true
}

# node_net_up COUNT: the current node's namespace, veth pair and routes.
node_net_up() {
  local count=$1 gw j
  gw="$(mn_net 0).1"
  [[ -e "$NETNS_DIR/$NETNS" ]] || ip netns add "$NETNS"
  if ! ip link show "$HOST_VETH" >/dev/null 2>&1; then
    ip link add "$HOST_VETH" type veth peer name eth0 netns "$NETNS"
  fi
  ip link set "$HOST_VETH" master "$MN_BRIDGE" up
  ip -n "$NETNS" link set lo up
  ip -n "$NETNS" addr replace "$NODE_IP/24" dev eth0
  ip -n "$NETNS" link set eth0 up
  ip -n "$NETNS" route replace default via "$gw"
  for (( j = 1; j <= count; j++ )); do
    (( j == NODE_INDEX )) && continue
    ip -n "$NETNS" route replace "$(mn_net "$j").0/24" via "$(mn_net 0).$(( 10 + j ))"
  done
  ip route replace "$POD_SUBNET" via "$NODE_IP" dev "$MN_BRIDGE"
  ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_forward=1
  # Pods (PREROUTING) and host-network pods (OUTPUT) reach the API service.
  local chain
  for chain in PREROUTING OUTPUT; do
    ip netns exec "$NETNS" bash -c 'iptables -t nat -C "$@" 2>/dev/null || iptables -t nat -A "$@"' _ \
      "$chain" -d "$SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "$gw:$API_PORT"
  done
}

# Deleting the namespace deletes its end of the veth pair, and so the pair.
node_net_down() {
  if [[ -e "$NETNS_DIR/$NETNS" ]]; then
    ip netns del "$NETNS" 2>/dev/null || { umount "$NETNS_DIR/$NETNS" 2>/dev/null || true; rm -f "$NETNS_DIR/$NETNS"; }
  fi
  ip link del "$HOST_VETH" 2>/dev/null || true
}

# --- cgroups (cgroup v1: one tree per controller)

# The hierarchies kubelet and runc create cgroups in: every v1 controller and
# the cgroup2 mount ("unified") of a hybrid setup.
cgroup_controllers() {
  local ctl
  for ctl in /sys/fs/cgroup/*/; do
    ctl=${ctl%/}
    [[ -L "$ctl" ]] && continue
    printf '%s\n' "$ctl"
  done
}

# The current node's cgroup root in every hierarchy (kubelet requires it to
# exist); cpuset needs its cpus and mems before anything can join it.
cgroup_root_up() {
  local ctl
  while read -r ctl; do
    mkdir -p "$ctl/$CGROUP_ROOT"
    if [[ -f "$ctl/cpuset.cpus" ]]; then
      cat "$ctl/cpuset.cpus" >"$ctl/$CGROUP_ROOT/cpuset.cpus"
      cat "$ctl/cpuset.mems" >"$ctl/$CGROUP_ROOT/cpuset.mems"
    fi
  done < <(cgroup_controllers)
}

# remove_cgroups SUBPATH: SUBPATH and everything below it, in every hierarchy.
remove_cgroups() {
  local ctl
  while read -r ctl; do
    [[ -d "$ctl/$1" ]] || continue
    find "$ctl/$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done < <(cgroup_controllers)
}

# Kills every process in the current node's cgroup tree (its pods).
kill_cgroup_procs() {
  local root="/sys/fs/cgroup/pids/$CGROUP_ROOT" i pids
  [[ -n "$CGROUP_ROOT" && -d "$root" ]] || return 0
  for (( i = 0; i < 50; i++ )); do
    pids=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
}

# --- lifecycle

node_ready_status() {
  kubectl_admin get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null
}

# wait_nodes_ready SECONDS NUMBER...: until every node is Ready.
wait_nodes_ready() {
  local deadline=$(( SECONDS + $1 )) i pending; shift
  while :; do
    pending=()
    for i in "$@"; do
      use_node "$i"
      live_pid "$N_DIR" kubelet >/dev/null || { log "$NODE_NAME: kubelet exited:"; tail -n 30 "$N_DIR/kubelet.log" >&2; return 1; }
      [[ "$(node_ready_status "$NODE_NAME")" == True ]] || pending+=("$i")
    done
    (( ${#pending[@]} == 0 )) && return 0
    if (( SECONDS >= deadline )); then
      for i in "${pending[@]}"; do
        use_node "$i"
        log "$NODE_NAME not Ready after the time allowed; last kubelet log lines:"
        tail -n 30 "$N_DIR/kubelet.log" >&2
      done
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

# The command prefix that runs a process in the current node's network
# namespace (nsenter replaces itself: the recorded pid is the component's).
net_prefix() {
  NET_PREFIX=()
  [[ -z "$NETNS" ]] || NET_PREFIX=(nsenter "--net=$NETNS_DIR/$NETNS" --)
}

start_containerd() {
  net_prefix
  start_component "$N_DIR" containerd "${NET_PREFIX[@]}" containerd --config "$N_DIR/containerd.toml" --log-level warn
}

start_kubelet() {
  net_prefix
  start_component "$N_DIR" kubelet "${NET_PREFIX[@]}" "$(bin_path kubelet)" \
    --config "$N_DIR/kubelet.yaml" --kubeconfig "$N_DIR/kubelet.kubeconfig" \
    --root-dir "$N_DIR/kubelet" --cert-dir "$N_DIR/kubelet-certs" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

# Writes the current node's state dir, certificates, configs, cgroup root and
# network (COUNT: the instance's node count; 0 for the single node).
prepare_node() {
  local count=$1 pki tls_name=""
  pki="$(state_dir)/pki"
  mkdir -p "$N_DIR/kubelet" "$N_DIR/pod-logs"
  node_pki "$pki"
  # A node in a namespace reaches the API server at the host bridge's address,
  # which the serving certificate does not list; it verifies its DNS name.
  if [[ -n "$NETNS" ]]; then tls_name=kubernetes; fi
  write_kubeconfig "$N_DIR/kubelet.kubeconfig" "https://$API_HOST:$API_PORT" "$pki" "$NODE_CERT" "$tls_name"
  write_containerd_config "$N_DIR" "$(pause_ref_of "$PAUSE_ARCHIVE")"
  write_kubelet_config "$N_DIR" "$pki"
  if (( count == 0 )); then
    single_net_up
  else
    cgroup_root_up
    node_net_up "$count"
  fi
}

check_node_tools() {
  [[ $(id -u) -eq 0 ]] || die "the node needs root"
  local tool
  for tool in containerd runc ctr iptables ip conntrack nsenter; do
    command -v "$tool" >/dev/null || die "$tool missing (run scripts/install-system-deps.sh)"
  done
  [[ -x /usr/lib/cni/bridge ]] || die "/usr/lib/cni/bridge missing (run scripts/install-system-deps.sh)"
}

node_up() {
  local dir nd start count=${NODES:-1} numbers=() i
  start=$(now_ms)
  dir=$(state_dir)
  nd=$(node_dir)
  read_ports "$dir" || die "instance $NAME is not up (run cluster.sh up --name $NAME first)"
  if ! [[ "$count" =~ ^[0-9]+$ ]] || (( count < 1 || count > MAX_NODES )); then
    die "bad --nodes (1..$MAX_NODES): $count"
  fi
  node_ports
  if [[ -d "$nd" ]]; then
    local have
    have=$(node_numbers | wc -l)
    [[ -f "$nd/nodes" ]] || have=1
    (( have == count )) || die "instance $NAME has $have node(s), not $count: cluster:down --name $NAME first"
    if live_pid "$nd" kube-scheduler >/dev/null; then
      log "node(s) of $NAME already running"
      return 0
    fi
  fi
  check_node_tools
  if (( count == 1 )); then
    if ip link show "$SINGLE_BRIDGE" >/dev/null 2>&1 && [[ ! -d "$nd" ]]; then
      die "bridge $SINGLE_BRIDGE exists but this instance has no node: another instance runs a single node (one at a time; --nodes 2.. runs in network namespaces)"
    fi
    numbers=(0)
  else
    mapfile -t numbers < <(seq 1 "$count")
    local planned=1
    [[ -f "$dir/nodes" ]] && read -r planned <"$dir/nodes"
    if (( planned < 2 )); then
      log "note: the control plane of $NAME was started for one node: a lost node keeps Kubernetes' default timings (cluster.sh up --nodes $count sets short ones)"
    fi
  fi
  bash "$SCRIPT_DIR/build.sh" --all >&2
  image_archives "${IMAGE_DIR:-$REPO_ROOT/.local/image}"
  mkdir -p "$nd"
  # Recorded first, so `down` finds every node even after a failed `up`.
  if (( count > 1 )); then printf '%s\n' "$count" >"$nd/nodes"; fi
  local pki="$dir/pki"
  scheduler_pki "$pki"
  write_kubeconfig "$nd/scheduler.kubeconfig" "https://127.0.0.1:$API_PORT" "$pki" scheduler
  # The node users may do what kubelets do (RBAC only: no Node authorizer here).
  kubectl_admin create clusterrolebinding swarm-node-kubelet --clusterrole system:node \
    --group system:nodes --dry-run=client -o yaml | kubectl_admin apply -f - >/dev/null
  netns_dir_up
  if (( count > 1 )); then cluster_net_up; fi
  for i in "${numbers[@]}"; do
    use_node "$i"
    prepare_node "$(( count > 1 ? count : 0 ))"
    start_containerd
  done
  for i in "${numbers[@]}"; do
    use_node "$i"
    wait_socket "$N_DIR" || die "$NODE_NAME: containerd did not start"
    import_images
  done
  start_component "$nd" kube-scheduler "$(bin_path kube-scheduler)" \
    --kubeconfig "$nd/scheduler.kubeconfig" \
    --authentication-kubeconfig "$nd/scheduler.kubeconfig" --authorization-kubeconfig "$nd/scheduler.kubeconfig" \
    --leader-elect=false --secure-port "$SCHED_PORT" --bind-address 127.0.0.1 \
    --cert-dir "$nd/scheduler-certs" --profiling=false --v=1
  for i in "${numbers[@]}"; do
    use_node "$i"
    start_kubelet
  done
  wait_nodes_ready 120 "${numbers[@]}"
  for i in "${numbers[@]}"; do
    use_node "$i"
    # What the node's bridge CNI config assigns, visible in the Node's spec.
    if (( i > 0 )) && [[ -z "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}')" ]]; then
      kubectl_admin patch node "$NODE_NAME" --type merge \
        -p "{\"spec\":{\"podCIDR\":\"$POD_SUBNET\",\"podCIDRs\":[\"$POD_SUBNET\"]}}" >/dev/null
    fi
    log "node $NODE_NAME Ready (kubelet $NODE_IP:$KUBELET_PORT, pods $POD_SUBNET on $BRIDGE${NETNS:+ in netns $NETNS})"
  done
  # One for the cluster, like the scheduler: every node shares this host's file system.
  local_path_up "$nd" "$(pause_ref_of "$APP_ARCHIVE")" "$dir/kubeconfig"
  log "$count node(s) Ready after $(( $(now_ms) - start )) ms"
}

# Removes every pod sandbox/container of the current node through containerd
# before stopping it, so no shim, mount or veth is left.
remove_pods() {
  local ids id i
  live_pid "$N_DIR" containerd >/dev/null || return 0
  ids=$(ctr_node containers ls -q 2>/dev/null) || return 0
  [[ -n "$ids" ]] || return 0
  for id in $ids; do
    ctr_node tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $ids; do
    for (( i = 0; i < 50; i++ )); do
      ctr_node tasks delete "$id" >/dev/null 2>&1 && break
      ctr_node tasks ls -q 2>/dev/null | grep -qx "$id" || break
      sleep 0.1
    done
    ctr_node containers delete "$id" >/dev/null 2>&1 || true
  done
}

# Shims outlive containerd; only those serving the current node's socket.
kill_shims() {
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $N_DIR/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# kubelet links every container's log into /var/log/containers (a fixed
# path); the links into the current node's pod-logs go with the node.
remove_log_links() {
  local link
  for link in /var/log/containers/*.log; do
    [[ -L "$link" && "$(readlink "$link")" == "$N_DIR/pod-logs/"* ]] && rm -f "$link"
  done
  return 0
}

# The CNI plugins cache each sandbox's result in /var/lib/cni/results (a
# fixed path, "<network>-<sandbox id>-<interface>"); CRI keeps a directory per
# sandbox, which names them.
remove_cni_cache() {
  local sandbox
  for sandbox in "$N_DIR/containerd/root/io.containerd.grpc.v1.cri/sandboxes"/*; do
    [[ -d "$sandbox" ]] || continue
    rm -f /var/lib/cni/results/*-"$(basename "$sandbox")"-*
  done
}

# Unmounts everything under $1, deepest first.
unmount_under() {
  local root=$1 m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
}

# The pod network namespaces CRI made (/var/run/netns/cni-*) holding an
# address of the current node's pod subnet.
pod_netns() {
  local ns prefix=${POD_SUBNET%.*}
  for ns in "$NETNS_DIR"/cni-*; do
    [[ -e "$ns" ]] || continue
    if ip netns exec "$(basename "$ns")" ip -o -4 addr 2>/dev/null | grep -q "inet ${prefix//./\\.}\."; then
      printf '%s\n' "$ns"
    fi
  done
}

# Takes the current node down to nothing (COUNT as in prepare_node).
node_teardown() {
  local count=$1 ns
  if [[ -d "$N_DIR" ]]; then
    stop_group "$N_DIR" kubelet
    remove_pods
    stop_group "$N_DIR" containerd
  fi
  kill_shims
  kill_cgroup_procs
  unmount_under "$N_DIR"
  remove_log_links
  remove_cni_cache
  # Before the node's namespace goes: its pods' veths carry their addresses.
  while read -r ns; do
    umount "$ns" 2>/dev/null || true
    rm -f "$ns"
  done < <(pod_netns)
  if (( count > 0 )); then
    node_net_down
    remove_cgroups "$CGROUP_ROOT"
  fi
  rm -rf "$N_DIR"
}

node_down() {
  local nd numbers i count=0
  nd=$(node_dir)
  [[ -d "$nd" ]] || return 0
  mapfile -t numbers < <(node_numbers)
  [[ "${numbers[0]}" == 0 ]] || count=${#numbers[@]}
  # The provisioner first: it would start helper pods.
  local_path_down "$nd"
  if (( count == 0 )); then
    # kubelet first (it would restart what we remove), then the scheduler.
    use_node 0
    stop_group "$N_DIR" kubelet kube-scheduler
    node_teardown 0
    single_net_down
    remove_cgroups kubepods
  else
    stop_group "$nd" kube-scheduler
    for i in "${numbers[@]}"; do
      use_node "$i"
      node_teardown "$count"
    done
    cluster_net_down
  fi
  rm -rf "$nd"
  if read_ports "$(state_dir)" 2>/dev/null && live_pid "$(state_dir)" kube-apiserver >/dev/null; then
    for i in "${numbers[@]}"; do
      use_node "$i"
      kubectl_admin delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    done
  fi
}

# Lists what the nodes of this instance left behind; exit 1 when anything
# is. Multi-node resources are named after the instance, so this works after
# `down` too; --nodes 1 (the default) also checks the single node's fixed
# bridge, rules and pod subnet (one such node per machine).
node_leftovers() {
  local left=() n pid cmd ns ctl link pattern
  n=$(node_dir)
  multi_network
  if awk -v r="$n/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    left+=("mounts under $n")
  fi
  [[ -e "$n" ]] && left+=("state dir $n")
  for pid in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$pid/cmdline") || continue
    [[ "$cmd" == *"$n/"* ]] && left+=("process ${pid#/proc/}: ${cmd:0:80}")
  done
  for link in /var/log/containers/*.log; do
    [[ -L "$link" && "$(readlink "$link")" == "$n/"* ]] && left+=("log link $link")
  done
  if (( ${NODES:-1} == 1 )); then
    pattern="inet ${SINGLE_SUBNET%.*}."
    ip link show "$SINGLE_BRIDGE" >/dev/null 2>&1 && left+=("bridge $SINGLE_BRIDGE")
    if iptables-save 2>/dev/null | grep -q -- "--comment $IPT_COMMENT\( \|$\)"; then left+=("iptables rules ($IPT_COMMENT)"); fi
  else
    pattern="inet 10.$MN_OCTET2.($(seq -s '|' $(( MN_OCTET3 + 1 )) $(( MN_OCTET3 + MAX_NODES ))))."
  fi
  pattern=${pattern//./\\.}
  for ns in "$NETNS_DIR"/cni-*; do
    [[ -e "$ns" ]] || continue
    if ip netns exec "$(basename "$ns")" ip -o -4 addr 2>/dev/null | grep -Eq "$pattern"; then
      left+=("pod network namespace $ns")
    fi
  done
  while read -r link; do
    left+=("link $link")
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep -E "^$MN_BRIDGE(n[0-9]+)?$")
  if iptables-save 2>/dev/null | grep -q -- "--comment $MN_COMMENT\( \|$\)"; then left+=("iptables rules ($MN_COMMENT)"); fi
  for ns in "$NETNS_DIR/swarm-$NAME-"*; do
    [[ -e "$ns" && "$(basename "$ns")" =~ ^swarm-$NAME-[0-9]+$ ]] && left+=("network namespace $ns")
  done
  while read -r ctl; do
    for link in "$ctl/swarm-$NAME-node-"*; do
      [[ -d "$link" && "$(basename "$link")" =~ ^swarm-$NAME-node-[0-9]+$ ]] && left+=("cgroup $link")
    done
  done < <(cgroup_controllers)
  if (( ${#left[@]} )); then
    printf 'left behind: %s\n' "${left[@]}" >&2
    return 1
  fi
  log "nothing left behind by the node(s) of $NAME (mounts, bridges, veths, network namespaces, rules, cgroups, processes, state)"
}

node_status() {
  local nd comp pid ok=0 i ready
  nd=$(node_dir)
  if pid=$(live_pid "$nd" kube-scheduler); then
    printf '  %-24s running (pid %s)\n' kube-scheduler "$pid"
  else
    printf '  %-24s stopped\n' kube-scheduler; ok=3
  fi
  if pid=$(live_pid "$nd" local-path-provisioner); then
    printf '  %-24s running (pid %s)\n' local-path-provisioner "$pid"
  else
    printf '  %-24s stopped\n' local-path-provisioner; ok=3
  fi
  for i in $(node_numbers); do
    use_node "$i"
    for comp in "${NODE_COMPONENTS[@]}"; do
      if pid=$(live_pid "$N_DIR" "$comp"); then
        printf '  %-24s running (pid %s)\n' "$comp${NETNS:+ ($NODE_NAME)}" "$pid"
      else
        printf '  %-24s stopped\n' "$comp${NETNS:+ ($NODE_NAME)}"; ok=3
      fi
    done
    ready=$(node_ready_status "$NODE_NAME") || ready=""
    printf '  node %-19s %s%s\n' "$NODE_NAME" "${ready:-absent}" "${NETNS:+ ($NODE_IP, pods $POD_SUBNET, netns $NETNS)}"
    [[ "$ready" == True ]] || ok=3
  done
  return "$ok"
}

# lose: a machine that died (every process of the node killed at once, its
# state kept) or, with --cut, a partition (its veth set down).
node_lose() {
  use_node "$(node_number_of "$NODE_ARG")"
  if (( CUT )); then
    ip link set "$HOST_VETH" down
    printf 'cut\n' >"$N_DIR/lost"
    log "$NODE_NAME cut off: veth $HOST_VETH down"
    return
  fi
  local comp pid
  for comp in kubelet containerd; do
    if pid=$(live_pid "$N_DIR" "$comp"); then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  kill_shims
  kill_cgroup_procs
  printf 'stopped\n' >"$N_DIR/lost"
  log "$NODE_NAME lost: kubelet, containerd, shims and pod processes killed"
}

node_restore() {
  use_node "$(node_number_of "$NODE_ARG")"
  read_ports "$(state_dir)" || die "instance $NAME is not up"
  node_ports
  if [[ "$(cat "$N_DIR/lost" 2>/dev/null)" == cut ]]; then
    ip link set "$HOST_VETH" up
  else
    live_pid "$N_DIR" containerd >/dev/null || { start_containerd; wait_socket "$N_DIR" || die "$NODE_NAME: containerd did not start"; }
    live_pid "$N_DIR" kubelet >/dev/null || start_kubelet
  fi
  rm -f "$N_DIR/lost"
  wait_nodes_ready 120 "$NODE_INDEX"
  log "$NODE_NAME restored and Ready"
}

node_main() {
  (( $# > 0 )) || { node_usage >&2; exit 2; }
  local cmd=$1 i; shift
  while (( $# > 0 )); do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --nodes) NODES=${2:?--nodes needs a value}; shift ;;
      --image-dir) IMAGE_DIR=${2:?--image-dir needs a value}; shift ;;
      --node) NODE_ARG=${2:?--node needs a value}; shift ;;
      --cut) CUT=1 ;;
      -h|--help) node_usage; return ;;
      *) node_usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || die "bad --name (use [a-z0-9-]): $NAME"
  case "$cmd" in
    up) node_up ;;
    down) node_down; log "node(s) of $NAME stopped; containers, mounts, network, rules, cgroups and state removed" ;;
    status) node_status ;;
    check-clean) node_leftovers ;;
    lose|restore)
      [[ -n "$NODE_ARG" ]] || die "$cmd needs --node NODE"
      "node_$cmd" ;;
    images)
      read_ports "$(state_dir)" || die "instance $NAME is not up"
      image_archives "${IMAGE_DIR:-$REPO_ROOT/.local/image}"
      for i in $(node_numbers); do
        use_node "$i"
        import_images
      done ;;
    -h|--help|help) node_usage ;;
    *) node_usage >&2; die "unknown command: $cmd" ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  node_main "$@"
fi
