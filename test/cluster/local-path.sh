#!/usr/bin/env bash
# The node's dynamic volume provisioner: rancher's local-path-provisioner
# (kind's default StorageClass) as a host process with the admin kubeconfig,
# volumes under the node's state dir, helper pods from the project image (no
# image can be pulled) and a default StorageClass "local-path"
# (WaitForFirstConsumer). Sourced by node.sh, which provides log, die,
# start_component, live_pid, stop_group, kubectl_admin and bin_path.

readonly LOCAL_PATH_NAMESPACE=local-path-storage
readonly LOCAL_PATH_CONFIGMAP=local-path-config
readonly LOCAL_PATH_SERVICE_ACCOUNT=local-path-provisioner-service-account
readonly LOCAL_PATH_CLASS=local-path
readonly LOCAL_PATH_PROVISIONER=rancher.io/local-path

# The objects the provisioner reads from the API: its namespace, the helper
# pods' ServiceAccount (no token), the ConfigMap whose setup/teardown scripts
# the helper pods mount, and the default StorageClass.
local_path_objects() {
  cat <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $LOCAL_PATH_NAMESPACE
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: $LOCAL_PATH_SERVICE_ACCOUNT
  namespace: $LOCAL_PATH_NAMESPACE
automountServiceAccountToken: false
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: $LOCAL_PATH_CONFIGMAP
  namespace: $LOCAL_PATH_NAMESPACE
data:
  # 0777: the pods using a volume run as any uid (the coordinator as 65532);
  # fsGroup does not apply to host paths.
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $LOCAL_PATH_CLASS
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: $LOCAL_PATH_PROVISIONER
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
YAML
}

# The helper pod template: root (it creates and removes directories owned by
# whichever uid wrote into them), the project image, never pulled.
local_path_helper_pod() {
  local image=$1
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  automountServiceAccountToken: false
  containers:
  - name: helper-pod
    image: $image
    imagePullPolicy: IfNotPresent
    securityContext:
      runAsUser: 0
      runAsGroup: 0
YAML
}

# local_path_up NODE_DIR IMAGE_REF KUBECONFIG
local_path_up() {
  local n=$1 image=$2 kubeconfig=$3 dir
  dir="$n/local-path"
  mkdir -p "$dir/volumes"
  jq -n --arg path "$dir/volumes" \
    '{nodePathMap: [{node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths: [$path]}]}' >"$dir/config.json"
  local_path_helper_pod "$image" >"$dir/helper-pod.yaml"
  local_path_objects | kubectl_admin apply -f - >/dev/null
  start_component "$n" local-path-provisioner "$(bin_path local-path-provisioner)" start \
    --kubeconfig "$kubeconfig" --config "$dir/config.json" --helper-pod-file "$dir/helper-pod.yaml" \
    --namespace "$LOCAL_PATH_NAMESPACE" --configmap-name "$LOCAL_PATH_CONFIGMAP" \
    --service-account-name "$LOCAL_PATH_SERVICE_ACCOUNT" --provisioner-name "$LOCAL_PATH_PROVISIONER" \
    --helper-image "$image"
  # A bad config or an API server it cannot reach ends it within moments.
  local i
  for (( i = 0; i < 15; i++ )); do
    live_pid "$n" local-path-provisioner >/dev/null || die "local-path-provisioner exited: $(tail -n 20 "$n/local-path-provisioner.log")"
    sleep 0.2
  done
  log "local-path-provisioner $LOCAL_PATH_VERSION: default StorageClass $LOCAL_PATH_CLASS, volumes in $dir/volumes"
}

# Stops the provisioner; its volumes go with the node's state dir.
local_path_down() {
  stop_group "$1" local-path-provisioner
}
