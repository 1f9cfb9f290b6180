# Entry points that work on a fresh machine: they install what they need first.
SHELL := /bin/bash
NODE_DIR := $(shell bash scripts/ensure-node.sh)
export PATH := $(NODE_DIR):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup demo demo-cluster test bench build clean cluster-bins

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

setup: node_modules/.package-lock.json
	bash scripts/install-system-deps.sh

build: setup
	npm run build

## The main job on its embedded default: a local V2 swarm on /dev/shm.
demo: build
	node bin/cfn.js run --agents 500 --topology flat

## The main job on a local Kubernetes cluster with a real node (root; no Docker):
## control plane + containerd + kubelet, the image built without a registry,
## the Helm chart, a RolloutPolicy and sample Swarms. `scripts/demo.sh --down` removes it.
demo-cluster: build cluster-bins
	bash scripts/demo.sh

## Control-plane binaries for the integration tests, plus helm and the node
## binaries (cached per version outside the work tree; a cold build takes
## about 7 minutes on 2 cores and prints progress every minute).
cluster-bins: setup
	bash test/cluster/build.sh --all

## Every test: lint, types, unit, bash, integration.
test: build cluster-bins
	npm test

bench: build
	npm run bench

clean:
	rm -rf dist coverage
