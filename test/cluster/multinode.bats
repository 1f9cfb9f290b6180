#!/usr/bin/env bats
# shellcheck shell=bash
# A 3-node local cluster for real (root; shares containerd, cgroups and
# iptables with the e2e suite, so run it under its lock):
#   flock /tmp/e2e.lock bats test/cluster/multinode.bats   (npm run test:multinode)
# Three nodes, each a kubelet + containerd in its own network namespace; a pod
# on each reaches the API server with its token and the other pods across
# nodes; a node that dies goes NotReady and its pod is evicted by the taint
# manager; a node cut off comes back; cluster:down leaves nothing behind.
# Timings and memory go to fd 3 (bats prints them) and to $MN_REPORT.

REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
CLUSTER="$REPO/test/cluster/cluster.sh"
NODE="$REPO/test/cluster/node.sh"
# Never the e2e suite's instance.
MN_NAME=${MN_NAME:-mn-test}
NODES=(swarm-node-1 swarm-node-2 swarm-node-3)

note() { printf '# %s\n' "$*" >&3; printf '%s\n' "$*" >>"$MN_REPORT"; }

# shellcheck source=test/cluster/lib.sh
KUBECTL=$(source "$REPO/test/cluster/lib.sh" && bin_path kubectl)
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

# absent WHAT OUTPUT: fails naming WHAT when OUTPUT (of a search) is not
# empty (bats ignores a failing "! cmd" that is not a test's last line).
absent() {
  [[ -z "$2" ]] || { printf 'left behind (%s): %s\n' "$1" "$2"; return 1; }
}

# wait_until SECONDS COMMAND...: polls COMMAND every 0.5 s; prints the seconds it took.
wait_until() {
  local limit=$1 start=$SECONDS; shift
  until "$@"; do
    if (( SECONDS - start >= limit )); then
      printf 'timed out after %ss waiting for: %s\n' "$limit" "$*" >&2
      return 1
    fi
    sleep 0.5
  done
  printf '%s\n' "$(( SECONDS - start ))"
}

ready_of() { k get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
node_is() { [[ "$(ready_of "$1")" == "$2" ]]; }
pod_ip() { k get pod "$1" -o jsonpath='{.status.podIP}'; }
node_tainted() { k get node "$1" -o jsonpath='{.spec.taints[*].key}' | grep -qw "$2"; }
pod_gone() { ! k get pod "$1" >/dev/null 2>&1; }
pod_deleting() { [[ -n "$(k get pod "$1" -o jsonpath='{.metadata.deletionTimestamp}')" ]]; }

# RSS in MiB of a component of a node (pid file of node.sh).
rss_mib() {
  local pid
  read -r pid _ <"$(dirname "$KUBECONFIG")/node/$1/$2.pid"
  printf '%s\n' "$(( $(ps -o rss= -p "$pid") / 1024 ))"
}

setup_file() {
  [[ $(id -u) -eq 0 ]] || skip "needs root (containerd, kubelet, network namespaces)"
  export MN_REPORT="${MN_REPORT:-$BATS_FILE_TMPDIR/report.txt}"
  : >"$MN_REPORT"
  # Whatever an interrupted run left.
  bash "$CLUSTER" down --name "$MN_NAME" >/dev/null 2>&1 || true
  local start=$SECONDS out
  out=$(bash "$CLUSTER" up --name "$MN_NAME" --port-base auto --nodes 3 2>"$BATS_FILE_TMPDIR/up.log") || {
    tail -n 40 "$BATS_FILE_TMPDIR/up.log" >&3
    return 1
  }
  # The kubeconfig path is the last line.
  export KUBECONFIG=${out##*$'\n'}
  note "cluster:up --nodes 3 (control plane, 3 nodes, image import into 3 containerds): $(( SECONDS - start )) s"
  grep -E 'Ready after|ready:' "$BATS_FILE_TMPDIR/up.log" | sed 's/^/# /' >&3 || true
}

teardown_file() {
  bash "$CLUSTER" down --name "$MN_NAME" >/dev/null 2>&1 || true
}

@test "three nodes Ready, each in its own network namespace, cgroup root and pod CIDR" {
  local nodes ips cidrs n i pid ns
  nodes=$(k get nodes -o json)
  [[ "$(jq -r '[.items[].metadata.name] | sort | join(" ")' <<<"$nodes")" == "${NODES[*]}" ]]
  [[ "$(jq '[.items[] | select(any(.status.conditions[]; .type == "Ready" and .status == "True"))] | length' <<<"$nodes")" == 3 ]]
  ips=$(jq -r '[.items[].status.addresses[] | select(.type == "InternalIP") | .address] | unique | length' <<<"$nodes")
  cidrs=$(jq -r '[.items[].spec.podCIDR] | unique | length' <<<"$nodes")
  [[ "$ips" == 3 && "$cidrs" == 3 ]]
  local host_ns seen=()
  host_ns=$(readlink /proc/self/ns/net)
  for (( i = 1; i <= 3; i++ )); do
    n="swarm-node-$i"
    [[ -e "/var/run/netns/swarm-$MN_NAME-$i" ]]
    read -r pid _ <"$(dirname "$KUBECONFIG")/node/$n/kubelet.pid"
    ns=$(readlink "/proc/$pid/ns/net")
    [[ "$ns" != "$host_ns" ]]
    seen+=("$ns")
    # containerd shares its kubelet's namespace.
    read -r pid _ <"$(dirname "$KUBECONFIG")/node/$n/containerd.pid"
    [[ "$(readlink "/proc/$pid/ns/net")" == "$ns" ]]
    [[ -d "/sys/fs/cgroup/memory/swarm-$MN_NAME-node-$i/kubepods" ]]
    note "$n: kubelet $(rss_mib "$n" kubelet) MiB + containerd $(rss_mib "$n" containerd) MiB RSS (idle, no pods)"
  done
  [[ "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" == 3 ]]
}

@test "a pod on each node reaches the API server with its token, and the pods reach each other across nodes" {
  local image i n pod out ip cidr peer
  image="swarm-operator:$(jq -r .version "$REPO/package.json")"
  for (( i = 1; i <= 3; i++ )); do
    k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: probe-$i
  labels: {app: mn-probe}
spec:
  nodeSelector: {kubernetes.io/hostname: swarm-node-$i}
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: probe
    image: $image
    imagePullPolicy: IfNotPresent
    # Answers every request with its own name (the pod's hostname).
    command: [node, -e, "require('http').createServer((q, s) => s.end(require('os').hostname())).listen(8080)"]
    ports: [{containerPort: 8080}]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
YAML
  done
  k wait --for=condition=Ready pod -l app=mn-probe --timeout=120s >/dev/null
  for (( i = 1; i <= 3; i++ )); do
    pod="probe-$i" n="swarm-node-$i"
    [[ "$(k get pod "$pod" -o jsonpath='{.spec.nodeName}')" == "$n" ]]
    ip=$(pod_ip "$pod")
    cidr=$(k get node "$n" -o jsonpath='{.spec.podCIDR}')
    # The pod's address is in its node's pod CIDR (a /24).
    [[ "${ip%.*}" == "${cidr%.*}" ]]
    # The API server through the kubernetes Service address, authenticated
    # with the pod's service-account token (a SelfSubjectReview names it).
    out=$(k exec "$pod" -- node -e '
      const fs = require("fs"), https = require("https");
      const d = "/var/run/secrets/kubernetes.io/serviceaccount/";
      const req = https.request({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
        path: "/apis/authentication.k8s.io/v1/selfsubjectreviews", method: "POST", ca: fs.readFileSync(d + "ca.crt"),
        headers: { authorization: "Bearer " + fs.readFileSync(d + "token", "utf8"), "content-type": "application/json" } },
        (res) => { let b = ""; res.on("data", (c) => (b += c)); res.on("end", () => {
          console.log(res.statusCode, JSON.parse(b).status.userInfo.username); }); });
      req.on("error", (e) => { console.error(e.message); process.exit(1); });
      req.end(JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }));')
    [[ "$out" == "201 system:serviceaccount:default:default" ]] || { echo "$pod: $out"; return 1; }
    note "$pod on $n ($ip): API server answered: $out"
  done
  for (( i = 1; i <= 3; i++ )); do
    for peer in probe-1 probe-2 probe-3; do
      [[ "$peer" == "probe-$i" ]] && continue
      out=$(k exec "probe-$i" -- node -e '
        require("http").get({ host: process.argv[1], port: 8080, timeout: 5000 }, (res) => {
          let b = ""; res.on("data", (c) => (b += c)); res.on("end", () => console.log(b)); })
          .on("error", (e) => { console.error(e.message); process.exit(1); });' "$(pod_ip "$peer")")
      [[ "$out" == "$peer" ]] || { echo "probe-$i -> $peer: $out"; return 1; }
    done
  done
  note "each probe pod reached both others across nodes"
}

@test "a node that dies goes NotReady, its pod is evicted, the others stay Ready; restored, it is Ready" {
  local t_notready t_evicted reason
  bash "$NODE" lose --name "$MN_NAME" --node 3
  t_notready=$(wait_until 90 node_is swarm-node-3 Unknown)
  wait_until 30 node_tainted swarm-node-3 node.kubernetes.io/unreachable >/dev/null
  t_evicted=$(wait_until 90 pod_deleting probe-3)
  # The taint manager marks the pod before it deletes it.
  reason=$(k get pod probe-3 -o jsonpath='{.status.conditions[?(@.type=="DisruptionTarget")].reason}')
  [[ "$reason" == DeletionByTaintManager ]]
  node_is swarm-node-1 True
  node_is swarm-node-2 True
  [[ -z "$(k get pod probe-1 -o jsonpath='{.metadata.deletionTimestamp}')" ]]
  note "swarm-node-3 killed: NotReady (Unknown, unreachable taint) after ${t_notready} s, probe-3 evicted ($reason) ${t_evicted} s later"
  # Back from the dead: containerd and kubelet restart on the node's state,
  # the node is Ready, and its kubelet finishes the eviction.
  local start=$SECONDS t_ready t_gone
  bash "$NODE" restore --name "$MN_NAME" --node swarm-node-3
  t_ready=$(( SECONDS - start ))
  node_is swarm-node-3 True
  t_gone=$(wait_until 60 pod_gone probe-3)
  note "swarm-node-3 restored: Ready after ${t_ready} s, probe-3 gone ${t_gone} s later"
}

@test "a node cut off from the network goes NotReady and is Ready again once restored" {
  local t_notready t_back
  bash "$NODE" lose --name "$MN_NAME" --node swarm-node-2 --cut
  t_notready=$(wait_until 90 node_is swarm-node-2 Unknown)
  # Its kubelet and containerd keep running: a partition, not a crash.
  bash "$NODE" status --name "$MN_NAME" | grep -E 'kubelet +\(swarm-node-2\) +running'
  local start=$SECONDS
  bash "$NODE" restore --name "$MN_NAME" --node swarm-node-2
  t_back=$(( SECONDS - start ))
  node_is swarm-node-2 True
  note "swarm-node-2 cut: NotReady after ${t_notready} s; Ready ${t_back} s after restore"
}

@test "cluster:down leaves nothing behind" {
  local dir start
  dir=$(dirname "$KUBECONFIG")
  start=$SECONDS
  bash "$CLUSTER" down --name "$MN_NAME"
  note "cluster:down with 3 nodes: $(( SECONDS - start )) s"
  bash "$NODE" check-clean --name "$MN_NAME" --nodes 3
  # The same, checked independently of node.sh.
  [[ ! -e "$dir" ]]
  absent "network namespaces" "$(ip netns list | grep -E "^swarm-$MN_NAME-[0-9]+( |$)")"
  absent "bridge" "$(ip -o link show | grep -F "swarm-operator instance $MN_NAME")"
  absent "mounts" "$(grep -F "$dir/" /proc/mounts)"
  absent "processes" "$(pgrep -af "$dir/")"
  absent "cgroups" "$(compgen -G "/sys/fs/cgroup/*/swarm-$MN_NAME-node-*")"
  absent "iptables rules" "$(iptables-save | grep -F -- "swarm-operator-mn-$MN_NAME")"
}
