# Entry points that work on a fresh machine: they install what they need first.
SHELL := /bin/bash
NODE_DIR := $(shell bash scripts/ensure-node.sh)
export PATH := $(NODE_DIR):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup demo demo-cluster demo-local test bench build clean cluster-bins test-tools

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

setup: node_modules/.package-lock.json
	bash scripts/install-system-deps.sh

build: setup
	npm run build

## The main job, end to end, on the embedded default (root; no Docker): a local
## Kubernetes cluster with a real node (control plane + containerd + kubelet,
## binaries built from source the first time), the image built without a
## registry, the Helm chart, a RolloutPolicy and sample Swarms, progress and the
## final status. `scripts/demo.sh --down` removes it. NODES=3: three nodes, each
## in its own network namespace (test/cluster/README.md).
demo: build
	bash scripts/demo.sh $(if $(NODES),--nodes $(NODES))

## The name it had before `make demo` became the cluster demo.
demo-cluster: demo

## Without root or Kubernetes: the same V2 engine on this machine's /dev/shm
## (`cfn run`, a swarm of 500 agents), in a few seconds.
demo-local: build
	node bin/cfn.js run --agents 500

## Control-plane binaries for the integration tests, plus helm, the node
## binaries and the S3 server of the results tests (cached per version outside
## the work tree; a cold build takes about 10 minutes on 2 cores and prints
## progress every minute).
cluster-bins: setup
	bash test/cluster/build.sh --all

## Test helpers built from the Go module proxy, cached like the binaries:
## test/tools/kstatus (Flux's status library, for the integration tests).
test-tools: setup
	bash test/tools/kstatus/build.sh >/dev/null

## Every test: lint, types, unit, bash, integration, then the real-node e2e
## suite (root; otherwise one line says it was skipped and why; E2E=0 skips it).
test: build cluster-bins test-tools
	npm test
	bash scripts/test-e2e.sh

bench: build
	npm run bench

clean:
	rm -rf dist coverage
