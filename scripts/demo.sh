#!/usr/bin/env bash
# The main job on a local Kubernetes cluster: a real node (containerd +
# kubelet), the project image built and imported without a registry, the
# operator installed by its Helm chart, then three swarms: real work (shellcheck
# on each of the engine's files), 500 agents on V2 and a RolloutPolicy-routed
# swarm, with progress, the final status and the agents' results.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
# shellcheck source=test/cluster/lib.sh
source "$ROOT/test/cluster/lib.sh"

NAME=demo
NODES=1
NS=default
TIMEOUT=300

usage() {
  cat <<USAGE
Usage: scripts/demo.sh [--name NAME] [--nodes N] [--timeout SECONDS] [--down]

1. builds the Kubernetes binaries from source the first time (cached in
   ~/.cache/swarm-operator; about 7 min on 2 quiet cores), and the project image
2. starts a local cluster "NAME" (default demo) with a real node: containerd,
   kubelet, kube-scheduler, bridge CNI (root needed); --nodes 3 (make demo
   NODES=3): three nodes, each in its own network namespace
3. installs the operator with charts/swarm-operator
4. applies a RolloutPolicy (V2 for 100% of new auto swarms, roll back on a
   breach) and three swarms: config/samples/swarm-lint-fixers.yaml (one agent
   per shell file of the engine, each answering with shellcheck's diff),
   config/samples/swarm-v2-500.yaml (500 agents, V2 on a memory-backed
   /dev/shm) and config/samples/swarm-auto.yaml (routed by the policy)
5. shows their progress (at most --timeout seconds, default $TIMEOUT), the
   final status, and lint-fixers' results read back with "cfn results" once
   its pods are gone

The cluster keeps running afterwards (KUBECONFIG is printed);
scripts/demo.sh --down (or npm run cluster:down -- --name NAME) removes it.
USAGE
}

KUBECTL=$(bin_path kubectl)
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" -n "$NS" "$@"; }

apply_policy() {
  k apply -f - >/dev/null <<'YAML'
apiVersion: swarm.cfn.dev/v1alpha1
kind: RolloutPolicy
metadata:
  name: demo-rollout
spec:
  v2Percentage: 100
  default: true
  rollbackOnBreach: true
  gates:
    minSamples: 3
    maxFallbackRate: 5
YAML
}

# Prints the swarm table whenever it changes, until every swarm has finished
# or the time is up. Returns 1 on time-out.
watch_swarms() {
  local deadline=$(( SECONDS + TIMEOUT )) last="" now phases
  while (( SECONDS < deadline )); do
    now=$(k get swarms 2>/dev/null) || now=""
    if [[ -n "$now" && "$now" != "$last" ]]; then
      printf '\n[%3ds]\n%s\n' "$(( SECONDS - WATCH_START ))" "$now"
      last=$now
    fi
    phases=$(k get swarms -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' 2>/dev/null) || phases=""
    if [[ -n "$phases" ]] && ! grep -qvE '^(Succeeded|Failed)$' <<<"$phases"; then
      return 0
    fi
    sleep 1
  done
  log "swarms not finished after ${TIMEOUT}s"
  return 1
}

summary() {
  local name
  for name in $(k get swarms -o jsonpath='{.items[*].metadata.name}'); do
    k get swarm "$name" -o json | jq -r '
      .status as $s |
      "swarm \(.metadata.name): \($s.phase // "?") on \($s.activeVersion // "?") (\($s.versionReason // "")), " +
      "\($s.agents.completed // 0)/\($s.agents.total // 0) agents, \($s.agents.failed // 0) failed, " +
      "delivery \($s.deliveryRate // 0)%, coordination \(($s.coordinationTimeMs // 0) / 1000)s" +
      (if $s.fallback then "\n  fell back to \($s.fallback.to): \($s.fallback.reason)" else "" end)'
  done
  k get rolloutpolicy demo-rollout -o json | jq -r '"policy demo-rollout: \(.status.phase // "?") at \(.status.effectivePercentage // "?")%, observed \(.status.observed // {} | tostring)"'
}

# The real work, read back from the results volume after the swarm's pods are
# gone: how many files shellcheck would change, and the first results.
show_results() {
  local jsonl
  k delete pod -l swarm.cfn.dev/swarm=lint-fixers --wait=true >/dev/null
  jsonl=$(node "$ROOT/bin/cfn.js" results lint-fixers -n "$NS" --format jsonl) || { log "cfn results lint-fixers failed"; return 1; }
  jq -rs '"lint-fixers results (cfn results, its pods deleted): \(length) agents; " +
    "\([.[] | select(.status == "completed" and (.output | length) > 0)] | length) files with shellcheck fixes, " +
    "\([.[] | .output | split("\n")[] | select(startswith("+") and (startswith("+++") | not))] | length) lines changed; " +
    "\([.[] | select(.status != "completed")] | length) failed"' <<<"$jsonl"
  node "$ROOT/bin/cfn.js" results lint-fixers -n "$NS" --format table | head -n 6
}

all_built() {
  local b
  for b in etcd helm "${CORE_K8S_BINS[@]}" "${NODE_K8S_BINS[@]}" local-path-provisioner; do
    [[ -x "$(bin_path "$b")" ]] || return 1
  done
}

main() {
  local down=0
  while (( $# > 0 )); do
    case "$1" in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --nodes) NODES=${2:?--nodes needs a value}; shift ;;
      --timeout) TIMEOUT=${2:?--timeout needs a value}; shift ;;
      --down) down=1 ;;
      -h|--help) usage; return ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "bad --timeout: $TIMEOUT"
  if (( down )); then
    bash "$ROOT/test/cluster/cluster.sh" down --name "$NAME"
    return
  fi
  # Before minutes of building: the node cannot run without root.
  [[ $(id -u) -eq 0 ]] || die "the demo's local node (containerd, kubelet, bridge CNI, iptables) needs root: sudo make demo; without root, make demo-local runs the same V2 engine on this machine's /dev/shm, without Kubernetes"
  local start=$SECONDS
  bash "$ROOT/scripts/install-system-deps.sh"
  if ! all_built; then
    log "first run: building Kubernetes, etcd and helm from source (about 7 min on 2 quiet cores, longer when busy; progress every minute)"
  fi
  bash "$ROOT/test/cluster/build.sh" --all >&2
  KUBECONFIG=$(bash "$ROOT/test/e2e/setup.sh" --name "$NAME" --nodes "$NODES")
  export KUBECONFIG
  log "cluster, node and operator ready after $(( SECONDS - start )) s"
  apply_policy
  k delete swarm lint-fixers echo-500 test-triage --ignore-not-found --wait=true >/dev/null
  k apply -f "$ROOT/config/samples/swarm-lint-fixers.yaml" -f "$ROOT/config/samples/swarm-v2-500.yaml" -f "$ROOT/config/samples/swarm-auto.yaml" >/dev/null
  log "applied RolloutPolicy demo-rollout and swarms lint-fixers (shellcheck, one agent per engine file), echo-500 (500 agents, V2) and test-triage (20 agents, auto)"
  WATCH_START=$SECONDS
  local ok=0
  watch_swarms || ok=1
  printf '\n'
  summary
  local pod
  # echo-500 runs as shards (spec.shards auto: one per 300 agents): each has its pod.
  for pod in $(k get swarm echo-500 -o jsonpath='{.status.shards[*].pod}'); do
    printf '\ncoordinator pod %s: %s' "$pod" "$(k get pod "$pod" -o jsonpath='{.status.phase} on node {.spec.nodeName}, /dev/shm = emptyDir medium Memory, sizeLimit {.spec.volumes[?(@.name=="dshm")].emptyDir.sizeLimit}' 2>/dev/null || echo gone)"
  done
  printf '\n'
  printf '\n'
  show_results || ok=1
  log "demo done in $(( SECONDS - start )) s (swarms $(( SECONDS - WATCH_START )) s)"
  printf '\nexport KUBECONFIG=%s\n' "$KUBECONFIG"
  printf 'kubectl get swarms; kubectl describe swarm lint-fixers; node bin/cfn.js results lint-fixers --out DIR\n'
  printf 'tear down: scripts/demo.sh --down\n'
  return "$ok"
}

main "$@"
